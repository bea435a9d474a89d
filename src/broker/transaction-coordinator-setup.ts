/**
 * Brings up exactly-once support inside the broker (issue 5): producer id allocation, the
 * transaction coordinator over the internal topic `__transaction_state`, the marker writer, the
 * produce-path verification hook and the producer-id expiration task.
 *
 * - Producer ids are handed out from blocks of PRODUCER_ID_BLOCK_SIZE committed to the metadata
 *   log first (Kafka's ProducerIdsRecord), so an id is never reused, across restarts and kill -9.
 * - `__transaction_state` is created like Kafka does: on first need (the first FindCoordinator
 *   for a transactional id or InitProducerId with one), with
 *   `transaction.state.log.num.partitions` partitions (50), `cleanup.policy=compact` (no time
 *   retention; compacted by the log cleaner); until it is loaded the transaction apis answer
 *   COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE, which clients retry. A broker whose
 *   metadata already has the topic loads it at start (replay, then resumes unfinished commits
 *   and aborts).
 * - Markers are control batches appended to the partition logs; a marker on a
 *   `__consumer_offsets` partition also completes the pending transactional offsets there.
 */
import { ErrorCode } from '../protocol/errors.js';
import { PartitionCoordinatorLog } from '../coordinator/coordinator-log.js';
import type { GroupCoordinator } from '../coordinator/group-coordinator.js';
import { OFFSETS_TOPIC } from '../coordinator/group-records.js';
import { systemScheduler } from '../coordinator/time.js';
import { TransactionCoordinator, type TxnMarkerWriter } from '../coordinator/transaction-coordinator.js';
import { TRANSACTION_STATE_TOPIC } from '../coordinator/transaction-records.js';
import { ProducerStateError } from '../storage/producer-state.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { Controller } from './metadata/controller.js';
import type { ReplicaManager } from './replica-manager.js';

export const PRODUCER_ID_BLOCK_SIZE = 1000;

/** Hands out producer ids from blocks the controller commits to the metadata log. */
export class ProducerIdManager {
  private next = 0;
  private end = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly controller: Controller) {}

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
  /** Starts creating and loading `__transaction_state` if that has not begun; true once loaded. */
  ensureLoaded(): boolean;
  /** Creates (if needed) and loads `__transaction_state`; resolves when done or failed. */
  loadNow(): Promise<void>;
  shutdown(): void;
}

export function setUpExactlyOnce(config: BrokerConfig, controller: Controller, replicaManager: ReplicaManager, groupCoordinator: GroupCoordinator, logger: Logger): ExactlyOnce {
  const ids = new ProducerIdManager(controller);
  const markers: TxnMarkerWriter = {
    async writeMarker(p, producerId, producerEpoch, commit, coordinatorEpoch) {
      const partition = replicaManager.getPartition(p.topic, p.partition);
      if (partition === undefined) return false;
      try {
        await replicaManager.appendTxnMarker(partition, producerId, producerEpoch, commit, coordinatorEpoch);
      } catch (e) {
        if (e instanceof ProducerStateError) {
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

  let loading: Promise<void> | null = null;
  const load = async (): Promise<void> => {
    let topic = controller.image.topic(TRANSACTION_STATE_TOPIC);
    if (topic === undefined) {
      const [r] = await controller.createTopics(
        [
          {
            name: TRANSACTION_STATE_TOPIC,
            numPartitions: config.number('transaction.state.log.num.partitions'),
            replicationFactor: 1,
            assignments: [],
            configs: [
              ['cleanup.policy', 'compact'],
              ['segment.bytes', config.string('transaction.state.log.segment.bytes')],
            ],
          },
        ],
        false,
      );
      if (r === undefined || (r.errorCode !== ErrorCode.NONE && r.errorCode !== ErrorCode.TOPIC_ALREADY_EXISTS)) {
        throw new Error(`cannot create ${TRANSACTION_STATE_TOPIC}: ${r?.errorMessage ?? 'no result'}`);
      }
      topic = controller.image.topic(TRANSACTION_STATE_TOPIC);
      if (topic === undefined) throw new Error(`${TRANSACTION_STATE_TOPIC} is not in the metadata image after its creation`);
    }
    const logs = topic.partitions.map((p) => {
      const part = replicaManager.getPartition(TRANSACTION_STATE_TOPIC, p.partition);
      if (part === undefined) throw new Error(`this broker does not host ${TRANSACTION_STATE_TOPIC}-${p.partition}`);
      return part.log;
    });
    await coordinator.load(new PartitionCoordinatorLog(logs));
  };
  const ensureLoaded = (): boolean => {
    if (coordinator.ready) return true;
    if (loading === null) {
      loading = load().catch((e: unknown) => {
        logger.error('loading the transaction coordinator failed; will retry on the next request', { error: e });
        loading = null;
      });
    }
    return false;
  };
  return {
    coordinator,
    ensureLoaded,
    async loadNow() {
      ensureLoaded();
      await loading;
    },
    shutdown() {
      clearInterval(expiryTimer);
      coordinator.shutdown();
    },
  };
}

/** At start: load the coordinator now if `__transaction_state` exists (so unfinished transactions complete). */
export async function loadExactlyOnceIfPresent(eos: ExactlyOnce, controller: Controller): Promise<void> {
  if (controller.image.topic(TRANSACTION_STATE_TOPIC) !== undefined) await eos.loadNow();
}
