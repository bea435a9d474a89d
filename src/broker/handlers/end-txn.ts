/**
 * EndTxn (key 26), versions 0–3 (v3 flexible). v4 (TRANSACTION_ABORTABLE) and v5 (KIP-890
 * transactions v2, epoch bump on every end) are not advertised.
 *
 * Behaviour:
 * - Ongoing: PrepareCommit / PrepareAbort is written to `__transaction_state` and the request is
 *   answered once that is durable (the decision is then final, crash or not); the markers are
 *   written to every partition of the transaction afterwards, then CompleteCommit /
 *   CompleteAbort. Requests for the id meanwhile get CONCURRENT_TRANSACTIONS.
 * - A retried EndTxn for a transaction already completed the same way: NONE; the other way, or
 *   with no transaction (Empty): INVALID_TXN_STATE. Fencing errors as for AddPartitionsToTxn.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { EndTxnApi, type EndTxnResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { fencedError, txnCoordinatorUnavailable } from './txn-util.js';

export const endTxnHandler = defineHandler({
  api: EndTxnApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<EndTxnResponse> {
    if (!authorize(ctx, 'Write', 'TransactionalId', req.transactionalId)) return { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1, producerEpoch: -1 };
    const unavailable = txnCoordinatorUnavailable(ctx);
    if (unavailable !== ErrorCode.NONE) return { throttleTimeMs: 0, errorCode: unavailable, producerId: -1, producerEpoch: -1 };
    const errorCode = await ctx.broker.exactlyOnce.coordinator.endTxn(req.transactionalId, req.producerId, req.producerEpoch, req.committed, fencedError(2, ctx.version));
    return { throttleTimeMs: 0, errorCode, producerId: -1, producerEpoch: -1 };
  },
});
