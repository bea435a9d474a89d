/**
 * Log lifecycle against a real broker process: time-based retention moves the log start offset,
 * a partition directory left by an earlier topic of the same name is never served, and a clean
 * restart keeps every record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as m from '../../src/protocol/messages/index.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { startBroker } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

async function createTopic(c: ProtocolConnection, name: string, configs: Array<[string, string]> = []): Promise<void> {
  const r = await c.send(m.ApiKey.CreateTopics, 5, {
    ...m.defaultCreateTopicsRequest(),
    timeoutMs: 5000,
    topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: configs.map(([name, value]) => ({ name, value })) }],
  });
  assert.equal(r.topics[0].errorCode, 0, r.topics[0].errorMessage ?? '');
}

async function produce(c: ProtocolConnection, topic: string, values: string[], timestamp = Date.now()): Promise<number> {
  const batch = encodeRecordBatch({ records: values.map((v) => ({ key: null, value: Buffer.from(v), timestamp })) });
  const r = await c.send(m.ApiKey.Produce, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] });
  assert.equal(r.responses[0].partitionResponses[0].errorCode, 0);
  return r.responses[0].partitionResponses[0].baseOffset;
}

async function offsets(c: ProtocolConnection, topic: string): Promise<{ earliest: number; latest: number }> {
  const ask = async (timestamp: number): Promise<number> => {
    const r = await c.send(m.ApiKey.ListOffsets, 7, { replicaId: -1, isolationLevel: 0, timeoutMs: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }] });
    assert.equal(r.topics[0].partitions[0].errorCode, 0);
    return r.topics[0].partitions[0].offset;
  };
  return { earliest: await ask(-2), latest: await ask(-1) };
}

test('retention.ms with small segments advances the log start offset', { timeout: 60000 }, async () => {
  const broker = await startBroker({ overrides: { 'log.retention.check.interval.ms': 200 } });
  try {
    const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    await createTopic(c, 'short-lived', [['retention.ms', '1500'], ['segment.bytes', '1024']]);
    // Old timestamps on the first records: their segments are already past retention.
    for (let i = 0; i < 20; i++) await produce(c, 'short-lived', [`old-${i}-${'x'.repeat(200)}`], Date.now() - 60_000);
    const before = await offsets(c, 'short-lived');
    assert.equal(before.latest, 20);
    const deadline = Date.now() + 20_000;
    let now = before;
    while (now.earliest === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      now = await offsets(c, 'short-lived');
    }
    assert.ok(now.earliest > 0, `log start offset stayed at ${now.earliest}`);
    assert.equal(now.latest, 20);
    // The log line may reach us after the offsets moved: wait for it too.
    while (!/retention|deleted/i.test(broker.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(broker.output(), /retention|deleted/i);
    c.close();
  } finally {
    await broker.stop();
    broker.cleanup();
  }
});

test('a partition directory from an earlier topic id is deleted, not served', { timeout: 60000 }, async () => {
  let broker = await startBroker();
  const dataDir = broker.dataDir;
  try {
    let c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    await createTopic(c, 'reused');
    await produce(c, 'reused', ['one', 'two', 'three']);
    c.close();
    assert.equal(await broker.stop(), 0);
    const meta = join(dataDir, 'reused-0', 'partition.metadata');
    assert.match(readFileSync(meta, 'utf8'), /topic_id: /);
    // Make the directory look like a leftover of another topic with the same name.
    writeFileSync(meta, 'version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ\n');
    broker = await startBroker({ dataDir });
    c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    assert.deepEqual(await offsets(c, 'reused'), { earliest: 0, latest: 0 });
    assert.match(broker.output(), /orphan partition directory|left by an earlier topic/);
    assert.ok(existsSync(meta));
    c.close();
  } finally {
    await broker.stop();
    broker.cleanup();
  }
});

test('a clean restart keeps every acknowledged record and marks the shutdown clean', { timeout: 60000 }, async () => {
  let broker = await startBroker();
  const dataDir = broker.dataDir;
  try {
    let c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    await createTopic(c, 'kept');
    for (let i = 0; i < 10; i++) await produce(c, 'kept', [`v${i}`]);
    c.close();
    assert.equal(await broker.stop(), 0);
    assert.match(broker.output(), /shutdown complete/);
    assert.ok(existsSync(join(dataDir, '.strand-clean-shutdown')));
    broker = await startBroker({ dataDir });
    assert.doesNotMatch(broker.output(), /not clean/);
    c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    assert.deepEqual(await offsets(c, 'kept'), { earliest: 0, latest: 10 });
    const f = await c.send(m.ApiKey.Fetch, 12, {
      ...m.defaultFetchRequest(),
      maxWaitMs: 0,
      maxBytes: 1 << 20,
      topics: [{ topic: 'kept', topicId: m.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
    });
    const bytes = f.responses[0].partitions[0].records as Buffer;
    for (let i = 0; i < 10; i++) assert.ok(bytes.includes(Buffer.from(`v${i}`)));
    c.close();
  } finally {
    await broker.stop();
    broker.cleanup();
  }
});
