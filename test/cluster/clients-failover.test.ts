/**
 * KafkaJS, kcat and kafka-python against a three-node cluster (loopback): each sees the three
 * brokers in Metadata, produces with acks=all to a replicated partition, keeps working after the
 * partition's leader is killed (-9) — producing more once another node leads it — and reads back
 * everything it wrote, in order. The killed node is restarted before the next client's turn.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel, Partitioners, type logCreator } from 'kafkajs';
import { startCluster, type LocalCluster } from '../../src/testing/cluster.js';
import { kcatOk, pythonJson, skipUnless } from '../interop/helpers.js';

let cluster: LocalCluster;

before(async () => {
  cluster = await startCluster({ nodes: 3 });
});

after(async () => {
  const codes = await cluster.stop();
  // A node a failed test left killed has no exit code to check.
  for (const [id, code] of Object.entries(codes)) assert.ok(code === 0 || code === null, `node ${id} exited with ${code}:\n${cluster.node(Number(id)).output().slice(-2000)}`);
});

/** Kills the leader of topic-0, waits for another leader; returns the killed node's id. */
async function killLeader(topic: string): Promise<number> {
  const leader = await cluster.leaderOf(topic, 0);
  await cluster.kill(leader);
  await cluster.leaderOf(topic, 0, { not: leader, timeoutMs: 30000 });
  return leader;
}

async function restore(node: number, topic: string): Promise<void> {
  await cluster.restart(node, { waitForBrokers: 3 });
  await cluster.waitForTopic(topic, 1, 60000);
}

/** Every node running and registered (a failed test may have left one killed). */
async function allUp(): Promise<void> {
  for (const n of cluster.nodes) if (!cluster.isRunning(n.id)) await cluster.restart(n.id, { waitForBrokers: 3 });
  await cluster.waitUntilUp(3, 60000);
}

const values = (prefix: string, from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${from + i}`);

test('KafkaJS: Metadata lists the three brokers; acks=all produce and a group consumer keep working through a leader failover', { ...skipUnless('kafkajs'), timeout: 120000 }, async () => {
  await allUp();
  const topic = 'kjs-failover';
  await cluster.createTopic(topic, { partitions: 1, replicationFactor: 3 });
  const logs: string[] = [];
  const logCreator: logCreator = () => ({ namespace, level, log }) => void logs.push(`${logLevel[level]} [${namespace}] ${log.message}`);
  const kafka = new Kafka({ clientId: 'strand-e2e', brokers: cluster.bootstrap.split(','), logLevel: logLevel.WARN, logCreator, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 } });
  const admin = kafka.admin();
  await admin.connect();
  const described = await admin.describeCluster();
  await admin.disconnect();
  assert.deepEqual(described.brokers.map((b) => b.nodeId).sort(), [1, 2, 3]);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const send = (vs: string[]) => producer.send({ topic, acks: -1, messages: vs.map((value) => ({ value, partition: 0 })) });
  for (const v of values('kjs', 0, 20)) await send([v]);
  const killed = await killLeader(topic);
  for (const v of values('kjs', 20, 20)) await send([v]);
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-g`, sessionTimeout: 10000, heartbeatInterval: 1000 });
  const read: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void read.push(message.value!.toString()) });
  const deadline = Date.now() + 60000;
  while (read.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  assert.deepEqual(read, values('kjs', 0, 40), logs.slice(-20).join('\n'));
  await restore(killed, topic);
});

test('kcat: -L lists the three brokers; acks=all produce and consume keep working through a leader failover', { ...skipUnless('kcat'), timeout: 120000 }, async () => {
  await allUp();
  const topic = 'kcat-failover';
  await cluster.createTopic(topic, { partitions: 1, replicationFactor: 3 });
  const md = await kcatOk(cluster.bootstrap, ['-L', '-J']);
  assert.deepEqual((JSON.parse(md) as { brokers: Array<{ id: number }> }).brokers.map((b) => b.id).sort(), [1, 2, 3]);
  const produce = (vs: string[]) => kcatOk(cluster.bootstrap, ['-P', '-t', topic, '-p', '0', '-X', 'acks=all', '-X', 'enable.idempotence=true', '-X', 'message.timeout.ms=60000'], { input: vs.join('\n') + '\n', timeoutMs: 90000 });
  await produce(values('kcat', 0, 20));
  const killed = await killLeader(topic);
  await produce(values('kcat', 20, 20));
  const out = await kcatOk(cluster.bootstrap, ['-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q'], { timeoutMs: 60000 });
  assert.deepEqual(out.trim().split('\n'), values('kcat', 0, 40));
  await restore(killed, topic);
});

test('kafka-python: the cluster has three brokers; acks=all produce and a consumer keep working through a leader failover', { ...skipUnless('kafka-python'), timeout: 120000 }, async () => {
  await allUp();
  const topic = 'kpy-failover';
  await cluster.createTopic(topic, { partitions: 1, replicationFactor: 3 });
  const brokers = await pythonJson<number[]>('kafka-python', `
import json, os
from kafka import KafkaConsumer
c = KafkaConsumer(bootstrap_servers=os.environ['BOOTSTRAP'].split(','))
c.topics()
print(json.dumps(sorted(b.nodeId for b in c._client.cluster.brokers())))
c.close()
`, cluster.bootstrap);
  assert.deepEqual(brokers, [1, 2, 3]);
  const produce = (from: number) => pythonJson<number[]>('kafka-python', `
import json, os
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=os.environ['BOOTSTRAP'].split(','), acks='all', retries=20, retry_backoff_ms=200, max_in_flight_requests_per_connection=1, request_timeout_ms=5000, metadata_max_age_ms=1000)
offsets = [p.send('${topic}', value=('kpy-%d' % i).encode(), partition=0).get(timeout=60).offset for i in range(${from}, ${from + 20})]
p.close()
print(json.dumps(offsets))
`, cluster.bootstrap, { timeoutMs: 90000 });
  assert.deepEqual(await produce(0), Array.from({ length: 20 }, (_, i) => i));
  const killed = await killLeader(topic);
  assert.deepEqual(await produce(20), Array.from({ length: 20 }, (_, i) => 20 + i));
  const read = await pythonJson<string[]>('kafka-python', `
import json, os
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=os.environ['BOOTSTRAP'].split(','), group_id='${topic}-g', auto_offset_reset='earliest', consumer_timeout_ms=20000)
c.subscribe(['${topic}'])
out = []
for m in c:
    out.append(m.value.decode())
    if len(out) >= 40:
        break
c.close()
print(json.dumps(out))
`, cluster.bootstrap, { timeoutMs: 90000 });
  assert.deepEqual(read, values('kpy', 0, 40));
  await restore(killed, topic);
});
