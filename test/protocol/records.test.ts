import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { crc32c } from '@node-rs/crc32';
import { type CompressionCodec, CorruptRecordError } from '../../src/protocol/compression.js';
import {
  Attr,
  BatchOffsets,
  type BatchInput,
  MAGIC_V2,
  RECORD_BATCH_OVERHEAD,
  batchSize,
  controlCoordinatorEpoch,
  controlRecordType,
  crcOf,
  decodeRecordBatch,
  decodeRecordBatches,
  encodeControlBatch,
  encodeRecordBatch,
  readBatchHeader,
  recordOffset,
  recordTimestamp,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  splitBatches,
  verifyCrc,
  writeInt64,
} from '../../src/protocol/records.js';
import { validateProduceRecords } from '../../src/protocol/validate.js';
import { Prng } from './prng.js';

const CODECS: CompressionCodec[] = [0, 1, 2, 3, 4];

function randomInput(rng: Prng, opts: { minRecords?: number; codec?: CompressionCodec } = {}): BatchInput {
  const n = rng.int(opts.minRecords ?? 0, 50);
  const base = 1_700_000_000_000 + rng.int(0, 1_000_000_000);
  const records: BatchInput['records'] = [];
  for (let i = 0; i < n; i++) {
    const valueSize = rng.bool(0.05) ? rng.int(4096, 9000) : rng.int(0, 200);
    const headers = [];
    for (let h = rng.int(0, 3); h > 0; h--) {
      headers.push({ key: rng.string(12), value: rng.bool(0.2) ? null : rng.bytes(rng.int(0, 30)) });
    }
    records.push({
      key: rng.bool(0.3) ? null : rng.bytes(rng.int(0, 40)),
      value: rng.bool(0.1) ? null : rng.bool() ? rng.compressibleBytes(valueSize) : rng.bytes(valueSize),
      headers,
      timestamp: base + rng.int(-5000, 5000),
    });
  }
  const idempotent = rng.bool();
  return {
    records,
    baseOffset: rng.bool() ? 0 : rng.int(0, 2 ** 40),
    compression: opts.codec ?? rng.pick(CODECS),
    producerId: idempotent ? rng.int(0, 2 ** 45) : -1,
    producerEpoch: idempotent ? rng.int(0, 32767) : -1,
    baseSequence: idempotent ? rng.int(0, 2 ** 31 - 100) : -1,
    transactional: idempotent && rng.bool(),
    partitionLeaderEpoch: rng.int(-1, 1000),
  };
}

function checkRoundTrip(input: BatchInput, buf: Buffer, label: string): void {
  const batch = decodeRecordBatch(buf);
  const h = batch.header;
  const n = input.records.length;
  assert.deepEqual(readBatchHeader(buf), h, label);
  assert.equal(h.magic, MAGIC_V2, label);
  assert.equal(h.batchLength + 12, buf.length, label);
  assert.equal(batchSize(buf), buf.length, label);
  assert.equal(h.crc, crcOf(buf), label);
  assert.equal(h.crc, crc32c(buf.subarray(21)) >>> 0, label);
  assert.ok(verifyCrc(buf), label);
  assert.equal(h.baseOffset, input.baseOffset ?? 0, label);
  assert.equal(h.attributes & Attr.compressionMask, input.compression ?? 0, label);
  assert.equal((h.attributes & Attr.transactional) !== 0, input.transactional === true, label);
  assert.equal(h.producerId, input.producerId ?? -1, label);
  assert.equal(h.producerEpoch, input.producerEpoch ?? -1, label);
  assert.equal(h.baseSequence, input.baseSequence ?? -1, label);
  assert.equal(h.partitionLeaderEpoch, input.partitionLeaderEpoch ?? -1, label);
  assert.equal(h.recordsCount, n, label);
  if (n > 0) {
    assert.equal(h.lastOffsetDelta, n - 1, label);
    assert.equal(h.baseTimestamp, input.records[0]!.timestamp, label);
    assert.equal(h.maxTimestamp, Math.max(...input.records.map((r) => r.timestamp!)), label);
  }
  assert.equal(batch.records.length, n, label);
  for (let i = 0; i < n; i++) {
    const want = input.records[i]!;
    const got = batch.records[i]!;
    assert.equal(got.offsetDelta, i, label);
    assert.equal(recordOffset(h, got), h.baseOffset + i, label);
    assert.equal(recordTimestamp(h, got), want.timestamp, label);
    assert.deepEqual(got.key, want.key ?? null, `${label} record ${i} key`);
    assert.deepEqual(got.value, want.value, `${label} record ${i} value`);
    assert.deepEqual(got.headers, want.headers ?? [], `${label} record ${i} headers`);
  }
}

test('property: encode → decode round-trips random batches (all codecs)', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rng = new Prng(seed);
    const input = randomInput(rng);
    checkRoundTrip(input, encodeRecordBatch(input), `seed ${seed}`);
  }
});

test('property: back-to-back batches decode in order; a truncated tail is ignored', () => {
  for (let seed = 1000; seed < 1050; seed++) {
    const rng = new Prng(seed);
    const inputs = Array.from({ length: rng.int(1, 4) }, () => randomInput(rng));
    const bufs = inputs.map(encodeRecordBatch);
    const all = Buffer.concat(bufs);
    const tail = encodeRecordBatch(randomInput(rng));
    const withTail = Buffer.concat([all, tail.subarray(0, rng.int(0, tail.length - 1))]);
    const decoded = decodeRecordBatches(withTail);
    assert.equal(decoded.length, inputs.length, `seed ${seed}`);
    decoded.forEach((d, i) => assert.equal(d.records.length, inputs[i]!.records.length, `seed ${seed}`));
    assert.deepEqual(splitBatches(withTail), bufs, `seed ${seed}`);
  }
});

test('records default to index offsetDeltas, and keys/values/headers may be null or empty', () => {
  const buf = encodeRecordBatch({
    records: [
      { value: null },
      { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [{ key: '', value: null }], timestamp: 5 },
    ],
    baseTimestamp: 3,
  });
  const { header, records } = decodeRecordBatch(buf);
  assert.equal(header.baseTimestamp, 3);
  assert.equal(header.maxTimestamp, 5);
  assert.deepEqual(records[0], { attributes: 0, timestampDelta: 0, offsetDelta: 0, key: null, value: null, headers: [] });
  assert.deepEqual(records[1], {
    attributes: 0,
    timestampDelta: 2,
    offsetDelta: 1,
    key: Buffer.alloc(0),
    value: Buffer.alloc(0),
    headers: [{ key: '', value: null }],
  });
});

test('in-place rewrites: baseOffset and leader epoch keep the CRC; LogAppendTime recomputes it', () => {
  const rng = new Prng(7);
  for (const codec of CODECS) {
    const input = randomInput(rng, { minRecords: 1, codec });
    const buf = encodeRecordBatch(input);
    const crc = buf.readUInt32BE(BatchOffsets.crc);
    setBaseOffset(buf, 2 ** 48 + 17);
    setPartitionLeaderEpoch(buf, 42);
    assert.ok(verifyCrc(buf));
    assert.equal(buf.readUInt32BE(BatchOffsets.crc), crc);
    const h1 = readBatchHeader(buf);
    assert.equal(h1.baseOffset, 2 ** 48 + 17);
    assert.equal(h1.partitionLeaderEpoch, 42);

    setLogAppendTime(buf, 1_800_000_000_123);
    assert.ok(verifyCrc(buf), `codec ${codec}: CRC valid after LogAppendTime`);
    const { header, records } = decodeRecordBatch(buf);
    assert.equal(header.attributes & Attr.timestampType, Attr.timestampType);
    assert.equal(header.attributes & Attr.compressionMask, codec);
    assert.equal(header.maxTimestamp, 1_800_000_000_123);
    assert.equal(header.baseTimestamp, input.records[0]!.timestamp);
    for (const r of records) assert.equal(recordTimestamp(header, r), 1_800_000_000_123);
  }
  // At a position inside a larger buffer.
  const a = encodeRecordBatch(randomInput(new Prng(8), { minRecords: 1 }));
  const b = encodeRecordBatch(randomInput(new Prng(9), { minRecords: 1 }));
  const both = Buffer.concat([a, b]);
  setBaseOffset(both, 100, a.length);
  setLogAppendTime(both, 99, a.length);
  assert.ok(verifyCrc(both, 0));
  assert.ok(verifyCrc(both, a.length));
  const [, second] = decodeRecordBatches(both);
  assert.equal(second!.header.baseOffset, 100);
  assert.equal(second!.header.maxTimestamp, 99);
});

test('control batches: transaction markers encode and decode', () => {
  for (const type of [0, 1] as const) {
    const buf = encodeControlBatch({ producerId: 4000, producerEpoch: 3, type, coordinatorEpoch: 77, timestamp: 1234, baseOffset: 9 });
    const { header, records } = decodeRecordBatch(buf);
    assert.equal(header.attributes & (Attr.control | Attr.transactional), Attr.control | Attr.transactional);
    assert.equal(header.baseSequence, -1);
    assert.equal(header.producerId, 4000);
    assert.equal(header.producerEpoch, 3);
    assert.equal(header.baseOffset, 9);
    assert.equal(header.maxTimestamp, 1234);
    assert.equal(records.length, 1);
    assert.equal(controlRecordType(records[0]!), type === 0 ? 'ABORT' : 'COMMIT');
    assert.equal(controlCoordinatorEpoch(records[0]!), 77);
    // Kafka's layout: key = version 0 + type, value = version 0 + coordinator epoch.
    assert.deepEqual(records[0]!.key, Buffer.from([0, 0, 0, type]));
    assert.deepEqual(records[0]!.value, Buffer.from([0, 0, 0, 0, 0, 77]));
  }
  assert.equal(controlRecordType({ attributes: 0, timestampDelta: 0, offsetDelta: 0, key: Buffer.from([0, 0, 0, 3]), value: null, headers: [] }), 3);
  assert.throws(() => controlRecordType({ attributes: 0, timestampDelta: 0, offsetDelta: 0, key: null, value: null, headers: [] }), CorruptRecordError);
});

// ------------------------------------------------------------------------------ decoder safety

function assertCorrupt(fn: () => unknown, label: string): void {
  assert.throws(fn, (err: unknown) => err instanceof CorruptRecordError && err.code === 'CORRUPT_MESSAGE', label);
}

test('decoder refuses malformed batches with CorruptRecordError', () => {
  const good = encodeRecordBatch(randomInput(new Prng(11), { minRecords: 3, codec: 0 }));
  assertCorrupt(() => decodeRecordBatch(good.subarray(0, 60)), 'short header');
  assertCorrupt(() => decodeRecordBatch(good.subarray(0, good.length - 1)), 'truncated');
  const badCrc = Buffer.from(good);
  badCrc[good.length - 1] ^= 1;
  assertCorrupt(() => decodeRecordBatch(badCrc), 'crc');
  const magic1 = Buffer.from(good);
  magic1[16] = 1;
  assertCorrupt(() => decodeRecordBatch(magic1), 'magic');
  const badCount = Buffer.from(good);
  badCount.writeInt32BE(4, BatchOffsets.recordsCount);
  badCount.writeUInt32BE(crcOf(badCount), BatchOffsets.crc);
  assertCorrupt(() => decodeRecordBatch(badCount), 'count larger than records');
  const hugeCount = Buffer.from(good);
  hugeCount.writeInt32BE(0x7fffffff, BatchOffsets.recordsCount);
  hugeCount.writeUInt32BE(crcOf(hugeCount), BatchOffsets.crc);
  assertCorrupt(() => decodeRecordBatch(hugeCount), 'absurd count');
  const codec7 = Buffer.from(good);
  codec7.writeInt16BE(7, BatchOffsets.attributes);
  codec7.writeUInt32BE(crcOf(codec7), BatchOffsets.crc);
  assertCorrupt(() => decodeRecordBatch(codec7), 'codec 7');
  const shortLen = Buffer.from(good);
  shortLen.writeInt32BE(10, BatchOffsets.batchLength);
  assertCorrupt(() => decodeRecordBatches(shortLen), 'batchLength < 49 in a stream');
});

test('fuzz: mutated batches decode or throw CorruptRecordError, never anything else', () => {
  for (let seed = 2000; seed < 2600; seed++) {
    const rng = new Prng(seed);
    const codec = rng.pick(CODECS);
    const buf = Buffer.from(encodeRecordBatch(randomInput(rng, { codec, minRecords: 1 })));
    const flips = rng.int(1, 5);
    for (let f = 0; f < flips; f++) {
      // Aim mostly at the header and the start of the records.
      const at = rng.bool(0.7) ? rng.int(0, Math.min(buf.length - 1, 120)) : rng.int(0, buf.length - 1);
      buf[at] = rng.int(0, 255);
    }
    // Fix the CRC half the time so the record parser itself is exercised.
    if (rng.bool() && buf.length >= RECORD_BATCH_OVERHEAD) buf.writeUInt32BE(crcOf(buf), BatchOffsets.crc);
    for (const run of [() => decodeRecordBatch(buf, { maxDecompressedBytes: 1 << 20 }), () => decodeRecordBatches(buf)]) {
      try {
        run();
      } catch (err) {
        assert.ok(err instanceof CorruptRecordError, `seed ${seed}: ${String(err)}`);
      }
    }
    const v = validateProduceRecords(buf, { maxMessageBytes: 1 << 20 });
    if (!v.ok) assert.ok([2, 10, 43, 87].includes(v.errorCode), `seed ${seed}: ${v.errorCode}`);
  }
});

// ---------------------------------------------------------------------------- golden bytes

const GOLDEN = '/work/shared/kafka-protocol/golden-kafkajs/';

function golden(name: string): Buffer {
  const json = JSON.parse(readFileSync(GOLDEN + name, 'utf8')) as { data: number[] };
  return Buffer.from(json.data);
}

/** Finds magic-2 batches inside a message body: magic at +16, a sane length, a valid CRC. */
function findBatches(body: Buffer): Array<{ at: number; size: number }> {
  const found: Array<{ at: number; size: number }> = [];
  for (let at = 0; at + RECORD_BATCH_OVERHEAD <= body.length; at++) {
    if (body[at + 16] !== 2) continue;
    const size = batchSize(body, at);
    if (size < RECORD_BATCH_OVERHEAD || at + size > body.length || !verifyCrc(body, at)) continue;
    found.push({ at, size });
    at += size - 1;
  }
  return found;
}

function strings(body: Buffer): Array<{ key: string | null; value: string | null; headers: string[] }> {
  const out = [];
  for (const { at, size } of findBatches(body)) {
    for (const r of decodeRecordBatch(body.subarray(at, at + size)).records) {
      out.push({
        key: r.key?.toString() ?? null,
        value: r.value?.toString() ?? null,
        headers: r.headers.map((h) => `${h.key}=${h.value?.toString()}`),
      });
    }
  }
  return out;
}

test('golden: KafkaJS produce requests v3..v7 carry batches we decode and accept', () => {
  for (const v of [3, 4, 5, 6, 7]) {
    const body = golden(`produce/v${v}_request.json`);
    const batches = findBatches(body);
    assert.equal(batches.length, 1, `produce v${v}`);
    const { at, size } = batches[0]!;
    // The records field is an INT32-sized blob directly before the batch.
    assert.equal(body.readInt32BE(at - 4), size, `produce v${v} records size`);
    const recs = strings(body);
    assert.ok(recs.length >= 3);
    for (const r of recs) {
      assert.match(r.key!, /^key-/);
      assert.match(r.value!, /value-/);
    }
    const result = validateProduceRecords(body.subarray(at, at + size), { maxMessageBytes: 1 << 20, requireKeys: true });
    assert.ok(result.ok, `produce v${v}: ${JSON.stringify(result)}`);
    assert.equal(result.recordCount, recs.length);
  }
  const v6 = strings(golden('produce/v6_request.json'));
  assert.equal(v6.length, 10);
  assert.deepEqual(v6[0], {
    key: 'key-0',
    value: 'value-0',
    headers: ['header-a0=header-value-a0', 'header-b0=header-value-b0', 'header-c0=header-value-c0'],
  });
});

test('golden: Kafka fetch responses (plain, gzip, snappy, Scala producer) decode', () => {
  for (const v of [4, 5, 6, 7, 8, 9, 10, 11]) {
    assert.deepEqual(
      strings(golden(`fetch/v${v}_response.json`)),
      [0, 1, 2].map((i) => ({ key: `key-${i}`, value: `some-value-${i}`, headers: [`header-key-${i}=header-value-${i}`] })),
      `fetch v${v}`,
    );
  }
  const gz = golden('fetch/v4_response_gzip.json');
  assert.deepEqual(findBatches(gz).map(({ at }) => gz.readInt16BE(at + 21) & 7), [1, 1]);
  assert.deepEqual(
    strings(gz).map((r) => r.key),
    ['key-0', 'key-1', 'key-2', 'key-1', 'key-2', 'key-3'],
  );
  const sn = golden('fetch/v4_response_snappy.json');
  assert.deepEqual(findBatches(sn).map(({ at }) => sn.readInt16BE(at + 21) & 7), [2]);
  assert.deepEqual(strings(sn), [{ key: 'key-149', value: 'value-149-2019-02-04T15:13:48.187Z', headers: [] }]);
  const scala = strings(golden('fetch/v4_from_scala_producer_response.json'));
  assert.deepEqual(scala.map((r) => r.key), ['KEY-1', 'KEY-2', 'KEY-3', 'KEY-4', 'KEY-5', 'KEY-6']);
});

test('golden: a fetch with old-format messages then v2 batches', () => {
  const body = golden('fetch/v4_response_mixed_formats.json');
  const recordsAt = 70; // after the partition header; the INT32 size precedes it
  const records = body.subarray(recordsAt, recordsAt + body.readInt32BE(recordsAt - 4));
  assert.equal(records[16], 1, 'starts with a magic-1 message set');
  assert.throws(() => decodeRecordBatches(records), CorruptRecordError);
  const v = validateProduceRecords(records, { maxMessageBytes: 1 << 20 });
  assert.equal(v.ok ? 0 : v.errorCode, 43);
  const firstV2 = findBatches(records)[0]!.at;
  const batches = decodeRecordBatches(records.subarray(firstV2));
  assert.deepEqual(batches.map((b) => b.records.length), [237, 65, 512]);
  for (const b of batches) for (const r of b.records) assert.match(r.key!.toString(), /^key-\d+$/);
});

// ------------------------------------------------------------------------------- validation

function batchOf(records: number, patch?: (buf: Buffer) => void, input: Partial<BatchInput> = {}): Buffer {
  const buf = encodeRecordBatch({
    records: Array.from({ length: records }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.alloc(100, i) })),
    ...input,
  });
  if (patch !== undefined) {
    patch(buf);
    buf.writeUInt32BE(crcOf(buf), BatchOffsets.crc);
  }
  return buf;
}

function errorCodeOf(buf: Buffer, opts: Partial<Parameters<typeof validateProduceRecords>[1]> = {}): number {
  const r = validateProduceRecords(buf, { maxMessageBytes: 1 << 20, ...opts });
  return r.ok ? 0 : r.errorCode;
}

test('validation: valid batches pass, for every codec, single and back to back', () => {
  const rng = new Prng(21);
  for (const codec of CODECS) {
    for (let i = 0; i < 10; i++) {
      const input = randomInput(rng, { codec, minRecords: 1 });
      input.baseOffset = 0;
      const buf = encodeRecordBatch(input);
      const r = validateProduceRecords(buf, { maxMessageBytes: 1 << 22 });
      assert.ok(r.ok, `codec ${codec}: ${JSON.stringify(r)}`);
      assert.equal(r.recordCount, input.records.length);
      assert.equal(r.maxTimestamp, Math.max(...input.records.map((x) => x.timestamp!)));
      assert.deepEqual(r.batches[0]!.header, readBatchHeader(buf));
      assert.equal(r.batches[0]!.size, buf.length);
      const shallow = validateProduceRecords(buf, { maxMessageBytes: 1 << 22, deepValidateCompressed: false });
      assert.ok(shallow.ok);
    }
  }
  const two = Buffer.concat([batchOf(3), batchOf(2, undefined, { compression: 1 })]);
  const r = validateProduceRecords(two, { maxMessageBytes: 1 << 20 });
  assert.ok(r.ok);
  assert.equal(r.recordCount, 5);
  assert.deepEqual(r.batches.map((b) => [b.offset, b.size]), [
    [0, batchOf(3).length],
    [batchOf(3).length, two.length - batchOf(3).length],
  ]);
});

test('validation: each rule yields Kafka\'s error code', () => {
  const good = batchOf(3);
  assert.equal(errorCodeOf(good), 0);
  // Framing.
  assert.equal(errorCodeOf(Buffer.alloc(0)), 87, 'no batch');
  assert.equal(errorCodeOf(good.subarray(0, good.length - 1)), 2, 'truncated batch');
  assert.equal(errorCodeOf(Buffer.concat([good, good.subarray(0, 30)])), 2, 'partial trailing batch');
  assert.equal(errorCodeOf(Buffer.concat([good, good.subarray(0, 10)])), 2, 'a few trailing bytes');
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt32BE(48, 8))), 2, 'batchLength < 49');
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt32BE(1 << 30, 8))), 2, 'batchLength beyond input');
  // Magic, for v2 and for a v0/v1 message set (offset, size, crc, magic → magic also at 16).
  assert.equal(errorCodeOf(batchOf(3, (b) => (b[16] = 1))), 43, 'magic 1');
  const v0 = Buffer.alloc(12 + 14 + 5);
  v0.writeInt32BE(19, 8);
  v0[16] = 0;
  assert.equal(errorCodeOf(v0), 43, 'magic 0 message set');
  // Offsets, size, CRC.
  assert.equal(errorCodeOf(batchOf(3, (b) => writeInt64(b, 5, 0))), 87, 'baseOffset != 0');
  assert.equal(errorCodeOf(good, { maxMessageBytes: good.length - 1 }), 10, 'too large');
  assert.equal(errorCodeOf(good, { maxMessageBytes: good.length }), 0, 'exactly max.message.bytes');
  const badCrc = Buffer.from(good);
  badCrc[70] ^= 0x40;
  assert.equal(errorCodeOf(badCrc), 2, 'crc');
  // Header consistency.
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt16BE(5, 21))), 2, 'codec 5');
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt16BE(Attr.control, 21))), 87, 'control batch from a client');
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt32BE(3, 23))), 87, 'lastOffsetDelta != count - 1');
  assert.equal(errorCodeOf(batchOf(3, (b) => { b.writeInt32BE(0, 57); b.writeInt32BE(-1, 23); })), 87, 'zero records');
  assert.equal(errorCodeOf(batchOf(0)), 87, 'empty batch');
  assert.equal(errorCodeOf(batchOf(3, undefined, { producerId: 7, producerEpoch: 0, baseSequence: -1 })), 87, 'pid without sequence');
  assert.equal(errorCodeOf(batchOf(3, undefined, { producerId: 7, producerEpoch: 0, baseSequence: 0 })), 0, 'idempotent ok');
  // Records.
  const gap = encodeRecordBatch({ records: [{ value: null }, { value: null, offsetDelta: 2 }], lastOffsetDelta: 1 });
  gap.writeInt32BE(1, 23);
  gap.writeUInt32BE(crcOf(gap), 17);
  assert.equal(errorCodeOf(gap), 87, 'offsetDeltas not consecutive');
  assert.equal(errorCodeOf(batchOf(3, (b) => { b.writeInt32BE(4, 57); b.writeInt32BE(3, 23); })), 87, 'count larger than records');
  assert.equal(errorCodeOf(batchOf(3, (b) => { b.writeInt32BE(2, 57); b.writeInt32BE(1, 23); })), 87, 'bytes after the records');
  assert.equal(errorCodeOf(batchOf(3, (b) => (b[61] = 0x7e))), 87, 'record length wrong');
  assert.equal(errorCodeOf(batchOf(3, (b) => (b[61 + 5] = 0x05))), 87, 'negative key length < -1');
  // Compressed payload that is not what the codec says.
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt16BE(2, 21))), 2, 'raw records labelled snappy');
  assert.equal(errorCodeOf(batchOf(3, (b) => b.writeInt16BE(2, 21)), { deepValidateCompressed: false }), 0, 'shallow skips it');
  // Compacted topics.
  const nullKey = encodeRecordBatch({ records: [{ key: Buffer.from('a'), value: null }, { key: null, value: null }] });
  assert.equal(errorCodeOf(nullKey), 0);
  const r = validateProduceRecords(nullKey, { maxMessageBytes: 1 << 20, requireKeys: true });
  assert.ok(!r.ok);
  assert.equal(r.errorCode, 87);
  assert.deepEqual(r.recordErrors?.map((e) => e.batchIndex), [1]);
  const nullKeyGzip = encodeRecordBatch({ records: [{ key: null, value: null }], compression: 1 });
  assert.equal(errorCodeOf(nullKeyGzip, { requireKeys: true }), 87);
});

test('validation: LogAppendTime batches report maxTimestamp from the header', () => {
  const buf = batchOf(2, undefined, { baseTimestamp: 10 });
  setLogAppendTime(buf, 5000);
  const r = validateProduceRecords(buf, { maxMessageBytes: 1 << 20 });
  assert.ok(r.ok);
  assert.equal(r.maxTimestamp, 5000);
});

test('benchmark (informational): validate a 16 KiB batch of 100 B records', () => {
  const records = Array.from({ length: 150 }, (_, i) => ({ key: null, value: Buffer.alloc(100, i) }));
  const buf = encodeRecordBatch({ records });
  assert.ok(buf.length > 16_000 && buf.length < 17_500, `batch is ${buf.length} bytes`);
  const opts = { maxMessageBytes: 1 << 20 };
  for (let i = 0; i < 2000; i++) validateProduceRecords(buf, opts);
  const iterations = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    if (!validateProduceRecords(buf, opts).ok) throw new Error('invalid');
  }
  const ns = Number(process.hrtime.bigint() - t0);
  const perBatchUs = ns / iterations / 1000;
  const recordsPerSec = (records.length * iterations) / (ns / 1e9);
  const mbPerSec = (buf.length * iterations) / (ns / 1e9) / 1e6;
  console.log(
    `# validateProduceRecords: ${buf.length} B batch, ${records.length} records: ${perBatchUs.toFixed(2)} µs/batch, ` +
      `${(recordsPerSec / 1e6).toFixed(2)} M records/s, ${mbPerSec.toFixed(0)} MB/s`,
  );
});
