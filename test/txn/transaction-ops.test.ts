/**
 * KIP-664's operations apis against a real broker process: DescribeTransactions,
 * ListTransactions and DescribeProducers, through the generated codecs (exact wire answers and
 * error codes) and through Strand's admin client (typed results).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { Kafka } from '../../src/client/kafka.js';
import { KafkaError } from '../../src/client/errors.js';
import type { Admin } from '../../src/client/admin.js';

let broker: BrokerProcess;
let c: ProtocolConnection;
let admin: Admin;
const T = { timeout: 60000 };
const OVERRIDES = { 'transaction.state.log.num.partitions': 3, 'offsets.topic.num.partitions': 3, 'transaction.abort.timed.out.transaction.cleanup.interval.ms': 200 };

before(async () => {
  broker = await startBroker({ overrides: OVERRIDES });
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  admin = new Kafka({ brokers: [broker.bootstrap], retry: { retries: 8, initialRetryTimeMs: 50, maxRetryTimeMs: 200 } }).admin();
  await admin.connect();
});

after(async () => {
  await admin.close();
  c.close();
  assert.equal(await broker.stop(), 0);
  assert.doesNotMatch(broker.output(), / ERROR /);
  broker.cleanup();
});

interface Pid {
  producerId: number;
  producerEpoch: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function createTopic(name: string, partitions = 1): Promise<void> {
  const r = await c.send<m.CreateTopicsResponse>(m.ApiKey.CreateTopics, 7, { ...m.defaultCreateTopicsRequest(), timeoutMs: 5000, topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }] });
  assert.equal(r.topics[0]!.errorCode, 0, r.topics[0]!.errorMessage ?? '');
}

/** InitProducerId, retried while the coordinator loads or ends a previous transaction (as clients do). */
async function initPid(transactionalId: string | null, timeoutMs = 60000): Promise<Pid> {
  for (;;) {
    const r = await c.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, 4, { transactionalId, transactionTimeoutMs: timeoutMs, producerId: -1, producerEpoch: -1 });
    if (r.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS || r.errorCode === ErrorCode.CONCURRENT_TRANSACTIONS || r.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE) {
      await sleep(20);
      continue;
    }
    assert.equal(r.errorCode, 0);
    return r;
  }
}

async function addPartitions(tid: string, pid: Pid, topic: string, partitions: number[]): Promise<void> {
  for (;;) {
    const r = await c.send<m.AddPartitionsToTxnResponse>(m.ApiKey.AddPartitionsToTxn, 3, {
      ...m.defaultAddPartitionsToTxnRequest(),
      v3AndBelowTransactionalId: tid,
      v3AndBelowProducerId: pid.producerId,
      v3AndBelowProducerEpoch: pid.producerEpoch,
      v3AndBelowTopics: [{ name: topic, partitions }],
    });
    const codes = r.resultsByTopicV3AndBelow[0]!.resultsByPartition.map((x) => x.partitionErrorCode);
    if (codes.every((x) => x === ErrorCode.CONCURRENT_TRANSACTIONS)) {
      await sleep(20);
      continue;
    }
    assert.deepEqual(codes, partitions.map(() => 0));
    return;
  }
}

async function endTxn(tid: string, pid: Pid, committed: boolean): Promise<void> {
  for (;;) {
    const r = await c.send<m.EndTxnResponse>(m.ApiKey.EndTxn, 3, { transactionalId: tid, producerId: pid.producerId, producerEpoch: pid.producerEpoch, committed });
    if (r.errorCode === ErrorCode.CONCURRENT_TRANSACTIONS) {
      await sleep(20);
      continue;
    }
    assert.equal(r.errorCode, 0);
    return;
  }
}

/** Produces `count` records as one batch at `seq`; resolves with the base offset. */
async function produce(topic: string, partition: number, pid: Pid, seq: number, count: number, tid: string | null): Promise<number> {
  const records = encodeRecordBatch({ records: Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`v${seq + i}`) })), producerId: pid.producerId, producerEpoch: pid.producerEpoch, baseSequence: seq, transactional: tid !== null });
  const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, 9, { transactionalId: tid, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] });
  const p = r.responses[0]!.partitionResponses[0]!;
  assert.equal(p.errorCode, 0, p.errorMessage ?? '');
  return p.baseOffset;
}

async function describeTxn(...ids: string[]): Promise<m.DescribeTransactionsResponseTransactionState[]> {
  const r = await c.send<m.DescribeTransactionsResponse>(m.ApiKey.DescribeTransactions, 0, { transactionalIds: ids });
  return r.transactionStates;
}

async function listTxns(req: Partial<m.ListTransactionsRequest> = {}, version = 1): Promise<m.ListTransactionsResponse> {
  return c.send<m.ListTransactionsResponse>(m.ApiKey.ListTransactions, version, { stateFilters: [], producerIdFilters: [], durationFilter: -1, ...req });
}

async function describeProducers(topic: string, partitions: number[]): Promise<m.DescribeProducersResponsePartitionResponse[]> {
  const r = await c.send<m.DescribeProducersResponse>(m.ApiKey.DescribeProducers, 0, { topics: [{ name: topic, partitionIndexes: partitions }] });
  assert.equal(r.topics.length, 1);
  return r.topics[0]!.partitions;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function metadataHas(topic: string): Promise<boolean> {
  const r = await c.send<m.MetadataResponse>(m.ApiKey.Metadata, 9, { ...m.defaultMetadataRequest(), topics: null, allowAutoTopicCreation: false });
  return r.topics.some((t) => t.name === topic);
}

test('ApiVersions advertises DescribeProducers v0, DescribeTransactions v0, ListTransactions v0-1 and WriteTxnMarkers v0-1', T, async () => {
  const r = await c.send<m.ApiVersionsResponse>(m.ApiKey.ApiVersions, 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  const range = (key: number): [number, number] | undefined => {
    const k = r.apiKeys.find((x) => x.apiKey === key);
    return k === undefined ? undefined : [k.minVersion, k.maxVersion];
  };
  assert.deepEqual(range(61), [0, 0]);
  assert.deepEqual(range(65), [0, 0]);
  assert.deepEqual(range(66), [0, 1]);
  assert.deepEqual(range(27), [0, 1]);
});

test('before any transactional producer: nothing listed, ids not found, and __transaction_state is not created by asking', T, async () => {
  const list = await listTxns();
  assert.equal(list.errorCode, 0);
  assert.deepEqual(list.transactionStates, []);
  const [d] = await describeTxn('nobody');
  assert.equal(d!.errorCode, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);
  assert.equal(d!.transactionalId, 'nobody');
  assert.equal(await metadataHas('__transaction_state'), false);
});

test('DescribeProducers: unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; an idempotent producer shows its epoch and last sequence', T, async () => {
  const topic = 'ops-idem';
  await createTopic(topic, 2);
  const [missing] = await describeProducers('ops-no-such-topic', [0]);
  assert.equal(missing!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const parts = await describeProducers(topic, [0, 1, 9]);
  assert.deepEqual(parts.map((p) => [p.partitionIndex, p.errorCode]), [[0, 0], [1, 0], [9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);
  assert.deepEqual(parts[0]!.activeProducers, []);

  const pid = await initPid(null);
  const before = Date.now();
  await produce(topic, 0, pid, 0, 5, null);
  await produce(topic, 0, pid, 5, 3, null);
  const [p0, p1] = await describeProducers(topic, [0, 1]);
  assert.equal(p0!.activeProducers.length, 1);
  const s = p0!.activeProducers[0]!;
  assert.equal(s.producerId, pid.producerId);
  assert.equal(s.producerEpoch, pid.producerEpoch);
  assert.equal(s.lastSequence, 7);
  assert.equal(s.coordinatorEpoch, -1);
  assert.equal(s.currentTxnStartOffset, -1);
  assert.ok(s.lastTimestamp >= before - 1000 && s.lastTimestamp <= Date.now() + 1000, `lastTimestamp ${s.lastTimestamp}`);
  assert.deepEqual(p1!.activeProducers, [], 'partition 1 has seen no producer');
});

test('a transaction through its states: Empty, Ongoing with its partitions, CompleteCommit, then an aborted one CompleteAbort', T, async () => {
  const topic = 'ops-txn';
  await createTopic(topic, 3);
  const tid = 'ops-txn-id';
  const pid = await initPid(tid, 45000);
  assert.equal(await metadataHas('__transaction_state'), true);

  let [d] = await describeTxn(tid);
  assert.deepEqual(d, { errorCode: 0, transactionalId: tid, transactionState: 'Empty', transactionTimeoutMs: 45000, transactionStartTimeMs: -1, producerId: pid.producerId, producerEpoch: pid.producerEpoch, topics: [] });

  const started = Date.now();
  await addPartitions(tid, pid, topic, [2, 0]);
  const base = await produce(topic, 0, pid, 0, 4, tid);
  [d] = await describeTxn(tid);
  assert.equal(d!.errorCode, 0);
  assert.equal(d!.transactionState, 'Ongoing');
  assert.deepEqual(d!.topics.map((t) => [t.topic, [...t.partitions].sort()]), [[topic, [0, 2]]]);
  assert.ok(d!.transactionStartTimeMs >= started - 1000 && d!.transactionStartTimeMs <= Date.now(), `start ${d!.transactionStartTimeMs}`);

  // DescribeProducers while open: the open transaction's first offset; partition 2 has no batch yet.
  const [p0, p2] = await describeProducers(topic, [0, 2]);
  assert.deepEqual(
    p0!.activeProducers.map((a) => ({ ...a, lastTimestamp: 0 })),
    [{ producerId: pid.producerId, producerEpoch: pid.producerEpoch, lastSequence: 3, lastTimestamp: 0, coordinatorEpoch: -1, currentTxnStartOffset: base }],
  );
  assert.deepEqual(p2!.activeProducers, []);

  // ListTransactions filters.
  const all = await listTxns();
  assert.deepEqual(all.transactionStates, [{ transactionalId: tid, producerId: pid.producerId, transactionState: 'Ongoing' }]);
  assert.deepEqual((await listTxns({ stateFilters: ['Ongoing'] })).transactionStates.map((t) => t.transactionalId), [tid]);
  assert.deepEqual((await listTxns({ stateFilters: ['CompleteCommit', 'Empty'] })).transactionStates, []);
  assert.deepEqual((await listTxns({ producerIdFilters: [pid.producerId] })).transactionStates.map((t) => t.transactionalId), [tid]);
  assert.deepEqual((await listTxns({ producerIdFilters: [pid.producerId + 100000] })).transactionStates, []);
  const bogus = await listTxns({ stateFilters: ['Ongoing', 'Bogus'] });
  assert.deepEqual(bogus.unknownStateFilters, ['Bogus']);
  assert.deepEqual(bogus.transactionStates.map((t) => t.transactionalId), [tid]);
  await sleep(30);
  assert.deepEqual((await listTxns({ durationFilter: 10 })).transactionStates.map((t) => t.transactionalId), [tid], 'running longer than 10 ms');
  assert.deepEqual((await listTxns({ durationFilter: 3600000 })).transactionStates, [], 'not running for an hour');
  assert.deepEqual((await listTxns({ durationFilter: 3600000 }, 0)).transactionStates.map((t) => t.transactionalId), [tid], 'v0 has no duration filter');

  await endTxn(tid, pid, true);
  d = await until('CompleteCommit', async () => {
    const [x] = await describeTxn(tid);
    return x!.transactionState === 'CompleteCommit' ? x : undefined;
  });
  assert.deepEqual(d.topics, []);
  assert.equal(d.producerEpoch, pid.producerEpoch);
  const [after0] = await describeProducers(topic, [0]);
  const a = after0!.activeProducers[0]!;
  assert.equal(a.currentTxnStartOffset, -1, 'no open transaction after the commit marker');
  assert.equal(a.coordinatorEpoch, 0, 'the marker carried coordinator epoch 0');
  assert.equal(a.lastSequence, 3);
  assert.equal((await describeProducers(topic, [2]))[0]!.activeProducers[0]?.currentTxnStartOffset, -1, 'the marker reached partition 2 too');

  // An aborted transaction ends in CompleteAbort; a repeated id is answered twice, unknown ones beside it.
  await addPartitions(tid, pid, topic, [1]);
  const base1 = await produce(topic, 1, pid, 0, 2, tid);
  assert.equal((await describeProducers(topic, [1]))[0]!.activeProducers[0]!.currentTxnStartOffset, base1);
  await endTxn(tid, pid, false);
  await until('CompleteAbort', async () => ((await describeTxn(tid))[0]!.transactionState === 'CompleteAbort' ? true : undefined));
  const many = await describeTxn(tid, 'ops-unknown', tid, '');
  assert.deepEqual(many.map((x) => [x.transactionalId, x.errorCode, x.transactionState]), [
    [tid, 0, 'CompleteAbort'],
    ['ops-unknown', ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, ''],
    [tid, 0, 'CompleteAbort'],
    ['', ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, ''],
  ]);
  assert.equal((await describeProducers(topic, [1]))[0]!.activeProducers[0]!.currentTxnStartOffset, -1);
  assert.deepEqual((await listTxns({ stateFilters: ['CompleteAbort'] })).transactionStates.map((t) => t.transactionalId), [tid]);
});

test('admin client: listTransactions, describeTransactions and describeProducers give typed results', T, async () => {
  const topic = 'ops-admin';
  await admin.createTopics([{ name: topic, partitions: 2 }]);
  const tid = 'ops-admin-id';
  const pid = await initPid(tid, 30000);
  await addPartitions(tid, pid, topic, [1]);
  const base = await produce(topic, 1, pid, 0, 3, tid);

  const [d] = await admin.describeTransactions([tid]);
  assert.equal(d!.state, 'Ongoing');
  assert.equal(d!.coordinatorId, 1);
  assert.equal(d!.producerId, pid.producerId);
  assert.equal(d!.producerEpoch, pid.producerEpoch);
  assert.equal(d!.transactionTimeoutMs, 30000);
  assert.equal(typeof d!.transactionStartTimeMs, 'number');
  assert.deepEqual(d!.partitions, [{ topic, partition: 1 }]);

  const listed = await admin.listTransactions({ states: ['Ongoing'] });
  assert.deepEqual(listed.filter((l) => l.transactionalId === tid), [{ transactionalId: tid, producerId: pid.producerId, state: 'Ongoing', coordinatorId: 1 }]);
  assert.deepEqual((await admin.listTransactions({ producerIds: [pid.producerId] })).map((l) => l.transactionalId), [tid]);
  assert.deepEqual((await admin.listTransactions({ states: ['Ongoing'], durationMs: 3600000 })).filter((l) => l.transactionalId === tid), []);

  const ps = await admin.describeProducers([{ topic, partition: 0 }, { topic, partition: 1 }]);
  assert.deepEqual(ps.map((p) => [p.partition, p.leader, p.activeProducers.length]), [[0, 1, 0], [1, 1, 1]]);
  const s = ps[1]!.activeProducers[0]!;
  assert.equal(s.currentTransactionStartOffset, base);
  assert.equal(s.coordinatorEpoch, null);
  assert.equal(s.lastSequence, 2);

  await endTxn(tid, pid, true);
  await until('CompleteCommit', async () => ((await admin.describeTransactions([tid]))[0]!.state === 'CompleteCommit' ? true : undefined));
  const [after1] = await admin.describeProducers([{ topic, partition: 1 }]);
  assert.equal(after1!.activeProducers[0]!.currentTransactionStartOffset, null);
  assert.equal(after1!.activeProducers[0]!.coordinatorEpoch, 0);

  await assert.rejects(admin.describeTransactions(['ops-admin-unknown']), (e: unknown) => e instanceof KafkaError && e.code === 'TRANSACTIONAL_ID_NOT_FOUND' && !e.retriable);
  await assert.rejects(admin.describeProducers([{ topic: 'ops-admin-missing', partition: 0 }]), (e: unknown) => e instanceof KafkaError && e.code === 'UNKNOWN_TOPIC_OR_PARTITION');
});

async function lastStable(topic: string, partition: number): Promise<number> {
  const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, 2, { replicaId: -1, isolationLevel: 1, topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }], timeoutMs: 0 });
  return r.topics[0]!.partitions[0]!.offset;
}

test('WriteTxnMarkers (v0 and v1): an ABORT closes the open transaction in the partition; unknown partitions and stale epochs are refused', T, async () => {
  const topic = 'ops-markers';
  await createTopic(topic, 2);
  const tid = 'ops-markers-id';
  const pid = await initPid(tid, 60000);
  await addPartitions(tid, pid, topic, [0, 1]);
  await produce(topic, 0, pid, 0, 2, tid);
  await produce(topic, 1, pid, 0, 3, tid);
  assert.equal(await lastStable(topic, 0), 0);
  const write = (version: number, epoch: number, partitions: number[], name = topic): Promise<m.WriteTxnMarkersResponse> =>
    c.send<m.WriteTxnMarkersResponse>(m.ApiKey.WriteTxnMarkers, version, {
      markers: [{ producerId: pid.producerId, producerEpoch: epoch, transactionResult: false, coordinatorEpoch: 0, topics: [{ name, partitionIndexes: partitions }] }],
    });
  const r0 = await write(0, pid.producerEpoch, [0, 5]);
  assert.deepEqual(r0.markers.map((x) => [x.producerId, x.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, p.errorCode])])]), [[pid.producerId, [[topic, [[0, 0], [5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]]]]]);
  assert.equal(await lastStable(topic, 0), 3, 'two records and the marker are stable');
  assert.equal((await describeProducers(topic, [0]))[0]!.activeProducers[0]!.currentTxnStartOffset, -1);
  const noEpoch = await write(1, -1, [1]);
  assert.equal(noEpoch.markers[0]!.topics[0]!.partitions[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  const missing = await write(1, pid.producerEpoch, [0], 'ops-markers-missing');
  assert.equal(missing.markers[0]!.topics[0]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);

  // The coordinator fences the producer (a new InitProducerId aborts with epoch + 1): a marker with the old epoch is refused.
  const fresh = await initPid(tid, 60000);
  assert.ok(fresh.producerEpoch > pid.producerEpoch);
  await until('the fencing abort', async () => ((await describeTxn(tid))[0]!.transactionState === 'Empty' ? true : undefined));
  assert.equal(await lastStable(topic, 1), 4);
  const stale = await write(1, pid.producerEpoch, [1]);
  assert.equal(stale.markers[0]!.topics[0]!.partitions[0]!.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
  assert.equal(await lastStable(topic, 1), 4, 'nothing written');

  // The admin client's abortTransaction is the same request.
  await addPartitions(tid, fresh, topic, [1]);
  const base = await produce(topic, 1, fresh, 0, 1, tid);
  assert.equal(await lastStable(topic, 1), base);
  await admin.abortTransaction({ topic, partition: 1, producerId: fresh.producerId, producerEpoch: fresh.producerEpoch });
  assert.equal(await lastStable(topic, 1), base + 2);
  await assert.rejects(admin.abortTransaction({ topic, partition: 1, producerId: pid.producerId, producerEpoch: pid.producerEpoch }), (e: unknown) => e instanceof KafkaError && e.code === 'INVALID_PRODUCER_EPOCH');
  // The coordinator still has the transaction Ongoing (an operator's abort is not known to it); ending it completes.
  await endTxn(tid, fresh, false);
  await until('CompleteAbort', async () => ((await describeTxn(tid))[0]!.transactionState === 'CompleteAbort' ? true : undefined));
});
