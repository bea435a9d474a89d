/**
 * `strand perf produce|consume`: a load generator in the spirit of kafka-producer-perf-test.sh and
 * kafka-consumer-perf-test.sh, through Strand's client. Prints records/s, MB/s and latency
 * percentiles (produce: send → acknowledgement; consume: record timestamp → delivery).
 */
import { randomBytes } from 'node:crypto';
import { COMMON_HELP, int, kafkaFor, parse, printJson, usage, withAdmin } from '../common.js';
import { acksArg, checkTopic, compressionArg } from './produce.js';

export const PERF_HELP = `Usage: strand perf produce TOPIC [options]
       strand perf consume TOPIC [options]

perf produce sends --num-records records of --record-size bytes as fast as allowed (or at
--throughput records/s) and reports records/s, MB/s and the latency from send to acknowledgement
(avg, max, p50, p95, p99, p99.9), like kafka-producer-perf-test.sh.
perf consume reads --num-records records (default: everything in the topic now) from the
beginning and reports records/s, MB/s and the end-to-end latency (record timestamp → delivery;
meaningful when a producer runs at the same time), like kafka-consumer-perf-test.sh.

Options:
  -n, --num-records N           records to send / read (produce default 100000)
  -s, --record-size BYTES       value size for produce (default 100)
      --throughput N            produce at most N records/s (default -1: unlimited)
      --acks ACKS               0, 1, all (default all)
  -z, --compression CODEC       none, gzip, snappy, lz4, zstd (default none)
      --linger-ms MS            producer linger (default 5)
      --batch-bytes BYTES       producer batch size (default 65536)
  -g, --group GROUP             perf consume: as a member of GROUP (default: no group)
      --timeout-ms MS           perf consume: stop after MS without a record (default 10000)
      --reporting-interval MS   progress line interval on stderr (default 5000)
${COMMON_HELP}

Examples:
  strand perf produce bench --num-records 1000000 --record-size 100 --compression lz4
  strand perf consume bench --num-records 1000000`;

const OPTIONS = {
  topic: { type: 'string', short: 't' },
  'num-records': { type: 'string', short: 'n' },
  'record-size': { type: 'string', short: 's' },
  throughput: { type: 'string' },
  acks: { type: 'string' },
  compression: { type: 'string', short: 'z' },
  'linger-ms': { type: 'string' },
  'batch-bytes': { type: 'string' },
  group: { type: 'string', short: 'g' },
  'timeout-ms': { type: 'string' },
  'reporting-interval': { type: 'string' },
} as const;

/** The q-quantile of sorted values. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function summary(lat: Float64Array) {
  const s = Float64Array.from(lat).sort();
  let sum = 0;
  for (const x of s) sum += x;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { avgMs: r(s.length ? sum / s.length : 0), maxMs: r(s.length ? s[s.length - 1]! : 0), p50Ms: r(percentile(s, 0.5)), p95Ms: r(percentile(s, 0.95)), p99Ms: r(percentile(s, 0.99)), p999Ms: r(percentile(s, 0.999)) };
}

export async function perfCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(PERF_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'produce' && sub !== 'consume') throw usage(`unknown perf command '${sub}'`, 'perf');
  const p = parse(rest, OPTIONS, PERF_HELP);
  if (p === null) return 0;
  const v = p.values;
  const topic = v.topic ?? p.positionals[0];
  if (topic === undefined) throw usage(`perf ${sub} needs a TOPIC`, 'perf');
  const interval = int(v['reporting-interval'], '--reporting-interval', { min: 100 }) ?? 5000;
  return sub === 'produce' ? perfProduce(topic, v, interval) : perfConsume(topic, v, interval);
}

type Values = Parameters<typeof kafkaFor>[0] & { [k: string]: string | boolean | undefined | string[] };

async function perfProduce(topic: string, v: Values, interval: number): Promise<number> {
  const n = int(v['num-records'] as string | undefined, '--num-records', { min: 1 }) ?? 100000;
  const size = int(v['record-size'] as string | undefined, '--record-size', { min: 0 }) ?? 100;
  const throughput = int(v['throughput'] as string | undefined, '--throughput') ?? -1;
  await checkTopic(v, topic);
  const producer = kafkaFor(v).producer({
    acks: acksArg(v['acks'] as string | undefined),
    compression: compressionArg(v['compression'] as string | undefined),
    lingerMs: int(v['linger-ms'] as string | undefined, '--linger-ms', { min: 0 }) ?? 5,
    batchBytes: int(v['batch-bytes'] as string | undefined, '--batch-bytes', { min: 1 }) ?? 65536,
    idempotent: false,
    allowAutoTopicCreation: false,
  });
  // A few random payloads, rotated (as the Kafka tool does), so compression has something real to do.
  const payloads = Array.from({ length: 16 }, () => randomBytes(size));
  const lat = new Float64Array(n);
  let acked = 0;
  let failed: unknown = null;
  const start = performance.now();
  let windowStart = start;
  let windowCount = 0;
  let windowBytes = 0;
  let windowMax = 0;
  let windowSum = 0;
  const report = setInterval(() => {
    const now = performance.now();
    const secs = (now - windowStart) / 1000;
    process.stderr.write(`${windowCount} records sent, ${(windowCount / secs).toFixed(1)} records/sec (${(windowBytes / secs / 1048576).toFixed(2)} MB/sec), ${(windowCount ? windowSum / windowCount : 0).toFixed(1)} ms avg latency, ${windowMax.toFixed(1)} ms max latency.\n`);
    windowStart = now;
    windowCount = windowBytes = windowMax = windowSum = 0;
  }, interval);
  try {
    await producer.connect();
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < n && failed === null; i++) {
      if (throughput > 0) {
        const due = start + (i * 1000) / throughput;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      const t0 = performance.now();
      const value = payloads[i & 15]!;
      const s = producer.send({ topic, value }).then(
        () => {
          const l = performance.now() - t0;
          lat[acked++] = l;
          windowCount++;
          windowBytes += size;
          windowSum += l;
          if (l > windowMax) windowMax = l;
        },
        (e: unknown) => {
          failed ??= e;
        },
      );
      sends.push(s);
      // Keep the records in flight bounded (the producer's buffer bounds bytes, this the promises).
      while (sends.length >= 10000) await sends.shift();
    }
    await Promise.all(sends);
    await producer.flush();
  } finally {
    clearInterval(report);
    await producer.close().catch(() => {});
  }
  if (failed !== null) throw failed;
  const secs = (performance.now() - start) / 1000;
  const s = summary(lat.subarray(0, acked));
  const result = { records: acked, seconds: Math.round(secs * 1000) / 1000, recordsPerSec: Math.round((acked / secs) * 10) / 10, mbPerSec: Math.round(((acked * size) / secs / 1048576) * 100) / 100, ...s };
  if (v.json) printJson(result);
  else
    console.log(
      `${result.records} records sent, ${result.recordsPerSec} records/sec (${result.mbPerSec} MB/sec), ${s.avgMs} ms avg latency, ${s.maxMs} ms max latency, ${s.p50Ms} ms 50th, ${s.p95Ms} ms 95th, ${s.p99Ms} ms 99th, ${s.p999Ms} ms 99.9th.`,
    );
  return 0;
}

async function perfConsume(topic: string, v: Values, interval: number): Promise<number> {
  const timeoutMs = int(v['timeout-ms'] as string | undefined, '--timeout-ms', { min: 1 }) ?? 10000;
  const count = await checkTopic(v, topic);
  const partitions = Array.from({ length: count }, (_, i) => i);
  let n = int(v['num-records'] as string | undefined, '--num-records', { min: 1 });
  if (n === undefined) {
    n = await withAdmin(v, async (admin) => {
      const [lo, hi] = await Promise.all([admin.listOffsets(topic, 'earliest'), admin.listOffsets(topic, 'latest')]);
      return hi.reduce((s, h) => s + h.offset - (lo.find((l) => l.partition === h.partition)?.offset ?? 0), 0);
    });
  }
  const kafka = kafkaFor(v);
  const group = v['group'] as string | undefined;
  const consumer = group !== undefined ? kafka.consumer({ groupId: group, fromBeginning: true, isolationLevel: 'read_uncommitted' }) : kafka.consumer({ fromBeginning: true, isolationLevel: 'read_uncommitted' });
  if (group !== undefined) consumer.subscribe(topic);
  else consumer.assign(partitions.map((partition) => ({ topic, partition })));
  const lat = new Float64Array(Math.max(1, n));
  let got = 0;
  let bytes = 0;
  let last = Date.now();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  const start = performance.now();
  let windowStart = start;
  let windowCount = 0;
  let windowBytes = 0;
  const report = setInterval(() => {
    const now = performance.now();
    const secs = (now - windowStart) / 1000;
    process.stderr.write(`${windowCount} records read, ${(windowCount / secs).toFixed(1)} records/sec (${(windowBytes / secs / 1048576).toFixed(2)} MB/sec).\n`);
    windowStart = now;
    windowCount = windowBytes = 0;
  }, interval);
  const idle = setInterval(() => Date.now() - last > timeoutMs && stop(), 100);
  try {
    if (n > 0) {
      await consumer.run({
        eachBatch: ({ batch }) => {
          const now = Date.now();
          for (const m of batch.messages) {
            if (got >= n!) break;
            const b = (m.rawValue?.length ?? 0) + (m.rawKey?.length ?? 0);
            lat[got++] = Math.max(0, now - m.timestamp);
            bytes += b;
            windowCount++;
            windowBytes += b;
          }
          last = now;
          if (got >= n!) stop();
        },
      });
      consumer.done().then(stop, stop);
      await stopped;
    }
  } finally {
    clearInterval(report);
    clearInterval(idle);
    await consumer.close().catch(() => {});
  }
  const secs = (performance.now() - start) / 1000;
  const s = summary(lat.subarray(0, got));
  const result = { records: got, bytes, seconds: Math.round(secs * 1000) / 1000, recordsPerSec: Math.round((got / secs) * 10) / 10, mbPerSec: Math.round((bytes / secs / 1048576) * 100) / 100, endToEndLatency: s };
  if (v.json) printJson(result);
  else console.log(`${got} records read (${(bytes / 1048576).toFixed(2)} MB) in ${result.seconds} s, ${result.recordsPerSec} records/sec (${result.mbPerSec} MB/sec); end-to-end latency ${s.avgMs} ms avg, ${s.p50Ms} ms 50th, ${s.p99Ms} ms 99th, ${s.p999Ms} ms 99.9th, ${s.maxMs} ms max.`);
  return got < n ? 1 : 0;
}
