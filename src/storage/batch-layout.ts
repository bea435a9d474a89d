/**
 * Record batch v2 (magic 2) header, as storage reads it: field offsets only, no decoding of records.
 *
 * Byte layout (big-endian), 61 bytes:
 *   @0  baseOffset            int64
 *   @8  batchLength           int32   bytes after this field; whole batch = batchLength + 12
 *   @12 partitionLeaderEpoch  int32
 *   @16 magic                 int8    always 2 here
 *   @17 crc                   uint32  CRC-32C over bytes [21, end of batch)
 *   @21 attributes            int16
 *   @23 lastOffsetDelta       int32
 *   @27 baseTimestamp         int64
 *   @35 maxTimestamp          int64
 *   @43 producerId            int64
 *   @51 producerEpoch         int16
 *   @53 baseSequence          int32
 *   @57 recordsCount          int32
 *   @61 records...
 *
 * Storage rewrites only baseOffset and partitionLeaderEpoch in place; both lie before the CRC'd
 * range, so the CRC stays valid. Int64 values are JS numbers, exact below 2^53.
 */

export const BASE_OFFSET_OFFSET = 0;
export const BATCH_LENGTH_OFFSET = 8;
export const PARTITION_LEADER_EPOCH_OFFSET = 12;
export const MAGIC_OFFSET = 16;
export const CRC_OFFSET = 17;
export const ATTRIBUTES_OFFSET = 21;
export const LAST_OFFSET_DELTA_OFFSET = 23;
export const BASE_TIMESTAMP_OFFSET = 27;
export const MAX_TIMESTAMP_OFFSET = 35;
export const PRODUCER_ID_OFFSET = 43;
export const PRODUCER_EPOCH_OFFSET = 51;
export const BASE_SEQUENCE_OFFSET = 53;
export const RECORDS_COUNT_OFFSET = 57;
export const RECORD_BATCH_HEADER_SIZE = 61;
/** baseOffset + batchLength: the part of the header not counted by batchLength. */
export const LOG_OVERHEAD = 12;
/** Smallest legal batchLength: a header with zero records. */
export const MIN_BATCH_LENGTH = RECORD_BATCH_HEADER_SIZE - LOG_OVERHEAD;
/** The CRC covers from attributes to the end of the batch. */
export const CRC_START = ATTRIBUTES_OFFSET;
export const MAGIC_V2 = 2;

const TWO_POW_32 = 4294967296;

export function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * TWO_POW_32 + buf.readUInt32BE(at + 4);
}

export function writeInt64(buf: Buffer, at: number, value: number): void {
  const hi = Math.floor(value / TWO_POW_32);
  buf.writeInt32BE(hi, at);
  buf.writeUInt32BE(value - hi * TWO_POW_32, at + 4);
}

/** Whole size of the batch starting at `at` (batchLength + 12). */
export function batchSize(buf: Buffer, at: number): number {
  return buf.readInt32BE(at + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
}
