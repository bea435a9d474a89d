/**
 * Brings up the group coordinator inside the broker: the internal topic `__consumer_offsets`
 * (created through the controller like any topic, so it is in the metadata log and Metadata
 * shows it as internal), and the coordinator following the leadership of its partitions
 * (coordinator-leadership.ts).
 *
 * The topic gets `offsets.topic.num.partitions` partitions (Kafka's default 50; fixed once
 * created — a later change of the setting is logged and ignored, as in Kafka),
 * `offsets.topic.replication.factor` replicas (capped at the live brokers, so 1 on a single
 * broker) and `cleanup.policy=compact`, Kafka's settings: no time or size retention (compact
 * alone turns them off), and the log cleaner (storage/log-cleaner.ts) keeps the last record of
 * every key, so the topic stays bounded by its live groups and offsets. A single broker creates
 * it at start, as before; a node of a cluster (`controller.quorum.voters`) creates it on the
 * first FindCoordinator for a group, as Kafka does, so that it is not created while only the
 * first node has registered.
 */
import { GroupCoordinator, type GroupCoordinatorConfig } from '../coordinator/group-coordinator.js';
import { OFFSETS_TOPIC } from '../coordinator/group-records.js';
import { systemScheduler } from '../coordinator/time.js';
import type { BrokerConfig } from './config.js';
import { CoordinatorLeadership, createInternalTopic, internalTopicLog, type CoordinatorController, type InternalTopicSpec } from './coordinator-leadership.js';
import type { Logger } from './logger.js';
import type { ReplicaManager } from './replica-manager.js';

export const OFFSETS_TOPIC_SPEC: InternalTopicSpec = {
  name: OFFSETS_TOPIC,
  partitionsConfig: 'offsets.topic.num.partitions',
  replicationFactorConfig: 'offsets.topic.replication.factor',
  segmentBytesConfig: 'offsets.topic.segment.bytes',
};

export function groupCoordinatorConfig(config: BrokerConfig): GroupCoordinatorConfig {
  return {
    initialRebalanceDelayMs: config.number('group.initial.rebalance.delay.ms'),
    minSessionTimeoutMs: config.number('group.min.session.timeout.ms'),
    maxSessionTimeoutMs: config.number('group.max.session.timeout.ms'),
    maxGroupSize: config.number('group.max.size'),
    offsetMetadataMaxBytes: config.number('offset.metadata.max.bytes'),
    offsetsRetentionMs: config.number('offsets.retention.minutes') * 60000,
    offsetsRetentionCheckIntervalMs: config.number('offsets.retention.check.interval.ms'),
  };
}

/** A coordinator with no partition yet (it answers COORDINATOR_LOAD_IN_PROGRESS until `__consumer_offsets` exists). */
export function newGroupCoordinator(config: BrokerConfig, controller: CoordinatorController, logger: Logger): GroupCoordinator {
  return new GroupCoordinator({
    scheduler: systemScheduler,
    config: groupCoordinatorConfig(config),
    logger,
    partitionExists: (topic, partition) => {
      const t = controller.image.topic(topic);
      return t !== undefined && partition >= 0 && t.partitions[partition] !== undefined;
    },
  });
}

export interface GroupCoordination {
  readonly coordinator: GroupCoordinator;
  readonly leadership: CoordinatorLeadership;
  /** Whether `__consumer_offsets` exists; if not, starts creating it (at most one creation at a time). */
  ensureTopic(): boolean;
  /** Creates `__consumer_offsets` if needed; resolves true when it exists. */
  createTopic(): Promise<boolean>;
}

/** The group coordinator, following the leadership of `__consumer_offsets` in the image (call `leadership.sync` on every change). */
export function setUpGroupCoordination(config: BrokerConfig, controller: CoordinatorController, replicaManager: ReplicaManager, logger: Logger): GroupCoordination {
  const coordinator = newGroupCoordinator(config, controller, logger);
  const leadership = new CoordinatorLeadership(
    OFFSETS_TOPIC,
    config.nodeId,
    coordinator,
    (n) => internalTopicLog(OFFSETS_TOPIC, n, config.nodeId, controller, replicaManager, config.number('offsets.commit.timeout.ms')),
    (p) => replicaManager.getPartition(OFFSETS_TOPIC, p) !== undefined,
    logger,
  );
  let creating: Promise<boolean> | null = null;
  const createTopic = (): Promise<boolean> => {
    creating ??= createInternalTopic(OFFSETS_TOPIC_SPEC, controller, config, logger)
      .catch((e: unknown) => {
        logger.warn(`could not create ${OFFSETS_TOPIC}; the next request tries again`, { error: e });
        return false;
      })
      .finally(() => {
        creating = null;
      });
    return creating;
  };
  const existing = controller.image.topic(OFFSETS_TOPIC);
  if (existing !== undefined && existing.partitions.length !== config.number('offsets.topic.num.partitions')) {
    logger.warn(`${OFFSETS_TOPIC} keeps its partition count`, { partitions: existing.partitions.length, configured: config.number('offsets.topic.num.partitions') });
  }
  return {
    coordinator,
    leadership,
    ensureTopic() {
      if (controller.image.topic(OFFSETS_TOPIC) !== undefined) return true;
      void createTopic();
      return false;
    },
    createTopic,
  };
}
