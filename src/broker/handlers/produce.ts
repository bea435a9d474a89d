/**
 * Produce (key 0), versions 0–9. Magic-2 batches arrive from v3 on; v0–2 carry the older
 * message formats, which are answered UNSUPPORTED_FOR_MESSAGE_FORMAT (librdkafka needs v2 in the
 * advertised range to turn gzip and snappy on, then sends v3+).
 *
 * Behaviour:
 * - Each partition's records are validated (size, magic, CRC-32C, record count against offset
 *   deltas, max.message.bytes) and appended as received; offsets and the partition leader epoch
 *   are written in place, LogAppendTime topics get the broker time (and a new CRC).
 * - acks: 0 gets no response at all; 1 is answered once appended; -1 once appended and fsynced
 *   (group commit; `strand.acks.all.fsync=false` skips the fsync) and, for a replicated
 *   partition, once every ISR member has it (the high watermark passed it), within `timeout_ms`
 *   (else REQUEST_TIMED_OUT). Anything else: INVALID_REQUIRED_ACKS.
 * - Only the partition's leader appends: any other replica answers NOT_LEADER_OR_FOLLOWER. acks=-1
 *   with an ISR smaller than min.insync.replicas: NOT_ENOUGH_REPLICAS, nothing appended; the ISR
 *   shrinking below it while the batch waits: NOT_ENOUGH_REPLICAS_AFTER_APPEND.
 * - Partitions of one request are appended in request order, so pipelined requests on a
 *   connection keep their order in the log.
 * - v8+: `record_errors` and `error_message` say which batch failed and why.
 * - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (produce never creates topics).
 * - zstd batches before v7: UNSUPPORTED_COMPRESSION_TYPE, as Kafka.
 */
import { ErrorCode } from '../../protocol/errors.js';
import {
  ProduceApi,
  type ProduceResponse,
  type ProduceResponsePartitionProduceResponse,
} from '../../protocol/messages/index.js';
import { LogClosedError } from '../../storage/errors.js';
import { recordsInMemory } from '../../protocol/writer.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

const NO_LEADER = { leaderId: -1, leaderEpoch: -1 };
const ZSTD = 4;

/** Whether any magic-2 batch in `records` says zstd (bits 0–2 of the attributes at byte 21). */
function containsZstd(records: Buffer): boolean {
  for (let at = 0; at + 23 <= records.length; at += 12 + Math.max(0, records.readInt32BE(at + 8))) {
    if (records[at + 16] === 2 && (records.readInt16BE(at + 21) & 0x07) === ZSTD) return true;
    if (records.readInt32BE(at + 8) <= 0) break;
  }
  return false;
}

function partitionError(index: number, errorCode: number, errorMessage: string | null): ProduceResponsePartitionProduceResponse {
  return { index, errorCode, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [], errorMessage, currentLeader: NO_LEADER };
}

export const produceHandler = defineHandler({
  api: ProduceApi,
  minVersion: 0,
  maxVersion: 9,
  async handle(req, ctx): Promise<ProduceResponse | null> {
    const rm = ctx.broker.replicaManager;
    const now = Date.now();
    const validAcks = req.acks === 0 || req.acks === 1 || req.acks === -1;
    // Kafka: a transactional produce needs Write on its transactional id, and every produce Write on each topic.
    const txnAllowed = req.transactionalId === null || authorize(ctx, 'Write', 'TransactionalId', req.transactionalId);
    const responses = req.topicData.map((t) => ({
      name: t.name,
      partitionResponses: t.partitionData.map((pd): Promise<ProduceResponsePartitionProduceResponse> | ProduceResponsePartitionProduceResponse => {
        if (!txnAllowed) return partitionError(pd.index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, null);
        if (!authorize(ctx, 'Write', 'Topic', t.name)) return partitionError(pd.index, ErrorCode.TOPIC_AUTHORIZATION_FAILED, null);
        if (!validAcks) return partitionError(pd.index, ErrorCode.INVALID_REQUIRED_ACKS, `acks must be 0, 1 or -1, got ${req.acks}`);
        const records = recordsInMemory(pd.records);
        if (ctx.version < 7 && records !== null && containsZstd(records)) {
          return partitionError(pd.index, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, 'zstd needs Produce v7 or later');
        }
        const partition = rm.getPartition(t.name, pd.index);
        if (partition === undefined) return partitionError(pd.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `This server does not host ${t.name}-${pd.index}`);
        // Started synchronously, in request order: the log queues appends in call order.
        return rm.produce(partition, records, req.acks, now, req.timeoutMs).then(
          (r) => ({ index: pd.index, ...r, currentLeader: NO_LEADER }),
          (e: unknown) => {
            if (e instanceof LogClosedError) return partitionError(pd.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${t.name}-${pd.index} was deleted`);
            ctx.logger.error('append failed', { topic: t.name, partition: pd.index, error: e });
            return partitionError(pd.index, ErrorCode.KAFKA_STORAGE_ERROR, 'The broker failed to write to its log');
          },
        );
      }),
    }));
    const topics = await Promise.all(responses.map(async (t) => ({ name: t.name, partitionResponses: await Promise.all(t.partitionResponses) })));
    if (req.acks === 0) return null;
    return { responses: topics, throttleTimeMs: 0, nodeEndpoints: [] };
  },
});
