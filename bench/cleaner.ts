/**
 * The log cleaner's benchmark (`BENCH_ONLY=cleaner npm run bench`, or part of the full run), on
 * its own broker process:
 *
 *  1. Disk reclaimed: a compacted topic (1 MiB segments, min.cleanable.dirty.ratio=0.01 so the
 *     cleaner does not stop at Kafka's default of half the log dirty) is written 10 times over with
 *     the same keys; the cleaner runs on its own (log.cleaner.backoff.ms=100). The table gives the
 *     size of one copy, the bytes written, the log's size on disk right after the last write and
 *     once the cleaner has caught up (dirty ratio below 0.01), and the
 *     cleaner's throughput: bytes read / time, summed over the passes seen through
 *     DescribeLogCleaner (polled every 25 ms; a pass it did not see is left out, not guessed).
 *  2. The cleaner's cost to clients: produce throughput and end-to-end latency on another topic,
 *     first with the cleaner idle (same-run baseline), then while it cleans. To keep it busy, topics
 *     filled beforehand with min.compaction.lag.ms at its maximum (nothing cleanable) are switched
 *     to 0 right before the measured case; the data is sized from the throughput measured in 1.
 *     The table says which share of the case the cleaner was actually busy. A discarded produce
 *     case first warms the fresh broker up, so the idle case is not measured against the JIT; each
 *     case runs idle, cleaning, idle again, so a change in the machine's other load over the run
 *     shows as a difference between the two idle runs rather than as the cleaner's effect.
 *
 * BENCH_CLEANER_IO_MAX_BYTES=N runs the whole section with log.cleaner.io.max.bytes.per.second=N
 * (Kafka's throttle on the cleaner's reads plus writes; default unlimited).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as messages from '../src/protocol/messages/index.js';
import { encodeRecordBatch } from '../src/protocol/records.js';
import { startBroker, type BrokerProcess } from '../src/testing/broker-process.js';
import { ProtocolConnection } from '../src/testing/protocol-client.js';

const MiB = 1024 * 1024;
const LONG_MAX = '9223372036854775807';

export interface BenchRow {
  case: string;
  records: string;
  mbps: string;
  vsBaseline: string;
  note: string;
}

export interface CleanerBenchDeps {
  seconds: number;
  settleDisk(): void;
  produceThroughput(broker: BrokerProcess, opts: { recordBytes: number; batchBytes: number; acks: number; connections: number; depth: number }): Promise<{ recordsPerSec: number; mbps: number }>;
  latency(broker: BrokerProcess, ratePerSec: number, acks: number): Promise<{ p50: number; p99: number; p999: number; count: number }>;
  /** Milliseconds the host took from this VM's CPUs so far (NaN off Linux). */
  stealMs(): number;
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function createCompacted(c: ProtocolConnection, name: string, configs: Record<string, string>): Promise<void> {
  const resp = await c.send(messages.ApiKey.CreateTopics, 4, {
    ...messages.defaultCreateTopicsRequest(),
    topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: Object.entries({ 'cleanup.policy': 'compact', ...configs }).map(([k, value]) => ({ name: k, value })) }],
    timeoutMs: 10000,
  });
  if (resp.topics[0].errorCode !== 0) throw new Error(`create ${name}: error ${resp.topics[0].errorCode}`);
}

async function setTopicConfig(c: ProtocolConnection, topic: string, name: string, value: string): Promise<void> {
  const r = await c.send(messages.ApiKey.IncrementalAlterConfigs, 0, { resources: [{ resourceType: 2, resourceName: topic, configs: [{ name, configOperation: 0, value }] }], validateOnly: false });
  if (r.responses[0].errorCode !== 0) throw new Error(`alter ${topic} ${name}: error ${r.responses[0].errorCode}`);
}

/** One copy of the key space as pre-encoded batches: `keys` keys of `valueBytes`, `perBatch` records a batch. */
function copyOfKeys(keys: number, valueBytes: number, perBatch: number, round: number): Buffer[] {
  const out: Buffer[] = [];
  for (let k = 0; k < keys; k += perBatch) {
    const records = [];
    for (let i = k; i < Math.min(keys, k + perBatch); i++) {
      const value = Buffer.alloc(valueBytes, 97 + ((i + round) % 26));
      value.write(`round ${round} key ${i} `);
      records.push({ key: Buffer.from(`key-${String(i).padStart(8, '0')}`), value });
    }
    out.push(encodeRecordBatch({ records }));
  }
  return out;
}

/** Sends the batches in order to partition 0 of `topic`, `depth` requests in flight. */
async function produceAll(c: ProtocolConnection, topic: string, batches: Buffer[], depth = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const r = await c.send(messages.ApiKey.Produce, 7, { transactionalId: null, acks: 1, timeoutMs: 30000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] });
        const err = r.responses[0].partitionResponses[0].errorCode;
        if (err !== 0) throw new Error(`produce ${topic}: error ${err}`);
      }
    }),
  );
}

const logBytes = (broker: BrokerProcess, topic: string): number => {
  const dir = join(broker.dataDir, `${topic}-0`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
};

interface Pass {
  topic: string;
  startMs: number;
  endMs: number;
  bytesRead: number;
}

/** Watches the cleaner through DescribeLogCleaner; collects every pass it sees end. */
class CleanerWatch {
  readonly passes: Pass[] = [];
  private lastPasses = -1;
  private stopped = false;
  private loop: Promise<void> | null = null;
  missed = 0;
  dirtyRatio = new Map<string, number>();

  constructor(private readonly c: ProtocolConnection) {}

  async poll(): Promise<void> {
    const r = await this.c.send(messages.ApiKey.DescribeLogCleaner, 0, { topics: null });
    for (const t of r.topics) this.dirtyRatio.set(t.name, t.partitions[0]?.dirtyRatio ?? 0);
    if (this.lastPasses >= 0 && r.passes > this.lastPasses) {
      if (r.passes - this.lastPasses > 1) this.missed += r.passes - this.lastPasses - 1;
      // The last pass's bytes: per partition, from that partition's entry.
      const part = r.topics.find((t: { name: string }) => t.name === r.lastRunTopic)?.partitions.find((p: { partitionIndex: number }) => p.partitionIndex === r.lastRunPartition);
      if (r.lastRunTopic !== null && part !== undefined && part.lastRunEndMs === r.lastRunEndMs) this.passes.push({ topic: r.lastRunTopic, startMs: r.lastRunStartMs, endMs: r.lastRunEndMs, bytesRead: part.lastRunBytesRead });
    }
    this.lastPasses = r.passes;
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.poll();
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Bytes read / busy time over the passes seen, MB/s. */
  throughputMBps(filter: (p: Pass) => boolean = () => true): { mbps: number; bytes: number; ms: number; n: number } {
    const ps = this.passes.filter(filter);
    const bytes = ps.reduce((n, p) => n + p.bytesRead, 0);
    const ms = ps.reduce((n, p) => n + Math.max(1, p.endMs - p.startMs), 0);
    return { mbps: ms === 0 ? 0 : bytes / MiB / (ms / 1000), bytes, ms, n: ps.length };
  }

  /** Milliseconds of [fromMs, toMs] during which a pass seen was running. */
  busyMs(fromMs: number, toMs: number): number {
    return this.passes.reduce((n, p) => n + Math.max(0, Math.min(toMs, p.endMs) - Math.max(fromMs, p.startMs)), 0);
  }
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`cleaner bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function cleanerBench(d: CleanerBenchDeps): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const ioMax = process.env['BENCH_CLEANER_IO_MAX_BYTES'];
  const broker = await startBroker({
    overrides: { 'log.segment.bytes': 512 * MiB, 'message.max.bytes': 2 * MiB, 'log.cleaner.backoff.ms': 100, ...(ioMax ? { 'log.cleaner.io.max.bytes.per.second': ioMax } : {}) },
  });
  const throttleNote = ioMax ? `; cleaner I/O limited to ${fmt(Number(ioMax) / MiB)} MiB/s` : '';
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port, 'bench-cleaner');
  const watch = new CleanerWatch(c);
  try {
    // 1. Ten rewrites of 100,000 keys of 200 B values.
    const KEYS = 100_000;
    const topic = 'cleaner-rewrites';
    await createCompacted(c, topic, { 'segment.bytes': String(MiB), 'min.cleanable.dirty.ratio': '0.01' });
    await watch.poll();
    watch.start();
    d.settleDisk();
    let written = 0;
    let oneCopy = 0;
    const t0 = Date.now();
    for (let round = 0; round < 10; round++) {
      const batches = copyOfKeys(KEYS, 200, 500, round);
      const bytes = batches.reduce((n, b) => n + b.length, 0);
      if (round === 0) oneCopy = bytes;
      written += bytes;
      await produceAll(c, topic, batches);
    }
    const producedMs = Date.now() - t0;
    const afterWrites = logBytes(broker, topic);
    // Done when the cleaner has caught up with everything below the active segment.
    await waitFor('the rewrites to be cleaned', () => (watch.dirtyRatio.get(topic) ?? 1) < 0.01 && watch.passes.some((p) => p.topic === topic && p.endMs > t0 + producedMs), 300000);
    const doneMs = Date.now() - t0;
    const finalBytes = logBytes(broker, topic);
    const tp = watch.throughputMBps((p) => p.topic === topic);
    rows.push({
      case: 'cleaner: 100,000 keys × 200 B written 10 times over (1 MiB segments)',
      records: fmt(KEYS * 10),
      mbps: fmt(tp.mbps, 1),
      vsBaseline: `on disk ${fmt(finalBytes / MiB, 1)} MiB = ${fmt(finalBytes / oneCopy, 2)} × one copy (${fmt(oneCopy / MiB, 1)} MiB); ${fmt(written / MiB, 1)} MiB written, ${fmt(afterWrites / MiB, 1)} MiB on disk right after the last write`,
      note: `MB/s: cleaner bytes read / busy time over ${tp.n} passes seen (${fmt(tp.bytes / MiB, 1)} MiB in ${fmt(tp.ms / 1000, 2)} s${watch.missed > 0 ? `, ${watch.missed} passes not seen` : ''}); produced in ${fmt(producedMs / 1000, 1)} s, clean ${fmt(doneMs / 1000, 1)} s after the first write; the active segment is never cleaned`,
    });
    // Log bytes the cleaner gets through per second when it has the machine (it reads each twice).
    const cleanerLogMBps = ioMax ? Number(ioMax) / MiB / 2 : Math.max(120, tp.mbps / 2);

    // 2. Produce throughput and latency with the cleaner idle, then busy.
    const shape = { recordBytes: 100, batchBytes: 16 * 1024, acks: 1, connections: 2, depth: 32 };
    const LAT_RATE = 10000;
    const latencySeconds = d.seconds + 3; // latency() warms up for 3 s
    // Fill the topics the cleaner will work through while the cases run: nothing cleanable yet.
    const fills: Array<{ name: string; seconds: number }> = [
      { name: 'cleaner-load-produce', seconds: d.seconds + 1 },
      { name: 'cleaner-load-latency', seconds: latencySeconds + 1 },
    ];
    for (const f of fills) {
      await createCompacted(c, f.name, { 'segment.bytes': String(4 * MiB), 'min.compaction.lag.ms': LONG_MAX });
      const targetBytes = Math.min(1536 * MiB, cleanerLogMBps * MiB * f.seconds);
      const copyBytes = copyOfKeys(20_000, 1000, 200, 0).reduce((n, b) => n + b.length, 0);
      for (let round = 0; round * copyBytes < targetBytes; round++) await produceAll(c, f.name, copyOfKeys(20_000, 1000, 200, round));
    }
    await d.produceThroughput(broker, shape); // warm-up, discarded
    const idleTp = await d.produceThroughput(broker, shape);

    await setTopicConfig(c, fills[0]!.name, 'min.compaction.lag.ms', '0');
    await waitFor('the cleaner to start on the produce-case load', () => (watch.dirtyRatio.get(fills[0]!.name) ?? 0) > 0, 10000);
    const p0 = Date.now();
    const busyTp = await d.produceThroughput(broker, shape);
    const p1 = Date.now();
    await waitFor('the produce-case load to be cleaned', () => watch.passes.some((p) => p.topic === fills[0]!.name), 600000);
    const idleTp2 = await d.produceThroughput(broker, shape);
    // Host steal over each latency case: a stall of the whole VM is not the cleaner's.
    const steals: number[] = [];
    const latencyCase = async (): Promise<Awaited<ReturnType<CleanerBenchDeps['latency']>>> => {
      const s0 = d.stealMs();
      const l = await d.latency(broker, LAT_RATE, 1);
      steals.push(d.stealMs() - s0);
      return l;
    };
    const idleLat = await latencyCase();
    await setTopicConfig(c, fills[1]!.name, 'min.compaction.lag.ms', '0');
    await waitFor('the cleaner to start on the latency-case load', () => (watch.dirtyRatio.get(fills[1]!.name) ?? 0) > 0, 10000);
    const l0 = Date.now();
    const busyLat = await latencyCase();
    const l1 = Date.now();
    await waitFor('the load topics to be cleaned', () => fills.every((f) => watch.passes.some((p) => p.topic === f.name)), 600000);
    const idleLat2 = await latencyCase();
    // Passes end after the cases; a pass that spans a case is counted for the part inside it.
    const share = (a: number, b: number): string => `${fmt((Math.min(b - a, watch.busyMs(a, b)) / (b - a)) * 100)} %`;
    const loadTp = watch.throughputMBps((p) => p.topic.startsWith('cleaner-load-'));
    rows.push({
      case: 'produce 100 B records, 16 KiB batches, acks=1: cleaner idle → cleaning → idle',
      records: `${fmt(idleTp.recordsPerSec)} → ${fmt(busyTp.recordsPerSec)} → ${fmt(idleTp2.recordsPerSec)}`,
      mbps: `${fmt(idleTp.mbps)} → ${fmt(busyTp.mbps)} → ${fmt(idleTp2.mbps)}`,
      vsBaseline: `${fmt((busyTp.mbps / ((idleTp.mbps + idleTp2.mbps) / 2)) * 100)} % of the idle mean`,
      note: `cleaner busy ${share(p0, p1)} of the case; it cleaned at ${fmt(loadTp.mbps, 1)} MB/s meanwhile (both load topics)${throttleNote}`,
    });
    rows.push({
      case: `end-to-end latency at ${fmt(LAT_RATE)} records/s, acks=1: cleaner idle → cleaning → idle`,
      records: `${fmt(idleLat.count)} / ${fmt(busyLat.count)} / ${fmt(idleLat2.count)}`,
      mbps: '',
      vsBaseline: `p50 ${fmt(idleLat.p50, 2)} → ${fmt(busyLat.p50, 2)} → ${fmt(idleLat2.p50, 2)} ms · p99 ${fmt(idleLat.p99, 2)} → ${fmt(busyLat.p99, 2)} → ${fmt(idleLat2.p99, 2)} ms · p999 ${fmt(idleLat.p999, 2)} → ${fmt(busyLat.p999, 2)} → ${fmt(idleLat2.p999, 2)} ms`,
      note: `cleaner busy ${share(l0, l1)} of the case (warm-up included); host steal ${steals.some(Number.isNaN) ? 'n/a' : `${steals.map((v) => fmt(v)).join(' / ')} ms`} over the three cases${throttleNote}`,
    });
  } finally {
    await watch.stop().catch(() => {});
    c.close();
    await broker.stop();
    broker.cleanup();
  }
  return rows;
}
