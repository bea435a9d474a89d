/**
 * The log cleaner's state as users see it: `strand topics cleaner` (table and --json),
 * `strand topics describe` (DIRTY-RATIO, LAST-CLEANED for compacted topics), both through the
 * DescribeLogCleaner extension api, and the Prometheus gauges. The expected dirty ratio is computed
 * independently from the segment files on disk; the last run from the pass the test runs itself.
 * (That KafkaJS, librdkafka and kafka-python ignore the extension's api key in ApiVersions is shown
 * by test/interop/*, which run against a broker advertising it.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { Kafka } from '../../src/client/kafka.js';
import { metricsSourceOf } from '../../src/broker/metrics.js';
import { STRAND_BIN } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { run } from '../interop/helpers.js';

let broker: StrandTestBroker;
const TOPIC = 'cleaner-cli';
const T = { timeout: 60000 };

before(async () => {
  // The cleaner task sleeps for a minute between looks: the test runs passes itself.
  broker = await startStrand({ config: { 'log.cleaner.backoff.ms': 600000 } });
  await broker.createTopics([
    { name: TOPIC, partitions: 2, configs: { 'cleanup.policy': 'compact', 'segment.bytes': '2048', 'delete.retention.ms': '3600000' } },
    { name: 'not-compacted', configs: { 'cleanup.policy': 'delete' } },
  ]);
});
after(async () => {
  await broker?.stop();
});

async function strand(args: string[]): Promise<string> {
  const r = await run(process.execPath, [STRAND_BIN, ...args, '--bootstrap-server', broker.bootstrap], { env: { STRAND_BOOTSTRAP_SERVER: '' }, timeoutMs: 20000 });
  if (r.code !== 0) throw new Error(`strand ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

async function produceRounds(rounds: number, tag: string): Promise<void> {
  const producer = new Kafka({ brokers: [broker.bootstrap] }).producer<string, string>({ lingerMs: 0 });
  for (let r = 0; r < rounds; r++) for (let k = 0; k < 8; k++) await producer.send({ topic: TOPIC, partition: 0, key: `k${k}`, value: `${tag}-${r}-`.padEnd(80, '.') });
  await producer.close();
}

/** Dirty ratio from the files: closed segments at or above `checkpoint` are dirty, those below clean. */
function ratioOnDisk(checkpoint: number): { clean: number; dirty: number; ratio: number } {
  const dir = join(broker.dataDir, `${TOPIC}-0`);
  const logs = fs.readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
  let clean = 0;
  let dirty = 0;
  for (const f of logs.slice(0, -1)) {
    const size = fs.statSync(join(dir, f)).size;
    if (Number(f.slice(0, 20)) < checkpoint) clean += size;
    else dirty += size;
  }
  return { clean, dirty, ratio: clean + dirty === 0 ? 0 : dirty / (clean + dirty) };
}

interface CleanerJson {
  brokers: Array<{ passes: number; maxDirtyRatio: number; lastRun: { topic: string; partition: number; endMs: number } | null }>;
  topics: Array<{ name: string; cleanupPolicy: string; partitions: Array<{ partition: number; dirtyRatio: number; cleanBytes: number; dirtyBytes: number; cleanerCheckpoint: number; firstDirtyOffset: number; lastRun: { endMs: number; recordsRemoved: number; recordsRead: number } | null }> }>;
}

test('strand topics cleaner and describe: dirty ratio as on disk before and after a pass, the last pass, --json', T, async () => {
  await produceRounds(6, 'a');
  const before = ratioOnDisk(0);
  assert.ok(before.dirty > 0 && before.clean === 0);
  let j = JSON.parse(await strand(['topics', 'cleaner', '--json'])) as CleanerJson;
  assert.deepEqual(j.topics.map((t) => t.name).filter((n) => !n.startsWith('__')), [TOPIC], 'without names: the compacted topics only');
  assert.ok(j.topics.some((t) => t.name === '__consumer_offsets'), 'internal compacted topics are listed');
  let p0 = j.topics.find((t) => t.name === TOPIC)!.partitions[0]!;
  assert.equal(p0.dirtyRatio, 1);
  assert.equal(p0.dirtyBytes, before.dirty);
  assert.equal(p0.cleanerCheckpoint, -1);
  assert.equal(p0.lastRun, null);
  assert.equal(j.brokers[0]!.lastRun, null);

  const log = broker.broker.replicaManager.getPartition(TOPIC, 0)!.log;
  const stats = (await broker.broker.logManager.cleaner.clean(log, { force: true }))!;
  assert.ok(stats !== null);
  await produceRounds(4, 'b');
  const after = ratioOnDisk(stats.cleanedUpTo);
  assert.ok(after.clean > 0 && after.dirty > 0, `clean ${after.clean}, dirty ${after.dirty}`);

  j = JSON.parse(await strand(['topics', 'cleaner', TOPIC, '--json'])) as CleanerJson;
  assert.equal(j.topics.length, 1);
  p0 = j.topics[0]!.partitions[0]!;
  assert.equal(p0.cleanerCheckpoint, stats.cleanedUpTo);
  assert.equal(p0.firstDirtyOffset, stats.cleanedUpTo);
  assert.equal(p0.cleanBytes, after.clean);
  assert.equal(p0.dirtyBytes, after.dirty);
  assert.ok(Math.abs(p0.dirtyRatio - after.ratio) < 1e-12, `${p0.dirtyRatio} vs ${after.ratio}`);
  assert.equal(p0.lastRun!.endMs, stats.endMs);
  assert.equal(p0.lastRun!.recordsRemoved, stats.recordsRead - stats.recordsKept);
  assert.ok(p0.lastRun!.recordsRemoved > 0);
  assert.equal(j.topics[0]!.partitions[1]!.lastRun, null, 'partition 1 was never cleaned');
  const brokerRun = (j.brokers[0] as CleanerJson['brokers'][number]).lastRun;
  assert.deepEqual(brokerRun && { topic: brokerRun.topic, partition: brokerRun.partition, endMs: brokerRun.endMs }, { topic: TOPIC, partition: 0, endMs: stats.endMs });
  assert.ok(j.brokers[0]!.maxDirtyRatio >= p0.dirtyRatio);

  const text = await strand(['topics', 'cleaner', TOPIC]);
  assert.match(text, /DIRTY-RATIO/);
  assert.match(text, new RegExp(`${TOPIC}\\s+0\\s+compact\\s+${after.ratio.toFixed(3)}`));
  assert.match(text, new RegExp(new Date(stats.endMs).toISOString().replace(/\./g, '\\.')));

  const described = await strand(['topics', 'describe', TOPIC]);
  assert.match(described, /DIRTY-RATIO\s+LAST-CLEANED/);
  assert.match(described, new RegExp(`${after.ratio.toFixed(3)}\\s+${new Date(stats.endMs).toISOString().replace(/\./g, '\\.')}`));
  const plain = await strand(['topics', 'describe', 'not-compacted']);
  assert.doesNotMatch(plain, /DIRTY-RATIO/, 'no cleaner columns for a delete topic');
  const dj = JSON.parse(await strand(['topics', 'describe', TOPIC, '--json'])) as Array<{ partitions: Array<{ cleaner?: { dirtyRatio: number } }> }>;
  assert.ok(Math.abs(dj[0]!.partitions[0]!.cleaner!.dirtyRatio - after.ratio) < 1e-12);

  // A named topic that does not exist is Kafka's error.
  await assert.rejects(strand(['topics', 'cleaner', 'no-such-topic']), /UNKNOWN_TOPIC_OR_PARTITION/);
});

test('Prometheus gauges: per-partition dirty ratio, the max, and the last run', T, async () => {
  const b = broker.broker;
  const text = b.metrics.render(metricsSourceOf(b, () => true));
  const log = b.replicaManager.getPartition(TOPIC, 0)!.log;
  const last = b.logManager.cleaner.lastRun(log)!;
  assert.ok(last !== null, 'runs after the CLI test');
  const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
  const cp = ratioOnDisk(last.cleanedUpTo);
  assert.ok(Math.abs(value(`strand_log_cleaner_dirty_ratio{topic="${TOPIC}",partition="0"}`) - cp.ratio) < 1e-12);
  assert.ok(value('strand_log_cleaner_max_dirty_ratio') >= cp.ratio);
  assert.equal(value(`strand_log_cleaner_partition_last_run_timestamp_seconds{topic="${TOPIC}",partition="0"}`), last.endMs / 1000);
  assert.equal(value('strand_log_cleaner_last_run_timestamp_seconds'), last.endMs / 1000);
  assert.ok(value('strand_log_cleaner_passes_total') >= 1);
  assert.ok(value('strand_log_cleaner_bytes_read_total') >= last.bytesRead);
  assert.doesNotMatch(text, /strand_log_cleaner_dirty_ratio\{topic="not-compacted"/);
  assert.match(text, /# TYPE strand_log_cleaner_max_dirty_ratio gauge/);
});

test('ApiVersions advertises DescribeLogCleaner on key 10000, v0, beside Kafka\'s apis', T, async () => {
  const c = await ProtocolConnection.connect(broker.host, broker.port);
  try {
    const r = await c.send(ApiKey.ApiVersions, 3, { clientSoftwareName: 'strand-test', clientSoftwareVersion: '0' });
    const k = r.apiKeys.find((a: { apiKey: number }) => a.apiKey === 10000);
    assert.deepEqual(k && { min: k.minVersion, max: k.maxVersion }, { min: 0, max: 0 });
    assert.equal(ApiKey.DescribeLogCleaner, 10000);
    // Kafka's apis stay below 100; the extension is the only key outside.
    assert.ok(r.apiKeys.every((a: { apiKey: number }) => a.apiKey < 100 || a.apiKey === 10000));
  } finally {
    c.close();
  }
});
