/**
 * The server side of SASL on one connection of a SASL_PLAINTEXT or SASL_SSL listener (Kafka's
 * SaslServerAuthenticator).
 *
 * States: `handshake` (only ApiVersions and SaslHandshake are answered) → after SaslHandshake v1,
 * `authenticate` (SaslAuthenticate requests carry the tokens); after SaslHandshake v0, `raw`
 * (the next frames are bare size-prefixed tokens without Kafka headers, answered the same way,
 * as kafka-python does it) → `authenticated`. Any other request before that closes the
 * connection. KIP-368: with `connections.max.reauth.ms` a session ends that long after it
 * started; the client re-authenticates on the same connection (SaslHandshake v1 +
 * SaslAuthenticate) as the same principal, else its next request after the end closes the
 * connection.
 *
 * Mechanisms: SCRAM-SHA-256 and SCRAM-SHA-512 against the credentials in the metadata image, and
 * PLAIN checked against the same credentials (the password is salted with the stored salt and
 * compared with StoredKey), so no password is kept anywhere. A failure is logged (user and
 * mechanism, never the token), answered after `connection.failed.authentication.delay.ms`, and
 * the connection closed. PLAIN's key derivation runs in the libuv pool, so at most
 * MAX_CONCURRENT_DERIVATIONS run at once and at most MAX_QUEUED_DERIVATIONS wait; beyond that a
 * PLAIN attempt fails at once: a flood of bad logins cannot starve file I/O.
 */
import { passwordMatches, ScramError, ScramServer, type ScramMechanism } from '../../protocol/scram.js';
import type { MetadataImage } from '../metadata/image.js';

export type SaslMechanism = 'PLAIN' | ScramMechanism;

export class AuthenticationError extends Error {
  constructor(
    message: string,
    /** Who tried, when known (for the log line; never the secret). */
    readonly user: string | null,
  ) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

const MAX_CONCURRENT_DERIVATIONS = 2;
const MAX_QUEUED_DERIVATIONS = 64;
let derivations = 0;
const derivationQueue: Array<() => void> = [];

async function limitedDerivation<T>(work: () => Promise<T>, user: string): Promise<T> {
  if (derivations >= MAX_CONCURRENT_DERIVATIONS) {
    if (derivationQueue.length >= MAX_QUEUED_DERIVATIONS) throw new AuthenticationError('too many authentications in progress', user);
    await new Promise<void>((resolve) => derivationQueue.push(resolve));
  } else {
    derivations++;
  }
  try {
    return await work();
  } finally {
    const next = derivationQueue.shift();
    if (next !== undefined) next();
    else derivations--;
  }
}

interface Authenticator {
  /** The next server token; `principal` is set when the exchange is complete. */
  step(token: Buffer, image: MetadataImage): Promise<{ response: Buffer; principal: string | null }>;
}

class PlainAuthenticator implements Authenticator {
  async step(token: Buffer, image: MetadataImage): Promise<{ response: Buffer; principal: string | null }> {
    const parts = token.toString('utf8').split('\u0000');
    if (parts.length !== 3) throw new AuthenticationError('invalid PLAIN message', null);
    const [authzid, user, password] = parts as [string, string, string];
    if (user === '' || password === '') throw new AuthenticationError('empty user name or password', user || null);
    if (authzid !== '' && authzid !== user) throw new AuthenticationError('authorization id must be empty or the user name', user);
    const creds = image.security.scram.get(user);
    const cred = creds?.get('SCRAM-SHA-512') ?? creds?.get('SCRAM-SHA-256');
    if (cred === undefined) throw new AuthenticationError('unknown user', user);
    const mechanism: ScramMechanism = creds!.has('SCRAM-SHA-512') ? 'SCRAM-SHA-512' : 'SCRAM-SHA-256';
    const ok = await limitedDerivation(() => passwordMatches(mechanism, password, cred), user);
    if (!ok) throw new AuthenticationError('invalid credentials', user);
    return { response: Buffer.alloc(0), principal: `User:${user}` };
  }
}

class ScramAuthenticator implements Authenticator {
  private readonly server: ScramServer;
  private stage: 'first' | 'final' | 'done' = 'first';

  constructor(mechanism: ScramMechanism) {
    this.server = new ScramServer(mechanism);
  }

  async step(token: Buffer, image: MetadataImage): Promise<{ response: Buffer; principal: string | null }> {
    try {
      if (this.stage === 'first') {
        const user = this.server.parseFirst(token);
        const cred = image.security.credential(user, this.server.mechanism);
        if (cred === undefined) throw new AuthenticationError('unknown user', user);
        this.stage = 'final';
        return { response: this.server.serverFirstMessage(cred), principal: null };
      }
      if (this.stage === 'final') {
        const response = this.server.final(token);
        this.stage = 'done';
        return { response, principal: `User:${this.server.user}` };
      }
      throw new AuthenticationError('unexpected token after the exchange completed', this.server.user || null);
    } catch (e) {
      if (e instanceof ScramError) throw new AuthenticationError(e.message, this.server.user || null);
      throw e;
    }
  }
}

export type SaslState = 'handshake' | 'authenticate' | 'raw' | 'authenticated';

export class SaslServerSession {
  state: SaslState = 'handshake';
  mechanism: SaslMechanism | null = null;
  /** The authenticated principal (kept through re-authentication). */
  principal: string | null = null;
  /** When the session ends (KIP-368), or null for never. */
  expiresAtMs: number | null = null;
  private authenticator: Authenticator | null = null;

  constructor(
    readonly enabledMechanisms: readonly SaslMechanism[],
    /** `connections.max.reauth.ms`; 0 for sessions that never end. */
    readonly maxReauthMs: number,
  ) {}

  get authenticated(): boolean {
    return this.principal !== null;
  }

  /** Whether a request other than SaslHandshake / SaslAuthenticate must now close the connection. */
  expired(nowMs: number): boolean {
    return this.expiresAtMs !== null && nowMs >= this.expiresAtMs;
  }

  /** SaslHandshake: picks the mechanism. Returns false when it is not enabled. */
  handshake(mechanism: string, version: number): 'ok' | 'unsupported' | 'illegal-state' {
    const reauthenticating = this.state === 'authenticated';
    if (this.state !== 'handshake' && !reauthenticating) return 'illegal-state';
    // Re-authentication (KIP-368) always uses SaslAuthenticate, so needs SaslHandshake v1.
    if (reauthenticating && version < 1) return 'illegal-state';
    if (!(this.enabledMechanisms as readonly string[]).includes(mechanism)) return 'unsupported';
    if (reauthenticating && mechanism !== this.mechanism) return 'illegal-state';
    this.mechanism = mechanism as SaslMechanism;
    this.authenticator = mechanism === 'PLAIN' ? new PlainAuthenticator() : new ScramAuthenticator(mechanism as ScramMechanism);
    this.state = version === 0 ? 'raw' : 'authenticate';
    return 'ok';
  }

  /**
   * One token of the exchange. Resolves with the server's token and whether the exchange is
   * complete; rejects with AuthenticationError.
   */
  async authenticate(token: Buffer, image: MetadataImage, nowMs: () => number): Promise<{ response: Buffer; complete: boolean }> {
    if (this.authenticator === null || (this.state !== 'authenticate' && this.state !== 'raw')) throw new AuthenticationError('no SASL exchange in progress', null);
    const { response, principal } = await this.authenticator.step(token, image);
    if (principal === null) return { response, complete: false };
    if (this.principal !== null && this.principal !== principal) {
      throw new AuthenticationError(`re-authentication as ${principal} on a connection authenticated as ${this.principal}`, principal);
    }
    this.principal = principal;
    this.authenticator = null;
    this.state = 'authenticated';
    this.expiresAtMs = this.maxReauthMs > 0 ? nowMs() + this.maxReauthMs : null;
    return { response, complete: true };
  }

  /** The session lifetime to report in SaslAuthenticate v1+ (0: none). */
  sessionLifetimeMs(nowMs: number): number {
    return this.expiresAtMs === null ? 0 : Math.max(0, this.expiresAtMs - nowMs);
  }
}
