/**
 * Brings up exactly-once support inside the broker (issue 5): producer id allocation, the
 * transaction coordinator over the internal topic `__transaction_state`, the marker writer, the
 * produce-path verification hook and the producer-id expiration task.
 *
 * - Producer ids are handed out from blocks of PRODUCER_ID_BLOCK_SIZE committed to the metadata
 *   log first (Kafka's ProducerIdsRecord), so an id is never reused, across restarts and kill -9.
 * - `__transaction_state` is created like Kafka does: on first need (the first FindCoordinator
 *   for a transactional id or InitProducerId with one), with
 *   `transaction.state.log.num.partitions` partitions (50),
 *   `transaction.state.log.replication.factor` replicas (capped at the live brokers),
 *   `min.insync.replicas` = `transaction.state.log.min.isr` (capped at the replication factor),
 *   `cleanup.policy=compact` (no time retention; compacted by the log cleaner); until it exists
 *   the transaction apis answer COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE, which
 *   clients retry. The coordinator follows the leadership of its partitions
 *   (coordinator-leadership.ts): a partition this broker leads is replayed, and its unfinished
 *   commits and aborts resumed, at start and on failover.
 * - Markers are control batches appended to the partition logs (the leader's: a partition led by
 *   another broker gets WriteTxnMarkers from this one, within `request.timeout.ms`), carrying the coordinator epoch
 *   (the `__transaction_state` partition's leader epoch); a marker on a `__consumer_offsets`
 *   partition also completes the pending transactional offsets there.
 */
import { ErrorCode } from '../protocol/errors.js';
import type { GroupCoordinator } from '../coordinator/group-coordinator.js';
import { OFFSETS_TOPIC } from '../coordinator/group-records.js';
import { systemScheduler } from '../coordinator/time.js';
import { TransactionCoordinator, type TxnMarkerWriter } from '../coordinator/transaction-coordinator.js';
import { TRANSACTION_STATE_TOPIC, type TxnPartition } from '../coordinator/transaction-records.js';
import { WriteTxnMarkersApi } from '../protocol/messages/index.js';
import { InterBrokerClient } from './inter-broker-client.js';
import { ProducerStateError } from '../storage/producer-state.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { Controller } from './metadata/controller.js';
import type { ReplicaManager } from './replica-manager.js';
import { CoordinatorLeadership, createInternalTopic, internalTopicLog, type CoordinatorController, type InternalTopicSpec } from './coordinator-leadership.js';

export const TRANSACTION_STATE_TOPIC_SPEC: InternalTopicSpec = {
  name: TRANSACTION_STATE_TOPIC,
  partitionsConfig: 'transaction.state.log.num.partitions',
  replicationFactorConfig: 'transaction.state.log.replication.factor',
  segmentBytesConfig: 'transaction.state.log.segment.bytes',
  minIsrConfig: 'transaction.state.log.min.isr',
};

export const PRODUCER_ID_BLOCK_SIZE = 1000;

/** Hands out producer ids from blocks the controller commits to the metadata log. */
export class ProducerIdManager {
  private next = 0;
  private end = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly controller: Pick<Controller, 'allocateProducerIds'>) {}

  allocate(): Promise<number> {
    const p = this.queue.then(async () => {
      if (this.next >= this.end) {
        const block = await this.controller.allocateProducerIds(PRODUCER_ID_BLOCK_SIZE);
        this.next = block.first;
        this.end = block.first + block.size;
      }
      return this.next++;
    });
    this.queue = p.catch(() => undefined);
    return p;
  }
}

export interface ExactlyOnce {
  coordinator: TransactionCoordinator;
  /** Follows the leadership of `__transaction_state` (call `leadership.sync` on every metadata change). */
  leadership: CoordinatorLeadership;
  /** Whether `__transaction_state` exists and the coordinator has its log; if not, starts creating it. */
  ensureAttached(): boolean;
  shutdown(): void;
}

/** Where another broker is reached: its registered (inter-broker listener) endpoint in the image. */
function brokerEndpoint(controller: CoordinatorController, brokerId: number): { host: string; port: number } | undefined {
  const b = controller.image.brokers.get(brokerId);
  return b === undefined ? undefined : { host: b.host, port: b.port };
}

export function setUpExactlyOnce(config: BrokerConfig, controller: CoordinatorController & Pick<Controller, 'allocateProducerIds'>, replicaManager: ReplicaManager, groupCoordinator: GroupCoordinator, logger: Logger): ExactlyOnce {
  const ids = new ProducerIdManager(controller);
  const requestTimeoutMs = config.number('request.timeout.ms');
  const interBroker = new InterBrokerClient(`strand-broker-${config.nodeId}`, (id) => brokerEndpoint(controller, id), requestTimeoutMs);
  /** A marker for a partition led by another broker: WriteTxnMarkers to it (Kafka's TransactionMarkerChannelManager). */
  const writeRemoteMarker = async (leader: number, p: TxnPartition, producerId: number, producerEpoch: number, commit: boolean, coordinatorEpoch: number): Promise<boolean> => {
    const r = await interBroker.request(
      leader,
      WriteTxnMarkersApi,
      { markers: [{ producerId, producerEpoch, transactionResult: commit, coordinatorEpoch, topics: [{ name: p.topic, partitionIndexes: [p.partition] }] }] },
      1,
    );
    const code = r.markers[0]?.topics[0]?.partitions[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
    switch (code) {
      case ErrorCode.NONE:
        return true;
      case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
        return false;
      case ErrorCode.INVALID_PRODUCER_EPOCH:
        logger.warn('skipping an obsolete transaction marker', { topic: p.topic, partition: p.partition, producerId, producerEpoch, leader });
        return true;
      default: {
        const name = Object.entries(ErrorCode).find(([, v]) => v === code)?.[0] ?? String(code);
        throw Object.assign(new Error(`broker ${leader} answered ${name} to a transaction marker for ${p.topic}-${p.partition}`), { code: name });
      }
    }
  };
  const markers: TxnMarkerWriter = {
    async writeMarker(p, producerId, producerEpoch, commit, coordinatorEpoch) {
      const image = controller.image.topic(p.topic)?.partitions[p.partition];
      if (image === undefined) return false;
      if (image.leader < 0) throw Object.assign(new Error(`${p.topic}-${p.partition} has no leader`), { code: 'LEADER_NOT_AVAILABLE' });
      if (image.leader !== config.nodeId) return writeRemoteMarker(image.leader, p, producerId, producerEpoch, commit, coordinatorEpoch);
      const partition = replicaManager.getPartition(p.topic, p.partition);
      if (partition === undefined) return false;
      try {
        await replicaManager.appendTxnMarker(partition, producerId, producerEpoch, commit, coordinatorEpoch, requestTimeoutMs);
      } catch (e) {
        if (e instanceof ProducerStateError && e.code !== 'TRANSACTION_COORDINATOR_FENCED') {
          // The partition has seen a newer epoch of this producer: this marker is obsolete.
          logger.warn('skipping an obsolete transaction marker', { topic: p.topic, partition: p.partition, producerId, producerEpoch, error: e.message });
          return true;
        }
        throw e;
      }
      if (p.topic === OFFSETS_TOPIC) groupCoordinator.completeTransactionalOffsets(producerId, p.partition, commit);
      return true;
    },
  };
  const coordinator = new TransactionCoordinator({
    scheduler: systemScheduler,
    logger,
    config: {
      maxTimeoutMs: config.number('transaction.max.timeout.ms'),
      idExpirationMs: config.number('transactional.id.expiration.ms'),
      abortCheckIntervalMs: config.number('transaction.abort.timed.out.transaction.cleanup.interval.ms'),
      markerRetryBackoffMs: 100,
    },
    allocateProducerId: () => ids.allocate(),
    markers,
  });
  replicaManager.verifyTransaction = (pid, epoch, topic, partition) => coordinator.verifyWrite(pid, epoch, topic, partition);

  const expirationMs = config.number('producer.id.expiration.ms');
  const expiryTimer = setInterval(() => replicaManager.expireProducers(Date.now(), expirationMs), config.number('producer.id.expiration.check.interval.ms'));
  expiryTimer.unref();

  const leadership = new CoordinatorLeadership(
    TRANSACTION_STATE_TOPIC,
    config.nodeId,
    coordinator,
    (n) => internalTopicLog(TRANSACTION_STATE_TOPIC, n, config.nodeId, controller, replicaManager, config.number('request.timeout.ms')),
    (p) => replicaManager.getPartition(TRANSACTION_STATE_TOPIC, p) !== undefined,
    logger,
  );
  let creating: Promise<boolean> | null = null;
  const ensureAttached = (): boolean => {
    if (coordinator.attached) return true;
    // Created, but the image listeners (the replica manager opening its logs, then the
    // leadership) have not run yet: the client retries.
    if (controller.image.topic(TRANSACTION_STATE_TOPIC) !== undefined) return false;
    creating ??= createInternalTopic(TRANSACTION_STATE_TOPIC_SPEC, controller, config, logger)
      .catch((e: unknown) => {
        logger.error(`could not create ${TRANSACTION_STATE_TOPIC}; the next request tries again`, { error: e });
        return false;
      })
      .finally(() => {
        creating = null;
      });
    return false;
  };
  return {
    coordinator,
    leadership,
    ensureAttached,
    shutdown() {
      clearInterval(expiryTimer);
      coordinator.shutdown();
      interBroker.close();
    },
  };
}
