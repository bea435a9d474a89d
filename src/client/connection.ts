/**
 * One TCP connection to one broker: framing, ApiVersions negotiation, pipelined requests.
 *
 * - On connect the client sends ApiVersions (v3, falling back to v0 when the broker answers
 *   UNSUPPORTED_VERSION, as KIP-511 describes) and keeps the broker's range per api. Every later
 *   request uses `min(client max, broker max)` for its api, provided that is at least the
 *   client's minimum and the broker's minimum (`UNSUPPORTED_VERSION` otherwise).
 * - Requests are pipelined: many may be in flight; Kafka answers a connection's requests in the
 *   order they were sent, so responses are matched to the head of the in-flight queue and a
 *   correlation id out of order is a protocol error that closes the connection.
 * - A request that is not answered within its timeout fails the connection (every later
 *   response on it would be behind the missing one): all in-flight requests reject with a
 *   retriable error and the next request opens a new connection (see cluster.ts).
 * - Bounded: at most `maxInFlight` requests wait for their responses; more wait in `request()`
 *   for a slot (FIFO), which is the client's back-pressure towards one broker.
 */
import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { channel } from 'node:diagnostics_channel';
import { requestHeaderVersion, responseHeaderVersion } from '../protocol/apis.js';
import { ApiVersionsApi, decodeResponseHeader, encodeRequestHeader, SaslAuthenticateApi, SaslHandshakeApi, type ApiVersionsResponse } from '../protocol/messages/index.js';
import { ScramClient, ScramError } from '../protocol/scram.js';
import { ErrorCode } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';
import { ConnectionError, KafkaError, StrandError } from './errors.js';
import type { ClientLogger } from './logger.js';

/** The shape every generated `XxxApi` object has; the client needs only these members. */
export interface ApiDef<Req, Res> {
  readonly key: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly flexibleFrom: number;
  encodeRequest(w: Writer, v: Req, version: number): void;
  decodeResponse(r: Reader, version: number): Res;
}

/**
 * Versions this client speaks, per api key: [min, max]. The minimum is the oldest version whose
 * fields the client fills in correctly; the maximum is the newest whose semantics it handles
 * (for example Fetch stays below v13, which names topics by id).
 */
export const CLIENT_VERSIONS: ReadonlyMap<number, readonly [number, number]> = new Map<number, readonly [number, number]>([
  [0, [3, 11]], // Produce: magic-2 batches from v3
  [1, [4, 12]], // Fetch: by topic name
  [2, [1, 7]], // ListOffsets
  [3, [1, 12]], // Metadata
  [8, [2, 8]], // OffsetCommit
  [9, [1, 7]], // OffsetFetch: one group per request
  [10, [1, 3]], // FindCoordinator: one key per request
  [11, [2, 9]], // JoinGroup
  [12, [0, 4]], // Heartbeat
  [13, [0, 5]], // LeaveGroup
  [14, [0, 5]], // SyncGroup
  [15, [0, 5]], // DescribeGroups
  [16, [0, 4]], // ListGroups
  [18, [0, 3]], // ApiVersions
  [19, [2, 7]], // CreateTopics
  [20, [1, 6]], // DeleteTopics
  [21, [0, 2]], // DeleteRecords
  [22, [0, 4]], // InitProducerId
  [24, [0, 3]], // AddPartitionsToTxn: v4+ is the broker-to-broker form (KIP-890)
  [25, [0, 3]], // AddOffsetsToTxn
  [26, [0, 3]], // EndTxn: v4+ TRANSACTION_ABORTABLE, v5 transactions v2 (KIP-890)
  [27, [0, 1]], // WriteTxnMarkers: Admin.abortTransaction only
  [28, [0, 3]], // TxnOffsetCommit: v3 carries the group generation (KIP-447)
  [32, [1, 4]], // DescribeConfigs
  [33, [0, 2]], // AlterConfigs
  [35, [1, 4]], // DescribeLogDirs
  [37, [0, 3]], // CreatePartitions
  [42, [0, 2]], // DeleteGroups
  [43, [0, 2]], // ElectLeaders
  [44, [0, 1]], // IncrementalAlterConfigs
  [45, [0, 0]], // AlterPartitionReassignments
  [46, [0, 0]], // ListPartitionReassignments
  [47, [0, 0]], // OffsetDelete
  [60, [0, 1]], // DescribeCluster
  [61, [0, 0]], // DescribeProducers
  [65, [0, 0]], // DescribeTransactions
  [66, [0, 1]], // ListTransactions
  [10000, [0, 0]], // DescribeLogCleaner (Strand extension)
  [17, [1, 1]], // SaslHandshake: then SaslAuthenticate
  [36, [0, 2]], // SaslAuthenticate
  [29, [1, 3]], // DescribeAcls: with pattern types
  [30, [1, 3]], // CreateAcls
  [31, [1, 3]], // DeleteAcls
  [48, [0, 1]], // DescribeClientQuotas
  [49, [0, 1]], // AlterClientQuotas
  [50, [0, 0]], // DescribeUserScramCredentials
  [51, [0, 0]], // AlterUserScramCredentials
]);

/** node:diagnostics_channel channels the client publishes on (observability hooks). */
export const channels = {
  connect: channel('strand:client:connect'),
  disconnect: channel('strand:client:disconnect'),
  request: channel('strand:client:request'),
  retry: channel('strand:client:retry'),
  rebalance: channel('strand:client:rebalance'),
  commit: channel('strand:client:commit'),
  deadLetter: channel('strand:client:dead-letter'),
} as const;

export interface ConnectionOptions {
  host: string;
  port: number;
  clientId: string;
  /** Node id (or -1 for a bootstrap address), for messages and diagnostics. */
  nodeId?: number;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Requests awaiting a response before `request()` waits for a slot (default 64). */
  maxInFlight?: number;
  logger?: ClientLogger;
  /** TLS (the broker's SSL / SASL_SSL listener): true, or node:tls options (ca, cert, key, ...). */
  ssl?: boolean | TlsConnectionOptions;
  /** SASL (SASL_PLAINTEXT / SASL_SSL listeners), done right after ApiVersions. */
  sasl?: SaslOptions;
  /** Aborts `connect` while it is still connecting or negotiating (a broker that accepts but does not answer yet). */
  signal?: AbortSignal;
}

export interface SaslOptions {
  mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
  username: string;
  password: string;
}

interface InFlight {
  apiKey: number;
  version: number;
  correlationId: number;
  deadline: number;
  decode: ((r: Reader, version: number) => unknown) | null;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export interface RequestOptions {
  /** Forces a version (already negotiated by the caller). */
  version?: number;
  /** Added to the connection's request timeout (for long polls and JoinGroup). */
  extraTimeoutMs?: number;
}

export interface VersionRange {
  min: number;
  max: number;
}

/**
 * What every plaintext connection of the process reads into (Node's onread): a read is copied out
 * into its response's own buffer before the callback returns, so one buffer serves them all and
 * no read allocates (a fresh 64 KiB buffer per read cost page faults and GC work).
 */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

export class Connection {
  readonly host: string;
  readonly port: number;
  readonly nodeId: number;
  private readonly clientId: string;
  private readonly requestTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly logger: ClientLogger | undefined;
  private readonly inFlight: InFlight[] = [];
  private readonly slotWaiters: Array<() => void> = [];
  private nextCorrelationId = 0;
  /** The response size prefix while it arrives, and the response frame being filled. */
  private readonly sizePrefix = Buffer.alloc(4);
  private sizeFilled = 0;
  private frame: Buffer | null = null;
  private frameFilled = 0;
  private failure: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The broker's supported range per api key (from ApiVersions). */
  readonly brokerVersions = new Map<number, VersionRange>();

  private constructor(
    private readonly socket: Socket,
    opts: ConnectionOptions,
    readsShared: boolean,
  ) {
    this.host = opts.host;
    this.port = opts.port;
    this.nodeId = opts.nodeId ?? -1;
    this.clientId = opts.clientId;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30000;
    this.maxInFlight = opts.maxInFlight ?? 64;
    this.logger = opts.logger;
    socket.setNoDelay(true);
    // Plaintext sockets read into the shared buffer (connect's onread) and call consume themselves.
    if (!readsShared) socket.on('data', (d: Buffer) => this.consume(d));
    socket.on('error', (e) => this.fail(new ConnectionError(`connection to ${this.address} failed: ${e.message}`, e)));
    socket.on('close', () => this.fail(new ConnectionError(`connection to ${this.address} closed`)));
  }

  get address(): string {
    return `${this.host}:${this.port}${this.nodeId >= 0 ? ` (node ${this.nodeId})` : ''}`;
  }

  get closed(): boolean {
    return this.failure !== null;
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.inFlight.length;
  }

  /** Connects and negotiates versions with ApiVersions. */
  static async connect(opts: ConnectionOptions): Promise<Connection> {
    const timeoutMs = opts.connectTimeoutMs ?? 10000;
    // A plaintext socket reads into SHARED_READ_BUFFER; until the Connection exists (a broker never
    // speaks first, but nothing is dropped if one did) its bytes are kept aside.
    const sink: { consume: ((bytes: Buffer) => void) | null; early: Buffer[] } = { consume: null, early: [] };
    const onread = {
      buffer: SHARED_READ_BUFFER,
      callback: (n: number): boolean => {
        const bytes = SHARED_READ_BUFFER.subarray(0, n);
        if (sink.consume !== null) sink.consume(bytes);
        else sink.early.push(Buffer.from(bytes));
        return true;
      },
    };
    const tlsOptions = opts.ssl === true ? {} : opts.ssl === false || opts.ssl === undefined ? null : opts.ssl;
    const aborted = (): ConnectionError => new ConnectionError(`connecting to ${opts.host}:${opts.port} aborted`);
    if (opts.signal?.aborted) throw aborted();
    // One abort listener for the whole connect; `cancel` is what aborting means in each phase.
    let wasAborted = false;
    let cancel = (): void => {};
    const onAbort = (): void => {
      wasAborted = true;
      cancel();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let conn: Connection;
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s =
          tlsOptions === null
            ? connect({ host: opts.host, port: opts.port, onread })
            : connectTls({ host: opts.host, port: opts.port, ...(isIP(opts.host) === 0 ? { servername: opts.host } : {}), ...tlsOptions });
        const timer = setTimeout(() => {
          s.destroy();
          reject(new ConnectionError(`connecting to ${opts.host}:${opts.port} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        cancel = () => {
          clearTimeout(timer);
          s.destroy();
          reject(aborted());
        };
        s.once(tlsOptions === null ? 'connect' : 'secureConnect', () => {
          clearTimeout(timer);
          s.off('error', onError);
          resolve(s);
        });
        const onError = (e: Error): void => {
          clearTimeout(timer);
          reject(new ConnectionError(`cannot connect to ${opts.host}:${opts.port}: ${e.message}`, e));
        };
        s.once('error', onError);
      });
      if (wasAborted) {
        // Aborted after the socket connected, before this continuation ran.
        socket.destroy();
        throw aborted();
      }
      const c = new Connection(socket, opts, tlsOptions === null);
      conn = c;
      sink.consume = (bytes) => c.consume(bytes);
      for (const bytes of sink.early.splice(0)) c.consume(bytes);
      // Aborted while negotiating: closing fails the requests in flight at once.
      cancel = () => c.close();
      try {
        await c.negotiate();
        if (opts.sasl !== undefined) await c.authenticate(opts.sasl);
      } catch (e) {
        c.close();
        throw wasAborted ? aborted() : e;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (channels.connect.hasSubscribers) channels.connect.publish({ host: opts.host, port: opts.port, nodeId: conn.nodeId });
    opts.logger?.debug('connected', { broker: conn.address });
    return conn;
  }

  private async negotiate(): Promise<void> {
    let resp = await this.request(ApiVersionsApi, { clientSoftwareName: 'strand', clientSoftwareVersion: '0.1.0' }, { version: 3 });
    if (resp.errorCode === ErrorCode.UNSUPPORTED_VERSION) {
      // KIP-511: the broker answered in v0 format with its own ApiVersions range.
      const own = resp.apiKeys.find((k) => k.apiKey === ApiVersionsApi.key);
      const v = Math.max(0, Math.min(2, own?.maxVersion ?? 0));
      resp = await this.request(ApiVersionsApi, { clientSoftwareName: 'strand', clientSoftwareVersion: '0.1.0' }, { version: v });
    }
    if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, `ApiVersions from ${this.address}`);
    for (const k of resp.apiKeys) this.brokerVersions.set(k.apiKey, { min: k.minVersion, max: k.maxVersion });
  }

  /**
   * SaslHandshake v1 then SaslAuthenticate (PLAIN: one token; SCRAM: RFC 5802's two round trips,
   * checking the server's signature). Failures are KafkaErrors (SASL_AUTHENTICATION_FAILED,
   * UNSUPPORTED_SASL_MECHANISM); the broker closes the connection after them.
   */
  private async authenticate(sasl: SaslOptions): Promise<void> {
    const hs = await this.request(SaslHandshakeApi, { mechanism: sasl.mechanism }, { version: 1 });
    if (hs.errorCode !== ErrorCode.NONE) throw new KafkaError(hs.errorCode, `SASL ${sasl.mechanism} with ${this.address} (the broker offers ${hs.mechanisms.join(', ') || 'none'})`);
    const version = Math.min(2, this.brokerVersions.get(SaslAuthenticateApi.key)?.max ?? 0);
    const step = async (token: Buffer): Promise<Buffer> => {
      const r = await this.request(SaslAuthenticateApi, { authBytes: token }, { version });
      if (r.errorCode !== ErrorCode.NONE) throw new KafkaError(r.errorCode, r.errorMessage ?? `SASL authentication with ${this.address} failed`);
      return r.authBytes;
    };
    if (sasl.mechanism === 'PLAIN') {
      await step(Buffer.from(`\u0000${sasl.username}\u0000${sasl.password}`, 'utf8'));
      return;
    }
    const scram = new ScramClient(sasl.mechanism, sasl.username, sasl.password);
    try {
      const serverFirst = await step(scram.first());
      scram.verify(await step(await scram.final(serverFirst)));
    } catch (e) {
      if (e instanceof ScramError) throw new ConnectionError(`SCRAM with ${this.address}: ${e.message}`);
      throw e;
    }
  }

  /** True when the broker offers the api in a version the client speaks (at least `atLeast`). */
  supports(apiKey: number, atLeast = 0): boolean {
    const b = this.brokerVersions.get(apiKey);
    const c = CLIENT_VERSIONS.get(apiKey);
    if (b === undefined || c === undefined) return false;
    const v = Math.min(b.max, c[1]);
    return v >= Math.max(b.min, c[0], atLeast);
  }

  /** The version to use for an api: min(client max, broker max), checked against both minimums. */
  versionFor(apiKey: number, name = String(apiKey)): number {
    const b = this.brokerVersions.get(apiKey);
    const c = CLIENT_VERSIONS.get(apiKey);
    if (c === undefined) throw new StrandError('UNSUPPORTED_VERSION', `the client does not speak ${name}`);
    if (b === undefined) throw new StrandError('UNSUPPORTED_VERSION', `${this.address} does not offer ${name}`);
    const v = Math.min(b.max, c[1]);
    if (v < c[0] || v < b.min) {
      throw new StrandError('UNSUPPORTED_VERSION', `${name}: broker ${this.address} offers v${b.min}-${b.max}, the client speaks v${c[0]}-${c[1]}`);
    }
    return v;
  }

  /** Sends a request and resolves with its decoded response. */
  async request<Req, Res>(api: ApiDef<Req, Res>, body: Req, opts: RequestOptions = {}): Promise<Res> {
    if (this.failure) throw this.failure;
    if (this.inFlight.length >= this.maxInFlight) await this.waitForSlot();
    const version = opts.version ?? this.versionFor(api.key, api.name);
    return new Promise<Res>((resolve, reject) => {
      const correlationId = this.write(api, body, version);
      if (correlationId < 0) {
        reject(this.failure!);
        return;
      }
      this.inFlight.push({
        apiKey: api.key,
        version,
        correlationId,
        deadline: Date.now() + this.requestTimeoutMs + (opts.extraTimeoutMs ?? 0),
        decode: api.decodeResponse as (r: Reader, v: number) => unknown,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      this.armTimer();
      if (channels.request.hasSubscribers) channels.request.publish({ api: api.name, version, broker: this.address });
    });
  }

  /** Sends a request the broker does not answer (Produce with acks=0). */
  send<Req>(api: ApiDef<Req, unknown>, body: Req, version = this.versionFor(api.key, api.name)): void {
    if (this.failure) throw this.failure;
    this.write(api, body, version);
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private write<Req>(api: ApiDef<Req, unknown>, body: Req, version: number): number {
    if (this.failure) return -1;
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = (this.nextCorrelationId + 1) & 0x7fffffff;
    const w = new Writer(512);
    w.int32(0);
    encodeRequestHeader(w, { requestApiKey: api.key, requestApiVersion: version, correlationId, clientId: this.clientId }, requestHeaderVersion(api.key, version));
    api.encodeRequest(w, body, version);
    const size = w.length - 4;
    const chunks = w.finish() as Buffer[];
    chunks[0]!.writeInt32BE(size, 0);
    if (chunks.length === 1) this.socket.write(chunks[0]!);
    else {
      this.socket.cork();
      for (const c of chunks) this.socket.write(c);
      this.socket.uncork();
    }
    return correlationId;
  }

  /**
   * Bytes read from the socket: each response is copied into a buffer of its own (allocated once
   * its size is known), so `bytes` may be a view of the shared read buffer, which the next read
   * overwrites. A response is handled as soon as it is complete.
   */
  private consume(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length && this.failure === null) {
      if (this.frame === null) {
        const n = Math.min(4 - this.sizeFilled, bytes.length - at);
        bytes.copy(this.sizePrefix, this.sizeFilled, at, at + n);
        this.sizeFilled += n;
        at += n;
        if (this.sizeFilled < 4) return;
        this.sizeFilled = 0;
        const size = this.sizePrefix.readInt32BE(0);
        if (size < 0) {
          this.fail(new ConnectionError(`invalid response size ${size} from ${this.address}`));
          return;
        }
        try {
          this.frame = Buffer.allocUnsafe(size);
        } catch (e) {
          // Thrown from a socket callback it would take the process down: this connection fails instead.
          this.fail(new ConnectionError(`cannot allocate a ${size}-byte response from ${this.address}: ${(e as Error).message}`, e as Error));
          return;
        }
        this.frameFilled = 0;
      }
      const n = Math.min(this.frame.length - this.frameFilled, bytes.length - at);
      bytes.copy(this.frame, this.frameFilled, at, at + n);
      this.frameFilled += n;
      at += n;
      if (this.frameFilled === this.frame.length) {
        const frame = this.frame;
        this.frame = null;
        this.onFrame(frame);
      }
    }
  }

  private onFrame(frame: Buffer): void {
    const p = this.inFlight.shift();
    if (p === undefined) {
      this.fail(new ConnectionError(`unexpected response from ${this.address} with nothing in flight`));
      return;
    }
    const waiter = this.slotWaiters.shift();
    if (waiter) waiter();
    const r = new Reader(frame);
    const header = decodeResponseHeader(r, responseHeaderVersion(p.apiKey, p.version));
    if (header.correlationId !== p.correlationId) {
      const e = new ConnectionError(`correlation id ${header.correlationId} from ${this.address}, expected ${p.correlationId}`);
      p.reject(e);
      this.fail(e);
      return;
    }
    let resp: unknown;
    try {
      resp = p.decode!(r, p.version);
    } catch (e) {
      p.reject(new StrandError('CORRUPT_RESPONSE', `cannot decode api ${p.apiKey} v${p.version} response: ${(e as Error).message}`, { cause: e }));
      return;
    }
    if (!r.ok) {
      p.reject(new StrandError('CORRUPT_RESPONSE', `undecodable api ${p.apiKey} v${p.version} response from ${this.address}: ${r.error}`));
      return;
    }
    p.resolve(resp);
  }

  private armTimer(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      const head = this.inFlight[0];
      if (head === undefined) {
        clearInterval(this.timer!);
        this.timer = null;
        return;
      }
      if (Date.now() > head.deadline) {
        this.fail(new StrandError('REQUEST_TIMEOUT', `api ${head.apiKey} request to ${this.address} got no response in time`, { retriable: true, needsMetadataRefresh: true }));
      }
    }, 100);
    this.timer.unref();
  }

  private fail(e: Error): void {
    if (this.failure !== null) return;
    this.failure = e;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.socket.destroy();
    for (const p of this.inFlight.splice(0)) p.reject(e);
    for (const w of this.slotWaiters.splice(0)) w();
    if (channels.disconnect.hasSubscribers) channels.disconnect.publish({ host: this.host, port: this.port, nodeId: this.nodeId, error: e });
    this.logger?.debug('disconnected', { broker: this.address, reason: e.message });
  }

  close(): void {
    this.fail(new StrandError('CLIENT_CLOSED', `connection to ${this.address} closed by the client`));
  }
}
