/**
 * The in-memory ring of recent batch headers (LogSegment) must answer exactly what a scan of the
 * file answers: for every offset, the same batch, before and after a restart and a truncation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LOG_CONFIG, PartitionLog } from '../../src/storage/log.js';
import { makeBatch } from './batch-helper.js';

async function batchAt(log: PartitionLog, offset: number): Promise<[number, number]> {
  const bytes = await log.read(offset, 1, log.logEndOffset, true);
  return [bytes.readInt32BE(4), bytes.readInt32BE(23)]; // base offset (low word), last offset delta
}

test('recent-batch lookups agree with the offset index and a scan, across restart and truncation', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-recent-'));
  try {
    const config = { ...DEFAULT_LOG_CONFIG, indexIntervalBytes: 512 };
    let log = await PartitionLog.open(join(dir, 't-0'), 't', 0, config, { cleanShutdown: true });
    for (let i = 0; i < 150; i++) await log.append(makeBatch({ records: 1 + (i % 5), valueBytes: 10 + (i % 7) * 30 }), 0);
    const end = log.logEndOffset;
    const expected: Array<[number, number]> = [];
    for (let o = 0; o < end; o++) expected.push(await batchAt(log, o));
    for (let o = 0; o < end; o++) {
      const [base, delta] = expected[o]!;
      assert.ok(base <= o && o <= base + delta, `offset ${o} not in batch ${base}+${delta}`);
    }
    await log.close();
    log = await PartitionLog.open(join(dir, 't-0'), 't', 0, config, { cleanShutdown: false });
    for (let o = 0; o < end; o++) assert.deepEqual(await batchAt(log, o), expected[o], `offset ${o} after restart`);
    const cut = expected[end - 40]![0];
    await log.truncateTo(cut);
    assert.equal(log.logEndOffset, cut);
    for (let o = 0; o < cut; o++) assert.deepEqual(await batchAt(log, o), expected[o], `offset ${o} after truncation`);
    await log.append(makeBatch({ records: 3, valueBytes: 20 }), 0);
    assert.deepEqual(await batchAt(log, cut + 1), [cut, 2]);
    await log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
