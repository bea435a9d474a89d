/**
 * InitProducerId (key 22), versions 0–4 (v2+ flexible).
 *
 * Behaviour:
 * - Without a transactional id: a new producer id with epoch 0 for an idempotent producer. Ids
 *   come from blocks committed to the metadata log, so none is ever handed out twice (restarts
 *   and kill -9 included). Deduplication state lives in each partition (producer-state.ts).
 * - With a transactional id: the transaction coordinator's InitProducerId (the first time a new
 *   id, later the same id with the epoch bumped, fencing older producers; an open transaction is
 *   aborted first and the answer is CONCURRENT_TRANSACTIONS until that is done — clients retry).
 *   `transaction_timeout_ms` ≤ 0 or above transaction.max.timeout.ms: INVALID_TRANSACTION_TIMEOUT.
 * - v3+: `producer_id`/`producer_epoch` of a producer re-initialising (KIP-360); when they are not
 *   the current ones the producer is a zombie: PRODUCER_FENCED (v4+) / INVALID_PRODUCER_EPOCH.
 * - While `__transaction_state` is being created or loaded: COORDINATOR_LOAD_IN_PROGRESS.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { InitProducerIdApi, type InitProducerIdResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize, authorizeAny, authorizeCluster } from '../security/authorizer.js';
import { fencedError, txnCoordinatorUnavailable } from './txn-util.js';

export const initProducerIdHandler = defineHandler({
  api: InitProducerIdApi,
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx): Promise<InitProducerIdResponse> {
    const fail = (errorCode: number): InitProducerIdResponse => ({ throttleTimeMs: 0, errorCode, producerId: -1, producerEpoch: -1 });
    const tid = req.transactionalId;
    // Kafka: Write on the transactional id; an idempotent producer needs IdempotentWrite on the
    // cluster or Write on some topic (KIP-679).
    if (tid !== null && !authorize(ctx, 'Write', 'TransactionalId', tid)) return fail(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    if (tid === null && !authorizeCluster(ctx, 'IdempotentWrite') && !authorizeAny(ctx, 'Write', 'Topic')) return fail(ErrorCode.CLUSTER_AUTHORIZATION_FAILED);
    if (tid !== null) {
      const unavailable = txnCoordinatorUnavailable(ctx);
      if (unavailable !== ErrorCode.NONE) return fail(unavailable);
    }
    const v = ctx.version;
    const r = await ctx.broker.exactlyOnce.coordinator.initProducerId(tid, req.transactionTimeoutMs, v >= 3 ? req.producerId : -1, v >= 3 ? req.producerEpoch : -1, fencedError(4, v));
    return { throttleTimeMs: 0, ...r };
  },
});
