/**
 * The console's live charts, derived from what any Kafka-compatible cluster answers to a client
 * (no broker metrics endpoint needed). Every `intervalMs` while someone watches, one sample:
 *
 * - end offset of every partition (ListOffsets latest) → **records in/s**: the growth of end
 *   offsets, which counts every offset written (transaction markers included);
 * - size on disk of every partition (DescribeLogDirs) → **bytes in/s**: the growth of the logs'
 *   size on disk (batch headers included; a partition that shrinks, by retention or compaction,
 *   counts 0, not a negative rate);
 * - committed offset of every group and partition (OffsetFetch) → **records out/s**: how fast
 *   consumer groups commit progress (consumers without a group, or that never commit, are not seen);
 * - **bytes out/s** is an estimate: records out × the partition's average record size on disk.
 *
 * Internal topics are left out. Sampling stops after `idleMs` without a reader, so an open console
 * costs the cluster nothing once nobody looks at it.
 */
import type { Admin } from '../client/admin.js';

export interface RatePoint {
  /** Epoch ms of the sample that ends the interval. */
  t: number;
  recordsIn: number;
  bytesIn: number;
  recordsOut: number;
  bytesOut: number;
}

interface Snapshot {
  t: number;
  /** topic\0partition → end offset, start offset, size. */
  partitions: Map<string, { end: number; start: number; size: number | null }>;
  /** group\0topic\0partition → committed offset. */
  committed: Map<string, number>;
}

export interface SamplerOptions {
  intervalMs?: number;
  /** Stop sampling after this long without a read of the series. */
  idleMs?: number;
  /** Points kept. */
  maxPoints?: number;
  onError?: (e: unknown) => void;
}

export class TrafficSampler {
  readonly intervalMs: number;
  private readonly idleMs: number;
  private readonly maxPoints: number;
  private readonly points: RatePoint[] = [];
  private last: Snapshot | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRead = 0;
  private running: Promise<void> | null = null;
  private closed = false;
  private lastError: string | null = null;

  constructor(
    private readonly admin: Admin,
    private readonly opts: SamplerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 2000;
    this.idleMs = opts.idleMs ?? 60000;
    this.maxPoints = opts.maxPoints ?? 300;
  }

  /** The series so far; (re)starts sampling. */
  read(): { intervalMs: number; points: RatePoint[]; error: string | null } {
    this.lastRead = Date.now();
    if (this.timer === null && !this.closed) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
      this.tick();
    }
    return { intervalMs: this.intervalMs, points: this.points.slice(), error: this.lastError };
  }

  private tick(): void {
    if (Date.now() - this.lastRead > this.idleMs) {
      clearInterval(this.timer!);
      this.timer = null;
      this.last = null; // a gap: the next rate starts from a fresh sample
      return;
    }
    if (this.running !== null) return; // a slow cluster: skip rather than pile up
    this.running = this.sample()
      .then((s) => {
        this.lastError = null;
        if (this.last !== null) this.push(this.rates(this.last, s));
        this.last = s;
      })
      .catch((e: unknown) => {
        this.lastError = e instanceof Error ? e.message : String(e);
        this.opts.onError?.(e);
      })
      .finally(() => (this.running = null));
  }

  private push(p: RatePoint): void {
    this.points.push(p);
    if (this.points.length > this.maxPoints) this.points.splice(0, this.points.length - this.maxPoints);
  }

  private async sample(): Promise<Snapshot> {
    const t = Date.now();
    const partitions = new Map<string, { end: number; start: number; size: number | null }>();
    const topics = await this.admin.listTopics();
    let sizes: Map<string, number> | null = null;
    try {
      sizes = new Map();
      for (const d of await this.admin.describeLogDirs({ topics })) for (const p of d.partitions) sizes.set(`${p.topic}\u0000${p.partition}`, (sizes.get(`${p.topic}\u0000${p.partition}`) ?? 0) + p.sizeBytes);
    } catch {
      sizes = null; // a cluster without DescribeLogDirs: no byte rates
    }
    for (const topic of topics) {
      const [starts, ends] = await Promise.all([this.admin.listOffsets(topic, 'earliest'), this.admin.listOffsets(topic, 'latest')]);
      for (const e of ends) {
        const k = `${topic}\u0000${e.partition}`;
        partitions.set(k, { end: e.offset, start: starts.find((s) => s.partition === e.partition)?.offset ?? 0, size: sizes === null ? null : (sizes.get(k) ?? 0) });
      }
    }
    const committed = new Map<string, number>();
    for (const g of await this.admin.listGroups()) {
      for (const o of await this.admin.fetchOffsets(g.groupId)) if (o.offset >= 0) committed.set(`${g.groupId}\u0000${o.topic}\u0000${o.partition}`, o.offset);
    }
    return { t, partitions, committed };
  }

  private rates(a: Snapshot, b: Snapshot): RatePoint {
    const seconds = Math.max(0.001, (b.t - a.t) / 1000);
    let recordsIn = 0;
    let bytesIn = 0;
    for (const [k, now] of b.partitions) {
      const was = a.partitions.get(k);
      if (was === undefined) continue;
      recordsIn += Math.max(0, now.end - was.end);
      if (now.size !== null && was.size !== null) bytesIn += Math.max(0, now.size - was.size);
    }
    let recordsOut = 0;
    let bytesOut = 0;
    for (const [k, off] of b.committed) {
      const was = a.committed.get(k);
      if (was === undefined || off <= was) continue;
      const delta = off - was;
      recordsOut += delta;
      const tp = b.partitions.get(k.slice(k.indexOf('\u0000') + 1));
      if (tp !== undefined && tp.size !== null && tp.end > tp.start) bytesOut += delta * (tp.size / (tp.end - tp.start));
    }
    return { t: b.t, recordsIn: recordsIn / seconds, bytesIn: bytesIn / seconds, recordsOut: recordsOut / seconds, bytesOut: bytesOut / seconds };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }
}
