/**
 * Shared by the transaction handlers: the coordinator's availability, and which error a fenced
 * producer gets at each version (KIP-588: PRODUCER_FENCED only where the client knows it; older
 * versions get INVALID_PRODUCER_EPOCH, which they treat the same way).
 */
import { ErrorCode } from '../../protocol/errors.js';
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
