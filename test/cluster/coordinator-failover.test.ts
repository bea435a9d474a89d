/**
 * Coordinator failover on a real three-node cluster (combined nodes as processes): the group
 * coordinator and the transaction coordinator live on the leaders of their internal-topic
 * partitions, so a kill -9 of that node moves them with the leadership; the new leader replays
 * the partition, and clients carry on.
 *
 * - A KafkaJS consumer group keeps consuming through a kill -9 of its coordinator; the offsets it
 *   committed before the kill are still there (at least as far) after it, from the new coordinator.
 * - A librdkafka (confluent-kafka-python) group member under an acks=all produce load keeps
 *   reading through a kill -9 of its coordinator and reads every acknowledged record.
 * - Strand's transactional producer commits a transaction after its transaction coordinator is
 *   killed; a read_committed reader sees every committed record exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka as KafkaJs, logLevel, type Consumer } from 'kafkajs';
import { Kafka } from '../../src/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { requestOnce, startCluster, waitUntil, type LocalCluster } from '../../src/testing/cluster.js';
import { skipUnless } from '../interop/helpers.js';
import { GroupConsumer, LoadProducer } from './load.js';

let cluster: LocalCluster;

before(async () => {
  cluster = await startCluster({ nodes: 3 });
  await cluster.waitUntilUp(3);
});

after(async () => {
  await cluster?.stop();
});

/** The coordinator of a group (0) or transactional id (1), asked of a running node. */
async function coordinatorOf(key: string, keyType: number, not?: number): Promise<number> {
  return waitUntil(`the coordinator of ${key}${not === undefined ? '' : ` (not node ${not})`}`, async () => {
    for (const n of cluster.reachableNodes()) {
      try {
        const r = await requestOnce<{ errorCode: number; nodeId: number }>(n.host, n.port, ApiKey.FindCoordinator, 3, { key, keyType, coordinatorKeys: [] });
        if (r.errorCode === ErrorCode.NONE && r.nodeId !== not && cluster.isRunning(r.nodeId)) return r.nodeId;
      } catch {
        // that node is going down: ask another
      }
    }
    return null;
  }, 60000, 200);
}

const kafkaJs = (clientId: string): KafkaJs =>
  new KafkaJs({ clientId, brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });

test('a KafkaJS consumer group keeps consuming through a kill -9 of its coordinator; its committed offsets survive', { timeout: 180000 }, async () => {
  const topic = 'coordinator-failover-orders';
  const groupId = 'coordinator-failover-group';
  await cluster.createTopic(topic, { partitions: 3, replicationFactor: 3 });
  const kafka = kafkaJs('coordinator-failover');
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const send = async (from: number, count: number): Promise<void> => {
    const messages = Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: String(from + i) }));
    await producer.send({ topic, acks: -1, messages });
  };
  await send(0, 60);

  const seen = new Set<string>();
  // Few retries: KafkaJS keeps its coordinator until retries run out, then restarts the consumer,
  // which finds the new coordinator (with 30 retries that alone takes over a minute).
  const consumer: Consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 500 } });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ autoCommitInterval: 100, eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
  const admin = kafka.admin();
  await admin.connect();
  const committed = async (): Promise<Map<number, number>> => {
    const r = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(r[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
  };
  const total = (m: Map<number, number>): number => [...m.values()].reduce((a, b) => a + Math.max(b, 0), 0);
  await waitUntil('the first 60 records consumed and committed', async () => (seen.size === 60 && total(await committed()) === 60 ? true : null), 60000, 100);
  const before = await committed();

  const offsets = (await cluster.metadata(['__consumer_offsets'])).topics[0]!;
  assert.ok(offsets.partitions.every((p) => p.replicaNodes.length === 3), 'offsets.topic.replication.factor: three replicas');
  const coordinator = await coordinatorOf(groupId, 0);
  await cluster.kill(coordinator);
  await send(60, 60);
  await waitUntil('all 120 records consumed after the coordinator was killed', () => (seen.size === 120 ? true : null), 90000, 100);
  const successor = await coordinatorOf(groupId, 0, coordinator);
  assert.notEqual(successor, coordinator);
  const after = await waitUntil('the new coordinator to have the commits of all 120 records', async () => {
    try {
      const m = await committed();
      return total(m) === 120 ? m : null;
    } catch {
      return null;
    }
  }, 60000, 200);
  for (const [p, o] of before) assert.ok((after.get(p) ?? -1) >= o, `partition ${p}: committed ${o} before the kill, ${after.get(p)} after`);
  await consumer.disconnect();
  await admin.disconnect();
  await producer.disconnect();
  await cluster.restart(coordinator);
});

test('a transactional producer commits after its transaction coordinator is killed; read_committed sees each committed record once', { timeout: 180000 }, async () => {
  const topic = 'coordinator-failover-txn';
  const transactionalId = 'coordinator-failover-tid';
  await cluster.waitUntilUp(3);
  await cluster.createTopic(topic, { partitions: 2, replicationFactor: 3 });
  const kafka = new Kafka({ brokers: cluster.bootstrap.split(','), clientId: 'coordinator-failover-txn' });
  const producer = kafka.producer({ transactionalId });
  await producer.initTransactions();
  const commitRound = async (round: number): Promise<void> => {
    const txn = await producer.transaction();
    await txn.sendBatch(Array.from({ length: 10 }, (_, i) => ({ topic, partition: i % 2, value: Buffer.from(`${round}-${i}`) })));
    await txn.commit();
  };
  await commitRound(0);
  const coordinator = await coordinatorOf(transactionalId, 1);
  const state = (await cluster.metadata(['__transaction_state'])).topics[0]!;
  assert.ok(state.partitions.every((p) => p.replicaNodes.length === 3), 'transaction.state.log.replication.factor: three replicas');
  await cluster.kill(coordinator);
  await commitRound(1);
  const successor = await coordinatorOf(transactionalId, 1, coordinator);
  assert.notEqual(successor, coordinator);
  await commitRound(2);
  await producer.close();

  const consumer = kafka.consumer({ isolationLevel: 'read_committed', maxWaitMs: 50 });
  consumer.assign([0, 1].map((partition) => ({ topic, partition, offset: 0 })));
  const values: string[] = [];
  await consumer.run({
    eachBatch: ({ batch }) => {
      for (const m of batch.messages) values.push(Buffer.from(m.value as Buffer).toString());
    },
  });
  await waitUntil('30 committed records read', () => (values.length >= 30 ? true : null), 60000, 50);
  assert.equal(new Set(values).size, values.length, 'no record twice');
  assert.deepEqual([...values].sort(), Array.from({ length: 3 }, (_, r) => Array.from({ length: 10 }, (_, i) => `${r}-${i}`)).flat().sort());
  await consumer.close();
  await cluster.restart(coordinator);
});

test('a librdkafka group member under produce load reads every acknowledged record through a kill -9 of its coordinator', { timeout: 240000, ...skipUnless('confluent-kafka') }, async () => {
  const topic = 'coordinator-failover-load';
  const group = 'coordinator-failover-rdkafka';
  await cluster.waitUntilUp(3);
  await cluster.createTopic(topic, { partitions: 3, replicationFactor: 3 });
  const producer = new LoadProducer(cluster.bootstrap, topic, 3, 200);
  const consumer = new GroupConsumer(cluster.bootstrap, topic, group, 'a');
  try {
    await producer.waitForMoreAcks(200, 60000);
    await consumer.waitFor('the first records read', (lines) => lines.filter((l) => l.o !== undefined).length >= 100, 60000);
    const coordinator = await coordinatorOf(group, 0);
    const readBefore = consumer.records().length;
    await cluster.kill(coordinator);
    // Produce goes on (leaders move), and the member reads records acknowledged after the kill.
    await producer.waitForMoreAcks(300, 90000);
    const target = producer.acked().length;
    await consumer.waitFor('records acknowledged after the kill', (lines) => lines.filter((l) => l.o !== undefined).length >= target, 90000);
    assert.ok(consumer.records().length > readBefore);
    const successor = await coordinatorOf(group, 0, coordinator);
    assert.notEqual(successor, coordinator);
    await producer.stop();
    const acked = producer.acked();
    const read = new Set(consumer.records().map((r) => `${r.p}:${r.o}:${r.v}`));
    await consumer.waitFor('every acknowledged record', () => {
      for (const r of consumer.records()) read.add(`${r.p}:${r.o}:${r.v}`);
      return acked.every((a) => read.has(`${a.p}:${a.o}:${a.v}`));
    }, 60000);
    await cluster.restart(coordinator);
  } finally {
    producer.kill();
    await consumer.stop();
  }
});
