/**
 * One client connection: framing, dispatch, and responses in request order.
 *
 * Frames are an INT32 size and that many bytes. A size below zero or above
 * `socket.request.max.bytes`, an undecodable header or body, an unknown api key, or a version the
 * broker does not answer (other than ApiVersions, which gets KIP-511's v0 answer) closes this
 * connection with a log line; the broker keeps serving everyone else.
 *
 * Requests are handled as they arrive (a produce's appends start in arrival order), but responses
 * leave strictly in request order: each request takes a slot, and slots are written from the
 * head as they complete. An acks=0 produce takes a slot that writes nothing.
 *
 * Back-pressure: the socket stops being read while MAX_IN_FLIGHT requests are in flight on it or
 * while more than MAX_PENDING_RESPONSE_BYTES of responses wait to be sent, so a client that stops
 * reading cannot make the broker buffer without bound. Fetch records of 256 KiB and more are
 * streamed from the segment file (FileRecords), so a connection holds at most MAX_IN_FLIGHT
 * requests (each ≤ socket.request.max.bytes), as many small responses, and the unsent bytes.
 * Kafka goes further and handles one request per connection at a time; a small window keeps
 * pipelined produces (librdkafka sends up to 5) appending and fsyncing together.
 */
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { ApiKey, ApiVersionsApi } from '../protocol/messages/index.js';
import { readRequestHeader, writeResponseHeader } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import { isLazyRecords, Writer, type Chunk, type LazyRecords } from '../protocol/writer.js';
import { peerGone, socketFd, type Sendfile } from './sendfile.js';
import type { Broker } from './broker.js';
import { apiVersionsResponse } from './handlers/api-versions.js';
import { HANDLER_BY_KEY } from './handlers/index.js';
import type { ConnectionSecurity, RequestContext } from './handlers/handler.js';
import type { Logger } from './logger.js';
import type { SecurityProtocol } from './config.js';
import { AuthenticationError, SaslServerSession, type SaslMechanism } from './security/sasl.js';
import { authenticationFailed } from './security/session.js';
import { throttleFor } from './security/quota-enforcement.js';

interface Slot {
  done: boolean;
  chunks: Chunk[] | null;
}

/** Lazy records (segment slices) are streamed in pieces of this size, one read ahead. */
const STREAM_PIECE_BYTES = 1024 * 1024;

/**
 * Full-size pieces are reused once the socket has handed them to the kernel (the write
 * callback), so streaming a fetch does not churn the garbage collector with fresh megabytes.
 */
const piecePool: Buffer[] = [];
const PIECE_POOL_MAX = 16;
const takePiece = (len: number): Buffer => (len === STREAM_PIECE_BYTES ? (piecePool.pop() ?? Buffer.allocUnsafe(len)) : Buffer.allocUnsafe(len));
const returnPiece = (buf: Buffer): void => {
  if (buf.length === STREAM_PIECE_BYTES && piecePool.length < PIECE_POOL_MAX) piecePool.push(buf);
};

/**
 * Pooled frame buffers for large Produce requests, by power-of-two size class. Only Produce
 * frames are pooled: its handler keeps no reference to the request once it has answered (the log
 * has written the records by then), unlike, say, JoinGroup, whose member metadata the group
 * keeps. The pool is bounded; buffers beyond it are left to the GC.
 */
const FRAME_POOL_MIN_BYTES = 64 * 1024;
const FRAME_POOL_MAX_CLASS_BYTES = 16 * 1024 * 1024;
const FRAME_POOL_MAX_BYTES = 64 * 1024 * 1024;
const framePool = new Map<number, Buffer[]>();
let framePoolBytes = 0;
const sizeClass = (n: number): number => 2 ** Math.ceil(Math.log2(n));
function takeFrameBuffer(size: number): Buffer | null {
  const cls = sizeClass(size);
  if (cls > FRAME_POOL_MAX_CLASS_BYTES) return null;
  const free = framePool.get(cls)?.pop();
  if (free !== undefined) {
    framePoolBytes -= cls;
    return free;
  }
  return Buffer.allocUnsafeSlow(cls);
}
function returnFrameBuffer(buf: Buffer): void {
  if (framePoolBytes + buf.length > FRAME_POOL_MAX_BYTES) return;
  let list = framePool.get(buf.length);
  if (list === undefined) framePool.set(buf.length, (list = []));
  list.push(buf);
  framePoolBytes += buf.length;
}

/**
 * Plaintext connections read into one buffer shared by the whole process instead of a fresh
 * 64 KiB buffer per read, and large Produce frames are copied from it straight into pooled frame
 * buffers: a broker taking 1 MiB batches at 400 MB/s otherwise allocates 400 MB/s of socket
 * buffers, and V8 answered that external memory with a mark-compact every 50-70 ms (a third of
 * a core on this 2-core machine). Node offers this as the `onread` option of client sockets only;
 * an accepted socket takes it through the same slots (`kBuffer`, `kBufferCb`, `useUserBuffer`),
 * which Node has kept unchanged since v12. Without them (or on TLS sockets) the connection falls
 * back to 'data' events. One buffer serves every connection because Node hands each read to its
 * callback synchronously, and the callback copies out whatever it keeps.
 */
const READ_BUFFER_BYTES = 256 * 1024;
let sharedReadBuffer: Buffer | null = null;

/**
 * Frame buffers taken for frames still arriving, across the process. A frame's buffer is taken
 * when its size prefix arrives (as Kafka's NetworkReceive does), so without a bound a client could
 * make the broker hold 16 MiB for every 6 bytes it sends; past this, frames are framed from
 * copies of what has actually arrived.
 */
const MAX_ASSEMBLING_BYTES = 64 * 1024 * 1024;
let assemblingBytes = 0;

function readIntoSharedBuffer(socket: Socket, onRead: (buf: Buffer, n: number) => void): boolean {
  if (socket instanceof TLSSocket || process.env['STRAND_SOCKET_DATA_EVENTS'] === '1') return false;
  const symbols = Object.getOwnPropertySymbols(socket);
  const kBuffer = symbols.find((x) => x.description === 'kBuffer');
  const kBufferCb = symbols.find((x) => x.description === 'kBufferCb');
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: unknown } })._handle;
  if (kBuffer === undefined || kBufferCb === undefined || typeof handle?.useUserBuffer !== 'function') return false;
  sharedReadBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[kBuffer] = sharedReadBuffer;
  slots[kBufferCb] = (n: number, buf: Buffer): void => onRead(buf, n);
  (handle.useUserBuffer as (b: Buffer) => void).call(handle, sharedReadBuffer);
  return true;
}

/** Requests handled concurrently on one connection (responses still leave in order). */
export const MAX_IN_FLIGHT = 64;

/** Response bytes handed to a socket but not yet sent, above which the connection stops reading. */
export const MAX_PENDING_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface ConnectionLimits {
  maxRequestBytes: number;
  maxPendingResponseBytes: number;
  /** Zero-copy sending of segment slices, when the native addon is available and enabled. */
  sendfile: Sendfile | null;
}

/**
 * sendfile calls in flight across the process: each holds a libuv pool thread (shared with file
 * I/O) while it runs; a connection that finds them all busy copies its next piece instead.
 */
const MAX_ACTIVE_SENDFILES = 2;
let activeSendfiles = 0;
/** How long a sendfile waits for a full socket to drain before handing back a short count. */
const SENDFILE_POLL_MS = 20;
const EMPTY = Buffer.alloc(0);

export class Connection {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** A large Produce frame being copied from the shared read buffer into its pooled buffer. */
  private assembly: { pooled: Buffer; size: number; filled: number } | null = null;
  /** An assembled frame waiting for room to be handled; it comes before everything in `pending`. */
  private readyFrame: { pooled: Buffer; size: number } | null = null;
  private readonly slots: Slot[] = [];
  private inFlight = 0;
  private processing = false;
  private writing = false;
  /** The running pump, while it streams. */
  private pumping: Promise<void> | null = null;
  private readEnded = false;
  private closed = false;
  private readonly abort = new AbortController();
  private readonly settled = new Set<Promise<void>>();

  /** SASL state on SASL listeners. */
  private readonly sasl: SaslServerSession | null;
  /** Quota throttling (KIP-219): nothing more is read from this client before this time. */
  private mutedUntilMs = 0;
  private muteTimer: NodeJS.Timeout | null = null;
  /** Set by a request whose answer must be the last on this connection (failed authentication). */
  private closeAfterReason: string | null = null;
  readonly security: ConnectionSecurity;

  constructor(
    readonly id: string,
    private readonly socket: Socket,
    private readonly broker: Broker,
    private readonly logger: Logger,
    private readonly limits: ConnectionLimits,
    listener: { name: string; securityProtocol: SecurityProtocol },
    /** The principal of the TLS client certificate, else User:ANONYMOUS. */
    tlsPrincipal: string,
  ) {
    const saslListener = listener.securityProtocol === 'SASL_PLAINTEXT' || listener.securityProtocol === 'SASL_SSL';
    const sasl = saslListener
      ? new SaslServerSession(
          broker.config.forListener(listener.name, 'sasl.enabled.mechanisms')!.split(',') as SaslMechanism[],
          Number(broker.config.forListener(listener.name, 'connections.max.reauth.ms')),
        )
      : null;
    this.sasl = sasl;
    const self = this;
    this.security = {
      listener: listener.name,
      securityProtocol: listener.securityProtocol,
      get principal(): string {
        return sasl === null ? tlsPrincipal : (sasl.principal ?? 'User:ANONYMOUS');
      },
      // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d; ACL hosts name it a.b.c.d.
      clientHost: (socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, ''),
      sasl,
      closeAfterResponse(reason: string): void {
        self.closeAfterReason ??= reason;
      },
    };
    socket.setNoDelay(true);
    if (!readIntoSharedBuffer(socket, (buf, n) => this.onRead(buf, n))) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.updateFlow());
    socket.on('error', (e) => this.logger.debug('connection error', { connection: id, error: e }));
    socket.on('close', () => this.onClose());
    // A client may half-close after its last request (the server allows half-open sockets):
    // answer what it sent, then close.
    socket.on('end', () => {
      this.readEnded = true;
      this.endIfIdle();
    });
  }

  /** Resolves when every request received so far has been answered and written (or the connection closed). */
  async drain(): Promise<void> {
    while (this.settled.size > 0) await Promise.allSettled([...this.settled]);
    while (this.pumping !== null) await this.pumping;
  }

  /** Ends waits (long-polling fetches answer now) and closes once in-flight responses are written. */
  async shutdown(): Promise<void> {
    this.abort.abort();
    await this.drain();
    this.socket.end();
  }

  /** Closes now, dropping unsent responses (shutdown, or a failed request). */
  destroy(reason: string, fields: Record<string, unknown> = {}, level: 'warn' | 'debug' = 'warn'): void {
    if (this.closed) return;
    this.logger[level](`closing connection: ${reason}`, { connection: this.id, remote: this.socket.remoteAddress, ...fields });
    this.closed = true;
    this.abort.abort();
    this.socket.destroy();
  }

  /**
   * Bad input: read nothing more from this client, answer the requests that came before it
   * (as Kafka, which handles one request at a time, would have), then close.
   */
  private reject(reason: string, fields: Record<string, unknown> = {}): void {
    if (this.closed || this.readEnded) return;
    this.logger.warn(`closing connection: ${reason}`, { connection: this.id, remote: this.socket.remoteAddress, ...fields });
    this.readEnded = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.pause();
    this.endIfIdle();
  }

  private onClose(): void {
    this.closed = true;
    if (this.assembly !== null) {
      assemblingBytes -= this.assembly.pooled.length;
      returnFrameBuffer(this.assembly.pooled);
    }
    if (this.readyFrame !== null) returnFrameBuffer(this.readyFrame.pooled);
    this.assembly = null;
    this.readyFrame = null;
    if (this.muteTimer !== null) clearTimeout(this.muteTimer);
    for (const slot of this.slots) if (slot.chunks) releaseAll(slot.chunks);
    this.abort.abort();
    this.pending = [];
    this.pendingBytes = 0;
    this.broker.connectionClosed(this);
  }

  /**
   * `n` bytes read into the shared buffer: the bytes of a large Produce frame go straight into its
   * pooled frame buffer; everything else is copied into a buffer of its own and framed as 'data'
   * chunks are. Nothing may keep a reference to `buf`.
   */
  private onRead(buf: Buffer, n: number): void {
    let at = 0;
    while (at < n && !this.closed && !this.readEnded) {
      const a = this.assembly;
      if (a !== null) {
        const k = Math.min(n - at, a.size - a.filled);
        buf.copy(a.pooled, a.filled, at, at + k);
        a.filled += k;
        at += k;
        if (a.filled === a.size) {
          this.assembly = null;
          assemblingBytes -= a.pooled.length;
          this.readyFrame = { pooled: a.pooled, size: a.size };
          this.processFrames();
        }
        continue;
      }
      // The next frame starts here, or its first bytes (fewer than 6) are buffered: a large
      // Produce frame is assembled in place; a small frame that ends in this read gets a copy of
      // its own, so the frame after it starts on this path again.
      const have = this.pendingBytes;
      if (this.readyFrame === null && have < 6 && n - at >= 6 - have && !this.hasCompleteFrame()) {
        const head = have === 0 ? buf.subarray(at, at + 6) : Buffer.concat([...this.pending, buf.subarray(at, at + 6 - have)]);
        const size = head.readInt32BE(0);
        if (size >= FRAME_POOL_MIN_BYTES && size <= this.limits.maxRequestBytes && head.readInt16BE(4) === ApiKey.Produce && assemblingBytes + sizeClass(size) <= MAX_ASSEMBLING_BYTES) {
          const pooled = takeFrameBuffer(size);
          if (pooled !== null) {
            assemblingBytes += pooled.length;
            const early = Math.max(0, have - 4); // frame bytes already buffered, after the size
            head.copy(pooled, 0, 4, 4 + early);
            this.pending = [];
            this.pendingBytes = 0;
            this.assembly = { pooled, size, filled: early };
            at += Math.max(0, 4 - have);
            continue;
          }
        }
        if (have === 0 && size >= 0 && size <= this.limits.maxRequestBytes && n - at >= 4 + size) {
          const frame = Buffer.allocUnsafe(4 + size);
          buf.copy(frame, 0, at, at + 4 + size);
          at += 4 + size;
          this.onData(frame);
          continue;
        }
      }
      // Anything else is framed from a copy, up to the next read.
      const chunk = Buffer.allocUnsafe(n - at);
      buf.copy(chunk, 0, at, n);
      at = n;
      this.onData(chunk);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.readEnded) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.processFrames();
  }

  private busy(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT || this.socket.writableLength > this.limits.maxPendingResponseBytes || (this.mutedUntilMs > 0 && Date.now() < this.mutedUntilMs);
  }

  /** Stops reading from this client for `ms` (its quota is exceeded); the response already sent says so. */
  private mute(ms: number): void {
    const until = Date.now() + ms;
    if (until <= this.mutedUntilMs) return;
    this.mutedUntilMs = until;
    if (this.muteTimer !== null) clearTimeout(this.muteTimer);
    this.muteTimer = setTimeout(() => {
      this.muteTimer = null;
      this.mutedUntilMs = 0;
      this.updateFlow();
    }, ms);
    this.updateFlow();
  }

  /** Handles every complete buffered frame while there is room; never re-entered. */
  private processFrames(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      this.processBuffered();
    } finally {
      this.processing = false;
    }
    this.updateFlow();
  }

  private processBuffered(): void {
    const ready = this.readyFrame;
    if (ready !== null) {
      if (this.closed || this.readEnded || this.busy()) return;
      this.readyFrame = null;
      this.onFrame(ready.pooled.subarray(0, ready.size), ready.pooled);
    }
    while (!this.closed && !this.readEnded && this.pendingBytes >= 4 && !this.busy()) {
      const size = this.peekInt32();
      if (size < 0 || size > this.limits.maxRequestBytes) {
        this.reject(size < 0 ? 'negative frame size' : 'frame larger than socket.request.max.bytes', { size, limit: this.limits.maxRequestBytes });
        return;
      }
      if (this.pendingBytes < 4 + size) break;
      // Large Produce frames are assembled in pooled buffers: fresh megabytes per request would
      // page-fault on first touch and push V8 into a GC for external memory every few requests.
      const pooled = size >= FRAME_POOL_MIN_BYTES && this.peekInt16(4) === ApiKey.Produce ? takeFrameBuffer(size) : null;
      if (pooled !== null) {
        this.skip(4);
        this.takeInto(pooled, size);
        this.onFrame(pooled.subarray(0, size), pooled);
      } else {
        this.onFrame(this.take(4 + size, 4), null);
      }
    }
  }

  private hasCompleteFrame(): boolean {
    if (this.readyFrame !== null) return true;
    if (this.pendingBytes < 4) return false;
    const size = this.peekInt32();
    return size < 0 || size > this.limits.maxRequestBytes || this.pendingBytes >= 4 + size;
  }

  private peekInt32(): number {
    const first = this.pending[0]!;
    if (first.length >= 4) return first.readInt32BE(0);
    const head = Buffer.concat(this.pending, 4);
    return head.readInt32BE(0);
  }

  /** The int16 at byte `at` of the buffered input (the caller knows at + 2 bytes are buffered). */
  private peekInt16(at: number): number {
    const first = this.pending[0]!;
    if (first.length >= at + 2) return first.readInt16BE(at);
    return Buffer.concat(this.pending, at + 2).readInt16BE(at);
  }

  /** Drops the next n buffered bytes. */
  private skip(n: number): void {
    this.takeInto(null, n);
  }

  /** Moves the next n buffered bytes into the start of `out` (or drops them, with null). */
  private takeInto(out: Buffer | null, n: number): void {
    let at = 0;
    while (at < n) {
      const c = this.pending[0]!;
      const part = Math.min(c.length, n - at);
      out?.set(c.subarray(0, part), at);
      at += part;
      if (part === c.length) this.pending.shift();
      else this.pending[0] = c.subarray(part);
    }
    this.pendingBytes -= n;
  }

  /** Removes the next n buffered bytes and returns them from byte `from` on, without copying when one chunk holds them. */
  private take(n: number, from = 0): Buffer {
    const first = this.pending[0]!;
    if (first.length < n) {
      const out = Buffer.allocUnsafe(n);
      this.takeInto(out, n);
      return from === 0 ? out : out.subarray(from);
    }
    const out = first.subarray(from, n);
    if (first.length === n) this.pending.shift();
    else this.pending[0] = first.subarray(n);
    this.pendingBytes -= n;
    return out;
  }

  /**
   * Decodes and dispatches one request. `pooled` is the pooled buffer holding the frame, if any:
   * it goes back to the pool once the handler has finished with the request (a Produce handler
   * returns only after its appends are written), or is left to the GC when anything went wrong.
   */
  private onFrame(frame: Buffer, pooled: Buffer | null): void {
    if (this.sasl !== null && this.sasl.state === 'raw') {
      this.onRawSaslToken(this.sasl, frame);
      return;
    }
    const r = new Reader(frame);
    const header = readRequestHeader(r);
    if (!r.ok) {
      this.reject('undecodable request header', { error: r.error });
      return;
    }
    const apiKey = header.requestApiKey;
    const version = header.requestApiVersion;
    const handler = HANDLER_BY_KEY.get(apiKey);
    if (handler === undefined) {
      this.reject('unknown api key', { apiKey, correlationId: header.correlationId, clientId: header.clientId });
      return;
    }
    if (version < handler.minVersion || version > handler.maxVersion) {
      if (apiKey === ApiKey.ApiVersions) {
        // KIP-511: answer in v0 with the supported ranges so the client can retry lower.
        const slot = this.newSlot();
        this.complete(slot, this.encode(ApiVersionsApi.encodeResponse, apiVersionsResponse(ErrorCode.UNSUPPORTED_VERSION, this.broker.handlers), apiKey, 0, header.correlationId));
        return;
      }
      this.reject('unsupported api version', { api: handler.api.name, version, min: handler.minVersion, max: handler.maxVersion, clientId: header.clientId });
      return;
    }
    if (this.sasl !== null && apiKey !== ApiKey.SaslHandshake && apiKey !== ApiKey.SaslAuthenticate) {
      if (!this.sasl.authenticated && apiKey !== ApiKey.ApiVersions) {
        this.reject('request before SASL authentication', { api: handler.api.name, clientId: header.clientId });
        return;
      }
      if (this.sasl.authenticated && this.sasl.expired(Date.now())) {
        this.reject('SASL session expired without re-authentication (connections.max.reauth.ms)', { api: handler.api.name, clientId: header.clientId, principal: this.sasl.principal });
        return;
      }
    }
    if (CAPTURE_DIR !== undefined) captureFrame(frame, handler.api.name, version, header.clientId);
    const body = handler.api.decodeRequest(r, version);
    if (!r.ok) {
      this.reject('undecodable request body', { api: handler.api.name, version, error: r.error, clientId: header.clientId });
      return;
    }
    const slot = this.newSlot();
    const ctx: RequestContext = {
      broker: this.broker,
      header,
      version,
      clientId: header.clientId,
      connectionId: this.id,
      logger: this.logger,
      signal: this.abort.signal,
      security: this.security,
    };
    const work = (async () => {
      try {
        const started = performance.now();
        const response = await handler.handle(body, ctx);
        const elapsedMs = performance.now() - started;
        this.broker.metrics.observeRequest(handler.api.name, elapsedMs / 1000);
        const throttleMs = throttleFor(this.broker, this.security.principal, header.clientId ?? '', apiKey, body, response, elapsedMs);
        if (throttleMs > 0) {
          if (response !== null && typeof (response as { throttleTimeMs?: unknown }).throttleTimeMs === 'number') {
            const r = response as { throttleTimeMs: number };
            r.throttleTimeMs = Math.max(r.throttleTimeMs, throttleMs);
          }
          this.mute(throttleMs);
        }
        // The request (and the quota's look at its records above) is done with the frame.
        if (pooled !== null) returnFrameBuffer(pooled);
        this.complete(slot, response === null ? null : this.encode(handler.api.encodeResponse, response, apiKey, version, header.correlationId));
        if (this.closeAfterReason !== null) this.reject(this.closeAfterReason, { api: handler.api.name, clientId: header.clientId });
      } catch (e) {
        this.logger.error('request failed', { api: handler.api.name, version, correlationId: header.correlationId, error: e, stack: e instanceof Error ? e.stack : undefined });
        this.destroy('request failed', { api: handler.api.name });
        this.complete(slot, null);
      }
    })();
    this.settled.add(work);
    void work.finally(() => this.settled.delete(work));
  }

  /**
   * A bare SASL token after SaslHandshake v0 (no Kafka header): answered with the server's token
   * behind an INT32 size (PLAIN's empty answer is just the size 0). A failure closes the
   * connection after the delay, without an answer: raw SASL has no way to carry an error.
   */
  private onRawSaslToken(sasl: SaslServerSession, token: Buffer): void {
    const slot = this.newSlot();
    const work = (async () => {
      try {
        const { response } = await sasl.authenticate(token, this.broker.image, Date.now);
        const size = Buffer.alloc(4);
        size.writeInt32BE(response.length, 0);
        this.complete(slot, [size, response]);
      } catch (e) {
        if (!(e instanceof AuthenticationError)) {
          this.logger.error('SASL authentication failed unexpectedly', { error: e, stack: e instanceof Error ? e.stack : undefined });
        } else {
          await authenticationFailed({ broker: this.broker, logger: this.logger, signal: this.abort.signal, connectionId: this.id, security: this.security }, sasl.mechanism ?? 'unknown', e);
        }
        this.complete(slot, null);
        this.reject('authentication failed');
      }
    })();
    this.settled.add(work);
    void work.finally(() => this.settled.delete(work));
  }

  private encode<T>(encodeBody: (w: Writer, v: T, version: number) => void, body: T, apiKey: number, version: number, correlationId: number): Chunk[] {
    const w = new Writer(256);
    w.int32(0); // size, patched below
    writeResponseHeader(w, apiKey, version, correlationId);
    encodeBody(w, body, version);
    const chunks = w.finish();
    const total = chunks.reduce((n, c) => n + c.length, 0);
    (chunks[0] as Buffer).writeInt32BE(total - 4, 0);
    return chunks;
  }

  private newSlot(): Slot {
    const slot: Slot = { done: false, chunks: null };
    this.slots.push(slot);
    this.inFlight++;
    return slot;
  }

  private complete(slot: Slot, chunks: Chunk[] | null): void {
    slot.done = true;
    slot.chunks = chunks;
    this.inFlight--;
    if (!this.writing) {
      const run = this.pump().finally(() => {
        if (this.pumping === run) this.pumping = null;
      });
      this.pumping = run;
    }
  }

  /**
   * Writes finished responses from the head of the queue, in order. Responses in memory go out
   * in one corked write; a response with lazy records streams them, so the next response waits
   * until its predecessor is on the socket.
   */
  private async pump(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.slots.length > 0 && this.slots[0]!.done) {
        const s = this.slots.shift()!;
        if (s.chunks === null) continue;
        if (this.closed) {
          releaseAll(s.chunks);
          continue;
        }
        if (s.chunks.every((c): c is Buffer => Buffer.isBuffer(c))) {
          this.socket.cork();
          for (const c of s.chunks) this.socket.write(c);
          // Keep writing whatever else is ready before uncorking: one syscall for a burst.
          while (this.slots.length > 0 && this.slots[0]!.done && (this.slots[0]!.chunks ?? []).every((c) => Buffer.isBuffer(c))) {
            for (const c of this.slots.shift()!.chunks ?? []) this.socket.write(c as Buffer);
          }
          this.socket.uncork();
          continue;
        }
        for (let i = 0; i < s.chunks.length; i++) {
          const c = s.chunks[i]!;
          if (this.closed) {
            releaseAll(s.chunks.slice(i));
            break;
          }
          if (Buffer.isBuffer(c)) this.socket.write(c);
          else await this.stream(c);
        }
      }
    } catch (e) {
      this.destroy('failed to send a response', { error: e });
    } finally {
      this.writing = false;
    }
    this.updateFlow();
    this.endIfIdle();
  }

  /** Sends lazy records (a segment slice): with sendfile when it can, else copied in pieces. */
  private async stream(records: LazyRecords): Promise<void> {
    try {
      const fd = this.limits.sendfile !== null && records.fileRegion !== undefined ? socketFd(this.socket) : -1;
      if (fd >= 0) await this.streamZeroCopy(records, this.limits.sendfile!, fd);
      else await this.streamCopied(records);
    } finally {
      records.release();
    }
  }

  /**
   * sendfile from the segment to the socket once everything written before it has reached the
   * kernel. When the socket stays full (a slow reader) or the pool's sendfile slots are taken,
   * one piece goes through the socket's own write queue, which waits for the reader in libuv
   * rather than in a pool thread; then sendfile resumes.
   */
  private async streamZeroCopy(records: LazyRecords, sendfile: Sendfile, socketFd: number): Promise<void> {
    const region = records.fileRegion!();
    let from = 0;
    while (from < records.length && !this.closed) {
      await this.flushed();
      if (this.closed) return;
      if (activeSendfiles < MAX_ACTIVE_SENDFILES) {
        activeSendfiles++;
        try {
          from += await sendfile(socketFd, region.fd, region.position + from, records.length - from, SENDFILE_POLL_MS);
        } catch (e) {
          if (!peerGone(e)) throw e;
          this.destroy('client went away during a fetch response', { error: (e as Error).message }, 'debug');
          return;
        } finally {
          activeSendfiles--;
        }
        if (from >= records.length) return;
      }
      const len = Math.min(STREAM_PIECE_BYTES, records.length - from);
      const piece = takePiece(len);
      const n = await records.readInto(piece, from, len);
      if (n !== len) throw new Error(`short read of records: ${n} of ${len} bytes`);
      from += len;
      if (!this.socket.write(piece, () => returnPiece(piece)) && !this.closed) await this.drained();
    }
  }

  /** Resolves once every byte written so far has been handed to the kernel (or the socket closed). */
  private flushed(): Promise<void> {
    if (this.socket.writableLength === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.write(EMPTY, () => resolve()));
  }

  /** Streams lazy records in pieces, reading the next piece while the current one is sent. */
  private async streamCopied(records: LazyRecords): Promise<void> {
    const read = async (from: number): Promise<Buffer> => {
      const len = Math.min(STREAM_PIECE_BYTES, records.length - from);
      const buf = takePiece(len);
      const n = await records.readInto(buf, from, len);
      // The length is already on the wire: a short read cannot be papered over.
      if (n !== len) throw new Error(`short read of records: ${n} of ${len} bytes`);
      return buf;
    };
    let from = 0;
    let next = read(0);
    while (from < records.length && !this.closed) {
      const piece = await next;
      from += piece.length;
      if (from < records.length) next = read(from);
      if (!this.socket.write(piece, () => returnPiece(piece)) && !this.closed) await this.drained();
    }
    if (from < records.length) await next.then(returnPiece, () => undefined);
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private endIfIdle(): void {
    if (this.readEnded && !this.closed && !this.writing && this.slots.length === 0 && !this.hasCompleteFrame()) this.socket.end();
  }

  /** Pauses reading while too much is in flight or unsent; resumes when both are under their limits. */
  private updateFlow(): void {
    if (this.closed) return;
    const busy = this.busy();
    if (busy && !this.socket.isPaused()) this.socket.pause();
    else if (!busy && this.socket.isPaused() && !this.readEnded) this.socket.resume();
    // Frames already buffered wait for a free slot, not for more data.
    if (!busy && !this.processing && this.hasCompleteFrame()) this.processFrames();
  }
}

/**
 * STRAND_CAPTURE_DIR=<dir> writes every request frame (header and body, without the size) that
 * reaches a handler to `<dir>/<client>-<Api>-v<version>-<n>.bin`: how the golden bytes of real
 * clients in test/fixtures were captured. A debugging aid, off unless the variable is set.
 */
const CAPTURE_DIR = process.env['STRAND_CAPTURE_DIR'];
let captured = 0;

function captureFrame(frame: Buffer, api: string, version: number, clientId: string | null): void {
  const client = (clientId ?? 'null').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  writeFileSync(join(CAPTURE_DIR!, `${client}-${api}-v${version}-${captured++}.bin`), frame);
}

function releaseAll(chunks: Chunk[]): void {
  for (const c of chunks) if (isLazyRecords(c)) c.release();
}
