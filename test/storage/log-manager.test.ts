import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LogManager } from '../../src/storage/log-manager.js';
import { makeBatch, testConfig, waitFor, withTempDir } from './batch-helper.js';

test('LogManager: clean-shutdown marker, partition dirs, delete, reopen', async () => {
  await withTempDir(async (dataDir) => {
    const m1 = new LogManager(dataDir, { retentionCheckIntervalMs: 60_000 });
    assert.deepEqual(await m1.startup(), { cleanShutdown: false });
    await mkdir(join(dataDir, '__meta'));
    const a = await m1.getOrCreateLog('orders', 0, testConfig());
    const [b1, b2] = await Promise.all([m1.getOrCreateLog('orders', 1, testConfig()), m1.getOrCreateLog('orders', 1, testConfig())]);
    assert.equal(b1, b2);
    await a.append(makeBatch({ records: 3 }), 0);
    assert.equal(m1.getLog('orders', 0), a);
    assert.equal(m1.allLogs().length, 2);
    assert.deepEqual((await m1.listPartitionDirs()).map((d) => `${d.topic}/${d.partition}`), ['orders/0', 'orders/1']);
    await m1.deleteLog('orders', 1);
    assert.ok(!existsSync(join(dataDir, 'orders-1')));
    await m1.shutdown();
    assert.ok(existsSync(join(dataDir, '.strand-clean-shutdown')));

    const m2 = new LogManager(dataDir, { retentionCheckIntervalMs: 60_000 });
    assert.deepEqual(await m2.startup(), { cleanShutdown: true });
    assert.ok(!existsSync(join(dataDir, '.strand-clean-shutdown')));
    const again = await m2.getOrCreateLog('orders', 0, testConfig());
    assert.equal(again.logEndOffset, 3);
    await m2.shutdown();
  });
});

test('LogManager: background retention and flush.ms tasks run', async () => {
  await withTempDir(async (dataDir) => {
    let now = 1_000_000_000;
    const m = new LogManager(dataDir, { retentionCheckIntervalMs: 20, flushSchedulerIntervalMs: 10, clock: () => now });
    await m.startup();
    const log = await m.getOrCreateLog('t', 0, testConfig({ segmentBytes: 1024, retentionMs: 1000, flushMs: 50 }));
    for (let i = 0; i < 20; i++) await log.append(makeBatch({ records: 1, valueBytes: 200, baseTimestamp: now }), 0);
    assert.ok(log.numberOfSegments > 2);
    assert.ok(log.unflushedMessages > 0);
    now += 100;
    await waitFor(() => log.unflushedMessages === 0, 5000, 'flush.ms flush');
    now += 10_000;
    await waitFor(() => log.numberOfSegments === 1, 5000, 'retention');
    assert.ok(log.logStartOffset > 0);
    await m.shutdown();
  });
});
