/**
 * Exactly-once with real clients (issue 5): librdkafka (confluent-kafka-python 1.7.0, kcat 1.7.1)
 * and KafkaJS 2.2.4 against a broker process.
 *
 * - librdkafka `enable.idempotence=true` (kcat): every line stored exactly once, in order.
 * - confluent-kafka transactional producer: commit, abort, commit over two partitions; a
 *   read_committed consumer sees exactly the committed records, read_uncommitted all of them;
 *   a consume-transform-produce step commits its input offsets in the transaction
 *   (send_offsets_to_transaction) and they are visible only after the commit.
 * - A fenced librdkafka producer (a second one with the same transactional.id) fails its commit
 *   and its records are not visible.
 * - KafkaJS idempotent producer and transactional producer (commit, abort, commit, sendOffsets);
 *   read_committed and read_uncommitted consumers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type logCreator } from 'kafkajs';
import * as m from '../../src/protocol/messages/index.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { brokerErrors, fetchAll, kcatOk, pythonJson, skipUnless, uniqueTopic } from './helpers.js';

let broker: BrokerProcess;
const logs: string[] = [];
const bufferLogs: logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log;
  logs.push(`${logLevel[level]} [${namespace}] ${message} ${JSON.stringify(extra)}`);
};
const recentLogs = (): string => `--- kafkajs log ---\n${logs.slice(-30).join('\n')}`;

before(async () => {
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0, 'transaction.state.log.num.partitions': 5, 'offsets.topic.num.partitions': 5 } });
});

after(async () => {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
  assert.deepEqual(brokerErrors(broker.output()), []);
});

async function createTopic(name: string, partitions: number): Promise<void> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const r = await c.send(m.ApiKey.CreateTopics, 7, { ...m.defaultCreateTopicsRequest(), timeoutMs: 5000, topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }] });
    assert.equal(r.topics[0].errorCode, 0, r.topics[0].errorMessage ?? '');
  } finally {
    c.close();
  }
}

test('kcat with enable.idempotence=true stores every record exactly once, in order', { ...skipUnless('kcat'), timeout: 60000 }, async () => {
  const topic = uniqueTopic('idem-kcat');
  await createTopic(topic, 1);
  const lines = Array.from({ length: 2000 }, (_, i) => `v${i}`);
  await kcatOk(broker.bootstrap, ['-P', '-t', topic, '-p', '0', '-X', 'enable.idempotence=true', '-X', 'linger.ms=5'], { input: lines.join('\n') + '\n' });
  const { records, batches } = await fetchAll(broker.port, topic, 0);
  assert.deepEqual(records.map((r) => r.value), lines);
  assert.ok(batches.every((b) => b.header.producerId >= 0 && b.header.baseSequence >= 0), 'batches carry a producer id and sequence');
});

const CONFLUENT_TXN = String.raw`
import os, json, time
from confluent_kafka import Producer, Consumer, TopicPartition, KafkaException
b = os.environ['BOOTSTRAP']; t = os.environ['TOPIC']; src = os.environ['SRC']
p = Producer({'bootstrap.servers': b, 'transactional.id': 'py-txn-' + t, 'transaction.timeout.ms': 60000})
p.init_transactions(30)
for i, commit in enumerate([True, False, True]):
    p.begin_transaction()
    for j in range(6):
        p.produce(t, value=('%d-%d' % (i, j)).encode(), partition=j % 2)
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)

def consume(topic, iso, expect, parts):
    c = Consumer({'bootstrap.servers': b, 'group.id': 'reader-' + iso + topic, 'isolation.level': iso, 'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
    c.assign([TopicPartition(topic, i, 0) for i in range(parts)])
    out = []; deadline = time.time() + 20; extra_until = None
    while time.time() < deadline:
        msg = c.poll(0.2)
        if msg is not None and not msg.error():
            out.append(msg.value().decode())
        if len(out) >= expect and extra_until is None:
            extra_until = time.time() + 1.0
        if extra_until is not None and time.time() > extra_until:
            break
    c.close()
    return sorted(out)

committed = consume(t, 'read_committed', 12, 2)
uncommitted = consume(t, 'read_uncommitted', 18, 2)

# consume-transform-produce: read SRC in a group, write upper-cased to T2, commit offsets in the transaction
t2 = t + '-out'
cons = Consumer({'bootstrap.servers': b, 'group.id': 'eos-' + t, 'isolation.level': 'read_committed', 'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
cons.subscribe([src])
got = []
deadline = time.time() + 30
while len(got) < 4 and time.time() < deadline:
    msg = cons.poll(0.5)
    if msg is not None and not msg.error():
        got.append(msg)
p.begin_transaction()
for msg in got:
    p.produce(t2, value=msg.value().upper(), partition=0)
p.send_offsets_to_transaction([TopicPartition(src, 0, got[-1].offset() + 1)], cons.consumer_group_metadata(), 30)
# A read_committed consumer's committed() sends require_stable and would wait (UNSTABLE_OFFSET_COMMIT)
# until the commit: look with read_uncommitted, which sees the last stable commit (none yet).
peek = Consumer({'bootstrap.servers': b, 'group.id': 'eos-' + t, 'isolation.level': 'read_uncommitted', 'enable.auto.commit': False})
before_commit = peek.committed([TopicPartition(src, 0)], timeout=10)[0].offset
unstable = None
try:
    cons.committed([TopicPartition(src, 0)], timeout=2)
    unstable = 'answered'
except KafkaException as e:
    unstable = e.args[0].name()
p.commit_transaction(30)
after_commit = None
deadline = time.time() + 10
while time.time() < deadline:
    after_commit = cons.committed([TopicPartition(src, 0)], timeout=10)[0].offset
    if after_commit == 4: break
    time.sleep(0.1)
cons.close()
peek.close()
out = consume(t2, 'read_committed', 4, 1)

# zombie fencing: a second producer with the same transactional.id fences the first
z = Producer({'bootstrap.servers': b, 'transactional.id': 'py-zombie-' + t})
z.init_transactions(30)
z.begin_transaction()
z.produce(t2, value=b'zombie', partition=0)
z.flush(30)
n = Producer({'bootstrap.servers': b, 'transactional.id': 'py-zombie-' + t})
n.init_transactions(30)
fenced = None
try:
    z.commit_transaction(30)
    fenced = 'committed'
except KafkaException as e:
    fenced = e.args[0].name()
n.begin_transaction()
n.produce(t2, value=b'NEW', partition=0)
n.commit_transaction(30)
out2 = consume(t2, 'read_committed', 5, 1)
print(json.dumps({'committed': committed, 'uncommitted': uncommitted, 'got': len(got), 'before': before_commit, 'after': after_commit, 'out': out, 'fenced': fenced, 'out2': out2, 'unstable': unstable}))
`;

test('confluent-kafka transactions: commit/abort/commit, read_committed vs read_uncommitted, sendOffsets, fencing', { ...skipUnless('confluent-kafka', 'kcat'), timeout: 180000 }, async () => {
  const topic = uniqueTopic('py-txn');
  const src = `${topic}-src`;
  await createTopic(topic, 2);
  await createTopic(src, 1);
  await createTopic(`${topic}-out`, 1);
  await kcatOk(broker.bootstrap, ['-P', '-t', src, '-p', '0'], { input: 'a\nb\nc\nd\n' });
  const r = await pythonJson('confluent-kafka', CONFLUENT_TXN, broker.bootstrap, { env: { TOPIC: topic, SRC: src }, timeoutMs: 170000 });
  const all = (i: number): string[] => Array.from({ length: 6 }, (_, j) => `${i}-${j}`);
  assert.deepEqual(r.committed, [...all(0), ...all(2)].sort());
  assert.deepEqual(r.uncommitted, [...all(0), ...all(1), ...all(2)].sort());
  assert.equal(r.got, 4);
  assert.ok(r.before < 0, `offsets visible before the commit: ${r.before}`);
  assert.equal(r.after, 4);
  assert.equal(r.unstable, '_TIMED_OUT', 'require_stable waits while the transactional offsets are pending');
  assert.deepEqual(r.out, ['A', 'B', 'C', 'D']);
  assert.match(String(r.fenced), /FENCED|EPOCH/);
  assert.deepEqual(r.out2, ['A', 'B', 'C', 'D', 'NEW']);
});

test('KafkaJS idempotent and transactional producers; read_committed and read_uncommitted consumers', { ...skipUnless('kafkajs'), timeout: 120000 }, async () => {
  const kafka = new Kafka({ clientId: 'strand-txn', brokers: [broker.bootstrap], logLevel: logLevel.WARN, logCreator: bufferLogs, retry: { retries: 8, initialRetryTime: 100 } });
  const topic = uniqueTopic('kjs-txn');
  const idem = uniqueTopic('kjs-idem');
  await createTopic(topic, 2);
  await createTopic(idem, 1);

  const ip = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await ip.connect();
  for (let i = 0; i < 5; i++) await ip.send({ topic: idem, messages: [{ partition: 0, value: `i${i}a` }, { partition: 0, value: `i${i}b` }] });
  await ip.disconnect();
  const idemRecords = (await fetchAll(broker.port, idem, 0)).records.map((r) => r.value);
  assert.deepEqual(idemRecords, [0, 1, 2, 3, 4].flatMap((i) => [`i${i}a`, `i${i}b`]));

  const producer = kafka.producer({ transactionalId: `kjs-${topic}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (const [i, commit] of [[0, true], [1, false], [2, true]] as const) {
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [0, 1, 2, 3].map((j) => ({ partition: j % 2, value: `${i}-${j}` })) });
      if (commit) await tx.commit();
      else await tx.abort();
    }
    // Offsets in a transaction: visible to the group only after the commit.
    const tx = await producer.transaction();
    await tx.send({ topic, messages: [{ partition: 0, value: '3-0' }] });
    await tx.sendOffsets({ consumerGroupId: `kjs-eos-${topic}`, topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }] });
    const admin = kafka.admin();
    await admin.connect();
    const beforeCommit = await admin.fetchOffsets({ groupId: `kjs-eos-${topic}`, topics: [topic] });
    await tx.commit();
    let afterCommit = await admin.fetchOffsets({ groupId: `kjs-eos-${topic}`, topics: [topic] });
    for (let i = 0; i < 50 && afterCommit[0]!.partitions.find((p) => p.partition === 0)!.offset !== '2'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      afterCommit = await admin.fetchOffsets({ groupId: `kjs-eos-${topic}`, topics: [topic] });
    }
    await admin.disconnect();
    assert.equal(beforeCommit[0]!.partitions.find((p) => p.partition === 0)!.offset, '-1', recentLogs());
    assert.equal(afterCommit[0]!.partitions.find((p) => p.partition === 0)!.offset, '2', recentLogs());
  } finally {
    await producer.disconnect();
  }

  const readAll = async (readUncommitted: boolean, expect: number): Promise<string[]> => {
    const consumer = kafka.consumer({ groupId: `kjs-read-${readUncommitted}-${topic}`, readUncommitted, maxWaitTimeInMs: 200 });
    await consumer.connect();
    const got: string[] = [];
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) });
    const deadline = Date.now() + 30000;
    while (got.length < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));
    await consumer.disconnect();
    return got.sort();
  };
  const all = (i: number): string[] => [0, 1, 2, 3].map((j) => `${i}-${j}`);
  assert.deepEqual(await readAll(false, 9), [...all(0), ...all(2), '3-0'].sort(), recentLogs());
  assert.deepEqual(await readAll(true, 13), [...all(0), ...all(1), ...all(2), '3-0'].sort(), recentLogs());
});
