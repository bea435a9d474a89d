/**
 * FindCoordinator (key 10), versions 0–4.
 *
 * Behaviour:
 * - This broker is the coordinator of every group (key type 0) — it hosts every partition of
 *   `__consumer_offsets` — and of every transactional id (key type 1): the first such lookup
 *   creates and loads `__transaction_state`, answering COORDINATOR_NOT_AVAILABLE (retried by
 *   clients) until it is ready. Other key types: INVALID_REQUEST.
 * - v0 has no key type (always a group); v0–3 answer one key in the top-level fields; v4+ take
 *   `coordinator_keys` and answer one entry per key (KIP-699).
 * - The endpoint is this broker's advertised listener, as in Metadata.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { FindCoordinatorApi, type FindCoordinatorResponse, type FindCoordinatorResponseCoordinator } from '../../protocol/messages/index.js';
import { defineHandler, endpointFor } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const findCoordinatorHandler = defineHandler({
  api: FindCoordinatorApi,
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx): FindCoordinatorResponse {
    const broker = ctx.broker;
    const self = broker.image.brokers.get(broker.nodeId);
    const answer = (key: string): FindCoordinatorResponseCoordinator => {
      if (ctx.version >= 1 && req.keyType !== 0 && req.keyType !== 1) {
        return { key, nodeId: -1, host: '', port: -1, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unknown coordinator key type ${req.keyType}` };
      }
      // Transactional ids (key type 1): the first lookup creates and loads __transaction_state (as Kafka creates it on demand).
      const txnKey = ctx.version >= 1 && req.keyType === 1;
      if (!authorize(ctx, 'Describe', txnKey ? 'TransactionalId' : 'Group', key)) {
        const errorCode = txnKey ? ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED : ErrorCode.GROUP_AUTHORIZATION_FAILED;
        return { key, nodeId: -1, host: '', port: -1, errorCode, errorMessage: 'Authorization failed.' };
      }
      const loaded = txnKey ? broker.exactlyOnce.ensureLoaded() : broker.groupCoordinator.ready;
      if (self === undefined || !loaded) return { key, nodeId: -1, host: '', port: -1, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'The coordinator is not loaded yet' };
      return { key, nodeId: self.brokerId, ...endpointFor(ctx, self), errorCode: ErrorCode.NONE, errorMessage: null };
    };
    if (ctx.version >= 4) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: -1, host: '', port: -1, coordinators: req.coordinatorKeys.map(answer) };
    }
    const a = answer(req.key);
    return { throttleTimeMs: 0, errorCode: a.errorCode, errorMessage: a.errorMessage, nodeId: a.nodeId, host: a.host, port: a.port, coordinators: [] };
  },
});
