/**
 * Issue 5's acceptance point for Strand's client: an exactly-once pipeline (consume → transform
 * → produce, input offsets committed in the transaction; runExactlyOnce) processes 100,000
 * records with a forced crash in the middle and ends with each output record exactly once.
 *
 * A real broker process; an input topic of 100,000 records over 4 partitions; the pipeline
 * worker (eos-worker.ts) as a child process. The first worker is SIGKILLed while it holds a
 * transaction open (its output and input offsets written, not committed) after more than a
 * quarter of the input is committed; a second worker with the same transactional id and group
 * fences it, the open transaction is aborted, and it runs to the end. A read_committed reader
 * then finds every input record's output exactly once (and a read_uncommitted one finds the
 * aborted extra), and the group's committed offsets are at the end of the input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Kafka } from '../../src/client/kafka.js';
import { stringSerde } from '../../src/client/serializers.js';
import * as m from '../../src/protocol/messages/index.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

const TOTAL = 100000;
const PARTITIONS = 4;
const WORKER = fileURLToPath(new URL('./eos-worker.js', import.meta.url));
const OVERRIDES = {
  'transaction.state.log.num.partitions': 3,
  'offsets.topic.num.partitions': 3,
  'group.initial.rebalance.delay.ms': 0,
  'strand.acks.all.fsync': false,
};

let broker: BrokerProcess;
let kafka: Kafka;
const children: ChildProcess[] = [];

before(async () => {
  broker = await startBroker({ overrides: OVERRIDES });
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'eos-test' });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not stop cleanly:\n${broker.output().slice(-3000)}`);
  assert.doesNotMatch(broker.output(), / ERROR /);
});

interface Worker {
  child: ChildProcess;
  /** Resolves with the first event line matching `event`. */
  waitFor(event: string, timeoutMs: number, where?: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
}

function startWorker(envs: Record<string, string>): Worker {
  const child = spawn(process.execPath, [WORKER], { env: { ...process.env, ...envs }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let out = '';
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not an event line
      }
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => {
    for (const w of waiters.splice(0)) w();
    resolve({ code, signal });
  }));
  const log = (): string => out.split('\n').slice(-40).join('\n');
  return {
    child,
    exited,
    log,
    async waitFor(event, timeoutMs, where = () => true) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.find((e) => e['event'] === event && where(e));
        if (hit) return hit;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker exited (${child.exitCode ?? child.signalCode}) before "${event}":\n${log()}`);
        if (Date.now() > deadline) throw new Error(`no "${event}" from the worker within ${timeoutMs} ms:\n${log()}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

/** ListOffsets latest per partition: the high watermark (isolation 0) or the last stable offset (1). */
async function latestOffsets(topic: string, isolationLevel: 0 | 1): Promise<number[]> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, 2, {
      replicaId: -1,
      isolationLevel,
      timeoutMs: 0,
      topics: [{ name: topic, partitions: Array.from({ length: PARTITIONS }, (_, p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 })) }],
    });
    return r.topics[0]!.partitions.sort((a, b) => a.partitionIndex - b.partitionIndex).map((p) => p.offset);
  } finally {
    c.close();
  }
}

/** Every output value read with `isolationLevel` until `expected` arrived (plus a short while to catch extras). */
async function readOutput(topic: string, isolationLevel: 'read_committed' | 'read_uncommitted', expected: number): Promise<string[]> {
  const c = kafka.consumer<Buffer | null, string | null>({ valueDeserializer: stringSerde, isolationLevel, maxWaitMs: 100 });
  c.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic, partition: p, offset: 0 })));
  const values: string[] = [];
  let lastAt = Date.now();
  await c.run({
    eachBatch: ({ batch }) => {
      for (const m of batch.messages) values.push(m.value!);
      lastAt = Date.now();
    },
  });
  const deadline = Date.now() + 30000;
  while ((values.length < expected || Date.now() - lastAt < 500) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await c.close();
  return values;
}

/**
 * Runs the pipeline over TOTAL records: a first worker SIGKILLed while it holds a transaction
 * open, then a second one to the end (with `killBroker`, the broker is also killed -9 and
 * restarted on its data directory while the second worker runs); then checks the output.
 */
async function pipeline(t: { diagnostic(msg: string): void }, name: string, killBroker: boolean): Promise<void> {
  const input = `${name}-input`;
  const output = `${name}-output`;
  const group = `${name}-group`;
  let admin = kafka.admin();
  await admin.createTopics([{ name: input, partitions: PARTITIONS }, { name: output, partitions: PARTITIONS }]);
  const producer = kafka.producer<string, string>({ keySerializer: stringSerde, valueSerializer: stringSerde, lingerMs: 5, batchBytes: 8192 }); // ~450 records a batch: ~200 transactions
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < TOTAL; i += 10000) sends.push(producer.sendBatch(Array.from({ length: 10000 }, (_, j) => ({ topic: input, key: `k${i + j}`, value: String(i + j) }))));
  await Promise.all(sends);
  await producer.close();

  const envs = { BOOTSTRAP: broker.bootstrap, INPUT: input, OUTPUT: output, GROUP: group, TXN_ID: `${name}-txn`, MAX_PARTITION_BYTES: '8192' };
  const first = startWorker({ ...envs, HOLD_AFTER: String(TOTAL / 4) });
  const held = await first.waitFor('holding', 60000);
  const committedBefore = (await admin.fetchOffsets(group)).reduce((n, o) => n + o.offset, 0);
  assert.ok(committedBefore >= TOTAL / 4 && committedBefore < TOTAL, `committed ${committedBefore} input records before the crash`);
  // The open transaction holds the output's last stable offset back.
  const stable = await latestOffsets(output, 1);
  const end = await latestOffsets(output, 0);
  assert.ok(stable.some((s, i) => s < end[i]!), `an open transaction at the kill: LSO ${stable.join(',')} < end ${end.join(',')}`);
  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  t.diagnostic(`worker killed with ${committedBefore} input records committed, holding ${JSON.stringify(held)}`);

  const second = startWorker(envs);
  if (killBroker) {
    await second.waitFor('committed', 60000, (e) => Number(e['records']) >= TOTAL / 5);
    await admin.close();
    await broker.kill();
    broker = await startBroker({ dataDir: broker.dataDir, port: broker.port, overrides: OVERRIDES });
    admin = kafka.admin();
    t.diagnostic('broker killed -9 and restarted while the second worker ran');
  }
  await second.waitFor('done', 90000);
  const exit = await second.exited;
  assert.equal(exit.code, 0, second.log());

  const committed = await readOutput(output, 'read_committed', TOTAL);
  const seen = new Uint8Array(TOTAL);
  const problems: string[] = [];
  for (const v of committed) {
    const i = Number(v.slice(4));
    if (!v.startsWith('out-') || !Number.isInteger(i) || i < 0 || i >= TOTAL) problems.push(`unexpected ${v}`);
    else if (seen[i]++ > 0) problems.push(`duplicate ${v}`);
  }
  const missing = seen.reduce((n, x) => n + (x === 0 ? 1 : 0), 0);
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} bad records`);
  assert.equal(missing, 0, `${missing} input records have no output`);
  assert.equal(committed.length, TOTAL);

  const all = await readOutput(output, 'read_uncommitted', TOTAL + 1);
  assert.ok(all.length > TOTAL, 'the killed worker\'s open transaction left aborted records in the log');
  t.diagnostic(`read_committed: ${committed.length} records, each input once; read_uncommitted: ${all.length}`);
  const offsets = await admin.fetchOffsets(group);
  assert.equal(offsets.reduce((n, o) => n + o.offset, 0), TOTAL);
  await admin.close();
}

test('an exactly-once pipeline in Strand\'s client processes 100,000 records with a SIGKILL in the middle and writes each output record exactly once', { timeout: 120000 }, async (t) => {
  await pipeline(t, 'eos', false);
});

test('... and also when the broker is killed -9 and restarted while the pipeline runs', { timeout: 120000 }, async (t) => {
  await pipeline(t, 'eos-broker-kill', true);
});
