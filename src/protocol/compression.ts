/**
 * Compression codecs of record batch v2 (attributes bits 0-2).
 *
 *   0 none · 1 gzip (node:zlib) · 2 snappy · 3 lz4 (frame format) · 4 zstd
 *
 * Compatibility notes, by codec:
 * - gzip: plain RFC 1952; several concatenated members are accepted.
 * - snappy: decompression takes both a raw snappy block (librdkafka, KafkaJS plugins) and the
 *   xerial / snappy-java stream (`\x82SNAPPY\0`, int32 version, int32 min-compatible version, then
 *   [int32 BE length, raw block]*) that Java clients and kafka-python write. Compression writes one
 *   raw block, as librdkafka does; every client reads that.
 * - lz4: the LZ4 *frame* format (magic 0x184D2204). Output uses independent 64 KiB blocks and no
 *   content size, which Java's KafkaLZ4BlockInputStream requires (it refuses dependent blocks).
 *   Input may use linked blocks, block and content checksums and a content size (lz4 CLI,
 *   librdkafka); the header checksum is verified, block/content checksums are not (the batch's
 *   CRC-32C covers the same bytes).
 * - zstd: any sequence of frames, with or without a content size in the header.
 *
 * Decompression is bounded: output larger than `maxBytes` is refused before (or, for gzip and
 * streamed zstd, while) it is produced, so a small hostile batch cannot make the broker allocate
 * gigabytes. Every failure, including errors thrown by the native codecs, surfaces as one typed
 * `CorruptRecordError` (code 'CORRUPT_MESSAGE', Kafka error 2); nothing else escapes.
 */

import { gunzipSync, gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import * as snappy from 'snappy';
import * as lz4 from 'lz4-napi';
import * as zstd from 'zstd-napi';

/** zstd-napi's low-level binding (CJS, no ESM entry): used for a bounded streaming decoder. */
interface ZstdDCtx {
  decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
  decompress(dst: Uint8Array, src: Uint8Array): number;
  reset(directive: number): void;
}
interface ZstdBinding {
  DCtx: new () => ZstdDCtx;
  getFrameContentSize(frame: Uint8Array): number | null;
  findFrameCompressedSize(frame: Uint8Array): number;
  ResetDirective: { sessionOnly: number };
}
const zstdBinding = createRequire(import.meta.url)('zstd-napi/binding.js') as ZstdBinding;

export const CompressionType = { None: 0, Gzip: 1, Snappy: 2, Lz4: 3, Zstd: 4 } as const;
export type CompressionCodec = 0 | 1 | 2 | 3 | 4;
export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

const NAMES: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Default bound on one decompressed batch payload. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

/**
 * A record batch (or its compressed payload) that cannot be read. `kafkaErrorCode` is what a
 * Produce response should carry; `reason` tells a malformed input from one over the size limit.
 */
export class CorruptRecordError extends Error {
  readonly code = 'CORRUPT_MESSAGE' as const;
  readonly kafkaErrorCode = 2;
  readonly retriable = false;
  constructor(
    message: string,
    readonly reason: 'corrupt' | 'too_large' = 'corrupt',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CorruptRecordError';
  }
}

export function isCompressionCodec(n: number): n is CompressionCodec {
  return Number.isInteger(n) && n >= 0 && n <= 4;
}

export function compressionName(codec: CompressionCodec): CompressionName {
  const name = NAMES[codec];
  if (name === undefined) throw new RangeError(`unknown compression codec ${codec}`);
  return name;
}

/** Parses a codec name as used in configs (`compression.type`); case-insensitive. Undefined if unknown. */
export function parseCompressionName(name: string): CompressionCodec | undefined {
  const i = NAMES.indexOf(name.trim().toLowerCase() as CompressionName);
  return i < 0 ? undefined : (i as CompressionCodec);
}

export function compress(codec: CompressionCodec, data: Buffer): Buffer {
  switch (codec) {
    case 0:
      return data;
    case 1:
      return gzipSync(data);
    case 2:
      return snappy.compressSync(data, { copyOutputData: true });
    case 3:
      return lz4.compressFrameSync(data);
    case 4:
      return zstd.compress(data);
    default:
      throw new RangeError(`unknown compression codec ${codec as number}`);
  }
}

/** Decompresses `data`; throws CorruptRecordError on malformed input or output over `maxBytes`. */
export function decompress(
  codec: CompressionCodec,
  data: Buffer,
  maxBytes: number = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Buffer {
  let out: Buffer;
  try {
    switch (codec) {
      case 0:
        out = data;
        break;
      case 1:
        out = gunzip(data, maxBytes);
        break;
      case 2:
        out = snappyDecompress(data, maxBytes);
        break;
      case 3:
        out = lz4Decompress(data, maxBytes);
        break;
      case 4:
        out = zstdDecompress(data, maxBytes);
        break;
      default:
        throw new CorruptRecordError(`unknown compression codec ${codec as number}`);
    }
  } catch (err) {
    if (err instanceof CorruptRecordError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    const tooLarge = (err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE';
    throw new CorruptRecordError(
      tooLarge
        ? `${NAMES[codec]} payload decompresses to more than ${maxBytes} bytes`
        : `${NAMES[codec] ?? codec} decompression failed: ${msg}`,
      tooLarge ? 'too_large' : 'corrupt',
      { cause: err },
    );
  }
  if (out.length > maxBytes) throw tooLarge(codec, maxBytes);
  return out;
}

function tooLarge(codec: CompressionCodec, maxBytes: number): CorruptRecordError {
  return new CorruptRecordError(`${NAMES[codec]} payload decompresses to more than ${maxBytes} bytes`, 'too_large');
}

// ---------------------------------------------------------------------------------------- gzip

function gunzip(data: Buffer, maxBytes: number): Buffer {
  // zlib refuses to grow past maxOutputLength (ERR_BUFFER_TOO_LARGE), so memory stays bounded.
  return gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) });
}

// -------------------------------------------------------------------------------------- snappy

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

function isXerial(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.compare(XERIAL_MAGIC, 0, 8, 0, 8) === 0;
}

/** The uncompressed length a raw snappy block declares (its leading unsigned varint, ≤ 2^32-1). */
function snappyDeclaredLength(block: Buffer, start: number, end: number): number {
  let value = 0;
  let mult = 1;
  for (let i = start; i < end && i < start + 5; i++) {
    const b = block[i]!;
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return value;
    mult *= 128;
  }
  throw new CorruptRecordError('snappy block has no valid length preamble');
}

function snappyBlock(block: Buffer, budget: number, codecMax: number): Buffer {
  const declared = snappyDeclaredLength(block, 0, block.length);
  if (declared > budget) throw tooLarge(2, codecMax);
  const out = snappy.uncompressSync(block, { asBuffer: true, copyOutputData: true }) as Buffer;
  if (out.length !== declared) throw new CorruptRecordError('snappy block length mismatch');
  return out;
}

function snappyDecompress(data: Buffer, maxBytes: number): Buffer {
  if (!isXerial(data)) return snappyBlock(data, maxBytes, maxBytes);
  // snappy-java stream: header, then length-prefixed raw blocks until the end of the input.
  const parts: Buffer[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_BYTES;
  while (pos < data.length) {
    if (pos + 4 > data.length) throw new CorruptRecordError('truncated xerial snappy block length');
    const n = data.readInt32BE(pos);
    pos += 4;
    if (n < 0 || pos + n > data.length) throw new CorruptRecordError(`xerial snappy block of ${n} bytes overruns the input`);
    const block = data.subarray(pos, pos + n);
    pos += n;
    if (n === 0) continue;
    const out = snappyBlock(block, maxBytes - total, maxBytes);
    total += out.length;
    parts.push(out);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

// ----------------------------------------------------------------------------------------- lz4

const LZ4_FRAME_MAGIC = 0x184d2204;
const LZ4_SKIPPABLE_MASK = 0xfffffff0;
const LZ4_SKIPPABLE_MAGIC = 0x184d2a50;
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/**
 * Decodes LZ4 frames block by block with lz4-napi's block decoder (its frame decoder is several
 * times slower on batch-sized inputs). Handles independent and linked blocks (the previous 64 KiB
 * of output is the dictionary), stored (uncompressed) blocks, block checksums, content size,
 * content checksum, dictionary ids and skippable frames. Checksums are skipped, not verified: the
 * batch CRC-32C already covers these bytes. Output is bounded by `maxBytes` block by block.
 */
function lz4Decompress(data: Buffer, maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  let pos = 0;
  let frames = 0;
  while (pos < data.length) {
    if (pos + 4 > data.length) throw new CorruptRecordError('truncated lz4 frame magic');
    const magic = data.readUInt32LE(pos);
    if ((magic & LZ4_SKIPPABLE_MASK) >>> 0 === LZ4_SKIPPABLE_MAGIC) {
      if (pos + 8 > data.length) throw new CorruptRecordError('truncated lz4 skippable frame');
      pos += 8 + data.readUInt32LE(pos + 4);
      continue;
    }
    if (magic !== LZ4_FRAME_MAGIC) throw new CorruptRecordError(`bad lz4 frame magic 0x${magic.toString(16)}`);
    if (pos + 7 > data.length) throw new CorruptRecordError('truncated lz4 frame header');
    const flg = data[pos + 4]!;
    const bd = data[pos + 5]!;
    if (flg >> 6 !== 1) throw new CorruptRecordError(`unsupported lz4 frame version ${flg >> 6}`);
    if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw new CorruptRecordError('reserved lz4 frame header bits set');
    const blockMax = LZ4_BLOCK_MAX[(bd >> 4) & 7]!;
    if (blockMax === 0) throw new CorruptRecordError(`bad lz4 block size id ${(bd >> 4) & 7}`);
    const linked = (flg & 0x20) === 0;
    const blockChecksum = (flg & 0x10) !== 0;
    const hasContentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    let p = pos + 6;
    let contentSize = -1;
    if (hasContentSize) {
      if (p + 8 > data.length) throw new CorruptRecordError('truncated lz4 content size');
      contentSize = data.readUInt32LE(p) + data.readUInt32LE(p + 4) * 4294967296;
      if (contentSize > maxBytes - total) throw tooLarge(3, maxBytes);
      p += 8;
    }
    if ((flg & 0x01) !== 0) p += 4; // dictionary id: Kafka writers never set one
    if (p >= data.length) throw new CorruptRecordError('truncated lz4 frame header');
    if (data[p] !== ((xxh32Short(data, pos + 4, p) >>> 8) & 0xff)) {
      throw new CorruptRecordError('lz4 frame header checksum mismatch');
    }
    p += 1;
    const frameStart = parts.length;
    let frameBytes = 0;
    let prefix: Buffer | null = null;
    for (;;) {
      if (p + 4 > data.length) throw new CorruptRecordError('truncated lz4 block');
      const word = data.readUInt32LE(p);
      p += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff;
      if (size > blockMax) throw new CorruptRecordError(`lz4 block of ${size} bytes exceeds its frame's ${blockMax}`);
      if (p + size + (blockChecksum ? 4 : 0) > data.length) throw new CorruptRecordError('truncated lz4 block');
      const body = data.subarray(p, p + size);
      p += size + (blockChecksum ? 4 : 0);
      let out: Buffer;
      if ((word & 0x80000000) !== 0) {
        out = body;
      } else {
        // Block decoder input: a 4-byte LE size bound, then the block; the output is truncated to
        // what the block really holds.
        const input = Buffer.allocUnsafe(4 + size);
        input.writeUInt32LE(blockMax, 0);
        body.copy(input, 4);
        out = linked && prefix !== null ? lz4.uncompressSync(input, prefix) : lz4.uncompressSync(input);
      }
      total += out.length;
      frameBytes += out.length;
      if (total > maxBytes) throw tooLarge(3, maxBytes);
      parts.push(out);
      if (linked) prefix = lastBytes(parts, frameStart, LZ4_WINDOW);
    }
    if (contentChecksum) p += 4;
    if (p > data.length) throw new CorruptRecordError('truncated lz4 frame');
    if (contentSize >= 0 && frameBytes !== contentSize) {
      throw new CorruptRecordError(`lz4 frame declares ${contentSize} bytes but holds ${frameBytes}`);
    }
    pos = p;
    frames++;
  }
  if (frames === 0) throw new CorruptRecordError('empty lz4 payload');
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

const LZ4_WINDOW = 64 * 1024;

const XXH_P1 = 0x9e3779b1;
const XXH_P2 = 0x85ebca77;
const XXH_P3 = 0xc2b2ae3d;
const XXH_P4 = 0x27d4eb2f;
const XXH_P5 = 0x165667b1;

/** XXH32 with seed 0 of bytes [start, end), for inputs under 16 bytes (an LZ4 frame descriptor). */
function xxh32Short(buf: Buffer, start: number, end: number): number {
  let h = (XXH_P5 + (end - start)) >>> 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = (h + Math.imul(buf.readUInt32LE(i), XXH_P3)) >>> 0;
    h = Math.imul((h << 17) | (h >>> 15), XXH_P4) >>> 0;
  }
  for (; i < end; i++) {
    h = (h + Math.imul(buf[i]!, XXH_P5)) >>> 0;
    h = Math.imul((h << 11) | (h >>> 21), XXH_P1) >>> 0;
  }
  h ^= h >>> 15;
  h = Math.imul(h, XXH_P2) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, XXH_P3) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The last `n` bytes of parts[from..] (the linked-block dictionary). */
function lastBytes(parts: Buffer[], from: number, n: number): Buffer {
  const last = parts[parts.length - 1]!;
  if (last.length >= n || parts.length - 1 === from) return last.length > n ? last.subarray(last.length - n) : last;
  const pick: Buffer[] = [];
  let have = 0;
  for (let i = parts.length - 1; i >= from && have < n; i--) {
    pick.unshift(parts[i]!);
    have += parts[i]!.length;
  }
  const joined = Buffer.concat(pick, have);
  return have > n ? joined.subarray(have - n) : joined;
}

// ---------------------------------------------------------------------------------------- zstd

let zstdDctx: ZstdDCtx | undefined;
const ZSTD_OUT_CHUNK = 128 * 1024;

function zstdDecompress(data: Buffer, maxBytes: number): Buffer {
  if (data.length === 0) throw new CorruptRecordError('empty zstd payload');
  // Fast path: every frame declares its size, so one exact allocation (checked against the bound).
  let known: number | null = 0;
  let rest: Buffer = data;
  while (rest.length > 0 && known !== null) {
    const size = zstdBinding.getFrameContentSize(rest);
    if (size === null) known = null;
    else known += size;
    rest = rest.subarray(zstdBinding.findFrameCompressedSize(rest));
  }
  if (known !== null && known > maxBytes) throw tooLarge(4, maxBytes);
  const dctx = (zstdDctx ??= new zstdBinding.DCtx());
  // A previous call may have thrown mid-frame; start from a clean session.
  dctx.reset(zstdBinding.ResetDirective.sessionOnly);
  if (known !== null) {
    const out = Buffer.allocUnsafe(known);
    const n = dctx.decompress(out, data);
    if (n !== known) throw new CorruptRecordError('zstd frame content size mismatch');
    return out;
  }
  // Streaming path: output grows chunk by chunk and stops at the bound.
  const parts: Buffer[] = [];
  let total = 0;
  let src: Buffer = data;
  let pending = 1; // zstd's "bytes left to flush" hint; 0 once a frame is complete
  for (;;) {
    const room = Math.min(ZSTD_OUT_CHUNK, maxBytes - total + 1);
    const out = Buffer.allocUnsafe(room);
    const [hint, produced, consumed] = dctx.decompressStream(out, src);
    pending = hint;
    src = src.subarray(consumed);
    if (produced > 0) {
      total += produced;
      if (total > maxBytes) throw tooLarge(4, maxBytes);
      parts.push(out.subarray(0, produced));
    }
    if (src.length === 0 && (pending === 0 || produced < room)) break;
    if (produced === 0 && consumed === 0) throw new CorruptRecordError('zstd decoder made no progress');
  }
  if (pending !== 0) throw new CorruptRecordError('truncated zstd frame');
  return Buffer.concat(parts, total);
}
