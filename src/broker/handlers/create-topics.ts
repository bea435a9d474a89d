/**
 * CreateTopics (key 19), versions 0–7.
 *
 * Behaviour:
 * - Each topic is created by the controller: one metadata batch with its Topic, Config and
 *   Partition records, fsynced before the answer; the replica manager then opens its logs.
 * - `num_partitions` / `replication_factor` -1 take the broker's `num.partitions` /
 *   `default.replication.factor` (KIP-464, which clients send from v4; Kafka does not check the
 *   version and neither do we). A manual `assignments` list needs both counts at -1.
 * - v1+ `validate_only`: everything is checked and answered as if created, nothing is committed
 *   (the topic id is then the zero uuid).
 * - Errors, per topic, with `error_message` (v1+): INVALID_TOPIC_EXCEPTION (illegal name, or one
 *   that collides with an existing topic once '.' and '_' are equated), TOPIC_ALREADY_EXISTS,
 *   INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR (0, < -1, or more than the registered
 *   brokers), INVALID_REPLICA_ASSIGNMENT (gaps, duplicates, empty lists, unknown brokers),
 *   INVALID_CONFIG (unknown name, bad value), INVALID_REQUEST (a name given twice — answered
 *   once, nothing created for it — or counts next to a manual assignment).
 * - v5+: on success the answer carries the partition count, replication factor and the topic's
 *   configs (value, read_only, config_source, is_sensitive) as DescribeConfigs would show them;
 *   on error -1, -1 and no configs. v7: the new topic id.
 * - Internal names such as `__consumer_offsets` may be created, as in Kafka.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { CreateTopicsApi, type CreateTopicsRequestCreatableTopic, type CreateTopicsResponse, type CreateTopicsResponseCreatableTopicResult } from '../../protocol/messages/index.js';
import { ZERO_UUID } from '../../protocol/reader.js';
import type { CreateTopicSpec } from '../metadata/controller.js';
import { topicConfigEntries } from './describe-configs.js';
import { defineHandler } from './handler.js';
import { authorize, authorizeCluster } from '../security/authorizer.js';

/** A CreateTopics request's topic as the controller's CreateTopicSpec (also used by the quorum controller's handler). */
export function createTopicSpec(t: CreateTopicsRequestCreatableTopic): CreateTopicSpec {
  return {
    name: t.name,
    numPartitions: t.numPartitions,
    replicationFactor: t.replicationFactor,
    assignments: t.assignments.map((a) => ({ partitionIndex: a.partitionIndex, brokerIds: [...a.brokerIds] })),
    configs: t.configs.map((c): [string, string | null] => [c.name, c.value]),
  };
}

export const createTopicsHandler = defineHandler({
  api: CreateTopicsApi,
  minVersion: 0,
  maxVersion: 7,
  async handle(req, ctx): Promise<CreateTopicsResponse> {
    const broker = ctx.broker;
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    // Create on the cluster allows any topic; else Create on each topic (Kafka's KafkaApis).
    const clusterCreate = authorizeCluster(ctx, 'Create');
    const denied = new Set(req.topics.filter((t) => counts.get(t.name) === 1 && !clusterCreate && !authorize(ctx, 'Create', 'Topic', t.name)).map((t) => t.name));
    const specs: CreateTopicSpec[] = req.topics
      .filter((t) => counts.get(t.name) === 1 && !denied.has(t.name))
      .map(createTopicSpec);
    const validateOnly = ctx.version >= 1 && req.validateOnly;
    const created = specs.length > 0 ? await broker.controller.createTopics(specs, validateOnly) : [];
    const topics: CreateTopicsResponseCreatableTopicResult[] = created.map((r) => ({
      name: r.name,
      topicId: r.errorCode === ErrorCode.NONE && r.topicId !== '' ? r.topicId : ZERO_UUID,
      errorCode: r.errorCode,
      errorMessage: r.errorMessage,
      topicConfigErrorCode: ErrorCode.NONE,
      numPartitions: r.errorCode === ErrorCode.NONE ? r.numPartitions : -1,
      replicationFactor: r.errorCode === ErrorCode.NONE ? r.replicationFactor : -1,
      configs:
        r.errorCode === ErrorCode.NONE
          ? topicConfigEntries(r.configs, broker.config).map((e) => ({ name: e.name, value: e.value, readOnly: e.readOnly, configSource: e.source, isSensitive: false }))
          : [],
    }));
    for (const name of denied) {
      topics.push({
        name,
        topicId: ZERO_UUID,
        errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        errorMessage: 'Authorization failed.',
        topicConfigErrorCode: ErrorCode.NONE,
        numPartitions: -1,
        replicationFactor: -1,
        configs: [],
      });
    }
    for (const [name, n] of counts) {
      if (n === 1) continue;
      topics.push({
        name,
        topicId: ZERO_UUID,
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: 'Duplicate topic name.',
        topicConfigErrorCode: ErrorCode.NONE,
        numPartitions: -1,
        replicationFactor: -1,
        configs: [],
      });
    }
    return { throttleTimeMs: 0, topics };
  },
});
