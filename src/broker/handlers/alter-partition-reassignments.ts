/**
 * AlterPartitionReassignments (key 45), version 0.
 *
 * Behaviour (Kafka's KRaft controller):
 * - For each partition, `replicas` is the target replica list, or null to cancel the reassignment
 *   in progress (NO_REASSIGNMENT_IN_PROGRESS when there is none). While it runs, the partition's
 *   replicas are the target followed by the replicas being removed (`adding_replicas` /
 *   `removing_replicas` in ListPartitionReassignments and Kafka's PartitionRecord); the new
 *   replicas follow the leader, and when all are in the ISR the controller drops the removed
 *   ones (moving leadership if the leader is one of them) — see partition-changes.ts.
 * - A target already in the ISR completes at once. An empty or repeating list, or one naming an
 *   unregistered broker: INVALID_REPLICA_ASSIGNMENT. Unknown partition: UNKNOWN_TOPIC_OR_PARTITION.
 * - Needs Alter on the Cluster (top-level CLUSTER_AUTHORIZATION_FAILED).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { AlterPartitionReassignmentsApi, type AlterPartitionReassignmentsResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorizeCluster } from '../security/authorizer.js';

export const alterPartitionReassignmentsHandler = defineHandler({
  api: AlterPartitionReassignmentsApi,
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx): Promise<AlterPartitionReassignmentsResponse> {
    if (!authorizeCluster(ctx, 'Alter')) {
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        errorMessage: 'Cluster authorization failed.',
        responses: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: null })) })),
      };
    }
    const targets = req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, replicas: p.replicas === null ? null : [...p.replicas] })));
    const results = targets.length > 0 ? await ctx.broker.controller.alterPartitionReassignments(targets) : [];
    let i = 0;
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      responses: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, ...results[i++]! })) })),
    };
  },
});
