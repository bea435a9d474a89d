import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import * as snappy from 'snappy';
import * as zstd from 'zstd-napi';
import * as lz4 from 'lz4-napi';
import {
  CompressionType,
  type CompressionCodec,
  CorruptRecordError,
  compress,
  compressionName,
  decompress,
  parseCompressionName,
} from '../../src/protocol/compression.js';
import { Prng } from './prng.js';

const CODECS: CompressionCodec[] = [0, 1, 2, 3, 4];

function assertCorrupt(fn: () => unknown, reason?: 'corrupt' | 'too_large'): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CorruptRecordError, `expected CorruptRecordError, got ${String(err)}`);
    assert.equal(err.code, 'CORRUPT_MESSAGE');
    assert.equal(err.kafkaErrorCode, 2);
    if (reason !== undefined) assert.equal(err.reason, reason);
    return true;
  });
}

test('codec names round-trip', () => {
  for (const c of CODECS) assert.equal(parseCompressionName(compressionName(c)), c);
  assert.equal(parseCompressionName('ZSTD'), CompressionType.Zstd);
  assert.equal(parseCompressionName('producer'), undefined);
  assert.throws(() => compressionName(7 as CompressionCodec), RangeError);
});

test('every codec round-trips random, compressible and empty data', () => {
  const rng = new Prng(1);
  for (const codec of CODECS) {
    for (let i = 0; i < 20; i++) {
      const n = rng.pick([0, 1, 10, 1000, 70_000, 300_000]);
      const data = rng.bool() ? rng.bytes(n) : rng.compressibleBytes(n);
      const packed = compress(codec, data);
      assert.deepEqual(decompress(codec, packed), data, `codec ${codec} n=${n} seed 1 iter ${i}`);
    }
  }
});

test('lz4 writes the frame format with independent blocks (what Java consumers require)', () => {
  const frame = compress(3, Buffer.from('hello'.repeat(100)));
  assert.equal(frame.readUInt32LE(0), 0x184d2204);
  const flg = frame[4]!;
  assert.equal(flg >> 6, 1, 'frame version 01');
  assert.notEqual(flg & 0x20, 0, 'block independence flag');
});

function fixtureData(): Buffer {
  const b = Buffer.alloc(200_000);
  for (let i = 0; i < b.length; i++) b[i] = 97 + ((i >> 12) % 26) + (i % 1000 === 0 ? 1 : 0);
  return b;
}

// Written by the lz4 CLI 1.9 from fixtureData():
//   `lz4 -B4 -BD -BX --content-size` (64 KiB linked blocks, block checksums, content size+checksum)
//   `lz4 -B5 --no-frame-crc`         (256 KiB independent blocks, no content checksum)
const LZ4_LINKED_CHECKSUMMED = 'BCJNGFxAQA0DAAAAAADc/AEAAC9iYQEA////1g/oA////////////////xEfYgEA////dx9jiAP///93DwIATQ/oA///////////hR9jAQD///8XH2QoA////xcPAgCtD+gD///////////lH2QBAP//th9lyAL//7YPAgD/Dg/oA////////////0YfZQEA//9WH2ZoAv//Vg8CAP9uD+gD////////////ph9mAQD/9R9nCAL/9Q8CAP/OD+gD/////////////wcfZwEA/5UfaKgB/5UPAgD//y8P6AP/////////////Zx9oAQD/NR9pSAH/NQ8CAP//jw/oA//////////////HH2kBANQfaugA1A8CAP//7w/oA///////////////KB9qAQB0H2uIAHQPAgD///9QD+gD//////////////+IH2sBABQfbCgAFA8CAP///7AP6AP//////////////+gfbAEA////nx9tsAP///+fDwIAJQ/oA///////////XR9tAQD///8/H25QA////z8PAgCFD+gD//////////+9H24BAP//3h9v8AL//94PAgDlD+gD////////////Hh9vAQD//34fcJAC//9+DwIA/0YP6AP///////////9+H3ABAP//Hh9xMAL//x4PAgD/pg/oA////////////9lQcHBwcHDz6xKkAwIAAB9xAQD/vR9y0AH/vQ8CAP//Bw/oA/////////////8/H3IBAP9dH3NwAf9dDwIA//9nD+gD/////////////58fcwEA/B90EAH8DwIA///HD+gD//////////////8AH3QBAJwfdbAAnA8CAP///ygP6AP//////////////2AfdQEAPB92UAA8DwIA////iA/oA///////////////wB92AQD////HH3fYA////8cMAgAP6AP//////////zUfdwEA////Zx94eAP///9nDwIAXQ/oA///////////lR94AQD///8HH3kYA////wcPAgC9D+gD///////////1H3kBAP//ph96uAL//6YPAgD/Hg/oA////////////1YfegEA//9GH3tYAv//Rg8CAP9+D+gD////////////th9hAQD/5R9i+AH/5Q8CAP/eD+gD/////////////xcfYgEA/4UfY5gB/4UPAgD//z8P6AP/////////////dx9jAQD/JR9kOAH/JQ8CAP//nw/oA//////////////XH2QBAMQfZdgAxA8CAP///wAP6AP//////////////zgfZQEAZB9meABkDwIA////YA/oA///////////////mB9mAQAEH2cYAAQPAgD////AD+gD///////////////zUGZmZmZmccF8DgICAAAfZwEA////jx9ooAP///+PDwIANQ/oA///////////bR9oAQD///8vH2lAA////y8PAgCVD+gD///////////NH2kBAP//zh9q4AL//84PAgD1D+gD////////////Lh9qAQD//24fa4AC//9uDwIA/1YP6AP///////////+OH2sBAP//Dh9sIAL//w4PAgD/tg/oA////////////+4fbAEA/60fbcAB/60PAgD//xcP6AP/////////////Tx9tAQD/TR9uYAH/TQ8CAP//dw/oA/////////////+vH24BAOwfbwAB7A8CAP//1w/oA///////////////EB9vAQCMH3CgAIwPAgD///84D+gD//////////////9wH3ABACwfcUAALA8CAP///5gP6AP//////////////9AfcQEA////tx9yyAP///+3DwIADQ/oA///////////RR9yAQD///9XH3NoA////1cPAgBtD+gD//////////+lH3MBAP//9h90CAP///YPAgDND+gD////////////Bh90AQD//5YfdagC//+WDwIA/y4P6AP///////////9mH3UBAP//Nh92SAL//zYPAgD/jg/oA////////////8YfdgEA/9Ufd+gB/9UPAgD/7g/oA/////////////8iUHZ2dnZ25SUlyiMAAAAfdwEA/3UfeIgB/3UPAgD//08P6AP/////////v1B3d3d3dxDGy5oAAAAAmbadCA==';
const LZ4_NO_CONTENT_CHECKSUM = 'BCJNGGBQ+xIGAAAvYmEBAP///9YP6AP///////////////8RH2IBAP///3cfY4gD////dw8CAE0P6AP//////////4UfYwEA////Fx9kKAP///8XDwIArQ/oA///////////5R9kAQD//7YfZcgC//+2DwIA/w4P6AP///////////9GH2UBAP//Vh9maAL//1YPAgD/bg/oA////////////6YfZgEA//UfZwgC//UPAgD/zg/oA/////////////8HH2cBAP+VH2ioAf+VDwIA//8vD+gD/////////////2cfaAEA/zUfaUgB/zUPAgD//48P6AP/////////////xx9pAQDUH2roANQPAgD//+8P6AP//////////////ygfagEAdB9riAB0DwIA////UA/oA///////////////iB9rAQAUH2woABQPAgD///+wD+gD///////////////oH2wBAP///58fbbAD////nw8CACUP6AP//////////10fbQEA////Px9uUAP///8/DwIAhQ/oA///////////vR9uAQD//94fb/AC///eDwIA5Q/oA////////////x4fbwEA//9+H3CQAv//fg8CAP9GD+gD////////////fh9wAQD//x4fcTAC//8eDwIA/6YP6AP////////////eH3EBAP+9H3LQAf+9DwIA//8HD+gD/////////////z8fcgEA/10fc3AB/10PAgD//2cP6AP/////////////nx9zAQD8H3QQAfwPAgD//8cP6AP//////////////wAfdAEAnB91sACcDwIA////KA/oA///////////////YB91AQA8H3ZQADwPAgD///+ID+gD///////////////AH3YBAP///8cfd9gD////xwwCAA/oA///////////NR93AQD///9nH3h4A////2cPAgBdD+gD//////////+VH3gBAP///wcfeRgD////Bw8CAL0P6AP///////////UfeQEA//+mH3q4Av//pg8CAP8eD+gD////////////Vh96AQD//0Yfe1gC//9GDwIA/34P6AP///////////+2H2EBAP/lH2L4Af/lDwIA/94P6AP/////////////Fx9iAQD/hR9jmAH/hQ8CAP//Pw/oA/////////////93H2MBAP8lH2Q4Af8lDwIA//+fD+gD/////////////9cfZAEAxB9l2ADEDwIA////AA/oA///////////////OB9lAQBkH2Z4AGQPAgD///9gD+gD//////////////+YH2YBAAQfZxgABA8CAP///8AP6AP///////////////gfZwEA////jx9ooAP///+PDwIANQ/oA///////////bR9oAQD///8vH2lAA////y8PAgCVD+gD///////////NH2kBAP//zh9q4AL//84PAgD1D+gD////////////Lh9qAQD//24fa4AC//9uDwIA/1YP6AP///////////+OH2sBAP//Dh9sIAL//w4PAgD/tg/oA////////////+4fbAEA/60fbcAB/60PAgD//xcP6AP/////////////Tx9tAQD/TR9uYAH/TQ8CAP//dw/oA/////////////+vH24BAOwfbwAB7A8CAP//1w/oA///////////////EB9vAQCMH3CgAIwPAgD///84D+gD//////////////9wH3ABACwfcUAALA8CAP///5gP6AP//////////////9AfcQEA////tx9yyAP///+3DwIADQ/oA///////////RR9yAQD///9XH3NoA////1cPAgBtD+gD//////////+lH3MBAP//9h90CAP///YPAgDND+gD////////////Bh90AQD//5YfdagC//+WDwIA/y4P6AP///////////9mH3UBAP//Nh92SAL//zYPAgD/jg/oA////////////8YfdgEA/9Ufd+gB/9UPAgD/7g/oA/////////////8nH3cBAP91H3iIAf91DwIA//9PD+gD/////////79Qd3d3d3cAAAAA';

test('lz4 reads frames from other writers: linked blocks, checksums, content size', () => {
  const want = fixtureData();
  const linked = Buffer.from(LZ4_LINKED_CHECKSUMMED, 'base64');
  assert.equal(linked[4]! & 0x20, 0, 'fixture uses linked blocks');
  assert.deepEqual(decompress(3, linked), want);
  assert.deepEqual(decompress(3, Buffer.from(LZ4_NO_CONTENT_CHECKSUM, 'base64')), want);
  // lz4-napi's own frames with both checksum kinds, incompressible (stored) and multi-block data.
  const rng = new Prng(4);
  for (const data of [want, rng.bytes(150_000), rng.compressibleBytes(1)]) {
    const framed = lz4.compressFrameSync(data, { contentChecksum: true, blockChecksums: true });
    assert.deepEqual(decompress(3, framed), data);
  }
  // A truncated frame and a flipped header checksum are refused.
  assertCorrupt(() => decompress(3, linked.subarray(0, linked.length - 9)));
  const badHc = Buffer.from(linked);
  badHc[14] ^= 0xff;
  assertCorrupt(() => decompress(3, badHc));
});

function xerial(blocks: Buffer[]): Buffer {
  const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
  const parts: Buffer[] = [header];
  for (const block of blocks) {
    const packed = snappy.compressSync(block);
    const len = Buffer.alloc(4);
    len.writeInt32BE(packed.length);
    parts.push(len, packed);
  }
  return Buffer.concat(parts);
}

test('snappy reads the xerial (snappy-java) framing as well as raw blocks', () => {
  const rng = new Prng(2);
  const chunks = [rng.compressibleBytes(32 * 1024), rng.bytes(1000), rng.compressibleBytes(5)];
  const framed = xerial(chunks);
  assert.deepEqual(decompress(2, framed), Buffer.concat(chunks));
  assert.deepEqual(decompress(2, xerial([Buffer.from('one block')])), Buffer.from('one block'));
  // Header only: an empty payload.
  assert.equal(decompress(2, xerial([])).length, 0);
  // A block length that overruns, and a truncated length prefix.
  const overrun = Buffer.from(framed);
  overrun.writeInt32BE(1 << 30, 16);
  assertCorrupt(() => decompress(2, overrun));
  assertCorrupt(() => decompress(2, framed.subarray(0, 18)));
  // Raw block (librdkafka) still works.
  assert.deepEqual(decompress(2, snappy.compressSync(chunks[0]!)), chunks[0]);
});

test('garbage input raises CorruptRecordError, never a native crash', () => {
  const samples = [
    Buffer.alloc(0),
    Buffer.from('garbage garbage garbage'),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]),
    Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0xff, 0xff, 0xff, 0x7f]),
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x00]),
    Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00]),
  ];
  for (const codec of [1, 2, 3, 4] as const) {
    for (const s of samples) assertCorrupt(() => decompress(codec, s));
  }
});

test('fuzz: mutated compressed payloads either decode or throw CorruptRecordError', () => {
  const rng = new Prng(3);
  for (let iter = 0; iter < 400; iter++) {
    const codec = rng.pick([1, 2, 3, 4] as const);
    const data = rng.compressibleBytes(rng.int(0, 3000));
    const packed = Buffer.from(compress(codec, data));
    const flips = rng.int(1, 4);
    for (let f = 0; f < flips && packed.length > 0; f++) packed[rng.int(0, packed.length - 1)] = rng.int(0, 255);
    const cut = rng.bool(0.3) ? packed.subarray(0, rng.int(0, packed.length)) : packed;
    try {
      const out = decompress(codec, cut, 1 << 20);
      assert.ok(Buffer.isBuffer(out));
    } catch (err) {
      assert.ok(err instanceof CorruptRecordError, `seed 3 iter ${iter} codec ${codec}: ${String(err)}`);
    }
  }
});

test('decompression is bounded: output over the limit is refused', async () => {
  const big = Buffer.alloc(4 << 20); // 4 MiB of zeros compresses to almost nothing
  const limit = 1 << 20;
  for (const codec of [1, 2, 3, 4] as const) {
    const packed = compress(codec, big);
    assertCorrupt(() => decompress(codec, packed, limit), 'too_large');
    assert.equal(decompress(codec, packed, big.length).length, big.length);
  }
  // gzip with several members, as some writers produce.
  const twoMembers = Buffer.concat([gzipSync(Buffer.from('ab')), gzipSync(Buffer.from('cd'))]);
  assert.equal(decompress(1, twoMembers).toString(), 'abcd');
  // zstd frames without a content size take the streaming path, which is bounded as well.
  const streamed = await zstdStreamed(big);
  const zstdBinding = createRequire(import.meta.url)('zstd-napi/binding.js') as {
    getFrameContentSize(b: Uint8Array): number | null;
  };
  assert.equal(zstdBinding.getFrameContentSize(streamed), null, 'stream frame has no content size');
  assertCorrupt(() => decompress(4, streamed, limit), 'too_large');
  assert.deepEqual(decompress(4, streamed), big);
  assertCorrupt(() => decompress(4, streamed.subarray(0, streamed.length - 3)));
});

async function zstdStreamed(data: Buffer): Promise<Buffer> {
  const stream = new zstd.CompressStream();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  for (let i = 0; i < data.length; i += 65536) stream.write(data.subarray(i, i + 65536));
  stream.end();
  await done;
  return Buffer.concat(chunks);
}
