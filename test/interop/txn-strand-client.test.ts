/**
 * Transactions across clients, with Strand's client on one side (issue 5) and a broker process:
 *
 * - Strand's transactional producer (commit, abort, commit, and a transaction left open) read by
 *   read_committed KafkaJS and confluent-kafka (librdkafka) consumers: exactly the committed
 *   records, in order per partition; read_uncommitted sees all of them.
 * - Strand's sendOffsets read back by KafkaJS's admin: visible only after the commit.
 * - KafkaJS's transactional producer read by Strand's consumer: read_committed sees exactly the
 *   committed records (aborted transactions skipped with the Fetch's aborted-transactions list),
 *   read_uncommitted all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka as KafkaJS, logLevel } from 'kafkajs';
import { Kafka } from '../../src/client/kafka.js';
import { stringSerde } from '../../src/client/serializers.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { brokerErrors, pythonJson, skipUnless, uniqueTopic } from './helpers.js';

let broker: BrokerProcess;
let kafka: Kafka;

before(async () => {
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0, 'transaction.state.log.num.partitions': 3, 'offsets.topic.num.partitions': 3 } });
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'strand-txn-interop' });
});

after(async () => {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
  assert.deepEqual(brokerErrors(broker.output()), []);
});

const round = (i: number): string[] => [0, 1, 2, 3, 4, 5].map((j) => `${i}-${j}`);
/** Round i's records on partition p (j % 2 === p), in the order they were sent. */
const onPartition = (p: number, ...rounds: number[]): string[] => rounds.flatMap((i) => round(i).filter((_, j) => j % 2 === p));

/** Writes rounds 0 (committed), 1 (aborted), 2 (committed) with Strand's client, then leaves round 3 open; returns the producer holding it. */
async function strandTransactions(topic: string): Promise<{ close(): Promise<void> }> {
  const admin = kafka.admin();
  await admin.createTopics([{ name: topic, partitions: 2 }]);
  await admin.close();
  const producer = kafka.producer<string, string>({ transactionalId: `strand-${topic}`, valueSerializer: stringSerde });
  for (const [i, commit] of [[0, true], [1, false], [2, true]] as const) {
    const txn = await producer.transaction();
    await txn.sendBatch(round(i).map((value, j) => ({ topic, partition: j % 2, value })));
    if (commit) await txn.commit();
    else await txn.abort();
  }
  // Round 3 stays open while the others read: read_committed readers stop before it.
  const open = await producer.transaction();
  await open.sendBatch(round(3).map((value, j) => ({ topic, partition: j % 2, value })));
  return { close: () => producer.close() }; // close() aborts it
}

const CONFLUENT_READ = String.raw`
import os, json, time
from confluent_kafka import Consumer, TopicPartition
b = os.environ['BOOTSTRAP']; t = os.environ['TOPIC']
def consume(iso, expect):
    c = Consumer({'bootstrap.servers': b, 'group.id': 'reader-' + iso + t, 'isolation.level': iso, 'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
    c.assign([TopicPartition(t, p, 0) for p in range(2)])
    out = {'0': [], '1': []}; deadline = time.time() + 20; extra_until = None
    while time.time() < deadline:
        msg = c.poll(0.2)
        if msg is not None and not msg.error():
            out[str(msg.partition())].append(msg.value().decode())
        if sum(len(v) for v in out.values()) >= expect and extra_until is None:
            extra_until = time.time() + 1.0
        if extra_until is not None and time.time() > extra_until:
            break
    c.close()
    return out
print(json.dumps({'committed': consume('read_committed', 12), 'uncommitted': consume('read_uncommitted', 24)}))
`;

test('Strand transactions read by confluent-kafka: read_committed sees exactly the committed records in order, read_uncommitted all', { ...skipUnless('confluent-kafka'), timeout: 90000 }, async () => {
  const topic = uniqueTopic('strand-txn-py');
  const open = await strandTransactions(topic);
  try {
    const r = await pythonJson<{ committed: Record<string, string[]>; uncommitted: Record<string, string[]> }>('confluent-kafka', CONFLUENT_READ, broker.bootstrap, { env: { TOPIC: topic }, timeoutMs: 80000 });
    assert.deepEqual(r.committed, { '0': onPartition(0, 0, 2), '1': onPartition(1, 0, 2) });
    assert.deepEqual(r.uncommitted, { '0': onPartition(0, 0, 1, 2, 3), '1': onPartition(1, 0, 1, 2, 3) });
  } finally {
    await open.close();
  }
});

test('Strand transactions read by KafkaJS; Strand sendOffsets seen by KafkaJS admin only after the commit', { ...skipUnless('kafkajs'), timeout: 90000 }, async () => {
  const topic = uniqueTopic('strand-txn-kjs');
  const open = await strandTransactions(topic);
  const kjs = new KafkaJS({ clientId: 'kjs-reader', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const read = async (readUncommitted: boolean, expect: number): Promise<Record<string, string[]>> => {
    const consumer = kjs.consumer({ groupId: `kjs-${readUncommitted}-${topic}`, readUncommitted, maxWaitTimeInMs: 200 });
    await consumer.connect();
    const got: Record<string, string[]> = { '0': [], '1': [] };
    let n = 0;
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got[String(partition)]!.push(message.value!.toString());
        n++;
      },
    });
    const deadline = Date.now() + 30000;
    while (n < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));
    await consumer.disconnect();
    return got;
  };
  try {
    assert.deepEqual(await read(false, 12), { '0': onPartition(0, 0, 2), '1': onPartition(1, 0, 2) });
    assert.deepEqual(await read(true, 24), { '0': onPartition(0, 0, 1, 2, 3), '1': onPartition(1, 0, 1, 2, 3) });
  } finally {
    await open.close();
  }

  const groupId = `strand-eos-${topic}`;
  const producer = kafka.producer({ transactionalId: `strand-offsets-${topic}` });
  const admin = kjs.admin();
  await admin.connect();
  try {
    const offsetOf = async (): Promise<string> => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.find((p) => p.partition === 1)!.offset;
    const txn = await producer.transaction();
    await txn.sendOffsets({ consumerGroupId: groupId, offsets: [{ topic, partition: 1, offset: 4 }] });
    assert.equal(await offsetOf(), '-1');
    await txn.commit();
    let after = await offsetOf();
    for (let i = 0; i < 50 && after !== '4'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await offsetOf();
    }
    assert.equal(after, '4');
  } finally {
    await admin.disconnect();
    await producer.close();
  }
});

test('KafkaJS transactions read by Strand\'s consumer: read_committed skips the aborted transaction, read_uncommitted does not', { ...skipUnless('kafkajs'), timeout: 90000 }, async () => {
  const topic = uniqueTopic('kjs-txn-strand');
  const admin = kafka.admin();
  await admin.createTopics([{ name: topic, partitions: 2 }]);
  await admin.close();
  const kjs = new KafkaJS({ clientId: 'kjs-writer', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });
  const producer = kjs.producer({ transactionalId: `kjs-${topic}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (const [i, commit] of [[0, true], [1, false], [2, true]] as const) {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: round(i).map((value, j) => ({ partition: j % 2, value })) });
      if (commit) await tx.commit();
      else await tx.abort();
    }
  } finally {
    await producer.disconnect();
  }
  const read = async (isolationLevel: 'read_committed' | 'read_uncommitted', expect: number): Promise<Record<string, string[]>> => {
    const c = kafka.consumer<Buffer | null, string | null>({ isolationLevel, valueDeserializer: stringSerde, maxWaitMs: 100 });
    c.assign([0, 1].map((partition) => ({ topic, partition, offset: 0 })));
    const got: Record<string, string[]> = { '0': [], '1': [] };
    let n = 0;
    await c.run({
      eachMessage: ({ message }) => {
        got[String(message.partition)]!.push(message.value!);
        n++;
      },
    });
    const deadline = Date.now() + 20000;
    while (n < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    await c.close();
    return got;
  };
  assert.deepEqual(await read('read_committed', 12), { '0': onPartition(0, 0, 2), '1': onPartition(1, 0, 2) });
  assert.deepEqual(await read('read_uncommitted', 18), { '0': onPartition(0, 0, 1, 2), '1': onPartition(1, 0, 1, 2) });
});
