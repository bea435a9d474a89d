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
import { OffsetDeleteApi, type OffsetDeleteResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';

export const offsetDeleteHandler = defineHandler({
  api: OffsetDeleteApi,
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx): Promise<OffsetDeleteResponse> {
    const r = await ctx.broker.groupCoordinator.deleteOffsets(
      req.groupId,
      req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => p.partitionIndex) })),
    );
    return {
      errorCode: r.errorCode,
      throttleTimeMs: 0,
      topics: r.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partition, errorCode: p.errorCode })) })),
    };
  },
});
