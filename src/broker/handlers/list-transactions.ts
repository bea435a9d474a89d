/**
 * ListTransactions (key 66), versions 0–1 (flexible). KIP-664; v1 adds the duration filter (KIP-994).
 *
 * Behaviour:
 * - Every transactional id this broker coordinates (the partitions of `__transaction_state` it
 *   leads; a client asks every broker), with its producer id and state (Kafka's
 *   state names). Ids in the Dead state (being expired) are never listed, as in Kafka.
 * - `state_filters`: only ids in one of these states (exact names, as Kafka); a name that is no
 *   state is echoed in `unknown_state_filters` and matches nothing (Kafka drops unknown names
 *   before filtering, so there a filter of only unknown names lists everything). `producer_id_filters`: only
 *   ids whose current producer id is one of these. Empty filters match everything.
 * - `duration_filter` (v1, ms, -1 = off): only transactions running longer than it, i.e. with a
 *   start time and now − start > filter. (Kafka also lists ids whose last transaction has
 *   completed if it started long enough ago; so does Strand. An id with no transaction since its
 *   producer was initialised has no start time and is not "running", so it is left out.)
 * - COORDINATOR_LOAD_IN_PROGRESS while `__transaction_state` loads; COORDINATOR_NOT_AVAILABLE once
 *   the coordinator has shut down. Before the first transactional producer (no
 *   `__transaction_state` yet) the list is empty; the topic is not created.
 * - Sorted by transactional id, so the answer is stable.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { ListTransactionsApi, type ListTransactionsResponse } from '../../protocol/messages/index.js';
import { TXN_STATE_NAMES, TxnState } from '../../coordinator/transaction-records.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { txnStateReadable } from './txn-util.js';

const STATE_NAMES = new Set(Object.values(TXN_STATE_NAMES));

export const listTransactionsHandler = defineHandler({
  api: ListTransactionsApi,
  minVersion: 0,
  maxVersion: 1,
  handle(req, ctx): ListTransactionsResponse {
    const unknownStateFilters = req.stateFilters.filter((s) => !STATE_NAMES.has(s));
    const out: ListTransactionsResponse = { throttleTimeMs: 0, errorCode: ErrorCode.NONE, unknownStateFilters, transactionStates: [] };
    const readable = txnStateReadable(ctx);
    if (readable === 'absent') return out;
    if (readable !== ErrorCode.NONE) return { ...out, errorCode: readable, unknownStateFilters: [] };
    // As Kafka: while any partition this broker coordinates is loading, the list is incomplete.
    if (ctx.broker.exactlyOnce.coordinator.unavailable() === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return { ...out, errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, unknownStateFilters: [] };
    const states = new Set(req.stateFilters);
    const pids = new Set(req.producerIdFilters);
    const durationMs = ctx.version >= 1 ? req.durationFilter : -1;
    const now = Date.now();
    const coordinator = ctx.broker.exactlyOnce.coordinator;
    for (const m of coordinator.transactions()) {
      const state = coordinator.stateName(m);
      if (m.state === TxnState.Dead) continue;
      if (states.size > 0 && !states.has(state)) continue;
      if (pids.size > 0 && !pids.has(m.producerId)) continue;
      if (durationMs >= 0 && (m.startMs < 0 || now - m.startMs <= durationMs)) continue;
      // As Kafka: only the ids the caller may Describe.
      if (!authorize(ctx, 'Describe', 'TransactionalId', m.transactionalId)) continue;
      out.transactionStates.push({ transactionalId: m.transactionalId, producerId: m.producerId, transactionState: state });
    }
    out.transactionStates.sort((a, b) => (a.transactionalId < b.transactionalId ? -1 : a.transactionalId > b.transactionalId ? 1 : 0));
    return out;
  },
});
