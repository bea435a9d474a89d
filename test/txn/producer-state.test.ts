/**
 * ProducerStateManager and PartitionLog's producer checks: duplicates, sequence and epoch errors,
 * open/aborted transactions and the LSO, snapshots, recovery after an unclean shutdown with no
 * fresh snapshot, the `.txnindex`, and producer expiration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeControlBatch, encodeRecordBatch } from '../../src/protocol/records.js';
import { DEFAULT_LOG_CONFIG, PartitionLog } from '../../src/storage/log.js';
import { ProducerStateError, ProducerStateManager } from '../../src/storage/producer-state.js';

const batch = (pid: number, epoch: number, seq: number, n: number, transactional = false): Buffer =>
  encodeRecordBatch({ records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`v${seq + i}`), timestamp: 1_700_000_000_000 })), producerId: pid, producerEpoch: epoch, baseSequence: seq, transactional });
const marker = (pid: number, epoch: number, commit: boolean): Buffer => encodeControlBatch({ producerId: pid, producerEpoch: epoch, type: commit ? 1 : 0, coordinatorEpoch: 0, timestamp: 1_700_000_000_000 });

async function withLog(fn: (dir: string, open: (clean?: boolean) => Promise<PartitionLog>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'strand-ps-'));
  try {
    await fn(dir, (clean = true) => PartitionLog.open(dir, 't', 0, { ...DEFAULT_LOG_CONFIG, segmentBytes: 4096 }, { cleanShutdown: clean }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof ProducerStateError ? e.code : `other: ${e}`));

test('duplicates of the last five batches get their original offsets; older ones and gaps are out of order', async () => {
  await withLog(async (_dir, open) => {
    const log = await open();
    const offsets: number[] = [];
    for (let i = 0; i < 7; i++) offsets.push((await log.append(batch(1, 0, i * 2, 2), 0)).firstOffset);
    assert.deepEqual(offsets, [0, 2, 4, 6, 8, 10, 12]);
    for (let i = 2; i < 7; i++) {
      const d = await log.append(batch(1, 0, i * 2, 2), 0);
      assert.deepEqual([d.firstOffset, d.duplicate], [i * 2, true]);
    }
    assert.equal(await code(log.append(batch(1, 0, 0, 2), 0)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    assert.equal(await code(log.append(batch(1, 0, 20, 1), 0)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    assert.equal(await code(log.append(batch(2, 0, 3, 1), 0)), 'UNKNOWN_PRODUCER_ID');
    assert.equal(await code(log.append(batch(1, 1, 5, 1), 0)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    assert.equal(await code(log.append(batch(1, 1, 0, 1), 0)), 'ok');
    assert.equal(await code(log.append(batch(1, 0, 14, 1), 0)), 'INVALID_PRODUCER_EPOCH');
    assert.equal(log.logEndOffset, 15);
    await log.close();
  });
});

test('duplicates queued behind their original in one group are answered after it, without a second write', async () => {
  await withLog(async (_dir, open) => {
    const log = await open();
    const [a, b, c] = await Promise.all([log.append(batch(7, 0, 0, 3), 0), log.append(batch(7, 0, 0, 3), 0), log.append(batch(7, 0, 3, 1), 0)]);
    assert.deepEqual([a.firstOffset, b.firstOffset, b.duplicate, c.firstOffset], [0, 0, true, 3]);
    assert.equal(log.logEndOffset, 4);
    await log.close();
  });
});

test('transactions hold the LSO; an abort is indexed; state and index survive clean and unclean restarts', async () => {
  await withLog(async (dir, open) => {
    let log = await open();
    await log.append(batch(1, 0, 0, 2, true), 0); // 0-1 open txn of 1
    await log.append(batch(2, 0, 0, 1, true), 0); // 2 open txn of 2
    assert.equal(log.lastStableOffset, 0);
    await log.append(marker(1, 0, false), 0, 'coordinator'); // 3 abort 1
    assert.equal(log.lastStableOffset, 2);
    await log.append(marker(2, 0, true), 0, 'coordinator'); // 4 commit 2
    assert.equal(log.lastStableOffset, 5);
    assert.deepEqual(log.abortedTransactions(0, 5).map((a) => [a.producerId, a.firstOffset, a.lastOffset]), [[1, 0, 3]]);
    await log.append(batch(1, 0, 2, 1, true), 0); // 5: new txn of 1, sequence continues
    assert.equal(log.lastStableOffset, 5);
    // A stale-epoch marker is refused; a non-transactional write inside a transaction too.
    assert.equal(await code(log.append(batch(1, 0, 3, 1), 0)), 'INVALID_TXN_STATE');
    await log.close();
    assert.ok((await readdir(dir)).some((n) => n.endsWith('.txnindex')));

    log = await open(true);
    assert.equal(log.lastStableOffset, 5);
    assert.deepEqual(log.abortedTransactions(0, 10).map((a) => a.producerId), [1]);
    assert.equal((await log.append(batch(1, 0, 2, 1, true), 0)).duplicate, true);
    await log.close();

    // Unclean, and no snapshot at all: everything is rebuilt from the log.
    for (const n of await readdir(dir)) if (n.endsWith('.snapshot') || n.endsWith('.txnindex')) await rm(join(dir, n));
    log = await open(false);
    assert.equal(log.lastStableOffset, 5);
    assert.deepEqual(log.abortedTransactions(0, 10).map((a) => [a.producerId, a.firstOffset, a.lastOffset]), [[1, 0, 3]]);
    assert.equal((await log.append(batch(1, 0, 2, 1, true), 0)).duplicate, true);
    await log.append(marker(1, 1, false), 0, 'coordinator'); // fence-abort with a bumped epoch
    assert.equal(await code(log.append(marker(1, 0, true), 0, 'coordinator')), 'INVALID_PRODUCER_EPOCH');
    assert.equal(log.lastStableOffset, log.logEndOffset);
    await log.close();
  });
});

test('state is rebuilt across segment rolls after truncation, and idle producers expire', async () => {
  await withLog(async (_dir, open) => {
    const log = await open();
    for (let i = 0; i < 100; i++) await log.append(batch(3, 0, i * 5, 5), 0);
    assert.ok(log.numberOfSegments > 1);
    await log.truncateTo(250);
    assert.equal(log.logEndOffset, 250);
    assert.equal(await code(log.append(batch(3, 0, 255, 5), 0)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    assert.equal((await log.append(batch(3, 0, 245, 5), 0)).duplicate, true);
    assert.equal((await log.append(batch(3, 0, 250, 5), 0)).firstOffset, 250);
    assert.equal(log.removeExpiredProducers(1_700_000_000_000 + 1000, 5000), 0);
    assert.equal(log.removeExpiredProducers(1_700_000_000_000 + 5000, 5000), 1);
    assert.equal(await code(log.append(batch(3, 0, 255, 5), 0)), 'UNKNOWN_PRODUCER_ID');
    await log.close();
  });
});

test('snapshots round-trip and a corrupt one is refused', () => {
  const ps = new ProducerStateManager('/nonexistent');
  const info = { producerId: 9, epoch: 2, baseSequence: 0, lastSequence: 4, transactional: true, controlType: null, coordinatorEpoch: -1, maxTimestamp: 5 };
  ps.apply(info, 10, 14, 0);
  const snap = ps.encodeSnapshot();
  const copy = new ProducerStateManager('/nonexistent');
  copy.loadSnapshot(snap);
  assert.deepEqual([...copy.producers.values()], [...ps.producers.values()]);
  assert.equal(copy.firstUnstableOffset, 10);
  snap[snap.length - 1] ^= 1;
  assert.throws(() => copy.loadSnapshot(snap), /CRC/);
});
