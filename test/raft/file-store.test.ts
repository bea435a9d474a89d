/**
 * The Raft seams on real files: the log survives a reopen, a torn or corrupt tail is truncated,
 * deleteBefore moves the log start, quorum-state is Kafka's JSON, snapshots are named like Kafka's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileQuorumStateStore, FileRaftLog, FileSnapshotStore, QUORUM_STATE_FILE } from '../../src/raft/file-store.js';
import type { LogEntry } from '../../src/raft/types.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'strand-raft-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const data = (epoch: number, s: string): LogEntry => ({ epoch, control: false, value: Buffer.from(s) });

test('entries, epochs and the control flag survive a reopen', (t) => {
  const dir = tempDir(t);
  const log = FileRaftLog.open(dir);
  log.append([{ epoch: 1, control: true, value: Buffer.from('{"version":0}') }, data(1, 'a')]);
  log.append([data(2, 'b')]);
  assert.equal(log.flushedEndOffset, 0);
  log.flush();
  assert.equal(log.flushedEndOffset, 3);
  log.close();

  const again = FileRaftLog.open(dir);
  assert.equal(again.logStartOffset, 0);
  assert.equal(again.endOffset, 3);
  assert.deepEqual(again.entry(0), { epoch: 1, control: true, value: Buffer.from('{"version":0}') });
  assert.deepEqual(again.entry(2), data(2, 'b'));
  again.close();
});

test('a torn tail (a partly written batch) is truncated at open', (t) => {
  const dir = tempDir(t);
  const log = FileRaftLog.open(dir);
  log.append([data(1, 'a'), data(1, 'b'), data(1, 'c')]);
  log.flush();
  log.close();
  const file = join(dir, '00000000000000000000.log');
  const full = fs.statSync(file).size;
  fs.truncateSync(file, full - 5);

  const again = FileRaftLog.open(dir);
  assert.equal(again.endOffset, 2);
  assert.deepEqual(again.entry(1), data(1, 'b'));
  // The file is cut back to the last whole batch, and appends continue from there.
  again.append([data(2, 'd')]);
  again.flush();
  again.close();
  const third = FileRaftLog.open(dir);
  assert.equal(third.endOffset, 3);
  assert.deepEqual(third.entry(2), data(2, 'd'));
  third.close();
});

test('a corrupt batch (bad CRC) ends the log at open', (t) => {
  const dir = tempDir(t);
  const log = FileRaftLog.open(dir);
  log.append([data(1, 'aaaa'), data(1, 'bbbb')]);
  log.flush();
  log.close();
  const file = join(dir, '00000000000000000000.log');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 2]! ^= 0xff;
  fs.writeFileSync(file, bytes);
  const again = FileRaftLog.open(dir);
  assert.equal(again.endOffset, 1);
  again.close();
});

test('truncateTo removes the tail; deleteBefore moves the log start into a new segment', (t) => {
  const dir = tempDir(t);
  const log = FileRaftLog.open(dir);
  log.append([data(1, 'a'), data(1, 'b'), data(2, 'c'), data(2, 'd')]);
  log.flush();
  log.truncateTo(3);
  assert.equal(log.endOffset, 3);
  assert.equal(log.flushedEndOffset, 3);
  log.flush();
  log.deleteBefore(2);
  assert.equal(log.logStartOffset, 2);
  assert.deepEqual(log.entry(2), data(2, 'c'));
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.log')), ['00000000000000000002.log']);
  log.append([data(3, 'e')]);
  log.flush();
  log.close();

  const again = FileRaftLog.open(dir);
  assert.equal(again.logStartOffset, 2);
  assert.equal(again.endOffset, 4);
  assert.deepEqual(again.entry(3), data(3, 'e'));
  // Past the end: the log becomes empty at the new start.
  again.deleteBefore(10);
  assert.equal(again.logStartOffset, 10);
  assert.equal(again.endOffset, 10);
  again.close();
  assert.equal(FileRaftLog.open(dir).logStartOffset, 10);
});

test('quorum-state is written as Kafka writes it, and read back', (t) => {
  const dir = tempDir(t);
  const store = new FileQuorumStateStore(dir, [1, 2, 3]);
  assert.equal(store.read(), null);
  store.write({ leaderEpoch: 5, leaderId: -1, votedId: 2 });
  assert.deepEqual(JSON.parse(fs.readFileSync(join(dir, QUORUM_STATE_FILE), 'utf8')), {
    clusterId: '',
    leaderId: -1,
    leaderEpoch: 5,
    votedId: 2,
    appliedOffset: 0,
    currentVoters: [{ voterId: 1 }, { voterId: 2 }, { voterId: 3 }],
    data_version: 0,
  });
  assert.deepEqual(new FileQuorumStateStore(dir, [1, 2, 3]).read(), { leaderEpoch: 5, leaderId: -1, votedId: 2 });
  fs.writeFileSync(join(dir, QUORUM_STATE_FILE), '{"nope":1}');
  assert.throws(() => store.read(), /not a quorum-state file/);
});

test('snapshots are <endOffset>-<epoch>.checkpoint; the latest wins and replaces older ones', (t) => {
  const dir = tempDir(t);
  const store = new FileSnapshotStore(dir);
  assert.equal(store.latest(), null);
  store.write({ endOffset: 12, epoch: 3 }, Buffer.from('twelve'));
  store.write({ endOffset: 120, epoch: 4 }, Buffer.from('one-twenty'));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['00000000000000000120-0000000004.checkpoint']);
  const fresh = new FileSnapshotStore(dir).latest();
  assert.deepEqual(fresh, { id: { endOffset: 120, epoch: 4 }, data: Buffer.from('one-twenty') });
});
