/**
 * ListOffsets (key 2), versions 0–7.
 *
 * Behaviour:
 * - timestamp -2: the log start offset; -1: the high watermark (read_committed, v2+: the last
 *   stable offset); -3 (v7+): the record with the largest timestamp and that timestamp.
 * - timestamp ≥ 0: the first record whose timestamp is ≥ it, exact to the record (compressed
 *   batches are decompressed to find it); none → offset -1, timestamp -1.
 * - v0 answers `old_style_offsets` with the one offset found.
 * - A partition named twice answers INVALID_REQUEST; an unknown one UNKNOWN_TOPIC_OR_PARTITION;
 *   a stale or future current_leader_epoch (v4+) FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH; a
 *   replica that is not the leader NOT_LEADER_OR_FOLLOWER (the high watermark is the leader's).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { ListOffsetsApi, type ListOffsetsResponse, type ListOffsetsResponseListOffsetsPartitionResponse } from '../../protocol/messages/index.js';
import { Attr, decodeRecordBatch, decodeRecordBatches } from '../../protocol/records.js';
import type { Partition } from '../replica-manager.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const LATEST = -1;
export const EARLIEST = -2;
export const MAX_TIMESTAMP = -3;

/** The exact first record with timestamp ≥ `ts` at or after the log start: [offset, timestamp] or null. */
export async function offsetForTimestamp(p: Partition, ts: number): Promise<[number, number] | null> {
  const found = await p.log.findBatchByTimestamp(ts);
  if (found === null) return null;
  const batch = decodeRecordBatch(found.batch);
  const h = batch.header;
  const logAppend = (h.attributes & Attr.timestampType) !== 0;
  for (const r of batch.records) {
    const offset = h.baseOffset + r.offsetDelta;
    const t = logAppend ? h.maxTimestamp : h.baseTimestamp + r.timestampDelta;
    if (offset >= p.log.logStartOffset && t >= ts) return [offset, t];
  }
  return null;
}

/** The record holding the largest timestamp: [offset, timestamp] or null for an empty log. */
async function maxTimestampRecord(p: Partition): Promise<[number, number] | null> {
  const m = p.log.maxTimestampAndOffset();
  if (m === null) return null;
  if (m.offset < p.log.logStartOffset) return [m.offset, m.timestamp];
  const bytes = await p.log.read(m.offset, 1, p.log.logEndOffset, true);
  for (const batch of decodeRecordBatches(bytes)) {
    const h = batch.header;
    if ((h.attributes & Attr.timestampType) !== 0) return [Math.max(h.baseOffset, p.log.logStartOffset), h.maxTimestamp];
    for (const r of batch.records) if (h.baseTimestamp + r.timestampDelta === h.maxTimestamp) return [h.baseOffset + r.offsetDelta, h.maxTimestamp];
  }
  return [m.offset, m.timestamp];
}

export const listOffsetsHandler = defineHandler({
  api: ListOffsetsApi,
  minVersion: 0,
  maxVersion: 7,
  async handle(req, ctx): Promise<ListOffsetsResponse> {
    const rm = ctx.broker.replicaManager;
    const readCommitted = ctx.version >= 2 && req.isolationLevel === 1;
    const topics = await Promise.all(
      req.topics.map(async (t) => {
        const seen = new Map<number, number>();
        const describable = authorize(ctx, 'Describe', 'Topic', t.name);
        for (const p of t.partitions) seen.set(p.partitionIndex, (seen.get(p.partitionIndex) ?? 0) + 1);
        const partitions = await Promise.all(
          t.partitions.map(async (rp): Promise<ListOffsetsResponseListOffsetsPartitionResponse> => {
            const out: ListOffsetsResponseListOffsetsPartitionResponse = {
              partitionIndex: rp.partitionIndex,
              errorCode: ErrorCode.NONE,
              oldStyleOffsets: [],
              timestamp: -1,
              offset: -1,
              leaderEpoch: -1,
            };
            if (!describable) return { ...out, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED };
            if (seen.get(rp.partitionIndex)! > 1) return { ...out, errorCode: ErrorCode.INVALID_REQUEST };
            const p = rm.getPartition(t.name, rp.partitionIndex);
            if (p === undefined) return { ...out, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
            if (ctx.version >= 4 && rp.currentLeaderEpoch >= 0 && rp.currentLeaderEpoch !== p.leaderEpoch) {
              return { ...out, errorCode: rp.currentLeaderEpoch < p.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH };
            }
            if (!p.isLeader) return { ...out, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
            let found: [number, number] | null;
            if (rp.timestamp === EARLIEST) found = [p.log.logStartOffset, -1];
            else if (rp.timestamp === LATEST) found = [readCommitted ? p.lastStableOffset : p.log.highWatermark, -1];
            else if (rp.timestamp === MAX_TIMESTAMP && ctx.version >= 7) found = await maxTimestampRecord(p);
            else if (rp.timestamp >= 0) found = await offsetForTimestamp(p, rp.timestamp);
            else return { ...out, errorCode: ErrorCode.UNSUPPORTED_VERSION };
            const [offset, timestamp] = found ?? [-1, -1];
            return { ...out, offset, timestamp, leaderEpoch: found === null ? -1 : p.leaderEpoch, oldStyleOffsets: ctx.version === 0 && found !== null ? [offset] : [] };
          }),
        );
        return { name: t.name, partitions };
      }),
    );
    return { throttleTimeMs: 0, topics };
  },
});
