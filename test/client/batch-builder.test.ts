/**
 * RecordBatchBuilder (the producer's hot path) writes the same bytes as encodeRecordBatch for the
 * same records, and keeps a batch within maxBytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordBatchBuilder, sizeOfVarint } from '../../src/protocol/batch-builder.js';
import { decodeRecordBatch, encodeRecordBatch, type RecordInput } from '../../src/protocol/records.js';

function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

test('builder bytes equal encodeRecordBatch bytes: random keys, values, headers, timestamps', () => {
  const rnd = seeded(42);
  for (let round = 0; round < 200; round++) {
    const n = 1 + Math.floor(rnd() * 40);
    const base = 1_700_000_000_000 + Math.floor(rnd() * 1e6);
    const records: RecordInput[] = [];
    for (let i = 0; i < n; i++) {
      const len = (max: number): number => Math.floor(rnd() * max);
      records.push({
        key: rnd() < 0.3 ? null : Buffer.alloc(len(300), i),
        value: rnd() < 0.1 ? null : Buffer.alloc(len(rnd() < 0.1 ? 20000 : 200), i + 1),
        headers: rnd() < 0.5 ? [] : Array.from({ length: 1 + len(3) }, (_, h) => ({ key: `h${h}-é`, value: rnd() < 0.2 ? null : Buffer.alloc(len(50), h) })),
        timestamp: base + Math.floor((rnd() - 0.3) * 100000),
      });
    }
    const b = new RecordBatchBuilder(1 << 30);
    for (const r of records) assert.ok(b.append(r.key ?? null, r.value, r.headers ?? null, r.timestamp!));
    const opts = { producerId: round, producerEpoch: 3, baseSequence: round * 10 };
    assert.deepEqual(b.build(opts), encodeRecordBatch({ records, ...opts }));
  }
});

test('builder stays within maxBytes unless a single record is larger; compressed batches decode', () => {
  const b = new RecordBatchBuilder(1000);
  let n = 0;
  while (b.append(null, Buffer.alloc(100, 1), null, 1000 + n)) n++;
  assert.ok(b.sizeInBytes <= 1000 && b.sizeInBytes > 850, String(b.sizeInBytes));
  const big = new RecordBatchBuilder(1000);
  assert.ok(big.append(null, Buffer.alloc(5000), null, 1));
  assert.equal(big.append(null, Buffer.alloc(1), null, 1), false);
  for (const codec of [1, 2, 3, 4] as const) {
    const batch = decodeRecordBatch(b.build({ compression: codec }));
    assert.equal(batch.records.length, n);
    assert.equal(batch.header.attributes & 7, codec);
    assert.deepEqual(batch.records[n - 1]!.value, Buffer.alloc(100, 1));
    assert.equal(batch.header.baseTimestamp + batch.records[n - 1]!.timestampDelta, 1000 + n - 1);
  }
  assert.equal(sizeOfVarint(-1), 1);
  assert.equal(sizeOfVarint(2 ** 40), 6);
});
