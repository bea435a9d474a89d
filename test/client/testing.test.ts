/**
 * `strand/testing`: the in-process broker starts and stops in well under a second, creates
 * topics, and serves an unmodified KafkaJS (producer, admin, consumer group) — the README example.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { startStrand } from '../../src/testing/index.js';
import { skipUnless } from '../interop/helpers.js';

test('startStrand starts and stops in well under a second, and removes its data directory', { timeout: 30000 }, async () => {
  const t0 = performance.now();
  const strand = await startStrand({ topics: ['a', { name: 'b', partitions: 4 }] });
  const startedMs = performance.now() - t0;
  assert.match(strand.bootstrap, /^127\.0\.0\.1:\d+$/);
  assert.ok(strand.port > 0);
  assert.ok(existsSync(strand.dataDir));
  const topics = strand.broker.image.topicsByName;
  assert.equal(topics.get('b')?.partitions.length, 4);
  assert.equal(topics.get('a')?.partitions.length, 1);
  const t1 = performance.now();
  await strand.stop();
  const stoppedMs = performance.now() - t1;
  assert.ok(!existsSync(strand.dataDir));
  assert.ok(startedMs < 1000, `start took ${startedMs.toFixed(0)} ms`);
  assert.ok(stoppedMs < 1000, `stop took ${stoppedMs.toFixed(0)} ms`);
  await strand.stop(); // idempotent
});

test('two in-process brokers run side by side', { timeout: 30000 }, async () => {
  const [a, b] = await Promise.all([startStrand(), startStrand()]);
  assert.notEqual(a.port, b.port);
  await Promise.all([a.stop(), b.stop()]);
});

test('KafkaJS works against the in-process broker: admin, producer, consumer group', { ...skipUnless('kafkajs'), timeout: 60000 }, async () => {
  const { Kafka, logLevel } = createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs');
  const strand = await startStrand({ topics: [{ name: 'orders', partitions: 3 }] });
  try {
    const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [strand.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    assert.ok((await admin.listTopics()).includes('orders'));
    await admin.disconnect();

    const producer = kafka.producer();
    await producer.connect();
    const n = 30;
    await producer.send({ topic: 'orders', messages: Array.from({ length: n }, (_, i) => ({ key: `order-${i}`, value: JSON.stringify({ i }) })) });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'kafkajs-group' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    const seen = new Set<number>();
    let resolve!: () => void;
    const all = new Promise<void>((r) => (resolve = r));
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.add((JSON.parse(message.value!.toString()) as { i: number }).i);
        if (seen.size === n) resolve();
      },
    });
    await all;
    await consumer.disconnect();
    assert.equal(seen.size, n);
  } finally {
    await strand.stop();
  }
});
