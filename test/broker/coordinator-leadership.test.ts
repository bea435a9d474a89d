/**
 * The broker's coordinators follow the leadership of their internal-topic partitions in the
 * metadata image: a real broker (in-process) whose image is changed by committing Partition
 * records through its controller, as the cluster's controller will commit them on a leader
 * change. FindCoordinator answers the partition's leader; the coordinator resigns a partition
 * led elsewhere (NOT_COORDINATOR) and replays it when leadership comes back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { waitUntil } from '../../src/testing/cluster.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import * as m from '../../src/protocol/messages/index.js';
import { OFFSETS_TOPIC, partitionForGroup } from '../../src/coordinator/group-records.js';
import { TRANSACTION_STATE_TOPIC, partitionForTransactionalId } from '../../src/coordinator/transaction-records.js';
import type { MetadataRecord } from '../../src/broker/metadata/image.js';

/** A broker that is registered but never answers (nothing listens on the discard port): it never fetches. */
const OTHER = { brokerId: 2, host: '127.0.0.1', port: 9 };

let strand: StrandTestBroker;
let conn: ProtocolConnection;

after(async () => {
  conn?.close();
  await strand?.stop();
});

const until = <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10000): Promise<T> => waitUntil(what, fn, timeoutMs, 20);

/** Commits a leader change of an internal-topic partition, as the cluster's controller would. */
async function setLeader(topicName: string, partition: number, leader: number, leaderEpoch: number, isr?: number[]): Promise<void> {
  const broker = strand.broker;
  await broker.controller.run((image) => {
    const t = image.topic(topicName)!;
    const p = t.partitions[partition]!;
    const records: MetadataRecord[] = [];
    if (!image.brokers.has(OTHER.brokerId)) records.push({ type: 'RegisterBroker', ...OTHER, rack: null, incarnationId: 'test-incarnation' });
    const replicas = [broker.nodeId, OTHER.brokerId];
    records.push({ type: 'Partition', topicId: t.topicId, partition, replicas, isr: isr ?? (leader < 0 ? [] : replicas), leader, leaderEpoch, partitionEpoch: p.partitionEpoch + 1 });
    return { records, result: undefined };
  });
}

const find = (key: string, keyType = 0, version = 3) => conn.send<m.FindCoordinatorResponse>(m.ApiKey.FindCoordinator, version, { ...m.defaultFindCoordinatorRequest(), key, keyType, coordinatorKeys: [key] });

const commit = (groupId: string, offset: number) =>
  conn
    .send<m.OffsetCommitResponse>(m.ApiKey.OffsetCommit, 2, {
      ...m.defaultOffsetCommitRequest(),
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      topics: [{ name: 'orders', partitions: [{ ...m.defaultOffsetCommitRequestPartition(), partitionIndex: 0, committedOffset: offset }] }],
    })
    .then((r) => r.topics[0]!.partitions[0]!.errorCode);

const fetchOffset = (groupId: string) =>
  conn.send<m.OffsetFetchResponse>(m.ApiKey.OffsetFetch, 5, { ...m.defaultOffsetFetchRequest(), groupId, topics: [{ name: 'orders', partitionIndexes: [0] }] }).then((r) => ({ errorCode: r.errorCode, offset: r.topics[0]?.partitions[0]?.committedOffset ?? -1 }));

test('FindCoordinator answers the partition leader; the coordinator resigns a partition led elsewhere and reloads it when leadership returns', async () => {
  strand = await startStrand({ topics: [{ name: 'orders', partitions: 1 }], config: { 'transaction.state.log.num.partitions': '3', 'offsets.commit.timeout.ms': 500 } });
  conn = await ProtocolConnection.connect('127.0.0.1', strand.port, 'coordinator-leadership');
  const broker = strand.broker;
  const offsets = broker.image.topic(OFFSETS_TOPIC)!;
  assert.equal(offsets.partitions[0]!.replicas.length, 1, 'offsets.topic.replication.factor 3 is capped at the one live broker');
  const groups = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7'];
  const moved = 'g';
  const p = partitionForGroup(moved, offsets.partitions.length);
  const stay = groups.find((g) => partitionForGroup(g, offsets.partitions.length) !== p)!;

  // A single broker coordinates every group.
  const self = await find(moved);
  assert.equal(self.errorCode, ErrorCode.NONE);
  assert.equal(self.nodeId, broker.nodeId);
  assert.equal(self.port, strand.port);
  // Transactional ids: the first lookup creates __transaction_state (one live broker: RF 1).
  const tid = 'txn-a';
  const first = await until('__transaction_state to be created', async () => {
    const r = await find(tid, 1);
    return r.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE ? undefined : r;
  });
  assert.equal(first.nodeId, broker.nodeId);
  const txnTopic = broker.image.topic(TRANSACTION_STATE_TOPIC)!;
  assert.equal(txnTopic.configs.get('min.insync.replicas'), '1', 'transaction.state.log.min.isr is capped at the replication factor');
  assert.equal(await commit(moved, 11), ErrorCode.NONE);
  assert.equal(await commit(stay, 22), ErrorCode.NONE);

  // The partition's leadership moves to broker 2.
  await setLeader(OFFSETS_TOPIC, p, OTHER.brokerId, 1);
  const there = await find(moved);
  assert.deepEqual([there.errorCode, there.nodeId, there.host, there.port], [ErrorCode.NONE, OTHER.brokerId, OTHER.host, OTHER.port]);
  const v4 = await find(moved, 0, 4);
  assert.deepEqual(v4.coordinators.map((c) => [c.key, c.nodeId, c.host, c.port, c.errorCode]), [[moved, OTHER.brokerId, OTHER.host, OTHER.port, ErrorCode.NONE]]);
  assert.equal((await find(stay)).nodeId, broker.nodeId);
  assert.equal(await commit(moved, 12), ErrorCode.NOT_COORDINATOR);
  assert.equal((await fetchOffset(moved)).errorCode, ErrorCode.NOT_COORDINATOR);
  assert.deepEqual(await fetchOffset(stay), { errorCode: ErrorCode.NONE, offset: 22 });
  assert.equal(broker.groupCoordinator.epochOf(p), -1);

  // No leader: COORDINATOR_NOT_AVAILABLE.
  await setLeader(OFFSETS_TOPIC, p, -1, 2);
  assert.equal((await find(moved)).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);

  // Leadership comes back (a later epoch): the partition is replayed and served again.
  await setLeader(OFFSETS_TOPIC, p, broker.nodeId, 3);
  assert.equal((await find(moved)).nodeId, broker.nodeId);
  const back = await until('the offsets partition to load', async () => {
    const r = await fetchOffset(moved);
    return r.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ? undefined : r;
  });
  assert.deepEqual(back, { errorCode: ErrorCode.NONE, offset: 11 });
  assert.equal(broker.groupCoordinator.epochOf(p), 3);
  // The ISR is [1, 2] and broker 2 never fetches: a commit is not acknowledged before the ISR has
  // it, so it fails after offsets.commit.timeout.ms, and memory keeps the last committed offset.
  assert.equal(await commit(moved, 12), ErrorCode.COORDINATOR_NOT_AVAILABLE);
  assert.deepEqual(await fetchOffset(moved), { errorCode: ErrorCode.NONE, offset: 11 });
  // The ISR shrinks to this broker alone (same leader epoch: no reload): commits go through.
  await setLeader(OFFSETS_TOPIC, p, broker.nodeId, 3, [broker.nodeId]);
  assert.equal(broker.groupCoordinator.epochOf(p), 3);
  assert.equal(await commit(moved, 13), ErrorCode.NONE);
  assert.deepEqual(await fetchOffset(moved), { errorCode: ErrorCode.NONE, offset: 13 });

  // __consumer_offsets deleted (an operator's DeleteTopics): the coordinator drops its state,
  // the next FindCoordinator re-creates the topic, and groups start afresh on it.
  const oldId = broker.image.topic(OFFSETS_TOPIC)!.topicId;
  await broker.controller.run(() => ({ records: [{ type: 'RemoveTopic', topicId: oldId }], result: undefined }));
  assert.equal(broker.groupCoordinator.attached, false);
  assert.equal((await fetchOffset(moved)).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  await until('__consumer_offsets to be re-created', async () => ((await find(moved)).errorCode === ErrorCode.NONE ? true : undefined));
  assert.notEqual(broker.image.topic(OFFSETS_TOPIC)!.topicId, oldId);
  // (Placed over both registered brokers: make this one the group's leader, alone in the ISR.)
  await setLeader(OFFSETS_TOPIC, p, broker.nodeId, 1, [broker.nodeId]);
  const fresh = await until('the new offsets partition to load', async () => {
    const r = await fetchOffset(moved);
    return r.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ? undefined : r;
  });
  assert.deepEqual(fresh, { errorCode: ErrorCode.NONE, offset: -1 });
  assert.equal(await commit(moved, 14), ErrorCode.NONE);

  // Transactional ids: the leader of their __transaction_state partition.
  const tp = partitionForTransactionalId(tid, txnTopic.partitions.length);
  await setLeader(TRANSACTION_STATE_TOPIC, tp, OTHER.brokerId, 1);
  assert.deepEqual([(await find(tid, 1)).nodeId, (await find(tid, 1)).port], [OTHER.brokerId, OTHER.port]);
  const init = await conn.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, 4, { ...m.defaultInitProducerIdRequest(), transactionalId: tid, transactionTimeoutMs: 10000 });
  assert.equal(init.errorCode, ErrorCode.NOT_COORDINATOR);
});
