/**
 * WriteTxnMarkers (key 27), versions 0–1 (v1 flexible).
 *
 * In Kafka this is how a transaction coordinator has partition leaders write COMMIT/ABORT markers,
 * and how an operator aborts a hanging transaction (Admin.abortTransaction,
 * `kafka-transactions.sh abort`). Strand's own coordinator writes its markers in-process; this
 * handler serves the operator's case (`strand transactions abort`).
 *
 * Behaviour:
 * - For each marker and each of its partitions: a control batch (COMMIT when
 *   `transaction_result` is true, else ABORT) for the producer id and epoch, carrying the
 *   coordinator epoch, appended and fsynced; it closes the producer's open transaction in that
 *   partition (an ABORT is recorded in the transaction index), so the last stable offset moves
 *   on. A marker for a `__consumer_offsets` partition also completes (or drops) the producer's
 *   pending transactional offset commits there.
 * - Errors per partition: a negative producer id, producer epoch or coordinator epoch (no
 *   producer whose transaction could end), INVALID_REQUEST; as Kafka: unknown topic or
 *   partition, UNKNOWN_TOPIC_OR_PARTITION; not led here, NOT_LEADER_OR_FOLLOWER; an epoch older
 *   than the partition has seen for the producer, INVALID_PRODUCER_EPOCH (nothing written); a
 *   coordinator epoch older than the last marker's for the producer (a deposed coordinator),
 *   TRANSACTION_COORDINATOR_FENCED; a marker the ISR did not
 *   take within `request.timeout.ms`, REQUEST_TIMED_OUT (or NOT_LEADER_OR_FOLLOWER when
 *   leadership moved meanwhile); a failed write, KAFKA_STORAGE_ERROR.
 * - With an authorizer it needs ClusterAction on the cluster (else CLUSTER_AUTHORIZATION_FAILED for
 *   every partition), as Kafka; without one anyone may send it. Aborting a transaction its
 *   coordinator still considers open loses that transaction's records in the partition, so
 *   operators abort only what `find-hanging` reports.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { WriteTxnMarkersApi, type WriteTxnMarkersResponse, type WriteTxnMarkersResponseWritableTxnMarkerPartitionResult } from '../../protocol/messages/index.js';
import { OFFSETS_TOPIC } from '../../coordinator/group-records.js';
import { LogClosedError } from '../../storage/errors.js';
import { ProducerStateError } from '../../storage/producer-state.js';
import { ReplicationError } from '../replica-manager.js';
import { defineHandler, type RequestContext } from './handler.js';
import { authorizeCluster } from '../security/authorizer.js';

async function writeOne(ctx: RequestContext, topic: string, index: number, producerId: number, producerEpoch: number, commit: boolean, coordinatorEpoch: number): Promise<WriteTxnMarkersResponseWritableTxnMarkerPartitionResult> {
  const answer = (errorCode: number): WriteTxnMarkersResponseWritableTxnMarkerPartitionResult => ({ partitionIndex: index, errorCode });
  if (producerId < 0 || producerEpoch < 0 || coordinatorEpoch < 0) return answer(ErrorCode.INVALID_REQUEST);
  const image = ctx.broker.image.topic(topic)?.partitions[index];
  if (image === undefined) return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const partition = ctx.broker.replicaManager.getPartition(topic, index);
  if (partition === undefined || image.leader !== ctx.broker.nodeId) return answer(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  try {
    const offset = await ctx.broker.replicaManager.appendTxnMarker(partition, producerId, producerEpoch, commit, coordinatorEpoch, ctx.broker.config.number('request.timeout.ms'));
    ctx.logger.info('wrote a transaction marker on request', { topic, partition: index, producerId, producerEpoch, result: commit ? 'commit' : 'abort', offset, clientId: ctx.clientId });
  } catch (e) {
    if (e instanceof ProducerStateError) return answer(e.code === 'TRANSACTION_COORDINATOR_FENCED' ? ErrorCode.TRANSACTION_COORDINATOR_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH);
    if (e instanceof LogClosedError) return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    // Not committed by the ISR in time, or leadership moved: the coordinator retries.
    if (e instanceof ReplicationError) return answer((ErrorCode as Record<string, number>)[e.code] ?? ErrorCode.UNKNOWN_SERVER_ERROR);
    ctx.logger.error('writing a transaction marker failed', { topic, partition: index, producerId, error: e });
    return answer(ErrorCode.KAFKA_STORAGE_ERROR);
  }
  if (topic === OFFSETS_TOPIC) ctx.broker.groupCoordinator.completeTransactionalOffsets(producerId, index, commit);
  return answer(ErrorCode.NONE);
}

export const writeTxnMarkersHandler = defineHandler({
  api: WriteTxnMarkersApi,
  minVersion: 0,
  maxVersion: 1,
  async handle(req, ctx): Promise<WriteTxnMarkersResponse> {
    // As Kafka: ClusterAction on the cluster, else every partition is refused.
    if (!authorizeCluster(ctx, 'ClusterAction')) {
      return { markers: req.markers.map((mk) => ({ producerId: mk.producerId, topics: mk.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((partitionIndex) => ({ partitionIndex, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED })) })) })) };
    }
    const markers = await Promise.all(
      req.markers.map(async (mk) => ({
        producerId: mk.producerId,
        topics: await Promise.all(
          mk.topics.map(async (t) => ({
            name: t.name,
            partitions: await Promise.all(t.partitionIndexes.map((i) => writeOne(ctx, t.name, i, mk.producerId, mk.producerEpoch, mk.transactionResult, mk.coordinatorEpoch))),
          })),
        ),
      })),
    );
    return { markers };
  },
});
