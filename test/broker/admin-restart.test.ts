/**
 * Admin changes are metadata records: after a clean restart on the same data directory the
 * replayed metadata log gives back the same topics, ids, partitions and config overrides, and a
 * deleted topic stays deleted (its data does not come back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey, defaultFetchRequest, defaultFetchRequestFetchPartition } from '../../src/protocol/messages/index.js';
import { ZERO_UUID } from '../../src/protocol/reader.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

async function metadata(c: ProtocolConnection, names: string[]): Promise<Map<string, any>> {
  const r = await c.send(ApiKey.Metadata, 12, { topics: names.map((name) => ({ topicId: ZERO_UUID, name })), allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  return new Map(r.topics.map((t: any) => [t.name, t]));
}

async function overrides(c: ProtocolConnection, topic: string): Promise<Map<string, string>> {
  const r = await c.send(ApiKey.DescribeConfigs, 4, { resources: [{ resourceType: 2, resourceName: topic, configurationKeys: null }], includeSynonyms: false, includeDocumentation: false });
  assert.equal(r.results[0].errorCode, 0);
  return new Map(r.results[0].configs.filter((e: any) => e.configSource === 1).map((e: any) => [e.name, e.value]));
}

async function produce(c: ProtocolConnection, topic: string, partition: number, value: string): Promise<number> {
  const records = encodeRecordBatch({ records: [{ key: null, value: Buffer.from(value) }] });
  const r = await c.send(ApiKey.Produce, 7, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] });
  const p = r.responses[0].partitionResponses[0];
  assert.equal(p.errorCode, 0);
  return p.baseOffset;
}

async function values(c: ProtocolConnection, topic: string, partition: number): Promise<string[]> {
  const r = await c.send(ApiKey.Fetch, 11, {
    ...defaultFetchRequest(),
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    topics: [{ topic, topicId: ZERO_UUID, partitions: [{ ...defaultFetchRequestFetchPartition(), partition, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
  });
  const p = r.responses[0].partitions[0];
  assert.equal(p.errorCode, 0);
  return p.records === null ? [] : decodeRecordBatches(p.records).flatMap((b) => b.records.map((rec) => rec.value?.toString() ?? ''));
}

test('topics, ids, partitions and configs survive a restart; deleted topics stay deleted', { timeout: 60000 }, async () => {
  const first = await startBroker({ overrides: { 'auto.create.topics.enable': 'false' } });
  let broker: BrokerProcess = first;
  const dataDir = first.dataDir;
  let c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const created = await c.send(ApiKey.CreateTopics, 7, {
      topics: [
        { name: 'keep', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '3600000' }, { name: 'cleanup.policy', value: 'compact,delete' }] },
        { name: 'gone', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: 'reborn', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
      ],
      timeoutMs: 5000,
      validateOnly: false,
    });
    assert.deepEqual(created.topics.map((t: any) => t.errorCode), [0, 0, 0]);
    const ids = new Map<string, string>(created.topics.map((t: any) => [t.name, t.topicId]));
    const alter = await c.send(ApiKey.IncrementalAlterConfigs, 1, {
      resources: [{ resourceType: 2, resourceName: 'keep', configs: [{ name: 'max.message.bytes', configOperation: 0, value: '65536' }, { name: 'cleanup.policy', configOperation: 1, value: null }] }],
      validateOnly: false,
    });
    assert.equal(alter.responses[0].errorCode, 0);
    const grown = await c.send(ApiKey.CreatePartitions, 3, { topics: [{ name: 'keep', count: 3, assignments: null }], timeoutMs: 5000, validateOnly: false });
    assert.equal(grown.results[0].errorCode, 0);
    await produce(c, 'keep', 2, 'k2');
    await produce(c, 'gone', 0, 'from-gone');
    await produce(c, 'reborn', 0, 'from-the-first-life');
    const deleted = await c.send(ApiKey.DeleteTopics, 6, { topics: [{ name: 'gone', topicId: ZERO_UUID }, { name: 'reborn', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    assert.deepEqual(deleted.responses.map((r: any) => r.errorCode), [0, 0]);
    const again = await c.send(ApiKey.CreateTopics, 7, { topics: [{ name: 'reborn', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    assert.equal(again.topics[0].errorCode, 0);
    const rebornId = again.topics[0].topicId as string;
    assert.notEqual(rebornId, ids.get('reborn'));
    await produce(c, 'reborn', 0, 'second-life');
    const before = await overrides(c, 'keep');
    assert.deepEqual(Object.fromEntries(before), { 'max.message.bytes': '65536', 'retention.ms': '3600000' });

    c.close();
    assert.equal(await broker.stop(), 0, broker.output().slice(-2000));
    broker = await startBroker({ dataDir, overrides: { 'auto.create.topics.enable': 'false' } });
    c = await ProtocolConnection.connect('127.0.0.1', broker.port);

    const md = await metadata(c, ['keep', 'gone', 'reborn']);
    assert.equal(md.get('keep').errorCode, 0);
    assert.equal(md.get('keep').topicId, ids.get('keep'));
    assert.deepEqual(md.get('keep').partitions.map((p: any) => p.partitionIndex), [0, 1, 2]);
    assert.equal(md.get('gone').errorCode, 3);
    assert.equal(md.get('reborn').topicId, rebornId);
    assert.deepEqual(Object.fromEntries(await overrides(c, 'keep')), Object.fromEntries(before));
    assert.deepEqual(await values(c, 'keep', 2), ['k2']);
    assert.deepEqual(await values(c, 'reborn', 0), ['second-life']);
    // The partition added before the restart takes new data after it.
    assert.equal(await produce(c, 'keep', 2, 'k2-after'), 1);
  } finally {
    c.close();
    await broker.stop();
    await first.stop();
    first.cleanup(); // the data directory belongs to the first process

  }
});
