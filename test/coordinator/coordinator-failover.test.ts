/**
 * Coordinator failover in-process: two group coordinators (A and B, two brokers) over one log,
 * as the leaders of a `__consumer_offsets` partition before and after a leader change, driven
 * by onElection / onResignation the way the broker drives them from the metadata image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/protocol/errors.js';
import { GroupCoordinator, DEFAULT_GROUP_CONFIG, type JoinRequest, type GroupCoordinatorConfig } from '../../src/coordinator/group-coordinator.js';
import { MemoryCoordinatorLog } from '../../src/coordinator/coordinator-log.js';
import { ManualScheduler } from '../../src/coordinator/time.js';
import { noopLogger } from '../../src/storage/logger.js';
import { partitionForGroup } from '../../src/coordinator/group-records.js';
import { joinRequest, settle, subscription } from './support.js';
import type { JoinResult } from '../../src/coordinator/group.js';

const CONFIG: GroupCoordinatorConfig = { ...DEFAULT_GROUP_CONFIG, initialRebalanceDelayMs: 0, minSessionTimeoutMs: 10 };
const PARTITIONS = 4;

function coordinator(clock: ManualScheduler, name: string): GroupCoordinator {
  let n = 0;
  return new GroupCoordinator({
    scheduler: clock,
    config: CONFIG,
    logger: noopLogger,
    partitionExists: (t, p) => t === 't' && p >= 0 && p < 4,
    newMemberId: (prefix) => `${prefix}-${name}-${++n}`,
  });
}

const join = joinRequest;

/** One member joins and syncs group `g`; returns its member id and generation. */
async function stableGroup(gc: GroupCoordinator, clock: ManualScheduler): Promise<{ memberId: string; generationId: number }> {
  const pending = gc.joinGroup(join());
  clock.advance(0);
  const joined: JoinResult = await pending;
  assert.equal(joined.errorCode, ErrorCode.NONE);
  const synced = await gc.syncGroup({
    groupId: 'g',
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocolName: 'range',
    assignments: [{ memberId: joined.memberId, assignment: Buffer.from('assignment') }],
  });
  assert.equal(synced.errorCode, ErrorCode.NONE);
  assert.equal(gc.group('g')?.state, 'Stable');
  return { memberId: joined.memberId, generationId: joined.generationId };
}

const commit = (gc: GroupCoordinator, memberId: string, generationId: number, offset: number) =>
  gc.commitOffsets({ groupId: 'g', generationId, memberId, groupInstanceId: null, offsets: [{ topic: 't', partition: 0, offset, leaderEpoch: 0, metadata: 'm', commitTimestamp: -1 }] });

const fetched = (gc: GroupCoordinator) => gc.fetchOffsets('g', [{ name: 't', partitions: [0] }]);

test('failover: B, elected after A resigns, has the group and its committed offsets; A answers NOT_COORDINATOR; the member carries on with B', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const a = coordinator(clock, 'a');
  const b = coordinator(clock, 'b');
  const p = partitionForGroup('g', PARTITIONS);
  a.attach(log);
  b.attach(log);
  // Before any election: the partition is not served (a broker that does not lead it).
  assert.equal(a.unavailableFor('g'), ErrorCode.NOT_COORDINATOR);
  for (let i = 0; i < PARTITIONS; i++) await a.onElection(i, 0);
  assert.equal(b.unavailableFor('g'), ErrorCode.NOT_COORDINATOR);
  const { memberId, generationId } = await stableGroup(a, clock);
  assert.deepEqual(await commit(a, memberId, generationId, 42), [ErrorCode.NONE]);

  a.onResignation(p);
  assert.equal(a.group('g'), undefined, 'A dropped the group from memory');
  assert.equal(a.heartbeat({ groupId: 'g', memberId, groupInstanceId: null, generationId }), ErrorCode.NOT_COORDINATOR);
  assert.deepEqual(await commit(a, memberId, generationId, 43), [ErrorCode.NOT_COORDINATOR]);
  assert.equal(fetched(a).errorCode, ErrorCode.NOT_COORDINATOR);
  // Other partitions stay with A.
  const other = ['h', 'x', 'y', 'z', 'w'].find((id) => partitionForGroup(id, PARTITIONS) !== p)!;
  assert.equal(a.unavailableFor(other), ErrorCode.NONE);

  const loading = b.onElection(p, 1);
  assert.equal(b.unavailableFor('g'), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, 'requests wait while the partition loads');
  await loading;
  assert.equal(b.epochOf(p), 1);
  const offsets = fetched(b);
  assert.equal(offsets.errorCode, ErrorCode.NONE);
  assert.equal(offsets.topics[0]!.partitions[0]!.offset, 42);
  const g = b.group('g')!;
  assert.equal(g.state, 'Stable');
  assert.equal(g.generationId, generationId);
  assert.ok(g.members.has(memberId), 'the member kept its membership');
  // The member heartbeats and commits on B as before; the commit is B's (A never saw it).
  assert.equal(b.heartbeat({ groupId: 'g', memberId, groupInstanceId: null, generationId }), ErrorCode.NONE);
  assert.deepEqual(await commit(b, memberId, generationId, 50), [ErrorCode.NONE]);
  assert.equal(fetched(b).topics[0]!.partitions[0]!.offset, 50);

  // A new member makes B rebalance the group into the next generation.
  const newcomer = b.joinGroup(join());
  assert.equal(b.heartbeat({ groupId: 'g', memberId, groupInstanceId: null, generationId }), ErrorCode.REBALANCE_IN_PROGRESS);
  const rejoin = b.joinGroup(join({ memberId }));
  const [r1, r2] = await Promise.all([rejoin, newcomer]);
  assert.equal(r1.errorCode, ErrorCode.NONE);
  assert.equal(r2.errorCode, ErrorCode.NONE);
  assert.equal(r1.generationId, generationId + 1);
  assert.equal(b.group('g')!.members.size, 2);
  a.shutdown();
  b.shutdown();
});

test('resignation answers a waiting JoinGroup with NOT_COORDINATOR and cancels the group timers', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const a = coordinator(clock, 'a');
  await a.load(log);
  const { memberId, generationId } = await stableGroup(a, clock);
  // A second member's join puts the group in PreparingRebalance; both JoinGroups wait.
  const waiting = a.joinGroup(join());
  await settle();
  assert.equal(a.group('g')!.state, 'PreparingRebalance');
  const timersBefore = clock.pending;
  assert.ok(timersBefore > 0);
  a.onResignation(partitionForGroup('g', PARTITIONS));
  const r = await waiting;
  assert.equal(r.errorCode, ErrorCode.NOT_COORDINATOR);
  // Only the other partitions' timers are left: the retention task.
  assert.equal(clock.pending, 1);
  assert.equal(a.heartbeat({ groupId: 'g', memberId, groupInstanceId: null, generationId }), ErrorCode.NOT_COORDINATOR);
  a.shutdown();
});

test('an append in flight when the partition moves answers NOT_COORDINATOR and leaves memory alone; the new leader replays it', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const a = coordinator(clock, 'a');
  await a.load(log);
  const p = partitionForGroup('g', PARTITIONS);
  const simple = (offset: number) => a.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, offsets: [{ topic: 't', partition: 0, offset, leaderEpoch: 0, metadata: null, commitTimestamp: -1 }] });
  assert.deepEqual(await simple(7), [ErrorCode.NONE]);
  const inFlight = simple(8);
  a.onResignation(p);
  assert.deepEqual(await inFlight, [ErrorCode.NOT_COORDINATOR]);
  // Re-elected at a later epoch: the replay has what reached the log (here the append did).
  await a.onElection(p, 1);
  assert.equal(fetched(a).topics[0]!.partitions[0]!.offset, 8);
  a.shutdown();
});

test('a load finished after its partition was resigned is discarded; a stale resignation does not undo a newer election', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const writer = coordinator(clock, 'w');
  await writer.load(log);
  assert.deepEqual(await writer.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, offsets: [{ topic: 't', partition: 1, offset: 3, leaderEpoch: 0, metadata: null, commitTimestamp: -1 }] }), [ErrorCode.NONE]);
  writer.shutdown();

  const a = coordinator(clock, 'a');
  a.attach(log);
  const p = partitionForGroup('g', PARTITIONS);
  const load = a.onElection(p, 3);
  a.onResignation(p);
  await load;
  assert.equal(a.unavailableFor('g'), ErrorCode.NOT_COORDINATOR);
  assert.equal(a.group('g'), undefined);

  await a.onElection(p, 5);
  a.onResignation(p, 4); // from an older leadership change: ignored
  assert.equal(a.unavailableFor('g'), ErrorCode.NONE);
  await a.onElection(p, 5); // repeated: no reload
  assert.equal(a.fetchOffsets('g', [{ name: 't', partitions: [1] }]).topics[0]!.partitions[0]!.offset, 3);
  a.onResignation(p, 6);
  assert.equal(a.unavailableFor('g'), ErrorCode.NOT_COORDINATOR);
  a.shutdown();
});

test('a transactional offset commit pending at failover is completed by the marker on the new coordinator', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const a = coordinator(clock, 'a');
  await a.load(log);
  const p = partitionForGroup('g', PARTITIONS);
  const errors = await a.commitTransactionalOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, producerId: 9, producerEpoch: 0, offsets: [{ topic: 't', partition: 2, offset: 77, leaderEpoch: 0, metadata: null, commitTimestamp: -1 }] });
  assert.deepEqual(errors, [ErrorCode.NONE]);
  a.onResignation(p);
  assert.equal(a.hasPendingTransactionalOffset('g', 't', 2), false, 'A forgot the pending offsets of the partition');

  const b = coordinator(clock, 'b');
  b.attach(log);
  const loading = b.onElection(p, 1);
  // The marker is written while B loads: applied once the partition is installed.
  log.appendMarker(p, 9, true);
  b.completeTransactionalOffsets(9, p, true);
  await loading;
  assert.equal(b.hasPendingTransactionalOffset('g', 't', 2), false);
  assert.equal(b.fetchOffsets('g', [{ name: 't', partitions: [2] }]).topics[0]!.partitions[0]!.offset, 77);
  // A marker for a partition B does not serve changes nothing.
  b.completeTransactionalOffsets(9, (p + 1) % PARTITIONS, true);
  a.shutdown();
  b.shutdown();
});
