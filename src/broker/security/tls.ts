/**
 * TLS for SSL and SASL_SSL listeners, from Kafka's PEM key store settings
 * (`ssl.keystore.type=PEM`):
 * - the key and its certificate chain from `ssl.keystore.location` (one PEM file holding both) or
 *   inline from `ssl.keystore.key` + `ssl.keystore.certificate.chain`; `ssl.key.password` for an
 *   encrypted key;
 * - trusted CAs for client certificates from `ssl.truststore.location` or
 *   `ssl.truststore.certificates`;
 * - `ssl.client.auth`: none, requested (a certificate is asked for and must verify if given) or
 *   required (mutual TLS).
 * Every setting may be given per listener as `listener.name.<listener>.ssl.…`.
 *
 * The principal of a TLS client is its certificate's subject DN in RFC 2253 form (most specific
 * attribute first, as Java's X500Principal.getName() prints it), mapped by
 * `ssl.principal.mapping.rules` (Kafka's SslPrincipalMapper), as `User:<name>`; a client without
 * a certificate is `User:ANONYMOUS`.
 */
import { readFileSync } from 'node:fs';
import type { TlsOptions, TLSSocket } from 'node:tls';
import { ConfigError, type BrokerConfig } from '../config.js';

export const ANONYMOUS = 'User:ANONYMOUS';

interface PemBlock {
  label: string;
  text: string;
}

function pemBlocks(pem: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  for (let m = re.exec(pem); m !== null; m = re.exec(pem)) out.push({ label: m[1]!, text: m[0] });
  return out;
}

function readPem(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${setting}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Node TLS server options for one listener; throws ConfigError when the key store is missing or unusable. */
export function tlsServerOptions(config: BrokerConfig, listener: string): TlsOptions {
  const get = (name: string): string | null => config.forListener(listener, name);
  let keyPem: string;
  let certPem: string;
  const location = get('ssl.keystore.location');
  if (location !== null) {
    const text = readPem(location, 'ssl.keystore.location');
    keyPem = text;
    certPem = text;
  } else {
    const key = get('ssl.keystore.key');
    const chain = get('ssl.keystore.certificate.chain');
    if (key === null || chain === null) {
      throw new ConfigError(`listener ${listener} uses TLS but has no key store: set ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain`);
    }
    keyPem = key;
    certPem = chain;
  }
  const keys = pemBlocks(keyPem).filter((b) => b.label.endsWith('PRIVATE KEY'));
  const certs = pemBlocks(certPem).filter((b) => b.label === 'CERTIFICATE');
  if (keys.length !== 1) throw new ConfigError(`listener ${listener}: the key store must hold exactly one private key in PEM, found ${keys.length}`);
  if (certs.length === 0) throw new ConfigError(`listener ${listener}: the key store holds no PEM certificate`);
  const opts: TlsOptions = {
    key: keys[0]!.text,
    cert: certs.map((c) => c.text).join('\n'),
    minVersion: get('ssl.enabled.protocols')!.split(',').includes('TLSv1.2') ? 'TLSv1.2' : 'TLSv1.3',
    maxVersion: get('ssl.enabled.protocols')!.split(',').includes('TLSv1.3') ? 'TLSv1.3' : 'TLSv1.2',
  };
  const passphrase = get('ssl.key.password');
  if (passphrase !== null) opts.passphrase = passphrase;
  const trustLocation = get('ssl.truststore.location');
  const trustInline = get('ssl.truststore.certificates');
  const trust = trustLocation !== null ? readPem(trustLocation, 'ssl.truststore.location') : trustInline;
  if (trust !== null) {
    const cas = pemBlocks(trust).filter((b) => b.label === 'CERTIFICATE');
    if (cas.length === 0) throw new ConfigError(`listener ${listener}: the trust store holds no PEM certificate`);
    opts.ca = cas.map((c) => c.text);
  }
  const clientAuth = get('ssl.client.auth');
  if (clientAuth !== 'none') {
    if (trust === null) throw new ConfigError(`listener ${listener}: ssl.client.auth=${clientAuth} needs a trust store (ssl.truststore.location or ssl.truststore.certificates)`);
    opts.requestCert = true;
    // 'requested': a client without a certificate is let in; one with a bad certificate is not (checked on connect).
    opts.rejectUnauthorized = clientAuth === 'required';
  }
  return opts;
}

/** The subject DN of the verified peer certificate in RFC 2253 order, or null when there is none. */
export function peerDistinguishedName(socket: TLSSocket): string | null {
  if (!socket.authorized) return null;
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) return null;
  // Node lists the subject's attributes in certificate order, one per line; RFC 2253 reverses them.
  return x509.subject
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .map((rdn) => rdn.replace(/\+/g, '\\+'))
    .join(',');
}

interface MappingRule {
  /** null: the DEFAULT rule (the DN as is). */
  pattern: RegExp | null;
  replacement: string;
  caseChange: '' | 'L' | 'U';
}

/**
 * Parses `ssl.principal.mapping.rules`: a comma-separated list of `DEFAULT` and
 * `RULE:pattern/replacement/` with an optional `L` or `U` (lower / upper case) after the last
 * slash. Patterns may contain commas; `\/` is a literal slash.
 */
export function parsePrincipalMappingRules(text: string): MappingRule[] {
  const rules: MappingRule[] = [];
  let rest = text.trim();
  while (rest !== '') {
    if (rest.startsWith('DEFAULT')) {
      rules.push({ pattern: null, replacement: '', caseChange: '' });
      rest = rest.slice('DEFAULT'.length);
    } else {
      const m = /^RULE:((?:\\.|[^\\/])*)\/((?:\\.|[^\\/])*)\/([LU]?)/.exec(rest);
      if (m === null) throw new ConfigError(`ssl.principal.mapping.rules: cannot parse '${rest}' (expected DEFAULT or RULE:pattern/replacement/[LU])`);
      let pattern: RegExp;
      try {
        pattern = new RegExp(`^(?:${m[1]!.replace(/\\\//g, '/')})$`);
      } catch (e) {
        throw new ConfigError(`ssl.principal.mapping.rules: bad pattern '${m[1]}': ${(e as Error).message}`);
      }
      rules.push({ pattern, replacement: m[2]!.replace(/\\\//g, '/'), caseChange: m[3] as '' | 'L' | 'U' });
      rest = rest.slice(m[0].length);
    }
    rest = rest.trim();
    if (rest.startsWith(',')) rest = rest.slice(1).trim();
    else if (rest !== '') throw new ConfigError(`ssl.principal.mapping.rules: expected ',' before '${rest}'`);
  }
  return rules;
}

/** Maps a DN to a user name with the first rule that matches it (Kafka: no match is an error, answered as ANONYMOUS-less failure). */
export function mapDistinguishedName(dn: string, rules: readonly MappingRule[]): string | null {
  for (const r of rules) {
    if (r.pattern === null) return dn;
    if (!r.pattern.test(dn)) continue;
    const name = dn.replace(r.pattern, r.replacement);
    return r.caseChange === 'L' ? name.toLowerCase() : r.caseChange === 'U' ? name.toUpperCase() : name;
  }
  return null;
}
