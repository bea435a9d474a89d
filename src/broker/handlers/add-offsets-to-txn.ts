/**
 * AddOffsetsToTxn (key 25), versions 0–3 (v3 flexible).
 *
 * Behaviour:
 * - Adds the group's partition of `__consumer_offsets` to the producer's transaction, so its end
 *   writes a marker there too (which commits or drops the TxnOffsetCommit offsets). Errors as for
 *   AddPartitionsToTxn (PRODUCER_FENCED from v2).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { AddOffsetsToTxnApi, type AddOffsetsToTxnResponse } from '../../protocol/messages/index.js';
import { OFFSETS_TOPIC } from '../../coordinator/group-records.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { fencedError, txnCoordinatorUnavailable } from './txn-util.js';

export const addOffsetsToTxnHandler = defineHandler({
  api: AddOffsetsToTxnApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<AddOffsetsToTxnResponse> {
    if (!authorize(ctx, 'Write', 'TransactionalId', req.transactionalId)) return { throttleTimeMs: 0, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED };
    if (!authorize(ctx, 'Read', 'Group', req.groupId)) return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED };
    const unavailable = txnCoordinatorUnavailable(ctx);
    if (unavailable !== ErrorCode.NONE) return { throttleTimeMs: 0, errorCode: unavailable };
    const gc = ctx.broker.groupCoordinator;
    // The group's partition needs __consumer_offsets (created here if it does not exist yet).
    if (!ctx.broker.groupCoordination.ensureTopic() || !gc.attached) return { throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS };
    if (req.groupId === '') return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_GROUP_ID };
    const partition = { topic: OFFSETS_TOPIC, partition: gc.partitionFor(req.groupId) };
    const errorCode = await ctx.broker.exactlyOnce.coordinator.addPartitions(req.transactionalId, req.producerId, req.producerEpoch, [partition], fencedError(2, ctx.version));
    return { throttleTimeMs: 0, errorCode };
  },
});
