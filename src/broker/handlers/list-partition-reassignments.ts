/**
 * ListPartitionReassignments (key 46), version 0.
 *
 * Behaviour (Kafka's): the reassignments in progress — each partition's replicas, adding and
 * removing replicas — of the named partitions, or of every partition when `topics` is null.
 * Named partitions without a reassignment (or unknown) are left out. Answered from this broker's
 * metadata image. Needs Describe on the Cluster (CLUSTER_AUTHORIZATION_FAILED).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { ListPartitionReassignmentsApi, type ListPartitionReassignmentsResponse, type ListPartitionReassignmentsResponseOngoingTopicReassignment } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorizeCluster } from '../security/authorizer.js';

export const listPartitionReassignmentsHandler = defineHandler({
  api: ListPartitionReassignmentsApi,
  minVersion: 0,
  maxVersion: 0,
  handle(req, ctx): ListPartitionReassignmentsResponse {
    if (!authorizeCluster(ctx, 'Describe')) return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.', topics: [] };
    const wanted = req.topics === null ? null : req.topics.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition })));
    const byTopic = new Map<string, ListPartitionReassignmentsResponseOngoingTopicReassignment>();
    for (const r of ctx.broker.controller.listPartitionReassignments(wanted)) {
      let t = byTopic.get(r.topic);
      if (t === undefined) byTopic.set(r.topic, (t = { name: r.topic, partitions: [] }));
      t.partitions.push({ partitionIndex: r.partition, replicas: [...r.replicas], addingReplicas: [...r.addingReplicas], removingReplicas: [...r.removingReplicas] });
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, topics: [...byTopic.values()] };
  },
});
