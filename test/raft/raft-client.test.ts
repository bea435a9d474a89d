/**
 * RaftClient driven by hand, one message at a time, over the simulated disk: the rules a single
 * exchange decides (votes persisted before the answer, one vote per epoch, the log comparison,
 * divergence answers, LeaderChange on election, high watermark only in the leader's epoch) and
 * hostile input that must be refused rather than acted on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../src/protocol/errors.js';
import { DEFAULT_RAFT_TIMING, RaftClient } from '../../src/raft/raft-client.js';
import type { LogEntry, RaftMessage, SnapshotId } from '../../src/raft/types.js';
import { SimLog, SimQuorumStateStore, SimSnapshotStore } from './sim/world.js';

class Harness {
  nowMs = 1000;
  readonly sent: Array<{ to: number; m: RaftMessage }> = [];
  readonly committed: LogEntry[] = [];
  readonly log = new SimLog();
  readonly quorumState = new SimQuorumStateStore();
  readonly client: RaftClient;
  /** quorum-state as it was when each message left. */
  readonly stateAtSend: Array<ReturnType<SimQuorumStateStore['read']>> = [];

  constructor(nodeId = 1, voters = [1, 2, 3]) {
    this.client = new RaftClient(
      { ...DEFAULT_RAFT_TIMING, nodeId, voters, random: () => 0.5 },
      this.log,
      this.quorumState,
      new SimSnapshotStore(),
      { nowMs: () => this.nowMs, wakeAt: () => {} },
      {
        send: (to, m) => {
          this.sent.push({ to, m });
          this.stateAtSend.push(this.quorumState.read());
        },
      },
      {
        handleCommit: (_o: number, e: LogEntry) => void this.committed.push(e),
        handleLoadSnapshot: (_id: SnapshotId, _d: Buffer) => {},
        handleLeaderChange: () => {},
      },
    );
    this.client.start();
  }

  take(): Array<{ to: number; m: RaftMessage }> {
    return this.sent.splice(0);
  }

  /** Makes this node the leader of epoch 1 with votes from 2. */
  elect(): void {
    this.nowMs += 10_000;
    this.client.poll();
    assert.equal(this.client.currentRole, 'candidate');
    this.take();
    this.client.handle({ type: 'VoteResponse', sourceId: 2, errorCode: 0, leaderId: -1, leaderEpoch: this.client.currentEpoch, voteGranted: true });
    assert.equal(this.client.currentRole, 'leader');
  }
}

const vote = (from: number, epoch: number, lastOffset = 0, lastOffsetEpoch = 0): RaftMessage => ({ type: 'VoteRequest', sourceId: from, candidateEpoch: epoch, candidateId: from, lastOffset, lastOffsetEpoch });

test('a vote is persisted in quorum-state before it is answered, and given once per epoch', () => {
  const h = new Harness();
  h.client.handle(vote(2, 5));
  const [answer] = h.take();
  assert.deepEqual(answer!.m, { type: 'VoteResponse', sourceId: 1, errorCode: 0, leaderId: -1, leaderEpoch: 5, voteGranted: true });
  assert.deepEqual(h.stateAtSend[0], { leaderEpoch: 5, leaderId: -1, votedId: 2 });
  // The same candidate again (a retry) is granted; another one in the same epoch is not.
  h.client.handle(vote(2, 5));
  h.client.handle(vote(3, 5));
  assert.deepEqual(
    h.take().map((s) => (s.m as { voteGranted: boolean }).voteGranted),
    [true, false],
  );
});

test('a vote goes only to a candidate whose log is at least as up to date', () => {
  const h = new Harness();
  h.log.append([{ epoch: 3, control: false, value: Buffer.from('x') }, { epoch: 3, control: false, value: Buffer.from('y') }]);
  h.log.flush();
  h.client.handle(vote(2, 5, 5, 2)); // longer log, older last epoch
  h.client.handle(vote(3, 6, 1, 3)); // same epoch, shorter
  assert.deepEqual(
    h.take().map((s) => (s.m as { voteGranted: boolean }).voteGranted),
    [false, false],
  );
  h.client.handle(vote(3, 7, 2, 3));
  assert.equal((h.take()[0]!.m as { voteGranted: boolean }).voteGranted, true);
});

test('an elected leader appends LeaderChange, announces itself, and commits only with a majority in its epoch', () => {
  const h = new Harness();
  h.elect();
  const epoch = h.client.currentEpoch;
  assert.equal(h.log.endOffset, 1);
  assert.equal(h.log.entry(0).control, true);
  assert.deepEqual(JSON.parse(h.log.entry(0).value.toString()).grantingVoters, [{ voterId: 1 }, { voterId: 2 }]);
  assert.deepEqual(
    h.take().filter((s) => s.m.type === 'BeginQuorumEpochRequest').map((s) => s.to),
    [2, 3],
  );
  assert.equal(h.client.currentHighWatermark, 0);
  // Follower 2 fetched from 1: with the leader's own flushed 1 that is a majority.
  h.client.handle({ type: 'FetchRequest', sourceId: 2, currentLeaderEpoch: epoch, fetchOffset: 1, lastFetchedEpoch: epoch });
  assert.equal(h.client.currentHighWatermark, 1);
  assert.equal(h.committed.length, 1);
});

test('a fetch whose last epoch does not match is answered with the diverging epoch', () => {
  const h = new Harness();
  h.elect();
  h.take();
  const epoch = h.client.currentEpoch;
  // The follower claims entries of an epoch this leader never had, past its log.
  h.client.handle({ type: 'FetchRequest', sourceId: 3, currentLeaderEpoch: epoch, fetchOffset: 4, lastFetchedEpoch: 0 });
  const answer = h.take()[0]!.m as Extract<RaftMessage, { type: 'FetchResponse' }>;
  assert.deepEqual(answer.divergingEpoch, { offset: 0, epoch: 0 });
  assert.equal(answer.entries.length, 0);
  // A stale epoch is fenced; a future one unknown.
  h.client.handle({ type: 'FetchRequest', sourceId: 3, currentLeaderEpoch: epoch - 1, fetchOffset: 0, lastFetchedEpoch: 0 });
  h.client.handle({ type: 'FetchRequest', sourceId: 3, currentLeaderEpoch: epoch + 1, fetchOffset: 0, lastFetchedEpoch: 0 });
  assert.deepEqual(
    h.take().map((s) => (s.m as { errorCode: number }).errorCode),
    [ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH],
  );
});

test('hostile input is refused, not acted on', () => {
  const h = new Harness();
  // BeginQuorumEpoch from a non-voter, or naming this node as leader.
  h.client.handle({ type: 'BeginQuorumEpochRequest', sourceId: 9, leaderId: 9, leaderEpoch: 50 });
  h.client.handle({ type: 'BeginQuorumEpochRequest', sourceId: 2, leaderId: 1, leaderEpoch: 50 });
  h.client.handle(vote(9, 50));
  assert.deepEqual(
    h.take().map((s) => (s.m as { errorCode: number }).errorCode),
    [ErrorCode.INCONSISTENT_VOTER_SET, ErrorCode.INCONSISTENT_VOTER_SET, ErrorCode.INCONSISTENT_VOTER_SET],
  );
  assert.equal(h.client.currentEpoch, 0);
  // A response naming a leader outside the quorum is dropped.
  h.client.handle({ type: 'VoteResponse', sourceId: 2, errorCode: 0, leaderId: 7, leaderEpoch: 60, voteGranted: false });
  assert.equal(h.client.currentEpoch, 0);

  // A follower drops fetched entries of an epoch its leader cannot have written.
  h.client.handle({ type: 'BeginQuorumEpochRequest', sourceId: 2, leaderId: 2, leaderEpoch: 3 });
  h.nowMs += 100;
  h.client.poll();
  const fetch = h.take().find((s) => s.m.type === 'FetchRequest')!.m as Extract<RaftMessage, { type: 'FetchRequest' }>;
  h.client.handle({
    type: 'FetchResponse',
    sourceId: 2,
    errorCode: 0,
    leaderId: 2,
    leaderEpoch: 3,
    highWatermark: 1,
    fetchOffset: fetch.fetchOffset,
    lastFetchedEpoch: fetch.lastFetchedEpoch,
    divergingEpoch: null,
    snapshotId: null,
    entries: [{ epoch: 4, control: false, value: Buffer.from('from the future') }],
  });
  assert.equal(h.log.endOffset, 0);
  assert.equal(h.client.currentHighWatermark, 0);
});

test('an observer finds the leader through any voter, follows it, and never votes or stands', () => {
  const h = new Harness(9, [1, 2, 3]);
  assert.equal(h.client.observer, true);
  h.nowMs += 10_000;
  h.client.poll();
  assert.equal(h.client.currentRole, 'unattached');
  const [probe] = h.take();
  assert.equal(probe!.m.type, 'FetchRequest');
  assert([1, 2, 3].includes(probe!.to));
  // A voter that is not the leader answers with the leader it knows.
  h.client.handle({ type: 'FetchResponse', sourceId: probe!.to, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, leaderId: 2, leaderEpoch: 4, highWatermark: -1, fetchOffset: 0, lastFetchedEpoch: 0, divergingEpoch: null, snapshotId: null, entries: [] });
  assert.equal(h.client.currentRole, 'follower');
  assert.equal(h.client.currentLeaderId, 2);
  h.client.handle(vote(3, 5));
  assert.equal((h.take().find((s) => s.m.type === 'VoteResponse')!.m as { voteGranted: boolean }).voteGranted, false);
  // Losing the leader makes it look again, not stand for election.
  h.nowMs += 60_000;
  h.client.poll();
  assert.equal(h.client.currentRole, 'unattached');
  assert(h.take().some((s) => s.m.type === 'FetchRequest'));
});
