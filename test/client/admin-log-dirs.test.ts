/**
 * Admin.describeLogDirs (DescribeLogDirs) and Admin.apiVersions against an in-process broker:
 * sizes on disk are checked against the broker's own logs, and grow as records are written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka } from '../../src/client/kafka.js';
import type { Admin } from '../../src/client/admin.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { ApiKey, type DescribeLogDirsResponse } from '../../src/protocol/messages/index.js';
import { uniqueName } from './helpers.js';

let broker: StrandTestBroker;
let kafka: Kafka;
let admin: Admin;
const T = { timeout: 60000 };

before(async () => {
  broker = await startStrand({ config: { 'auto.create.topics.enable': 'false' } });
  kafka = new Kafka({ brokers: [broker.bootstrap] });
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  await admin?.close();
  await broker?.stop();
});

test('describeLogDirs reports each partition with its size on disk, growing as records land', T, async () => {
  const t = uniqueName('logdirs');
  const other = uniqueName('logdirs-other');
  await admin.createTopics([{ name: t, partitions: 2 }, { name: other }]);
  const empty = await admin.describeLogDirs({ topics: [t] });
  assert.equal(empty.length, 1);
  assert.equal(empty[0]!.broker, broker.broker.nodeId);
  assert.ok(empty[0]!.logDir.startsWith('/'), `absolute path: ${empty[0]!.logDir}`);
  assert.deepEqual(empty[0]!.partitions.map((p) => [p.topic, p.partition, p.sizeBytes]), [
    [t, 0, 0],
    [t, 1, 0],
  ]);
  assert.ok(empty[0]!.totalBytes > 0 && empty[0]!.usableBytes >= 0 && empty[0]!.usableBytes <= empty[0]!.totalBytes);

  const producer = kafka.producer();
  await producer.sendBatch(Array.from({ length: 50 }, (_, i) => ({ topic: t, partition: 0, value: `value-${i}`.repeat(10) })));
  await producer.close();
  const after = await admin.describeLogDirs({ topics: [t] });
  const p0 = after[0]!.partitions.find((p) => p.partition === 0)!;
  assert.equal(p0.sizeBytes, broker.broker.replicaManager.getPartition(t, 0)!.log.sizeInBytes);
  assert.ok(p0.sizeBytes > 50 * 70, `size ${p0.sizeBytes}`);
  assert.equal(p0.offsetLag, 0);
  assert.equal(after[0]!.partitions.find((p) => p.partition === 1)!.sizeBytes, 0);

  // No topics: every hosted partition (internal ones included), never the metadata log.
  const all = await admin.describeLogDirs();
  const topics = new Set(all[0]!.partitions.map((p) => p.topic));
  assert.ok(topics.has(t) && topics.has(other));
  assert.ok(!topics.has('__cluster_metadata'));
});

test('DescribeLogDirs leaves out partitions the broker does not host, and answers v1 without volume sizes', T, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const r = await c.send<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, 1, { topics: [{ topic: 'no-such-topic', partitions: [0] }] });
    assert.equal(r.results.length, 1);
    assert.equal(r.results[0]!.errorCode, 0);
    assert.deepEqual(r.results[0]!.topics, []);
    assert.equal(r.results[0]!.totalBytes, -1);
  } finally {
    c.close();
  }
});

test('listGroups lists each group once while metadata refreshes land (regression: the console showed every group three times)', T, async () => {
  const t = uniqueName('lg');
  await admin.createTopics([{ name: t }]);
  for (const g of ['lg-a', 'lg-b']) await admin.resetOffsets(g, t, 'earliest');
  // Metadata refreshes land while listGroups waits for its ListGroups answers.
  let refreshing = true;
  const refresher = (async () => {
    while (refreshing) await admin.cluster.refreshMetadata();
  })();
  try {
    for (let i = 0; i < 20; i++) {
      const ids = (await admin.listGroups()).map((g) => g.groupId).filter((id) => id.startsWith('lg-'));
      assert.deepEqual(ids, ['lg-a', 'lg-b']);
    }
  } finally {
    refreshing = false;
    await refresher;
  }
});

test('apiVersions lists what the broker offers and the version the client uses', T, async () => {
  const [b] = await admin.apiVersions();
  assert.equal(b!.broker, broker.broker.nodeId);
  const produce = b!.apis.find((a) => a.name === 'Produce')!;
  assert.equal(produce.apiKey, 0);
  assert.ok(produce.maxVersion >= 9 && produce.clientVersion !== null && produce.clientVersion <= produce.maxVersion);
  assert.ok(b!.apis.some((a) => a.name === 'DescribeLogDirs'));
});
