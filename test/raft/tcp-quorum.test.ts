/**
 * Three voters in one process over real TCP and real files (RaftManager): they elect a leader,
 * replicate and commit, a restarted voter that fell behind the leader's snapshot installs it with
 * FetchSnapshot, and a leader that shuts down hands over to a new one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RaftManager } from '../../src/raft/raft-manager.js';
import type { VoterEndpoint } from '../../src/raft/tcp-transport.js';
import type { LogEntry, SnapshotId } from '../../src/raft/types.js';
import { freePort } from '../../src/testing/broker-process.js';

/** The state machine: the committed data values, in order. */
class Values {
  values: string[] = [];
  applied = 0;
  snapshotsLoaded: SnapshotId[] = [];
  leader = -1;
  handleCommit(offset: number, entry: LogEntry): void {
    assert.equal(offset, this.applied);
    this.applied = offset + 1;
    if (!entry.control) this.values.push(entry.value.toString());
  }
  handleLoadSnapshot(id: SnapshotId, data: Buffer): void {
    this.values = JSON.parse(data.toString()) as string[];
    this.applied = id.endOffset;
    this.snapshotsLoaded.push(id);
  }
  handleLeaderChange(leaderId: number): void {
    this.leader = leaderId;
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const TIMING = { electionTimeoutMs: 300, fetchTimeoutMs: 600, requestTimeoutMs: 500, fetchIntervalMs: 20 };

test('three voters over TCP: election, replication, snapshot catch-up, hand-over', { timeout: 60000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'strand-raft-tcp-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const voters: VoterEndpoint[] = [];
  for (const id of [1, 2, 3]) voters.push({ id, host: '127.0.0.1', port: await freePort() });
  const machines = new Map<number, Values>();
  const managers = new Map<number, RaftManager>();
  const start = async (id: number): Promise<void> => {
    const machine = new Values();
    machines.set(id, machine);
    managers.set(id, await RaftManager.start({ nodeId: id, voters, dir: join(root, `node-${id}`, '__cluster_metadata-0'), listenHost: '127.0.0.1', listenPort: voters[id - 1]!.port, timing: TIMING, listener: machine }));
  };
  t.after(async () => {
    for (const m of managers.values()) await m.close();
  });
  for (const id of [1, 2, 3]) await start(id);

  const leaderOf = (ids: number[]): RaftManager | undefined => ids.map((id) => managers.get(id)!).find((m) => m.client.isLeader());
  await waitFor('a leader', () => leaderOf([1, 2, 3]) !== undefined);
  const leader = leaderOf([1, 2, 3])!;
  const epoch = leader.client.currentEpoch;
  for (const id of [1, 2, 3]) await waitFor(`node ${id} to know the leader`, () => machines.get(id)!.leader === leader.client.nodeId);

  for (let i = 0; i < 50; i++) assert.notEqual(leader.propose([Buffer.from(`a${i}`)]), null);
  const expected = Array.from({ length: 50 }, (_, i) => `a${i}`);
  for (const id of [1, 2, 3]) await waitFor(`node ${id} to commit 50 values`, () => machines.get(id)!.values.length === 50);
  for (const id of [1, 2, 3]) assert.deepEqual(machines.get(id)!.values, expected);

  // A follower stops; the leader commits more and snapshots past everything the follower has.
  const lagging = [1, 2, 3].find((id) => id !== leader.client.nodeId)!;
  await managers.get(lagging)!.close();
  managers.delete(lagging);
  for (let i = 0; i < 30; i++) leader.propose([Buffer.from(`b${i}`)]);
  expected.push(...Array.from({ length: 30 }, (_, i) => `b${i}`));
  const leaderMachine = machines.get(leader.client.nodeId)!;
  await waitFor('the leader to commit 80 values', () => leaderMachine.values.length === 80);
  const snapshot = leader.createSnapshot(leaderMachine.applied, Buffer.from(JSON.stringify(leaderMachine.values)));
  assert.equal(leader.client.currentEpoch, epoch);

  await start(lagging);
  const restarted = machines.get(lagging)!;
  await waitFor('the restarted follower to install the snapshot', () => restarted.snapshotsLoaded.some((s) => s.endOffset === snapshot.endOffset));
  leader.propose([Buffer.from('c0')]);
  expected.push('c0');
  await waitFor('the restarted follower to catch up', () => restarted.values.length === 81);
  assert.deepEqual(restarted.values, expected);

  // The leader shuts down: it resigns, and the others elect a new leader in a later epoch.
  const oldLeaderId = leader.client.nodeId;
  await leader.close();
  managers.delete(oldLeaderId);
  const rest = [1, 2, 3].filter((id) => id !== oldLeaderId);
  await waitFor('a new leader', () => leaderOf(rest) !== undefined);
  const next = leaderOf(rest)!;
  assert(next.client.currentEpoch > epoch);
  next.propose([Buffer.from('d0')]);
  expected.push('d0');
  for (const id of rest) await waitFor(`node ${id} to commit under the new leader`, () => machines.get(id)!.values.length === 82);
  for (const id of rest) assert.deepEqual(machines.get(id)!.values, expected);
});
