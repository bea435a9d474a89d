/**
 * AddPartitionsToTxn (key 24), versions 0–3 (v3 flexible). v4+ (the broker-to-broker batched
 * form of KIP-890) is not advertised: clients pick the highest version offered.
 *
 * Behaviour:
 * - Adds partitions to the producer's transaction (Empty/Complete → Ongoing; the transaction's
 *   timeout starts with the first add). Written to `__transaction_state` before the answer.
 * - A partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION for it and
 *   OPERATION_NOT_ATTEMPTED for the others (nothing is added), as Kafka.
 * - Unknown transactional id or another producer id: INVALID_PRODUCER_ID_MAPPING; another epoch:
 *   PRODUCER_FENCED (v2+) / INVALID_PRODUCER_EPOCH; while the previous transaction is being
 *   ended: CONCURRENT_TRANSACTIONS (clients retry). The error is given for every partition.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { AddPartitionsToTxnApi, type AddPartitionsToTxnResponse } from '../../protocol/messages/index.js';
import type { TxnPartition } from '../../coordinator/transaction-records.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { fencedError, txnCoordinatorUnavailable } from './txn-util.js';

export const addPartitionsToTxnHandler = defineHandler({
  api: AddPartitionsToTxnApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<AddPartitionsToTxnResponse> {
    const topics = req.v3AndBelowTopics;
    const answer = (code: (t: string, p: number) => number): AddPartitionsToTxnResponse => ({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      resultsByTransaction: [],
      resultsByTopicV3AndBelow: topics.map((t) => ({ name: t.name, resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: code(t.name, p) })) })),
    });
    if (!authorize(ctx, 'Write', 'TransactionalId', req.v3AndBelowTransactionalId)) return answer(() => ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    const deniedTopics = new Set(topics.filter((t) => !authorize(ctx, 'Write', 'Topic', t.name)).map((t) => t.name));
    if (deniedTopics.size > 0) return answer((t) => (deniedTopics.has(t) ? ErrorCode.TOPIC_AUTHORIZATION_FAILED : ErrorCode.OPERATION_NOT_ATTEMPTED));
    const unavailable = txnCoordinatorUnavailable(ctx);
    if (unavailable !== ErrorCode.NONE) return answer(() => unavailable);
    const image = ctx.broker.image;
    const exists = (t: string, p: number): boolean => {
      const ti = image.topic(t);
      return ti !== undefined && p >= 0 && ti.partitions[p] !== undefined;
    };
    const partitions: TxnPartition[] = topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p })));
    if (partitions.some((p) => !exists(p.topic, p.partition))) {
      return answer((t, p) => (exists(t, p) ? ErrorCode.OPERATION_NOT_ATTEMPTED : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
    }
    const err = await ctx.broker.exactlyOnce.coordinator.addPartitions(req.v3AndBelowTransactionalId, req.v3AndBelowProducerId, req.v3AndBelowProducerEpoch, partitions, fencedError(2, ctx.version));
    return answer(() => err);
  },
});
