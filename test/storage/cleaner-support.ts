/** Shared by the log cleaner tests: keyed batches, a seeded PRNG, and a full read of a log. */
import { decodeRecordBatches, encodeRecordBatch, type RecordInput } from '../../src/protocol/records.js';
import type { CompressionCodec } from '../../src/protocol/compression.js';
import type { PartitionLog } from '../../src/storage/log.js';

export { prng } from '../protocol/prng.js';

export interface KV {
  key: string | null;
  value: string | null;
}

export function keyedBatch(records: readonly KV[], opts: { compression?: CompressionCodec; timestamp?: number } = {}): Buffer {
  const ts = opts.timestamp ?? 1_700_000_000_000;
  const recs: RecordInput[] = records.map((r) => ({
    key: r.key === null ? null : Buffer.from(r.key),
    value: r.value === null ? null : Buffer.from(r.value),
    timestamp: ts,
  }));
  return encodeRecordBatch({ records: recs, compression: opts.compression ?? 0, baseTimestamp: ts });
}

export interface ReadRecord {
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
  batchBase: number;
}

/** Every record from the log start to the log end, in order. */
export async function readAll(log: PartitionLog, from = log.logStartOffset): Promise<ReadRecord[]> {
  const out: ReadRecord[] = [];
  let next = from;
  const end = log.logEndOffset;
  while (next < end) {
    const buf = await log.read(next, 1 << 20, end, true);
    if (buf.length === 0) break;
    for (const b of decodeRecordBatches(buf)) {
      const h = b.header;
      for (const r of b.records) {
        const offset = h.baseOffset + r.offsetDelta;
        if (offset < next) continue;
        out.push({
          offset,
          key: r.key === null ? null : r.key.toString(),
          value: r.value === null ? null : r.value.toString(),
          timestamp: h.baseTimestamp + r.timestampDelta,
          batchBase: h.baseOffset,
        });
      }
      next = Math.max(next, h.baseOffset + h.lastOffsetDelta + 1);
    }
  }
  return out;
}



/** The log config of the crash test and its child process. */
export function crashTestConfig(): import('../../src/storage/log.js').LogConfig {
  return {
    segmentBytes: 16 * 1024,
    segmentMs: Number.MAX_SAFE_INTEGER,
    segmentIndexBytes: 1024 * 1024,
    indexIntervalBytes: 1024,
    retentionMs: -1,
    retentionBytes: -1,
    flushMessages: Number.MAX_SAFE_INTEGER,
    flushMs: Number.MAX_SAFE_INTEGER,
    fileDeleteDelayMs: 0,
    cleanupDelete: false,
    cleanupCompact: true,
    minCleanableDirtyRatio: 0,
    minCompactionLagMs: 0,
    maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
    deleteRetentionMs: 60_000,
  };
}
