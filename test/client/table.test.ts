/**
 * The table view against an in-process broker: the initial load (duplicates and tombstones, several
 * partitions, a compacted log with gaps), caught-up signalling on empty and non-empty topics, live
 * updates through `change` events and the `changes()` iterator, typed serdes, and transactions
 * (aborted and open ones are not applied under read_committed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka } from '../../src/client/kafka.js';
import { jsonSerde } from '../../src/client/serializers.js';
import type { Producer } from '../../src/client/producer.js';
import type { Table, TableChange } from '../../src/client/table.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { uniqueName } from './helpers.js';

let broker: StrandTestBroker;
let kafka: Kafka;
let producer: Producer<string, string>;
const T = { timeout: 60000 };
const COMPACT = { 'cleanup.policy': 'compact' };

before(async () => {
  broker = await startStrand({ config: { 'log.cleaner.backoff.ms': 60000 } });
  kafka = new Kafka({ brokers: [broker.bootstrap] });
  producer = kafka.producer<string, string>({ lingerMs: 0, allowAutoTopicCreation: false });
});
after(async () => {
  await producer?.close();
  await broker?.stop();
});

/** Sends records in order, one at a time (so the last write of a key is the last in its partition). */
async function send(topic: string, records: Array<[string, string | null, number?]>): Promise<void> {
  for (const [key, value, partition] of records) await producer.send({ topic, key, value, ...(partition === undefined ? {} : { partition }) });
}

function expectedOf(records: Array<[string, string | null, number?]>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of records) v === null ? m.delete(k) : m.set(k, v);
  return m;
}

const asStrings = (t: Table<string, Buffer>): Map<string, string> => new Map([...t.entries()].map(([k, v]) => [k, v.toString()]));

test('initial load: the latest value of every key over 3 partitions, duplicates collapsed, tombstoned keys absent', T, async () => {
  const topic = uniqueName('table-load');
  await broker.createTopics([{ name: topic, partitions: 3, configs: COMPACT }]);
  const records: Array<[string, string | null, number?]> = [];
  for (let round = 0; round < 5; round++) for (let k = 0; k < 30; k++) records.push([`k${k}`, `v${round}-${k}`]);
  for (let k = 0; k < 30; k += 3) records.push([`k${k}`, null]); // deleted
  records.push(['k3', 'back']); // deleted, then written again
  records.push(['gone', null]); // a tombstone of a key never written
  await send(topic, records);

  const table = kafka.table(topic);
  const changes: TableChange<string, Buffer>[] = [];
  table.on('change', (c: TableChange<string, Buffer>) => changes.push(c));
  let caughtUpEvents = 0;
  table.on('caughtUp', () => caughtUpEvents++);
  assert.equal(table.caughtUp, false);
  await table.ready();
  assert.equal(table.caughtUp, true);
  assert.equal(caughtUpEvents, 1);
  assert.deepEqual(asStrings(table), expectedOf(records));
  assert.equal(table.get('k3')?.toString(), 'back');
  assert.equal(table.has('k6'), false);
  assert.equal(table.get('gone'), undefined);
  assert.deepEqual(new Set(table.positions().map((p) => p.partition)), new Set([0, 1, 2]));
  assert.ok(table.positions().every((p) => p.caughtUp && p.position >= p.endOffsetAtStart));
  // Every record but the tombstone of a key never written is a change; a delete carries the previous value.
  assert.equal(changes.length, records.length - 1);
  const del = changes.find((c) => c.key === 'k0' && c.value === undefined)!;
  assert.equal(del.previous?.toString(), 'v4-0');
  await table.close();

  // The same load in many small fetches (a batch or two each) ends the same.
  const small = kafka.table(topic, { maxPartitionBytes: 256 });
  await small.ready();
  assert.deepEqual(asStrings(small), expectedOf(records));
  await small.close();
});

test('caught up at once on an empty topic; a topic whose records are all deleted loads empty', T, async () => {
  const empty = uniqueName('table-empty');
  await broker.createTopics([{ name: empty, partitions: 2, configs: COMPACT }]);
  const t1 = kafka.table(empty);
  await t1.ready();
  assert.equal(t1.size, 0);
  assert.equal(t1.caughtUp, true);
  await t1.close();

  const deleted = uniqueName('table-deleted');
  await broker.createTopics([{ name: deleted, configs: COMPACT }]);
  await send(deleted, [['a', '1'], ['b', '2'], ['a', null], ['b', null]]);
  const t2 = kafka.table(deleted);
  await t2.ready();
  assert.equal(t2.size, 0);
  await t2.close();
});

test('live updates after the load: change events and the changes() iterator see upserts and deletes with previous values', T, async () => {
  const topic = uniqueName('table-live');
  await broker.createTopics([{ name: topic, partitions: 2, configs: COMPACT }]);
  await send(topic, [['a', '1', 0], ['b', '1', 1]]);
  const table = kafka.table<string, { n: number } | null>(topic, { valueDeserializer: jsonSerde<{ n: number }>() });
  await table.ready();
  assert.deepEqual(table.get('a'), 1 as unknown as { n: number }); // '1' is valid JSON
  const iter = table.changes();
  await producer.send({ topic, key: 'a', value: JSON.stringify({ n: 2 }), partition: 0 });
  await producer.send({ topic, key: 'c', value: JSON.stringify({ n: 3 }), partition: 1 });
  await producer.send({ topic, key: 'b', value: null, partition: 1 });
  const got: TableChange<string, { n: number } | null>[] = [];
  for await (const c of iter) {
    got.push(c);
    if (got.length === 3) break;
  }
  const byKey = new Map(got.map((c) => [c.key, c]));
  assert.deepEqual(byKey.get('a')!.value, { n: 2 });
  assert.equal(byKey.get('a')!.previous, 1);
  assert.equal(byKey.get('a')!.partition, 0);
  assert.deepEqual(byKey.get('c')!.value, { n: 3 });
  assert.equal(byKey.get('c')!.previous, undefined);
  assert.equal(byKey.get('b')!.value, undefined);
  assert.equal(byKey.get('b')!.previous, 1);
  assert.deepEqual(table.toMap(), new Map<string, unknown>([['a', { n: 2 }], ['c', { n: 3 }]]));
  await table.close();
  assert.equal(table.size, 2, 'the map stays readable after close');
});

test('a compacted log with gaps: the table loads the latest value of every key and reports caught up', T, async () => {
  const topic = uniqueName('table-cleaned');
  await broker.createTopics([{ name: topic, configs: { ...COMPACT, 'segment.bytes': '1024', 'min.cleanable.dirty.ratio': '0.01' } }]);
  const records: Array<[string, string | null, number?]> = [];
  for (let round = 0; round < 8; round++) for (let k = 0; k < 10; k++) records.push([`key-${k}`, `round-${round}-`.padEnd(40, 'x')]);
  records.push(['key-9', null]);
  await send(topic, records);
  const log = broker.broker.replicaManager.getPartition(topic, 0)!.log;
  const stats = await broker.broker.logManager.cleaner.clean(log, { force: true });
  assert.ok(stats !== null && stats.recordsKept < stats.recordsRead, 'the cleaner removed records');
  const table = kafka.table(topic);
  await table.ready();
  assert.deepEqual(asStrings(table), expectedOf(records));
  assert.ok(table.positions()[0]!.position >= table.positions()[0]!.endOffsetAtStart);
  await table.close();
});

test('an unknown topic rejects ready() with UNKNOWN_TOPIC_OR_PARTITION', T, async () => {
  const t = kafka.table(uniqueName('table-missing'));
  t.on('error', () => {});
  await assert.rejects(t.ready(), (e: Error & { code?: string }) => e.code === 'UNKNOWN_TOPIC_OR_PARTITION');
  await t.close();
});

/** A transaction written by hand over the protocol, so this test checks the table alone, not the client's transactional producer. */
async function transactional(c: ProtocolConnection, tid: string) {
  const retry = async <T extends { errorCode: number }>(send: () => Promise<T>): Promise<T> => {
    for (;;) {
      const r = await send();
      if (r.errorCode !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS && r.errorCode !== ErrorCode.CONCURRENT_TRANSACTIONS && r.errorCode !== ErrorCode.COORDINATOR_NOT_AVAILABLE) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  const init = await retry(() => c.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, 4, { transactionalId: tid, transactionTimeoutMs: 60000, producerId: -1, producerEpoch: -1 }));
  assert.equal(init.errorCode, 0);
  let seq = 0;
  return {
    async write(topic: string, records: Array<[string, string]>): Promise<void> {
      const add = await c.send<m.AddPartitionsToTxnResponse>(m.ApiKey.AddPartitionsToTxn, 1, {
        ...m.defaultAddPartitionsToTxnRequest(),
        v3AndBelowTransactionalId: tid,
        v3AndBelowProducerId: init.producerId,
        v3AndBelowProducerEpoch: init.producerEpoch,
        v3AndBelowTopics: [{ name: topic, partitions: [0] }],
      });
      assert.equal(add.resultsByTopicV3AndBelow[0]!.resultsByPartition[0]!.partitionErrorCode, 0);
      const batch = encodeRecordBatch({ records: records.map(([k, v]) => ({ key: Buffer.from(k), value: Buffer.from(v) })), producerId: init.producerId, producerEpoch: init.producerEpoch, baseSequence: seq, transactional: true });
      seq += records.length;
      const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, 7, { transactionalId: tid, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }] });
      assert.equal(r.responses[0]!.partitionResponses[0]!.errorCode, 0);
    },
    async end(committed: boolean): Promise<void> {
      const r = await retry(() => c.send<m.EndTxnResponse>(m.ApiKey.EndTxn, 1, { transactionalId: tid, producerId: init.producerId, producerEpoch: init.producerEpoch, committed }));
      assert.equal(r.errorCode, 0);
    },
  };
}

test('transactions: read_committed applies committed records only, an open transaction when it commits; read_uncommitted sees all', T, async () => {
  const topic = uniqueName('table-txn');
  await broker.createTopics([{ name: topic, configs: COMPACT }]);
  const c = await ProtocolConnection.connect(broker.host, broker.port);
  try {
    await send(topic, [['plain', 'p1']]);
    const aborted = await transactional(c, uniqueName('tx-a'));
    await aborted.write(topic, [['a', 'aborted'], ['plain', 'overwritten by an aborted txn']]);
    await aborted.end(false);
    const committed = await transactional(c, uniqueName('tx-c'));
    await committed.write(topic, [['b', 'committed']]);
    await committed.end(true);
    const open = await transactional(c, uniqueName('tx-o'));
    await open.write(topic, [['c', 'open']]);

    const table = kafka.table(topic);
    await table.ready();
    assert.deepEqual(asStrings(table), new Map([['plain', 'p1'], ['b', 'committed']]));
    const dirty = kafka.table(topic, { isolationLevel: 'read_uncommitted' });
    await dirty.ready();
    assert.deepEqual(asStrings(dirty), new Map([['plain', 'overwritten by an aborted txn'], ['a', 'aborted'], ['b', 'committed'], ['c', 'open']]));
    await dirty.close();

    const next = new Promise<TableChange<string, Buffer>>((resolve) => table.once('change', resolve));
    await open.end(true);
    const change = await next;
    assert.equal(change.key, 'c');
    assert.equal(change.value?.toString(), 'open');
    assert.deepEqual(asStrings(table), new Map([['plain', 'p1'], ['b', 'committed'], ['c', 'open']]));
    await table.close();
  } finally {
    c.close();
  }
});
