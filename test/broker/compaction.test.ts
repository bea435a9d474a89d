/**
 * Log compaction through a broker process: keyless records refused on a compacted topic, the
 * cleaner compacting a topic in the background (Fetch and kcat read the compacted content, a
 * fetch inside a gap starts at the next record; kcat and confluent-kafka-python read it the same way),
 * and `__consumer_offsets` compacted by the same
 * cleaner with Kafka's settings, the group coordinator replaying the compacted log after a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records.js';
import { recordsInMemory } from '../../src/protocol/writer.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { kcatOk, pythonJson, skipUnless } from '../interop/helpers.js';

let broker: BrokerProcess;
let c: ProtocolConnection;
const ZERO = m.defaultFetchRequestFetchTopic().topicId;
const OVERRIDES = { 'log.cleaner.backoff.ms': 50, 'offsets.topic.segment.bytes': 2048, 'offsets.topic.num.partitions': 3 };

before(async () => {
  broker = await startBroker({ overrides: OVERRIDES });
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
});

after(async () => {
  c.close();
  assert.equal(await broker.stop(), 0);
  assert.doesNotMatch(broker.output(), / ERROR /);
  broker.cleanup();
});

async function createTopic(name: string, configs: Record<string, string>): Promise<void> {
  const r = await c.send(m.ApiKey.CreateTopics, 7, {
    ...m.defaultCreateTopicsRequest(),
    timeoutMs: 5000,
    topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
  });
  assert.equal(r.topics[0].errorCode, 0, r.topics[0].errorMessage ?? '');
}

async function produce(topic: string, records: Buffer): Promise<m.ProduceResponsePartitionProduceResponse> {
  const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return r.responses[0]!.partitionResponses[0]!;
}

interface Rec {
  offset: number;
  key: string | null;
  value: string | null;
}

/** Records from `offset` (those below it in the first batch dropped, as clients do) to the end. */
async function fetchFrom(topic: string, offset: number): Promise<Rec[]> {
  const out: Rec[] = [];
  let next = offset;
  for (;;) {
    const r = await c.send<m.FetchResponse>(m.ApiKey.Fetch, 11, {
      ...m.defaultFetchRequest(),
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      topics: [{ topic, topicId: ZERO, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: next, partitionMaxBytes: 1 << 20 }] }],
    });
    const p = r.responses[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0);
    const bytes = p.records === null ? Buffer.alloc(0) : recordsInMemory(p.records);
    const batches = decodeRecordBatches(bytes);
    if (batches.length === 0) return out;
    for (const b of batches) {
      for (const rec of b.records) {
        const o = b.header.baseOffset + rec.offsetDelta;
        if (o >= next) out.push({ offset: o, key: rec.key?.toString() ?? null, value: rec.value?.toString() ?? null });
      }
      next = Math.max(next, b.header.baseOffset + b.header.lastOffsetDelta + 1);
    }
  }
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('produce to a compacted topic refuses a record without a key (INVALID_RECORD), as Kafka does', { timeout: 20000 }, async () => {
  await createTopic('compacted-keys', { 'cleanup.policy': 'compact' });
  const keyless = encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('ok') }, { key: null, value: Buffer.from('no key') }] });
  const refused = await produce('compacted-keys', keyless);
  assert.equal(refused.errorCode, ErrorCode.INVALID_RECORD);
  assert.deepEqual(refused.recordErrors.map((e) => e.batchIndex), [1]);
  const keyed = await produce('compacted-keys', encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('ok') }] }));
  assert.equal(keyed.errorCode, ErrorCode.NONE);
  assert.deepEqual(await fetchFrom('compacted-keys', 0), [{ offset: 0, key: 'k', value: 'ok' }], 'nothing of the refused batch was written');
  // compact,delete needs keys too; a delete topic does not.
  await createTopic('compact-delete-keys', { 'cleanup.policy': 'compact,delete' });
  assert.equal((await produce('compact-delete-keys', keyless)).errorCode, ErrorCode.INVALID_RECORD);
  await createTopic('delete-keys', { 'cleanup.policy': 'delete' });
  assert.equal((await produce('delete-keys', keyless)).errorCode, ErrorCode.NONE);
});

const KEYS = 20;
const ROUNDS = 10;
let compactedTopic = '';
let compacted: Rec[] = [];

test('the cleaner compacts a topic in the background: Fetch reads the latest value of every key, gaps skip to the next record', { timeout: 60000 }, async () => {
  compactedTopic = 'compacted-bg';
  await createTopic(compactedTopic, { 'cleanup.policy': 'compact', 'segment.bytes': '2048', 'min.cleanable.dirty.ratio': '0.01', 'delete.retention.ms': '3600000' });
  const expected = new Map<string, string | null>();
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < KEYS; k += 4) {
      const recs = Array.from({ length: 4 }, (_, i) => {
        const key = `key-${k + i}`;
        // Key 3 ends as a tombstone (kept: delete.retention.ms is an hour).
        const value = round === ROUNDS - 1 && k + i === 3 ? null : `r${round}-${key}-`.padEnd(60, '#');
        expected.set(key, value);
        return { key: Buffer.from(key), value: value === null ? null : Buffer.from(value) };
      });
      assert.equal((await produce(compactedTopic, encodeRecordBatch({ records: recs, compression: round % 5 as 0 | 1 | 2 | 3 | 4 }))).errorCode, ErrorCode.NONE);
    }
  }
  const written = KEYS * ROUNDS;
  // Everything closed gets compacted; the active segment keeps what it has.
  await waitUntil(async () => (await fetchFrom(compactedTopic, 0)).length < written / 2, 20000, 'the cleaner');
  compacted = await fetchFrom(compactedTopic, 0);
  for (let i = 1; i < compacted.length; i++) assert.ok(compacted[i]!.offset > compacted[i - 1]!.offset);
  const lastWins = new Map<string, string | null>();
  for (const r of compacted) lastWins.set(r.key!, r.value);
  assert.deepEqual(lastWins, expected);
  // A fetch inside a gap starts at the next record.
  const present = new Set(compacted.map((r) => r.offset));
  const gaps = Array.from({ length: written }, (_, o) => o).filter((o) => !present.has(o) && o < compacted[compacted.length - 1]!.offset);
  assert.ok(gaps.length > written / 2, `gaps: ${gaps.length}`);
  for (const gap of [gaps[0]!, gaps[Math.floor(gaps.length / 2)]!, gaps[gaps.length - 1]!]) {
    const from = await fetchFrom(compactedTopic, gap);
    assert.equal(from[0]!.offset, compacted.find((r) => r.offset > gap)!.offset, `fetch at gap ${gap}`);
  }
  const dir = join(broker.dataDir, `${compactedTopic}-0`);
  assert.ok(fs.existsSync(join(dir, 'cleaner-offset-checkpoint')));
});

test('kcat (librdkafka) reads the compacted topic, and -o inside a gap starts at the next record', { ...skipUnless('kcat'), timeout: 30000 }, async () => {
  assert.ok(compacted.length > 0, 'runs after the compaction test');
  const out = await kcatOk(broker.bootstrap, ['-C', '-t', compactedTopic, '-p', '0', '-e', '-q', '-o', 'beginning', '-Z', '-f', '%o %k %s\n']);
  const lines = out.split('\n').filter((l) => l !== '');
  assert.deepEqual(
    lines,
    compacted.map((r) => `${r.offset} ${r.key} ${r.value === null ? 'NULL' : r.value}`),
  );
  const present = new Set(compacted.map((r) => r.offset));
  const gap = Array.from({ length: compacted[compacted.length - 1]!.offset }, (_, o) => o).find((o) => o > 0 && !present.has(o))!;
  const one = await kcatOk(broker.bootstrap, ['-C', '-t', compactedTopic, '-p', '0', '-e', '-q', '-o', String(gap), '-c', '1', '-f', '%o %k\n']);
  const next = compacted.find((r) => r.offset > gap)!;
  assert.equal(one.trim(), `${next.offset} ${next.key}`);
});

test('confluent-kafka-python (librdkafka) reads the compacted topic, and a consumer assigned inside a gap starts at the next record', { ...skipUnless('confluent-kafka'), timeout: 60000 }, async () => {
  assert.ok(compacted.length > 0, 'runs after the compaction test');
  const present = new Set(compacted.map((r) => r.offset));
  const gaps = Array.from({ length: compacted[compacted.length - 1]!.offset }, (_, o) => o).filter((o) => o > 0 && !present.has(o));
  const gap = gaps[Math.floor(gaps.length / 2)]!;
  const res = await pythonJson<{ all: Array<[number, string, string | null]>; fromGap: Array<[number, string]> }>(
    'confluent-kafka',
    `
import os, json
from confluent_kafka import Consumer, TopicPartition, KafkaError, OFFSET_BEGINNING
B, T, GAP = os.environ['BOOTSTRAP'], os.environ['TOPIC'], int(os.environ['GAP'])
def read(start, limit):
    c = Consumer({'bootstrap.servers': B, 'group.id': 'ck-compacted', 'enable.auto.commit': False, 'enable.partition.eof': True})
    c.assign([TopicPartition(T, 0, start)])
    out = []
    while len(out) < limit:
        m = c.poll(10)
        if m is None:
            raise SystemExit('timed out')
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break
            raise SystemExit(str(m.error()))
        out.append([m.offset(), m.key().decode(), None if m.value() is None else m.value().decode()])
    c.close()
    return out
print(json.dumps({'all': read(OFFSET_BEGINNING, 1 << 30), 'fromGap': [r[:2] for r in read(GAP, 1)]}))
`,
    broker.bootstrap,
    { env: { TOPIC: compactedTopic, GAP: String(gap) } },
  );
  assert.deepEqual(
    res.all,
    compacted.map((r) => [r.offset, r.key, r.value]),
  );
  const next = compacted.find((r) => r.offset > gap)!;
  assert.deepEqual(res.fromGap, [[next.offset, next.key]]);
});

test('__consumer_offsets is compact-only with no time retention, and compacted: commits replay after a restart', { timeout: 90000 }, async () => {
  const r = await c.send(m.ApiKey.DescribeConfigs, 4, { resources: [{ resourceType: 2, resourceName: '__consumer_offsets', configurationKeys: null }], includeSynonyms: false, includeDocumentation: false });
  const configs = new Map<string, { value: string; source: number }>(r.results[0].configs.map((e: { name: string; value: string; configSource: number }) => [e.name, { value: e.value, source: e.configSource }]));
  assert.equal(configs.get('cleanup.policy')?.value, 'compact');
  assert.notEqual(configs.get('retention.ms')?.source, 1, 'no retention.ms override: compact alone turns time retention off');

  const commit = async (offset: number): Promise<void> => {
    const res = await c.send(m.ApiKey.OffsetCommit, 2, {
      ...m.defaultOffsetCommitRequest(),
      groupId: 'compaction-group',
      topics: [{ name: 'compacted-keys', partitions: [{ ...m.defaultOffsetCommitRequestPartition(), partitionIndex: 0, committedOffset: offset }] }],
    });
    assert.equal(res.topics[0].partitions[0].errorCode, 0);
  };
  const COMMITS = 400;
  for (let i = 1; i <= COMMITS; i++) await commit(i);
  const offsetsBytes = (): number => {
    let n = 0;
    for (const d of fs.readdirSync(broker.dataDir).filter((x) => x.startsWith('__consumer_offsets-'))) {
      for (const f of fs.readdirSync(join(broker.dataDir, d)).filter((x) => x.endsWith('.log'))) n += fs.statSync(join(broker.dataDir, d, f)).size;
    }
    return n;
  };
  // 400 commit records are ~40 KB; compacted, the closed segments hold one each.
  await waitUntil(async () => offsetsBytes() < 8 * 1024, 20000, `__consumer_offsets to be compacted (${offsetsBytes()} bytes)`);

  c.close();
  assert.equal(await broker.stop(), 0);
  const dataDir = broker.dataDir;
  const old = broker;
  broker = await startBroker({ dataDir, port: old.port, overrides: OVERRIDES });
  broker.cleanup = () => old.cleanup();
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  let fetched = -1;
  await waitUntil(
    async () => {
      const f = await c.send(m.ApiKey.OffsetFetch, 1, { ...m.defaultOffsetFetchRequest(), groupId: 'compaction-group', topics: [{ name: 'compacted-keys', partitionIndexes: [0] }] });
      if (f.topics?.[0]?.partitions?.[0]?.errorCode !== 0) return false;
      fetched = f.topics[0].partitions[0].committedOffset;
      return true;
    },
    15000,
    'the group coordinator to load',
  );
  assert.equal(fetched, COMMITS);
});
