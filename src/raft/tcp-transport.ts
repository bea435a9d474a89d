/**
 * The Raft transport over TCP, speaking Kafka's wire protocol (kafka-messages.ts).
 *
 * Inbound: a listener (the controller listener) that frames requests (INT32 size, header, body),
 * answers ApiVersions (v0–3) with the five Raft apis, and hands each Raft request to the core,
 * whose answer is written back on the same connection. The core answers every request
 * synchronously inside `handle`, so the answer is caught by `send` while the request is being
 * handled. Anything else (an unknown api, an unsupported version, an undecodable body, a frame
 * above MAX_FRAME_BYTES) closes that connection with a log line.
 *
 * Outbound: one connection per voter, opened on first use and again after a failure (at most
 * once per RECONNECT_BACKOFF_MS); requests are pipelined on it and responses matched in order.
 * Messages are best effort, as the core expects: while a peer is unreachable or has
 * MAX_IN_FLIGHT requests outstanding, new ones are dropped (the core resends on its timers).
 */
import net from 'node:net';
import { readRequestHeader, requestHeaderVersion, responseHeaderVersion, writeResponseHeader } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/errors.js';
import { API_BY_KEY, ApiKey, decodeResponseHeader, encodeRequestHeader, type ApiVersionsResponse } from '../protocol/messages/index.js';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';
import type { Logger } from '../storage/logger.js';
import { fromKafkaRequest, fromKafkaResponse, invalidRequestResponse, RAFT_API_VERSIONS, toKafkaRequest, toKafkaResponse } from './kafka-messages.js';
import type { RaftMessage, RaftRequest, RaftResponse, RaftTransport } from './types.js';

export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const MAX_IN_FLIGHT = 64;
const RECONNECT_BACKOFF_MS = 100;

/** Another api answered on the controller listener (DescribeQuorum), outside the Raft core. */
export interface ControllerApi {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
  /** The response body for a decoded request body (a promise for one that waits, e.g. on a commit). */
  handle(body: unknown, version: number): unknown;
}

export interface VoterEndpoint {
  id: number;
  host: string;
  port: number;
}

function isRequest(m: RaftMessage): m is RaftRequest {
  return m.type.endsWith('Request');
}

/** Splits a byte stream into INT32-size-prefixed frames. */
class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private frameSize = -1;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  /** Returns an error message when the stream is unusable. */
  push(data: Buffer): string | null {
    this.chunks.push(data);
    this.buffered += data.length;
    for (;;) {
      if (this.frameSize < 0) {
        if (this.buffered < 4) return null;
        this.frameSize = this.take(4).readInt32BE(0);
        if (this.frameSize < 0 || this.frameSize > MAX_FRAME_BYTES) return `frame of ${this.frameSize} bytes`;
      }
      if (this.buffered < this.frameSize) return null;
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
}

interface Pending {
  correlationId: number;
  apiKey: number;
  version: number;
  request: RaftRequest;
}

class PeerConnection {
  private socket: net.Socket | null = null;
  private connected = false;
  private retryAtMs = 0;
  private correlationId = 0;
  private pending: Pending[] = [];
  private queued: Buffer[] = [];

  constructor(
    private readonly self: number,
    private readonly peer: VoterEndpoint,
    private readonly clusterId: string,
    private readonly deliver: (m: RaftResponse) => void,
    private readonly logger: Logger,
  ) {}

  send(request: RaftRequest): void {
    if (this.pending.length >= MAX_IN_FLIGHT) return;
    if (this.socket === null) {
      if (Date.now() < this.retryAtMs) return;
      this.open();
    }
    const { apiKey, version, body } = toKafkaRequest(request, this.clusterId);
    const correlationId = this.correlationId++;
    const w = new Writer(256);
    w.int32(0);
    encodeRequestHeader(w, { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: `raft-${this.self}` }, requestHeaderVersion(apiKey, version));
    (API_BY_KEY.get(apiKey)!.encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, version);
    const frame = w.toBuffer();
    frame.writeInt32BE(frame.length - 4, 0);
    this.pending.push({ correlationId, apiKey, version, request });
    if (this.connected) this.socket!.write(frame);
    else this.queued.push(frame);
  }

  private open(): void {
    const socket = net.connect({ host: this.peer.host, port: this.peer.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const frames = new FrameReader((f) => this.onFrame(socket, f));
    socket.on('connect', () => {
      this.connected = true;
      for (const f of this.queued.splice(0)) socket.write(f);
    });
    socket.on('data', (d: Buffer) => {
      const problem = frames.push(d);
      if (problem !== null) this.fail(socket, problem);
    });
    socket.on('error', (e) => this.fail(socket, e.message));
    socket.on('close', () => this.fail(socket, 'closed'));
  }

  private fail(socket: net.Socket, why: string): void {
    if (this.socket !== socket) return;
    if (this.connected) this.logger.debug('raft peer connection lost', { peer: this.peer.id, why });
    socket.destroy();
    this.socket = null;
    this.connected = false;
    this.pending = [];
    this.queued = [];
    this.retryAtMs = Date.now() + RECONNECT_BACKOFF_MS;
  }

  private onFrame(socket: net.Socket, frame: Buffer): void {
    if (this.socket !== socket) return; // closed meanwhile
    const p = this.pending.shift();
    if (p === undefined) return this.fail(socket, 'a response to no request');
    const r = new Reader(frame);
    const header = decodeResponseHeader(r, responseHeaderVersion(p.apiKey, p.version));
    if (!r.ok || header.correlationId !== p.correlationId) return this.fail(socket, `correlation id ${header.correlationId}, expected ${p.correlationId}`);
    const body = API_BY_KEY.get(p.apiKey)!.decodeResponse(r, p.version);
    if (!r.ok) return this.fail(socket, `undecodable response: ${r.error}`);
    const response = fromKafkaResponse(p.request, this.peer.id, body);
    if (response !== null) this.deliver(response);
  }

  /** Closes after what was written is sent (a resigning leader's EndQuorumEpoch). */
  close(): void {
    const socket = this.socket;
    if (socket === null) return;
    this.socket = null;
    this.pending = [];
    this.queued = [];
    if (this.connected) socket.end();
    else socket.destroy();
    this.connected = false;
  }
}

/** The transport of one voter: its listener and its connections to the other voters. */
export class RaftTcpTransport implements RaftTransport {
  private readonly peers = new Map<number, PeerConnection>();
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private handler: ((m: RaftMessage) => void) | null = null;
  /** The inbound request being handled, and the answer the core gave to it. */
  private answering: { request: RaftRequest; response: RaftResponse | null } | null = null;
  /** Per connection, the last response not yet written: responses leave in request order. */
  private readonly tails = new WeakMap<net.Socket, Promise<void>>();

  constructor(
    private readonly nodeId: number,
    voters: readonly VoterEndpoint[],
    private readonly clusterId: string,
    private readonly logger: Logger,
    private readonly extraApis: readonly ControllerApi[] = [],
  ) {
    for (const v of voters) {
      if (v.id !== nodeId) this.peers.set(v.id, new PeerConnection(nodeId, v, clusterId, (m) => this.handler?.(m), logger));
    }
  }

  /** Starts the listener; resolves with its port. `handler` receives every message for the core. */
  listen(host: string, port: number, handler: (m: RaftMessage) => void): Promise<number> {
    this.handler = handler;
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  send(destinationId: number, message: RaftMessage): void {
    if (!isRequest(message)) {
      const a = this.answering;
      if (a !== null && a.response === null && destinationId === a.request.sourceId) a.response = message;
      return;
    }
    this.peers.get(destinationId)?.send(message);
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const close = (why: string): void => {
      this.logger.warn('closing a controller connection', { remote: `${socket.remoteAddress}:${socket.remotePort}`, why });
      socket.destroy();
    };
    const frames = new FrameReader((frame) => {
      if (socket.destroyed) return;
      const problem = this.onRequestFrame(socket, frame);
      if (problem !== null) close(problem);
    });
    socket.on('data', (d: Buffer) => {
      const problem = frames.push(d);
      if (problem !== null) close(problem);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** Handles one request frame; returns why the connection must close, or null. */
  private onRequestFrame(socket: net.Socket, frame: Buffer): string | null {
    const r = new Reader(frame);
    const header = readRequestHeader(r);
    if (!r.ok) return `undecodable request header: ${r.error}`;
    const { requestApiKey: apiKey, requestApiVersion: version, correlationId } = header;
    const api = API_BY_KEY.get(apiKey);
    if (apiKey === ApiKey.ApiVersions) {
      const body: ApiVersionsResponse = {
        errorCode: version <= 3 ? ErrorCode.NONE : ErrorCode.UNSUPPORTED_VERSION,
        apiKeys: [
          { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 3 },
          ...[...RAFT_API_VERSIONS].map(([k, v]) => ({ apiKey: k, minVersion: v, maxVersion: v })),
          ...this.extraApis.map((a) => ({ apiKey: a.apiKey, minVersion: a.minVersion, maxVersion: a.maxVersion })),
        ],
        throttleTimeMs: 0,
        supportedFeatures: [],
        finalizedFeaturesEpoch: -1,
        finalizedFeatures: [],
        zkMigrationReady: false,
      };
      this.respond(socket, apiKey, version <= 3 ? version : 0, correlationId, body);
      return null;
    }
    const extra = this.extraApis.find((a) => a.apiKey === apiKey);
    if (api !== undefined && extra !== undefined && version >= extra.minVersion && version <= extra.maxVersion) {
      const body = api.decodeRequest(r, version);
      if (!r.ok) return `undecodable ${api.name} v${version}: ${r.error}`;
      this.respond(socket, apiKey, version, correlationId, extra.handle(body, version));
      return null;
    }
    if (api === undefined || RAFT_API_VERSIONS.get(apiKey) !== version) return `api ${apiKey} v${version} is not answered on the controller listener`;
    const body = api.decodeRequest(r, version);
    if (!r.ok) return `undecodable ${api.name} v${version}: ${r.error}`;
    const request = fromKafkaRequest(apiKey, body);
    if (request === null) {
      this.respond(socket, apiKey, version, correlationId, invalidRequestResponse(apiKey));
      return null;
    }
    const answering: { request: RaftRequest; response: RaftResponse | null } = { request, response: null };
    this.answering = answering;
    try {
      this.handler?.(request);
    } finally {
      this.answering = null;
    }
    if (answering.response === null) {
      // Only a closed client gives no answer: the node is shutting down.
      socket.destroy();
      return null;
    }
    this.respond(socket, apiKey, version, correlationId, toKafkaResponse(answering.response));
    return null;
  }

  /** Writes the answer (or, when it is a promise, the answer it resolves to) after the ones before it. */
  private respond(socket: net.Socket, apiKey: number, version: number, correlationId: number, body: unknown): void {
    const tail = this.tails.get(socket);
    if (tail === undefined && !(body instanceof Promise)) return this.write(socket, apiKey, version, correlationId, body);
    const next = (tail ?? Promise.resolve())
      .then(() => body)
      .then(
        (b) => {
          if (!socket.destroyed) this.write(socket, apiKey, version, correlationId, b);
        },
        (e: unknown) => {
          this.logger.error('a controller request failed', { apiKey, error: e instanceof Error ? e.message : String(e) });
          socket.destroy();
        },
      )
      .finally(() => {
        if (this.tails.get(socket) === next) this.tails.delete(socket);
      });
    this.tails.set(socket, next);
  }

  private write(socket: net.Socket, apiKey: number, version: number, correlationId: number, body: unknown): void {
    const w = new Writer(256);
    w.int32(0);
    writeResponseHeader(w, apiKey, version, correlationId);
    (API_BY_KEY.get(apiKey)!.encodeResponse as (w: Writer, v: unknown, version: number) => void)(w, body, version);
    const out = w.toBuffer();
    out.writeInt32BE(out.length - 4, 0);
    socket.write(out);
  }

  close(): Promise<void> {
    for (const p of this.peers.values()) p.close();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    return new Promise((resolve) => (server === null ? resolve() : server.close(() => resolve())));
  }
}

