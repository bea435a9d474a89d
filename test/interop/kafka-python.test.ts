/**
 * kafka-python 2.0.2 against a real broker process. kafka-python does not negotiate per api: it
 * pipelines ApiVersions v0 with a Metadata v0, infers a broker "version" from the advertised
 * ranges, then uses fixed request versions. So the inferred version is checked too (it decides
 * magic 2 record batches, headers, and which admin versions are sent).
 *
 * Consumers use assign() without a group_id, so no coordinator is ever looked up.
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

const opts = { ...skipUnless('kafka-python'), timeout: 90000 };

const PRELUDE = `
import os, sys, json, time
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic, NewPartitions, ConfigResource, ConfigResourceType
B = os.environ['BOOTSTRAP']
T = os.environ['TOPIC']
`;

for (const compression of [null, 'gzip'] as const) {
  test(`KafkaProducer (${compression ?? 'uncompressed'}) send().get() with keys and headers; KafkaConsumer assign() + seek_to_beginning reads them`, opts, async () => {
    const topic = uniqueTopic(`kp-${compression ?? 'none'}`);
    const N = 30;
    const res = await pythonJson(
      'kafka-python',
      PRELUDE +
        `
N = ${N}
p = KafkaProducer(bootstrap_servers=B, acks='all', compression_type=${compression === null ? 'None' : `'${compression}'`}, linger_ms=5)
res = {'api_version': list(p.config['api_version'])}
futures = []
for i in range(N):
    key = None if i % 7 == 6 else ('key-%d' % i).encode()
    headers = [('seq', str(i).encode()), ('empty', b'')] if i % 3 != 2 else []
    futures.append(p.send(T, key=key, value=('value-%d' % i).encode(), headers=headers, partition=0))
    if i == 9:
        p.flush(10)
res['acks'] = [[m.partition, m.offset] for m in (f.get(timeout=15) for f in futures)]
p.close(10)

c = KafkaConsumer(bootstrap_servers=B, group_id=None, enable_auto_commit=False, consumer_timeout_ms=3000)
tp = TopicPartition(T, 0)
c.assign([tp])
c.seek_to_beginning(tp)
res['got'] = [{'offset': r.offset, 'key': None if r.key is None else r.key.decode(), 'value': r.value.decode(),
               'headers': [[k, v.decode()] for k, v in r.headers]} for r in c]
res['beginning'] = c.beginning_offsets([tp])[tp]
res['end'] = c.end_offsets([tp])[tp]
res['position'] = c.position(tp)
c.close()
print(json.dumps(res))
`,
      broker.bootstrap,
      { env: { TOPIC: topic } },
    );
    // An inferred version >= 0.11 means magic 2 batches with headers; >= 2.x with this broker's ranges.
    assert.ok(res.api_version[0] >= 1 || (res.api_version[0] === 0 && res.api_version[1] >= 11), `inferred ${res.api_version}`);
    assert.deepEqual(res.acks, Array.from({ length: N }, (_, i) => [0, i]));
    const expected = Array.from({ length: N }, (_, i) => ({
      offset: i,
      key: i % 7 === 6 ? null : `key-${i}`,
      value: `value-${i}`,
      headers: i % 3 !== 2 ? [['seq', String(i)], ['empty', '']] : [],
    }));
    assert.deepEqual(res.got, expected);
    assert.equal(res.beginning, 0);
    assert.equal(res.end, N);
    assert.equal(res.position, N);

    const { batches, records } = await fetchAll(broker.port, topic, 0);
    assert.deepEqual(
      records.map((r) => [r.offset, r.key, r.value, r.headers]),
      expected.map((e) => [e.offset, e.key, e.value, e.headers]),
    );
    const codecs = batches.map((b) => b.header.attributes & 7);
    assert.deepEqual(codecs, codecs.map(() => (compression === 'gzip' ? 1 : 0)), `batch codecs ${codecs.join(',')}`);
  });
}

test('KafkaConsumer offsets_for_times on records with explicit timestamps', opts, async () => {
  const topic = uniqueTopic('kp-times');
  const res = await pythonJson(
    'kafka-python',
    PRELUDE +
      `
BASE = 1700000000000
p = KafkaProducer(bootstrap_servers=B, compression_type='gzip')
for i in range(10):
    p.send(T, value=('t%d' % i).encode(), partition=0, timestamp_ms=BASE + i * 1000).get(timeout=15)
p.close(10)
c = KafkaConsumer(bootstrap_servers=B, group_id=None, enable_auto_commit=False)
tp = TopicPartition(T, 0)
out = []
for q in [0, BASE, BASE + 1, BASE + 4500, BASE + 9000, BASE + 9001]:
    r = c.offsets_for_times({tp: q})[tp]
    out.append(None if r is None else [r.offset, r.timestamp])
c.close()
print(json.dumps(out))
`,
    broker.bootstrap,
    { env: { TOPIC: topic } },
  );
  const B0 = 1700000000000;
  assert.deepEqual(res, [[0, B0], [0, B0], [1, B0 + 1000], [5, B0 + 5000], [9, B0 + 9000], null]);
});

test('KafkaAdminClient: create_topics, list_topics, describe_configs, create_partitions, delete_topics', opts, async () => {
  const topic = uniqueTopic('kp-admin');
  const res = await pythonJson(
    'kafka-python',
    PRELUDE +
      `
a = KafkaAdminClient(bootstrap_servers=B, request_timeout_ms=15000)
res = {}
r = a.create_topics([NewTopic(T, 2, 1, topic_configs={'retention.ms': '654321'})], timeout_ms=10000)
res['create'] = [[t, e] for (t, e, *_rest) in r.topic_errors]
res['listed'] = T in a.list_topics()
d = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, T)])[0]
entries = {e[0]: {'value': e[1], 'source': e[3]} for e in d.resources[0][4]}
res['describe_error'] = d.resources[0][0]
res['retention'] = entries.get('retention.ms')
res['cleanup'] = entries.get('cleanup.policy')
r = a.create_partitions({T: NewPartitions(3)}, timeout_ms=10000)
res['create_partitions'] = [[t, e] for (t, e, *_rest) in r.topic_errors]
c = KafkaConsumer(bootstrap_servers=B, group_id=None)
res['partitions'] = sorted(c.partitions_for_topic(T) or [])
c.close()
r = a.delete_topics([T], timeout_ms=10000)
res['delete'] = [list(x) for x in r.topic_error_codes]
deadline = time.time() + 10
while T in a.list_topics() and time.time() < deadline:
    time.sleep(0.1)
res['listed_after'] = T in a.list_topics()
a.close()
print(json.dumps(res))
`,
    broker.bootstrap,
    { env: { TOPIC: topic } },
  );
  assert.deepEqual(res.create, [[topic, 0]]);
  assert.equal(res.listed, true);
  assert.equal(res.describe_error, 0);
  assert.deepEqual(res.retention, { value: '654321', source: 1 }, 'DYNAMIC_TOPIC_CONFIG');
  assert.equal(res.cleanup.value, 'delete');
  assert.ok([4, 5].includes(res.cleanup.source), `cleanup.policy source ${res.cleanup.source} is not a default`);
  assert.deepEqual(res.create_partitions, [[topic, 0]]);
  assert.deepEqual(res.partitions, [0, 1, 2]);
  assert.deepEqual(res.delete, [[topic, 0]]);
  assert.equal(res.listed_after, false);
});
