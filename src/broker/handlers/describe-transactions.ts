/**
 * DescribeTransactions (key 65), version 0 (flexible). KIP-664.
 *
 * Behaviour:
 * - Per transactional id, from the transaction coordinator's memory (which equals a replay of
 *   `__transaction_state`): the state by Kafka's name (Empty, Ongoing, PrepareCommit,
 *   PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence, Dead), the transaction timeout,
 *   the start time of the current or last transaction (-1 when none has started since the
 *   producer was initialised), the producer id and epoch, and the partitions of the transaction
 *   grouped by topic (while Ongoing or Prepare*; a completed transaction has none).
 * - Errors per id, as Kafka: an empty or unknown id, or one being expired (Dead),
 *   TRANSACTIONAL_ID_NOT_FOUND; COORDINATOR_LOAD_IN_PROGRESS while `__transaction_state` loads;
 *   COORDINATOR_NOT_AVAILABLE once the coordinator has shut down; NOT_COORDINATOR when the
 *   id's `__transaction_state` partition is not led by this broker, COORDINATOR_LOAD_IN_PROGRESS
 *   while this broker loads it.
 * - Does not create `__transaction_state`: before the first transactional producer every id is
 *   TRANSACTIONAL_ID_NOT_FOUND.
 * - Ids are answered in request order, a repeated id once per mention.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeTransactionsApi, type DescribeTransactionsResponse, type DescribeTransactionsResponseTransactionState } from '../../protocol/messages/index.js';
import { TxnState } from '../../coordinator/transaction-records.js';
import { defineHandler, type RequestContext } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { txnStateReadable } from './txn-util.js';

function describeOne(tid: string, readable: number | 'absent', ctx: RequestContext): DescribeTransactionsResponseTransactionState {
  const out: DescribeTransactionsResponseTransactionState = {
    errorCode: ErrorCode.NONE,
    transactionalId: tid,
    transactionState: '',
    transactionTimeoutMs: 0,
    transactionStartTimeMs: -1,
    producerId: -1,
    producerEpoch: -1,
    topics: [],
  };
  // As Kafka: Describe on the transactional id, checked before anything about the id is told.
  if (!authorize(ctx, 'Describe', 'TransactionalId', tid)) return { ...out, errorCode: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED };
  if (readable !== ErrorCode.NONE) return { ...out, errorCode: readable === 'absent' ? ErrorCode.TRANSACTIONAL_ID_NOT_FOUND : readable };
  if (tid === '') return { ...out, errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND };
  const coordinator = ctx.broker.exactlyOnce.coordinator;
  const served = coordinator.unavailableFor(tid);
  if (served !== ErrorCode.NONE) return { ...out, errorCode: served };
  const m = coordinator.transaction(tid);
  if (m === undefined || m.state === TxnState.Dead) return { ...out, errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND };
  const byTopic = new Map<string, number[]>();
  for (const p of m.partitions) {
    const l = byTopic.get(p.topic);
    if (l === undefined) byTopic.set(p.topic, [p.partition]);
    else l.push(p.partition);
  }
  return {
    ...out,
    transactionState: coordinator.stateName(m),
    transactionTimeoutMs: m.timeoutMs,
    transactionStartTimeMs: m.startMs,
    producerId: m.producerId,
    producerEpoch: m.producerEpoch,
    topics: [...byTopic].map(([t, partitions]) => ({ topic: t, partitions })),
  };
}

export const describeTransactionsHandler = defineHandler({
  api: DescribeTransactionsApi,
  minVersion: 0,
  maxVersion: 0,
  handle(req, ctx): DescribeTransactionsResponse {
    const readable = txnStateReadable(ctx);
    return { throttleTimeMs: 0, transactionStates: req.transactionalIds.map((tid) => describeOne(tid, readable, ctx)) };
  },
});
