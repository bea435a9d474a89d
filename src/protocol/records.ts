/**
 * Record batch v2 (magic 2), the only record format Strand stores and serves.
 *
 * Byte layout (all big-endian; offsets from the start of the batch, see `BatchOffsets`):
 *
 *    0 baseOffset            int64   assigned by the broker on append (records carry deltas)
 *    8 batchLength           int32   bytes after this field, i.e. total size - 12
 *   12 partitionLeaderEpoch  int32   set by the broker; not covered by the CRC
 *   16 magic                 int8    2 (also byte 16 in v0/v1 message sets)
 *   17 crc                   uint32  CRC-32C of bytes [21, end)
 *   21 attributes            int16   0-2 codec, 3 timestampType (1 = LogAppendTime),
 *                                    4 transactional, 5 control, 6 hasDeleteHorizon
 *   23 lastOffsetDelta       int32
 *   27 baseTimestamp         int64   (the delete horizon when bit 6 is set)
 *   35 maxTimestamp          int64   the append time when timestampType = LogAppendTime
 *   43 producerId            int64   -1 without idempotence
 *   51 producerEpoch         int16
 *   53 baseSequence          int32
 *   57 recordsCount          int32   never compressed
 *   61 records                       compressed as one block when codec != 0
 *
 * Record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 * keyLength varint (-1 null), key, valueLength varint (-1 null), value, headerCount varint,
 * headers [keyLength varint, key utf8, valueLength varint (-1 null), value].
 *
 * Control batches (bit 5) hold one record whose key is int16 version + int16 type
 * (0 ABORT, 1 COMMIT) and whose value is int16 version + int32 coordinatorEpoch.
 *
 * Decoded keys, values and header values are views into the input (or into the decompressed
 * payload), not copies. Every malformation throws one `CorruptRecordError`.
 * Semantics follow Kafka's DefaultRecordBatch / DefaultRecord.
 */

import { crc32c } from '@node-rs/crc32';
import { Reader } from './reader.js';
import { Writer } from './writer.js';
import {
  type CompressionCodec,
  CorruptRecordError,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  compress,
  decompress,
} from './compression.js';

export { CorruptRecordError } from './compression.js';

export const RECORD_BATCH_OVERHEAD = 61;
/** Bytes before `batchLength` counts: baseOffset + batchLength itself. */
export const LOG_OVERHEAD = 12;
/** Smallest legal batchLength: the header after the length field, with no records. */
export const MIN_BATCH_LENGTH = RECORD_BATCH_OVERHEAD - LOG_OVERHEAD;
export const MAGIC_V2 = 2;
export const NO_TIMESTAMP = -1;
export const NO_PRODUCER_ID = -1;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
export const NO_PARTITION_LEADER_EPOCH = -1;

export const BatchOffsets = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordsCount: 57,
} as const;

export const Attr = {
  compressionMask: 0x07,
  timestampType: 0x08,
  transactional: 0x10,
  control: 0x20,
  deleteHorizon: 0x40,
} as const;

export const ControlRecordType = { Abort: 0, Commit: 1 } as const;

export interface RecordBatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
}

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface Record {
  attributes: number;
  timestampDelta: number;
  offsetDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface RecordBatch {
  header: RecordBatchHeader;
  records: Record[];
}

export interface DecodeOptions {
  /** Check the CRC-32C (default true). */
  verifyCrc?: boolean;
  /** Bound on the decompressed records payload (default 256 MiB). */
  maxDecompressedBytes?: number;
}

const TWO_POW_32 = 4294967296;

/** INT64 at `at` as a number (exact within ±2^53). */
export function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * TWO_POW_32 + buf.readUInt32BE(at + 4);
}

export function writeInt64(buf: Buffer, v: number, at: number): void {
  const hi = Math.floor(v / TWO_POW_32);
  buf.writeInt32BE(hi | 0, at);
  buf.writeUInt32BE((v - hi * TWO_POW_32) >>> 0, at + 4);
}

/** Reads the 61-byte header at `offset`; throws CorruptRecordError if fewer bytes are there. */
export function readBatchHeader(buf: Buffer, offset = 0): RecordBatchHeader {
  if (offset < 0 || offset + RECORD_BATCH_OVERHEAD > buf.length) {
    throw new CorruptRecordError(
      `record batch header needs ${RECORD_BATCH_OVERHEAD} bytes at offset ${offset}, have ${buf.length - offset}`,
    );
  }
  return {
    baseOffset: readInt64(buf, offset),
    batchLength: buf.readInt32BE(offset + 8),
    partitionLeaderEpoch: buf.readInt32BE(offset + 12),
    magic: buf.readInt8(offset + 16),
    crc: buf.readUInt32BE(offset + 17),
    attributes: buf.readInt16BE(offset + 21),
    lastOffsetDelta: buf.readInt32BE(offset + 23),
    baseTimestamp: readInt64(buf, offset + 27),
    maxTimestamp: readInt64(buf, offset + 35),
    producerId: readInt64(buf, offset + 43),
    producerEpoch: buf.readInt16BE(offset + 51),
    baseSequence: buf.readInt32BE(offset + 53),
    recordsCount: buf.readInt32BE(offset + 57),
  };
}

/** Total bytes of the batch at `at` (12 + batchLength), or -1 if its length field is not readable. */
export function batchSize(buf: Buffer, at = 0): number {
  if (at + LOG_OVERHEAD > buf.length) return -1;
  return LOG_OVERHEAD + buf.readInt32BE(at + 8);
}

/** End of the bytes the CRC covers: the batch's declared end, clipped to the buffer. */
function crcEnd(buf: Buffer, at: number): number {
  const declared = batchSize(buf, at);
  return declared >= RECORD_BATCH_OVERHEAD && at + declared <= buf.length ? at + declared : buf.length;
}

/** CRC-32C of the batch at `at`, bytes [21, end): what its crc field should hold. */
export function crcOf(batch: Buffer, at = 0): number {
  return crc32c(batch.subarray(at + BatchOffsets.attributes, crcEnd(batch, at))) >>> 0;
}

/** Whether the stored CRC matches the batch's bytes. */
export function verifyCrc(batch: Buffer, at = 0): boolean {
  if (at + RECORD_BATCH_OVERHEAD > batch.length) return false;
  return batch.readUInt32BE(at + BatchOffsets.crc) === crcOf(batch, at);
}

function writeCrc(batch: Buffer, at: number): void {
  batch.writeUInt32BE(crcOf(batch, at), at + BatchOffsets.crc);
}

export function compressionOf(attributes: number): CompressionCodec {
  const c = attributes & Attr.compressionMask;
  if (c > 4) throw new CorruptRecordError(`unknown compression codec ${c}`);
  return c as CompressionCodec;
}

export function isTransactional(h: RecordBatchHeader): boolean {
  return (h.attributes & Attr.transactional) !== 0;
}

export function isControlBatch(h: RecordBatchHeader): boolean {
  return (h.attributes & Attr.control) !== 0;
}

export function timestampTypeOf(h: RecordBatchHeader): 0 | 1 {
  return (h.attributes & Attr.timestampType) !== 0 ? 1 : 0;
}

/** Absolute offset of a record: baseOffset + offsetDelta. */
export function recordOffset(h: RecordBatchHeader, r: Record): number {
  return h.baseOffset + r.offsetDelta;
}

/** The record's timestamp as clients see it: maxTimestamp under LogAppendTime, else base + delta. */
export function recordTimestamp(h: RecordBatchHeader, r: Record): number {
  return (h.attributes & Attr.timestampType) !== 0 ? h.maxTimestamp : h.baseTimestamp + r.timestampDelta;
}

// ------------------------------------------------------------------------------------ in-place

/** Rewrites baseOffset (the CRC does not cover it). */
export function setBaseOffset(batch: Buffer, offset: number, at = 0): void {
  writeInt64(batch, offset, at + BatchOffsets.baseOffset);
}

/** Rewrites partitionLeaderEpoch (the CRC does not cover it). */
export function setPartitionLeaderEpoch(batch: Buffer, epoch: number, at = 0): void {
  batch.writeInt32BE(epoch | 0, at + BatchOffsets.partitionLeaderEpoch);
}

/**
 * Sets the timestamp type bit and maxTimestamp, then recomputes the CRC (as Kafka's
 * DefaultRecordBatch.setMaxTimestamp). baseTimestamp and record deltas are left alone; under
 * LogAppendTime readers take every record's timestamp from maxTimestamp.
 */
export function setMaxTimestamp(batch: Buffer, timestampType: 0 | 1, maxTimestamp: number, at = 0): void {
  const attrAt = at + BatchOffsets.attributes;
  const attrs = batch.readInt16BE(attrAt);
  const nextAttrs = timestampType === 1 ? attrs | Attr.timestampType : attrs & ~Attr.timestampType;
  if (nextAttrs === attrs && readInt64(batch, at + BatchOffsets.maxTimestamp) === maxTimestamp) return;
  batch.writeInt16BE(nextAttrs, attrAt);
  writeInt64(batch, maxTimestamp, at + BatchOffsets.maxTimestamp);
  writeCrc(batch, at);
}

/** Switches the batch to LogAppendTime at `timestampMs` (topic config message.timestamp.type). */
export function setLogAppendTime(batch: Buffer, timestampMs: number, at = 0): void {
  setMaxTimestamp(batch, 1, timestampMs, at);
}

// -------------------------------------------------------------------------------------- decode

/**
 * Decodes the batch at the start of `batch` (bytes after its declared end are ignored),
 * decompressing its records. Throws CorruptRecordError on any malformation.
 */
export function decodeRecordBatch(batch: Buffer, options: DecodeOptions = {}): RecordBatch {
  const header = readBatchHeader(batch, 0);
  if (header.magic !== MAGIC_V2) throw new CorruptRecordError(`unsupported record batch magic ${header.magic}`);
  if (header.batchLength < MIN_BATCH_LENGTH) {
    throw new CorruptRecordError(`batchLength ${header.batchLength} is below the minimum ${MIN_BATCH_LENGTH}`);
  }
  const size = LOG_OVERHEAD + header.batchLength;
  if (size > batch.length) throw new CorruptRecordError(`batch of ${size} bytes truncated to ${batch.length}`);
  if (options.verifyCrc !== false) {
    const actual = crc32c(batch.subarray(BatchOffsets.attributes, size)) >>> 0;
    if (actual !== header.crc) {
      throw new CorruptRecordError(`record batch CRC mismatch: stored ${header.crc}, computed ${actual}`);
    }
  }
  if (header.recordsCount < 0) throw new CorruptRecordError(`negative record count ${header.recordsCount}`);
  const codec = compressionOf(header.attributes);
  let payload = batch.subarray(RECORD_BATCH_OVERHEAD, size);
  if (codec !== 0) payload = decompress(codec, payload, options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES);
  return { header, records: decodeRecords(payload, header.recordsCount) };
}

/** Smallest possible record: length, attributes, timestampDelta, offsetDelta, key, value, headers. */
const MIN_RECORD_BYTES = 7;

function decodeRecords(payload: Buffer, count: number): Record[] {
  if (count * MIN_RECORD_BYTES > payload.length) {
    throw new CorruptRecordError(`${count} records cannot fit in ${payload.length} bytes`);
  }
  const r = new Reader(payload);
  const records: Record[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const length = r.varint();
    const start = r.offset;
    if (length < MIN_RECORD_BYTES - 1 || length > r.remaining) {
      r.fail(`record ${i} length ${length} invalid with ${r.remaining} bytes left`);
      break;
    }
    const attributes = r.int8();
    const timestampDelta = r.varlong();
    const offsetDelta = r.varint();
    const key = varintBytes(r, 'key');
    const value = varintBytes(r, 'value');
    const headerCount = r.varint();
    if (headerCount < 0 || headerCount * 2 > r.remaining) {
      r.fail(`record ${i} header count ${headerCount} invalid`);
      break;
    }
    const headers: RecordHeader[] = new Array(headerCount);
    for (let h = 0; h < headerCount; h++) {
      const keyLength = r.varint();
      if (keyLength < 0) {
        r.fail(`record ${i} has a null header key`);
        break;
      }
      const headerKey = r.raw(keyLength).toString('utf8');
      headers[h] = { key: headerKey, value: varintBytes(r, 'header value') };
    }
    if (r.ok && r.offset !== start + length) {
      r.fail(`record ${i} declared ${length} bytes but used ${r.offset - start}`);
    }
    if (!r.ok) break;
    records[i] = { attributes, timestampDelta, offsetDelta, key, value, headers };
  }
  if (r.ok && r.remaining !== 0) r.fail(`${r.remaining} bytes left after ${count} records`);
  if (!r.ok) throw new CorruptRecordError(`malformed records: ${r.error}`);
  return records;
}

function varintBytes(r: Reader, what: string): Buffer | null {
  const n = r.varint();
  if (n === -1) return null;
  if (n < -1) {
    r.fail(`negative ${what} length ${n}`);
    return null;
  }
  return r.raw(n);
}

/**
 * Decodes back-to-back batches (a Fetch response's records, a segment slice). A truncated final
 * batch, which Fetch responses may carry, is ignored; any other malformation throws.
 */
export function decodeRecordBatches(buf: Buffer, options: DecodeOptions = {}): RecordBatch[] {
  const out: RecordBatch[] = [];
  let pos = 0;
  while (pos + LOG_OVERHEAD <= buf.length) {
    const size = batchSize(buf, pos);
    if (size < RECORD_BATCH_OVERHEAD) {
      // A declared size this small is not a truncation but garbage.
      throw new CorruptRecordError(`batch at byte ${pos} declares ${size} bytes`);
    }
    if (pos + size > buf.length) break;
    out.push(decodeRecordBatch(buf.subarray(pos, pos + size), options));
    pos += size;
  }
  return out;
}

/**
 * Splits back-to-back batches into views without decoding them; a truncated tail is dropped.
 * Used by Fetch-side code that only needs boundaries and headers.
 */
export function splitBatches(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos + LOG_OVERHEAD <= buf.length) {
    const size = batchSize(buf, pos);
    if (size < RECORD_BATCH_OVERHEAD) throw new CorruptRecordError(`batch at byte ${pos} declares ${size} bytes`);
    if (pos + size > buf.length) break;
    out.push(buf.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

// -------------------------------------------------------------------------------------- encode

export interface RecordInput {
  key?: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeader[];
  /** Absolute timestamp in ms; defaults to the batch's baseTimestamp (or now). */
  timestamp?: number;
  /** Defaults to the record's index. */
  offsetDelta?: number;
}

export interface BatchInput {
  records: RecordInput[];
  baseOffset?: number;
  compression?: CompressionCodec;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  control?: boolean;
  partitionLeaderEpoch?: number;
  timestampType?: 0 | 1;
  /** Defaults to the first record's timestamp. */
  baseTimestamp?: number;
  /** Only for batches with no records (default 0); otherwise the last record's offsetDelta. */
  lastOffsetDelta?: number;
}

const EMPTY_HEADERS: RecordHeader[] = [];

/** Encodes one batch: records, compression, header, CRC-32C. maxTimestamp = max record timestamp. */
export function encodeRecordBatch(input: BatchInput): Buffer {
  const records = input.records;
  const n = records.length;
  const codec = input.compression ?? 0;
  let now = -1;
  const nowMs = (): number => (now >= 0 ? now : (now = Date.now()));
  const baseTimestamp = input.baseTimestamp ?? (n > 0 ? (records[0]!.timestamp ?? nowMs()) : NO_TIMESTAMP);
  let maxTimestamp = NO_TIMESTAMP;
  let lastOffsetDelta = input.lastOffsetDelta ?? 0;

  const w = new Writer(Math.max(256, n * 32));
  for (let i = 0; i < n; i++) {
    const rec = records[i]!;
    const ts = rec.timestamp ?? (input.baseTimestamp ?? nowMs());
    if (i === 0 || ts > maxTimestamp) maxTimestamp = ts;
    const offsetDelta = rec.offsetDelta ?? i;
    lastOffsetDelta = offsetDelta;
    writeRecord(w, rec, ts - baseTimestamp, offsetDelta);
  }
  let payload = w.toBuffer();
  if (codec !== 0) payload = compress(codec, payload);

  let attributes = codec;
  if (input.timestampType === 1) attributes |= Attr.timestampType;
  if (input.transactional === true) attributes |= Attr.transactional;
  if (input.control === true) attributes |= Attr.control;

  const out = Buffer.allocUnsafe(RECORD_BATCH_OVERHEAD + payload.length);
  writeInt64(out, input.baseOffset ?? 0, 0);
  out.writeInt32BE(RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + payload.length, 8);
  out.writeInt32BE(input.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH, 12);
  out.writeInt8(MAGIC_V2, 16);
  out.writeInt16BE(attributes, 21);
  out.writeInt32BE(lastOffsetDelta, 23);
  writeInt64(out, baseTimestamp, 27);
  writeInt64(out, maxTimestamp, 35);
  writeInt64(out, input.producerId ?? NO_PRODUCER_ID, 43);
  out.writeInt16BE(input.producerEpoch ?? NO_PRODUCER_EPOCH, 51);
  out.writeInt32BE(input.baseSequence ?? NO_SEQUENCE, 53);
  out.writeInt32BE(n, 57);
  payload.copy(out, RECORD_BATCH_OVERHEAD);
  out.writeUInt32BE(crc32c(out.subarray(BatchOffsets.attributes)) >>> 0, BatchOffsets.crc);
  return out;
}

function sizeOfUnsignedVarint(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function sizeOfVarint(v: number): number {
  return sizeOfUnsignedVarint(v >= 0 ? v * 2 : -v * 2 - 1);
}

function writeRecord(w: Writer, rec: RecordInput, timestampDelta: number, offsetDelta: number): void {
  const key = rec.key ?? null;
  const value = rec.value;
  const headers = rec.headers ?? EMPTY_HEADERS;
  const headerKeys: Buffer[] = new Array(headers.length);
  let bodySize =
    1 +
    sizeOfVarint(timestampDelta) +
    sizeOfVarint(offsetDelta) +
    (key === null ? 1 : sizeOfVarint(key.length) + key.length) +
    (value === null ? 1 : sizeOfVarint(value.length) + value.length) +
    sizeOfVarint(headers.length);
  for (let h = 0; h < headers.length; h++) {
    const hk = Buffer.from(headers[h]!.key, 'utf8');
    const hv = headers[h]!.value;
    headerKeys[h] = hk;
    bodySize += sizeOfVarint(hk.length) + hk.length + (hv === null ? 1 : sizeOfVarint(hv.length) + hv.length);
  }
  w.varint(bodySize);
  w.int8(0);
  w.varlong(timestampDelta);
  w.varint(offsetDelta);
  if (key === null) w.varint(-1);
  else w.varint(key.length).raw(key);
  if (value === null) w.varint(-1);
  else w.varint(value.length).raw(value);
  w.varint(headers.length);
  for (let h = 0; h < headers.length; h++) {
    const hv = headers[h]!.value;
    w.varint(headerKeys[h]!.length).raw(headerKeys[h]!);
    if (hv === null) w.varint(-1);
    else w.varint(hv.length).raw(hv);
  }
}

// ---------------------------------------------------------------------------- control records

export interface ControlBatchInput {
  producerId: number;
  producerEpoch: number;
  /** 0 ABORT, 1 COMMIT. */
  type: 0 | 1;
  coordinatorEpoch: number;
  timestamp: number;
  baseOffset?: number;
  partitionLeaderEpoch?: number;
}

/** A transaction marker batch: transactional + control, one record, no sequence. */
export function encodeControlBatch(input: ControlBatchInput): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(input.type, 2);
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(input.coordinatorEpoch, 2);
  return encodeRecordBatch({
    records: [{ key, value, timestamp: input.timestamp }],
    baseOffset: input.baseOffset ?? 0,
    producerId: input.producerId,
    producerEpoch: input.producerEpoch,
    baseSequence: NO_SEQUENCE,
    transactional: true,
    control: true,
    partitionLeaderEpoch: input.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH,
    baseTimestamp: input.timestamp,
  });
}

/** The type of a control record: 'ABORT', 'COMMIT', or the raw number for other kinds (KRaft). */
export function controlRecordType(record: Record): 'ABORT' | 'COMMIT' | number {
  const key = record.key;
  if (key === null || key.length < 4) throw new CorruptRecordError('control record key shorter than 4 bytes');
  const type = key.readInt16BE(2);
  return type === 0 ? 'ABORT' : type === 1 ? 'COMMIT' : type;
}

/** The coordinator epoch an end-transaction marker carries. */
export function controlCoordinatorEpoch(record: Record): number {
  const value = record.value;
  if (value === null || value.length < 6) throw new CorruptRecordError('transaction marker value shorter than 6 bytes');
  return value.readInt32BE(2);
}
