/**
 * DescribeProducers (key 61), version 0 (flexible). KIP-664.
 *
 * Behaviour:
 * - Per requested partition, the active producers of the partition's producer state
 *   (storage/producer-state.ts), sorted by producer id: producer id and epoch, the last sequence
 *   written (-1 when the producer's retained batches are gone, e.g. only markers seen since its
 *   epoch changed), the timestamp of its last batch, the coordinator epoch of the last marker
 *   (-1 when none) and the first offset of its open transaction (-1 when none).
 * - Errors per partition, as Kafka's ReplicaManager: a topic or partition the metadata does not
 *   have, UNKNOWN_TOPIC_OR_PARTITION; one that exists but is not led (hosted) by this broker,
 *   NOT_LEADER_OR_FOLLOWER. Each partition is answered as often as it is asked for.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeProducersApi, type DescribeProducersResponse, type DescribeProducersResponsePartitionResponse } from '../../protocol/messages/index.js';
import { defineHandler, type RequestContext } from './handler.js';
import { authorize } from '../security/authorizer.js';

function describePartition(topic: string, index: number, ctx: RequestContext): DescribeProducersResponsePartitionResponse {
  const fail = (errorCode: number, errorMessage: string): DescribeProducersResponsePartitionResponse => ({ partitionIndex: index, errorCode, errorMessage, activeProducers: [] });
  // As Kafka: Read on the topic.
  if (!authorize(ctx, 'Read', 'Topic', topic)) return fail(ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Authorization failed.');
  const image = ctx.broker.image.topic(topic)?.partitions[index];
  if (image === undefined) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `This server does not host ${topic}-${index}`);
  const partition = ctx.broker.replicaManager.getPartition(topic, index);
  if (partition === undefined || image.leader !== ctx.broker.nodeId) return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER, `This broker is not the leader of ${topic}-${index}`);
  const producers = [...partition.log.producerState.producers.values()].sort((a, b) => a.producerId - b.producerId);
  return {
    partitionIndex: index,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    activeProducers: producers.map((e) => ({
      producerId: e.producerId,
      producerEpoch: e.epoch,
      lastSequence: e.batches.length > 0 ? e.batches[e.batches.length - 1]!.lastSeq : -1,
      lastTimestamp: e.lastTimestamp,
      coordinatorEpoch: e.coordinatorEpoch,
      currentTxnStartOffset: e.currentTxnFirstOffset,
    })),
  };
}

export const describeProducersHandler = defineHandler({
  api: DescribeProducersApi,
  minVersion: 0,
  maxVersion: 0,
  handle(req, ctx): DescribeProducersResponse {
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((i) => describePartition(t.name, i, ctx)) })),
    };
  },
});
