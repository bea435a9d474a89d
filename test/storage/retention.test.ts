import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { PartitionLog } from '../../src/storage/log.js';
import { OffsetOutOfRangeError } from '../../src/storage/errors.js';
import { makeBatch, parseBatches, testConfig, withTempDir } from './batch-helper.js';

const segFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();

test('retention.ms deletes old segments (never the active one) and advances the log start offset', async () => {
  await withTempDir(async (dir) => {
    let now = 10_000_000;
    const config = testConfig({ segmentBytes: 2048, retentionMs: 60_000 });
    const log = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true, clock: () => now });
    // 40 batches with timestamps 1s apart; each segment holds a few.
    for (let i = 0; i < 40; i++) await log.append(makeBatch({ records: 2, valueBytes: 100, baseTimestamp: now + i * 1000, timestampDelta: () => 0 }), 0);
    const before = log.numberOfSegments;
    assert.ok(before > 5);
    assert.equal(await log.applyRetention(now + 30_000), 0);
    // At now+80s, batches with ts < now+20s are expired: segments wholly below go.
    const deleted = await log.applyRetention(now + 80_000);
    assert.ok(deleted > 0);
    assert.equal(log.numberOfSegments, before - deleted);
    assert.equal((await segFiles(dir)).length, log.numberOfSegments);
    assert.ok(log.logStartOffset > 0);
    // The first kept segment still holds a batch inside the retention window; the one before did not.
    const firstSeg = parseBatches(await log.read(log.logStartOffset, 2048, log.highWatermark, true));
    assert.ok(firstSeg[firstSeg.length - 1]!.maxTimestamp >= now + 20_000);
    assert.ok(firstSeg[0]!.maxTimestamp < now + 20_000 + 10_000);
    await assert.rejects(log.read(0, 100, log.highWatermark, true), OffsetOutOfRangeError);
    // Everything expired: all but the active segment go.
    await log.applyRetention(now + 10_000_000);
    assert.equal(log.numberOfSegments, 1);
    assert.equal((await segFiles(dir)).length, 1);
    const lso = log.logStartOffset;
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true, clock: () => now });
    assert.equal(again.logStartOffset, lso);
    await again.close();
  });
});

test('retention.bytes keeps the newest segments within the limit', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 2048, retentionBytes: 5000 }), { cleanShutdown: true });
    for (let i = 0; i < 60; i++) await log.append(makeBatch({ records: 1, valueBytes: 200 }), 0);
    const deleted = await log.applyRetention(Date.now());
    assert.ok(deleted > 0);
    assert.ok(log.sizeInBytes <= 5000 + 2048, `size ${log.sizeInBytes}`);
    assert.ok(log.sizeInBytes > 5000 - 2048);
    assert.equal((await segFiles(dir)).length, log.numberOfSegments);
    assert.equal(log.logStartOffset, Number((await segFiles(dir))[0]!.slice(0, 20)));
    await log.close();
  });
});

test('deleteRecordsBefore moves the log start offset, deletes whole segments below it, survives restart', async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 2048 });
    const log = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true });
    for (let i = 0; i < 50; i++) await log.append(makeBatch({ records: 3, valueBytes: 100 }), 0);
    const segs = log.numberOfSegments;
    assert.equal(await log.deleteRecordsBefore(61), 61);
    assert.equal(log.logStartOffset, 61);
    assert.ok(log.numberOfSegments < segs);
    // Reading at the new start returns the batch holding it.
    const [b] = parseBatches(await log.read(61, 1, log.highWatermark, true));
    assert.deepEqual([b!.baseOffset, b!.lastOffset], [60, 62]);
    await assert.rejects(log.read(60, 1, log.highWatermark, true), OffsetOutOfRangeError);
    await assert.rejects(log.deleteRecordsBefore(log.highWatermark + 1), OffsetOutOfRangeError);
    assert.equal(await log.deleteRecordsBefore(10), 61);
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true });
    assert.equal(again.logStartOffset, 61);
    // Delete everything: the active segment is rolled and removed; appends continue at the end.
    assert.equal(await again.deleteRecordsBefore(again.logEndOffset), 150);
    assert.equal(again.numberOfSegments, 1);
    assert.equal(again.sizeInBytes, 0);
    assert.equal((await again.append(makeBatch({ records: 1 }), 0)).firstOffset, 150);
    await again.close();
  });
});

test('truncateTo removes everything at and above the offset (whole batches), across segments', async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 2048, indexIntervalBytes: 200 });
    const log = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true });
    for (let i = 0; i < 60; i++) await log.append(makeBatch({ records: 2, valueBytes: 100, baseTimestamp: 1000 + i }), 0);
    const segs = log.numberOfSegments;
    await log.truncateTo(120); // no-op
    assert.equal(log.logEndOffset, 120);
    await log.truncateTo(51); // inside batch [50, 51]: the whole batch goes
    assert.equal(log.logEndOffset, 50);
    assert.equal(log.highWatermark, 50);
    assert.ok(log.numberOfSegments < segs);
    assert.equal(log.maxTimestampAndOffset()?.offset, 48);
    assert.equal((await log.findBatchByTimestamp(1024))?.baseOffset, 46);
    assert.equal((await log.findBatchByTimestamp(1025))?.baseOffset, 48);
    assert.equal(await log.findBatchByTimestamp(1026), null);
    const r = await log.append(makeBatch({ records: 5 }), 2);
    assert.equal(r.firstOffset, 50);
    for (let off = 0; off < 55; off++) {
      const [b] = parseBatches(await log.read(off, 1, log.highWatermark, true));
      assert.ok(b!.baseOffset <= off && off <= b!.lastOffset && b!.crcOk);
    }
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true });
    assert.equal(again.logEndOffset, 55);
    // Truncate below the log start offset: the log restarts there.
    await again.deleteRecordsBefore(20);
    await again.truncateTo(10);
    assert.deepEqual([again.logStartOffset, again.logEndOffset, again.numberOfSegments], [10, 10, 1]);
    assert.equal((await again.append(makeBatch({ records: 1 }), 0)).firstOffset, 10);
    await again.close();
    const third = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: false });
    assert.deepEqual([third.logStartOffset, third.logEndOffset], [10, 11]);
    await third.delete();
  });
});
