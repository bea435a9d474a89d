/**
 * `npm run bench`: Strand's produce and fetch throughput and end-to-end latency against a real
 * broker process, beside baselines measured in the same run on the same machine:
 *
 *   - raw sequential file append: fs.writeSync of 1 MiB buffers (what the disk + page cache take),
 *     measured right before each produce case it is compared with, writing as many bytes as the
 *     case and starting from the same memory state (see settleDisk);
 *   - loopback TCP between two Node processes (what a socket between two processes carries).
 *
 * The load generator is built on Strand's protocol package and sends pre-encoded Produce frames
 * (only the correlation id changes), pipelined, so it measures the broker, not the client. The
 * broker and the load generator share this machine's cores; the table says how many.
 *
 * Options (env): BENCH_SECONDS (per case, default 5), BENCH_QUICK=1 (1 s per case),
 * BENCH_WRITE_MIB (what each produce case and its raw append write, default 2048; 256 with
 * BENCH_QUICK),
 * BENCH_ONLY=produce|fetch|latency|cleaner (sections, comma-separated; the baselines always run),
 * BENCH_SETTLE_MS (the wait after sync before each write case, default 4000; see settleDisk),
 * BENCH_DEBUG=1 (CPU per case, fetch turnaround, worst latency samples, latency samples over
 * 1 / 2 / 5 / 10 ms and the runs over 2 ms by wall-clock time, the broker's output in
 * $TMPDIR/strand-bench-broker.log). The cleaner section (bench/cleaner.ts) runs on a broker of its
 * own after the others.
 */
import { execSync, fork } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as messages from '../src/protocol/messages/index.js';
import { crcOf, encodeRecordBatch } from '../src/protocol/records.js';
import { Reader } from '../src/protocol/reader.js';
import { startBroker, type BrokerProcess } from '../src/testing/broker-process.js';
import { loadSendfile, socketFd } from '../src/broker/sendfile.js';
import { ProtocolConnection } from '../src/testing/protocol-client.js';
import { cleanerBench } from './cleaner.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? (process.env['BENCH_QUICK'] ? 1 : 5));
const MiB = 1024 * 1024;
const ONLY = process.env['BENCH_ONLY'];
const SETTLE_MS = Number(process.env['BENCH_SETTLE_MS'] ?? 4000);
const WRITE_BYTES = Number(process.env['BENCH_WRITE_MIB'] ?? (process.env['BENCH_QUICK'] ? 256 : 2048)) * MiB;
const runs = (section: string): boolean => ONLY === undefined || ONLY.split(',').includes(section);

interface Row {
  case: string;
  records: string;
  mbps: string;
  vsBaseline: string;
  note: string;
}
const rows: Row[] = [];

// ---------------------------------------------------------------------------------------------
// CPU accounting (BENCH_DEBUG=1): where a case's time goes, broker process against load generator

/** CPU seconds (user + system, all threads) a process has used so far, from /proc. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Runs `f`, and with BENCH_DEBUG prints the broker's and the load generator's CPU over it (the wall time includes the case's settleDisk). */
async function withCpu<T>(label: string, broker: BrokerProcess, f: () => Promise<T>): Promise<T> {
  const b0 = processCpuSeconds(broker.child.pid ?? -1);
  const g0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = await f();
  if (process.env['BENCH_DEBUG']) {
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const g = process.cpuUsage(g0);
    const b = processCpuSeconds(broker.child.pid ?? -1) - b0;
    console.error(`${label}: wall ${wall.toFixed(2)} s, broker cpu ${b.toFixed(2)} s (${((b / wall) * 100).toFixed(0)} %), load generator cpu ${((g.user + g.system) / 1e6).toFixed(2)} s (${(((g.user + g.system) / 1e6 / wall) * 100).toFixed(0)} %)`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Baselines

/**
 * The wait before every write run, raw append and produce case alike: sync, so that no run is
 * measured against the kernel's write-back of the one before, then SETTLE_MS.
 *
 * What a write run costs on this VM depends on the memory the page cache takes. The VM hands
 * freed memory back to its host (virtio-balloon free page reporting) and most of its 24 GiB has
 * never been touched; the first write to a page the host does not back costs a host fault, seen
 * from inside as a slow copy. Measured with the raw append alone: 300–350 MB/s into such memory,
 * 1.6–1.9 GB/s into memory another raw append freed seconds before (700–1,000 MB/s into what a
 * deleted topic freed). So every measured write run here starts
 * the same way: right after a raw append of WRITE_BYTES deleted its file, then this settle, then
 * WRITE_BYTES written. A long-running broker is in that state too: its page cache is full and
 * new pages come from evicting old ones.
 */
function settleDisk(): void {
  execSync('sync');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SETTLE_MS);
}

/** Milliseconds the host took from this VM's CPUs ("steal" in /proc/stat, summed over CPUs), or NaN off Linux. */
function stealMs(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    return Number(cpu[8]) * 10; // USER_HZ = 100
  } catch {
    return NaN;
  }
}

/**
 * Appends WRITE_BYTES to a new file, 1 MiB per fs.writeSync, and fsyncs it. `mbps` is the append
 * alone (the baseline); `durableMbps` counts the fsync too, for the acks=-1 cases, which wait for
 * theirs. The file is kept until `release`, which the produce case measured against this run
 * calls before it starts (see settleDisk).
 */
function rawAppend(): { mbps: number; durableMbps: number; release(): void } {
  settleDisk();
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-raw-'));
  const fd = openSync(join(dir, 'raw.log'), 'w');
  const buf = Buffer.alloc(MiB, 7);
  const start = process.hrtime.bigint();
  let bytes = 0;
  while (bytes < WRITE_BYTES) {
    writeSync(fd, buf);
    bytes += buf.length;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  fsyncSync(fd);
  const durableSecs = Number(process.hrtime.bigint() - start) / 1e9;
  closeSync(fd);
  return { mbps: bytes / MiB / secs, durableMbps: bytes / MiB / durableSecs, release: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs this script in a fresh child process in `mode` and resolves with the one message it sends.
 * The receiving ends (the loopback receiver, the fetch consumer) run this way: in this process
 * they inherited whatever the cases before had done to its heap and allocator, and the fetch
 * consumer, fed 64 KiB socket reads, spent up to 2.3× the CPU per MB late in a full run that it
 * did in a fresh process (perf: page faults on fresh memory, V8's marking threads).
 */
function inChild<T>(mode: string, args: Array<string | number>): Promise<T> {
  const child = fork(fileURLToPath(import.meta.url), [mode, ...args.map(String)], { stdio: 'inherit' });
  return new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${mode} child exited (${code}) without a result`)));
  });
}

/** Sends `result` to the parent process and lets this child exit. */
function reply(result: unknown): void {
  process.send!(result, () => process.disconnect());
}

/** What a receiving child measured: bytes (and records) between two wall-clock times (epoch ms). */
interface Received {
  bytes: number;
  records: number;
  startedAt: number;
  endedAt: number;
}

/**
 * Runs `n` children in `mode` at once, each given its index, and the aggregate rate of what they
 * received. They start together: each prepares (connects), then waits for a common start time.
 */
async function inChildrenAtOnce(mode: string, n: number, args: (i: number) => Array<string | number>): Promise<{ mbps: number; recordsPerSec: number }> {
  const startAt = Date.now() + 1500;
  const got = await Promise.all(Array.from({ length: n }, (_, i) => inChild<Received>(mode, [startAt, ...args(i)])));
  const secs = (Math.max(...got.map((g) => g.endedAt)) - Math.min(...got.map((g) => g.startedAt))) / 1000;
  const sum = (f: (g: Received) => number): number => got.reduce((a, g) => a + f(g), 0);
  return { mbps: sum((g) => g.bytes) / MiB / secs, recordsPerSec: sum((g) => g.records) / secs };
}

/** Waits until the wall clock reaches `at` (epoch ms). */
function untilTime(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
}

/**
 * The loopback baseline: `pairs` receiver processes, each of which starts a writer process that
 * sends it 1 MiB buffers as fast as it can; the aggregate MB/s.
 */
async function loopbackMBps(pairs = 1): Promise<number> {
  return (await inChildrenAtOnce('--loopback-receiver', pairs, () => [])).mbps;
}

/**
 * The receiving end of a loopback pair, in its own process: it starts a writer process (`writer`,
 * with `writerArgs`), makes `connections` connections to it (the receiver connects because only a
 * connecting socket can take `onread`), and reads each into a reused 1 MiB buffer, as the fetch
 * consumer does, for SECONDS from `startAt`.
 */
async function loopbackReceiver(startAt: number, writer = '--loopback-writer', connections = 1, writerArgs: string[] = []): Promise<Received> {
  const child = fork(fileURLToPath(import.meta.url), [writer, String(startAt), String(SECONDS), ...writerArgs], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  let bytes = 0;
  let startedAt = 0;
  const ended = Array.from({ length: connections }, () => {
    return new Promise<void>((resolve) => {
      const s = connect({
        host: '127.0.0.1',
        port,
        onread: {
          buffer: Buffer.allocUnsafe(MiB),
          callback: (n) => {
            if (startedAt === 0) startedAt = Date.now();
            bytes += n;
            return true;
          },
        },
      });
      s.on('end', () => resolve());
    });
  });
  await Promise.all(ended);
  const result = { bytes, records: 0, startedAt, endedAt: Date.now() };
  child.kill();
  return result;
}

/**
 * A baseline for the sendfile fetch without a broker: the fetch topic's segment files, partition
 * i on connection i, sent with the broker's own sendfile addon in 16 MiB calls to a receiver
 * process reading as the fetch consumer does. What the kernel gives sendfile from this page cache
 * over loopback, with no Kafka protocol, request turnaround or broker in between.
 */
function sendfileBaselineMBps(dataDir: string, topic: string, partitions: number): Promise<number> {
  const files = Array.from({ length: partitions }, (_, p) => {
    const dir = join(dataDir, `${topic}-${p}`);
    return readdirSync(dir).filter((f) => f.endsWith('.log')).sort().map((f) => join(dir, f)).join(',');
  });
  return inChildrenAtOnce('--sendfile-receiver', 1, () => [partitions, files.join(';')]).then((r) => r.mbps);
}

/**
 * The sending end of a loopback pair or of the sendfile baseline: listens, tells the parent its
 * port, and from `startAt` until `seconds` later runs `send` on each connection it accepts (the
 * k-th connection gets k), then ends it.
 */
function serveFrom(startAt: number, seconds: number, send: (socket: Socket, k: number, deadline: number) => Promise<void>): void {
  let accepted = 0;
  const server = createServer((socket) => {
    const k = accepted++;
    const deadline = startAt + seconds * 1000;
    void untilTime(startAt)
      .then(() => send(socket, k, deadline))
      .then(() => socket.end());
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
}

/** The loopback writer: 1 MiB buffers as fast as the socket takes them. */
function loopbackWriter(startAt: number, seconds: number): void {
  const buf = Buffer.alloc(MiB, 3);
  serveFrom(startAt, seconds, async (s, _k, deadline) => {
    while (Date.now() < deadline) if (!s.write(buf)) await new Promise((resolve) => s.once('drain', resolve));
  });
}

/** The sendfile baseline's writer: connection k sends the files of spec's k-th list over and over. */
function sendfileWriter(startAt: number, seconds: number, spec: string): void {
  const sendfile = loadSendfile().sendfile!;
  const lists = spec.split(';').map((l) => l.split(','));
  serveFrom(startAt, seconds, async (s, k, deadline) => {
    const files = lists[k]!.map((path) => ({ fd: openSync(path, 'r'), size: statSync(path).size }));
    const fd = socketFd(s);
    for (let i = 0; Date.now() < deadline; i = (i + 1) % files.length) {
      const f = files[i]!;
      for (let at = 0; at < f.size && Date.now() < deadline; ) at += await sendfile(fd, f.fd, at, Math.min(16 * MiB, f.size - at), 20);
    }
    for (const f of files) closeSync(f.fd);
  });
}

// ---------------------------------------------------------------------------------------------
// Produce

function produceFrame(conn: ProtocolConnection, topic: string, partition: number, batch: Buffer, acks: number): Buffer {
  return conn.encodeRequest(messages.ApiKey.Produce, 7, {
    transactionalId: null,
    acks,
    timeoutMs: 30000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
  });
}

async function createTopic(bootstrapPort: number, name: string, partitions: number): Promise<void> {
  const c = await ProtocolConnection.connect('127.0.0.1', bootstrapPort);
  const resp = await c.send(messages.ApiKey.CreateTopics, 4, {
    ...messages.defaultCreateTopicsRequest(),
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10000,
  });
  c.close();
  if (resp.topics[0].errorCode !== 0) throw new Error(`create ${name}: error ${resp.topics[0].errorCode}`);
}

async function deleteTopic(broker: BrokerProcess, name: string): Promise<void> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const resp = await c.send(messages.ApiKey.DeleteTopics, 4, { ...messages.defaultDeleteTopicsRequest(), topicNames: [name], timeoutMs: 10000 });
  c.close();
  if (resp.responses[0].errorCode !== 0) throw new Error(`delete ${name}: error ${resp.responses[0].errorCode}`);
  // The broker unlinks a deleted partition's files at once; wait until its directories are gone.
  const deadline = Date.now() + 30000;
  while (readdirSync(broker.dataDir).some((d) => d.startsWith(`${name}-`))) {
    if (Date.now() > deadline) throw new Error(`${name}'s directories are still in ${broker.dataDir}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface ProduceShape {
  recordBytes: number;
  batchBytes: number;
  acks: number;
  connections: number;
  depth: number;
  /** Stop sending once this many bytes of batches have been sent; without it, after SECONDS. */
  bytes?: number;
}

/**
 * Sends pre-encoded produce frames on `connections` connections (one partition each), keeping
 * `depth` requests in flight per connection, until `bytes` (or SECONDS) and every answer is in.
 * Returns records/s and MB/s.
 */
async function produceThroughput(broker: BrokerProcess, opts: ProduceShape): Promise<{ recordsPerSec: number; mbps: number }> {
  const topic = `bench-${opts.recordBytes}-${opts.batchBytes}-${opts.acks}-${Date.now()}`;
  await createTopic(broker.port, topic, opts.connections);
  settleDisk();
  const value = Buffer.alloc(opts.recordBytes, 'x');
  const perBatch = Math.max(1, Math.floor(opts.batchBytes / (opts.recordBytes + 8)));
  const batch = encodeRecordBatch({ records: Array.from({ length: perBatch }, () => ({ key: null, value, timestamp: Date.now() })) });
  const deadline = Date.now() + SECONDS * 1000;
  let records = 0;
  let bytes = 0;
  let sentBytes = 0;
  const more = (): boolean => (opts.bytes !== undefined ? sentBytes < opts.bytes : Date.now() < deadline);
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: opts.connections }, async (_, p) => {
      const conn = await ProtocolConnection.connect('127.0.0.1', broker.port, 'bench');
      const frame = produceFrame(conn, topic, p, batch, opts.acks);
      // Count responses by frame boundaries without decoding (the broker's answers are small).
      let inFlight = 0;
      let pending: Buffer = Buffer.alloc(0);
      await new Promise<void>((resolve, reject) => {
        conn.socket.removeAllListeners('data');
        conn.socket.on('error', reject);
        const send = (): void => {
          while (inFlight < opts.depth && more()) {
            conn.socket.write(frame);
            sentBytes += batch.length;
            inFlight++;
          }
          if (inFlight === 0) resolve();
        };
        conn.socket.on('data', (d: Buffer) => {
          pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
          while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
            const size = pending.readInt32BE(0);
            const body = pending.subarray(8, 4 + size);
            const r = new Reader(body);
            const resp = messages.decodeProduceResponse(r, 7);
            const err = resp.responses[0]?.partitionResponses[0]?.errorCode ?? -1;
            if (err !== 0) return reject(new Error(`produce error ${err}`));
            pending = pending.subarray(4 + size);
            inFlight--;
            records += perBatch;
            bytes += batch.length;
          }
          send();
        });
        send();
      });
      conn.close();
    }),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  lastTopic = topic;
  return { recordsPerSec: records / secs, mbps: bytes / MiB / secs };
}
let lastTopic = '';

// ---------------------------------------------------------------------------------------------
// Fetch

/**
 * Received chunks of one response, walked as they arrive: `slice` reads bytes at an absolute
 * position (copying only when they span chunks), `dropBefore` releases chunks already walked.
 */
class ChunkList {
  private chunks: Buffer[] = [];
  private starts: number[] = [];
  length = 0;
  push(c: Buffer): void {
    this.chunks.push(c);
    this.starts.push(this.length);
    this.length += c.length;
  }
  /** `n` bytes at absolute position `pos`, which must not have been dropped. */
  slice(pos: number, n: number): Buffer {
    let i = this.starts.length - 1;
    while (this.starts[i]! > pos) i--;
    const c = this.chunks[i]!;
    const at = pos - this.starts[i]!;
    if (at + n <= c.length) return c.subarray(at, at + n);
    const out = Buffer.alloc(n);
    let copied = 0;
    for (let j = i; copied < n; j++) copied += this.chunks[j]!.copy(out, copied, j === i ? at : 0);
    return out;
  }
  /** Replaces the chunks still held with copies (they were views of a reused read buffer). */
  own(): void {
    this.chunks = this.chunks.map((c) => Buffer.from(c));
  }
  /** Releases the chunks that end at or before `pos`. */
  dropBefore(pos: number): void {
    let n = 0;
    while (n < this.chunks.length && this.starts[n]! + this.chunks[n]!.length <= pos) n++;
    if (n > 0) {
      this.chunks.splice(0, n);
      this.starts.splice(0, n);
    }
  }
}

/**
 * In `processes` fresh child processes (see inChild), started together: fetches a topic from
 * offset 0 as consumers would, one Fetch v4 request per partition in flight on its own
 * connection, starting over at the end of the topic until SECONDS have passed; process i reads
 * partitions i, i + processes, .... A consumer walks each response's batch headers as its chunks
 * arrive (finding the next offset and counting records) and lets go of the chunks it has walked:
 * it never joins a response into one buffer nor holds all of it, as the loopback baseline counts
 * bytes without keeping them. (Holding each 16 MiB response until it was complete cost the
 * consumer, the bottleneck here, about 3.5× the CPU per MB of the loopback receiver.) The MB/s
 * counts the whole batches delivered: a response that ends in part of a batch (the size limit
 * cuts it, as Kafka's does) sends that part again in the next response, and it is counted once.
 */
function fetchThroughput(broker: BrokerProcess, topic: string, partitions: number, processes = 1): Promise<{ mbps: number; recordsPerSec: number }> {
  // Process i reads partitions i, i + processes, ...
  return inChildrenAtOnce('--fetch-consumer', processes, (i) => [broker.port, topic, Array.from({ length: partitions }, (_, p) => p).filter((p) => p % processes === i).join(',')]);
}

async function fetchConsumer(startAt: number, port: number, topic: string, partitions: number[]): Promise<Received> {
  const cpu0 = process.cpuUsage();
  let bytes = 0;
  let records = 0;
  // Each connection reads into one reused 1 MiB buffer (Node's onread), as the loopback receiver
  // does: no fresh buffer (and page faults) per 64 KiB read.
  const handlers: Array<((d: Buffer) => void) | null> = partitions.map(() => null);
  const conns = await Promise.all(
    partitions.map((_, i) =>
      ProtocolConnection.connect('127.0.0.1', port, 'bench-fetch', { buffer: Buffer.allocUnsafe(MiB), callback: (n, buf) => (handlers[i]?.(Buffer.from(buf.buffer, buf.byteOffset, n)), true) }),
    ),
  );
  await untilTime(startAt);
  const startedAt = Date.now();
  const deadline = startAt + SECONDS * 1000;
  // For BENCH_DEBUG: the time from each request to the first byte of its response, during which
  // that connection carries nothing.
  let turnaroundMs = 0;
  let requests = 0;
  await Promise.all(
    partitions.map(async (partition, i) => {
      const conn = conns[i]!;
      let offset = 0;
      while (Date.now() < deadline) {
        const frame = conn.encodeRequest(messages.ApiKey.Fetch, 4, {
          ...messages.defaultFetchRequest(),
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 64 * MiB,
          topics: [{ topic, topicId: messages.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...messages.defaultFetchRequestFetchPartition(), partition, fetchOffset: offset, partitionMaxBytes: 16 * MiB }] }],
        });
        const got = await new Promise<{ length: number; whole: number }>((resolve, reject) => {
          const list = new ChunkList();
          let frameEnd = -1; // absolute end of the response frame, once its size is known
          let at = -1; // absolute position of the next batch header, once the response header is parsed
          let end = -1; // absolute end of the records
          let length = 0;
          let whole = 0; // bytes of the whole batches in the records (a batch cut off by the size limit comes again next time)
          // Called with a view of the connection's read buffer, which the next read overwrites:
          // what the walk has not let go of is copied (a partial batch header, at most).
          const onData = (d: Buffer): void => {
            try {
              walk(d);
              if (handlers[i] !== null) list.own();
            } catch (e) {
              handlers[i] = null;
              reject(e as Error);
            }
          };
          const walk = (d: Buffer): void => {
            list.push(d);
            if (frameEnd < 0 && list.length >= 4) frameEnd = 4 + list.slice(0, 4).readInt32BE(0);
            if (at < 0 && frameEnd >= 0 && list.length >= Math.min(frameEnd, 512)) {
              // v4 response: size, correlation id, throttle, [topic: name, [partition: index, error, hw, lso, aborted[], records]]
              const head = new Reader(list.slice(4, Math.min(frameEnd, 512) - 4));
              head.int32();
              head.int32();
              head.int32();
              head.string();
              head.int32();
              head.int32();
              const errorCode = head.int16();
              if (errorCode !== 0) throw new Error(`fetch ${topic}-${partition} at ${offset}: error ${errorCode}`);
              head.int64();
              head.int64();
              const aborted = head.int32();
              for (let i = 0; i < aborted; i++) head.raw(16);
              length = head.int32();
              at = 4 + head.offset;
              end = at + Math.max(0, length);
            }
            if (at >= 0) {
              // Walk every batch header that has arrived; a batch cut off by the size limit ends the walk.
              while (at + 61 <= Math.min(end, list.length)) {
                const h = list.slice(at, 61);
                const size = h.readInt32BE(8) + 12;
                if (at + size > end) {
                  at = end;
                  break;
                }
                offset = h.readInt32BE(0) * 2 ** 32 + h.readUInt32BE(4) + h.readInt32BE(23) + 1;
                records += h.readInt32BE(57);
                whole += size;
                at += size;
              }
              list.dropBefore(Math.min(at, list.length));
            }
            if (frameEnd >= 0 && list.length >= frameEnd) {
              handlers[i] = null;
              resolve({ length, whole });
            }
          };
          const sentAt = performance.now();
          let first = true;
          handlers[i] = (d) => {
            if (first) {
              first = false;
              turnaroundMs += performance.now() - sentAt;
              requests++;
            }
            onData(d);
          };
          conn.socket.write(frame);
        });
        // At the end of the topic, start again from its beginning: the case reads the page cache for SECONDS.
        if (got.length <= 0) offset = 0;
        bytes += got.whole;
      }
      conn.close();
    }),
  );
  const endedAt = Date.now();
  if (process.env['BENCH_DEBUG']) {
    const c = process.cpuUsage(cpu0);
    console.error(
      `fetch consumer of partitions ${partitions.join(',')} (own process): cpu ${((c.user + c.system) / 1e6).toFixed(2)} s over ${((endedAt - startedAt) / 1000).toFixed(2)} s; ` +
        `${requests} requests, ${(turnaroundMs / requests).toFixed(2)} ms from a request to its first byte on average`,
    );
  }
  return { bytes, records, startedAt, endedAt };
}

// ---------------------------------------------------------------------------------------------
// End-to-end latency at a fixed rate

async function latency(broker: BrokerProcess, ratePerSec: number, acks: number): Promise<{ p50: number; p99: number; p999: number; count: number }> {
  const topic = `bench-latency-${acks}-${Date.now()}`;
  await createTopic(broker.port, topic, 1);
  settleDisk();
  const producer = await ProtocolConnection.connect('127.0.0.1', broker.port, 'bench-lat-p');
  const consumer = await ProtocolConnection.connect('127.0.0.1', broker.port, 'bench-lat-c');
  const epoch = process.hrtime.bigint();
  const wallEpoch = Date.now();
  const nowMs = (): number => Number(process.hrtime.bigint() - epoch) / 1e6;
  const samples: number[] = [];
  // The first three seconds warm up (JIT tiers, page cache, socket buffers) and are not measured:
  // with one second the first case measured the broker still optimising its hot paths.
  const warmup = ratePerSec * 3;
  const total = ratePerSec * SECONDS + warmup;
  // Send times by sequence number, in a typed array: no per-record objects for the GC to chase.
  const sentAt = new Float64Array(total).fill(-1);
  let received = 0;
  let stop = false;
  // Producer: one record per request, paced to the rate, from a pre-encoded frame: only the
  // sequence number in the value and the batch CRC change per record.
  const marker = Buffer.from('SEQ#MARKER#strand');
  const template = encodeRecordBatch({ records: [{ key: null, value: Buffer.concat([marker, Buffer.alloc(100 - marker.length)]), timestamp: Date.now() }] });
  const frameTemplate = produceFrame(producer, topic, 0, template, acks);
  const batchAt = frameTemplate.length - template.length;
  const seqAt = template.indexOf(marker);
  // Consumer: long-poll fetch, record receipt time of each sequence number.
  const consumerDone = (async () => {
    let offset = 0;
    while (!stop) {
      const resp = await consumer.send(messages.ApiKey.Fetch, 11, {
        ...messages.defaultFetchRequest(),
        maxWaitMs: 500,
        minBytes: 1,
        maxBytes: 16 * MiB,
        topics: [{ topic, topicId: messages.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...messages.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: offset, partitionMaxBytes: 16 * MiB }] }],
      });
      const now = nowMs();
      const recs = resp.responses[0].partitions[0].records as Buffer;
      // Every batch is a copy of the producer's template: one record, its sequence number at
      // a known position. Walk batch headers; decoding records would only measure the client.
      for (let at = 0; at + 61 <= recs.length; ) {
        const size = recs.readInt32BE(at + 8) + 12;
        if (at + size > recs.length) break;
        const off = recs.readInt32BE(at) * 2 ** 32 + recs.readUInt32BE(at + 4);
        if (off >= offset) {
          const seq = recs.readUInt32BE(at + seqAt);
          const t0 = seq < total ? sentAt[seq]! : -1;
          if (t0 >= 0 && seq >= warmup) samples.push(now - t0);
          received++;
          offset = off + 1;
        }
        at += size;
      }
      if (received >= total) stop = true;
    }
  })();
  const start = process.hrtime.bigint();
  const perMs = ratePerSec / 1000;
  let seq = 0;
  while (seq < total) {
    const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
    const due = Math.min(total, Math.floor(elapsedMs * perMs));
    while (seq < due) {
      const frame = Buffer.from(frameTemplate);
      frame.writeUInt32BE(seq, batchAt + seqAt);
      frame.writeUInt32BE(crcOf(frame, batchAt), batchAt + 17);
      sentAt[seq] = nowMs();
      producer.socket.write(frame);
      seq++;
    }
    // Sleep to the next millisecond tick instead of spinning: the broker needs the core.
    await new Promise((r) => setTimeout(r, 1));
  }
  const timeout = setTimeout(() => (stop = true), 10000);
  await consumerDone;
  clearTimeout(timeout);
  producer.close();
  consumer.close();
  if (process.env['BENCH_DEBUG']) {
    const worst = samples.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 10);
    console.error('worst latencies (ms, sample index):', worst.map(([v, i]) => `${v.toFixed(1)}@${i}`).join(' '));
    // Runs of consecutive samples over 2 ms, with the wall-clock time of their first send: a
    // pause of both processes shows as one run per pause; slow handling as many short ones.
    const wallAt = (seq: number): string => ((wallEpoch + sentAt[seq]!) / 1000).toFixed(3);
    const over = (ms: number): number => samples.filter((v) => v > ms).length;
    console.error(`samples over 1 / 2 / 5 / 10 ms: ${over(1)} / ${over(2)} / ${over(5)} / ${over(10)} of ${samples.length}`);
    const episodes: string[] = [];
    for (let i = 0; i < samples.length; ) {
      if (samples[i]! <= 2) {
        i++;
        continue;
      }
      let j = i;
      let max = 0;
      while (j < samples.length && samples[j]! > 2) max = Math.max(max, samples[j++]!);
      episodes.push(`${wallAt(warmup + i)} ×${j - i} max ${max.toFixed(1)}`);
      i = j;
    }
    console.error(`runs over 2 ms (${episodes.length}): ${episodes.join(', ')}`);
  }
  samples.sort((a, b) => a - b);
  const pct = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { p50: pct(0.5), p99: pct(0.99), p999: pct(0.999), count: samples.length };
}

// ---------------------------------------------------------------------------------------------

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  console.log(`Strand benchmark — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${fmt(totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ${SECONDS} s per case`);
  console.log('The broker and this load generator share the machine.\n');
  // Baselines vary run to run on a shared machine: measure each where it is used (the raw append
  // right before each produce case, the loopback interleaved with the fetch rounds).
  // The middle element by `key` (the upper middle of an even count).
  const medianBy = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
  const median = (xs: number[]): number => medianBy(xs, (x) => x);
  // Each produce case is compared with a raw append run right before it, of as many bytes and
  // from the same memory state (see settleDisk); with no produce case, three runs give the
  // baseline row.
  const rawRuns: number[] = [];
  // The receiving side in one process or in two (loopback: writer → receiver pairs; fetch:
  // consumer processes, a partition each): one process is the bottleneck of a fetch from the page
  // cache, and two let the machine's two cores both receive, as two loopback pairs do.
  const SHAPES = [1, 2];
  const loopRuns = new Map<number, number[]>(SHAPES.map((n) => [n, []]));
  const fetchRuns = new Map<number, Array<{ mbps: number; recordsPerSec: number }>>(SHAPES.map((n) => [n, []]));
  const copiedRuns = new Map<number, Array<{ mbps: number; recordsPerSec: number }>>(SHAPES.map((n) => [n, []]));
  const sendfileRuns: number[] = [];

  const overrides = { 'log.segment.bytes': 512 * MiB, 'message.max.bytes': 2 * MiB };
  const first = await startBroker({ overrides });
  let broker = first;
  const zeroCopy = loadSendfile();
  try {
    // The last case's topic is the one the fetch cases read; every other case's topic is deleted
    // after it, which keeps the run's disk use to a few WRITE_BYTES.
    const cases: ProduceShape[] = [
      { recordBytes: 100, batchBytes: 16 * 1024, acks: 1, connections: 2, depth: 32 },
      { recordBytes: 100, batchBytes: 16 * 1024, acks: -1, connections: 2, depth: 32 },
      { recordBytes: 1024, batchBytes: 16 * 1024, acks: 1, connections: 2, depth: 32 },
      { recordBytes: 100, batchBytes: MiB, acks: 1, connections: 2, depth: 4 },
      { recordBytes: 1024, batchBytes: MiB, acks: -1, connections: 2, depth: 4 },
      { recordBytes: 1024, batchBytes: MiB, acks: 1, connections: 2, depth: 4 },
    ].filter((c, i, all) => runs('produce') || (runs('fetch') && i === all.length - 1));
    let fetchTopic = '';
    for (const [i, c] of cases.entries()) {
      // An unmeasured raw append first: the measured one then starts right after WRITE_BYTES of a
      // raw append's file were freed, as the case does after the measured one's.
      rawAppend().release();
      const base = rawAppend();
      rawRuns.push(base.mbps);
      base.release();
      const r = await withCpu(`produce ${c.recordBytes}/${c.batchBytes}/${c.acks}`, broker, () => produceThroughput(broker, { ...c, bytes: WRITE_BYTES }));
      if (i === cases.length - 1) fetchTopic = lastTopic;
      else await deleteTopic(broker, lastTopic);
      const big = c.batchBytes >= MiB;
      rows.push({
        case: `produce ${c.recordBytes} B records, ${big ? '1 MiB' : '16 KiB'} batches, acks=${c.acks}${c.acks === -1 ? ' (fsync)' : ''}`,
        records: fmt(r.recordsPerSec),
        mbps: fmt(r.mbps),
        vsBaseline:
          `${fmt((r.mbps / base.mbps) * 100)} % of raw append (${fmt(base.mbps)} MB/s right before)` +
          (c.acks === -1 ? `; ${fmt((r.mbps / base.durableMbps) * 100)} % of it with its fsync timed (${fmt(base.durableMbps)} MB/s)` : ''),
        note: `${c.connections} connections × ${c.depth} in flight; ${fmt(WRITE_BYTES / MiB)} MiB`,
      });
    }
    // The fetch topic was written moments ago: let the kernel write it back first, so the reads
    // are not measured against that write-back (sync), as every write case starts (settleDisk).
    if (runs('fetch')) settleDisk();
    for (let round = 0; round < 3; round++) {
      if (runs('fetch') && zeroCopy.sendfile !== null) sendfileRuns.push(await sendfileBaselineMBps(broker.dataDir, fetchTopic, 2));
      for (const n of SHAPES) {
        loopRuns.get(n)!.push(await loopbackMBps(n));
        if (runs('fetch')) fetchRuns.get(n)!.push(await withCpu(`fetch sendfile, ${n} consumer process(es) (they report their own CPU above)`, broker, () => fetchThroughput(broker, fetchTopic, 2, n)));
      }
    }
    // The same fetches with sendfile off (a broker restarted on the same data): what zero-copy buys.
    if (runs('fetch') && zeroCopy.sendfile !== null) {
      await broker.stop();
      broker = await startBroker({ dataDir: first.dataDir, overrides: { ...overrides, 'strand.network.sendfile': 'false' } });
      for (let round = 0; round < 3; round++) {
        for (const n of SHAPES) copiedRuns.get(n)!.push(await withCpu(`fetch copied, ${n} consumer process(es) (they report their own CPU above)`, broker, () => fetchThroughput(broker, fetchTopic, 2, n)));
      }
      await broker.stop();
      broker = await startBroker({ dataDir: first.dataDir, overrides });
    }
    const paired = rawRuns.length > 0;
    if (!paired) {
      for (let i = 0; i < 3; i++) {
        const run = rawAppend();
        rawRuns.push(run.mbps);
        run.release();
      }
    }
    rows.unshift({ case: 'baseline: raw fs.writeSync append, 1 MiB buffers', records: '', mbps: fmt(median(rawRuns)), vsBaseline: '100 %', note: `median of ${rawRuns.map((x) => fmt(x)).join(' / ')}${paired ? ' (one right before each produce case)' : ''}; ${fmt(WRITE_BYTES / MiB)} MiB each into the page cache, fsync after the timing` });
    const loop = new Map(SHAPES.map((n) => [n, median(loopRuns.get(n)!)]));
    const procs = (n: number): string => (n === 1 ? 'one consumer process' : `${n} consumer processes, a partition each`);
    rows.splice(
      1,
      0,
      ...SHAPES.map((n) => ({
        case: n === 1 ? 'baseline: loopback TCP, a writer process → a receiver process' : `baseline: loopback TCP, ${n} such pairs at once`,
        records: '',
        mbps: fmt(loop.get(n)!),
        vsBaseline: '100 %',
        note: `median of ${loopRuns.get(n)!.map((x) => fmt(x)).join(' / ')}; 1 MiB writes${n === 1 ? '' : '; aggregate'}`,
      })),
    );
    const sendfileBase = sendfileRuns.length > 0 ? median(sendfileRuns) : NaN;
    if (sendfileRuns.length > 0) {
      rows.splice(1 + SHAPES.length, 0, {
        case: "baseline: sendfile of the fetch topic's segment files to a receiver process, no broker",
        records: '',
        mbps: fmt(sendfileBase),
        vsBaseline: `${fmt((sendfileBase / loop.get(1)!) * 100)} % of loopback`,
        note: `median of ${sendfileRuns.map((x) => fmt(x)).join(' / ')}; a connection per partition, 16 MiB per call, the broker's addon`,
      });
    }
    const how = zeroCopy.sendfile !== null ? 'sendfile' : `copied: ${zeroCopy.reason}`;
    const medianRun = (results: Array<{ mbps: number; recordsPerSec: number }>): { mbps: number; recordsPerSec: number } => medianBy(results, (r) => r.mbps);
    const fetchRow = (what: string, n: number, results: Array<{ mbps: number; recordsPerSec: number }>, note: string): Row => {
      const f = medianRun(results);
      const vs = (m: number): string => `${fmt((f.mbps / loop.get(m)!) * 100)} %`;
      return {
        case: `${what}, ${procs(n)}`,
        records: fmt(f.recordsPerSec),
        mbps: fmt(f.mbps),
        vsBaseline: n === 1 ? `${vs(1)} of loopback` : `${vs(n)} of ${n} loopback pairs; ${vs(1)} of one`,
        note: `median of ${results.map((x) => fmt(x.mbps)).join(' / ')}; ${note}`,
      };
    };
    for (const n of SHAPES) {
      if (fetchRuns.get(n)!.length === 0) continue;
      const row = fetchRow(`fetch 1 KiB records (stored 1 MiB batches), from the page cache (${how})`, n, fetchRuns.get(n)!, '2 partitions, a connection each, 16 MiB per fetch');
      if (n === 1 && sendfileRuns.length > 0) row.vsBaseline += `; ${fmt((medianRun(fetchRuns.get(1)!).mbps / sendfileBase) * 100)} % of sendfile without a broker`;
      rows.push(row);
    }
    for (const n of SHAPES) {
      if (copiedRuns.get(n)!.length > 0) rows.push(fetchRow('fetch, the same with strand.network.sendfile=false (copied through user space)', n, copiedRuns.get(n)!, 'broker restarted on the same data'));
    }
    for (const acks of runs('latency') ? [1, -1] : []) {
      const steal0 = stealMs();
      const l = await withCpu(`latency acks=${acks}`, broker, () => latency(broker, 10000, acks));
      const steal = stealMs() - steal0;
      rows.push({
        case: `end-to-end latency at 10,000 records/s, acks=${acks}`,
        records: fmt(l.count),
        mbps: '',
        vsBaseline: `p50 ${fmt(l.p50, 2)} ms · p99 ${fmt(l.p99, 2)} ms · p999 ${fmt(l.p999, 2)} ms`,
        note: `produce → long-poll fetch, one record per request; after 3 s of warm-up; host steal ${Number.isNaN(steal) ? 'n/a' : `${fmt(steal)} ms`} over the case`,
      });
    }
  } finally {
    await broker.stop();
    if (process.env['BENCH_DEBUG']) writeFileSync(join(tmpdir(), 'strand-bench-broker.log'), broker === first ? first.output() : first.output() + broker.output());
    first.cleanup();
  }
  if (runs('cleaner')) rows.push(...(await cleanerBench({ seconds: SECONDS, settleDisk, produceThroughput, latency, stealMs })));
  const header = ['case', 'records/s', 'MB/s', 'vs baseline', 'note'];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`| ${header.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${r.case} | ${r.records} | ${r.mbps} | ${r.vsBaseline} | ${r.note} |`);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === '--loopback-writer') {
  loopbackWriter(Number(args[0]), Number(args[1]));
} else if (mode === '--loopback-receiver') {
  void loopbackReceiver(Number(args[0])).then(reply);
} else if (mode === '--sendfile-writer') {
  sendfileWriter(Number(args[0]), Number(args[1]), args[2]!);
} else if (mode === '--sendfile-receiver') {
  void loopbackReceiver(Number(args[0]), '--sendfile-writer', Number(args[1]), [args[2]!]).then(reply);
} else if (mode === '--fetch-consumer') {
  void fetchConsumer(Number(args[0]), Number(args[1]), args[2]!, args[3]!.split(',').map(Number)).then(reply);
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
