/**
 * RecordBatchBuilder: a record batch v2 written as its records arrive.
 *
 * The producer's hot path. `encodeRecordBatch` (records.ts) takes an array of record objects and
 * encodes them all at once; a producer that batched that way kept one object per record alive
 * until the batch was sent. The builder instead writes each record's bytes straight into one
 * buffer (after 61 bytes left for the batch header) the moment it is appended, so a record costs
 * one copy of its key and value and no object. `build()` then fills in the header and CRC-32C
 * (compressing the records first when asked) and returns the batch.
 *
 * Sizes are exact: a record's varint-prefixed length, timestamp delta (from the first record's
 * timestamp, as Kafka's DefaultRecord) and offset delta (its index) are computed before writing,
 * so `append` can refuse a record that would take the batch past `maxBytes` (header included,
 * like the Java client's `batch.size`). An empty batch accepts any record, however large.
 *
 * The buffer starts small (or is a caller's recycled buffer, see `bufferFor`) and doubles up to
 * `maxBytes` as records arrive. Without compression the built batch is a view of that buffer, so
 * the caller may recycle the buffer only once the batch bytes are no longer needed.
 */
import { crc32c } from '@node-rs/crc32';
import { compress, type CompressionCodec } from './compression.js';
import { Attr, BatchOffsets, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, RECORD_BATCH_OVERHEAD, writeInt64, type RecordHeader } from './records.js';

/** Bytes of an unsigned varint. */
export function sizeOfUnsignedVarint(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  v = Math.floor(v / 0x800000000);
  while (v > 0) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Bytes of a zigzag varint / varlong (exact for |v| < 2^52). */
export function sizeOfVarint(v: number): number {
  return sizeOfUnsignedVarint(v >= 0 ? v * 2 : -v * 2 - 1);
}

/** Writes an unsigned varint at `pos`; returns the position after it. */
function putUnsignedVarint(buf: Buffer, pos: number, v: number): number {
  if (v < 0x4000) {
    if (v < 0x80) buf[pos++] = v;
    else {
      buf[pos++] = (v & 0x7f) | 0x80;
      buf[pos++] = v >>> 7;
    }
    return pos;
  }
  while (v >= 0x80) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

function putVarint(buf: Buffer, pos: number, v: number): number {
  if (v >= 0 && v < 64) {
    buf[pos] = v << 1;
    return pos + 1;
  }
  return putUnsignedVarint(buf, pos, v >= 0 ? v * 2 : -v * 2 - 1);
}

export interface BuildOptions {
  compression?: CompressionCodec;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
}

/** Smallest buffer a builder starts with when it is not given one. */
const MIN_INITIAL_BYTES = 4096;

export class RecordBatchBuilder {
  private buf: Buffer;
  private pos = RECORD_BATCH_OVERHEAD;
  private count_ = 0;
  private baseTimestamp = -1;
  private maxTimestamp = -1;

  /**
   * @param maxBytes the batch, header included, stays within this unless its only record is larger.
   * @param buffer a buffer to write into (e.g. recycled from an earlier batch); grown if needed.
   */
  constructor(
    readonly maxBytes: number,
    buffer?: Buffer,
  ) {
    this.buf = buffer ?? Buffer.allocUnsafe(Math.min(Math.max(maxBytes, RECORD_BATCH_OVERHEAD + 1), MIN_INITIAL_BYTES));
  }

  /** Records appended. */
  get count(): number {
    return this.count_;
  }

  /** Bytes of the uncompressed batch so far, header included. */
  get sizeInBytes(): number {
    return this.pos;
  }

  /** The buffer written into (to recycle once the built batch is no longer needed). */
  get buffer(): Buffer {
    return this.buf;
  }

  /**
   * Appends a record; false (and nothing written) if the batch is not empty and the record would
   * take it past `maxBytes`. `headers` values are bytes; keys are written as UTF-8.
   */
  append(key: Buffer | null, value: Buffer | null, headers: RecordHeader[] | null, timestamp: number): boolean {
    const first = this.count_ === 0;
    const timestampDelta = first ? 0 : timestamp - this.baseTimestamp;
    const offsetDelta = this.count_;
    let bodySize =
      1 +
      sizeOfVarint(timestampDelta) +
      sizeOfVarint(offsetDelta) +
      (key === null ? 1 : sizeOfVarint(key.length) + key.length) +
      (value === null ? 1 : sizeOfVarint(value.length) + value.length) +
      1;
    if (headers !== null && headers.length > 0) {
      bodySize += sizeOfVarint(headers.length) - 1;
      for (let h = 0; h < headers.length; h++) {
        const hk = Buffer.byteLength(headers[h]!.key, 'utf8');
        const hv = headers[h]!.value;
        bodySize += sizeOfVarint(hk) + hk + (hv === null ? 1 : sizeOfVarint(hv.length) + hv.length);
      }
    }
    const size = sizeOfVarint(bodySize) + bodySize;
    const end = this.pos + size;
    if (end > this.maxBytes && !first) return false;
    if (end > this.buf.length) this.grow(end);
    const buf = this.buf;
    let p = putVarint(buf, this.pos, bodySize);
    buf[p++] = 0; // attributes
    p = putVarint(buf, p, timestampDelta);
    p = putVarint(buf, p, offsetDelta);
    if (key === null) buf[p++] = 1; // varint -1
    else {
      p = putVarint(buf, p, key.length);
      buf.set(key, p);
      p += key.length;
    }
    if (value === null) buf[p++] = 1;
    else {
      p = putVarint(buf, p, value.length);
      buf.set(value, p);
      p += value.length;
    }
    if (headers === null || headers.length === 0) buf[p++] = 0;
    else {
      p = putVarint(buf, p, headers.length);
      for (let h = 0; h < headers.length; h++) {
        const hk = headers[h]!.key;
        p = putVarint(buf, p, Buffer.byteLength(hk, 'utf8'));
        p += buf.write(hk, p, 'utf8');
        const hv = headers[h]!.value;
        if (hv === null) buf[p++] = 1;
        else {
          p = putVarint(buf, p, hv.length);
          buf.set(hv, p);
          p += hv.length;
        }
      }
    }
    if (p !== end) throw new Error(`record encoded as ${p - this.pos} bytes, sized ${size}`); // an invariant, not input checking
    this.pos = end;
    if (first) {
      this.baseTimestamp = timestamp;
      this.maxTimestamp = timestamp;
    } else if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    this.count_++;
    return true;
  }

  private grow(atLeast: number): void {
    let size = Math.max(this.buf.length * 2, MIN_INITIAL_BYTES);
    while (size < atLeast) size *= 2;
    if (size > this.maxBytes) size = Math.max(this.maxBytes, atLeast);
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /**
   * The finished batch: header, CRC-32C and, with a codec, the records compressed. Without
   * compression the result is a view of `buffer`. Appending after `build` is not allowed.
   */
  build(opts: BuildOptions = {}): Buffer {
    const codec = opts.compression ?? 0;
    let out: Buffer;
    if (codec === 0) out = this.buf.subarray(0, this.pos);
    else {
      const payload = compress(codec, this.buf.subarray(RECORD_BATCH_OVERHEAD, this.pos));
      out = Buffer.allocUnsafe(RECORD_BATCH_OVERHEAD + payload.length);
      payload.copy(out, RECORD_BATCH_OVERHEAD);
    }
    let attributes: number = codec;
    if (opts.transactional === true) attributes |= Attr.transactional;
    writeInt64(out, 0, BatchOffsets.baseOffset);
    out.writeInt32BE(out.length - LOG_OVERHEAD, BatchOffsets.batchLength);
    out.writeInt32BE(NO_PARTITION_LEADER_EPOCH, BatchOffsets.partitionLeaderEpoch);
    out.writeInt8(MAGIC_V2, BatchOffsets.magic);
    out.writeInt16BE(attributes, BatchOffsets.attributes);
    out.writeInt32BE(Math.max(0, this.count_ - 1), BatchOffsets.lastOffsetDelta);
    writeInt64(out, this.baseTimestamp, BatchOffsets.baseTimestamp);
    writeInt64(out, this.maxTimestamp, BatchOffsets.maxTimestamp);
    writeInt64(out, opts.producerId ?? -1, BatchOffsets.producerId);
    out.writeInt16BE(opts.producerEpoch ?? -1, BatchOffsets.producerEpoch);
    out.writeInt32BE(opts.baseSequence ?? -1, BatchOffsets.baseSequence);
    out.writeInt32BE(this.count_, BatchOffsets.recordsCount);
    out.writeUInt32BE(crc32c(out.subarray(BatchOffsets.attributes)) >>> 0, BatchOffsets.crc);
    return out;
  }
}
