/**
 * LeaderEpochFileCache: the semantics of Kafka's LeaderEpochFileCache (the endOffsetFor cases of
 * its LeaderEpochFileCacheTest), the checkpoint file's format, persistence and corruption.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LEADER_EPOCH_CHECKPOINT_FILE,
  LeaderEpochFileCache,
  parseLeaderEpochCheckpoint,
  readLeaderEpochCheckpoint,
} from '../../src/storage/leader-epoch-cache.js';
import { withTempDir } from './batch-helper.js';

const mem = (...entries: Array<[number, number]>): LeaderEpochFileCache => {
  const c = new LeaderEpochFileCache(null);
  for (const [e, o] of entries) c.assign(e, o);
  return c;
};
const list = (c: LeaderEpochFileCache): Array<[number, number]> => c.entries().map((e) => [e.epoch, e.startOffset]);

test('epoch cache: an assigned epoch answers the log end offset while it is the latest', () => {
  const c = mem([2, 10]);
  assert.equal(c.latestEpoch(), 2);
  assert.deepEqual(c.endOffsetFor(2, 11), { epoch: 2, endOffset: 11 });
});

test('epoch cache: the latest epoch requested → the log end offset', () => {
  const c = mem([2, 5], [3, 6], [4, 7]);
  assert.deepEqual(c.endOffsetFor(4, 20), { epoch: 4, endOffset: 20 });
});

test('epoch cache: undefined epoch requested, or nothing recorded → (-1, -1)', () => {
  assert.deepEqual(mem([2, 5]).endOffsetFor(-1, 10), { epoch: -1, endOffset: -1 });
  assert.deepEqual(mem().endOffsetFor(0, 0), { epoch: -1, endOffset: -1 });
  assert.deepEqual(mem().endOffsetFor(-1, 0), { epoch: -1, endOffset: -1 });
  assert.equal(mem().latestEpoch(), -1);
});

test('epoch cache: an epoch above every known one → (-1, -1)', () => {
  assert.deepEqual(mem([2, 100]).endOffsetFor(3, 100), { epoch: -1, endOffset: -1 });
});

test('epoch cache: an epoch below the first → that epoch, ending where the first known one starts', () => {
  assert.deepEqual(mem([5, 11], [6, 12], [7, 13]).endOffsetFor(4, 20), { epoch: 4, endOffset: 11 });
});

test('epoch cache: an epoch between entries → the largest epoch below it, ending at the next start', () => {
  const c = mem([0, 10], [2, 13], [4, 17]);
  assert.deepEqual(c.endOffsetFor(0, 30), { epoch: 0, endOffset: 13 });
  assert.deepEqual(c.endOffsetFor(1, 30), { epoch: 0, endOffset: 13 });
  assert.deepEqual(c.endOffsetFor(2, 30), { epoch: 2, endOffset: 17 });
  assert.deepEqual(c.endOffsetFor(3, 30), { epoch: 2, endOffset: 17 });
  assert.deepEqual(c.endOffsetFor(4, 30), { epoch: 4, endOffset: 30 });
});

test('epoch cache: a previous epoch ends where the next begins; later starts of the same epoch do not move it', () => {
  const c = mem([1, 5], [1, 6], [2, 8], [2, 9]);
  assert.deepEqual(list(c), [
    [1, 5],
    [2, 8],
  ]);
  assert.deepEqual(c.endOffsetFor(1, 12), { epoch: 1, endOffset: 8 });
});

test('epoch cache: epochs need not start at zero', () => {
  assert.deepEqual(mem([2, 6]).endOffsetFor(2, 7), { epoch: 2, endOffset: 7 });
});

test('epoch cache: the same epoch starting earlier replaces its entry', () => {
  const c = mem([5, 11], [6, 12], [7, 13]);
  c.assign(7, 12);
  assert.deepEqual(list(c), [
    [5, 11],
    [7, 12],
  ]);
});

test('epoch cache: a newer epoch at a start offset not above the latest drops the entries it overlaps', () => {
  const c = mem([2, 9]);
  c.assign(3, 9);
  assert.deepEqual(list(c), [[3, 9]]);
  c.assign(4, 5);
  assert.deepEqual(list(c), [[4, 5]]);
});

test('epoch cache: an epoch older than the latest is ignored (only truncation rewrites history)', () => {
  const c = mem([1, 5], [2, 6]);
  c.assign(1, 7);
  c.assign(0, 8);
  assert.deepEqual(list(c), [
    [1, 5],
    [2, 6],
  ]);
  assert.throws(() => c.assign(-1, 3), /invalid epoch entry/);
});

test('epoch cache: truncateFromEnd drops entries starting at or after the offset', () => {
  const c = mem([2, 6], [3, 8], [4, 11]);
  c.truncateFromEnd(12);
  assert.deepEqual(list(c), [
    [2, 6],
    [3, 8],
    [4, 11],
  ]);
  c.truncateFromEnd(11);
  assert.deepEqual(list(c), [
    [2, 6],
    [3, 8],
  ]);
  c.truncateFromEnd(9);
  assert.deepEqual(list(c), [
    [2, 6],
    [3, 8],
  ]);
  c.truncateFromEnd(0);
  assert.deepEqual(list(c), []);
});

test('epoch cache: truncateFromStart keeps the epoch holding the new start, moved up to it', () => {
  const base = (): LeaderEpochFileCache => mem([2, 6], [3, 8], [4, 11]);
  let c = base();
  c.truncateFromStart(5);
  assert.deepEqual(list(c), [
    [2, 6],
    [3, 8],
    [4, 11],
  ]);
  c = base();
  c.truncateFromStart(8);
  assert.deepEqual(list(c), [
    [3, 8],
    [4, 11],
  ]);
  c = base();
  c.truncateFromStart(9);
  assert.deepEqual(list(c), [
    [3, 9],
    [4, 11],
  ]);
  c = base();
  c.truncateFromStart(12);
  assert.deepEqual(list(c), [[4, 12]]);
});

test('epoch cache: epochForOffset finds the epoch that wrote an offset', () => {
  const c = mem([1, 5], [3, 10]);
  assert.equal(c.epochForOffset(4), -1);
  assert.equal(c.epochForOffset(5), 1);
  assert.equal(c.epochForOffset(9), 1);
  assert.equal(c.epochForOffset(10), 3);
  assert.equal(c.epochForOffset(1000), 3);
});

test('epoch cache: persisted in Kafka format, read back by a new instance', async () => {
  await withTempDir(async (dir) => {
    const c = new LeaderEpochFileCache(dir);
    c.assign(0, 0);
    c.assign(3, 17);
    assert.equal(c.dirty, true);
    await c.flush();
    assert.equal(c.dirty, false);
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n2\n0 0\n3 17\n');
    const read = await readLeaderEpochCheckpoint(dir);
    assert.equal(read.kind, 'ok');
    const again = new LeaderEpochFileCache(dir, read.kind === 'ok' ? read.entries : []);
    assert.deepEqual(list(again), [
      [0, 0],
      [3, 17],
    ]);
    // Concurrent flushes share the writes and end with the latest state on disk.
    c.assign(5, 20);
    const a = c.flush();
    c.truncateFromEnd(20);
    const b = c.flush();
    await Promise.all([a, b]);
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n2\n0 0\n3 17\n');
  });
});

test('epoch cache: a missing file reads as missing; malformed files read as corrupt', async () => {
  await withTempDir(async (dir) => {
    assert.deepEqual(await readLeaderEpochCheckpoint(dir), { kind: 'missing' });
    await writeFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), '0\n2\n1 5\n');
    assert.equal((await readLeaderEpochCheckpoint(dir)).kind, 'corrupt');
  });
  for (const text of ['', '1\n0\n', '0\nx\n', '0\n1\n1 5 6\n', '0\n1\n-1 5\n', '0\n2\n3 5\n2 6\n', '0\n2\n1 5\n2 5\n', '0\n1\n1 99999999999999999999\n']) {
    assert.equal(parseLeaderEpochCheckpoint(text).kind, 'corrupt', JSON.stringify(text));
  }
  assert.deepEqual(parseLeaderEpochCheckpoint('0\n0\n'), { kind: 'ok', entries: [] });
});
