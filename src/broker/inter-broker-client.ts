/**
 * Requests from this broker to another (Kafka's NetworkClient / InterBrokerSendThread, for what
 * the transaction coordinator sends: WriteTxnMarkers to the leaders of the partitions of a
 * transaction).
 *
 * One connection per broker id, to the endpoint the metadata image registers for it (its
 * `inter.broker.listener.name`), opened on first use and again after a failure; requests are
 * pipelined and answers matched in order by correlation id. Every request has a deadline
 * (`request.timeout.ms` of the caller): when it passes, or the connection fails, the request
 * rejects with a retriable error and the connection is closed (the caller retries, as the
 * coordinator's marker phase does). The endpoint is looked up again on every connect, so a
 * broker that re-registers elsewhere is followed. PLAINTEXT only (no TLS or SASL on the
 * inter-broker listener yet).
 */
import { connect, type Socket } from 'node:net';
import { requestHeaderVersion, responseHeaderVersion } from '../protocol/apis.js';
import { API_BY_KEY, decodeResponseHeader, encodeRequestHeader } from '../protocol/messages/index.js';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';

/** A failed inter-broker request (unreachable broker, closed connection, deadline passed). */
export class InterBrokerError extends Error {
  readonly retriable = true;
  constructor(
    readonly code: 'NETWORK_EXCEPTION' | 'REQUEST_TIMED_OUT' | 'BROKER_NOT_AVAILABLE',
    message: string,
  ) {
    super(message);
    this.name = 'InterBrokerError';
  }
}

const MAX_FRAME_BYTES = 64 * 1024 * 1024;

interface Pending {
  correlationId: number;
  apiKey: number;
  version: number;
  resolve: (body: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class BrokerConnection {
  private readonly pending: Pending[] = [];
  private chunks: Buffer[] = [];
  private buffered = 0;
  private frameSize = -1;
  private failed: Error | null = null;
  readonly ready: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly onClose: () => void,
  ) {
    socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    this.ready.catch(() => undefined);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.fail(new InterBrokerError('NETWORK_EXCEPTION', e.message)));
    socket.on('close', () => this.fail(new InterBrokerError('NETWORK_EXCEPTION', 'connection closed')));
  }

  get closed(): boolean {
    return this.failed !== null;
  }

  fail(e: Error): void {
    if (this.failed === null) {
      this.failed = e;
      this.socket.destroy();
      this.onClose();
    }
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }

  send(frame: Buffer, p: Omit<Pending, 'timer'>, timeoutMs: number): void {
    if (this.failed !== null) {
      p.reject(this.failed);
      return;
    }
    const timer = setTimeout(() => this.fail(new InterBrokerError('REQUEST_TIMED_OUT', `no answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    this.pending.push({ ...p, timer });
    this.socket.write(frame);
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    for (;;) {
      if (this.frameSize < 0) {
        if (this.buffered < 4) return;
        this.frameSize = this.take(4).readInt32BE(0);
        if (this.frameSize < 0 || this.frameSize > MAX_FRAME_BYTES) {
          this.fail(new InterBrokerError('NETWORK_EXCEPTION', `response frame of ${this.frameSize} bytes`));
          return;
        }
      }
      if (this.buffered < this.frameSize) return;
      const frame = this.take(this.frameSize);
      this.frameSize = -1;
      this.onFrame(frame);
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return out;
  }

  private onFrame(frame: Buffer): void {
    const p = this.pending.shift();
    if (p === undefined) {
      this.fail(new InterBrokerError('NETWORK_EXCEPTION', 'a response nobody asked for'));
      return;
    }
    clearTimeout(p.timer);
    const r = new Reader(frame);
    const header = decodeResponseHeader(r, responseHeaderVersion(p.apiKey, p.version));
    if (header.correlationId !== p.correlationId) {
      p.reject(new InterBrokerError('NETWORK_EXCEPTION', `correlation id ${header.correlationId}, expected ${p.correlationId}`));
      this.fail(new InterBrokerError('NETWORK_EXCEPTION', 'responses out of order'));
      return;
    }
    const body = API_BY_KEY.get(p.apiKey)!.decodeResponse(r, p.version);
    if (!r.ok) p.reject(new InterBrokerError('NETWORK_EXCEPTION', `undecodable response: ${r.error}`));
    else p.resolve(body);
  }
}

export class InterBrokerClient {
  private readonly connections = new Map<number, BrokerConnection>();
  private correlationId = 0;
  private closed = false;

  constructor(
    private readonly clientId: string,
    /** The endpoint of a broker id now (from the metadata image), or undefined when unknown. */
    private readonly endpointOf: (brokerId: number) => { host: string; port: number } | undefined,
  ) {}

  /** Sends `body` as `apiKey`/`version` to broker `brokerId` and resolves with the decoded response. */
  async send<T>(brokerId: number, apiKey: number, version: number, body: unknown, timeoutMs: number): Promise<T> {
    if (this.closed) throw new InterBrokerError('BROKER_NOT_AVAILABLE', 'the inter-broker client is closed');
    const conn = this.connectionTo(brokerId);
    try {
      await conn.ready;
    } catch (e) {
      throw new InterBrokerError('BROKER_NOT_AVAILABLE', `cannot connect to broker ${brokerId}: ${(e as Error).message}`);
    }
    const api = API_BY_KEY.get(apiKey);
    if (api === undefined) throw new Error(`unknown api key ${apiKey}`);
    const correlationId = (this.correlationId = (this.correlationId + 1) & 0x7fffffff);
    const w = new Writer(256);
    w.int32(0);
    encodeRequestHeader(w, { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: this.clientId }, requestHeaderVersion(apiKey, version));
    (api.encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, version);
    const frame = w.toBuffer();
    frame.writeInt32BE(frame.length - 4, 0);
    return new Promise<T>((resolve, reject) => conn.send(frame, { correlationId, apiKey, version, resolve: resolve as (b: unknown) => void, reject }, timeoutMs));
  }

  private connectionTo(brokerId: number): BrokerConnection {
    const cur = this.connections.get(brokerId);
    if (cur !== undefined && !cur.closed) return cur;
    const ep = this.endpointOf(brokerId);
    if (ep === undefined) throw new InterBrokerError('BROKER_NOT_AVAILABLE', `broker ${brokerId} is not registered`);
    const conn: BrokerConnection = new BrokerConnection(connect({ host: ep.host, port: ep.port }), () => {
      if (this.connections.get(brokerId) === conn) this.connections.delete(brokerId);
    });
    this.connections.set(brokerId, conn);
    return conn;
  }

  close(): void {
    this.closed = true;
    for (const c of this.connections.values()) c.fail(new InterBrokerError('BROKER_NOT_AVAILABLE', 'the inter-broker client is closed'));
    this.connections.clear();
  }
}
