/**
 * A minimal Kafka protocol connection built on the generated codecs: send a request of any api
 * and version, get the decoded response. For tests, benchmarks and tools — not a full client
 * (no metadata cache, no retries). Requests may be pipelined; responses are matched in order.
 */
import { connect, type OnReadOpts, type Socket } from 'node:net';
import { API_BY_KEY, ApiKey, encodeRequestHeader } from '../protocol/messages/index.js';
import { requestHeaderVersion, responseHeaderVersion } from '../protocol/apis.js';
import { decodeResponseHeader } from '../protocol/messages/index.js';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';

interface Pending {
  apiKey: number;
  version: number;
  correlationId: number;
  resolve: (body: Buffer) => void;
  reject: (e: Error) => void;
}

export class ProtocolConnection {
  private correlationId = 0;
  private readonly pending: Pending[] = [];
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Size of the frame being received, once its prefix has arrived. */
  private frameSize = -1;
  private closedError: Error | null = null;

  private constructor(
    readonly socket: Socket,
    readonly clientId: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    const fail = (e: Error): void => {
      this.closedError ??= e;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /**
   * `onread` (Node's net option): reads go into that one buffer and to its callback instead of
   * 'data' events with a fresh buffer each, so the request / response helpers below are unusable.
   */
  static connect(host: string, port: number, clientId = 'strand-test', onread?: OnReadOpts): Promise<ProtocolConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port, ...(onread !== undefined ? { onread } : {}) }, () => {
        s.off('error', reject);
        resolve(new ProtocolConnection(s, clientId));
      });
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    for (;;) {
      if (this.frameSize < 0) {
        if (this.buffered < 4) return;
        this.frameSize = this.take(4).readInt32BE(0);
      }
      if (this.buffered < this.frameSize) return;
      const frame = this.take(this.frameSize);
      this.frameSize = -1;
      this.onFrame(frame);
    }
  }

  /** Removes n buffered bytes, copying only when they span chunks (once per frame, not per chunk). */
  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }

  private onFrame(frame: Buffer): void {
    const p = this.pending.shift();
    if (p === undefined) return;
    const r = new Reader(frame);
    const header = decodeResponseHeader(r, responseHeaderVersion(p.apiKey, p.version));
    if (header.correlationId !== p.correlationId) {
      p.reject(new Error(`correlation id ${header.correlationId}, expected ${p.correlationId}`));
      return;
    }
    p.resolve(frame.subarray(r.offset));
  }

  /** Encodes a request frame (size prefix included) without sending it. */
  encodeRequest(apiKey: number, version: number, body: unknown, correlationId = this.correlationId++): Buffer {
    const api = API_BY_KEY.get(apiKey);
    if (api === undefined) throw new Error(`unknown api key ${apiKey}`);
    const w = new Writer(256);
    w.int32(0);
    encodeRequestHeader(w, { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: this.clientId }, requestHeaderVersion(apiKey, version));
    (api.encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, version);
    const out = w.toBuffer();
    out.writeInt32BE(out.length - 4, 0);
    return out;
  }

  /** Sends a request and resolves with the raw response body (after the header). */
  sendRaw(apiKey: number, version: number, body: unknown): Promise<Buffer> {
    if (this.closedError) return Promise.reject(this.closedError);
    const correlationId = this.correlationId++;
    const frame = this.encodeRequest(apiKey, version, body, correlationId);
    return new Promise((resolve, reject) => {
      this.pending.push({ apiKey, version, correlationId, resolve, reject });
      this.socket.write(frame);
    });
  }

  /** Sends a request and decodes the response with the generated codec. */
  async send<T = any>(apiKey: number, version: number, body: unknown): Promise<T> {
    const raw = await this.sendRaw(apiKey, version, body);
    const api = API_BY_KEY.get(apiKey)!;
    const r = new Reader(raw);
    const resp = api.decodeResponse(r, version) as T;
    if (!r.ok) throw new Error(`undecodable ${api.name} v${version} response: ${r.error}`);
    return resp;
  }

  /** Sends a request that gets no response (an acks=0 produce). */
  sendNoResponse(apiKey: number, version: number, body: unknown): void {
    this.socket.write(this.encodeRequest(apiKey, version, body));
  }

  /** Writes raw bytes (for fuzzing and framing tests). */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

export { ApiKey };
