/**
 * `admin.describeLogCleaner()`: the log cleaner's state per compacted partition (dirty ratio, first
 * dirty offset, cleaner checkpoint, last pass) and per broker, through Strand's DescribeLogCleaner
 * extension api (key 10000; see docs/COMPATIBILITY.md). A broker that does not offer it (Apache
 * Kafka) answers UNSUPPORTED_VERSION: Kafka has these numbers only as JMX metrics.
 *
 * Every broker in the cluster is asked (each knows only the partitions it hosts); for each
 * partition the answer without an error wins.
 */
import { ErrorCode } from '../protocol/errors.js';
import { DescribeLogCleanerApi, type DescribeLogCleanerResponseDescribeLogCleanerPartitionResult } from '../protocol/messages/index.js';
import type { Cluster } from './cluster.js';
import { KafkaError } from './errors.js';

export interface CleanerRun {
  startMs: number;
  endMs: number;
  bytesRead: number;
  bytesWritten: number;
  recordsRead: number;
  /** Overwritten records, expired tombstones and aborted records removed. */
  recordsRemoved: number;
  tombstonesRemoved: number;
}

export interface PartitionCleanerState {
  partition: number;
  /** Dirty bytes / (clean + dirty bytes) of the cleanable section (0 for a topic that is not compacted). */
  dirtyRatio: number;
  cleanBytes: number;
  dirtyBytes: number;
  sizeBytes: number;
  logStartOffset: number;
  logEndOffset: number;
  firstDirtyOffset: number;
  firstUncleanableOffset: number;
  /** Clean below this offset; -1 when never cleaned. */
  cleanerCheckpoint: number;
  /** The earliest tombstone delete horizon left in the log, or -1. */
  nextDeleteHorizonMs: number;
  /** The partition's last pass since its broker started, or null. */
  lastRun: CleanerRun | null;
  lastError: string | null;
}

export interface TopicCleanerState {
  name: string;
  cleanupPolicy: string;
  partitions: PartitionCleanerState[];
}

export interface BrokerCleanerState {
  nodeId: number;
  enabled: boolean;
  passes: number;
  totalBytesRead: number;
  totalBytesWritten: number;
  maxDirtyRatio: number;
  lastRun: { topic: string; partition: number; startMs: number; endMs: number; throughputBytesPerSec: number } | null;
}

export interface LogCleanerDescription {
  brokers: BrokerCleanerState[];
  topics: TopicCleanerState[];
}

function partitionOf(p: DescribeLogCleanerResponseDescribeLogCleanerPartitionResult): PartitionCleanerState {
  return {
    partition: p.partitionIndex,
    dirtyRatio: p.dirtyRatio,
    cleanBytes: p.cleanBytes,
    dirtyBytes: p.dirtyBytes,
    sizeBytes: p.sizeBytes,
    logStartOffset: p.logStartOffset,
    logEndOffset: p.logEndOffset,
    firstDirtyOffset: p.firstDirtyOffset,
    firstUncleanableOffset: p.firstUncleanableOffset,
    cleanerCheckpoint: p.cleanerCheckpoint,
    nextDeleteHorizonMs: p.nextDeleteHorizonMs,
    lastRun:
      p.lastRunStartMs < 0
        ? null
        : {
            startMs: p.lastRunStartMs,
            endMs: p.lastRunEndMs,
            bytesRead: p.lastRunBytesRead,
            bytesWritten: p.lastRunBytesWritten,
            recordsRead: p.lastRunRecordsRead,
            recordsRemoved: p.lastRunRecordsRemoved,
            tombstonesRemoved: p.lastRunTombstonesRemoved,
          },
    lastError: p.lastError,
  };
}

/** `topics` undefined: every compacted topic (internal ones included). */
export async function describeLogCleaner(cluster: Cluster, topics?: string[]): Promise<LogCleanerDescription> {
  return cluster.withRetry('DescribeLogCleaner', async () => {
    await cluster.refreshMetadata(topics ?? []);
    const brokers: BrokerCleanerState[] = [];
    const byTopic = new Map<string, { cleanupPolicy: string; partitions: Map<number, { state: PartitionCleanerState; errorCode: number }> }>();
    const topicErrors = new Map<string, number>();
    for (const nodeId of [...cluster.brokers.keys()].sort((a, b) => a - b)) {
      const conn = await cluster.connection(nodeId);
      const r = await conn.request(DescribeLogCleanerApi, { topics: topics === undefined ? null : topics.map((name) => ({ name, partitionIndexes: null })) });
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `DescribeLogCleaner on broker ${nodeId}`);
      brokers.push({
        nodeId,
        enabled: r.cleanerEnabled,
        passes: r.passes,
        totalBytesRead: r.totalBytesRead,
        totalBytesWritten: r.totalBytesWritten,
        maxDirtyRatio: r.maxDirtyRatio,
        lastRun: r.lastRunTopic === null ? null : { topic: r.lastRunTopic, partition: r.lastRunPartition, startMs: r.lastRunStartMs, endMs: r.lastRunEndMs, throughputBytesPerSec: r.lastRunThroughputBytesPerSec },
      });
      for (const t of r.topics) {
        if (t.errorCode !== 0) {
          if (!byTopic.has(t.name)) topicErrors.set(t.name, t.errorCode);
          continue;
        }
        topicErrors.delete(t.name);
        let entry = byTopic.get(t.name);
        if (entry === undefined) byTopic.set(t.name, (entry = { cleanupPolicy: t.cleanupPolicy, partitions: new Map() }));
        for (const p of t.partitions) {
          const prev = entry.partitions.get(p.partitionIndex);
          if (prev === undefined || (prev.errorCode !== 0 && p.errorCode === 0)) entry.partitions.set(p.partitionIndex, { state: partitionOf(p), errorCode: p.errorCode });
        }
      }
    }
    for (const [name, code] of topicErrors) throw new KafkaError(code, `DescribeLogCleaner ${name}`);
    const out: TopicCleanerState[] = [];
    for (const [name, t] of [...byTopic].sort(([a], [b]) => a.localeCompare(b))) {
      const partitions: PartitionCleanerState[] = [];
      for (const [i, p] of [...t.partitions].sort(([a], [b]) => a - b)) {
        if (p.errorCode !== ErrorCode.NONE) throw new KafkaError(p.errorCode, `DescribeLogCleaner ${name}-${i}`);
        partitions.push(p.state);
      }
      out.push({ name, cleanupPolicy: t.cleanupPolicy, partitions });
    }
    return { brokers, topics: out };
  });
}
