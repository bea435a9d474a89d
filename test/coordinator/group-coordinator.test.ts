/**
 * The group coordinator in-process, with a manual clock and an in-memory log: the protocol's
 * rules one by one (KIP-394 join, protocol selection, initial delay, session and rebalance
 * timeouts, static membership, commit validation, deletes, retention), replay after a restart,
 * and the record formats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/protocol/errors.js';
import { GroupCoordinator, DEFAULT_GROUP_CONFIG, type JoinRequest, type GroupCoordinatorConfig } from '../../src/coordinator/group-coordinator.js';
import { MemoryCoordinatorLog } from '../../src/coordinator/coordinator-log.js';
import { ManualScheduler } from '../../src/coordinator/time.js';
import { noopLogger } from '../../src/storage/logger.js';
import {
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
  javaStringHashCode,
  partitionForGroup,
} from '../../src/coordinator/group-records.js';
import { joinRequest, settle, subscription } from './support.js';
import type { JoinResult } from '../../src/coordinator/group.js';

const CONFIG: GroupCoordinatorConfig = { ...DEFAULT_GROUP_CONFIG, initialRebalanceDelayMs: 100, minSessionTimeoutMs: 10 };
const TOPICS = new Map([['t', 4], ['u', 2]]);

export async function newCoordinator(log = new MemoryCoordinatorLog(4), clock = new ManualScheduler(), config = CONFIG): Promise<{ gc: GroupCoordinator; log: MemoryCoordinatorLog; clock: ManualScheduler }> {
  let n = 0;
  const gc = await GroupCoordinator.load(
    {
      scheduler: clock,
      config,
      logger: noopLogger,
      partitionExists: (t, p) => p >= 0 && p < (TOPICS.get(t) ?? 0),
      newMemberId: (prefix) => `${prefix}-${++n}-${Math.random().toString(36).slice(2, 6)}`,
    },
    log,
  );
  return { gc, log, clock };
}

const join = (over: Partial<JoinRequest> = {}): JoinRequest => joinRequest({ requireKnownMemberId: true, ...over });

/** KIP-394 two-step join: returns the pending JoinGroup of the real join. */
async function joinWithId(gc: GroupCoordinator, over: Partial<JoinRequest> = {}): Promise<{ memberId: string; result: Promise<JoinResult> }> {
  const first = await gc.joinGroup(join(over));
  assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  assert.ok(first.memberId !== '');
  return { memberId: first.memberId, result: gc.joinGroup(join({ ...over, memberId: first.memberId })) };
}

test('record formats: Kafka key/value layouts round-trip; Java hash and partition', () => {
  assert.equal(javaStringHashCode(''), 0);
  assert.equal(javaStringHashCode('hello'), 99162322);
  assert.equal(javaStringHashCode('polygenelubricants'), -2147483648);
  assert.equal(partitionForGroup('polygenelubricants', 50), 0); // Utils.abs(MIN_VALUE) = 0
  assert.equal(partitionForGroup('hello', 50), 99162322 % 50);
  assert.equal(partitionForGroup('héllo wörld', 7), Math.abs(javaStringHashCode('héllo wörld')) % 7);
  // OffsetCommitKey v1 bytes: version 1, group "g", topic "t", partition 3.
  assert.deepEqual([...encodeOffsetCommitKey('g', 't', 3)], [0, 1, 0, 1, 0x67, 0, 1, 0x74, 0, 0, 0, 3]);
  assert.deepEqual(decodeKey(encodeOffsetCommitKey('g', 't', 3)), { type: 'offset', group: 'g', topic: 't', partition: 3 });
  const v = { offset: 42, leaderEpoch: 7, metadata: 'm€ta', commitTimestamp: 1700000000000 };
  assert.deepEqual(decodeOffsetCommitValue(encodeOffsetCommitValue(v)), v);
  const gm = {
    protocolType: 'consumer',
    generation: 5,
    protocol: 'range',
    leader: 'a',
    currentStateTimestamp: 123,
    members: [{ memberId: 'a', groupInstanceId: 'i', clientId: 'c', clientHost: '/h', rebalanceTimeoutMs: 9, sessionTimeoutMs: 8, subscription: Buffer.from([1]), assignment: Buffer.from([2, 3]) }],
  };
  assert.deepEqual(decodeGroupMetadataValue(encodeGroupMetadataValue(gm)), gm);
  assert.equal(decodeKey(Buffer.from([0, 9, 0])), null);
  assert.equal(decodeOffsetCommitValue(Buffer.from([0, 3, 1])), null);
});

test('join: MEMBER_ID_REQUIRED, initial delay gathers both members, one leader gets the members, common protocol chosen', async () => {
  const { gc, clock } = await newCoordinator();
  const a = await joinWithId(gc, { protocols: [{ name: 'range', metadata: subscription('t') }, { name: 'roundrobin', metadata: subscription('t') }] });
  const b = await joinWithId(gc, { protocols: [{ name: 'roundrobin', metadata: subscription('t') }, { name: 'range', metadata: subscription('t') }] });
  const c = await joinWithId(gc, { protocols: [{ name: 'roundrobin', metadata: subscription('t') }] });
  assert.equal(gc.group('g')!.state, 'PreparingRebalance');
  clock.advance(100);
  clock.advance(100); // the delay is extended once per new member, up to the rebalance timeout
  await settle();
  const [ra, rb, rc] = await Promise.all([a.result, b.result, c.result]);
  for (const r of [ra, rb, rc]) {
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.equal(r.generationId, 1);
    assert.equal(r.protocolName, 'roundrobin');
    assert.equal(r.leader, a.memberId);
  }
  assert.equal(ra.members.length, 3);
  assert.equal(rb.members.length, 0);
  assert.equal(gc.group('g')!.state, 'CompletingRebalance');
  // A fourth member whose protocols share nothing with the group.
  const bad = await gc.joinGroup(join({ protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }] }));
  assert.equal(bad.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  const badType = await gc.joinGroup(join({ protocolType: 'connect' }));
  assert.equal(badType.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  assert.equal((await gc.joinGroup(join({ sessionTimeoutMs: 5 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
  assert.equal((await gc.joinGroup(join({ groupId: '' }))).errorCode, ErrorCode.INVALID_GROUP_ID);
  assert.equal((await gc.joinGroup(join({ memberId: 'nobody', protocols: [{ name: 'roundrobin', metadata: Buffer.alloc(0) }] }))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);

  // Followers wait for the leader's SyncGroup.
  const sb = gc.syncGroup({ groupId: 'g', generationId: 1, memberId: b.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] });
  let bDone = false;
  void sb.then(() => (bDone = true));
  await settle();
  assert.equal(bDone, false);
  assert.equal((await gc.syncGroup({ groupId: 'g', generationId: 0, memberId: b.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] })).errorCode, ErrorCode.ILLEGAL_GENERATION);
  const sa = await gc.syncGroup({
    groupId: 'g',
    generationId: 1,
    memberId: a.memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocolName: 'roundrobin',
    assignments: [
      { memberId: a.memberId, assignment: Buffer.from('A') },
      { memberId: b.memberId, assignment: Buffer.from('B') },
    ],
  });
  assert.equal(sa.errorCode, ErrorCode.NONE);
  assert.equal(sa.assignment.toString(), 'A');
  assert.equal((await sb).assignment.toString(), 'B');
  const sc = await gc.syncGroup({ groupId: 'g', generationId: 1, memberId: c.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] });
  assert.equal(sc.errorCode, ErrorCode.NONE);
  assert.equal(sc.assignment.length, 0); // the leader gave c nothing
  assert.equal(gc.group('g')!.state, 'Stable');
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: b.memberId, groupInstanceId: null, generationId: 1 }), ErrorCode.NONE);
  const d = gc.describeGroup('g');
  assert.equal(d.state, 'Stable');
  assert.equal(d.protocol, 'roundrobin');
  assert.equal(d.members.find((m) => m.memberId === b.memberId)!.assignment.toString(), 'B');
  gc.shutdown();
});

async function stableGroup(gc: GroupCoordinator, clock: ManualScheduler, n: number, over: Array<Partial<JoinRequest>> = []): Promise<{ ids: string[]; generation: number }> {
  const joins = [];
  for (let i = 0; i < n; i++) {
    // Static members are admitted without MEMBER_ID_REQUIRED.
    joins.push(over[i]?.groupInstanceId ? { result: gc.joinGroup(join(over[i])) } : await joinWithId(gc, over[i] ?? {}));
  }
  clock.advance(CONFIG.initialRebalanceDelayMs * (n + 1));
  await settle();
  const results = await Promise.all(joins.map((j) => j.result));
  const gen = results[0]!.generationId;
  const leader = results.find((r) => r.members.length > 0)!;
  const syncs = results.map((r) =>
    gc.syncGroup({
      groupId: 'g',
      generationId: gen,
      memberId: r.memberId,
      groupInstanceId: over[results.indexOf(r)]?.groupInstanceId ?? null,
      protocolType: null,
      protocolName: null,
      assignments: r === leader ? results.map((x, i) => ({ memberId: x.memberId, assignment: Buffer.from(`p${i}`) })) : [],
    }),
  );
  for (const s of await Promise.all(syncs)) assert.equal(s.errorCode, ErrorCode.NONE);
  assert.equal(gc.group('g')!.state, 'Stable');
  return { ids: results.map((r) => r.memberId), generation: gen };
}

test('session timeout evicts a silent member; the others see REBALANCE_IN_PROGRESS and rejoin into the next generation', async () => {
  const { gc, clock } = await newCoordinator();
  const { ids, generation } = await stableGroup(gc, clock, 2);
  const [a, b] = ids as [string, string];
  clock.advance(600);
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: a, groupInstanceId: null, generationId: generation }), ErrorCode.NONE);
  clock.advance(600); // b silent for 1200 ms > 1000 ms session timeout
  assert.equal(gc.group('g')!.state, 'PreparingRebalance');
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: b, groupInstanceId: null, generationId: generation }), ErrorCode.UNKNOWN_MEMBER_ID);
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: a, groupInstanceId: null, generationId: generation }), ErrorCode.REBALANCE_IN_PROGRESS);
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: a, groupInstanceId: null, generationId: generation - 1 }), ErrorCode.ILLEGAL_GENERATION);
  // A commit of the old generation is still allowed while preparing (members commit before rejoining).
  assert.deepEqual(await gc.commitOffsets({ groupId: 'g', generationId: generation, memberId: a, groupInstanceId: null, offsets: [{ topic: 't', partition: 0, offset: 5, leaderEpoch: -1, metadata: null, commitTimestamp: -1 }] }), [ErrorCode.NONE]);
  const r = await gc.joinGroup(join({ memberId: a }));
  assert.equal(r.errorCode, ErrorCode.NONE);
  assert.equal(r.generationId, generation + 1);
  assert.equal(r.leader, a);
  assert.deepEqual(r.members.map((m) => m.memberId), [a]);
  // The rebalance timeout: a member that joined but never syncs is removed.
  clock.advance(2001);
  await settle();
  assert.equal(gc.group('g')!.members.size, 0);
  clock.advance(1);
  await settle();
  assert.equal(gc.group('g')!.state, 'Empty');
  gc.shutdown();
});

test('rebalance timeout removes members that do not rejoin; leave hands over leadership', async () => {
  const { gc, clock } = await newCoordinator();
  const long = { sessionTimeoutMs: 5000 };
  const { ids, generation } = await stableGroup(gc, clock, 3, [long, long, long]);
  const [a, b, c] = ids as [string, string, string];
  const leave = gc.leaveGroup('g', [{ memberId: a, groupInstanceId: null }]);
  assert.equal(leave.members[0]!.errorCode, ErrorCode.NONE);
  assert.equal(gc.leaveGroup('g', [{ memberId: 'x', groupInstanceId: null }]).members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  const rb = gc.joinGroup(join({ memberId: b, ...long }));
  clock.advance(1000);
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: c, groupInstanceId: null, generationId: generation }), ErrorCode.REBALANCE_IN_PROGRESS);
  clock.advance(1001); // rebalance timeout 2000 ms; c never rejoined
  const r = await rb;
  assert.equal(r.generationId, generation + 1);
  assert.equal(r.leader, b);
  assert.deepEqual(r.members.map((m) => m.memberId), [b]);
  assert.equal(gc.group('g')!.members.has(c), false);
  gc.shutdown();
});

test('static membership: a restarted static member gets a new id and its old assignment without a rebalance; the old id is fenced', async () => {
  const { gc, clock, log } = await newCoordinator();
  const { ids, generation } = await stableGroup(gc, clock, 2, [{ groupInstanceId: 'i1' }, { groupInstanceId: 'i2' }]);
  const [a, b] = ids as [string, string];
  // Static members are admitted without MEMBER_ID_REQUIRED.
  const again = await gc.joinGroup(join({ groupInstanceId: 'i2' }));
  assert.equal(again.errorCode, ErrorCode.NONE);
  assert.equal(again.generationId, generation);
  assert.notEqual(again.memberId, b);
  assert.equal(again.leader, a);
  assert.deepEqual(again.members, []);
  assert.equal(gc.group('g')!.state, 'Stable');
  const s = await gc.syncGroup({ groupId: 'g', generationId: generation, memberId: again.memberId, groupInstanceId: 'i2', protocolType: null, protocolName: null, assignments: [] });
  assert.equal(s.assignment.toString(), 'p1');
  assert.equal(gc.heartbeat({ groupId: 'g', memberId: b, groupInstanceId: 'i2', generationId: generation }), ErrorCode.FENCED_INSTANCE_ID);
  assert.deepEqual(
    await gc.commitOffsets({ groupId: 'g', generationId: generation, memberId: b, groupInstanceId: 'i2', offsets: [{ topic: 't', partition: 0, offset: 1, leaderEpoch: -1, metadata: null, commitTimestamp: -1 }] }),
    [ErrorCode.FENCED_INSTANCE_ID],
  );
  assert.equal(gc.leaveGroup('g', [{ memberId: b, groupInstanceId: 'i2' }]).members[0]!.errorCode, ErrorCode.FENCED_INSTANCE_ID);
  assert.equal(gc.group('g')!.generationId, generation);
  // The replacement is stored: after a restart the new id is the member, with its assignment.
  gc.shutdown();
  const { gc: gc2 } = await newCoordinator(log, clock);
  const g2 = gc2.group('g')!;
  assert.equal(g2.state, 'Stable');
  assert.equal(g2.generationId, generation);
  assert.deepEqual([...g2.members.keys()].sort(), [a, again.memberId].sort());
  assert.equal(g2.members.get(again.memberId)!.assignment.toString(), 'p1');
  assert.equal(g2.staticMembers.get('i2'), again.memberId);
  gc2.shutdown();
});

const commit = (gc: GroupCoordinator, generationId: number, memberId: string, offsets: Array<[string, number, number, string | null]>) =>
  gc.commitOffsets({
    groupId: 'g',
    generationId,
    memberId,
    groupInstanceId: null,
    offsets: offsets.map(([topic, partition, offset, metadata]) => ({ topic, partition, offset, leaderEpoch: 3, metadata, commitTimestamp: -1 })),
  });

test('offset commits: validation, simple commits, metadata, fetch all; they survive a restart', async () => {
  const { gc, clock, log } = await newCoordinator();
  // Unknown group: generation -1 creates it (offsets only); a real generation is ILLEGAL_GENERATION.
  assert.deepEqual(await commit(gc, 0, 'm', [['t', 0, 1, null]]), [ErrorCode.ILLEGAL_GENERATION]);
  assert.deepEqual(await commit(gc, -1, '', [['t', 0, 10, 'meta-0'], ['t', 9, 1, null], ['nope', 0, 1, null], ['u', 1, 20, 'x'.repeat(4097)], ['u', 1, 21, null]]), [
    ErrorCode.NONE,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.OFFSET_METADATA_TOO_LARGE,
    ErrorCode.NONE,
  ]);
  assert.equal(gc.group('g')!.state, 'Empty');
  assert.deepEqual(gc.listGroups([]), [{ groupId: 'g', protocolType: '', state: 'Empty' }]);
  const all = gc.fetchOffsets('g', null);
  assert.deepEqual(all.topics, [
    { name: 't', partitions: [{ partition: 0, offset: 10, leaderEpoch: 3, metadata: 'meta-0', errorCode: 0 }] },
    { name: 'u', partitions: [{ partition: 1, offset: 21, leaderEpoch: 3, metadata: '', errorCode: 0 }] },
  ]);
  assert.deepEqual(gc.fetchOffsets('g', [{ name: 't', partitions: [0, 1] }]).topics[0]!.partitions.map((p) => p.offset), [10, -1]);
  assert.deepEqual(gc.fetchOffsets('nogroup', [{ name: 't', partitions: [0] }]).topics[0]!.partitions[0]!.offset, -1);
  // A managed group: members must commit with their generation.
  const { ids, generation } = await stableGroup(gc, clock, 1);
  assert.deepEqual(await commit(gc, -1, '', [['t', 1, 1, null]]), [ErrorCode.UNKNOWN_MEMBER_ID]);
  assert.deepEqual(await commit(gc, generation + 1, ids[0]!, [['t', 1, 1, null]]), [ErrorCode.ILLEGAL_GENERATION]);
  assert.deepEqual(await commit(gc, generation, 'other', [['t', 1, 1, null]]), [ErrorCode.UNKNOWN_MEMBER_ID]);
  assert.deepEqual(await commit(gc, generation, ids[0]!, [['t', 1, 7, 'm1'], ['t', 0, 11, null]]), [ErrorCode.NONE, ErrorCode.NONE]);
  // A failed write is not acknowledged and not applied.
  log.failNext = 1;
  assert.deepEqual(await commit(gc, generation, ids[0]!, [['t', 1, 99, null]]), [ErrorCode.COORDINATOR_NOT_AVAILABLE]);
  assert.equal(gc.fetchOffsets('g', [{ name: 't', partitions: [1] }]).topics[0]!.partitions[0]!.offset, 7);
  const before = gc.fetchOffsets('g', null);
  gc.shutdown();
  assert.deepEqual(await commit(gc, generation, ids[0]!, [['t', 1, 1, null]]), [ErrorCode.NOT_COORDINATOR]);
  const { gc: gc2 } = await newCoordinator(log, clock);
  assert.deepEqual(gc2.fetchOffsets('g', null), before);
  assert.deepEqual(
    gc2.fetchOffsets('g', [{ name: 't', partitions: [0, 1] }, { name: 'u', partitions: [1] }]).topics.map((t) => t.partitions.map((p) => [p.offset, p.metadata])),
    [[[11, ''], [7, 'm1']], [[21, '']]],
  );
  assert.equal(gc2.group('g')!.state, 'Stable');
  assert.equal(gc2.group('g')!.generationId, generation);
  // The reloaded member heartbeats on; a silent one is expired after its session timeout.
  assert.equal(gc2.heartbeat({ groupId: 'g', memberId: ids[0]!, groupInstanceId: null, generationId: generation }), ErrorCode.NONE);
  clock.advance(1001);
  assert.equal(gc2.group('g')!.state, 'Empty'); // its only member expired: rebalanced to Empty
  assert.equal(gc2.group('g')!.generationId, generation + 1);
  gc2.shutdown();
});

test('DeleteGroups, OffsetDelete and retention: error codes, tombstones replayed', async () => {
  const { gc, clock, log } = await newCoordinator();
  assert.deepEqual(await gc.deleteGroups(['none']), [{ groupId: 'none', errorCode: ErrorCode.GROUP_ID_NOT_FOUND }]);
  const { ids, generation } = await stableGroup(gc, clock, 1);
  await commit(gc, generation, ids[0]!, [['t', 0, 5, null], ['u', 0, 6, null]]);
  assert.deepEqual(await gc.deleteGroups(['g']), [{ groupId: 'g', errorCode: ErrorCode.NON_EMPTY_GROUP }]);
  const del = await gc.deleteOffsets('g', [{ name: 't', partitions: [0] }, { name: 'u', partitions: [0] }]);
  assert.deepEqual(del.topics.map((t) => t.partitions[0]!.errorCode), [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode.NONE]);
  assert.equal(gc.fetchOffsets('g', [{ name: 'u', partitions: [0] }]).topics[0]!.partitions[0]!.offset, -1);
  assert.equal((await gc.deleteOffsets('none', [])).errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  gc.leaveGroup('g', [{ memberId: ids[0]!, groupInstanceId: null }]);
  await settle();
  assert.equal(gc.group('g')!.state, 'Empty');
  assert.deepEqual(await gc.deleteGroups(['g']), [{ groupId: 'g', errorCode: ErrorCode.NONE }]);
  assert.equal(gc.group('g'), undefined);
  // A simple group that expires: offsets older than the retention since the group emptied.
  await gc.commitOffsets({ groupId: 'h', generationId: -1, memberId: '', groupInstanceId: null, offsets: [{ topic: 't', partition: 1, offset: 3, leaderEpoch: -1, metadata: null, commitTimestamp: -1 }] });
  gc.shutdown();
  const { gc: gc2 } = await newCoordinator(log, clock);
  assert.equal(gc2.group('g'), undefined, 'the deleted group stays deleted after replay');
  assert.equal(gc2.fetchOffsets('h', [{ name: 't', partitions: [1] }]).topics[0]!.partitions[0]!.offset, 3);
  clock.advance(CONFIG.offsetsRetentionMs - 1); // one check runs, too early
  await settle();
  assert.notEqual(gc2.group('h'), undefined);
  clock.advance(CONFIG.offsetsRetentionCheckIntervalMs); // the next one expires the offsets
  await settle();
  assert.equal(gc2.group('h'), undefined);
  gc2.shutdown();
  const { gc: gc3 } = await newCoordinator(log, clock);
  assert.equal(gc3.group('h'), undefined, 'expired offsets stay expired after replay');
  gc3.shutdown();
});

test('shutdown answers waiting joins and syncs with NOT_COORDINATOR and leaves no timers', async () => {
  const { gc, clock } = await newCoordinator();
  const a = await joinWithId(gc);
  gc.shutdown();
  assert.equal((await a.result).errorCode, ErrorCode.NOT_COORDINATOR);
  assert.equal(clock.pending, 0);
});

test('static member rejoining a Stable group: new metadata for the same protocol (a cooperative client now owning partitions) keeps the generation; a change of the selected protocol rebalances', async () => {
  const { gc, clock } = await newCoordinator();
  const both = (sub: Buffer) => [{ name: 'cooperative-sticky', metadata: sub }, { name: 'range', metadata: subscription('t') }];
  const { generation } = await stableGroup(gc, clock, 2, [
    { groupInstanceId: 'i1', protocols: both(subscription('t')) },
    { groupInstanceId: 'i2', protocols: both(subscription('t')) },
  ]);
  assert.equal(gc.group('g')!.protocolName, 'cooperative-sticky');
  // Other metadata bytes, same choice of protocol: Kafka answers from the stored assignment, no rebalance.
  const changed = subscription('t', 'u');
  const r2 = await gc.joinGroup(join({ groupInstanceId: 'i2', protocols: both(changed) }));
  assert.equal(r2.errorCode, ErrorCode.NONE);
  assert.equal(r2.generationId, generation);
  assert.equal(gc.group('g')!.state, 'Stable');
  assert.deepEqual(gc.describeGroup('g').members.find((m) => m.memberId === r2.memberId)!.metadata, changed);
  // Dropping cooperative-sticky changes what the group would select: a rebalance.
  const r1 = gc.joinGroup(join({ groupInstanceId: 'i1', protocols: [{ name: 'range', metadata: subscription('t') }] }));
  await settle();
  assert.equal(gc.group('g')!.state, 'PreparingRebalance');
  const again = gc.joinGroup(join({ memberId: r2.memberId, groupInstanceId: 'i2', protocols: both(changed) }));
  await settle();
  const [a, b] = await Promise.all([r1, again]);
  assert.equal(a.errorCode, ErrorCode.NONE);
  assert.equal(b.errorCode, ErrorCode.NONE);
  assert.equal(a.generationId, generation + 1);
  assert.equal(a.protocolName, 'range');
  gc.shutdown();
});
