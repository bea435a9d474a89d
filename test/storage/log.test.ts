import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { PartitionLog } from '../../src/storage/log.js';
import { OffsetOutOfRangeError, StorageError } from '../../src/storage/errors.js';
import { makeBatch, parseBatches, testConfig, withTempDir } from './batch-helper.js';

async function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 64 * 1024) {
  const out = [];
  let offset = from;
  while (offset < log.highWatermark) {
    const bytes = await log.read(offset, maxBytes, log.highWatermark, true);
    assert.ok(bytes.length > 0, `no progress at ${offset}`);
    const batches = parseBatches(bytes);
    out.push(...batches);
    offset = batches[batches.length - 1]!.lastOffset + 1;
  }
  return out;
}

test('append assigns offsets, sets leader epoch, round-trips across segment rolls', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 4096, indexIntervalBytes: 256 }), { cleanShutdown: true });
    let expected = 0;
    for (let i = 0; i < 200; i++) {
      const n = 1 + (i % 5);
      const r = await log.append(makeBatch({ records: n, valueBytes: 100 }), 7);
      assert.equal(r.firstOffset, expected);
      assert.equal(r.lastOffset, expected + n - 1);
      expected += n;
    }
    assert.equal(log.logEndOffset, expected);
    assert.equal(log.highWatermark, expected);
    assert.ok(log.numberOfSegments > 10, `segments: ${log.numberOfSegments}`);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.log'));
    assert.equal(files.length, log.numberOfSegments);
    assert.ok(files.every((f) => /^\d{20}\.log$/.test(f)));
    assert.ok(files.includes('00000000000000000000.log'));
    const batches = await readAll(log);
    assert.equal(batches.length, 200);
    let next = 0;
    for (const b of batches) {
      assert.equal(b.baseOffset, next);
      assert.equal(b.leaderEpoch, 7);
      assert.ok(b.crcOk);
      next = b.lastOffset + 1;
    }
    await log.close();
  });
});

test('concurrent appends are assigned offsets in call order; several batches in one append', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentBytes: 8192 }), { cleanShutdown: true });
    const ps = [];
    for (let i = 0; i < 300; i++) ps.push(log.append(makeBatch({ records: 2, valueBytes: 50, fill: i & 0xff }), 1));
    const multi = Buffer.concat([makeBatch({ records: 3 }), makeBatch({ records: 4 })]);
    ps.push(log.append(multi, 1));
    const rs = await Promise.all(ps);
    rs.slice(0, 300).forEach((r, i) => assert.equal(r.firstOffset, i * 2));
    assert.deepEqual([rs[300]!.firstOffset, rs[300]!.lastOffset], [600, 606]);
    const batches = await readAll(log);
    assert.equal(batches.length, 302);
    assert.deepEqual(batches.slice(-2).map((b) => [b.baseOffset, b.lastOffset]), [[600, 602], [603, 606]]);
    await log.close();
  });
});

test('read honours maxBytes, minOneBatch (KIP-74) and maxOffset', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    const size = makeBatch({ records: 10, valueBytes: 100 }).length;
    for (let i = 0; i < 10; i++) await log.append(makeBatch({ records: 10, valueBytes: 100 }), 0);
    assert.equal((await log.read(0, size - 1, 100, false)).length, 0);
    assert.equal((await log.read(0, size - 1, 100, true)).length, size);
    assert.equal((await log.read(0, 1, 100, true)).length, size);
    assert.deepEqual(parseBatches(await log.read(0, Math.floor(size * 2.5), 100, false)).map((b) => b.baseOffset), [0, 10]);
    // Fetch offset inside a batch returns that whole batch.
    assert.deepEqual(parseBatches(await log.read(15, size, 100, false)).map((b) => b.baseOffset), [10]);
    // maxOffset (the high watermark) stops before a batch that reaches it.
    assert.deepEqual(parseBatches(await log.read(0, 100000, 35, false)).map((b) => b.baseOffset), [0, 10, 20]);
    assert.deepEqual(parseBatches(await log.read(0, 100000, 30, true)).map((b) => b.baseOffset), [0, 10, 20]);
    assert.equal((await log.read(30, 100000, 30, true)).length, 0);
    assert.equal((await log.read(100, 100000, 100, true)).length, 0);
    await assert.rejects(log.read(101, 1000, 200, true), (e: unknown) => e instanceof OffsetOutOfRangeError && e.code === 'OFFSET_OUT_OF_RANGE');
    await assert.rejects(log.read(-1, 1000, 200, true), OffsetOutOfRangeError);
    await log.close();
  });
});

test('readRecords: a large slice that maxBytes cuts ends at the last indexed batch boundary, else inside the batch (Kafka)', async () => {
  await withTempDir(async (dir) => {
    // ~100 KiB batches: each is indexed (index.interval.bytes 4096), and 3 of them pass FILE_RECORDS_MIN_BYTES.
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ indexIntervalBytes: 4096, segmentBytes: 64 << 20 }), { cleanShutdown: true });
    const size = makeBatch({ records: 100, valueBytes: 1000 }).length;
    for (let i = 0; i < 12; i++) await log.append(makeBatch({ records: 100, valueBytes: 1000, fill: i }), 0);
    const slice = async (from: number, maxBytes: number): Promise<Buffer> => {
      const r = await log.readRecords(from, maxBytes, log.highWatermark, true);
      if (Buffer.isBuffer(r)) return r;
      try {
        const out = Buffer.alloc(r.length);
        assert.equal(await r.readInto(out, 0, r.length), r.length);
        return out;
      } finally {
        r.release();
      }
    };
    // 4.6 batches' worth: 4 whole batches, nothing of the fifth.
    const cut = await slice(0, Math.floor(size * 4.6));
    assert.equal(cut.length, 4 * size);
    assert.deepEqual(parseBatches(cut).map((b) => b.baseOffset), [0, 100, 200, 300]);
    // From the middle of a batch: that batch and the next three whole.
    assert.deepEqual(parseBatches(await slice(250, Math.floor(size * 4.2))).map((b) => b.baseOffset), [200, 300, 400, 500]);
    // Exactly on a boundary, and to the end of the log: nothing to trim.
    assert.equal((await slice(0, size * 5)).length, size * 5);
    assert.equal((await slice(600, 1 << 30)).length, size * 6);
    await log.close();
  });
  await withTempDir(async (dir) => {
    // An index too sparse to know a boundary inside the slice: Kafka's partial trailing batch.
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ indexIntervalBytes: 16 << 20, segmentBytes: 64 << 20 }), { cleanShutdown: true });
    const size = makeBatch({ records: 100, valueBytes: 1000 }).length;
    for (let i = 0; i < 6; i++) await log.append(makeBatch({ records: 100, valueBytes: 1000, fill: i }), 0);
    const r = await log.readRecords(0, Math.floor(size * 3.5), log.highWatermark, true);
    assert.ok(!Buffer.isBuffer(r));
    assert.equal(r.length, Math.floor(size * 3.5));
    r.release();
    await log.close();
  });
});

test('index lookups land on the batch holding every offset', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ indexIntervalBytes: 300, segmentBytes: 20000 }), { cleanShutdown: true });
    for (let i = 0; i < 150; i++) await log.append(makeBatch({ records: 1 + (i % 7), valueBytes: 30 + (i % 50) }), 0);
    for (let off = 0; off < log.logEndOffset; off++) {
      const [b] = parseBatches(await log.read(off, 1, log.highWatermark, true));
      assert.ok(b && b.baseOffset <= off && off <= b.lastOffset, `offset ${off} -> ${JSON.stringify(b)}`);
    }
    await log.close();
  });
});

test('findBatchByTimestamp returns the first batch with maxTimestamp >= target; maxTimestampAndOffset', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ indexIntervalBytes: 200, segmentBytes: 3000 }), { cleanShutdown: true });
    const meta: { base: number; maxTs: number }[] = [];
    const base = 1_000_000;
    for (let i = 0; i < 120; i++) {
      // Mostly increasing, with some going back in time.
      const ts = base + i * 100 - (i % 10 === 3 ? 550 : 0);
      const r = await log.append(makeBatch({ records: 3, baseTimestamp: ts, timestampDelta: (j) => j * 10, valueBytes: 40 }), 0);
      meta.push({ base: r.firstOffset, maxTs: ts + 20 });
    }
    const maxTs = Math.max(...meta.map((m) => m.maxTs));
    const check = async (l: PartitionLog) => {
      for (let t = base - 100; t <= base + 120 * 100 + 100; t += 37) {
        const want = meta.find((m) => m.maxTs >= t);
        const got = await l.findBatchByTimestamp(t);
        if (!want) assert.equal(got, null, `t=${t}`);
        else {
          assert.equal(got?.baseOffset, want.base, `t=${t}`);
          assert.equal(parseBatches(got!.batch)[0]!.baseOffset, want.base);
        }
      }
      assert.deepEqual(l.maxTimestampAndOffset(), { timestamp: maxTs, offset: meta.find((m) => m.maxTs === maxTs)!.base });
    };
    await check(log);
    await log.close();
    const reopened = await PartitionLog.open(dir, 't', 0, testConfig({ indexIntervalBytes: 200, segmentBytes: 3000 }), { cleanShutdown: true });
    await check(reopened);
    await reopened.close();
  });
});

test('empty log: reads, timestamps and max timestamp', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    assert.equal(log.logEndOffset, 0);
    assert.equal((await log.read(0, 100, 0, true)).length, 0);
    assert.equal(await log.findBatchByTimestamp(0), null);
    assert.equal(log.maxTimestampAndOffset(), null);
    await log.close();
  });
});

test('invalid appends are rejected with a typed error and do not consume offsets', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    const bad = makeBatch({ records: 1 });
    bad[16] = 1;
    await assert.rejects(log.append(bad, 0), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_RECORD');
    await assert.rejects(log.append(makeBatch({ records: 2 }).subarray(0, 70), 0), StorageError);
    const r = await log.append(makeBatch({ records: 2 }), 0);
    assert.equal(r.firstOffset, 0);
    await log.close();
    await assert.rejects(log.append(makeBatch({ records: 1 }), 0), (e: unknown) => e instanceof StorageError && e.code === 'LOG_CLOSED');
  });
});

test('flush: group commit resolves every caller; flush.messages=1 acks after fsync', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ flushMessages: 1 }), { cleanShutdown: true });
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      ps.push(log.append(makeBatch({ records: 2 }), 0));
      if (i % 5 === 0) ps.push(log.flush());
    }
    await Promise.all(ps);
    await log.flush();
    assert.equal(log.unflushedMessages, 0);
    assert.equal(log.logEndOffset, 100);
    await log.close();
  });
});

test('segment.ms rolls by the injected clock', async () => {
  await withTempDir(async (dir) => {
    let now = 1_000_000;
    const log = await PartitionLog.open(dir, 't', 0, testConfig({ segmentMs: 1000 }), { cleanShutdown: true, clock: () => now });
    await log.append(makeBatch({ records: 1 }), 0);
    now += 500;
    await log.append(makeBatch({ records: 1 }), 0);
    assert.equal(log.numberOfSegments, 1);
    now += 600;
    await log.append(makeBatch({ records: 1 }), 0);
    assert.equal(log.numberOfSegments, 2);
    assert.ok((await readdir(dir)).includes('00000000000000000002.log'));
    await log.close();
  });
});
