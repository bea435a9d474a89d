/**
 * DeleteRecords (key 21), versions 0–2.
 *
 * Behaviour:
 * - Per partition, moves the log start offset up to `offset` (-1 means the high watermark);
 *   whole segments below it are deleted, and records below it are never served again (Fetch
 *   below it answers OFFSET_OUT_OF_RANGE, ListOffsets earliest returns it). The new start is
 *   checkpointed by the log, so it survives a restart.
 * - `low_watermark` in the answer is the log start offset afterwards (an offset at or below the
 *   current start changes nothing and answers the current start).
 * - Errors per partition: UNKNOWN_TOPIC_OR_PARTITION; OFFSET_OUT_OF_RANGE for an offset above the
 *   high watermark or negative other than -1; POLICY_VIOLATION when the topic's cleanup.policy
 *   does not include `delete` (Kafka refuses DeleteRecords on compact-only topics); a partition
 *   whose topic is deleted meanwhile answers UNKNOWN_TOPIC_OR_PARTITION; a replica that is not the
 *   partition's leader NOT_LEADER_OR_FOLLOWER. Errors answer low_watermark -1.
 * - Followers learn the new log start offset from their next fetch and move theirs (up to their
 *   high watermark); the answer does not wait for them.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DeleteRecordsApi, type DeleteRecordsResponse, type DeleteRecordsResponseDeleteRecordsPartitionResult } from '../../protocol/messages/index.js';
import { LogClosedError, OffsetOutOfRangeError } from '../../storage/errors.js';
import { effectiveTopicConfig } from '../config.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const HIGH_WATERMARK = -1;

export const deleteRecordsHandler = defineHandler({
  api: DeleteRecordsApi,
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx): Promise<DeleteRecordsResponse> {
    const broker = ctx.broker;
    const image = broker.image;
    const topics = await Promise.all(
      req.topics.map(async (t) => {
        const topic = image.topic(t.name);
        const allowed = authorize(ctx, 'Delete', 'Topic', t.name);
        const deletable = topic === undefined || (effectiveTopicConfig('cleanup.policy', topic.configs, broker.config).value ?? '').split(',').includes('delete');
        const partitions = await Promise.all(
          t.partitions.map(async (rp): Promise<DeleteRecordsResponseDeleteRecordsPartitionResult> => {
            const fail = (errorCode: number): DeleteRecordsResponseDeleteRecordsPartitionResult => ({ partitionIndex: rp.partitionIndex, lowWatermark: -1, errorCode });
            if (!allowed) return fail(ErrorCode.TOPIC_AUTHORIZATION_FAILED);
            const p = broker.replicaManager.getPartition(t.name, rp.partitionIndex);
            if (topic === undefined || p === undefined || p.topicId !== topic.topicId) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
            if (!p.isLeader) return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER);
            if (!deletable) return fail(ErrorCode.POLICY_VIOLATION);
            const offset = rp.offset === HIGH_WATERMARK ? p.log.highWatermark : rp.offset;
            if (offset < 0 || offset > p.log.highWatermark) return fail(ErrorCode.OFFSET_OUT_OF_RANGE);
            try {
              const lowWatermark = await p.log.deleteRecordsBefore(offset);
              return { partitionIndex: rp.partitionIndex, lowWatermark, errorCode: ErrorCode.NONE };
            } catch (e) {
              if (e instanceof OffsetOutOfRangeError) return fail(ErrorCode.OFFSET_OUT_OF_RANGE);
              // The topic was deleted while the request waited for the log.
              if (e instanceof LogClosedError) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
              throw e;
            }
          }),
        );
        return { name: t.name, partitions };
      }),
    );
    return { throttleTimeMs: 0, topics };
  },
});
