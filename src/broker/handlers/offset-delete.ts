/**
 * OffsetDelete (key 47), version 0.
 *
 * Behaviour:
 * - Deletes a group's committed offsets for the given partitions (tombstones in
 *   `__consumer_offsets`). Top level: GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP for
 *   an active group whose subscriptions cannot be read (not the consumer protocol).
 * - Per partition: GROUP_SUBSCRIBED_TO_TOPIC while an active member subscribes to the topic,
 *   UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { OffsetDeleteApi, type OffsetDeleteResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const offsetDeleteHandler = defineHandler({
  api: OffsetDeleteApi,
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx): Promise<OffsetDeleteResponse> {
    if (!authorize(ctx, 'Delete', 'Group', req.groupId)) return { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, throttleTimeMs: 0, topics: [] };
    // Kafka: Read on each topic whose offsets are deleted.
    const denied = req.topics.filter((t) => !authorize(ctx, 'Read', 'Topic', t.name));
    const allowed = req.topics.filter((t) => !denied.includes(t));
    const r = await ctx.broker.groupCoordinator.deleteOffsets(
      req.groupId,
      allowed.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })),
    );
    return {
      errorCode: r.errorCode,
      throttleTimeMs: 0,
      topics: [
        ...r.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partition, errorCode: p.errorCode })) })),
        ...denied.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED })) })),
      ],
    };
  },
});
