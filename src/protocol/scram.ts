/**
 * SCRAM (RFC 5802, RFC 7677) for SASL SCRAM-SHA-256 and SCRAM-SHA-512, shared by the broker
 * (server side) and Strand's client. No I/O: messages in, messages out.
 *
 * Keys, as the RFC names them:
 *   SaltedPassword  = PBKDF2(HMAC-H, password, salt, iterations)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = H(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   ClientSignature = HMAC(StoredKey, AuthMessage);  ClientProof = ClientKey XOR ClientSignature
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 * A server keeps only salt, iterations, StoredKey and ServerKey: enough to check a proof, not
 * enough to log in.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** Kafka's ScramMechanism codes (AlterUserScramCredentials / DescribeUserScramCredentials). */
export const SCRAM_MECHANISM_CODE: Record<ScramMechanism, number> = { 'SCRAM-SHA-256': 1, 'SCRAM-SHA-512': 2 };
export const SCRAM_MECHANISM_BY_CODE: ReadonlyMap<number, ScramMechanism> = new Map([
  [1, 'SCRAM-SHA-256'],
  [2, 'SCRAM-SHA-512'],
]);

/** Kafka's bounds on iterations. */
export const SCRAM_MIN_ITERATIONS = 4096;
export const SCRAM_MAX_ITERATIONS = 16384;

export const hashOf = (m: ScramMechanism): 'sha256' | 'sha512' => (m === 'SCRAM-SHA-256' ? 'sha256' : 'sha512');
const keyLength = (m: ScramMechanism): number => (m === 'SCRAM-SHA-256' ? 32 : 64);

export interface ScramCredential {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function saltedPassword(m: ScramMechanism, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(Buffer.from(password.normalize('NFKC'), 'utf8'), salt, iterations, keyLength(m), hashOf(m), (e, key) => (e ? reject(e) : resolve(key))));
}

const hmac = (m: ScramMechanism, key: Buffer, data: string | Buffer): Buffer => createHmac(hashOf(m), key).update(data).digest();
const hash = (m: ScramMechanism, data: Buffer): Buffer => createHash(hashOf(m)).update(data).digest();

/** StoredKey and ServerKey from a salted password (what AlterUserScramCredentials carries). */
export function credentialFromSaltedPassword(m: ScramMechanism, salted: Buffer, salt: Buffer, iterations: number): ScramCredential {
  return { salt, iterations, storedKey: hash(m, hmac(m, salted, 'Client Key')), serverKey: hmac(m, salted, 'Server Key') };
}

export async function newCredential(m: ScramMechanism, password: string, iterations = SCRAM_MIN_ITERATIONS): Promise<ScramCredential> {
  const salt = randomBytes(32);
  return credentialFromSaltedPassword(m, await saltedPassword(m, password, salt, iterations), salt, iterations);
}

/** Whether `password` is the one behind `cred` (PLAIN checked against a SCRAM credential). */
export async function passwordMatches(m: ScramMechanism, password: string, cred: ScramCredential): Promise<boolean> {
  const salted = await saltedPassword(m, password, cred.salt, cred.iterations);
  const storedKey = hash(m, hmac(m, salted, 'Client Key'));
  return storedKey.length === cred.storedKey.length && timingSafeEqual(storedKey, cred.storedKey);
}

/** RFC 5802 saslname: ',' and '=' are escaped as =2C and =3D. */
export const escapeSaslName = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');
function unescapeSaslName(s: string): string | null {
  if (/=(?!2C|3D)/.test(s)) return null;
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

function attributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) continue;
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

/**
 * The server side of one SCRAM exchange: `first(clientFirst)` → server-first message (after
 * looking the user up), `final(clientFinal)` → server-final message, or a ScramError.
 */
export class ScramServer {
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private gs2Header = '';
  private cred: ScramCredential | null = null;
  user = '';

  constructor(readonly mechanism: ScramMechanism) {}

  /** Parses client-first; returns the user name, to look its credential up. */
  parseFirst(message: Buffer): string {
    const text = message.toString('utf8');
    const m = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/.exec(text);
    if (m === null) throw new ScramError('invalid client-first message');
    if (m[1]!.startsWith('p=')) throw new ScramError('channel binding is not supported');
    this.gs2Header = `${m[1]},${m[2] ?? ''},`;
    this.clientFirstBare = m[3]!;
    const attrs = attributes(this.clientFirstBare);
    if (this.clientFirstBare.startsWith('m=')) throw new ScramError('mandatory extensions are not supported');
    const name = unescapeSaslName(attrs.get('n') ?? '');
    const nonce = attrs.get('r');
    if (name === null || name === '' || nonce === undefined || nonce === '') throw new ScramError('invalid client-first message');
    const authzid = m[2] === undefined ? '' : unescapeSaslName(m[2].slice(2));
    if (authzid !== '' && authzid !== name) throw new ScramError('authorization id must be the user name');
    this.user = name;
    this.nonce = nonce + randomBytes(24).toString('base64url');
    return name;
  }

  serverFirstMessage(cred: ScramCredential): Buffer {
    this.cred = cred;
    this.serverFirst = `r=${this.nonce},s=${cred.salt.toString('base64')},i=${cred.iterations}`;
    return Buffer.from(this.serverFirst, 'utf8');
  }

  /** Checks client-final's proof; returns server-final. */
  final(message: Buffer): Buffer {
    const cred = this.cred;
    if (cred === null) throw new ScramError('client-final before client-first');
    const text = message.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('invalid client-final message');
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('c') !== Buffer.from(this.gs2Header, 'utf8').toString('base64')) throw new ScramError('invalid channel binding');
    // As Kafka's ScramSaslServer: the nonce must end with ours (librdkafka 2.0 repeats its own part in front).
    if (!(attrs.get('r') ?? '').endsWith(this.nonce)) throw new ScramError('invalid nonce');
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const m = this.mechanism;
    const clientSignature = hmac(m, cred.storedKey, authMessage);
    if (proof.length !== clientSignature.length) throw new ScramError('invalid credentials');
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    const storedKey = hash(m, clientKey);
    if (!timingSafeEqual(storedKey, cred.storedKey)) throw new ScramError('invalid credentials');
    return Buffer.from(`v=${hmac(m, cred.serverKey, authMessage).toString('base64')}`, 'utf8');
  }
}

/** The client side of one SCRAM exchange. */
export class ScramClient {
  private readonly clientNonce = randomBytes(24).toString('base64url');
  private clientFirstBare = '';
  private serverSignature: Buffer | null = null;

  constructor(
    readonly mechanism: ScramMechanism,
    private readonly user: string,
    private readonly password: string,
  ) {}

  first(): Buffer {
    this.clientFirstBare = `n=${escapeSaslName(this.user)},r=${this.clientNonce}`;
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  async final(serverFirst: Buffer): Promise<Buffer> {
    const text = serverFirst.toString('utf8');
    const attrs = attributes(text);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || !nonce.startsWith(this.clientNonce) || salt === undefined || !Number.isInteger(iterations) || iterations < 1) {
      throw new ScramError(`invalid server-first message${attrs.has('e') ? `: ${attrs.get('e')}` : ''}`);
    }
    const m = this.mechanism;
    const salted = await saltedPassword(m, this.password, Buffer.from(salt, 'base64'), iterations);
    const clientKey = hmac(m, salted, 'Client Key');
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const clientSignature = hmac(m, hash(m, clientKey), authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.serverSignature = hmac(m, hmac(m, salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks the server's signature (the server proves it knows the credential too). */
  verify(serverFinal: Buffer): void {
    const attrs = attributes(serverFinal.toString('utf8'));
    if (attrs.has('e')) throw new ScramError(`server error: ${attrs.get('e')}`);
    const v = Buffer.from(attrs.get('v') ?? '', 'base64');
    if (this.serverSignature === null || v.length !== this.serverSignature.length || !timingSafeEqual(v, this.serverSignature)) throw new ScramError('invalid server signature');
  }
}
