/**
 * The group APIs' error codes on the wire, against a broker process (issue 3 acceptance: unknown
 * groups, wrong generations, commits for unknown topics and oversized metadata get Kafka's error
 * codes, not crashes), with requests built by hand (ProtocolConnection) so every field is ours:
 * - unknown group: DescribeGroups → NONE, state "Dead"; OffsetFetch (v5 and the v8 multi-group
 *   form) → offset -1, NONE; DeleteGroups / OffsetDelete → GROUP_ID_NOT_FOUND; Heartbeat,
 *   SyncGroup, LeaveGroup → UNKNOWN_MEMBER_ID.
 * - a live member: Heartbeat / OffsetCommit / SyncGroup with another generation →
 *   ILLEGAL_GENERATION; another member id → UNKNOWN_MEMBER_ID; an admin-style commit (generation
 *   -1, no member id: what a reset tool sends) while the group has members → UNKNOWN_MEMBER_ID
 *   (Kafka's answer); per partition UNKNOWN_TOPIC_OR_PARTITION and OFFSET_METADATA_TOO_LARGE next
 *   to a partition that commits; DeleteGroups → NON_EMPTY_GROUP.
 * - group.max.size: a new member beyond it → GROUP_MAX_SIZE_REACHED; a session timeout outside
 *   the broker's bounds → INVALID_SESSION_TIMEOUT.
 * And the broker logs no ERROR line for any of it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { Writer } from '../../src/protocol/writer.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { brokerErrors, uniqueTopic } from './helpers.js';

const METADATA_MAX = 64;
let broker: BrokerProcess;
const conns: ProtocolConnection[] = [];

before(async () => {
  broker = await startBroker({
    overrides: { 'group.initial.rebalance.delay.ms': 0, 'group.min.session.timeout.ms': 1000, 'group.max.size': 2, 'offset.metadata.max.bytes': METADATA_MAX },
  });
});

after(async () => {
  for (const c of conns) c.close();
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
});

async function connect(): Promise<ProtocolConnection> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port, 'groups-errors');
  conns.push(c);
  return c;
}

function subscription(topic: string): Buffer {
  const w = new Writer();
  w.int16(0);
  m.encodeConsumerProtocolSubscription(w, { topics: [topic], userData: null, ownedPartitions: [], generationId: -1, rackId: null }, 0);
  return w.toBuffer();
}

const joinRequest = (groupId: string, topic: string, memberId = '', sessionTimeoutMs = 10000): m.JoinGroupRequest => ({
  ...m.defaultJoinGroupRequest(),
  groupId,
  memberId,
  sessionTimeoutMs,
  rebalanceTimeoutMs: 10000,
  protocolType: 'consumer',
  protocols: [{ name: 'range', metadata: subscription(topic) }],
});

/** KIP-394 join (v5): MEMBER_ID_REQUIRED, then the join with the id. */
async function joinGroup(c: ProtocolConnection, groupId: string, topic: string): Promise<m.JoinGroupResponse> {
  const first = await c.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic));
  assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  return c.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic, first.memberId));
}

const heartbeat = (c: ProtocolConnection, groupId: string, memberId: string, generationId: number) =>
  c.send<m.HeartbeatResponse>(m.ApiKey.Heartbeat, 4, { ...m.defaultHeartbeatRequest(), groupId, memberId, generationId }).then((r) => r.errorCode);

async function commit(c: ProtocolConnection, groupId: string, generationId: number, memberId: string, parts: Array<[string, number, number, string | null]>): Promise<number[]> {
  const byTopic = new Map<string, m.OffsetCommitRequestPartition[]>();
  for (const [t, p, o, meta] of parts) {
    const list = byTopic.get(t) ?? [];
    list.push({ ...m.defaultOffsetCommitRequestPartition(), partitionIndex: p, committedOffset: o, committedMetadata: meta });
    byTopic.set(t, list);
  }
  const r = await c.send<m.OffsetCommitResponse>(m.ApiKey.OffsetCommit, 8, {
    ...m.defaultOffsetCommitRequest(),
    groupId,
    generationIdOrMemberEpoch: generationId,
    memberId,
    topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
  });
  const codes = new Map<string, number>();
  for (const t of r.topics) for (const p of t.partitions) codes.set(`${t.name}:${p.partitionIndex}`, p.errorCode);
  return parts.map(([t, p]) => codes.get(`${t}:${p}`) ?? -1);
}

async function fetchOffsets(c: ProtocolConnection, groupId: string, topic: string, partitions: number[]): Promise<{ errorCode: number; offsets: Array<[number, string, number]> }> {
  const r = await c.send<m.OffsetFetchResponse>(m.ApiKey.OffsetFetch, 5, { ...m.defaultOffsetFetchRequest(), groupId, topics: [{ name: topic, partitionIndexes: partitions }] });
  return { errorCode: r.errorCode, offsets: r.topics.flatMap((t) => t.partitions.map((p): [number, string, number] => [p.committedOffset, p.metadata ?? '', p.errorCode])) };
}

async function createTopic(c: ProtocolConnection, name: string, partitions: number): Promise<void> {
  const r = await c.send<m.CreateTopicsResponse>(m.ApiKey.CreateTopics, 5, {
    ...m.defaultCreateTopicsRequest(),
    topics: [{ ...m.defaultCreateTopicsRequestCreatableTopic(), name, numPartitions: partitions, replicationFactor: 1 }],
    timeoutMs: 10000,
  });
  assert.equal(r.topics[0]!.errorCode, ErrorCode.NONE);
}

test('unknown groups: Dead on describe, -1 offsets on fetch, GROUP_ID_NOT_FOUND on delete, UNKNOWN_MEMBER_ID on member requests', async () => {
  const c = await connect();
  const groupId = uniqueTopic('no-such-group');
  const d = await c.send<m.DescribeGroupsResponse>(m.ApiKey.DescribeGroups, 5, { ...m.defaultDescribeGroupsRequest(), groups: [groupId] });
  assert.deepEqual(
    d.groups.map((g) => [g.errorCode, g.groupId, g.groupState, g.protocolType, g.members.length]),
    [[ErrorCode.NONE, groupId, 'Dead', '', 0]],
  );
  assert.deepEqual(await fetchOffsets(c, groupId, 'whatever', [0, 1]), { errorCode: ErrorCode.NONE, offsets: [[-1, '', 0], [-1, '', 0]] });
  const multi = await c.send<m.OffsetFetchResponse>(m.ApiKey.OffsetFetch, 8, {
    ...m.defaultOffsetFetchRequest(),
    groups: [{ groupId, memberId: null, memberEpoch: -1, topics: [{ name: 'whatever', partitionIndexes: [0] }] }],
  });
  assert.deepEqual(
    multi.groups.map((g) => [g.groupId, g.errorCode, g.topics.flatMap((t) => t.partitions.map((p) => p.committedOffset))]),
    [[groupId, ErrorCode.NONE, [-1]]],
  );
  const del = await c.send<m.DeleteGroupsResponse>(m.ApiKey.DeleteGroups, 2, { groupsNames: [groupId] });
  assert.deepEqual(del.results.map((r) => r.errorCode), [ErrorCode.GROUP_ID_NOT_FOUND]);
  const od = await c.send<m.OffsetDeleteResponse>(m.ApiKey.OffsetDelete, 0, { groupId, topics: [{ name: 'whatever', partitions: [{ partitionIndex: 0 }] }] });
  assert.equal(od.errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  assert.equal(await heartbeat(c, groupId, 'm-1', 1), ErrorCode.UNKNOWN_MEMBER_ID);
  const sync = await c.send<m.SyncGroupResponse>(m.ApiKey.SyncGroup, 5, { ...m.defaultSyncGroupRequest(), groupId, generationId: 1, memberId: 'm-1', protocolType: 'consumer', protocolName: 'range' });
  assert.equal(sync.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  const leave = await c.send<m.LeaveGroupResponse>(m.ApiKey.LeaveGroup, 4, { ...m.defaultLeaveGroupRequest(), groupId, members: [{ memberId: 'm-1', groupInstanceId: null, reason: null }] });
  assert.deepEqual([leave.errorCode, leave.members.map((x) => x.errorCode)], [ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID]]);
  // A join naming a member id for a group that does not exist.
  const j = await c.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, 'whatever', 'm-1'));
  assert.equal(j.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  // None of it created the group.
  const l = await c.send<m.ListGroupsResponse>(m.ApiKey.ListGroups, 4, { ...m.defaultListGroupsRequest() });
  assert.ok(!l.groups.some((g) => g.groupId === groupId));
  assert.deepEqual(brokerErrors(broker.output()), []);
});

test('a live member: wrong generation, wrong member, admin-style commits, unknown partitions, oversized metadata, delete of a non-empty group, max group size', async () => {
  const admin = await connect();
  const topic = uniqueTopic('grp-err');
  await createTopic(admin, topic, 2);
  const groupId = `g-${topic}`;
  const c1 = await connect();
  const j = await joinGroup(c1, groupId, topic);
  assert.equal(j.errorCode, ErrorCode.NONE);
  const gen = j.generationId;
  const me = j.memberId;
  assert.equal(j.leader, me);
  const s = await c1.send<m.SyncGroupResponse>(m.ApiKey.SyncGroup, 5, {
    ...m.defaultSyncGroupRequest(),
    groupId,
    generationId: gen,
    memberId: me,
    protocolType: 'consumer',
    protocolName: 'range',
    assignments: [{ memberId: me, assignment: Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }],
  });
  assert.equal(s.errorCode, ErrorCode.NONE);

  // Heartbeat and SyncGroup.
  assert.equal(await heartbeat(c1, groupId, me, gen), ErrorCode.NONE);
  assert.equal(await heartbeat(c1, groupId, me, gen + 1), ErrorCode.ILLEGAL_GENERATION);
  assert.equal(await heartbeat(c1, groupId, me, gen - 1), ErrorCode.ILLEGAL_GENERATION);
  assert.equal(await heartbeat(c1, groupId, 'someone-else', gen), ErrorCode.UNKNOWN_MEMBER_ID);
  const badSync = await c1.send<m.SyncGroupResponse>(m.ApiKey.SyncGroup, 5, { ...m.defaultSyncGroupRequest(), groupId, generationId: gen + 1, memberId: me, protocolType: 'consumer', protocolName: 'range' });
  assert.equal(badSync.errorCode, ErrorCode.ILLEGAL_GENERATION);

  // OffsetCommit: membership checks apply to the whole request.
  assert.deepEqual(await commit(c1, groupId, gen + 1, me, [[topic, 0, 5, null]]), [ErrorCode.ILLEGAL_GENERATION]);
  assert.deepEqual(await commit(c1, groupId, gen, 'someone-else', [[topic, 0, 5, null]]), [ErrorCode.UNKNOWN_MEMBER_ID]);
  // What a reset tool sends (no generation, no member): refused while the group has members, as Kafka does.
  assert.deepEqual(await commit(admin, groupId, -1, '', [[topic, 0, 0, null]]), [ErrorCode.UNKNOWN_MEMBER_ID]);
  // Per partition: unknown topic, unknown partition and oversized metadata fail; the rest commits.
  const codes = await commit(c1, groupId, gen, me, [
    [topic, 0, 5, 'ok'],
    [topic, 1, 6, 'x'.repeat(METADATA_MAX + 1)],
    [topic, 7, 1, null],
    ['no-such-topic', 0, 1, null],
  ]);
  assert.deepEqual(codes, [ErrorCode.NONE, ErrorCode.OFFSET_METADATA_TOO_LARGE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
  assert.deepEqual(await commit(c1, groupId, gen, me, [[topic, 1, 6, 'y'.repeat(METADATA_MAX)]]), [ErrorCode.NONE], 'metadata of exactly the limit is accepted');
  assert.deepEqual(await fetchOffsets(admin, groupId, topic, [0, 1]), { errorCode: ErrorCode.NONE, offsets: [[5, 'ok', 0], [6, 'y'.repeat(METADATA_MAX), 0]] });

  // DeleteGroups refuses a group with members.
  const del = await admin.send<m.DeleteGroupsResponse>(m.ApiKey.DeleteGroups, 2, { groupsNames: [groupId] });
  assert.deepEqual(del.results.map((r) => r.errorCode), [ErrorCode.NON_EMPTY_GROUP]);

  // group.max.size=2: a second member is admitted (its KIP-394 id counts), a third is not.
  const c2 = await connect();
  const c3 = await connect();
  const second = await c2.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic));
  assert.equal(second.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  const third = await c3.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic));
  assert.deepEqual([third.errorCode, third.memberId], [ErrorCode.GROUP_MAX_SIZE_REACHED, '']);
  // The second member's real join rebalances the group; the first rejoins, both get generation + 1.
  const secondJoin = c2.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic, second.memberId));
  assert.equal(await heartbeat(c1, groupId, me, gen), ErrorCode.REBALANCE_IN_PROGRESS);
  const rejoin = await c1.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic, me));
  const secondResult = await secondJoin;
  assert.deepEqual([rejoin.errorCode, secondResult.errorCode, rejoin.generationId, secondResult.generationId], [ErrorCode.NONE, ErrorCode.NONE, gen + 1, gen + 1]);
  // Still full.
  const fourth = await c3.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(groupId, topic));
  assert.equal(fourth.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);

  // A session timeout outside [group.min.session.timeout.ms, group.max.session.timeout.ms].
  const tooShort = await c3.send<m.JoinGroupResponse>(m.ApiKey.JoinGroup, 5, joinRequest(`${groupId}-2`, topic, '', 999));
  assert.equal(tooShort.errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);

  // Both leave (batched, v3+): the group is Empty, can be deleted, and is then unknown.
  const leave = await admin.send<m.LeaveGroupResponse>(m.ApiKey.LeaveGroup, 4, {
    ...m.defaultLeaveGroupRequest(),
    groupId,
    members: [
      { memberId: me, groupInstanceId: null, reason: 'test' },
      { memberId: secondResult.memberId, groupInstanceId: null, reason: null },
    ],
  });
  assert.deepEqual([leave.errorCode, leave.members.map((x) => x.errorCode)], [ErrorCode.NONE, [ErrorCode.NONE, ErrorCode.NONE]]);
  const empty = await admin.send<m.DescribeGroupsResponse>(m.ApiKey.DescribeGroups, 5, { ...m.defaultDescribeGroupsRequest(), groups: [groupId] });
  assert.equal(empty.groups[0]!.groupState, 'Empty');
  // Now an admin-style commit is accepted (this is how offsets are reset).
  assert.deepEqual(await commit(admin, groupId, -1, '', [[topic, 0, 0, null]]), [ErrorCode.NONE]);
  const deleted = await admin.send<m.DeleteGroupsResponse>(m.ApiKey.DeleteGroups, 2, { groupsNames: [groupId] });
  assert.deepEqual(deleted.results.map((r) => r.errorCode), [ErrorCode.NONE]);
  assert.deepEqual(await fetchOffsets(admin, groupId, topic, [0, 1]), { errorCode: ErrorCode.NONE, offsets: [[-1, '', 0], [-1, '', 0]] });
  assert.deepEqual(brokerErrors(broker.output()), []);
});
