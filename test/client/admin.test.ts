/** Admin against an in-process broker: each call's effect is read back through another call. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka } from '../../src/client/kafka.js';
import { KafkaError } from '../../src/client/errors.js';
import type { Admin } from '../../src/client/admin.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
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

test('create (with configs), list, describe, add partitions, delete topics', T, async () => {
  const a = uniqueName('adm-a');
  const b = uniqueName('adm-b');
  await admin.createTopics([{ name: a, partitions: 3, configs: { 'retention.ms': '3600000', 'cleanup.policy': 'delete' } }, { name: b }]);
  assert.ok((await admin.listTopics()).includes(a));
  const [da, db] = await admin.describeTopics([a, b]);
  assert.equal(da!.partitions.length, 3);
  assert.equal(db!.partitions.length, 1);
  assert.ok(da!.partitions.every((p) => p.leader >= 0));
  const cfg = await admin.describeConfigs([{ type: 'topic', name: a, keys: ['retention.ms'] }]);
  assert.equal(cfg[0]!.configs.find((c) => c.name === 'retention.ms')?.value, '3600000');

  await assert.rejects(admin.createTopics([{ name: a }]), (e: KafkaError) => e instanceof KafkaError && e.code === 'TOPIC_ALREADY_EXISTS' && !e.retriable);
  await admin.createTopics([{ name: a }], { ignoreExisting: true });

  await admin.createPartitions([{ topic: a, count: 5 }]);
  assert.equal((await admin.describeTopics([a]))[0]!.partitions.length, 5);

  await admin.deleteTopics([b]);
  assert.ok(!(await admin.listTopics()).includes(b));
  await assert.rejects(admin.describeTopics([b]), (e: KafkaError) => e.code === 'UNKNOWN_TOPIC_OR_PARTITION');
});

test('alterConfigs sets and deletes topic overrides incrementally', T, async () => {
  const t = uniqueName('adm-cfg');
  await admin.createTopics([{ name: t }]);
  await admin.alterConfigs([{ type: 'topic', name: t, set: { 'retention.ms': '1234567', 'max.message.bytes': '200000' } }]);
  let cfg = (await admin.describeConfigs([{ type: 'topic', name: t }]))[0]!.configs;
  assert.equal(cfg.find((c) => c.name === 'retention.ms')?.value, '1234567');
  assert.equal(cfg.find((c) => c.name === 'max.message.bytes')?.value, '200000');
  await admin.alterConfigs([{ type: 'topic', name: t, delete: ['retention.ms'] }]);
  cfg = (await admin.describeConfigs([{ type: 'topic', name: t }]))[0]!.configs;
  assert.equal(cfg.find((c) => c.name === 'retention.ms')?.value, '604800000');
  assert.equal(cfg.find((c) => c.name === 'max.message.bytes')?.value, '200000');
  await assert.rejects(admin.alterConfigs([{ type: 'topic', name: t, set: { 'no.such.config': '1' } }]), (e: KafkaError) => e.code === 'INVALID_CONFIG');
});

test('listOffsets earliest/latest/timestamp and deleteRecords', T, async () => {
  const t = uniqueName('adm-off');
  await admin.createTopics([{ name: t, partitions: 2 }]);
  const producer = kafka.producer();
  const base = Date.now() - 100000;
  for (let i = 0; i < 10; i++) await producer.send({ topic: t, partition: 0, value: `v${i}`, timestamp: base + i * 1000 });
  await producer.close();
  assert.deepEqual((await admin.listOffsets(t, 'latest')).map((p) => p.offset), [10, 0]);
  assert.deepEqual((await admin.listOffsets(t, 'earliest')).map((p) => p.offset), [0, 0]);
  const at = await admin.listOffsets(t, { timestamp: base + 4500 }, [0]);
  assert.equal(at[0]!.offset, 5);
  assert.equal(at[0]!.timestamp, base + 5000);
  const low = await admin.deleteRecords(t, [{ partition: 0, offset: 4 }]);
  assert.deepEqual(low, [{ partition: 0, lowWatermark: 4 }]);
  assert.equal((await admin.listOffsets(t, 'earliest', [0]))[0]!.offset, 4);
});

test('describeCluster names this broker', T, async () => {
  const c = await admin.describeCluster();
  assert.equal(c.brokers.length, 1);
  assert.equal(c.brokers[0]!.port, broker.port);
  assert.ok(c.clusterId);
  assert.equal(c.controllerId, c.brokers[0]!.nodeId);
});

test('consumer groups: list, describe, lag, reset offsets, delete', T, async () => {
  const t = uniqueName('adm-grp');
  const groupId = uniqueName('grp');
  await admin.createTopics([{ name: t, partitions: 2 }]);
  const producer = kafka.producer();
  await producer.sendBatch(Array.from({ length: 20 }, (_, i) => ({ topic: t, partition: i % 2, value: `m${i}` })));
  await producer.close();
  const consumer = kafka.consumer({ groupId, fromBeginning: true, commit: 'message' });
  consumer.subscribe(t);
  let seen = 0;
  await consumer.run({ eachMessage: async () => void seen++ });
  const deadline = Date.now() + 10000;
  while (seen < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen, 20);
  const groups = await admin.listGroups();
  assert.ok(groups.some((g) => g.groupId === groupId && g.protocolType === 'consumer'));
  const [desc] = await admin.describeGroups([groupId]);
  assert.equal(desc!.state, 'Stable');
  assert.equal(desc!.members.length, 1);
  assert.deepEqual(desc!.members[0]!.assignment, [{ topic: t, partitions: [0, 1] }]);
  await consumer.close();

  let lag = await admin.groupLag(groupId, [t]);
  assert.deepEqual(lag.map((l) => [l.partition, l.offset, l.end, l.lag]), [[0, 10, 10, 0], [1, 10, 10, 0]]);
  await admin.resetOffsets(groupId, t, 'earliest');
  lag = await admin.groupLag(groupId, [t]);
  assert.deepEqual(lag.map((l) => l.lag), [10, 10]);
  await admin.resetOffsets(groupId, t, { offsets: [{ partition: 1, offset: 7 }] });
  assert.deepEqual((await admin.fetchOffsets(groupId, [t])).map((o) => o.offset), [0, 7]);
  await admin.deleteGroups([groupId]);
  assert.ok(!(await admin.listGroups()).some((g) => g.groupId === groupId));
  await assert.rejects(admin.deleteGroups([groupId]), (e: KafkaError) => e.code === 'GROUP_ID_NOT_FOUND');
});
