/**
 * Shared by the transaction handlers: the coordinator's availability, and which error a fenced
 * producer gets at each version (KIP-588: PRODUCER_FENCED only where the client knows it; older
 * versions get INVALID_PRODUCER_EPOCH, which they treat the same way), and whether the read-only
 * apis can read the coordinator's state.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { TRANSACTION_STATE_TOPIC } from '../../coordinator/transaction-records.js';
import type { RequestContext } from './handler.js';

/**
 * NONE when `__transaction_state` exists and the transaction coordinator has its log (it is
 * created if needed); else COORDINATOR_LOAD_IN_PROGRESS. Whether this broker coordinates a given
 * transactional id (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS while its partition loads) the
 * coordinator answers per request.
 */
export function txnCoordinatorUnavailable(ctx: RequestContext): number {
  return ctx.broker.exactlyOnce.ensureAttached() ? ErrorCode.NONE : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
}

export function fencedError(fencedSinceVersion: number, version: number): number {
  return version >= fencedSinceVersion ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
}

/**
 * For the read-only transaction apis (DescribeTransactions, ListTransactions): NONE when the
 * coordinator's state can be read; 'absent' when `__transaction_state` does not exist yet (so no
 * transactional id exists — a describe does not create the topic); else the error Kafka answers:
 * COORDINATOR_NOT_AVAILABLE once the coordinator is shut down, COORDINATOR_LOAD_IN_PROGRESS until
 * it has the topic's log. Per transactional id the coordinator says whether it serves it.
 */
export function txnStateReadable(ctx: RequestContext): number | 'absent' {
  const eos = ctx.broker.exactlyOnce;
  const c = eos.coordinator;
  if (c.unavailable() === ErrorCode.NOT_COORDINATOR) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  if (c.attached) return ErrorCode.NONE;
  if (ctx.broker.image.topic(TRANSACTION_STATE_TOPIC) === undefined) return 'absent';
  return eos.ensureAttached() ? ErrorCode.NONE : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
}
