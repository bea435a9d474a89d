/**
 * kill -9 of a process storing a leader's log with appendAsFollower: after recovery the log is a
 * valid prefix of the leader's (same offsets, epochs and bytes), holds every fsynced offset, and
 * its leader epoch cache is exactly what the surviving batches say — also when the checkpoint is
 * deleted and rebuilt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PartitionLog } from '../../src/storage/log.js';
import { LEADER_EPOCH_CHECKPOINT_FILE } from '../../src/storage/leader-epoch-cache.js';
import { runWriterUntilKilled, testConfig, withTempDir } from './batch-helper.js';
import { leaderEpochOfBatch, leaderLogBatch } from './fixtures/leader-log.js';

const writer = fileURLToPath(new URL('./fixtures/follower-writer.js', import.meta.url));

function runUntilKilled(dir: string, segmentBytes: number, acked: number): Promise<number> {
  return runWriterUntilKilled(writer, [dir, String(segmentBytes)], acked, 30 + Math.floor(Math.random() * 100));
}

/** Checks the log against the leader log; returns the epoch entries its batches imply. */
async function checkPrefix(log: PartitionLog): Promise<Array<[number, number]>> {
  const expected: Array<[number, number]> = [];
  let i = 0;
  let offset = 0;
  while (offset < log.logEndOffset) {
    const bytes = await log.read(offset, 1 << 20, log.logEndOffset, true);
    assert.ok(bytes.length > 0, `gap at ${offset}`);
    for (let at = 0; at < bytes.length; ) {
      const want = leaderLogBatch(i, offset);
      const got = bytes.subarray(at, at + want.buf.length);
      assert.ok(got.equals(want.buf), `batch ${i} at offset ${offset} differs from the leader's`);
      const epoch = leaderEpochOfBatch(i);
      if (expected.length === 0 || expected[expected.length - 1]![0] !== epoch) expected.push([epoch, offset]);
      at += want.buf.length;
      offset += want.records;
      i++;
    }
  }
  assert.equal(offset, log.logEndOffset);
  return expected;
}

for (const round of [1, 2]) {
  test(`kill -9 during follower appends: a valid prefix of the leader log survives with its epoch cache (round ${round})`, { timeout: 90_000 }, async () => {
    await withTempDir(async (dir) => {
      let acked = -1;
      for (let run = 0; run < 2; run++) acked = await runUntilKilled(dir, 16384 * round, acked);
      const cfg = testConfig({ segmentBytes: 16384 * round, indexIntervalBytes: 1024 });
      let log = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: false });
      assert.ok(log.logEndOffset > acked, `LEO ${log.logEndOffset} must exceed acked ${acked}`);
      const expected = await checkPrefix(log);
      assert.ok(expected.length >= 2, `several epochs written: ${JSON.stringify(expected)}`);
      assert.deepEqual(log.leaderEpochCache.entries().map((e) => [e.epoch, e.startOffset]), expected);
      await log.close();
      await rm(join(dir, LEADER_EPOCH_CHECKPOINT_FILE));
      log = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: true });
      assert.deepEqual(log.leaderEpochCache.entries().map((e) => [e.epoch, e.startOffset]), expected, 'rebuilt from the batches');
      await log.close();
    });
  });
}
