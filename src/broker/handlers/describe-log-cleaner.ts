/**
 * DescribeLogCleaner (key 10000), version 0 — a Strand extension, not a Kafka api.
 *
 * Kafka publishes its log cleaner's state only as JMX metrics (`max-dirty-percent`,
 * `time-since-last-run-ms`, `max-clean-time-secs`, per-log `uncleanable-bytes`, ...). Strand's tools
 * talk the Kafka protocol only, so this api carries the same numbers. It is declared once in
 * `src/protocol/strand-specs/DescribeLogCleaner{Request,Response}.json` (codec generated like
 * Kafka's); its key lies far outside Kafka's range, and clients that do not know it ignore it in
 * the ApiVersions answer (the interop tests of KafkaJS, librdkafka and kafka-python run against a
 * broker that advertises it).
 *
 * Behaviour:
 * - `topics` null: every topic whose cleanup.policy includes `compact` (internal topics too);
 *   otherwise the topics named, compacted or not (a topic that is not compacted answers dirty
 *   ratio 0 and checkpoint -1). `partition_indexes` null: all partitions.
 * - Per partition, as the cleaner sees it now (LogCleanerManager's computation): the cleanable
 *   section's clean and dirty bytes and dirty ratio, first dirty and first uncleanable offsets,
 *   the cleaner offset checkpoint and earliest delete horizon, and the partition's last pass since
 *   the broker started (times, bytes, records removed, tombstones removed; -1 when none) and the
 *   error of a failed last pass.
 * - Cleaner-wide: enabled, passes, total bytes read and written, the largest dirty ratio now, and
 *   the last pass over any log.
 * - An unknown topic or partition answers UNKNOWN_TOPIC_OR_PARTITION for it.
 */
import { ErrorCode } from '../../protocol/errors.js';
import {
  DescribeLogCleanerApi,
  type DescribeLogCleanerResponse,
  type DescribeLogCleanerResponseDescribeLogCleanerPartitionResult as PartitionResult,
  type DescribeLogCleanerResponseDescribeLogCleanerTopicResult as TopicResult,
} from '../../protocol/messages/index.js';
import type { LogCleaner } from '../../storage/log-cleaner.js';
import { effectiveTopicConfig } from '../config.js';
import type { Partition } from '../replica-manager.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

const EMPTY_PARTITION: Omit<PartitionResult, 'partitionIndex' | 'errorCode'> = {
  dirtyRatio: 0,
  cleanBytes: 0,
  dirtyBytes: 0,
  sizeBytes: 0,
  logStartOffset: -1,
  logEndOffset: -1,
  firstDirtyOffset: -1,
  firstUncleanableOffset: -1,
  cleanerCheckpoint: -1,
  nextDeleteHorizonMs: -1,
  lastRunStartMs: -1,
  lastRunEndMs: -1,
  lastRunBytesRead: -1,
  lastRunBytesWritten: -1,
  lastRunRecordsRead: -1,
  lastRunRecordsRemoved: -1,
  lastRunTombstonesRemoved: -1,
  lastError: null,
};

/** One partition's cleaner state, as the api answers it. */
export async function cleanerStateOf(cleaner: LogCleaner, p: Partition): Promise<PartitionResult> {
  const log = p.log;
  const out: PartitionResult = {
    ...EMPTY_PARTITION,
    partitionIndex: p.index,
    errorCode: ErrorCode.NONE,
    sizeBytes: log.sizeInBytes,
    logStartOffset: log.logStartOffset,
    logEndOffset: log.logEndOffset,
  };
  if (!log.config.cleanupCompact) return out;
  const cp = await cleaner.checkpointOf(log);
  const r = cleaner.cleanableRange(log, Date.now());
  const last = cleaner.lastRun(log);
  return {
    ...out,
    dirtyRatio: r.dirtyRatio,
    cleanBytes: r.cleanBytes,
    dirtyBytes: r.dirtyBytes,
    firstDirtyOffset: r.firstDirtyOffset,
    firstUncleanableOffset: r.firstUncleanableOffset,
    cleanerCheckpoint: cp?.cleanedUpTo ?? -1,
    nextDeleteHorizonMs: cp?.nextDeleteHorizonMs ?? -1,
    ...(last === null
      ? {}
      : {
          lastRunStartMs: last.startMs,
          lastRunEndMs: last.endMs,
          lastRunBytesRead: last.bytesRead,
          lastRunBytesWritten: last.bytesWritten,
          lastRunRecordsRead: last.recordsRead,
          lastRunRecordsRemoved: last.recordsRead - last.recordsKept,
          lastRunTombstonesRemoved: last.tombstonesRemoved,
        }),
    lastError: cleaner.lastError(log),
  };
}

export const describeLogCleanerHandler = defineHandler({
  api: DescribeLogCleanerApi,
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx): Promise<DescribeLogCleanerResponse> {
    const broker = ctx.broker;
    const cleaner = broker.logManager.cleaner;
    const image = broker.image;
    const policyOf = (configs: ReadonlyMap<string, string>): string => effectiveTopicConfig('cleanup.policy', configs, broker.config).value ?? 'delete';
    const wanted =
      req.topics ??
      [...image.topicsByName.values()]
        .filter((t) => policyOf(t.configs).split(',').map((s) => s.trim()).includes('compact'))
        .map((t) => ({ name: t.name, partitionIndexes: null }))
        .sort((a, b) => a.name.localeCompare(b.name));
    const topics: TopicResult[] = [];
    for (const t of wanted) {
      const topic = image.topic(t.name);
      // Describe on the topic, as for its metadata: without it a named topic is refused and an
      // unnamed one (all compacted topics) is left out.
      if (!authorize(ctx, 'Describe', 'Topic', t.name)) {
        if (req.topics !== null) topics.push({ name: t.name, errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED, cleanupPolicy: '', partitions: [] });
        continue;
      }
      if (topic === undefined) {
        topics.push({ name: t.name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, cleanupPolicy: '', partitions: [] });
        continue;
      }
      const indexes = t.partitionIndexes ?? topic.partitions.map((p) => p.partition).sort((a, b) => a - b);
      const partitions: PartitionResult[] = [];
      for (const i of indexes) {
        const p = broker.replicaManager.getPartition(t.name, i);
        if (p === undefined || p.topicId !== topic.topicId) partitions.push({ ...EMPTY_PARTITION, partitionIndex: i, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION });
        else partitions.push(await cleanerStateOf(cleaner, p));
      }
      topics.push({ name: t.name, errorCode: ErrorCode.NONE, cleanupPolicy: policyOf(topic.configs), partitions });
    }
    let maxDirtyRatio = 0;
    for (const p of broker.replicaManager.allPartitions()) maxDirtyRatio = Math.max(maxDirtyRatio, cleaner.dirtyRatio(p.log));
    const last = cleaner.lastPass;
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      cleanerEnabled: cleaner.config.enabled,
      passes: cleaner.passes,
      totalBytesRead: cleaner.totalBytesRead,
      totalBytesWritten: cleaner.totalBytesWritten,
      maxDirtyRatio,
      lastRunTopic: last?.topic ?? null,
      lastRunPartition: last?.partition ?? -1,
      lastRunStartMs: last?.startMs ?? -1,
      lastRunEndMs: last?.endMs ?? -1,
      lastRunThroughputBytesPerSec: last === null ? 0 : last.bytesRead / Math.max(0.001, (last.endMs - last.startMs) / 1000),
      topics,
    };
  },
});
