/**
 * Storage for replication: appendAsFollower, the leader epoch cache kept by PartitionLog (leader
 * appends, loading, rebuilding, truncation, log start), the high watermark API and its
 * `replication-offset-checkpoint`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PartitionLog } from '../../src/storage/log.js';
import { LogManager } from '../../src/storage/log-manager.js';
import { StorageError } from '../../src/storage/errors.js';
import { LEADER_EPOCH_CHECKPOINT_FILE } from '../../src/storage/leader-epoch-cache.js';
import { REPLICATION_OFFSET_CHECKPOINT_FILE } from '../../src/storage/checkpoint.js';
import { leaderBatch, makeBatch, parseBatches, testConfig, withTempDir } from './batch-helper.js';

const epochs = (log: PartitionLog): Array<[number, number]> => log.leaderEpochCache.entries().map((e) => [e.epoch, e.startOffset]);

async function readBatches(log: PartitionLog, from = log.logStartOffset) {
  const out = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const bytes = await log.read(offset, 1 << 20, log.logEndOffset, true);
    if (bytes.length === 0) break;
    const batches = parseBatches(bytes);
    out.push(...batches);
    offset = batches[batches.length - 1]!.lastOffset + 1;
  }
  return out;
}

/** Four leader batches: epoch 1 at 0..2 and 3..4, epoch 2 at 5..7, epoch 3 at 8..9. */
const fourBatches = (): Buffer[] => [
  leaderBatch({ records: 3, baseOffset: 0, leaderEpoch: 1 }),
  leaderBatch({ records: 2, baseOffset: 3, leaderEpoch: 1 }),
  leaderBatch({ records: 3, baseOffset: 5, leaderEpoch: 2 }),
  leaderBatch({ records: 2, baseOffset: 8, leaderEpoch: 3 }),
];

test('appendAsFollower keeps the offsets and partition leader epochs it is given, and fills the epoch cache', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 300, indexIntervalBytes: 64 }), { cleanShutdown: true });
    log.autoAdvanceHighWatermark = false;
    const [a, b, c, d] = fourBatches();
    const r1 = await log.appendAsFollower(Buffer.concat([a!, b!]));
    assert.deepEqual([r1.firstOffset, r1.lastOffset], [0, 4]);
    const r2 = await log.appendAsFollower(Buffer.concat([c!, d!]));
    assert.deepEqual([r2.firstOffset, r2.lastOffset], [5, 9]);
    assert.equal(log.logEndOffset, 10);
    assert.equal(log.highWatermark, 0, 'a follower does not move its high watermark by appending');
    assert.ok(log.numberOfSegments > 1, 'rolled like a leader append');
    const stored = await readBatches(log);
    assert.deepEqual(
      stored.map((x) => [x.baseOffset, x.lastOffset, x.leaderEpoch, x.crcOk]),
      [
        [0, 2, 1, true],
        [3, 4, 1, true],
        [5, 7, 2, true],
        [8, 9, 3, true],
      ],
    );
    assert.deepEqual(epochs(log), [
      [1, 0],
      [2, 5],
      [3, 8],
    ]);
    assert.deepEqual(log.leaderEpochCache.endOffsetFor(2, log.logEndOffset), { epoch: 2, endOffset: 8 });
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n3\n1 0\n2 5\n3 8\n');
    await log.close();
    // A clean reopen reads the checkpoint.
    const again = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 300, indexIntervalBytes: 64 }), { cleanShutdown: true });
    assert.deepEqual(epochs(again), epochs(log));
    assert.equal(again.logEndOffset, 10);
    await again.close();
  });
});

test('appendAsFollower refuses an append below the log end offset, decreasing offsets and bad CRCs, and the log keeps working', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    const [a, b, c] = fourBatches();
    await log.appendAsFollower(Buffer.concat([a!, b!]));
    await assert.rejects(log.appendAsFollower(leaderBatch({ records: 1, baseOffset: 4, leaderEpoch: 1 })), (e: unknown) => e instanceof StorageError && e.code === 'UNEXPECTED_APPEND_OFFSET');
    await assert.rejects(log.appendAsFollower(Buffer.concat([c!, leaderBatch({ records: 1, baseOffset: 6, leaderEpoch: 2 })])), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_RECORD');
    const corrupt = Buffer.from(c!);
    corrupt[corrupt.length - 1]! ^= 0xff;
    await assert.rejects(log.appendAsFollower(corrupt), (e: unknown) => e instanceof StorageError && e.code === 'CORRUPT_MESSAGE');
    await assert.rejects(log.appendAsFollower(c!.subarray(0, 40)), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_RECORD');
    // Two appends racing for the same offsets: the second is refused when its turn comes.
    const first = log.appendAsFollower(c!);
    const second = log.appendAsFollower(leaderBatch({ records: 1, baseOffset: 5, leaderEpoch: 2 }));
    assert.deepEqual((await first).lastOffset, 7);
    await assert.rejects(second, (e: unknown) => e instanceof StorageError && e.code === 'UNEXPECTED_APPEND_OFFSET');
    // A gap (a compacted leader log) is accepted.
    const gap = await log.appendAsFollower(leaderBatch({ records: 2, baseOffset: 12, leaderEpoch: 4 }));
    assert.deepEqual([gap.firstOffset, gap.lastOffset, log.logEndOffset], [12, 13, 14]);
    const fromGap = parseBatches(await log.read(8, 1 << 20, 14, true));
    assert.deepEqual(
      fromGap.map((x) => x.baseOffset),
      [12],
    );
    assert.deepEqual(epochs(log), [
      [1, 0],
      [2, 5],
      [4, 12],
    ]);
    await log.close();
  });
});

test('appendAsFollower takes the leader producer state without sequence checks; the state then guards leader appends', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    // Sequence 7 first: a client append would get UNKNOWN_PRODUCER_ID, a follower takes it.
    await log.appendAsFollower(leaderBatch({ records: 2, baseOffset: 0, leaderEpoch: 1, producerId: 42, producerEpoch: 3, baseSequence: 7 }));
    // Several producer batches in one follower append are fine too.
    await log.appendAsFollower(
      Buffer.concat([
        leaderBatch({ records: 1, baseOffset: 2, leaderEpoch: 1, producerId: 42, producerEpoch: 3, baseSequence: 9 }),
        leaderBatch({ records: 1, baseOffset: 3, leaderEpoch: 1, producerId: 43, producerEpoch: 0, baseSequence: 0 }),
      ]),
    );
    const e = log.producerState.producers.get(42)!;
    assert.equal(e.epoch, 3);
    assert.deepEqual(e.batches.map((m) => [m.firstSeq, m.lastSeq, m.firstOffset]), [
      [7, 8, 0],
      [9, 9, 2],
    ]);
    // This replica becomes leader: a retry of sequence 9 is a duplicate, 10 follows, 12 is out of order.
    const dup = await log.append(leaderBatch({ records: 1, baseOffset: 0, leaderEpoch: 2, producerId: 42, producerEpoch: 3, baseSequence: 9 }), 2);
    assert.deepEqual([dup.duplicate, dup.firstOffset], [true, 2]);
    const next = await log.append(leaderBatch({ records: 1, baseOffset: 0, leaderEpoch: 2, producerId: 42, producerEpoch: 3, baseSequence: 10 }), 2);
    assert.equal(next.firstOffset, 4);
    await assert.rejects(
      log.append(leaderBatch({ records: 1, baseOffset: 0, leaderEpoch: 2, producerId: 42, producerEpoch: 3, baseSequence: 12 }), 2),
      (err: unknown) => err instanceof StorageError && err.code === 'OUT_OF_ORDER_SEQUENCE_NUMBER',
    );
    assert.deepEqual(epochs(log), [
      [1, 0],
      [2, 4],
    ]);
    await log.close();
  });
});

test('leader appends assign their epoch at its first offset; assignEpochStartOffset marks a new epoch at the log end', async () => {
  await withTempDir(async (dir) => {
    const cfg = testConfig({ segmentBytes: 400 });
    const log = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: true });
    await log.append(makeBatch({ records: 3 }), 3);
    await log.append(makeBatch({ records: 2 }), 3);
    assert.deepEqual(epochs(log), [[3, 0]]);
    await log.append(makeBatch({ records: 2 }), 5);
    await log.append(makeBatch({ records: 2 }), 5);
    assert.deepEqual(epochs(log), [
      [3, 0],
      [5, 5],
    ]);
    // A stale epoch does not erase the newer one.
    await log.append(makeBatch({ records: 1 }), 4);
    assert.deepEqual(epochs(log), [
      [3, 0],
      [5, 5],
    ]);
    await log.assignEpochStartOffset(7);
    assert.deepEqual(epochs(log), [
      [3, 0],
      [5, 5],
      [7, 10],
    ]);
    assert.deepEqual(log.leaderEpochCache.endOffsetFor(5, log.logEndOffset), { epoch: 5, endOffset: 10 });
    assert.deepEqual(log.leaderEpochCache.endOffsetFor(6, log.logEndOffset), { epoch: 5, endOffset: 10 });
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n3\n3 0\n5 5\n7 10\n');
    await log.close();

    // Missing checkpoint: rebuilt from the batches (epoch 7 wrote nothing, so it is not there), and written.
    await rm(join(dir, LEADER_EPOCH_CHECKPOINT_FILE));
    let again = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: true });
    assert.deepEqual(epochs(again), [
      [3, 0],
      [5, 5],
    ]);
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n2\n3 0\n5 5\n');
    await again.close();

    // Corrupt checkpoint: rebuilt the same way.
    await writeFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), '0\n5\ngarbage');
    again = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: true });
    assert.deepEqual(epochs(again), [
      [3, 0],
      [5, 5],
    ]);
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n2\n3 0\n5 5\n');
    await again.close();
  });
});

test('truncateTo drops whole batches, truncates the epoch cache and rebuilds producer state', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 250 }), { cleanShutdown: true });
    log.autoAdvanceHighWatermark = false;
    await log.appendAsFollower(Buffer.concat(fourBatches()));
    await log.appendAsFollower(leaderBatch({ records: 2, baseOffset: 10, leaderEpoch: 3, producerId: 9, producerEpoch: 0, baseSequence: 0 }));
    assert.ok(log.producerState.producers.has(9));
    log.updateHighWatermark(9);
    await log.truncateTo(8);
    assert.equal(log.logEndOffset, 8);
    assert.equal(log.highWatermark, 8, 'the high watermark falls with the log end');
    assert.equal(log.producerState.producers.has(9), false, 'the producer of the truncated batch is gone');
    assert.deepEqual(epochs(log), [
      [1, 0],
      [2, 5],
    ]);
    // 6 is inside the batch 5..7: the whole batch goes.
    await log.truncateTo(6);
    assert.equal(log.logEndOffset, 5);
    assert.deepEqual(epochs(log), [[1, 0]]);
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n1\n1 0\n');
    // The follower fetches again from the leader's diverging point.
    await log.appendAsFollower(leaderBatch({ records: 4, baseOffset: 5, leaderEpoch: 4 }));
    assert.deepEqual(epochs(log), [
      [1, 0],
      [4, 5],
    ]);
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 250 }), { cleanShutdown: true });
    assert.deepEqual(epochs(again), [
      [1, 0],
      [4, 5],
    ]);
    assert.deepEqual(
      (await readBatches(again)).map((b) => [b.baseOffset, b.leaderEpoch]),
      [
        [0, 1],
        [3, 1],
        [5, 4],
      ],
    );
    await again.close();
  });
});

test('truncateFullyAndStartAt restarts the log empty at an offset; the follower continues from there', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    log.autoAdvanceHighWatermark = false;
    await log.appendAsFollower(Buffer.concat(fourBatches()));
    await log.appendAsFollower(leaderBatch({ records: 1, baseOffset: 10, leaderEpoch: 3, producerId: 9, producerEpoch: 0, baseSequence: 0 }));
    await log.close();
    const reopened = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    reopened.autoAdvanceHighWatermark = false;
    await reopened.truncateFullyAndStartAt(100);
    assert.deepEqual([reopened.logStartOffset, reopened.logEndOffset, reopened.highWatermark], [100, 100, 100]);
    assert.deepEqual(epochs(reopened), []);
    assert.equal(reopened.producerState.producers.size, 0);
    await reopened.appendAsFollower(leaderBatch({ records: 2, baseOffset: 100, leaderEpoch: 6 }));
    assert.deepEqual(epochs(reopened), [[6, 100]]);
    await reopened.close();
    const again = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    assert.deepEqual([again.logStartOffset, again.logEndOffset], [100, 102]);
    assert.equal(again.producerState.producers.size, 0, 'no producer snapshot of the old log survives');
    assert.deepEqual(epochs(again), [[6, 100]]);
    await again.close();
  });
});

test('recovery after a torn tail truncates the epoch cache with the log', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    await log.appendAsFollower(Buffer.concat(fourBatches()));
    await log.close();
    // Cut the last batch (epoch 3, offsets 8..9) in half, as a crash mid-write would.
    const segPath = join(dir, '00000000000000000000.log');
    const size = (await stat(segPath)).size;
    const last = fourBatches()[3]!.length;
    const fh = await open(segPath, 'r+');
    await fh.truncate(size - Math.floor(last / 2));
    await fh.close();
    const again = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: false });
    assert.equal(again.logEndOffset, 8);
    assert.deepEqual(epochs(again), [
      [1, 0],
      [2, 5],
    ]);
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n2\n1 0\n2 5\n');
    await again.close();
  });
});

test('DeleteRecords and retention move the epoch cache start with the log start offset', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 200 }), { cleanShutdown: true });
    await log.appendAsFollower(Buffer.concat(fourBatches()));
    log.updateHighWatermark(10);
    assert.equal(await log.deleteRecordsBefore(6), 6);
    assert.deepEqual(epochs(log), [
      [2, 6],
      [3, 8],
    ]);
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 200 }), { cleanShutdown: true });
    assert.deepEqual(epochs(again), [
      [2, 6],
      [3, 8],
    ]);
    await again.close();
  });
});

test('high watermark: updateHighWatermark only moves forward, up to the log end; setHighWatermark initialises it', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    assert.equal(log.autoAdvanceHighWatermark, true);
    await log.append(makeBatch({ records: 5 }), 0);
    assert.equal(log.highWatermark, 5, 'single broker: follows the log end');
    log.autoAdvanceHighWatermark = false;
    assert.equal(log.highWatermark, 5, 'turned off after appends: keeps the current one');
    await log.append(makeBatch({ records: 5 }), 0);
    assert.equal(log.highWatermark, 5);
    assert.equal(log.updateHighWatermark(7), 7);
    assert.equal(log.updateHighWatermark(6), 7, 'never backwards');
    assert.equal(log.updateHighWatermark(50), 10, 'clamped to the log end');
    log.setHighWatermark(3);
    assert.equal(log.highWatermark, 3);
    assert.equal(log.lastStableOffset, 3);
    assert.equal((await log.read(0, 1 << 20, log.highWatermark, true)).length, 0, 'the batch 0..4 is not wholly below it');
    log.autoAdvanceHighWatermark = true;
    assert.equal(log.highWatermark, 10);
    await log.close();
  });
});

test('replication-offset-checkpoint: written at shutdown (Kafka format), a replicated log restarts from it, not from its log end', async () => {
  await withTempDir(async (dataDir) => {
    const m1 = new LogManager(dataDir, { retentionCheckIntervalMs: 60_000 });
    await m1.startup();
    const a = await m1.getOrCreateLog('orders', 0, testConfig());
    const b = await m1.getOrCreateLog('orders', 1, testConfig());
    a.autoAdvanceHighWatermark = false;
    await a.appendAsFollower(Buffer.concat(fourBatches()));
    a.updateHighWatermark(5);
    await b.append(makeBatch({ records: 4 }), 0);
    await m1.shutdown();
    const text = await readFile(join(dataDir, REPLICATION_OFFSET_CHECKPOINT_FILE), 'utf8');
    const lines = text.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['0', '2']);
    assert.deepEqual(lines.slice(2).sort(), ['orders 0 5', 'orders 1 4']);

    const m2 = new LogManager(dataDir, { retentionCheckIntervalMs: 60_000 });
    await m2.startup();
    const a2 = await m2.getOrCreateLog('orders', 0, testConfig());
    assert.equal(a2.logEndOffset, 10);
    assert.equal(a2.highWatermark, 10, 'auto-advancing until replication takes it over');
    a2.autoAdvanceHighWatermark = false;
    assert.equal(a2.highWatermark, 5, 'a replicated log starts from its checkpointed high watermark');
    // A log without an entry starts from its log start offset; one deleted loses its entry.
    await m2.deleteLog('orders', 1);
    const c = await m2.getOrCreateLog('fresh', 0, testConfig());
    await c.append(makeBatch({ records: 2 }), 0);
    await m2.checkpointHighWatermarks();
    const text2 = await readFile(join(dataDir, REPLICATION_OFFSET_CHECKPOINT_FILE), 'utf8');
    assert.deepEqual(text2.trimEnd().split('\n').slice(2).sort(), ['fresh 0 2', 'orders 0 5']);
    await m2.shutdown();

    await rm(join(dataDir, REPLICATION_OFFSET_CHECKPOINT_FILE));
    const m3 = new LogManager(dataDir, { retentionCheckIntervalMs: 60_000 });
    await m3.startup();
    const a3 = await m3.getOrCreateLog('orders', 0, testConfig());
    a3.autoAdvanceHighWatermark = false;
    assert.equal(a3.highWatermark, 0, 'no checkpoint: the log start offset');
    await m3.shutdown();
  });
});

test('replication-offset-checkpoint: written periodically when a high watermark moved', async () => {
  await withTempDir(async (dataDir) => {
    const m = new LogManager(dataDir, { retentionCheckIntervalMs: 60_000, highWatermarkCheckpointIntervalMs: 20 });
    await m.startup();
    const log = await m.getOrCreateLog('t', 0, testConfig());
    await log.append(makeBatch({ records: 3 }), 0);
    const path = join(dataDir, REPLICATION_OFFSET_CHECKPOINT_FILE);
    const deadline = Date.now() + 10_000;
    let text = '';
    while (!text.includes('t 0 3')) {
      assert.ok(Date.now() < deadline, `checkpoint not written: ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 10));
      text = await readFile(path, 'utf8').catch(() => '');
    }
    assert.equal(text, '0\n1\nt 0 3\n');
    await m.shutdown();
  });
});

test('truncateTo at the log end drops an epoch entry that wrote nothing (a leadership that ended before appending)', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    await log.appendAsFollower(leaderBatch({ records: 1, baseOffset: 0, leaderEpoch: 0 }));
    // Led epoch 1 briefly: its start is the log end, nothing written.
    await log.assignEpochStartOffset(1);
    assert.deepEqual(epochs(log), [
      [0, 0],
      [1, 1],
    ]);
    // The new leader (epoch 2) says epoch 0 ends at 1: nothing to cut, but epoch 1 must go.
    await log.truncateTo(1);
    assert.equal(log.logEndOffset, 1);
    assert.deepEqual(epochs(log), [[0, 0]]);
    assert.equal(log.leaderEpochCache.latestEpoch(), 0, 'the next fetch names epoch 0, which the leader knows');
    assert.equal(await readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8'), '0\n1\n0 0\n');
    await log.close();
  });
});

test('recoveryPoint: the offset below which the log is fsynced (flush, roll, truncation, reopen)', async () => {
  await withTempDir(async (dir) => {
    const cfg = testConfig({ segmentBytes: 300 });
    const log = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: true });
    assert.equal(log.recoveryPoint, 0);
    await log.append(makeBatch({ records: 2 }), 0);
    assert.equal(log.recoveryPoint, 0, 'appended, not yet fsynced');
    await log.flush();
    assert.equal(log.recoveryPoint, 2);
    // Rolls fsync the segments they close.
    for (let i = 0; i < 6; i++) await log.append(makeBatch({ records: 2, valueBytes: 60 }), 0);
    assert.ok(log.numberOfSegments > 1);
    assert.ok(log.recoveryPoint > 2 && log.recoveryPoint < log.logEndOffset, `recovery point ${log.recoveryPoint} of ${log.logEndOffset}`);
    await log.flush();
    assert.equal(log.recoveryPoint, log.logEndOffset);
    await log.truncateTo(5);
    assert.equal(log.recoveryPoint, log.logEndOffset);
    assert.ok(log.logEndOffset <= 5);
    await log.append(makeBatch({ records: 3 }), 1);
    assert.ok(log.recoveryPoint < log.logEndOffset);
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, cfg, { cleanShutdown: true });
    assert.equal(again.recoveryPoint, again.logEndOffset, 'what a reopened log holds is on disk');
    await again.truncateFullyAndStartAt(40);
    assert.equal(again.recoveryPoint, 40);
    await again.close();
  });
});
