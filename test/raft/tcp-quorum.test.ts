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
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { RaftManager } from '../../src/raft/raft-manager.js';
import type { VoterEndpoint } from '../../src/raft/tcp-transport.js';
import type { LogEntry, SnapshotId } from '../../src/raft/types.js';
import { freePort } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

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

const TIMING = { electionTimeoutMs: 500, fetchTimeoutMs: 1500, requestTimeoutMs: 500, fetchIntervalMs: 20 };

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

test('the controller listener closes a connection on bad input and keeps serving', { timeout: 30000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'strand-raft-fuzz-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const voters: VoterEndpoint[] = [];
  for (const id of [1, 2, 3]) voters.push({ id, host: '127.0.0.1', port: await freePort() });
  const manager = await RaftManager.start({ nodeId: 1, voters, dir: join(root, 'm'), listenHost: '127.0.0.1', listenPort: voters[0]!.port, timing: TIMING, listener: new Values() });
  t.after(() => manager.close());

  const closedAfter = async (bytes: Buffer): Promise<void> => {
    const c = await ProtocolConnection.connect('127.0.0.1', manager.port);
    const closed = new Promise<void>((resolve) => c.socket.once('close', () => resolve()));
    c.writeRaw(bytes);
    await closed;
  };
  const frame = (body: Buffer): Buffer => {
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    return Buffer.concat([size, body]);
  };
  await closedAfter(Buffer.from([0x7f, 0xff, 0xff, 0xff])); // a 2 GiB frame
  await closedAfter(frame(Buffer.from([0, 99, 0, 0, 0, 0, 0, 1, 0, 0]))); // unknown api 99
  let seed = 42;
  const nextByte = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 20; i++) {
    const junk = Buffer.from(Array.from({ length: 1 + ((i * 7) % 40) }, nextByte));
    // A Vote v0 header followed by junk: undecodable body.
    const header = Buffer.from([0, ApiKey.Vote, 0, 0, 0, 0, 0, i, 0, 0, 0]);
    await closedAfter(frame(Buffer.concat([header, junk])));
  }

  // Still serving: ApiVersions lists the quorum's apis, and a Vote for another topic gets INVALID_REQUEST.
  const c = await ProtocolConnection.connect('127.0.0.1', manager.port);
  t.after(() => c.close());
  const versions = await c.send(ApiKey.ApiVersions, 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  assert.deepEqual(
    versions.apiKeys.map((k: { apiKey: number }) => k.apiKey).sort((a: number, b: number) => a - b),
    [ApiKey.Fetch, ApiKey.ApiVersions, ApiKey.Vote, ApiKey.BeginQuorumEpoch, ApiKey.EndQuorumEpoch, ApiKey.FetchSnapshot].sort((a, b) => a - b),
  );
  const answer = await c.send(ApiKey.Vote, 0, { clusterId: null, voterId: -1, topics: [{ topicName: 'orders', partitions: [] }] });
  assert.equal(answer.errorCode, ErrorCode.INVALID_REQUEST);
});
