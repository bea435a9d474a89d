/**
 * Key → partition must match the Java client and librdkafka's murmur2_random: Kafka's own murmur2
 * test vectors (UtilsTest.testMurmur2), then keyed records produced by kcat (librdkafka 2.0.2,
 * `-X partitioner=murmur2_random`) compared with where `partitionForKey` puts the same keys.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { murmur2, partitionForKey, toPositive } from '../../src/client/partitioner.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { IN_CI, fetchAll, kcatOk, skipUnless } from '../interop/helpers.js';
import { Kafka } from '../../src/client/kafka.js';

// Kafka's UtilsTest.testMurmur2: input → Java's signed int result.
const KAFKA_VECTORS: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

test('murmur2 matches Kafka\'s UtilsTest vectors', () => {
  for (const [input, expected] of KAFKA_VECTORS) assert.equal(murmur2(Buffer.from(input)), expected, input);
});

test('toPositive clears the sign bit like Java (not Math.abs)', () => {
  assert.equal(toPositive(-1), 0x7fffffff);
  assert.equal(toPositive(-2147483648), 0);
  assert.equal(toPositive(5), 5);
  // Kafka's positive(murmur2("foobar")) % 50 — the partition Java picks for key "foobar" among 50.
  assert.equal(partitionForKey(Buffer.from('foobar'), 50), 16);
});

test('murmur2 handles every tail length and binary keys', () => {
  for (let n = 0; n < 16; n++) {
    const b = Buffer.alloc(n, 0xff);
    const h = murmur2(b);
    assert.ok(Number.isInteger(h) && h >= -2147483648 && h <= 2147483647);
  }
});

let broker: StrandTestBroker;
before(async () => {
  broker = await startStrand();
});
after(async () => {
  await broker?.stop();
});

test('keys land where librdkafka (kcat, murmur2_random) puts them', { ...skipUnless('kcat'), timeout: 60000 }, async () => {
  const topic = `murmur-${process.pid}`;
  const partitions = 7;
  await broker.createTopics([{ name: topic, partitions }]);
  const keys = Array.from({ length: 200 }, (_, i) => `key-${i}-${'x'.repeat(i % 13)}`);
  const input = keys.map((k) => `${k}:v`).join('\n') + '\n';
  await kcatOk(broker.bootstrap, ['-P', '-t', topic, '-K:', '-X', 'partitioner=murmur2_random'], { input });
  // Strand's producer, same keys, another topic with the same partition count.
  const ours = `${topic}-strand`;
  await broker.createTopics([{ name: ours, partitions }]);
  const kafka = new Kafka({ brokers: [broker.bootstrap] });
  const producer = kafka.producer();
  const meta = await Promise.all(keys.map((k) => producer.send({ topic: ours, key: k, value: 'v' })));
  await producer.close();
  let checked = 0;
  for (let p = 0; p < partitions; p++) {
    const { records } = await fetchAll(broker.port, topic, p);
    for (const r of records) {
      assert.equal(partitionForKey(Buffer.from(r.key!), partitions), p, `kcat put ${r.key} on ${p}`);
      const mine = meta[keys.indexOf(r.key!)]!;
      assert.equal(mine.partition, p, `Strand's producer put ${r.key} on ${mine.partition}, librdkafka on ${p}`);
      checked++;
    }
  }
  assert.equal(checked, keys.length);
  void IN_CI;
});
