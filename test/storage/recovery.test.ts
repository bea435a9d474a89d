import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import fs, { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PartitionLog, type LogConfig } from '../../src/storage/log.js';
import { makeBatch, parseBatches, testConfig, withTempDir } from './batch-helper.js';

const CONFIG = testConfig({ segmentBytes: 16 * 1024, indexIntervalBytes: 500 });

/** Append `n` batches of 1..4 records; returns [base, last, size] per batch. */
async function fill(log: PartitionLog, n: number): Promise<{ base: number; last: number }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await log.append(makeBatch({ records: 1 + (i % 4), valueBytes: 90, baseTimestamp: 1_000_000 + i * 10 }), 3);
    out.push({ base: r.firstOffset, last: r.lastOffset });
  }
  return out;
}

async function verify(log: PartitionLog, expected: { base: number; last: number }[], config: LogConfig = CONFIG): Promise<void> {
  assert.equal(log.logEndOffset, expected.length ? expected[expected.length - 1]!.last + 1 : 0);
  // Every offset lands on its batch through the (possibly rebuilt) index.
  for (const e of expected) {
    for (const off of [e.base, e.last]) {
      const [b] = parseBatches(await log.read(off, 1, log.highWatermark, true));
      assert.deepEqual([b!.baseOffset, b!.lastOffset, b!.crcOk], [e.base, e.last, true], `offset ${off}`);
    }
  }
  for (const e of expected.filter((_, i) => i % 7 === 0)) {
    const idx = expected.indexOf(e);
    const got = await log.findBatchByTimestamp(1_000_000 + idx * 10);
    assert.equal(got?.baseOffset, e.base);
  }
  void config;
}

/** The `.log` file names in `dir`, in offset order. */
const segmentLogs = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
/** The base offset a segment file is named by. */
const baseOffsetOf = (name: string): number => Number(name.slice(0, 20));

async function lastSegment(dir: string): Promise<string> {
  const logs = await segmentLogs(dir);
  return join(dir, logs[logs.length - 1]!);
}

test('clean restart keeps everything and appends continue', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 300);
    const maxTs = log.maxTimestampAndOffset();
    await log.close();
    const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    await verify(again, batches);
    assert.deepEqual(again.maxTimestampAndOffset(), maxTs);
    const r = await again.append(makeBatch({ records: 2 }), 4);
    assert.equal(r.firstOffset, batches[batches.length - 1]!.last + 1);
    await again.close();
  });
});

test('unclean restart (files copied while the log is open) recovers every written batch', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    const copy = join(dir, 'copy');
    const log = await PartitionLog.open(src, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 250);
    await log.flush();
    await cp(src, copy, { recursive: true });
    await log.close();
    const recovered = await PartitionLog.open(copy, 't', 0, CONFIG, { cleanShutdown: false });
    await verify(recovered, batches);
    await recovered.close();
  });
});

for (const cleanShutdown of [false, true]) {
  test(`truncated tail (cut mid-batch) is removed; every whole batch survives (cleanShutdown=${cleanShutdown})`, async () => {
    await withTempDir(async (dir) => {
      const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
      const batches = await fill(log, 200);
      await log.close();
      const path = await lastSegment(dir);
      const size = (await stat(path)).size;
      await truncate(path, size - 37);
      const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown });
      await verify(again, batches.slice(0, -1));
      const last = batches[batches.length - 1]!;
      assert.equal(again.logEndOffset, last.base);
      // The file is cut at the last whole batch and appends continue from there.
      const onDisk = parseBatches(await readFile(path));
      assert.ok(onDisk.length > 0 && onDisk.every((b) => b.crcOk));
      assert.equal(onDisk[onDisk.length - 1]!.lastOffset, last.base - 1);
      const r = await again.append(makeBatch({ records: 1 }), 3);
      assert.equal(r.firstOffset, last.base);
      await again.close();
    });
  });
}

test('corrupted byte in the last batch: truncated at that batch', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 120);
    await log.close();
    const path = await lastSegment(dir);
    const data = await readFile(path);
    data[data.length - 20] ^= 0xff;
    await writeFile(path, data);
    const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: false });
    await verify(again, batches.slice(0, -1));
    await again.close();
  });
});

test('corrupted batch in the middle of the active segment: truncated there', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: true });
    const batches = await fill(log, 50);
    await log.close();
    const path = join(dir, '00000000000000000000.log');
    const data = await readFile(path);
    // Find batch 30's position and flip a byte in its records.
    let pos = 0;
    for (let i = 0; i < 30; i++) pos += data.readInt32BE(pos + 8) + 12;
    data[pos + 70] ^= 0x01;
    await writeFile(path, data);
    const again = await PartitionLog.open(dir, 't', 0, testConfig(), { cleanShutdown: false });
    await verify(again, batches.slice(0, 30), testConfig());
    await again.close();
  });
});

test('zero-filled tail (size extended without data) is truncated', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 60);
    await log.close();
    const path = await lastSegment(dir);
    const size = (await stat(path)).size;
    await truncate(path, size + 4096);
    const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: false });
    await verify(again, batches);
    assert.equal((await stat(path)).size, size);
    await again.close();
  });
});

test('deleted .index and .timeindex files are rebuilt and lookups stay correct', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 300);
    await log.close();
    const before = new Map<string, Buffer>();
    for (const f of await readdir(dir)) if (/index$/.test(f)) before.set(f, await readFile(join(dir, f)));
    assert.ok(before.size >= 4);
    for (const f of before.keys()) await rm(join(dir, f));
    const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    await verify(again, batches);
    for (const f of before.keys()) assert.ok(existsSync(join(dir, f)), `${f} rebuilt`);
    // Rebuilt offset indexes match what the append path wrote.
    for (const [f, data] of before) if (f.endsWith('.index')) assert.deepEqual(await readFile(join(dir, f)), data, f);
    await again.close();
  });
});

test('corrupt index files (bad size, non-monotonic, beyond the log) are rebuilt', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 300);
    await log.close();
    const indexes = (await readdir(dir)).filter((f) => f.endsWith('.index')).sort();
    const timeIndexes = (await readdir(dir)).filter((f) => f.endsWith('.timeindex')).sort();
    // 1: size not a multiple of 8.
    await writeFile(join(dir, indexes[0]!), Buffer.concat([await readFile(join(dir, indexes[0]!)), Buffer.from([1, 2, 3])]));
    // 2: entries out of order.
    const b1 = await readFile(join(dir, indexes[1]!));
    assert.ok(b1.length >= 16);
    b1.copy(b1, 0, b1.length - 8);
    await writeFile(join(dir, indexes[1]!), b1);
    // 3: a position beyond the end of the log / pointing at no batch.
    const b2 = await readFile(join(dir, indexes[2]!));
    b2.writeInt32BE(b2.readInt32BE(b2.length - 4) + 3, b2.length - 4);
    await writeFile(join(dir, indexes[2]!), b2);
    // 4: time index non-monotonic.
    const t3 = await readFile(join(dir, timeIndexes[3]!));
    assert.ok(t3.length >= 24);
    t3.writeBigInt64BE(0n, t3.length - 12);
    await writeFile(join(dir, timeIndexes[3]!), t3);
    const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    await verify(again, batches);
    await again.close();
  });
});

test('orphan index files are deleted; empty trailing segment is fine', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 20);
    await log.close();
    await writeFile(join(dir, '00000000000000099999.index'), Buffer.alloc(16));
    await writeFile(join(dir, '00000000000000099999.timeindex'), Buffer.alloc(24));
    const next = batches[batches.length - 1]!.last + 1;
    await writeFile(join(dir, String(next).padStart(20, '0') + '.log'), '');
    const again = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: false });
    assert.ok(!existsSync(join(dir, '00000000000000099999.index')));
    assert.ok(!existsSync(join(dir, '00000000000000099999.timeindex')));
    await verify(again, batches);
    const r = await again.append(makeBatch({ records: 1 }), 0);
    assert.equal(r.firstOffset, next);
    await again.close();
  });
});

// ------------------------------------------------------------------ rolled segments and the recovery point

const recoveryPointFile = async (dir: string): Promise<number | null> =>
  existsSync(join(dir, 'recovery-point')) ? Number((await readFile(join(dir, 'recovery-point'), 'utf8')).split('\n')[1]) : null;

/** Flips one byte in the middle of `file` (inside some batch: the CRC no longer matches). */
async function corruptMiddle(file: string): Promise<void> {
  const bytes = await readFile(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  await writeFile(file, bytes);
}

/** Bounded: rejects when `p` has not settled within `ms`. */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms).unref())]);

test('a rolled segment is fsynced in the background: appends go on meanwhile, flush() waits for it, then the recovery point moves past it', { skip: process.platform !== 'linux' && 'needs /proc/self/fd' }, async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    // Hold every fdatasync of the first segment's .log until released (the real call then runs).
    const realFdatasync = fs.fdatasync;
    const held: Array<() => void> = [];
    let holding = true;
    fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      if (holding && readlinkSync(`/proc/self/fd/${fd}`).endsWith(`${'0'.repeat(20)}.log`)) held.push(() => realFdatasync(fd, cb));
      else realFdatasync(fd, cb);
    }) as typeof fs.fdatasync;
    try {
      let i = 0;
      while ((await segmentLogs(dir)).length < 2) {
        await within(log.append(makeBatch({ records: 2, valueBytes: 200 }), 1), 5000, `append ${i++} before the roll`);
      }
      const rolledAt = log.numberOfSegments === 2 ? baseOffsetOf((await segmentLogs(dir))[1]!) : -1;
      assert.ok(rolledAt > 0);
      // The old segment's fsync is held; appends into the new segment still complete.
      for (let k = 0; k < 5; k++) await within(log.append(makeBatch({ records: 2, valueBytes: 200 }), 1), 5000, 'append while the rolled segment syncs');
      assert.ok(held.length > 0, 'the rolled segment is being fsynced');
      assert.equal(await recoveryPointFile(dir), null);
      assert.ok(log.recoveryPoint < rolledAt, 'nothing counts as on disk before the fsync');
      let flushed = false;
      const flush = log.flush().then(() => (flushed = true));
      for (let k = 0; k < 50; k++) await new Promise((r) => setImmediate(r));
      assert.equal(flushed, false, 'flush() (acks=all) waits for the rolled segment');
      holding = false;
      for (const release of held.splice(0)) release();
      await within(flush, 5000, 'flush after the release');
      assert.equal(await recoveryPointFile(dir), rolledAt);
      assert.equal(log.recoveryPoint, log.logEndOffset);
    } finally {
      fs.fdatasync = realFdatasync;
      holding = false;
      for (const release of held.splice(0)) release();
      await log.close();
    }
  });
});

test('unclean restart validates every rolled segment above the recovery-point checkpoint, and trusts those below it', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    const log = await PartitionLog.open(src, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 400);
    await log.close();
    const logs = await segmentLogs(src);
    assert.ok(logs.length >= 5, `${logs.length} segments`);
    // The recovery point after the roll out of logs[1]; logs[1] and later may be unsynced.
    for (const [checkpoint, expectRecovered] of [
      [baseOffsetOf(logs[1]!), true],
      [baseOffsetOf(logs[2]!), false],
    ] as const) {
      const copy = join(dir, `copy-${checkpoint}`);
      await cp(src, copy, { recursive: true });
      await writeFile(join(copy, 'recovery-point'), `0\n${checkpoint}\n`);
      await corruptMiddle(join(copy, logs[1]!));
      const recovered = await PartitionLog.open(copy, 't', 0, CONFIG, { cleanShutdown: false });
      try {
        if (expectRecovered) {
          // Cut inside logs[1]; every later segment is gone; whole batches before the cut survive.
          assert.ok(recovered.logEndOffset > baseOffsetOf(logs[1]!) && recovered.logEndOffset < baseOffsetOf(logs[2]!), `log end ${recovered.logEndOffset}`);
          assert.deepEqual(await segmentLogs(copy), logs.slice(0, 2));
          await verify(recovered, batches.filter((b) => b.last < recovered.logEndOffset));
        } else {
          // Below the checkpoint: fsynced when it rolled, not rescanned (as Kafka).
          assert.equal(recovered.logEndOffset, batches[batches.length - 1]!.last + 1);
          assert.deepEqual(await segmentLogs(copy), logs);
        }
      } finally {
        await recovered.close();
      }
    }
  });
});

test('without a recovery-point checkpoint, unclean restart validates the second-to-last segment too', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 400);
    await log.close();
    await rm(join(dir, 'recovery-point'), { force: true });
    const logs = await segmentLogs(dir);
    const secondToLast = logs[logs.length - 2]!;
    await corruptMiddle(join(dir, secondToLast));
    const recovered = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: false });
    try {
      assert.ok(recovered.logEndOffset > baseOffsetOf(secondToLast) && recovered.logEndOffset < baseOffsetOf(logs[logs.length - 1]!));
      assert.deepEqual(await segmentLogs(dir), logs.slice(0, -1));
      await verify(recovered, batches.filter((b) => b.last < recovered.logEndOffset));
    } finally {
      await recovered.close();
    }
  });
});

test('a truncation below the recovery point lowers the checkpoint before anything is appended again', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    await fill(log, 400);
    await log.flush();
    const checkpoint = (await recoveryPointFile(dir))!;
    assert.ok(checkpoint > 100);
    await log.truncateTo(100);
    assert.equal(await recoveryPointFile(dir), log.logEndOffset);
    assert.ok(log.logEndOffset <= 100);
    // Appends refill the truncated range and roll; the checkpoint moves up again with the rolls.
    await fill(log, 400);
    await log.flush();
    const logs = await segmentLogs(dir);
    assert.equal(await recoveryPointFile(dir), baseOffsetOf(logs[logs.length - 1]!));
    await log.close();
  });
});

test('an unreadable recovery-point checkpoint makes unclean recovery validate every segment', async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    const batches = await fill(log, 400);
    await log.close();
    const logs = await segmentLogs(dir);
    await writeFile(join(dir, 'recovery-point'), 'garbage');
    await corruptMiddle(join(dir, logs[0]!));
    const recovered = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: false });
    try {
      assert.ok(recovered.logEndOffset > 0 && recovered.logEndOffset < baseOffsetOf(logs[1]!), `log end ${recovered.logEndOffset}`);
      assert.deepEqual(await segmentLogs(dir), logs.slice(0, 1));
      await verify(recovered, batches.filter((b) => b.last < recovered.logEndOffset));
    } finally {
      await recovered.close();
    }
  });
});

test('unclean restart fsyncs the segments it validated before the log opens (their data may only be in the page cache)', { skip: process.platform !== 'linux' && 'needs /proc/self/fd' }, async () => {
  await withTempDir(async (dir) => {
    const log = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: true });
    await fill(log, 400);
    await log.close();
    await rm(join(dir, 'recovery-point'), { force: true });
    const logs = await segmentLogs(dir);
    // Without a checkpoint the last two segments are validated; those before are trusted.
    const synced: string[] = [];
    const realFdatasync = fs.fdatasync;
    fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      synced.push(readlinkSync(`/proc/self/fd/${fd}`).split('/').pop()!);
      realFdatasync(fd, cb);
    }) as typeof fs.fdatasync;
    let recovered: PartitionLog | null = null;
    try {
      recovered = await PartitionLog.open(dir, 't', 0, CONFIG, { cleanShutdown: false });
    } finally {
      fs.fdatasync = realFdatasync;
    }
    try {
      const logsSynced = synced.filter((f) => f.endsWith('.log'));
      assert.deepEqual([...new Set(logsSynced)].sort(), logs.slice(-2), `fdatasync'd during open: ${synced.join(', ')}`);
      assert.equal(recovered.recoveryPoint, recovered.logEndOffset);
    } finally {
      await recovered.close();
    }
  });
});
