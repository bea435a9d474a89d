/**
 * Test certificates, made at run time with openssl in a temporary directory (never committed):
 * a CA, a broker certificate for 127.0.0.1 / localhost, and client certificates signed by the CA,
 * plus one signed by a CA the broker does not trust.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  /** PEM file with the broker's key and certificate (ssl.keystore.location). */
  brokerKeystore: string;
  brokerCert: string;
  brokerKey: string;
  client(name: string): { cert: string; key: string };
  /** A client certificate from an untrusted CA. */
  rogue: { cert: string; key: string };
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
}

function issue(dir: string, name: string, subject: string, ca: string, ext: string | null): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', subject, '-out', csr]);
  const args = ['x509', '-req', '-in', csr, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-out', cert];
  if (ext !== null) {
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, ext);
    args.push('-extfile', extFile);
  }
  openssl(dir, args);
  return { cert, key };
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'strand-pki-'));
  const ca = (name: string): void => openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
  ca('test-ca');
  ca('rogue-ca');
  const broker = issue(dir, 'broker', '/C=US/O=Strand/CN=localhost', join(dir, 'test-ca'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const brokerKeystore = join(dir, 'broker-keystore.pem');
  writeFileSync(brokerKeystore, readFileSync(broker.key, 'utf8') + readFileSync(broker.cert, 'utf8'));
  const rogue = issue(dir, 'rogue', '/CN=mallory', join(dir, 'rogue-ca'), null);
  return {
    dir,
    caCert: join(dir, 'test-ca.pem'),
    brokerKeystore,
    brokerCert: broker.cert,
    brokerKey: broker.key,
    client: (name: string) => issue(dir, `client-${name}`, `/C=US/O=Strand/OU=Clients/CN=${name}`, join(dir, 'test-ca'), null),
    rogue,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
