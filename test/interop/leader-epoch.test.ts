/**
 * Clients across leader epoch changes, with OffsetForLeaderEpoch advertised: the epoch of a
 * partition moves (a Partition record committed through the broker's controller, as an election
 * does) while librdkafka (confluent-kafka-python) consumes and between kcat runs; every record is
 * read once, in order. OffsetForLeaderEpoch answers for the epochs the log holds.
 *
 * librdkafka 2.0.2 predates its KIP-320 position validation (2.1), and KafkaJS and kafka-python do
 * not implement it, so no client here sends OffsetForLeaderEpoch; the protocol-level answers are
 * checked in test/broker/offset-for-leader-epoch.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { kcatOk, skipUnless, spawnPython } from './helpers.js';

let strand: StrandTestBroker;
let c: ProtocolConnection;

before(async () => {
  strand = await startStrand({ topics: ['epoch-kcat', 'epoch-rdkafka'] });
  c = await ProtocolConnection.connect(strand.host, strand.port);
});

after(async () => {
  c?.close();
  await strand?.stop();
});

async function produce(topic: string, from: number, n: number): Promise<void> {
  const records = encodeRecordBatch({ records: Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`m${from + i}`), timestamp: Date.now() })) });
  const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  assert.equal(r.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.NONE);
}

/** A new leader epoch for partition 0 (this broker stays leader); resolves once applied. */
async function bumpEpoch(topic: string): Promise<number> {
  const broker = strand.broker;
  const t = broker.image.topic(topic)!;
  const p = t.partitions[0]!;
  const next = p.leaderEpoch + 1;
  await broker.controller.run(() => ({
    records: [{ type: 'Partition' as const, topicId: t.topicId, partition: 0, replicas: [...p.replicas], isr: [...p.isr], leader: p.leader, leaderEpoch: next, partitionEpoch: p.partitionEpoch + 1 }],
    result: undefined,
  }));
  const deadline = Date.now() + 5000;
  while (broker.replicaManager.getPartition(topic, 0)?.leaderEpoch !== next) {
    assert.ok(Date.now() < deadline, 'leader epoch not applied');
    await new Promise((r) => setTimeout(r, 5));
  }
  return next;
}

async function endOffsetFor(topic: string, leaderEpoch: number): Promise<[number, number, number]> {
  const r = await c.send<m.OffsetForLeaderEpochResponse>(m.ApiKey.OffsetForLeaderEpoch, 4, {
    replicaId: -1,
    topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch }] }],
  });
  const p = r.topics[0]!.partitions[0]!;
  return [p.errorCode, p.leaderEpoch, p.endOffset];
}

const expected = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

test('kcat reads a log written under three leader epochs, in order', { ...skipUnless('kcat'), timeout: 60000 }, async () => {
  const e0 = strand.broker.replicaManager.getPartition('epoch-kcat', 0)!.leaderEpoch;
  await produce('epoch-kcat', 0, 5);
  const e1 = await bumpEpoch('epoch-kcat');
  await produce('epoch-kcat', 5, 5);
  const e2 = await bumpEpoch('epoch-kcat');
  await produce('epoch-kcat', 10, 5);
  const out = await kcatOk(strand.bootstrap, ['-C', '-t', 'epoch-kcat', '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%s\\n']);
  assert.deepEqual(out.trim().split('\n'), expected(15));
  assert.deepEqual(await endOffsetFor('epoch-kcat', e0), [ErrorCode.NONE, e0, 5]);
  assert.deepEqual(await endOffsetFor('epoch-kcat', e1), [ErrorCode.NONE, e1, 10]);
  assert.deepEqual(await endOffsetFor('epoch-kcat', e2), [ErrorCode.NONE, e2, 15]);
});

test('a librdkafka consumer keeps consuming, once and in order, while the leader epoch moves under it', { ...skipUnless('confluent-kafka'), timeout: 90000 }, async () => {
  const total = 30;
  const consumer = spawnPython(
    'confluent-kafka',
    `
import os, sys
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
c = Consumer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'group.id': 'epoch-rdkafka', 'enable.auto.commit': False,
              'topic.metadata.refresh.interval.ms': 200, 'fetch.wait.max.ms': 50})
c.assign([TopicPartition('epoch-rdkafka', 0, OFFSET_BEGINNING)])
n = 0
while n < ${total}:
    msg = c.poll(0.5)
    if msg is None:
        continue
    if msg.error():
        print('error ' + str(msg.error()), file=sys.stderr)
        continue
    print(msg.value().decode() + ' ' + str(msg.offset()))
    n += 1
c.close()
`,
    strand.bootstrap,
    { timeoutMs: 80000 },
  );
  await produce('epoch-rdkafka', 0, 10);
  await consumer.waitForLines(/^m\d+ \d+$/, 10, 30000);
  await bumpEpoch('epoch-rdkafka');
  await produce('epoch-rdkafka', 10, 10);
  await consumer.waitForLines(/^m\d+ \d+$/, 20, 30000);
  await bumpEpoch('epoch-rdkafka');
  await produce('epoch-rdkafka', 20, 10);
  const r = await consumer.exited;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const lines = consumer.lines().filter((l) => /^m\d+ \d+$/.test(l));
  assert.deepEqual(lines, expected(total).map((v, i) => `${v} ${i}`));
});
