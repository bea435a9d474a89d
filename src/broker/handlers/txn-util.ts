/**
 * Shared by the transaction handlers: the coordinator's availability, and which error a fenced
 * producer gets at each version (KIP-588: PRODUCER_FENCED only where the client knows it; older
 * versions get INVALID_PRODUCER_EPOCH, which they treat the same way), and whether the read-only
 * apis can read the coordinator's state.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { TRANSACTION_STATE_TOPIC } from '../../coordinator/transaction-records.js';
import type { RequestContext } from './handler.js';

/** NONE when the transaction coordinator can serve; else the error (it starts loading if needed). */
export function txnCoordinatorUnavailable(ctx: RequestContext): number {
  const eos = ctx.broker.exactlyOnce;
  if (!eos.ensureLoaded()) return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
  return eos.coordinator.unavailable();
}

export function fencedError(fencedSinceVersion: number, version: number): number {
  return version >= fencedSinceVersion ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
}

/**
 * For the read-only transaction apis (DescribeTransactions, ListTransactions): NONE when the
 * coordinator's state can be read; 'absent' when `__transaction_state` does not exist yet (so no
 * transactional id exists — a describe does not create the topic); else the error Kafka answers:
 * COORDINATOR_NOT_AVAILABLE once the coordinator is shut down, COORDINATOR_LOAD_IN_PROGRESS while
 * it loads (loading is started if it had not begun).
 */
export function txnStateReadable(ctx: RequestContext): number | 'absent' {
  const eos = ctx.broker.exactlyOnce;
  const c = eos.coordinator;
  if (c.ready) return ErrorCode.NONE;
  if (c.unavailable() === ErrorCode.NOT_COORDINATOR) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  if (ctx.broker.image.topic(TRANSACTION_STATE_TOPIC) === undefined) return 'absent';
  return eos.ensureLoaded() ? ErrorCode.NONE : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
}
