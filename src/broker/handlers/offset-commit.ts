/**
 * OffsetCommit (key 8), versions 0–8.
 *
 * Behaviour:
 * - Offsets are written to the group's partition of `__consumer_offsets` and fsynced before the
 *   answer, so an acknowledged commit survives a crash. The metadata string is stored as given
 *   (null becomes "", as in Kafka) and returned by OffsetFetch.
 * - v1+: the generation and member id must match the group's (ILLEGAL_GENERATION,
 *   UNKNOWN_MEMBER_ID; REBALANCE_IN_PROGRESS while the group waits for its assignment). A commit
 *   with generation -1 (and every v0 commit) comes from outside group management and is accepted
 *   when the group has no members; for an unknown group that creates it (Empty, offsets only).
 * - v7+: group.instance.id, FENCED_INSTANCE_ID for a stale static member.
 * - v2–4 retention_time_ms is ignored (offsets.retention.minutes applies, as since Kafka 2.1);
 *   v1's per-partition commit timestamp is kept when given.
 * - Per partition: UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE (over
 *   offset.metadata.max.bytes); COORDINATOR_NOT_AVAILABLE if the write failed.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { OffsetCommitApi, type OffsetCommitResponse } from '../../protocol/messages/index.js';
import type { OffsetToCommit } from '../../coordinator/group-coordinator.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const offsetCommitHandler = defineHandler({
  api: OffsetCommitApi,
  minVersion: 0,
  maxVersion: 8,
  async handle(req, ctx): Promise<OffsetCommitResponse> {
    const v = ctx.version;
    const offsets: OffsetToCommit[] = [];
    // Kafka: Read on the group for the request, Read on each topic for its partitions.
    const groupAllowed = authorize(ctx, 'Read', 'Group', req.groupId);
    const topicAllowed = new Map(req.topics.map((t) => [t.name, authorize(ctx, 'Read', 'Topic', t.name)]));
    for (const t of req.topics) {
      if (!groupAllowed || !topicAllowed.get(t.name)) continue;
      for (const p of t.partitions) {
        offsets.push({
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: v >= 6 ? p.committedLeaderEpoch : -1,
          metadata: p.committedMetadata,
          commitTimestamp: v === 1 ? p.commitTimestamp : -1,
        });
      }
    }
    const errors =
      offsets.length === 0
        ? []
        : req.groupId === '' && v >= 1 && req.generationIdOrMemberEpoch >= 0
        ? offsets.map(() => ErrorCode.INVALID_GROUP_ID)
        : await ctx.broker.groupCoordinator.commitOffsets({
            groupId: req.groupId,
            generationId: v >= 1 ? req.generationIdOrMemberEpoch : -1,
            memberId: v >= 1 ? req.memberId : '',
            groupInstanceId: v >= 7 ? req.groupInstanceId : null,
            offsets,
          });
    let i = 0;
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: !groupAllowed ? ErrorCode.GROUP_AUTHORIZATION_FAILED : !topicAllowed.get(t.name) ? ErrorCode.TOPIC_AUTHORIZATION_FAILED : errors[i++]!,
        })),
      })),
    };
  },
});
