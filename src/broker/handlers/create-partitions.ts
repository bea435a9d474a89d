/**
 * CreatePartitions (key 37), versions 0–3.
 *
 * Behaviour:
 * - `count` is the new total; partitions are only ever added. The controller commits a Partition
 *   record for each new one (one metadata batch per request) and the replica manager opens their
 *   logs before the answer, so they can be produced to and fetched from at once.
 * - `assignments` (optional) gives the replica list of each new partition: exactly one list per
 *   new partition, each non-empty, without repeats, of registered brokers, and as long as the
 *   topic's existing lists; otherwise INVALID_REPLICA_ASSIGNMENT. Without it, replicas are
 *   placed round-robin with the topic's replication factor. An empty list counts as none (KafkaJS
 *   writes an empty array where it means null).
 * - `validate_only`: checked and answered, nothing committed.
 * - Errors per topic with a message (Kafka's KRaft wording): UNKNOWN_TOPIC_OR_PARTITION,
 *   INVALID_PARTITIONS ("… currently has N partition(s); M would not be an increase." /
 *   "Topic already has N partition(s)."), INVALID_REQUEST for a topic named twice (answered once).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { CreatePartitionsApi, type CreatePartitionsResponse, type CreatePartitionsResponseCreatePartitionsTopicResult } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const createPartitionsHandler = defineHandler({
  api: CreatePartitionsApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<CreatePartitionsResponse> {
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const denied = req.topics.filter((t) => counts.get(t.name) === 1 && !authorize(ctx, 'Alter', 'Topic', t.name)).map((t) => t.name);
    const unique = req.topics.filter((t) => counts.get(t.name) === 1 && !denied.includes(t.name));
    const outcomes =
      unique.length > 0
        ? await ctx.broker.controller.createPartitions(
            unique.map((t) => ({ name: t.name, count: t.count, assignments: t.assignments === null || t.assignments.length === 0 ? null : t.assignments.map((a) => [...a.brokerIds]) })),
            req.validateOnly,
          )
        : [];
    const results: CreatePartitionsResponseCreatePartitionsTopicResult[] = unique.map((t, i) => ({ name: t.name, ...outcomes[i]! }));
    for (const name of denied) results.push({ name, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, errorMessage: 'Authorization failed.' });
    for (const [name, n] of counts) {
      if (n > 1) results.push({ name, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate topic name.' });
    }
    return { throttleTimeMs: 0, results };
  },
});
