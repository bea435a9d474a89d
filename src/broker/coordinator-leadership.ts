/**
 * The coordinators follow the leadership of their internal-topic partitions (Kafka's
 * GroupCoordinator / TransactionCoordinator onElection and onResignation, driven by the
 * metadata image as Kafka's BrokerMetadataPublisher does).
 *
 * - After every committed metadata change (`controller.onChange`, after the replica manager has
 *   opened the partition logs) `sync` compares, for each partition of the internal topic, whether
 *   this broker is its leader in the image with what the coordinator serves: a partition led here
 *   at a leader epoch the coordinator does not serve is elected (loaded, the epoch becoming the
 *   coordinator epoch); a partition the coordinator serves but no longer leads is resigned. The
 *   loads run in the background (the metadata listener does not wait for a replay); `settled()`
 *   waits for them. Only the listener syncs (never a request handler), so the partition logs are
 *   open when a load starts. On a single broker every partition is led here, so everything loads at start.
 * - Internal topics are created through the controller like any topic, with
 *   `offsets.topic.replication.factor` / `transaction.state.log.replication.factor` capped at the
 *   live registered brokers (with a warning), Kafka's compaction settings, and for
 *   `__transaction_state` `min.insync.replicas` = `transaction.state.log.min.isr` (capped at the
 *   replication factor). Creation by two nodes at once is harmless: the second gets
 *   TOPIC_ALREADY_EXISTS.
 * - Coordinator appends go through the replica manager to the partition's leader log, and only
 *   while this broker leads it in the image (else NOT_LEADER_OR_FOLLOWER, which the coordinators
 *   answer as NOT_COORDINATOR).
 */
import { ErrorCode } from '../protocol/errors.js';
import { NotLeaderForPartitionError } from '../coordinator/owned-partitions.js';
import { PartitionCoordinatorLog } from '../coordinator/coordinator-log.js';
import type { CoordinatorLog } from '../coordinator/coordinator-log.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { Controller } from './metadata/controller.js';
import type { MetadataImage } from './metadata/image.js';
import type { ReplicaManager } from './replica-manager.js';

/** What this file needs of the controller (the local one, or the cluster's). */
export type CoordinatorController = Pick<Controller, 'image' | 'createTopics'>;

/** What a coordinator exposes to leadership (GroupCoordinator and TransactionCoordinator both do). */
export interface LeadershipFollower {
  readonly attached: boolean;
  attach(log: CoordinatorLog): void;
  detach(): void;
  epochOf(partition: number): number;
  onElection(partition: number, epoch: number): Promise<void>;
  onResignation(partition: number, epoch?: number): void;
}

/** Live brokers in the image: registered and not fenced (the image may not track fencing yet). */
export function liveBrokerCount(image: MetadataImage): number {
  let n = 0;
  for (const b of image.brokers.values()) if ((b as { fenced?: boolean }).fenced !== true) n++;
  return n;
}

export interface InternalTopicSpec {
  name: string;
  partitionsConfig: string;
  replicationFactorConfig: string;
  segmentBytesConfig: string;
  /** transaction.state.log.min.isr for __transaction_state. */
  minIsrConfig?: string;
}

/**
 * Creates an internal topic if the image does not have it. Resolves true when it exists
 * afterwards (created here or by another node meanwhile), false when it could not be created now
 * (no live broker yet, or the controller refused: logged; the next request tries again).
 */
export async function createInternalTopic(spec: InternalTopicSpec, controller: CoordinatorController, config: BrokerConfig, logger: Logger): Promise<boolean> {
  if (controller.image.topic(spec.name) !== undefined) return true;
  const wanted = config.number(spec.replicationFactorConfig);
  const live = liveBrokerCount(controller.image);
  if (live === 0) {
    logger.warn(`cannot create ${spec.name} yet: no live broker is registered`);
    return false;
  }
  const rf = Math.min(wanted, live);
  if (rf < wanted) logger.warn(`creating ${spec.name} with fewer replicas than ${spec.replicationFactorConfig}: only ${live} live broker(s) are registered`, { configured: wanted, replicationFactor: rf });
  const configs: Array<[string, string]> = [
    ['cleanup.policy', 'compact'],
    ['segment.bytes', config.string(spec.segmentBytesConfig)],
  ];
  if (spec.minIsrConfig !== undefined) configs.push(['min.insync.replicas', String(Math.min(config.number(spec.minIsrConfig), rf))]);
  const [r] = await controller.createTopics([{ name: spec.name, numPartitions: config.number(spec.partitionsConfig), replicationFactor: rf, assignments: [], configs }], false);
  if (r !== undefined && (r.errorCode === ErrorCode.NONE || r.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS)) {
    if (r.errorCode === ErrorCode.NONE) logger.info(`created ${spec.name}`, { partitions: config.number(spec.partitionsConfig), replicationFactor: rf });
    return controller.image.topic(spec.name) !== undefined;
  }
  logger.warn(`could not create ${spec.name}`, { error: r?.errorMessage ?? 'no result', errorCode: r?.errorCode });
  return false;
}

/**
 * The coordinator log of an internal topic over the replica manager: appends only while this
 * broker leads the partition, each committed (acks=-1) within `commitTimeoutMs` or failed.
 */
export function internalTopicLog(topic: string, partitions: number, nodeId: number, controller: CoordinatorController, replicaManager: ReplicaManager, commitTimeoutMs: number): PartitionCoordinatorLog {
  return new PartitionCoordinatorLog(topic, partitions, {
    localLog: (p) => replicaManager.getPartition(topic, p)?.log,
    async appendCommitted(p, batch, origin) {
      const part = replicaManager.getPartition(topic, p);
      const image = controller.image.topic(topic)?.partitions[p];
      if (part === undefined || image === undefined || image.leader !== nodeId) throw new NotLeaderForPartitionError(topic, p);
      return replicaManager.appendCoordinatorBatch(part, batch, origin, commitTimeoutMs);
    },
  });
}

/** Elects and resigns the partitions of `topic` on `coordinator` as the image's leadership says. */
export class CoordinatorLeadership {
  private readonly loads = new Set<Promise<void>>();
  /** The topic id of the topic the coordinator has the log of. */
  private attachedTopicId: string | null = null;

  constructor(
    private readonly topic: string,
    private readonly nodeId: number,
    private readonly coordinator: LeadershipFollower,
    private readonly makeLog: (partitions: number) => CoordinatorLog,
    /** Whether the replica manager has the partition's log open (it applies the image first). */
    private readonly hosted: (partition: number) => boolean,
    private readonly logger: Logger,
  ) {}

  /** Brings the coordinator in line with `image` (called after every metadata change). */
  sync(image: MetadataImage): void {
    const topic = image.topic(this.topic);
    if (this.coordinator.attached && (topic === undefined || topic.topicId !== this.attachedTopicId)) {
      this.logger.warn(`${this.topic} was deleted: its coordinator state is dropped`, { topicId: this.attachedTopicId });
      this.coordinator.detach();
      this.attachedTopicId = null;
    }
    if (topic === undefined) return;
    if (!this.coordinator.attached) {
      this.coordinator.attach(this.makeLog(topic.partitions.length));
      this.attachedTopicId = topic.topicId;
    }
    for (const p of topic.partitions) {
      if (p === undefined) continue;
      const served = this.coordinator.epochOf(p.partition);
      if (p.leader === this.nodeId) {
        if (served === p.leaderEpoch) continue;
        if (!this.hosted(p.partition)) {
          this.logger.warn(`${this.topic}-${p.partition} is led here but its log is not open; it loads on the next metadata change`);
          continue;
        }
        const load = this.coordinator.onElection(p.partition, p.leaderEpoch).catch((e: unknown) => {
          this.logger.error(`loading ${this.topic}-${p.partition} failed; it is retried on the next metadata change`, { error: e });
        });
        this.loads.add(load);
        void load.finally(() => this.loads.delete(load));
      } else if (served >= 0) {
        this.coordinator.onResignation(p.partition);
      }
    }
  }

  /** Resolves when every load started so far has finished. */
  async settled(): Promise<void> {
    while (this.loads.size > 0) await Promise.all([...this.loads]);
  }
}
