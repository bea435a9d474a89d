/**
 * Model-based test of the group coordinator: seeded random schedules of joins (KIP-394 and
 * static), syncs, heartbeats, leaves, commits, clock jumps (session and rebalance timeouts) and
 * restarts (a new coordinator replaying the same log), checking after every step:
 * - SingleLeaderPerGeneration: every JoinGroup answer of a generation names the same leader,
 *   and only that leader gets the member list, which contains itself.
 * - GenerationsIncrease: the group's generation never goes down, also across restarts.
 * - AssignmentOnlyForCurrentGeneration: a successful SyncGroup answer is for the group's
 *   current generation and carries exactly what that generation's leader assigned.
 * - StateConsistent: Empty ⇔ no members; a leader that is a member in the other live states.
 * - CommittedOffsetsNeverLost: every acknowledged commit is what OffsetFetch returns (last
 *   acknowledged wins), before and after every restart.
 * A failure prints the seed that reproduces it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/protocol/errors.js';
import { GroupCoordinator, DEFAULT_GROUP_CONFIG } from '../../src/coordinator/group-coordinator.js';
import { MemoryCoordinatorLog } from '../../src/coordinator/coordinator-log.js';
import { ManualScheduler } from '../../src/coordinator/time.js';
import { prng as mulberry32 } from '../protocol/prng.js';
import { noopLogger } from '../../src/storage/logger.js';
import type { JoinResult, SyncResult } from '../../src/coordinator/group.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

interface Client {
  name: string;
  instanceId: string | null;
  memberId: string;
  generation: number;
  joining: boolean;
  syncing: boolean;
  members: string[];
}

const CONFIG = { ...DEFAULT_GROUP_CONFIG, initialRebalanceDelayMs: 50, minSessionTimeoutMs: 10 };
const SESSION_MS = 300;
const REBALANCE_MS = 500;

async function runSchedule(seed: number, steps: number): Promise<void> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const clock = new ManualScheduler();
  const log = new MemoryCoordinatorLog(3);
  let ids = 0;
  const load = () =>
    GroupCoordinator.load(
      { scheduler: clock, config: CONFIG, logger: noopLogger, partitionExists: (t, p) => t === 't' && p >= 0 && p < 4, newMemberId: (prefix) => `${prefix}-${++ids}` },
      log,
    );
  let gc = await load();
  const clients: Client[] = Array.from({ length: 4 }, (_, i) => ({ name: `c${i}`, instanceId: i === 3 ? 'static-3' : null, memberId: '', generation: -1, joining: false, syncing: false, members: [] }));
  const leaders = new Map<number, string>();
  const assigned = new Map<number, Map<string, string>>();
  const committed = new Map<number, number>();
  let maxGeneration = 0;
  let commitSeq = 0;
  const trace: string[] = [];
  let failure: string | null = null;
  const fail = (msg: string): void => {
    failure ??= `seed ${seed}: ${msg}\n${trace.slice(-25).join('\n')}`;
  };

  const onJoin = (c: Client, r: JoinResult): void => {
    c.joining = false;
    trace.push(`  ${c.name} join → err=${r.errorCode} gen=${r.generationId} leader=${r.leader} member=${r.memberId} n=${r.members.length}`);
    if (r.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
      c.memberId = r.memberId;
      return;
    }
    if (r.errorCode !== ErrorCode.NONE) {
      if (r.errorCode === ErrorCode.UNKNOWN_MEMBER_ID || r.errorCode === ErrorCode.FENCED_INSTANCE_ID) c.memberId = '';
      return;
    }
    c.memberId = r.memberId;
    c.generation = r.generationId;
    c.members = r.members.map((m) => m.memberId);
    const known = leaders.get(r.generationId);
    if (known !== undefined && known !== r.leader && !(c.instanceId !== null && r.members.length === 0)) fail(`two leaders in generation ${r.generationId}: ${known} and ${r.leader}`);
    if (known === undefined) leaders.set(r.generationId, r.leader);
    if (r.members.length > 0) {
      if (r.leader !== r.memberId) fail(`a follower ${r.memberId} got the member list`);
      if (!c.members.includes(r.memberId)) fail('the leader is not in its member list');
    }
  };
  const onSync = (c: Client, gen: number, r: SyncResult): void => {
    c.syncing = false;
    trace.push(`  ${c.name} sync(gen ${gen}) → err=${r.errorCode} '${r.assignment.toString()}'`);
    if (r.errorCode !== ErrorCode.NONE) return;
    const g = gc.group('g');
    if (g === undefined || g.generationId !== gen) fail(`assignment for generation ${gen} delivered while the group is at ${g?.generationId}`);
    const want = assigned.get(gen)?.get(c.memberId) ?? '';
    if (r.assignment.toString() !== want && !(c.instanceId !== null)) fail(`member ${c.memberId} got '${r.assignment.toString()}', leader of ${gen} assigned '${want}'`);
  };

  for (let step = 0; step < steps; step++) {
    const c = pick(clients);
    const op = rnd();
    if (op < 0.25 && !c.joining) {
      trace.push(`${step}: ${c.name} JoinGroup member=${c.memberId}`);
      c.joining = true;
      void gc
        .joinGroup({
          groupId: 'g',
          memberId: c.memberId,
          groupInstanceId: c.instanceId,
          clientId: c.name,
          clientHost: '',
          sessionTimeoutMs: SESSION_MS,
          rebalanceTimeoutMs: REBALANCE_MS,
          protocolType: 'consumer',
          protocols: [{ name: 'range', metadata: Buffer.from('sub') }],
          requireKnownMemberId: true,
          reason: null,
        })
        .then((r) => onJoin(c, r));
    } else if (op < 0.4 && c.generation >= 0 && !c.syncing && c.memberId !== '') {
      const gen = c.generation;
      const isLeader = c.members.length > 0;
      const assignments = isLeader ? c.members.map((m) => ({ memberId: m, assignment: Buffer.from(`${gen}:${m}:${commitSeq}`) })) : [];
      // Only the first accepted assignment of a generation counts (a Stable group ignores later ones).
      if (isLeader && !assigned.has(gen)) assigned.set(gen, new Map(assignments.map((a) => [a.memberId, a.assignment.toString()])));
      trace.push(`${step}: ${c.name} SyncGroup gen=${gen} leader=${isLeader}`);
      c.syncing = true;
      void gc
        .syncGroup({ groupId: 'g', generationId: gen, memberId: c.memberId, groupInstanceId: c.instanceId, protocolType: 'consumer', protocolName: 'range', assignments })
        .then((r) => onSync(c, gen, r));
    } else if (op < 0.6 && c.memberId !== '') {
      const e = gc.heartbeat({ groupId: 'g', memberId: c.memberId, groupInstanceId: c.instanceId, generationId: c.generation });
      trace.push(`${step}: ${c.name} Heartbeat gen=${c.generation} → ${e}`);
    } else if (op < 0.65 && c.memberId !== '') {
      const r = gc.leaveGroup('g', [{ memberId: c.memberId, groupInstanceId: c.instanceId }]);
      trace.push(`${step}: ${c.name} LeaveGroup → ${r.members[0]?.errorCode}`);
      c.memberId = '';
      c.generation = -1;
    } else if (op < 0.8) {
      const partition = Math.floor(rnd() * 4);
      const offset = ++commitSeq;
      const simple = rnd() < 0.3;
      const req = { groupId: 'g', generationId: simple ? -1 : c.generation, memberId: simple ? '' : c.memberId, groupInstanceId: null, offsets: [{ topic: 't', partition, offset, leaderEpoch: -1, metadata: `m${offset}`, commitTimestamp: -1 }] };
      const [e] = await gc.commitOffsets(req);
      trace.push(`${step}: ${c.name} OffsetCommit p${partition}=${offset} simple=${simple} → ${e}`);
      if (e === ErrorCode.NONE) committed.set(partition, offset);
    } else if (op < 0.97) {
      const ms = Math.floor(rnd() * 400);
      trace.push(`${step}: clock +${ms}`);
      clock.advance(ms);
    } else {
      trace.push(`${step}: restart`);
      gc.shutdown();
      await settle();
      gc = await load();
    }
    await settle();
    if (failure !== null) assert.fail(failure);

    const g = gc.group('g');
    if (g !== undefined) {
      if (g.generationId < maxGeneration) fail(`generation went down: ${maxGeneration} → ${g.generationId}`);
      maxGeneration = g.generationId;
      if (g.is('Empty') !== (g.members.size === 0) && !g.is('PreparingRebalance') && !g.is('Dead')) fail(`state ${g.state} with ${g.members.size} members`);
      if ((g.is('Stable') || g.is('CompletingRebalance')) && (g.leaderId === null || !g.members.has(g.leaderId))) fail(`${g.state} without a leader among its members`);
    }
    const fetched = gc.fetchOffsets('g', [{ name: 't', partitions: [0, 1, 2, 3] }]).topics[0]!.partitions;
    for (const p of fetched) {
      const want = committed.get(p.partition) ?? -1;
      if (p.offset !== want) fail(`partition ${p.partition}: committed ${want}, fetched ${p.offset}`);
      if (want >= 0 && p.metadata !== `m${want}`) fail(`partition ${p.partition}: metadata ${p.metadata}`);
    }
    if (failure !== null) assert.fail(failure);
  }
  gc.shutdown();
  await settle();
}

test('random schedules keep the group invariants (seeds 1–60, 400 steps each)', async () => {
  const base = Number(process.env['STRAND_MODEL_SEED'] ?? 1);
  for (let seed = base; seed < base + 60; seed++) await runSchedule(seed, 400);
});
