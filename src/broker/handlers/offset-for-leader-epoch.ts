/**
 * OffsetForLeaderEpoch (key 23), versions 0–4.
 *
 * Behaviour:
 * - Per partition: where `leader_epoch` ends in the leader's log (storage/leader-epoch-cache.ts,
 *   Kafka's endOffsetFor): the latest epoch ends at the log end offset; an older one where the
 *   next larger epoch starts; the answer's `leader_epoch` is the largest epoch <= the requested
 *   one. An epoch above every known one, -1, or an empty cache answers NONE with epoch -1 and end
 *   offset -1. A consumer (KIP-320) uses it after a leader change to see whether its position was
 *   truncated away; a replica (KIP-101/279) to find where to truncate.
 * - Only the leader answers (as Kafka's ReplicaManager does, for consumers and replicas alike):
 *   a partition known to the metadata but not led or not hosted here → NOT_LEADER_OR_FOLLOWER;
 *   unknown → UNKNOWN_TOPIC_OR_PARTITION.
 * - `current_leader_epoch` (v2+, -1 = no check): below this broker's leader epoch of the partition
 *   → FENCED_LEADER_EPOCH, above it → UNKNOWN_LEADER_EPOCH (checked before leadership, as Kafka).
 * - Authorization (as Kafka): ClusterAction on the cluster allows every topic; otherwise Describe
 *   on each topic, else TOPIC_AUTHORIZATION_FAILED for its partitions.
 * - `replica_id` (v3+) is informational (-1 consumer, -2 default, ≥ 0 a broker).
 */
import { ErrorCode } from '../../protocol/errors.js';
import {
  OffsetForLeaderEpochApi,
  type OffsetForLeaderEpochResponse,
  type OffsetForLeaderEpochResponseEpochEndOffset,
} from '../../protocol/messages/index.js';
import { authorize, authorizeCluster } from '../security/authorizer.js';
import { defineHandler } from './handler.js';

export const offsetForLeaderEpochHandler = defineHandler({
  api: OffsetForLeaderEpochApi,
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx): OffsetForLeaderEpochResponse {
    const broker = ctx.broker;
    const image = broker.image;
    const clusterAction = authorizeCluster(ctx, 'ClusterAction');
    const topics = req.topics.map((t) => {
      const allowed = clusterAction || authorize(ctx, 'Describe', 'Topic', t.topic);
      const topicImage = image.topic(t.topic);
      const partitions = t.partitions.map((rp): OffsetForLeaderEpochResponseEpochEndOffset => {
        const out = { errorCode: ErrorCode.NONE, partition: rp.partition, leaderEpoch: -1, endOffset: -1 };
        if (!allowed) return { ...out, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED };
        const known = topicImage?.partitions.find((p) => p.partition === rp.partition);
        const p = broker.replicaManager.getPartition(t.topic, rp.partition);
        if (p === undefined) return { ...out, errorCode: known === undefined ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.NOT_LEADER_OR_FOLLOWER };
        if (ctx.version >= 2 && rp.currentLeaderEpoch >= 0 && rp.currentLeaderEpoch !== p.leaderEpoch) {
          return { ...out, errorCode: rp.currentLeaderEpoch < p.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH };
        }
        if (known === undefined || !p.isLeader) return { ...out, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
        const found = p.log.leaderEpochCache.endOffsetFor(rp.leaderEpoch, p.log.logEndOffset);
        if (found.endOffset < 0) return out;
        return { ...out, leaderEpoch: found.epoch, endOffset: found.endOffset };
      });
      return { topic: t.topic, partitions };
    });
    return { throttleTimeMs: 0, topics };
  },
});
