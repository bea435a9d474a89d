/**
 * Consumer groups with real clients against a real broker process (issue 3):
 * - KafkaJS: a group of 2 members on a 4-partition topic — all partitions owned, no overlap,
 *   every record delivered exactly once across the group.
 * - confluent-kafka-python (librdkafka 2.0.2): consume + commit, close; a new consumer of the
 *   group resumes at the committed offset.
 * - kafka-python 2.0.2: group consumer (JoinGroup v2, OffsetCommit v2, OffsetFetch v1) and its
 *   admin client (list groups, describe, list group offsets); commit metadata strings round-trip.
 * - Commit → broker restart (clean stop, and kill -9) on the same data dir → resume at the
 *   committed offset.
 * The broker runs with group.initial.rebalance.delay.ms=0 to keep the tests fast.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type logCreator, type Consumer } from 'kafkajs';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { pythonJson, skipUnless, uniqueTopic, eventually } from './helpers.js';

const OVERRIDES = { 'group.initial.rebalance.delay.ms': 0 };
let broker: BrokerProcess;
const logs: string[] = [];
const bufferLogs: logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log;
  logs.push(`${logLevel[level]} [${namespace}] ${message} ${JSON.stringify(extra)}`);
};

before(async () => {
  broker = await startBroker({ overrides: OVERRIDES });
});

after(async () => {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
});

function kafkaFor(b: BrokerProcess): Kafka {
  return new Kafka({ clientId: 'strand-groups', brokers: [b.bootstrap], logLevel: logLevel.WARN, logCreator: bufferLogs, retry: { retries: 5, initialRetryTime: 100 } });
}

const PY_PRODUCE = `
import os, json
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
B = os.environ['BOOTSTRAP']; T = os.environ['TOPIC']; N = int(os.environ['N']); P = int(os.environ.get('PARTS', '1'))
adm = AdminClient({'bootstrap.servers': B})
for t, f in adm.create_topics([NewTopic(T, P, 1)]).items(): f.result()
p = Producer({'bootstrap.servers': B})
for i in range(N): p.produce(T, value=str(i).encode(), partition=i % P)
p.flush(30)
print(json.dumps({'ok': True}))
`;

test('KafkaJS: 2 members share a 4-partition topic, every record once, no overlap', { ...skipUnless('kafkajs'), timeout: 120000 }, async () => {
  const kafka = kafkaFor(broker);
  const topic = uniqueTopic('grp-kjs');
  const groupId = `g-${topic}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  const consumers: Consumer[] = [];
  const seen = new Map<string, string[]>();
  const assignments = new Map<string, { partitions: number[] }>();
  try {
    for (const name of ['c1', 'c2']) {
      const c = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
      c.on(c.events.GROUP_JOIN, (e) => {
        assignments.set(name, { partitions: ((e.payload.memberAssignment as Record<string, number[]>)[topic] ?? []).slice().sort() });
      });
      await c.connect();
      await c.subscribe({ topics: [topic], fromBeginning: true });
      await c.run({
        eachMessage: async ({ partition, message }) => {
          const v = `${partition}:${message.value!.toString()}`;
          const list = seen.get(v) ?? [];
          list.push(name);
          seen.set(v, list);
        },
      });
      consumers.push(c);
    }
    // Both members in one generation, owning disjoint sets that cover every partition.
    await eventually(
      'both members assigned',
      () => {
        const a = assignments.get('c1')?.partitions;
        const b = assignments.get('c2')?.partitions;
        if (a === undefined || b === undefined || a.length === 0 || b.length === 0) return undefined;
        return [...a, ...b].sort().join(',') === '0,1,2,3' ? true : undefined;
      },
      60000,
    );
    const desc = await admin.describeGroups([groupId]);
    assert.equal(desc.groups[0]!.state, 'Stable');
    assert.equal(desc.groups[0]!.members.length, 2);

    const producer = kafka.producer();
    await producer.connect();
    const N = 200;
    await producer.send({ topic, messages: Array.from({ length: N }, (_, i) => ({ value: String(i), partition: i % 4 })) });
    await producer.disconnect();
    await eventually('all records consumed', () => (seen.size >= N ? true : undefined), 60000);
    await new Promise((r) => setTimeout(r, 500));
    const dups = [...seen].filter(([, who]) => who.length > 1);
    assert.equal(seen.size, N);
    assert.deepEqual(dups, [], 'records delivered more than once');
    // Each record was read by the member that owns its partition.
    for (const [v, who] of seen) {
      const p = Number(v.split(':')[0]);
      assert.ok(assignments.get(who[0]!)!.partitions.includes(p), `${v} read by ${who[0]} which does not own partition ${p}`);
    }
  } finally {
    for (const c of consumers) await c.disconnect().catch(() => {});
    await admin.disconnect();
  }
});

test('confluent-kafka-python: commit, close, a new consumer resumes at the committed offset', { ...skipUnless('confluent-kafka'), timeout: 120000 }, async () => {
  const topic = uniqueTopic('grp-rdk');
  await pythonJson('confluent-kafka', PY_PRODUCE, broker.bootstrap, { env: { TOPIC: topic, N: '20' } });
  const script = `
import os, json
from confluent_kafka import Consumer, TopicPartition
B = os.environ['BOOTSTRAP']; T = os.environ['TOPIC']
def run(n):
    c = Consumer({'bootstrap.servers': B, 'group.id': 'g-' + T, 'auto.offset.reset': 'earliest', 'enable.auto.commit': False, 'session.timeout.ms': 10000})
    c.subscribe([T])
    got = []
    while len(got) < n:
        m = c.poll(15)
        if m is None: break
        if m.error(): continue
        got.append(m.offset())
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(T, 0)], timeout=10)[0]
    c.close()
    return got, committed.offset
a, ca = run(7)
b, cb = run(5)
print(json.dumps({'first': a, 'c1': ca, 'second': b, 'c2': cb}))
`;
  const r = await pythonJson<{ first: number[]; c1: number; second: number[]; c2: number }>('confluent-kafka', script, broker.bootstrap, { env: { TOPIC: topic }, timeoutMs: 100000 });
  assert.deepEqual(r.first, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(r.c1, 7);
  assert.deepEqual(r.second, [7, 8, 9, 10, 11]);
  assert.equal(r.c2, 12);
});

test('kafka-python: group consumer commits, a second consumer resumes; admin lists, describes and reads group offsets', { ...skipUnless('kafka-python', 'confluent-kafka'), timeout: 120000 }, async () => {
  const topic = uniqueTopic('grp-kp');
  await pythonJson('confluent-kafka', PY_PRODUCE, broker.bootstrap, { env: { TOPIC: topic, N: '30', PARTS: '2' } });
  const script = `
import os, json, time
from kafka import KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.structs import OffsetAndMetadata
B = os.environ['BOOTSTRAP']; T = os.environ['TOPIC']; G = 'g-' + T
def run(limit):
    c = KafkaConsumer(T, bootstrap_servers=B, group_id=G, auto_offset_reset='earliest', enable_auto_commit=False, consumer_timeout_ms=6000)
    got = []
    for m in c:
        got.append((m.partition, m.offset))
        if len(got) >= limit: break
    offs = {}
    for p, o in got: offs[p] = max(offs.get(p, -1), o)
    c.commit({TopicPartition(T, p): OffsetAndMetadata(o + 1, 'meta-%d' % p) for p, o in offs.items()})
    c.close()
    return got
first = run(30)
second = run(100)
adm = KafkaAdminClient(bootstrap_servers=B)
groups = [g[0] for g in adm.list_consumer_groups()]
desc = adm.describe_consumer_groups([G])[0]
offsets = {'%d' % tp.partition: [om.offset, om.metadata] for tp, om in adm.list_consumer_group_offsets(G).items()}
adm.close()
print(json.dumps({'first': len(set(first)), 'second': second, 'listed': G in groups, 'state': desc.state, 'offsets': offsets}))
`;
  const r = await pythonJson<{ first: number; second: unknown[]; listed: boolean; state: string; offsets: Record<string, [number, string]> }>('kafka-python', script, broker.bootstrap, {
    env: { TOPIC: topic },
    timeoutMs: 100000,
  });
  assert.equal(r.first, 30);
  assert.deepEqual(r.second, []);
  assert.equal(r.listed, true);
  assert.equal(r.state, 'Empty');
  assert.deepEqual(r.offsets, { '0': [15, 'meta-0'], '1': [15, 'meta-1'] });
});

for (const how of ['stop', 'kill -9'] as const) {
  test(`commit → broker ${how} → restart on the same data dir → resume at the committed offset`, { ...skipUnless('confluent-kafka'), timeout: 120000 }, async () => {
    const b1 = await startBroker({ overrides: OVERRIDES });
    let b2: BrokerProcess | null = null;
    try {
      const topic = uniqueTopic('grp-restart');
      await pythonJson('confluent-kafka', PY_PRODUCE, b1.bootstrap, { env: { TOPIC: topic, N: '10' } });
      const script = `
import os, json
from confluent_kafka import Consumer, TopicPartition
B = os.environ['BOOTSTRAP']; T = os.environ['TOPIC']; N = int(os.environ['N'])
c = Consumer({'bootstrap.servers': B, 'group.id': 'g-' + T, 'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
c.subscribe([T])
got = []
while len(got) < N:
    m = c.poll(15)
    if m is None: break
    if m.error(): continue
    got.append(m.offset())
if got: c.commit(asynchronous=False)
c.close()
print(json.dumps(got))
`;
      const first = await pythonJson<number[]>('confluent-kafka', script, b1.bootstrap, { env: { TOPIC: topic, N: '4' } });
      assert.deepEqual(first, [0, 1, 2, 3]);
      if (how === 'stop') assert.equal(await b1.stop(), 0);
      else await b1.kill();
      b2 = await startBroker({ dataDir: b1.dataDir, port: b1.port, overrides: OVERRIDES });
      const second = await pythonJson<number[]>('confluent-kafka', script, b2.bootstrap, { env: { TOPIC: topic, N: '6' } });
      assert.deepEqual(second, [4, 5, 6, 7, 8, 9], b2.output().slice(-3000));
    } finally {
      if (b2) await b2.stop();
      await b1.kill();
      b1.cleanup();
    }
  });
}
