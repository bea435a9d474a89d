/**
 * The producer against an in-process broker. Every check reads the partition back with an
 * independent Fetch + decodeRecordBatches (test/interop/helpers.ts fetchAll), not the client's
 * own consumer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka } from '../../src/client/kafka.js';
import { StrandError } from '../../src/client/errors.js';
import { jsonSerde, stringSerde } from '../../src/client/serializers.js';
import { partitionForKey } from '../../src/client/partitioner.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { fetchAll } from '../interop/helpers.js';
import { uniqueName } from './helpers.js';

let broker: StrandTestBroker;
let kafka: Kafka;
const T = { timeout: 60000 };

before(async () => {
  broker = await startStrand({ config: { 'auto.create.topics.enable': 'false' } });
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'producer-test' });
});
after(async () => {
  await broker?.stop();
});

for (const compression of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
  test(`records with keys, headers and ${compression} compression arrive in order`, T, async () => {
    const topic = uniqueName(`codec-${compression}`);
    await broker.createTopics([{ name: topic, partitions: 1 }]);
    const producer = kafka.producer({ compression, lingerMs: 5 });
    const n = 500;
    const meta = await Promise.all(
      Array.from({ length: n }, (_, i) => producer.send({ topic, key: `k${i}`, value: `value-${i}-${'z'.repeat(i % 50)}`, headers: { i: String(i), bin: Buffer.from([i & 0xff]), none: null } })),
    );
    await producer.close();
    assert.deepEqual(meta.map((m) => m.offset), Array.from({ length: n }, (_, i) => i));
    const { records, batches } = await fetchAll(broker.port, topic, 0);
    assert.equal(records.length, n);
    const codecNumber = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }[compression];
    assert.ok(batches.every((b) => (b.header.attributes & 7) === codecNumber), 'every batch uses the codec');
    assert.ok(batches.length < n / 10, `records are batched (${batches.length} batches)`);
    records.forEach((r, i) => {
      assert.equal(r.offset, i);
      assert.equal(r.key, `k${i}`);
      assert.equal(r.value, `value-${i}-${'z'.repeat(i % 50)}`);
      assert.deepEqual(r.headers, [['i', String(i)], ['bin', Buffer.from([i & 0xff]).toString('utf8')], ['none', null]]);
    });
  });
}

test('keyed records go to positive(murmur2(key)) % partitions; keyless records stick to one partition per batch', T, async () => {
  const topic = uniqueName('keyed');
  await broker.createTopics([{ name: topic, partitions: 5 }]);
  const producer = kafka.producer({ lingerMs: 20 });
  const keyed = await Promise.all(Array.from({ length: 100 }, (_, i) => producer.send({ topic, key: `user-${i}`, value: 'x' })));
  keyed.forEach((m, i) => assert.equal(m.partition, partitionForKey(Buffer.from(`user-${i}`), 5)));
  const keyless = await Promise.all(Array.from({ length: 50 }, () => producer.send({ topic, value: 'y' })));
  assert.equal(new Set(keyless.map((m) => m.partition)).size, 1, 'one linger window of keyless records fills one partition');
  const explicit = await producer.send({ topic, value: 'z', partition: 3 });
  assert.equal(explicit.partition, 3);
  await producer.close();
});

test('acks 0, 1 and -1 all store the records', T, async () => {
  for (const acks of [0, 1, -1] as const) {
    const topic = uniqueName(`acks${acks}`);
    await broker.createTopics([{ name: topic, partitions: 1 }]);
    const producer = kafka.producer({ acks });
    const meta = await producer.sendBatch(Array.from({ length: 20 }, (_, i) => ({ topic, value: `a${i}` })));
    await producer.close();
    if (acks === 0) assert.ok(meta.every((m) => m.offset === -1));
    else assert.deepEqual(meta.map((m) => m.offset), Array.from({ length: 20 }, (_, i) => i));
    const deadline = Date.now() + 5000;
    let got = 0;
    while (Date.now() < deadline && got < 20) {
      got = (await fetchAll(broker.port, topic, 0)).records.length;
      if (got < 20) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(got, 20, `acks=${acks}`);
  }
});

test('typed serializers: JSON values, string keys, custom serializer', T, async () => {
  const topic = uniqueName('serde');
  await broker.createTopics([{ name: topic }]);
  const json = kafka.producer<string | null, { n: number } | null>({ keySerializer: stringSerde, valueSerializer: jsonSerde<{ n: number }>() });
  await json.send({ topic, key: 'a', value: { n: 1 } });
  await json.close();
  const upper = kafka.producer<string, string>({ valueSerializer: { serialize: (v) => Buffer.from(v.toUpperCase()) }, keySerializer: { serialize: (v) => Buffer.from(v) } });
  await upper.send({ topic, key: 'b', value: 'shout' });
  await upper.send({ topic, key: 'tomb', value: null });
  await upper.close();
  const { records } = await fetchAll(broker.port, topic, 0);
  assert.deepEqual(records.map((r) => [r.key, r.value]), [['a', '{"n":1}'], ['b', 'SHOUT'], ['tomb', null]]);
});

test('UNKNOWN_TOPIC_OR_PARTITION is retried with metadata refresh until the topic exists', T, async () => {
  const topic = uniqueName('late');
  const producer = kafka.producer({ retryBackoffMs: 20, retryBackoffMaxMs: 100, deliveryTimeoutMs: 20000 });
  const pending = producer.send({ topic, value: 'early' });
  await new Promise((r) => setTimeout(r, 300));
  await broker.createTopics([{ name: topic, partitions: 2 }]);
  const m = await pending;
  assert.equal(m.offset, 0);
  await producer.close();
});

test('a topic that never appears fails with a typed, retriable UNKNOWN_TOPIC_OR_PARTITION once metadata retries run out', T, async () => {
  const producer = kafka.producer({ deliveryTimeoutMs: 600, retryBackoffMs: 20, retryBackoffMaxMs: 50 });
  const err = await producer.send({ topic: uniqueName('never'), value: 'x' }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof StrandError, String(err));
  assert.equal(err.code, 'UNKNOWN_TOPIC_OR_PARTITION');
  assert.equal(err.retriable, true);
  assert.equal(err.needsMetadataRefresh, true);
  await producer.close();
});

test('buffer back-pressure: send waits for space, or rejects with BUFFER_FULL when maxBlockMs is 0', T, async () => {
  const topic = uniqueName('pressure');
  await broker.createTopics([{ name: topic }]);
  const value = Buffer.alloc(10000, 1);
  const strict = kafka.producer({ bufferBytes: 40000, batchBytes: 20000, maxBlockMs: 0, lingerMs: 50 });
  await strict.connect();
  const sends = Array.from({ length: 10 }, () => strict.send({ topic, value }).then(() => 'ok', (e: StrandError) => e.code));
  const outcomes = await Promise.all(sends);
  assert.ok(outcomes.includes('BUFFER_FULL'), JSON.stringify(outcomes));
  assert.ok(outcomes.includes('ok'));
  await strict.close();

  const waiting = kafka.producer({ bufferBytes: 40000, batchBytes: 20000, maxBlockMs: 10000, lingerMs: 1 });
  const all = await Promise.all(Array.from({ length: 30 }, () => waiting.send({ topic, value })));
  assert.equal(all.length, 30);
  assert.ok(waiting.bufferedBytes === 0);
  await waiting.close();
});

test('idempotence follows the broker: producer id and consecutive sequences when InitProducerId is offered, plain batches otherwise', T, async () => {
  const topic = uniqueName('idem');
  await broker.createTopics([{ name: topic }]);
  const offered = broker.broker.handlers.some((h) => h.api.key === 22);
  const producer = kafka.producer({ idempotent: true, lingerMs: 1, batchBytes: 1024 });
  await producer.connect();
  assert.equal(producer.idempotent, offered);
  await Promise.all(Array.from({ length: 50 }, (_, i) => producer.send({ topic, value: `v${i}-${'p'.repeat(40)}` })));
  await producer.close();
  const plain = kafka.producer({ idempotent: false });
  await plain.send({ topic, value: 'plain' });
  assert.equal(plain.idempotent, false);
  await plain.close();
  const { batches, records } = await fetchAll(broker.port, topic, 0);
  assert.equal(records.length, 51);
  const idem = batches.slice(0, -1);
  assert.ok(idem.length > 1, 'several batches');
  if (offered) {
    let seq = 0;
    for (const b of idem) {
      assert.ok(b.header.producerId >= 0);
      assert.equal(b.header.baseSequence, seq);
      seq += b.records.length;
    }
  } else assert.ok(idem.every((b) => b.header.producerId === -1));
  assert.equal(batches.at(-1)!.header.producerId, -1);
});

test('a record larger than maxRequestBytes is refused with MESSAGE_TOO_LARGE', T, async () => {
  const producer = kafka.producer({ maxRequestBytes: 1000 });
  await assert.rejects(producer.send({ topic: 'whatever', value: Buffer.alloc(2000) }), (e: StrandError) => e.code === 'MESSAGE_TOO_LARGE');
  await producer.close();
});

test('sendBatch: one promise for many records across partitions, metadata in order, explicit timestamps, one bad record fails the call but not the others', T, async () => {
  const topic = uniqueName('bulk');
  await broker.createTopics([{ name: topic, partitions: 3 }]);
  const producer = kafka.producer({ lingerMs: 2, batchBytes: 4096 });
  const n = 3000;
  const records = Array.from({ length: n }, (_, i) => ({ topic, key: `k${i}`, value: `v${i}`, ...(i % 7 === 0 ? { timestamp: 1_600_000_000_000 + i } : {}) }));
  const meta = await producer.sendBatch(records);
  assert.equal(meta.length, n);
  const next = [0, 0, 0];
  meta.forEach((m, i) => {
    assert.equal(m.partition, partitionForKey(Buffer.from(`k${i}`), 3));
    assert.equal(m.offset, next[m.partition]!++, `record ${i} offset`);
    if (i % 7 === 0) assert.equal(m.timestamp, 1_600_000_000_000 + i);
  });
  for (let p = 0; p < 3; p++) {
    const { records: got } = await fetchAll(broker.port, topic, p);
    assert.deepEqual(got.map((r) => r.key), records.filter((_, i) => meta[i]!.partition === p).map((r) => r.key));
  }
  const bad = producer.sendBatch([{ topic, value: 'ok-1' }, { topic, value: 'nope', partition: 99 }, { topic, value: 'ok-2', partition: 0 }]);
  await assert.rejects(bad, (e: StrandError) => e.code === 'UNKNOWN_TOPIC_OR_PARTITION');
  await producer.close();
  const { records: p0 } = await fetchAll(broker.port, topic, 0);
  assert.equal(p0.at(-1)!.value, 'ok-2', 'the valid records of a failed call are still delivered');
});

test('sendBatch under back-pressure: a call larger than the buffer waits for space and completes', T, async () => {
  const topic = uniqueName('bulk-pressure');
  await broker.createTopics([{ name: topic }]);
  const producer = kafka.producer({ bufferBytes: 64 * 1024, batchBytes: 16 * 1024, lingerMs: 1 });
  const value = Buffer.alloc(1000, 7);
  const meta = await producer.sendBatch(Array.from({ length: 500 }, () => ({ topic, value })));
  assert.deepEqual(meta.map((m) => m.offset), Array.from({ length: 500 }, (_, i) => i));
  assert.equal(producer.bufferedBytes, 0);
  const strict = kafka.producer({ bufferBytes: 32 * 1024, batchBytes: 16 * 1024, lingerMs: 50, maxBlockMs: 0 });
  await strict.connect();
  await strict.send({ topic, value });
  await assert.rejects(strict.sendBatch(Array.from({ length: 100 }, () => ({ topic, value }))), (e: StrandError) => e.code === 'BUFFER_FULL');
  await strict.close();
  await producer.close();
});
