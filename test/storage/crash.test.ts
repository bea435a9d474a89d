import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { PartitionLog } from '../../src/storage/log.js';
import { parseBatches, runWriterUntilKilled, testConfig, withTempDir } from './batch-helper.js';

const writer = fileURLToPath(new URL('./fixtures/crash-writer.js', import.meta.url));

for (const round of [1, 2, 3]) {
  test(`kill -9 during appends: every acknowledged offset survives, nothing torn is visible (round ${round})`, { timeout: 60_000 }, async () => {
    await withTempDir(async (dir) => {
      let acked = -1;
      // Several runs into the same dir: each restart recovers and continues.
      for (let run = 0; run < 2; run++) {
        acked = await runWriterUntilKilled(writer, [dir, String(32768 * round)], acked, 50 + Math.floor(Math.random() * 150));
      }
      const log = await PartitionLog.open(dir, 't', 0, testConfig({ indexIntervalBytes: 1024 }), { cleanShutdown: false });
      assert.ok(log.logEndOffset > acked, `LEO ${log.logEndOffset} must exceed acked ${acked}`);
      let offset = 0;
      let batches = 0;
      while (offset < log.logEndOffset) {
        const bytes = await log.read(offset, 256 * 1024, log.highWatermark, true);
        assert.ok(bytes.length > 0, `gap at ${offset}`);
        for (const b of parseBatches(bytes)) {
          assert.equal(b.baseOffset, offset, 'offsets contiguous');
          assert.ok(b.crcOk, `CRC at ${b.baseOffset}`);
          offset = b.lastOffset + 1;
          batches++;
        }
      }
      assert.equal(offset, log.logEndOffset);
      assert.ok(batches > 0);
      await log.close();
    });
  });
}
