/**
 * FindCoordinator (key 10), versions 0–4.
 *
 * Behaviour:
 * - A group (key type 0) is coordinated by the leader of its partition of `__consumer_offsets`,
 *   a transactional id (key type 1) by the leader of its partition of `__transaction_state`
 *   (`abs(javaStringHashCode(key)) % partitions`, as Kafka): the answer is that broker's id and
 *   endpoint — for this broker the address advertised for the client's listener, for another
 *   its registration, as in Metadata. Other key types: INVALID_REQUEST.
 * - The internal topic is created on the first lookup that needs it (as Kafka; a single broker
 *   creates `__consumer_offsets` at start): COORDINATOR_NOT_AVAILABLE until it exists, and while
 *   the partition has no leader (or its leader is not a live registered broker). Clients retry.
 *   A coordinator still loading the partition answers the requests that follow with
 *   COORDINATOR_LOAD_IN_PROGRESS.
 * - v0 has no key type (always a group); v0–3 answer one key in the top-level fields; v4+ take
 *   `coordinator_keys` and answer one entry per key (KIP-699).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { FindCoordinatorApi, type FindCoordinatorResponse, type FindCoordinatorResponseCoordinator } from '../../protocol/messages/index.js';
import { OFFSETS_TOPIC, partitionForGroup } from '../../coordinator/group-records.js';
import { TRANSACTION_STATE_TOPIC, partitionForTransactionalId } from '../../coordinator/transaction-records.js';
import { defineHandler, endpointFor } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const findCoordinatorHandler = defineHandler({
  api: FindCoordinatorApi,
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx): FindCoordinatorResponse {
    const broker = ctx.broker;
    const answer = (key: string): FindCoordinatorResponseCoordinator => {
      const notAvailable = (errorMessage: string): FindCoordinatorResponseCoordinator => ({ key, nodeId: -1, host: '', port: -1, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage });
      if (ctx.version >= 1 && req.keyType !== 0 && req.keyType !== 1) {
        return { key, nodeId: -1, host: '', port: -1, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unknown coordinator key type ${req.keyType}` };
      }
      const txnKey = ctx.version >= 1 && req.keyType === 1;
      if (!authorize(ctx, 'Describe', txnKey ? 'TransactionalId' : 'Group', key)) {
        const errorCode = txnKey ? ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED : ErrorCode.GROUP_AUTHORIZATION_FAILED;
        return { key, nodeId: -1, host: '', port: -1, errorCode, errorMessage: 'Authorization failed.' };
      }
      const exists = txnKey ? broker.exactlyOnce.ensureAttached() : broker.groupCoordination.ensureTopic();
      const topicName = txnKey ? TRANSACTION_STATE_TOPIC : OFFSETS_TOPIC;
      const topic = broker.image.topic(topicName);
      if (!exists || topic === undefined || topic.partitions.length === 0) return notAvailable(`${topicName} is being created`);
      const index = txnKey ? partitionForTransactionalId(key, topic.partitions.length) : partitionForGroup(key, topic.partitions.length);
      const leader = topic.partitions[index]?.leader ?? -1;
      const reg = leader < 0 ? undefined : broker.image.brokers.get(leader);
      if (reg === undefined || (reg as { fenced?: boolean }).fenced === true) return notAvailable(`${topicName}-${index} has no leader`);
      return { key, nodeId: reg.brokerId, ...endpointFor(ctx, reg), errorCode: ErrorCode.NONE, errorMessage: null };
    };
    if (ctx.version >= 4) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: -1, host: '', port: -1, coordinators: req.coordinatorKeys.map(answer) };
    }
    const a = answer(req.key);
    return { throttleTimeMs: 0, errorCode: a.errorCode, errorMessage: a.errorMessage, nodeId: a.nodeId, host: a.host, port: a.port, coordinators: [] };
  },
});
