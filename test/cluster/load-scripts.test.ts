/**
 * The librdkafka load of the cluster fault tests (test/cluster/load/producer.py and consumer.py)
 * against one broker: the acks=all idempotent producer's acknowledgements, two group members'
 * reads and a fresh dump of the topic agree, and the checker finds nothing. This pins the scripts
 * and the checker down apart from any cluster behaviour; with a kill -9 and restart of the broker
 * in the middle, the scripts ride through it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../src/testing/broker-process.js';
import { skipUnless, stopCleanly, uniqueTopic } from '../interop/helpers.js';
import { check, summary, violations } from './checker.js';
import { dumpTopic, GroupConsumer, LoadProducer } from './load.js';

test('load scripts against one broker: producer, two group members, dump and checker agree through a kill -9 and restart', { ...skipUnless('confluent-kafka'), timeout: 120000 }, async (t) => {
  let broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0, 'offsets.topic.num.partitions': 4, 'num.partitions': 3 } });
  const topic = uniqueTopic('load');
  const producer = new LoadProducer(broker.bootstrap, topic, 3, 300);
  const consumers = [new GroupConsumer(broker.bootstrap, topic, `${topic}-g`, 'a'), new GroupConsumer(broker.bootstrap, topic, `${topic}-g`, 'b')];
  t.after(async () => {
    producer.kill();
    for (const c of consumers) c.kill();
    await broker.kill();
    broker.cleanup();
  });
  await producer.waitForMoreAcks(300, 30000);
  for (const c of consumers) await c.waitFor('an assignment', (ls) => ls.some((l) => l.event === 'assigned' && (l['partitions'] as number[]).length > 0), 30000);

  const port = broker.port;
  const dataDir = broker.dataDir;
  await broker.kill();
  broker = await startBroker({ port, dataDir, overrides: { 'group.initial.rebalance.delay.ms': 0, 'offsets.topic.num.partitions': 4, 'num.partitions': 3 } });
  await producer.waitForMoreAcks(300, 60000);

  const done = await producer.stop();
  assert.equal(done.code, 0, `producer: ${producer.errors()}\n${producer.tail()}`);
  assert.equal(producer.failed().length, 0, `failed deliveries: ${JSON.stringify(producer.failed().slice(0, 5))}`);
  const acked = producer.acked();
  const final = await dumpTopic(broker.bootstrap, topic);
  // The group catches up with everything stored.
  const total = final.records.length;
  await Promise.all(consumers.map((c) => c.waitFor('caught up', () => new Set(consumers.flatMap((x) => x.records().map((r) => `${r.p}@${r.o}`))).size >= total, 60000).catch(() => {})));
  for (const c of consumers) await c.stop();
  const report = check(acked, final.records, consumers.flatMap((c) => c.records()));
  console.log(`load scripts: ${summary(report)}`);
  assert.deepEqual(violations(report), []);
  assert.ok(acked.length >= 600);
  await stopCleanly(broker);
});
