/**
 * The log cleaner (storage/log-cleaner.ts) against a model: random keyed records and tombstones
 * over many segments and codecs, cleaned in several passes with an injected clock. After every
 * pass a full read gives the latest value of every live key, offsets increase, the cleaned section
 * holds each key once, tombstones live exactly until delete.retention.ms after the pass that
 * first saw them, a fetch inside a gap lands on the next record, and a reopened log reads the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { encodeControlBatch, encodeRecordBatch, readBatchHeader, Attr } from '../../src/protocol/records.js';
import { PartitionLog, type LogConfig } from '../../src/storage/log.js';
import { DEFAULT_CLEANER_CONFIG, LogCleaner, readCleanerCheckpoint } from '../../src/storage/log-cleaner.js';
import { OffsetMap } from '../../src/storage/offset-map.js';
import { testConfig, withTempDir } from './batch-helper.js';
import { keyedBatch, prng, readAll, type KV } from './cleaner-support.js';
import type { CompressionCodec } from '../../src/protocol/compression.js';

const T0 = 1_700_000_000_000;
const RETENTION_MS = 60_000;

function compactConfig(over: Partial<LogConfig> = {}): LogConfig {
  return testConfig({ segmentBytes: 8 * 1024, indexIntervalBytes: 512, cleanupCompact: true, cleanupDelete: false, minCleanableDirtyRatio: 0, deleteRetentionMs: RETENTION_MS, ...over });
}

interface ModelRecord {
  offset: number;
  key: string;
  value: string | null;
  timestamp: number;
}

for (const seed of [1, 2, 3, 4, 5, 6]) {
  test(`model: latest value per key, increasing offsets, tombstones until delete.retention.ms (seed ${seed})`, async () => {
    await withTempDir(async (dir) => {
      const rnd = prng(seed);
      let now = T0;
      const clock = (): number => now;
      let log = await PartitionLog.open(dir, 't', 0, compactConfig(), { cleanShutdown: true, clock });
      const cleaner = new LogCleaner({ config: { ...DEFAULT_CLEANER_CONFIG }, logs: () => [log], clock });
      const model: ModelRecord[] = [];
      /** Tombstone offset → time of the pass that first cleaned it. */
      const firstCleaned = new Map<number, number>();
      const keys = 10 + Math.floor(rnd() * 60);
      let cleanedUpTo = 0;

      const check = async (where: string): Promise<void> => {
        const ctx = `seed ${seed}, ${where}`;
        const read = await readAll(log);
        for (let i = 1; i < read.length; i++) assert.ok(read[i]!.offset > read[i - 1]!.offset, `${ctx}: offsets must increase`);
        const byOffset = new Map(model.map((m) => [m.offset, m]));
        for (const r of read) {
          const m = byOffset.get(r.offset);
          assert.ok(m, `${ctx}: offset ${r.offset} was never written`);
          assert.deepEqual({ key: r.key, value: r.value, timestamp: r.timestamp }, { key: m.key, value: m.value, timestamp: m.timestamp }, `${ctx}: record at ${r.offset}`);
        }
        // Last-wins over the read equals last-wins over everything written.
        const live = (rs: Array<{ key: string | null; value: string | null }>): Map<string, string> => {
          const out = new Map<string, string>();
          for (const r of rs) {
            if (r.value === null) out.delete(r.key!);
            else out.set(r.key!, r.value);
          }
          return out;
        };
        assert.deepEqual(live(read), live(model), `${ctx}: live keys`);
        // Below the cleaned offset: exactly the latest record of each key as of that offset.
        const latestBelow = new Map<string, ModelRecord>();
        for (const m of model) if (m.offset < cleanedUpTo) latestBelow.set(m.key, m);
        const cleanedRead = read.filter((r) => r.offset < cleanedUpTo);
        const seen = new Set<string>();
        for (const r of cleanedRead) {
          assert.ok(!seen.has(r.key!), `${ctx}: key ${r.key} twice below ${cleanedUpTo}`);
          seen.add(r.key!);
          assert.equal(r.offset, latestBelow.get(r.key!)!.offset, `${ctx}: ${r.key} at ${r.offset} is not its latest`);
        }
        for (const [k, m] of latestBelow) {
          if (m.value !== null) assert.ok(seen.has(k), `${ctx}: live key ${k} (offset ${m.offset}) lost`);
          else {
            const cleanedAt = firstCleaned.get(m.offset)!;
            const expectPresent = now < cleanedAt + RETENTION_MS;
            assert.equal(seen.has(k), expectPresent, `${ctx}: tombstone ${k}@${m.offset} first cleaned at ${cleanedAt - T0}, now ${now - T0}`);
          }
        }
        // A fetch at any offset, gap or not, starts at the next record there is.
        for (let i = 0; i < 20; i++) {
          const o = log.logStartOffset + Math.floor(rnd() * (log.logEndOffset - log.logStartOffset));
          const from = await readAll(log, o);
          assert.deepEqual(from[0]?.offset, read.find((r) => r.offset >= o)?.offset, `${ctx}: fetch at ${o}`);
        }
      };

      for (let round = 0; round < 5; round++) {
        const batches = 20 + Math.floor(rnd() * 60);
        for (let b = 0; b < batches; b++) {
          const n = 1 + Math.floor(rnd() * 8);
          const recs: KV[] = [];
          for (let i = 0; i < n; i++) {
            const key = `k${Math.floor(rnd() * keys)}`;
            const value = rnd() < 0.12 ? null : `v${round}-${b}-${i}-${'x'.repeat(Math.floor(rnd() * 80))}`;
            recs.push({ key, value });
          }
          const codec = Math.floor(rnd() * 5) as CompressionCodec;
          const res = await log.append(keyedBatch(recs, { compression: codec, timestamp: now }), 0);
          recs.forEach((r, i) => model.push({ offset: res.firstOffset + i, key: r.key!, value: r.value, timestamp: now }));
          now += 10;
        }
        const stats = await cleaner.clean(log, { force: true });
        if (process.env['CLEANER_DEBUG']) console.log(JSON.stringify({ round, segments: log.numberOfSegments, stats }));
        if (stats !== null) {
          for (const m of model) if (m.value === null && m.offset < stats.cleanedUpTo && !firstCleaned.has(m.offset)) firstCleaned.set(m.offset, now);
          cleanedUpTo = stats.cleanedUpTo;
          assert.ok(stats.segmentsAfter <= stats.segmentsBefore);
        }
        await check(`round ${round}`);
        now += 25_000;
      }
      // Past every horizon: one more pass removes the remaining tombstones below the cleaned offset.
      now += RETENTION_MS + 1;
      await cleaner.clean(log, { force: true });
      await check('after the horizon');
      const before = await readAll(log);
      assert.ok(!before.some((r) => r.offset < cleanedUpTo && r.value === null), 'no tombstone survives its horizon');
      const cp = await readCleanerCheckpoint(dir);
      assert.equal(cp?.cleanedUpTo, cleanedUpTo);
      // Reopened from disk (indexes, swapped files), the log reads the same.
      await log.close();
      log = await PartitionLog.open(dir, 't', 0, compactConfig(), { cleanShutdown: true, clock });
      assert.deepEqual(await readAll(log), before);
      const names = fs.readdirSync(dir);
      assert.ok(!names.some((n) => n.endsWith('.cleaned') || n.endsWith('.swap') || n === 'cleaner-swap'), names.join(' '));
      await log.close();
    });
  });
}

test('dirty ratio, eligibility and the checkpoint: a clean log is left alone until new writes or a horizon', async () => {
  await withTempDir(async (dir) => {
    let now = T0;
    const clock = (): number => now;
    const log = await PartitionLog.open(dir, 't', 0, compactConfig({ minCleanableDirtyRatio: 0.5 }), { cleanShutdown: true, clock });
    const cleaner = new LogCleaner({ config: { ...DEFAULT_CLEANER_CONFIG }, logs: () => [log], clock });
    for (let i = 0; i < 300; i++) await log.append(keyedBatch([{ key: `k${i % 20}`, value: 'v'.repeat(100) }], { timestamp: now }), 0);
    assert.equal(cleaner.dirtyRatio(log), 1);
    const stats = await cleaner.cleanFilthiest();
    assert.ok(stats, 'a wholly dirty log is cleaned');
    assert.equal(cleaner.lastRun(log), stats);
    assert.ok(stats.bytesWritten < stats.bytesRead / 4, JSON.stringify(stats));
    assert.equal(cleaner.dirtyRatio(log), 0);
    assert.equal(await cleaner.cleanFilthiest(), null, 'nothing dirty: no pass');
    // A little new data: below the ratio.
    for (let i = 0; i < 5; i++) await log.append(keyedBatch([{ key: `k${i}`, value: 'w'.repeat(100) }], { timestamp: now }), 0);
    assert.equal(await cleaner.cleanFilthiest(), null);
    // A tombstone, cleaned once: stamped, and the checkpoint remembers its horizon.
    await log.append(keyedBatch([{ key: 'k1', value: null }], { timestamp: now }), 0);
    for (let i = 0; i < 400; i++) await log.append(keyedBatch([{ key: `z${i % 7}`, value: 'z'.repeat(100) }], { timestamp: now }), 0);
    assert.ok(await cleaner.cleanFilthiest());
    const cp = await readCleanerCheckpoint(dir);
    assert.equal(cp?.nextDeleteHorizonMs, now + RETENTION_MS);
    assert.ok((await readAll(log)).some((r) => r.key === 'k1' && r.value === null));
    now += RETENTION_MS;
    const pass = await cleaner.cleanFilthiest();
    assert.ok(pass, 'a passed horizon makes the log eligible');
    assert.equal(pass.tombstonesRemoved, 1);
    assert.ok(!(await readAll(log)).some((r) => r.key === 'k1'));
    await log.close();
  });
});

test('the offset map is bounded: a small dedupe buffer cleans in several passes, whole segments at a time', async () => {
  await withTempDir(async (dir) => {
    const clock = (): number => T0;
    const log = await PartitionLog.open(dir, 't', 0, compactConfig({ segmentBytes: 4096 }), { cleanShutdown: true, clock });
    // 24 bytes an entry at load factor 0.9: 60 keys.
    const cleaner = new LogCleaner({ config: { ...DEFAULT_CLEANER_CONFIG, dedupeBufferSize: 1600 }, logs: () => [log], clock });
    assert.equal(new OffsetMap(1600).capacity, 60);
    for (let i = 0; i < 600; i++) await log.append(keyedBatch([{ key: `k${i}`, value: 'x'.repeat(40) }], { timestamp: T0 }), 0);
    const first = await cleaner.clean(log);
    assert.ok(first && first.offsetMapEntries <= 60 + 60, JSON.stringify(first));
    assert.ok(first.cleanedUpTo < log.logEndOffset - 100, `one pass cannot take everything: ${first.cleanedUpTo}`);
    let passes = 1;
    while ((await cleaner.clean(log)) !== null) passes++;
    assert.ok(passes > 2, `passes ${passes}`);
    const read = await readAll(log);
    assert.equal(read.length, 600, 'distinct keys all stay');
    await log.close();
  });
});

test('transactions: aborted records go, committed ones stay, markers of empty transactions go after the horizon', async () => {
  await withTempDir(async (dir) => {
    let now = T0;
    const clock = (): number => now;
    const log = await PartitionLog.open(dir, 't', 0, compactConfig({ segmentBytes: 1024 }), { cleanShutdown: true, clock });
    const cleaner = new LogCleaner({ config: { ...DEFAULT_CLEANER_CONFIG }, logs: () => [log], clock });
    const txnBatch = (pid: number, seq: number, recs: KV[]): Buffer =>
      encodeRecordBatch({
        records: recs.map((r) => ({ key: Buffer.from(r.key!), value: r.value === null ? null : Buffer.from(r.value), timestamp: now })),
        producerId: pid,
        producerEpoch: 0,
        baseSequence: seq,
        transactional: true,
        compression: 1,
      });
    const marker = (pid: number, type: 0 | 1): Buffer => encodeControlBatch({ producerId: pid, producerEpoch: 0, type, coordinatorEpoch: 3, timestamp: now });
    await log.append(txnBatch(7, 0, [{ key: 'a', value: 'aborted-1' }, { key: 'b', value: 'aborted-2' }]), 0);
    await log.append(txnBatch(8, 0, [{ key: 'c', value: 'committed' }, { key: 'd', value: 'superseded' }]), 0);
    await log.append(marker(7, 0), 0, 'coordinator');
    await log.append(marker(8, 1), 0, 'coordinator');
    await log.append(txnBatch(9, 0, [{ key: 'e', value: 'gone-later' }]), 0);
    await log.append(marker(9, 1), 0, 'coordinator');
    for (let i = 0; i < 30; i++) await log.append(keyedBatch([{ key: i % 2 === 0 ? 'd' : 'e', value: `plain-${i}`.padEnd(60, '.') }], { timestamp: now }), 0);
    assert.equal(log.abortedTransactions(0, Number.MAX_SAFE_INTEGER).length, 1);
    const s1 = await cleaner.clean(log, { force: true });
    assert.ok(s1);
    assert.equal(s1.abortedRecordsRemoved, 2);
    const rawControl = async (): Promise<Array<{ pid: number; horizon: boolean }>> => {
      const out: Array<{ pid: number; horizon: boolean }> = [];
      let next = 0;
      while (next < log.logEndOffset) {
        const buf = await log.read(next, 1 << 20, log.logEndOffset, true);
        if (buf.length === 0) break;
        for (let at = 0; at < buf.length; ) {
          const h = readBatchHeader(buf, at);
          if ((h.attributes & Attr.control) !== 0) out.push({ pid: h.producerId, horizon: (h.attributes & Attr.deleteHorizon) !== 0 });
          next = h.baseOffset + h.lastOffsetDelta + 1;
          at += h.batchLength + 12;
        }
      }
      return out;
    };
    const read1 = await readAll(log);
    assert.ok(!read1.some((r) => r.value?.startsWith('aborted')), 'aborted data removed');
    assert.ok(read1.some((r) => r.value === 'committed'), 'committed data stays');
    // 7 aborted and 9 (its record superseded) are empty: stamped; 8 still has data: untouched.
    assert.deepEqual(await rawControl(), [
      { pid: 7, horizon: true },
      { pid: 8, horizon: false },
      { pid: 9, horizon: true },
    ]);
    now += RETENTION_MS;
    const s2 = await cleaner.clean(log, { force: true });
    assert.equal(s2?.markersRemoved, 2);
    assert.deepEqual(await rawControl(), [{ pid: 8, horizon: false }]);
    // The aborted transaction's index entry went with its segment.
    assert.equal(log.abortedTransactions(0, Number.MAX_SAFE_INTEGER).length, 0);
    assert.ok(!fs.readdirSync(dir).some((n) => n.endsWith('.txnindex')));
    const cleaned = await readAll(log);
    await log.close();
    const reopened = await PartitionLog.open(dir, 't', 0, compactConfig({ segmentBytes: 1024 }), { cleanShutdown: false, clock });
    assert.deepEqual(await readAll(reopened), cleaned);
    await reopened.close();
  });
});

test('a compact-only log is never trimmed by retention.ms / retention.bytes; compact,delete is', async () => {
  for (const [del, expectDeleted] of [
    [false, 0],
    [true, 1],
  ] as const) {
    await withTempDir(async (dir) => {
      const log = await PartitionLog.open(dir, 't', 0, compactConfig({ cleanupDelete: del, retentionMs: 1, segmentBytes: 512 }), { cleanShutdown: true });
      for (let i = 0; i < 20; i++) await log.append(keyedBatch([{ key: `k${i}`, value: 'x'.repeat(100) }], { timestamp: 1000 }), 0);
      const deleted = await log.applyRetention(Date.now());
      assert.equal(deleted > 0 ? 1 : 0, expectDeleted);
      await log.close();
    });
  }
});

test('disk space is reclaimed: the same keys written 10 times end near the size of one copy', async () => {
  await withTempDir(async (dir) => {
    let now = T0;
    const clock = (): number => now;
    const config = compactConfig({ segmentBytes: 64 * 1024, segmentMs: 1000, indexIntervalBytes: 4096 });
    const log = await PartitionLog.open(dir, 't', 0, config, { cleanShutdown: true, clock });
    const cleaner = new LogCleaner({ config: { ...DEFAULT_CLEANER_CONFIG }, logs: () => [log], clock });
    const KEYS = 500;
    let oneCopy = 0;
    for (let copy = 0; copy < 10; copy++) {
      for (let k = 0; k < KEYS; k += 5) {
        const batch = keyedBatch(
          Array.from({ length: 5 }, (_, i) => ({ key: `key-${k + i}`, value: `copy-${copy}-`.padEnd(200, String(copy)) })),
          { timestamp: now, compression: 4 },
        );
        if (copy === 0) oneCopy += batch.length;
        await log.append(batch, 0);
      }
    }
    const written = log.sizeInBytes;
    assert.ok(written > 9 * oneCopy);
    // Close the last full segment (segment.ms) with one small record so every copy is cleanable.
    now += 2000;
    await log.append(keyedBatch([{ key: 'tail', value: 't' }], { timestamp: now }), 0);
    while ((await cleaner.clean(log, { force: true })) !== null && cleaner.dirtyRatio(log) > 0);
    const files = fs.readdirSync(dir).filter((n) => n.endsWith('.log'));
    const onDisk = files.reduce((n, f) => n + fs.statSync(join(dir, f)).size, 0);
    assert.equal(onDisk, log.sizeInBytes);
    assert.ok(onDisk < oneCopy * 1.3, `on disk ${onDisk} bytes, one copy ${oneCopy}, written ${written}`);
    const read = await readAll(log);
    assert.equal(read.length, KEYS + 1);
    assert.ok(read.every((r) => r.key === 'tail' || r.value!.startsWith('copy-9-')));
    await log.close();
  });
});
