/**
 * The deterministic replication logic (src/broker/replication/partition-state.ts): the leader's
 * high watermark over the ISR, ISR expansion and shrink timing, fetch validation with diverging
 * epochs, and the follower's truncation — on in-memory epoch caches, then end to end on real
 * PartitionLogs exchanging what a fetch would carry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LeaderEpochFileCache } from '../../src/storage/leader-epoch-cache.js';
import { PartitionLog } from '../../src/storage/log.js';
import {
  LeaderPartitionState,
  applyFollowerFetch,
  lastFetchedEpoch,
  planFollowerFetch,
  truncationForDivergingEpoch,
  truncationForOutOfRange,
  type ReplicaLogView,
} from '../../src/broker/replication/partition-state.js';
import { leaderBatch, makeBatch, testConfig, withTempDir } from '../storage/batch-helper.js';

/** A log view: offsets plus an in-memory epoch cache. */
function view(logEndOffset: number, epochs: Array<[number, number]>, highWatermark = 0, logStartOffset = 0): ReplicaLogView {
  return { logStartOffset, logEndOffset, highWatermark, leaderEpochCache: new LeaderEpochFileCache(null, epochs.map(([epoch, startOffset]) => ({ epoch, startOffset }))) };
}

function leader(isr: number[], opts: { replicas?: number[]; nowMs?: number; startOffset?: number } = {}): LeaderPartitionState {
  return new LeaderPartitionState({ leaderId: 1, leaderEpoch: 3, partitionEpoch: 7, replicas: opts.replicas ?? [1, 2, 3], isr, leaderEpochStartOffset: opts.startOffset ?? 0, nowMs: opts.nowMs ?? 1000 });
}

test('high watermark: the smallest log end offset over the ISR; a member that has not fetched holds it back; a non-member does not', () => {
  const s = leader([1, 2, 3]);
  assert.equal(s.highWatermarkCandidate(100), -1, 'no follower has fetched in this leadership');
  s.updateFollower(2, 80, 100, 1100);
  assert.equal(s.highWatermarkCandidate(100), -1, 'follower 3 is still unknown');
  s.updateFollower(3, 90, 100, 1100);
  assert.equal(s.highWatermarkCandidate(100), 80);
  s.updateFollower(2, 100, 100, 1200);
  assert.equal(s.highWatermarkCandidate(100), 90);
  s.updateFollower(3, 100, 100, 1200);
  assert.equal(s.highWatermarkCandidate(120), 100, 'the leader has more: the followers bound it');
  // Follower 3 leaves the ISR: it no longer counts.
  assert.ok(s.isrChangeCommitted([1, 2], 8));
  s.updateFollower(2, 120, 120, 1300);
  assert.equal(s.highWatermarkCandidate(120), 120);
  // An ISR of the leader alone: its own log end offset.
  assert.ok(s.isrChangeCommitted([1], 9));
  assert.equal(s.highWatermarkCandidate(150), 150);
  // A stale committed state (older partition epoch) is ignored.
  assert.equal(s.isrChangeCommitted([1, 2, 3], 8), false);
  assert.deepEqual(s.isr, [1]);
});

test('a pending ISR expansion counts in the high watermark (maximal ISR); a pending shrink does not stop counting the member yet', () => {
  const s = leader([1, 2], { replicas: [1, 2, 3] });
  s.updateFollower(2, 50, 50, 1000);
  s.updateFollower(3, 40, 50, 1000);
  assert.equal(s.highWatermarkCandidate(50), 50);
  s.beginIsrChange([1, 2, 3]);
  assert.deepEqual([...s.maximalIsr].sort(), [1, 2, 3]);
  assert.equal(s.highWatermarkCandidate(50), 40);
  assert.throws(() => s.beginIsrChange([1, 2]), /already in flight/);
  s.isrChangeFailed();
  s.beginIsrChange([1]);
  assert.equal(s.highWatermarkCandidate(50), 50, 'members being removed still count until the change commits');
  assert.deepEqual(s.maximalIsr, [1, 2]);
});

test('last caught-up time (Kafka\'s): at the leader\'s end now, or at its end of the previous fetch then', () => {
  const s = leader([1, 2, 3], { nowMs: 0 });
  s.updateFollower(2, 100, 100, 1000);
  assert.equal(s.follower(2)!.lastCaughtUpTimeMs, 1000);
  // The leader moved to 150; the follower fetches at 100 (what the leader had at its previous fetch).
  s.updateFollower(2, 100, 150, 2000);
  assert.equal(s.follower(2)!.lastCaughtUpTimeMs, 1000, 'at 2000 it was caught up with the leader as of 1000');
  s.updateFollower(2, 150, 180, 3000);
  assert.equal(s.follower(2)!.lastCaughtUpTimeMs, 2000, 'it reached what the leader had at 2000');
  s.updateFollower(2, 160, 200, 4000);
  assert.equal(s.follower(2)!.lastCaughtUpTimeMs, 2000, 'below 180: not caught up with the previous fetch\'s end');
});

test('ISR shrink: a member behind the leader\'s end for more than replica.lag.time.max.ms leaves; one at the end never does', () => {
  const lag = 10_000;
  const s = leader([1, 2, 3], { nowMs: 0 });
  s.updateFollower(2, 100, 100, 1000);
  s.updateFollower(3, 100, 100, 1000);
  // Both idle at the leader's end: in sync however long ago they fetched.
  assert.equal(s.isrShrink(60_000, 100, lag), null);
  // The leader appends; follower 2 keeps up, follower 3 stops fetching.
  s.updateFollower(2, 100, 200, 5000);
  s.updateFollower(2, 200, 200, 6000);
  assert.equal(s.isrShrink(11_000, 200, lag), null, 'follower 3 was caught up at 1000: 10 s have not passed');
  assert.deepEqual(s.isrShrink(11_001, 200, lag), [1, 2]);
  // One change at a time.
  s.beginIsrChange([1, 2]);
  assert.equal(s.isrShrink(60_000, 200, lag), null);
  assert.ok(s.isrChangeCommitted([1, 2], 8));
  assert.deepEqual(s.isr, [1, 2]);
  // A new leader treats its ISR as caught up at the moment it took over.
  const fresh = leader([1, 2, 3], { nowMs: 50_000 });
  assert.equal(fresh.isrShrink(59_000, 10, lag), null);
  assert.deepEqual(fresh.isrShrink(60_001, 10, lag), [1]);
});

test('ISR expansion: a replica joins once it reaches the high watermark and the start of the leader\'s epoch, and the controller would take it', () => {
  const s = leader([1, 2], { startOffset: 120 });
  const eligible = (id: number): boolean => id !== 4;
  assert.equal(s.isrExpansion(3, 100, eligible), null, 'not fetched yet');
  s.updateFollower(3, 90, 150, 1000);
  assert.equal(s.isrExpansion(3, 100, eligible), null, 'below the high watermark');
  s.updateFollower(3, 110, 150, 1100);
  assert.equal(s.isrExpansion(3, 100, eligible), null, 'below the start of the leader epoch');
  s.updateFollower(3, 130, 150, 1200);
  assert.deepEqual(s.isrExpansion(3, 100, eligible), [1, 2, 3]);
  assert.equal(s.isrExpansion(2, 100, eligible), null, 'already a member');
  s.beginIsrChange([1, 2, 3]);
  assert.equal(s.isrExpansion(3, 100, eligible), null, 'a change is in flight');
  // A fenced (ineligible) replica is not proposed.
  const t = leader([1], { replicas: [1, 4] });
  t.updateFollower(4, 10, 10, 1000);
  assert.equal(t.isrExpansion(4, 10, eligible), null);
});

test('acks=all needs a committed ISR of at least min.insync.replicas', () => {
  const s = leader([1, 2, 3]);
  assert.ok(s.enoughReplicas(2));
  s.isrChangeCommitted([1], 8);
  assert.equal(s.enoughReplicas(2), false);
  assert.ok(s.enoughReplicas(1));
});

test('fetch validation: a follower whose last epoch ends earlier on the leader, or that the leader never had, gets a diverging epoch', () => {
  // Leader: epoch 0 at 0, epoch 2 at 50, epoch 4 at 80; log end 100.
  const l = view(100, [[0, 0], [2, 50], [4, 80]]);
  const s = leader([1, 2, 3]);
  assert.deepEqual(s.validateFetch(l, 100, 4), { kind: 'ok' });
  assert.deepEqual(s.validateFetch(l, 60, 2), { kind: 'ok' }, 'epoch 2 ends at 80 on the leader: 60 is inside it');
  assert.deepEqual(s.validateFetch(l, 90, 2), { kind: 'diverging', divergingEpoch: { epoch: 2, endOffset: 80 } }, 'the follower has epoch 2 up to 90; the leader only to 80');
  assert.deepEqual(s.validateFetch(l, 70, 3), { kind: 'diverging', divergingEpoch: { epoch: 2, endOffset: 80 } }, 'epoch 3 never led here: the largest below it is 2');
  assert.deepEqual(s.validateFetch(l, 0, -1), { kind: 'ok' }, 'an empty follower log is not checked');
  assert.deepEqual(s.validateFetch(l, 101, -1), { kind: 'out-of-range' });
  assert.deepEqual(s.validateFetch(view(100, [[0, 0]], 0, 40), 10, -1), { kind: 'out-of-range' }, 'below the leader\'s log start');
});

test('follower truncation for a diverging epoch (Kafka\'s rule), and for out-of-range answers', () => {
  // Follower: epoch 0 at 0, epoch 3 at 50 (it followed a leader whose writes were lost); log end 90.
  const f = view(90, [[0, 0], [3, 50]], 40);
  // The leader answers: epoch 0 ends at 60 there. The follower has epoch 0 ending at 50: cut at 50.
  assert.equal(truncationForDivergingEpoch(f, { epoch: 0, endOffset: 60 }), 50);
  // The leader's epoch 2 ends at 70; the follower has no epoch 2, its largest below is 0 (ends at 50): cut at 50, ask again.
  assert.equal(truncationForDivergingEpoch(f, { epoch: 2, endOffset: 70 }), 50);
  // Same epoch, leader shorter: cut at the leader's end.
  assert.equal(truncationForDivergingEpoch(f, { epoch: 3, endOffset: 70 }), 70);
  // Behind the leader's log start: restart there; past the leader's end without epochs: keep what is committed.
  assert.deepEqual(truncationForOutOfRange(f, 90, 200, 250), { kind: 'restart', offset: 200 });
  assert.deepEqual(truncationForOutOfRange(view(90, [], 10), 90, 0, 60), { kind: 'truncate', offset: 60 });
  assert.equal(lastFetchedEpoch(f), 3);
  assert.equal(lastFetchedEpoch(view(0, [])), -1);
});

test('planFollowerFetch: records to append with the leader\'s high watermark, truncation, or waiting for metadata', () => {
  const f = view(10, [[0, 0]]);
  const none = { epoch: -1, endOffset: -1 };
  const rec = Buffer.from([1]);
  assert.deepEqual(planFollowerFetch(f, 10, { errorCode: 0, highWatermark: 8, logStartOffset: 0, divergingEpoch: none, records: rec }), { kind: 'append', records: rec, highWatermark: 8, leaderLogStartOffset: 0 });
  assert.deepEqual(planFollowerFetch(f, 10, { errorCode: 0, highWatermark: 8, logStartOffset: 0, divergingEpoch: { epoch: 0, endOffset: 6 }, records: null }), { kind: 'truncate', offset: 6 });
  assert.deepEqual(planFollowerFetch(f, 10, { errorCode: 6, highWatermark: -1, logStartOffset: -1, divergingEpoch: none, records: null }), { kind: 'await-metadata', errorCode: 6 });
  assert.deepEqual(planFollowerFetch(f, 10, { errorCode: 74, highWatermark: -1, logStartOffset: -1, divergingEpoch: none, records: null }), { kind: 'await-metadata', errorCode: 74 });
  assert.deepEqual(planFollowerFetch(f, 10, { errorCode: 56, highWatermark: -1, logStartOffset: -1, divergingEpoch: none, records: null }), { kind: 'backoff', errorCode: 56 });
});

/**
 * One fetch exchange between real logs, as the fetcher and the leader's fetch handler do it:
 * validate, read to the leader's log end, plan and apply on the follower. Returns the action kind.
 */
async function exchange(s: LeaderPartitionState, leaderLog: PartitionLog, followerId: number, followerLog: PartitionLog, nowMs: number): Promise<string> {
  const fetchOffset = followerLog.logEndOffset;
  const v = s.validateFetch(leaderLog, fetchOffset, lastFetchedEpoch(followerLog));
  let response;
  if (v.kind === 'diverging') response = { errorCode: 0, highWatermark: leaderLog.highWatermark, logStartOffset: leaderLog.logStartOffset, divergingEpoch: v.divergingEpoch, records: null };
  else if (v.kind === 'out-of-range') response = { errorCode: 1, highWatermark: leaderLog.highWatermark, logStartOffset: leaderLog.logStartOffset, divergingEpoch: { epoch: -1, endOffset: -1 }, records: null };
  else {
    s.updateFollower(followerId, fetchOffset, leaderLog.logEndOffset, nowMs);
    leaderLog.updateHighWatermark(s.highWatermarkCandidate(leaderLog.logEndOffset));
    const records = await leaderLog.read(fetchOffset, 1 << 20, leaderLog.logEndOffset, true);
    response = { errorCode: 0, highWatermark: leaderLog.highWatermark, logStartOffset: leaderLog.logStartOffset, divergingEpoch: { epoch: -1, endOffset: -1 }, records };
  }
  const action = planFollowerFetch(followerLog, fetchOffset, response);
  await applyFollowerFetch(followerLog, action);
  return action.kind;
}

test('end to end on real logs: a deposed leader\'s unreplicated batches are truncated away and it converges on the new leader\'s log', async () => {
  await withTempDir(async (dir) => {
    const open = (name: string): Promise<PartitionLog> => PartitionLog.open(join(dir, name), 't', 0, testConfig(), { cleanShutdown: true });
    const a = await open('a-0'); // the old leader (epoch 1), later a follower
    const b = await open('b-0'); // its follower, later the leader (epoch 2)
    for (const log of [a, b]) log.autoAdvanceHighWatermark = false;
    // Epoch 1: a leads and writes 0..4; b replicates them.
    await a.append(makeBatch({ records: 5 }), 1);
    const s1 = new LeaderPartitionState({ leaderId: 1, leaderEpoch: 1, partitionEpoch: 0, replicas: [1, 2], isr: [1, 2], leaderEpochStartOffset: 0, nowMs: 0 });
    assert.equal(await exchange(s1, a, 2, b, 10), 'append');
    assert.equal(b.logEndOffset, 5);
    assert.equal(await exchange(s1, a, 2, b, 20), 'append');
    assert.equal(a.highWatermark, 5);
    assert.equal(b.highWatermark, 5, 'the follower learns the high watermark on its next fetch');
    // a writes 5..7 (acks=1) that b never fetches, then a is deposed: b leads epoch 2 and writes 5..8.
    await a.append(makeBatch({ records: 3 }), 1);
    await b.assignEpochStartOffset(2);
    await b.append(makeBatch({ records: 4 }), 2);
    assert.deepEqual(b.leaderEpochCache.entries(), [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 5 }]);
    const s2 = new LeaderPartitionState({ leaderId: 2, leaderEpoch: 2, partitionEpoch: 1, replicas: [1, 2], isr: [2], leaderEpochStartOffset: 5, nowMs: 100 });
    // a fetches at 8 with last epoch 1: epoch 1 ends at 5 on b — diverging, a truncates to 5.
    assert.equal(await exchange(s2, b, 1, a, 110), 'truncate');
    assert.equal(a.logEndOffset, 5);
    assert.equal(await exchange(s2, b, 1, a, 120), 'append');
    assert.equal(a.logEndOffset, 9);
    assert.deepEqual(a.leaderEpochCache.entries(), b.leaderEpochCache.entries());
    // Its next fetch tells the leader it has caught up to the high watermark and the start of
    // epoch 2: a may rejoin the ISR.
    assert.deepEqual(s2.isrExpansion(1, b.highWatermark, () => true), null);
    assert.equal(await exchange(s2, b, 1, a, 130), 'append');
    assert.equal(a.highWatermark, 9);
    assert.deepEqual(s2.isrExpansion(1, b.highWatermark, () => true), [2, 1]);
    const bytesA = await a.read(0, 1 << 20, a.logEndOffset, true);
    const bytesB = await b.read(0, 1 << 20, b.logEndOffset, true);
    assert.ok(Buffer.from(bytesA).equals(Buffer.from(bytesB)), 'the logs are byte-identical');
    await a.close();
    await b.close();
  });
});

test('end to end on real logs: a follower behind the leader\'s log start restarts its log there', async () => {
  await withTempDir(async (dir) => {
    const leaderLog = await PartitionLog.open(join(dir, 'l-0'), 't', 0, testConfig(), { cleanShutdown: true });
    const followerLog = await PartitionLog.open(join(dir, 'f-0'), 't', 0, testConfig(), { cleanShutdown: true });
    followerLog.autoAdvanceHighWatermark = false;
    await leaderLog.append(makeBatch({ records: 10 }), 0);
    await leaderLog.deleteRecordsBefore(6);
    const s = new LeaderPartitionState({ leaderId: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2], isr: [1], leaderEpochStartOffset: 0, nowMs: 0 });
    assert.equal(await exchange(s, leaderLog, 2, followerLog, 1), 'restart');
    assert.deepEqual([followerLog.logStartOffset, followerLog.logEndOffset], [6, 6]);
    // The leader's batch holding 6 starts at 0; the follower takes batches from its log end on only.
    await leaderLog.append(leaderBatch({ records: 2, baseOffset: 0, leaderEpoch: 0 }), 0);
    assert.equal(await exchange(s, leaderLog, 2, followerLog, 2), 'append');
    assert.equal(followerLog.logEndOffset, 12);
    await leaderLog.close();
    await followerLog.close();
  });
});
