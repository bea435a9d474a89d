/**
 * ElectLeaders (key 43), versions 0–2.
 *
 * Behaviour (Kafka's):
 * - `election_type` (v1+; v0 is preferred): 0 PREFERRED makes each partition's first replica its
 *   leader when it is in the ISR and alive (PREFERRED_LEADER_NOT_AVAILABLE otherwise,
 *   ELECTION_NOT_NEEDED when it already leads); 1 UNCLEAN elects a leader for a partition without
 *   one, from the ISR if it can, else any live replica (ELECTION_NOT_NEEDED when it has a leader,
 *   ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is alive). Other types: INVALID_REQUEST.
 * - `topic_partitions` null means every partition; then only partitions that got a new leader are
 *   answered. An unknown partition: UNKNOWN_TOPIC_OR_PARTITION.
 * - Elections commit through the controller (forwarded to the active one in a cluster) before
 *   the answer. Needs Alter on the Cluster (CLUSTER_AUTHORIZATION_FAILED; v0 has no top-level
 *   error, so every partition carries it).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { ElectLeadersApi, type ElectLeadersResponse, type ElectLeadersResponseReplicaElectionResult } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorizeCluster } from '../security/authorizer.js';
import { ElectionType } from '../metadata/partition-changes.js';

export const electLeadersHandler = defineHandler({
  api: ElectLeadersApi,
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx): Promise<ElectLeadersResponse> {
    const type = ctx.version === 0 ? ElectionType.PREFERRED : req.electionType;
    const answerAll = (errorCode: number, errorMessage: string): ElectLeadersResponse => ({
      throttleTimeMs: 0,
      errorCode: ctx.version >= 1 ? errorCode : ErrorCode.NONE,
      replicaElectionResults: (req.topicPartitions ?? []).map((t) => ({ topic: t.topic, partitionResult: t.partitions.map((p) => ({ partitionId: p, errorCode, errorMessage })) })),
    });
    if (!authorizeCluster(ctx, 'Alter')) return answerAll(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, 'Cluster authorization failed.');
    if (type !== ElectionType.PREFERRED && type !== ElectionType.UNCLEAN) return answerAll(ErrorCode.INVALID_REQUEST, `Unknown election type ${type}.`);
    const targets = req.topicPartitions === null ? null : req.topicPartitions.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition })));
    const results = await ctx.broker.controller.electLeaders(type, targets);
    const byTopic = new Map<string, ElectLeadersResponseReplicaElectionResult>();
    for (const r of results) {
      let t = byTopic.get(r.topic);
      if (t === undefined) byTopic.set(r.topic, (t = { topic: r.topic, partitionResult: [] }));
      t.partitionResult.push({ partitionId: r.partition, errorCode: r.errorCode, errorMessage: r.errorMessage });
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, replicaElectionResults: [...byTopic.values()] };
  },
});
