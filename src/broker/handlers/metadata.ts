/**
 * Metadata (key 3), versions 0–12.
 *
 * Behaviour:
 * - v0: an empty topic list means all topics; v1+: null means all, empty means none.
 * - Unknown topics are created when the broker allows it (`auto.create.topics.enable`) and the
 *   request does (`allow_auto_topic_creation`, v4+; always on before v4), with the broker's
 *   default partitions and replication; the answer then carries the new topic.
 * - v10+ carries topic ids; v12 may look topics up by id (unknown → UNKNOWN_TOPIC_ID).
 * - Brokers: the registered, unfenced ones, each with its listener of the client's listener name.
 * - A partition without a leader (leader -1) carries LEADER_NOT_AVAILABLE; `offline_replicas` are
 *   its replicas on fenced or unregistered brokers.
 * - `controller_id` is the active controller (this broker on a single node); `cluster_id` is from meta.properties.
 * - With the authorizer on: listing all topics leaves out those the principal may not Describe;
 *   a named topic it may not Describe answers TOPIC_AUTHORIZATION_FAILED (existing or not, so
 *   existence does not leak); auto-creation needs Create on the cluster or the topic, else
 *   TOPIC_AUTHORIZATION_FAILED. Authorized operations (v8+) are what the principal may do.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { MetadataApi, type MetadataResponse, type MetadataResponseTopic } from '../../protocol/messages/index.js';
import { ZERO_UUID } from '../../protocol/reader.js';
import type { MetadataImage, TopicImage } from '../metadata/image.js';
import { invalidTopicName } from '../metadata/controller.js';
import { defineHandler, endpointFor } from './handler.js';
import { authorize, authorizeCluster, authorizedOperations, CLUSTER_NAME } from '../security/authorizer.js';

/** Kafka AclOperation codes as bits: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11. */
const TOPIC_OPERATIONS = [3, 4, 5, 6, 7, 8, 10, 11].reduce((m, b) => m | (1 << b), 0);
/** CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12. */
const CLUSTER_OPERATIONS = [5, 7, 8, 9, 10, 11, 12].reduce((m, b) => m | (1 << b), 0);
const OMITTED = -2147483648;

export function topicMetadata(t: TopicImage, includeOps: boolean | number, image?: MetadataImage): MetadataResponseTopic {
  return {
    errorCode: ErrorCode.NONE,
    name: t.name,
    topicId: t.topicId,
    isInternal: t.name === '__consumer_offsets' || t.name === '__transaction_state',
    partitions: t.partitions.map((p) => ({
      // As Kafka: a partition without a leader (every ISR replica fenced) is LEADER_NOT_AVAILABLE.
      errorCode: p.leader < 0 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
      partitionIndex: p.partition,
      leaderId: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicaNodes: [...p.replicas],
      isrNodes: [...p.isr],
      // Replicas on brokers that are fenced or not registered (as Kafka's KRaft metadata cache).
      offlineReplicas: image === undefined ? [] : p.replicas.filter((b) => !image.isUnfenced(b)),
    })),
    topicAuthorizedOperations: typeof includeOps === 'number' ? includeOps : includeOps ? TOPIC_OPERATIONS : OMITTED,
  };
}

const errorTopic = (name: string | null, topicId: string, errorCode: number): MetadataResponseTopic => ({
  errorCode,
  name,
  topicId,
  isInternal: false,
  partitions: [],
  topicAuthorizedOperations: OMITTED,
});

export const metadataHandler = defineHandler({
  api: MetadataApi,
  minVersion: 0,
  maxVersion: 12,
  async handle(req, ctx): Promise<MetadataResponse> {
    const broker = ctx.broker;
    const includeOps = ctx.version >= 8 && req.includeTopicAuthorizedOperations;
    const all = req.topics === null || (ctx.version === 0 && req.topics.length === 0);
    let image: MetadataImage = broker.image;
    let topics: MetadataResponseTopic[];
    const describable = (name: string): boolean => authorize(ctx, 'Describe', 'Topic', name);
    const ops = (t: TopicImage): boolean | number => (includeOps && broker.authorizer.enabled ? authorizedOperations(ctx, 'Topic', t.name) : includeOps);
    const mayCreate = (name: string): boolean => authorizeCluster(ctx, 'Create') || authorize(ctx, 'Create', 'Topic', name);
    if (all) {
      topics = [...image.topicsByName.values()].filter((t) => describable(t.name)).map((t) => topicMetadata(t, ops(t), image));
    } else {
      const allowCreate = (ctx.version < 4 || req.allowAutoTopicCreation) && broker.config.bool('auto.create.topics.enable');
      const toCreate = req
        .topics!.filter((t) => t.name !== null && image.topic(t.name) === undefined && invalidTopicName(t.name) === null && describable(t.name) && mayCreate(t.name))
        .map((t) => t.name!);
      if (allowCreate && toCreate.length > 0) {
        await broker.controller.createTopics(
          [...new Set(toCreate)].map((name) => ({ name, numPartitions: -1, replicationFactor: -1, assignments: [], configs: [] })),
          false,
        );
        image = broker.image;
      }
      topics = req.topics!.map((rt) => {
        if (rt.name === null) {
          // Lookup by topic id is v12+; before that the response cannot even carry a null name.
          if (ctx.version < 12) return errorTopic('', rt.topicId, ErrorCode.INVALID_REQUEST);
          const t = image.topicsById.get(rt.topicId);
          if (t !== undefined && !describable(t.name)) return errorTopic(null, rt.topicId, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
          return t === undefined ? errorTopic(null, rt.topicId, ErrorCode.UNKNOWN_TOPIC_ID) : topicMetadata(t, ops(t), image);
        }
        if (invalidTopicName(rt.name) !== null) return errorTopic(rt.name, ZERO_UUID, ErrorCode.INVALID_TOPIC_EXCEPTION);
        if (!describable(rt.name)) return errorTopic(rt.name, ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
        const t = image.topic(rt.name);
        if (t === undefined && allowCreate && !mayCreate(rt.name)) return errorTopic(rt.name, ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
        return t === undefined ? errorTopic(rt.name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) : topicMetadata(t, ops(t), image);
      });
    }
    return {
      throttleTimeMs: 0,
      brokers: [...image.brokers.values()].filter((b) => !b.fenced).map((b) => ({ nodeId: b.brokerId, ...endpointFor(ctx, b), rack: b.rack })),
      clusterId: broker.clusterId,
      controllerId: broker.controllerId,
      topics,
      clusterAuthorizedOperations: ctx.version >= 8 && ctx.version <= 10 && req.includeClusterAuthorizedOperations ? (broker.authorizer.enabled ? authorizedOperations(ctx, 'Cluster', CLUSTER_NAME) : CLUSTER_OPERATIONS) : OMITTED,
    };
  },
});
