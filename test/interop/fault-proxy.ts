/**
 * A fault-injecting TCP proxy for tests: a real socket between a Kafka client and a real broker
 * that forwards every byte, except that it can lose or hold back the broker's Produce responses.
 *
 * The proxy reads the request frames going to the broker (INT32 size, INT16 api key, INT16
 * version, INT32 correlation id) to know which correlation ids are Produce requests, and splits
 * the broker's bytes into response frames (INT32 size, INT32 correlation id). For each Produce
 * response, in arrival order across all connections (n = 1, 2, ...), `plan(n)` decides:
 *  - 'forward': pass it on;
 *  - 'drop':    the broker has written the batch, but the client never hears so: the response is
 *               discarded and both sides of the connection are closed. The client reconnects and
 *               retries the same batch, which the broker must recognise as a duplicate;
 *  - 'delay':   the response (and everything after it on that connection, to keep order) is held
 *               for `delayMs` — set it above the client's request timeout to make it give up on
 *               the request and retry on a new connection while the broker has already written it.
 *
 * Clients must reach the broker only through the proxy: start the broker with
 * `advertised.listeners=PLAINTEXT://127.0.0.1:<proxy port>` so Metadata and FindCoordinator send
 * them back here. The proxy listens first (its port is needed for that), and learns the broker's
 * port with `setTarget` once the broker is up.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProduceFault = 'forward' | 'drop' | 'delay';

const PRODUCE = 0;
/** Frames larger than this are not Kafka traffic in these tests: the connection is cut. */
const MAX_FRAME_BYTES = 256 << 20;

/** Splits a byte stream into complete size-prefixed frames (each returned with its prefix). */
class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(d: Buffer): Buffer[] {
    this.chunks.push(d);
    this.buffered += d.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) return frames;
      const head = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [head];
      const size = head.readInt32BE(0);
      if (size < 0 || size > MAX_FRAME_BYTES) throw new Error(`fault proxy: impossible frame size ${size}`);
      if (this.buffered < 4 + size) return frames;
      frames.push(head.subarray(0, 4 + size));
      const rest = head.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
  }
}

export interface FaultProxyStats {
  connections: number;
  produceResponses: number;
  dropped: number;
  delayed: number;
  /** Responses never delivered because the client closed the connection while they were held (it timed out). */
  abandoned: number;
}

export class FaultProxy {
  private target: { host: string; port: number } | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  readonly stats: FaultProxyStats = { connections: 0, produceResponses: 0, dropped: 0, delayed: 0, abandoned: 0 };

  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** Decides the fate of the n-th Produce response; may be replaced between runs. */
    public plan: (n: number) => ProduceFault,
    public delayMs: number,
  ) {}

  /** Replaces the plan and zeroes the counters, for the next run through the same proxy. */
  reset(plan: (n: number) => ProduceFault, delayMs = this.delayMs): void {
    this.plan = plan;
    this.delayMs = delayMs;
    Object.assign(this.stats, { connections: 0, produceResponses: 0, dropped: 0, delayed: 0, abandoned: 0 });
  }

  /** Listens on 127.0.0.1 (a free port). `plan` decides the fate of the n-th Produce response. */
  static start(opts: { plan: (n: number) => ProduceFault; delayMs?: number }): Promise<FaultProxy> {
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true });
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const addr = server.address();
        if (addr === null || typeof addr === 'string') return reject(new Error('fault proxy: no address'));
        const proxy = new FaultProxy(server, addr.port, opts.plan, opts.delayMs ?? 0);
        server.on('connection', (s) => proxy.accept(s));
        resolve(proxy);
      });
    });
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  setTarget(host: string, port: number): void {
    this.target = { host, port };
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    if (this.target === null) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const broker = connect({ host: this.target.host, port: this.target.port });
    broker.setNoDelay(true);
    this.sockets.add(client).add(broker);
    const produceIds = new Set<number>();
    const requests = new FrameSplitter();
    const responses = new FrameSplitter();
    let holdUntil = 0;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      client.destroy();
      broker.destroy();
      this.sockets.delete(client);
      this.sockets.delete(broker);
    };
    client.on('error', close).on('close', close);
    broker.on('error', close).on('close', close);

    client.on('data', (d: Buffer) => {
      try {
        for (const f of requests.push(d)) if (f.length >= 12 && f.readInt16BE(4) === PRODUCE) produceIds.add(f.readInt32BE(8));
      } catch {
        close();
        return;
      }
      broker.write(d);
    });

    // Responses leave in the order they came; a held one holds back those behind it.
    let queue: Promise<void> = Promise.resolve();
    const forward = (frame: Buffer): void => {
      queue = queue.then(async () => {
        const wait = holdUntil - Date.now();
        if (wait > 0) await this.sleep(wait);
        if (!closed) client.write(frame);
        else if (wait > 0) this.stats.abandoned++;
      });
    };
    broker.on('data', (d: Buffer) => {
      let frames: Buffer[];
      try {
        frames = responses.push(d);
      } catch {
        close();
        return;
      }
      for (const f of frames) {
        const correlationId = f.length >= 8 ? f.readInt32BE(4) : -1;
        if (!produceIds.delete(correlationId)) {
          forward(f);
          continue;
        }
        const n = ++this.stats.produceResponses;
        const fate = this.plan(n);
        if (fate === 'drop') {
          this.stats.dropped++;
          // Whatever is queued before it may still go out; this response and the connection do not.
          queue = queue.then(close);
          return;
        }
        if (fate === 'delay') {
          this.stats.delayed++;
          holdUntil = Math.max(holdUntil, Date.now() + this.delayMs);
        }
        forward(f);
      }
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
