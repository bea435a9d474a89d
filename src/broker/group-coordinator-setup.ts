/**
 * Brings up the group coordinator inside the broker: the internal topic `__consumer_offsets`
 * (created through the controller on first start, like any topic, so it is in the metadata log
 * and Metadata shows it as internal), its partition logs, and the replay.
 *
 * The topic gets `offsets.topic.num.partitions` partitions (Kafka's default 50; fixed once
 * created — a later change of the setting is logged and ignored, as in Kafka), replication
 * factor 1 (a single broker) and `cleanup.policy=compact`, Kafka's settings: no time or size
 * retention (compact alone turns them off), and the log cleaner (storage/log-cleaner.ts) keeps
 * the last record of every key, so the topic stays bounded by its live groups and offsets.
 * (Topics created before the cleaner carry `retention.ms=-1` as well, which changes nothing.)
 */
import { ErrorCode } from '../protocol/errors.js';
import { GroupCoordinator, type GroupCoordinatorConfig } from '../coordinator/group-coordinator.js';
import { PartitionCoordinatorLog } from '../coordinator/coordinator-log.js';
import { OFFSETS_TOPIC } from '../coordinator/group-records.js';
import { systemScheduler } from '../coordinator/time.js';
import type { BrokerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { Controller } from './metadata/controller.js';
import type { ReplicaManager } from './replica-manager.js';

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

/** A coordinator that is not loaded yet (it answers COORDINATOR_LOAD_IN_PROGRESS). */
export function newGroupCoordinator(config: BrokerConfig, controller: Controller, logger: Logger): GroupCoordinator {
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

/** Creates `__consumer_offsets` if needed (the broker must be registered), then loads the coordinator from it. */
export async function loadGroupCoordinator(coordinator: GroupCoordinator, config: BrokerConfig, controller: Controller, replicaManager: ReplicaManager, logger: Logger): Promise<void> {
  const wanted = config.number('offsets.topic.num.partitions');
  let topic = controller.image.topic(OFFSETS_TOPIC);
  if (topic === undefined) {
    const [r] = await controller.createTopics(
      [
        {
          name: OFFSETS_TOPIC,
          numPartitions: wanted,
          replicationFactor: 1,
          assignments: [],
          configs: [
            ['cleanup.policy', 'compact'],
            ['segment.bytes', config.string('offsets.topic.segment.bytes')],
          ],
        },
      ],
      false,
    );
    if (r === undefined || r.errorCode !== ErrorCode.NONE) throw new Error(`cannot create ${OFFSETS_TOPIC}: ${r?.errorMessage ?? 'no result'}`);
    topic = controller.image.topic(OFFSETS_TOPIC);
    if (topic === undefined) throw new Error(`${OFFSETS_TOPIC} is not in the metadata image after its creation`);
  } else if (topic.partitions.length !== wanted) {
    logger.warn(`${OFFSETS_TOPIC} keeps its partition count`, { partitions: topic.partitions.length, configured: wanted });
  }
  const logs = topic.partitions.map((p) => {
    const part = replicaManager.getPartition(OFFSETS_TOPIC, p.partition);
    if (part === undefined) throw new Error(`this broker does not host ${OFFSETS_TOPIC}-${p.partition}`);
    return part.log;
  });
  await coordinator.load(new PartitionCoordinatorLog(logs));
}
