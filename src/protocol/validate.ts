/**
 * Produce-path validation of a partition's records (Kafka's LogValidator and the checks of
 * UnifiedLog.analyzeAndValidateRecords), without rewriting anything: the broker stores the
 * batches as they came and only patches baseOffset / partitionLeaderEpoch / LogAppendTime.
 *
 * Rules, in the order they are checked per batch (first failure wins):
 *   empty input                                              → INVALID_RECORD (87)
 *   fewer than 17 bytes left (magic unreadable)              → CORRUPT_MESSAGE (2)
 *   magic != 2 (byte 16 in every format)                     → UNSUPPORTED_FOR_MESSAGE_FORMAT (43)
 *   batchLength < 49, or the batch overruns the input        → CORRUPT_MESSAGE (2)
 *   baseOffset != 0 (clients always send 0)                  → INVALID_RECORD (87)
 *   12 + batchLength > maxMessageBytes                       → MESSAGE_TOO_LARGE (10)
 *   CRC-32C mismatch                                         → CORRUPT_MESSAGE (2)
 *   unknown codec                                            → CORRUPT_MESSAGE (2)
 *   control batch from a client                              → INVALID_RECORD (87)
 *   recordsCount <= 0 or != lastOffsetDelta + 1              → INVALID_RECORD (87)
 *   producerId >= 0 with baseSequence < 0                    → INVALID_RECORD (87)
 *   records (uncompressed, or decompressed when deep):       → INVALID_RECORD (87)
 *     malformed, offsetDeltas not 0..n-1, count mismatch, trailing bytes
 *   compressed payload that does not decompress              → CORRUPT_MESSAGE (2)
 *   requireKeys and a null key                               → INVALID_RECORD (87) + recordErrors
 *
 * Deliberate differences from Kafka: several batches back to back are accepted (Kafka ≥ 3 takes
 * exactly one per partition); a partial trailing batch is an error (Kafka trims it silently);
 * non-consecutive offset deltas are refused (Kafka rewrites the batch, Strand never does).
 * Timestamp bounds (message.timestamp.*.max.ms) are not checked here.
 *
 * The record walk only reads lengths and varints; it allocates nothing per record.
 */

import { crc32c } from '@node-rs/crc32';
import { CorruptRecordError, DEFAULT_MAX_DECOMPRESSED_BYTES, decompress } from './compression.js';
import {
  Attr,
  BatchOffsets,
  LOG_OVERHEAD,
  MAGIC_V2,
  MIN_BATCH_LENGTH,
  NO_TIMESTAMP,
  RECORD_BATCH_OVERHEAD,
  type RecordBatchHeader,
  readBatchHeader,
  readInt64,
} from './records.js';

const ErrorCode = {
  CORRUPT_MESSAGE: 2,
  MESSAGE_TOO_LARGE: 10,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  INVALID_RECORD: 87,
} as const;

export interface ValidatedBatch {
  /** Byte position of the batch in the input. */
  offset: number;
  /** Total bytes of the batch (12 + batchLength). */
  size: number;
  header: RecordBatchHeader;
  /**
   * Largest record timestamp, computed from the records when they were walked (uncompressed, or
   * compressed with deep validation), else the header's maxTimestamp.
   */
  maxTimestamp: number;
}

export interface RecordError {
  /** Index of the record within its batch (Kafka's batch_index). */
  batchIndex: number;
  message: string | null;
}

export type ValidationResult =
  | { ok: true; batches: ValidatedBatch[]; recordCount: number; maxTimestamp: number }
  | { ok: false; errorCode: number; message: string; recordErrors?: RecordError[] };

export interface ValidateOptions {
  /** Topic max.message.bytes: bound on one batch's total size. */
  maxMessageBytes: number;
  /** Compacted topics: every record needs a key. */
  requireKeys?: boolean;
  /** Decompress compressed batches and walk their records (default true). */
  deepValidateCompressed?: boolean;
  /** Bound on one batch's decompressed payload (default 256 MiB). */
  maxDecompressedBytes?: number;
}

function fail(errorCode: number, message: string, recordErrors?: RecordError[]): ValidationResult {
  return recordErrors === undefined ? { ok: false, errorCode, message } : { ok: false, errorCode, message, recordErrors };
}

export function validateProduceRecords(records: Buffer, opts: ValidateOptions): ValidationResult {
  const len = records.length;
  if (len === 0) return fail(ErrorCode.INVALID_RECORD, 'produce request carries no record batch');
  const batches: ValidatedBatch[] = [];
  let recordCount = 0;
  let maxTimestamp = NO_TIMESTAMP;
  let pos = 0;
  let index = 0;
  while (pos < len) {
    const left = len - pos;
    if (left <= BatchOffsets.magic) {
      return fail(ErrorCode.CORRUPT_MESSAGE, `batch ${index}: ${left} trailing bytes are not a whole batch`);
    }
    const magic = records[pos + BatchOffsets.magic]!;
    if (magic !== MAGIC_V2) {
      return fail(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, `batch ${index}: message format magic ${magic} is not supported; only 2`);
    }
    const batchLength = records.readInt32BE(pos + BatchOffsets.batchLength);
    if (batchLength < MIN_BATCH_LENGTH) {
      return fail(ErrorCode.CORRUPT_MESSAGE, `batch ${index}: batchLength ${batchLength} is below the minimum ${MIN_BATCH_LENGTH}`);
    }
    const size = LOG_OVERHEAD + batchLength;
    if (size > left) {
      return fail(ErrorCode.CORRUPT_MESSAGE, `batch ${index}: declares ${size} bytes but only ${left} are present`);
    }
    const baseOffset = readInt64(records, pos);
    if (baseOffset !== 0) {
      return fail(ErrorCode.INVALID_RECORD, `batch ${index}: baseOffset must be 0 on produce, got ${baseOffset}`);
    }
    if (size > opts.maxMessageBytes) {
      return fail(ErrorCode.MESSAGE_TOO_LARGE, `batch ${index}: ${size} bytes exceeds max.message.bytes ${opts.maxMessageBytes}`);
    }
    const end = pos + size;
    const storedCrc = records.readUInt32BE(pos + BatchOffsets.crc);
    const crc = crc32c(records.subarray(pos + BatchOffsets.attributes, end)) >>> 0;
    if (crc !== storedCrc) {
      return fail(ErrorCode.CORRUPT_MESSAGE, `batch ${index}: CRC mismatch (stored ${storedCrc}, computed ${crc})`);
    }
    const header = readBatchHeader(records, pos);
    const codec = header.attributes & Attr.compressionMask;
    if (codec > 4) return fail(ErrorCode.CORRUPT_MESSAGE, `batch ${index}: unknown compression codec ${codec}`);
    if ((header.attributes & Attr.control) !== 0) {
      return fail(ErrorCode.INVALID_RECORD, `batch ${index}: clients may not write control batches`);
    }
    const count = header.recordsCount;
    if (count <= 0) return fail(ErrorCode.INVALID_RECORD, `batch ${index}: invalid record count ${count}`);
    if (header.lastOffsetDelta + 1 !== count) {
      return fail(
        ErrorCode.INVALID_RECORD,
        `batch ${index}: record count ${count} does not match lastOffsetDelta ${header.lastOffsetDelta}`,
      );
    }
    if (header.producerId >= 0 && header.baseSequence < 0) {
      return fail(ErrorCode.INVALID_RECORD, `batch ${index}: producerId ${header.producerId} with invalid sequence ${header.baseSequence}`);
    }

    let batchMax = header.maxTimestamp;
    let payload: Buffer | null = null;
    if (codec === 0) {
      payload = records.subarray(pos + RECORD_BATCH_OVERHEAD, end);
    } else if (opts.deepValidateCompressed !== false) {
      try {
        payload = decompress(codec as 1 | 2 | 3 | 4, records.subarray(pos + RECORD_BATCH_OVERHEAD, end), opts.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES);
      } catch (err) {
        const message = err instanceof CorruptRecordError ? err.message : String(err);
        return fail(ErrorCode.CORRUPT_MESSAGE, `batch ${index}: ${message}`);
      }
    }
    if (payload !== null) {
      const walkError = walkRecords(payload, count, opts.requireKeys === true);
      if (walkError !== null) return fail(ErrorCode.INVALID_RECORD, `batch ${index}: ${walkError}`);
      if (keyErrors !== null) {
        const errs = keyErrors;
        keyErrors = null;
        return fail(ErrorCode.INVALID_RECORD, `batch ${index}: compacted topic cannot accept records without a key`, errs);
      }
      batchMax = (header.attributes & Attr.timestampType) !== 0 ? header.maxTimestamp : header.baseTimestamp + walkMaxDelta;
    }

    batches.push({ offset: pos, size, header, maxTimestamp: batchMax });
    recordCount += count;
    if (batchMax > maxTimestamp) maxTimestamp = batchMax;
    pos = end;
    index++;
  }
  return { ok: true, batches, recordCount, maxTimestamp };
}

// ---------------------------------------------------------------------------------- record walk
// Module-level cursor and outputs keep the walk allocation-free.

let cur = 0;
let walkEnd = 0;
let walkBad = false;
let walkMaxDelta = 0;
let keyErrors: RecordError[] | null = null;

/** Zig-zag varint (≤ 5 bytes) at `cur`; sets walkBad on overrun. */
function zz32(buf: Buffer): number {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 5; i++) {
    if (cur >= walkEnd) {
      walkBad = true;
      return 0;
    }
    const b = buf[cur++]!;
    value += (b & 0x7f) * mult;
    if (b < 0x80) return (value & 1) === 0 ? value / 2 : -(value + 1) / 2;
    mult *= 128;
  }
  walkBad = true;
  return 0;
}

/** Zig-zag varlong (≤ 10 bytes) at `cur`; exact within ±2^53. */
function zz64(buf: Buffer): number {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 10; i++) {
    if (cur >= walkEnd) {
      walkBad = true;
      return 0;
    }
    const b = buf[cur++]!;
    value += (b & 0x7f) * mult;
    if (b < 0x80) return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
    mult *= 128;
  }
  walkBad = true;
  return 0;
}

/** Skips a varint-length-prefixed blob (-1 = null); returns the length or -2 when invalid. */
function skipBlob(buf: Buffer): number {
  const n = zz32(buf);
  if (n < -1 || walkBad) return -2;
  if (n > 0) {
    if (n > walkEnd - cur) return -2;
    cur += n;
  }
  return n;
}

/**
 * Walks `count` records over the whole of `buf`; returns an error message or null. Sets
 * walkMaxDelta (largest timestampDelta) and, with requireKeys, keyErrors for null keys.
 */
function walkRecords(buf: Buffer, count: number, requireKeys: boolean): string | null {
  cur = 0;
  walkEnd = buf.length;
  walkBad = false;
  keyErrors = null;
  let maxDelta = -Infinity;
  if (count * 7 > walkEnd) return `${count} records cannot fit in ${walkEnd} bytes`;
  for (let i = 0; i < count; i++) {
    const length = zz32(buf);
    if (walkBad || length < 6 || length > walkEnd - cur) return `record ${i} has invalid length ${length}`;
    const recordEnd = cur + length;
    const outerEnd = walkEnd;
    walkEnd = recordEnd;
    cur++; // attributes
    const tsDelta = zz64(buf);
    const offsetDelta = zz32(buf);
    if (walkBad) return `record ${i} is malformed`;
    if (offsetDelta !== i) return `record ${i} has offsetDelta ${offsetDelta}, expected ${i}`;
    if (tsDelta > maxDelta) maxDelta = tsDelta;
    const keyLength = skipBlob(buf);
    if (keyLength === -2) return `record ${i} has an invalid key`;
    if (keyLength === -1 && requireKeys) (keyErrors ??= []).push({ batchIndex: i, message: 'null key in a compacted topic' });
    if (skipBlob(buf) === -2) return `record ${i} has an invalid value`;
    const headerCount = zz32(buf);
    if (walkBad || headerCount < 0) return `record ${i} has an invalid header count`;
    for (let h = 0; h < headerCount; h++) {
      const hk = skipBlob(buf);
      if (hk < 0) return `record ${i} header ${h} has an invalid key`;
      if (skipBlob(buf) === -2) return `record ${i} header ${h} has an invalid value`;
    }
    if (cur !== recordEnd) return `record ${i} declared ${length} bytes but used ${length - (recordEnd - cur)}`;
    walkEnd = outerEnd;
  }
  if (cur !== walkEnd) return `${walkEnd - cur} bytes left after ${count} records`;
  walkMaxDelta = maxDelta === -Infinity ? 0 : maxDelta;
  return null;
}
