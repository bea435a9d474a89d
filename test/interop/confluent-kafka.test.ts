/**
 * confluent-kafka-python 1.7.0 (librdkafka 2.0.2) against a real broker process: the AdminClient
 * (CreateTopics with a config, DescribeConfigs, AlterConfigs, CreatePartitions, DeleteTopics), the
 * Producer with keys, headers and delivery reports, a Consumer on assign() (no group coordinator),
 * offsets_for_times and get_watermark_offsets.
 *
 * The Consumer needs a group.id even for assign(); with enable.auto.commit off and no commit
 * calls, librdkafka never needs the coordinator. It still *looks* for one (it finds no
 * FindCoordinator in ApiVersions and logs "no broker available for coordinator query"), which
 * must not stop assign()ed partitions from being fetched or close() from returning.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { stopCleanly, fetchAll, pythonJson, skipUnless, uniqueTopic } from './helpers.js';

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker();
});

after(() => stopCleanly(broker));

const opts = { ...skipUnless('confluent-kafka'), timeout: 90000 };

const PRELUDE = `
import os, sys, json, time
from confluent_kafka import Producer, Consumer, TopicPartition, KafkaError, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
B = os.environ['BOOTSTRAP']
T = os.environ['TOPIC']
def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(3)
`;

test('AdminClient: create_topics with a config, describe_configs, alter_configs, create_partitions, delete_topics', opts, async () => {
  const topic = uniqueTopic('ck-admin');
  const res = await pythonJson(
    'confluent-kafka',
    PRELUDE +
      `
res = {}
a = AdminClient({'bootstrap.servers': B})
a.create_topics([NewTopic(T, 2, 1, config={'retention.ms': '123456'})], operation_timeout=10)[T].result(15)
try:
    a.create_topics([NewTopic(T, 1, 1)])[T].result(15)
    res['duplicate'] = 'no error'
except Exception as e:
    res['duplicate'] = e.args[0].name()
res['partitions'] = sorted(a.list_topics(T, timeout=10).topics[T].partitions.keys())

def describe():
    r = ConfigResource('topic', T)
    cfg = a.describe_configs([r])[r].result(15)
    return {k: {'value': v.value, 'is_default': v.is_default, 'source': v.source if isinstance(v.source, int) else v.source.value}
            for k, v in cfg.items() if k in ('retention.ms', 'cleanup.policy', 'segment.bytes')}
res['configs'] = describe()

# AlterConfigs (not incremental) replaces the whole set of topic overrides.
r = ConfigResource('topic', T, set_config={'cleanup.policy': 'compact'})
a.alter_configs([r])[r].result(15)
res['altered'] = describe()

a.create_partitions([NewPartitions(T, 4)], operation_timeout=10)[T].result(15)
res['partitions_after'] = sorted(a.list_topics(T, timeout=10).topics[T].partitions.keys())
try:
    a.create_partitions([NewPartitions(T, 2)])[T].result(15)
    res['shrink'] = 'no error'
except Exception as e:
    res['shrink'] = e.args[0].name()

a.delete_topics([T], operation_timeout=10)[T].result(15)
deadline = time.time() + 10
while T in a.list_topics(timeout=10).topics and time.time() < deadline:
    time.sleep(0.1)
res['still_listed'] = T in a.list_topics(timeout=10).topics
try:
    a.delete_topics([T])[T].result(15)
    res['delete_again'] = 'no error'
except Exception as e:
    res['delete_again'] = e.args[0].name()
print(json.dumps(res))
`,
    broker.bootstrap,
    { env: { TOPIC: topic } },
  );
  assert.equal(res.duplicate, 'TOPIC_ALREADY_EXISTS');
  assert.deepEqual(res.partitions, [0, 1]);
  // ConfigSource: 1 DYNAMIC_TOPIC_CONFIG (a topic override), 5 DEFAULT_CONFIG, 4 STATIC_BROKER_CONFIG.
  assert.deepEqual(res.configs['retention.ms'], { value: '123456', is_default: false, source: 1 });
  assert.equal(res.configs['cleanup.policy'].value, 'delete');
  assert.equal(res.configs['cleanup.policy'].is_default, true, JSON.stringify(res.configs['cleanup.policy']));
  assert.ok([4, 5].includes(res.configs['cleanup.policy'].source), JSON.stringify(res.configs['cleanup.policy']));
  assert.deepEqual(res.altered['cleanup.policy'], { value: 'compact', is_default: false, source: 1 });
  assert.equal(res.altered['retention.ms'].is_default, true, `AlterConfigs replaces all overrides: ${JSON.stringify(res.altered['retention.ms'])}`);
  assert.deepEqual(res.partitions_after, [0, 1, 2, 3]);
  assert.equal(res.shrink, 'INVALID_PARTITIONS');
  assert.equal(res.still_listed, false);
  assert.equal(res.delete_again, 'UNKNOWN_TOPIC_OR_PART');
});

test('Producer with keys and headers: delivery reports carry dense offsets; an assign()ed Consumer reads them back', opts, async () => {
  const topic = uniqueTopic('ck-produce');
  const N = 50;
  const res = await pythonJson(
    'confluent-kafka',
    PRELUDE +
      `
N = ${N}
reports = []
def on_delivery(err, msg):
    reports.append({'err': None if err is None else str(err), 'partition': msg.partition(), 'offset': msg.offset(), 'value': msg.value().decode()})
p = Producer({'bootstrap.servers': B, 'acks': 'all', 'linger.ms': 5})
for i in range(N):
    key = None if i % 10 == 9 else ('key-%d' % i).encode()
    headers = [('seq', str(i).encode()), ('kind', b'even' if i % 2 == 0 else b'odd')] if i % 5 != 4 else None
    p.produce(T, value=('value-%d' % i).encode(), key=key, headers=headers, partition=0, on_delivery=on_delivery)
    if i == N // 2:
        p.flush(10)   # two or more produce requests
left = p.flush(15)

c = Consumer({'bootstrap.servers': B, 'group.id': 'ck-assign-' + T, 'enable.auto.commit': False,
              'enable.auto.offset.store': False, 'session.timeout.ms': 6000})
c.assign([TopicPartition(T, 0, OFFSET_BEGINNING)])
got = []
started = time.time()
while len(got) < N and time.time() - started < 20:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            continue
        fail('consumer error: %s' % m.error())
    got.append({'offset': m.offset(), 'partition': m.partition(),
                'key': None if m.key() is None else m.key().decode(), 'value': m.value().decode(),
                'headers': None if m.headers() is None else [[k, v.decode()] for k, v in m.headers()],
                'tstype': m.timestamp()[0], 'ts': m.timestamp()[1]})
consume_s = time.time() - started
t0 = time.time()
c.close()
print(json.dumps({'left': left, 'reports': reports, 'got': got, 'consume_s': consume_s, 'close_s': time.time() - t0, 'now_ms': int(time.time() * 1000)}))
`,
    broker.bootstrap,
    { env: { TOPIC: topic } },
  );
  assert.equal(res.left, 0, 'flush left undelivered messages');
  assert.equal(res.reports.length, N);
  for (const r of res.reports) assert.equal(r.err, null, JSON.stringify(r));
  // Delivery reports come in produce order on one partition, with offsets 0..N-1.
  assert.deepEqual(
    res.reports.map((r: any) => [r.offset, r.value]),
    Array.from({ length: N }, (_, i) => [i, `value-${i}`]),
  );
  const expected = Array.from({ length: N }, (_, i) => ({
    offset: i,
    partition: 0,
    key: i % 10 === 9 ? null : `key-${i}`,
    value: `value-${i}`,
    headers: i % 5 !== 4 ? [['seq', String(i)], ['kind', i % 2 === 0 ? 'even' : 'odd']] : null,
  }));
  assert.deepEqual(
    res.got.map(({ offset, partition, key, value, headers }: any) => ({ offset, partition, key, value, headers })),
    expected,
  );
  for (const g of res.got) {
    assert.equal(g.tstype, 1, 'TIMESTAMP_CREATE_TIME');
    assert.ok(Math.abs(g.ts - res.now_ms) < 120000, `timestamp ${g.ts} far from now ${res.now_ms}`);
  }
  assert.ok(res.consume_s < 10, `assign()ed consumer took ${res.consume_s} s to read ${N} records`);
  assert.ok(res.close_s < 5, `Consumer.close() took ${res.close_s} s (waiting for a coordinator?)`);
  // The broker saw no group traffic (it would log an unknown api key and close the connection).
  assert.doesNotMatch(broker.output(), /FindCoordinator|OffsetFetch|OffsetCommit|JoinGroup/);
  // And our own Fetch agrees with what the client read.
  const { records } = await fetchAll(broker.port, topic, 0);
  assert.deepEqual(
    records.map((r) => [r.offset, r.key, r.value]),
    expected.map((e) => [e.offset, e.key, e.value]),
  );
});

test('offsets_for_times and get_watermark_offsets', opts, async () => {
  const topic = uniqueTopic('ck-times');
  const res = await pythonJson(
    'confluent-kafka',
    PRELUDE +
      `
BASE = 1700000000000
p = Producer({'bootstrap.servers': B, 'linger.ms': 0})
# 10 records with explicit CreateTimes BASE, BASE+1000, ... in two batches.
for i in range(10):
    p.produce(T, value=('t%d' % i).encode(), partition=0, timestamp=BASE + i * 1000)
    if i == 4:
        p.flush(10)
if p.flush(15) != 0:
    fail('undelivered')
c = Consumer({'bootstrap.servers': B, 'group.id': 'ck-times-' + T, 'enable.auto.commit': False})
queries = [0, BASE, BASE + 1, BASE + 4000, BASE + 4500, BASE + 5000, BASE + 9000, BASE + 9001]
# One call per query: a ListOffsets request names each partition once.
found = [c.offsets_for_times([TopicPartition(T, 0, q)], timeout=10)[0] for q in queries]
res = {'for_times': [[tp.partition, tp.offset, None if tp.error is None else str(tp.error)] for tp in found]}
res['watermarks'] = list(c.get_watermark_offsets(TopicPartition(T, 0), timeout=10, cached=False))
# Reading from the offset found for BASE + 4500 starts at t5.
c.assign([TopicPartition(T, 0, found[4].offset)])
m = None
deadline = time.time() + 10
while m is None and time.time() < deadline:
    m = c.poll(0.5)
res['first_after'] = [m.offset(), m.value().decode(), m.timestamp()[1]] if m is not None and not m.error() else str(m and m.error())
c.close()
print(json.dumps(res))
`,
    broker.bootstrap,
    { env: { TOPIC: topic } },
  );
  // Kafka's rule: the first offset whose timestamp is >= the query; -1 when none is.
  assert.deepEqual(res.for_times, [
    [0, 0, null],
    [0, 0, null],
    [0, 1, null],
    [0, 4, null],
    [0, 5, null],
    [0, 5, null],
    [0, 9, null],
    [0, -1, null],
  ]);
  assert.deepEqual(res.watermarks, [0, 10]);
  assert.deepEqual(res.first_after, [5, 't5', 1700000005000]);
});
