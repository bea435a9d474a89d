/**
 * ReplicaManager: the partitions this broker hosts, and the produce and fetch paths over them.
 *
 * Partitions follow the metadata image: when the controller commits a topic, the partitions this
 * broker leads get a log; when a topic is removed, its logs are deleted. Produce validates each
 * batch (Kafka's LogValidator rules), assigns offsets through the log, and for acks=-1 waits for
 * the batch to be fsynced (group commit) unless `strand.acks.all.fsync=false`. Fetch reads up to
 * the high watermark and, when less than `min_bytes` is available, waits (DelayedFetch) until an
 * append to one of its partitions or `max_wait_ms` — woken by appends, never polling.
 *
 * Exactly-once (issue 5): the log checks producer ids and sequences (storage/producer-state.ts);
 * a duplicate comes back with its original offset and is not written again, a refused batch
 * becomes the matching Kafka error. A transactional batch is accepted only while the transaction
 * coordinator has its producer (same epoch) in an open transaction that includes the partition
 * (the `verifyTransaction` hook, Kafka's KIP-890 part 1 verification), so a zombie cannot open a
 * transaction nobody will end. `appendTxnMarker` writes COMMIT/ABORT control batches for the
 * coordinator. read_committed fetches stop at the last stable offset and carry the aborted
 * transactions of the range.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from '../protocol/errors.js';
import { isLazyRecords, type Records } from '../protocol/writer.js';
import { encodeControlBatch, setLogAppendTime } from '../protocol/records.js';
import { validateProduceRecords } from '../protocol/validate.js';
import { LogManager } from '../storage/log-manager.js';
import type { LogConfig, PartitionLog } from '../storage/log.js';
import { LogClosedError, OffsetOutOfRangeError, StorageError } from '../storage/errors.js';
import { ProducerStateError, type AppendOrigin } from '../storage/producer-state.js';
import { writeFileAtomic } from '../storage/file-io.js';
import { METADATA_TOPIC } from './metadata/metadata-log.js';
import { BrokerConfig, effectiveTopicConfigs, longValue } from './config.js';
import type { Logger } from './logger.js';
import type { BrokerMetrics } from './metrics.js';
import type { MetadataImage, TopicImage } from './metadata/image.js';

export class Partition {
  constructor(
    readonly topic: string,
    readonly index: number,
    readonly topicId: string,
    readonly log: PartitionLog,
    public leaderEpoch: number,
    public settings: TopicSettings,
  ) {}

  /** The last stable offset: the high watermark, or the first offset of the earliest open transaction if lower. */
  get lastStableOffset(): number {
    return this.log.lastStableOffset;
  }
}

/** Topic-level settings the produce path needs, resolved from the effective config. */
export interface TopicSettings {
  maxMessageBytes: number;
  logAppendTime: boolean;
  requireKeys: boolean;
  timestampBeforeMaxMs: number;
  timestampAfterMaxMs: number;
  minInsyncReplicas: number;
}

export function logConfigOf(configs: ReadonlyMap<string, string | null>): LogConfig {
  const n = (k: string): number => longValue(configs.get(k) ?? null);
  return {
    segmentBytes: n('segment.bytes'),
    segmentMs: n('segment.ms'),
    segmentIndexBytes: n('segment.index.bytes'),
    indexIntervalBytes: n('index.interval.bytes'),
    retentionMs: n('retention.ms'),
    retentionBytes: n('retention.bytes'),
    flushMessages: n('flush.messages'),
    flushMs: n('flush.ms'),
    fileDeleteDelayMs: n('file.delete.delay.ms'),
    ...cleanupOf(configs),
  };
}

/** The log cleaner's part of a topic's config (cleanup.policy, the compaction settings). */
function cleanupOf(configs: ReadonlyMap<string, string | null>): Pick<LogConfig, 'cleanupDelete' | 'cleanupCompact' | 'minCleanableDirtyRatio' | 'minCompactionLagMs' | 'maxCompactionLagMs' | 'deleteRetentionMs'> {
  const n = (k: string): number => longValue(configs.get(k) ?? null);
  const policy = (configs.get('cleanup.policy') ?? 'delete').split(',').map((p) => p.trim());
  return {
    cleanupDelete: policy.includes('delete'),
    cleanupCompact: policy.includes('compact'),
    minCleanableDirtyRatio: Number(configs.get('min.cleanable.dirty.ratio') ?? '0.5'),
    minCompactionLagMs: n('min.compaction.lag.ms'),
    maxCompactionLagMs: n('max.compaction.lag.ms'),
    deleteRetentionMs: n('delete.retention.ms'),
  };
}

export function topicSettingsOf(configs: ReadonlyMap<string, string | null>): TopicSettings {
  const n = (k: string): number => longValue(configs.get(k) ?? null);
  const diff = n('message.timestamp.difference.max.ms');
  return {
    maxMessageBytes: n('max.message.bytes'),
    logAppendTime: configs.get('message.timestamp.type') === 'LogAppendTime',
    requireKeys: (configs.get('cleanup.policy') ?? '').split(',').includes('compact'),
    timestampBeforeMaxMs: Math.min(diff, n('message.timestamp.before.max.ms')),
    timestampAfterMaxMs: Math.min(diff, n('message.timestamp.after.max.ms')),
    minInsyncReplicas: n('min.insync.replicas'),
  };
}

export interface ProduceResult {
  errorCode: number;
  errorMessage: string | null;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  recordErrors: Array<{ batchIndex: number; batchIndexErrorMessage: string | null }>;
}

export interface FetchPartitionRequest {
  partition: Partition | undefined;
  /** The error to answer when `partition` is undefined. */
  missingError: number;
  fetchOffset: number;
  partitionMaxBytes: number;
  /** read_committed: read up to the last stable offset and report aborted transactions. */
  readCommitted?: boolean;
}

export interface FetchPartitionResult {
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  /** In memory, or a FileRecords slice the connection streams and releases. */
  records: Records | null;
  /** read_committed only: aborted transactions overlapping the returned range. */
  abortedTransactions?: Array<{ producerId: number; firstOffset: number }>;
}

/**
 * Asks the transaction coordinator whether a transactional batch may be written: NONE, or the
 * error to answer (INVALID_PRODUCER_EPOCH for a fenced producer, INVALID_TXN_STATE otherwise).
 */
export type TransactionVerifier = (producerId: number, producerEpoch: number, topic: string, partition: number) => number;

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * `partition.metadata` (Kafka's name and format) records which topic id a partition directory
 * belongs to, so a directory left behind by a deleted topic is never mistaken for a re-created
 * topic of the same name:
 *   version: 0
 *   topic_id: <base64url uuid>
 */
const PARTITION_METADATA = 'partition.metadata';

async function readPartitionTopicId(dir: string): Promise<string | null> {
  try {
    const m = /topic_id:\s*(\S+)/.exec(await readFile(join(dir, PARTITION_METADATA), 'utf8'));
    return m ? m[1]! : null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export class ReplicaManager {
  private readonly partitions = new Map<string, Partition>();
  private readonly waiters = new Set<{ keys: ReadonlySet<string>; wake: () => void }>();
  private readonly fsyncOnAcksAll: boolean;
  /** Set by the broker once the transaction coordinator exists; until then transactional writes are refused. */
  verifyTransaction: TransactionVerifier | null = null;
  /** Set by the broker: bytes and records in (produce) and out (fetch) per topic. */
  metrics: BrokerMetrics | null = null;

  constructor(
    readonly logManager: LogManager,
    private readonly config: BrokerConfig,
    private readonly nodeId: number,
    private readonly logger: Logger,
  ) {
    this.fsyncOnAcksAll = config.bool('strand.acks.all.fsync');
  }

  getPartition(topic: string, index: number): Partition | undefined {
    return this.partitions.get(key(topic, index));
  }

  allPartitions(): IterableIterator<Partition> {
    return this.partitions.values();
  }

  /** Brings hosted partitions in line with the image: new logs for new partitions, deletion for removed topics, config updates. */
  async applyImage(image: MetadataImage, previous: MetadataImage): Promise<void> {
    for (const [name, old] of previous.topicsByName) {
      const now = image.topicsByName.get(name);
      if (now === undefined || now.topicId !== old.topicId) await this.removeTopic(old);
    }
    for (const topic of image.topicsByName.values()) {
      const configs = effectiveTopicConfigs(topic.configs, this.config);
      const logConfig = logConfigOf(configs);
      const settings = topicSettingsOf(configs);
      for (const p of topic.partitions) {
        if (p === undefined || !p.replicas.includes(this.nodeId)) continue;
        const existing = this.partitions.get(key(topic.name, p.partition));
        if (existing !== undefined && existing.topicId === topic.topicId) {
          existing.leaderEpoch = p.leaderEpoch;
          existing.settings = settings;
          existing.log.updateConfig(logConfig);
          continue;
        }
        const log = await this.openPartitionLog(topic, p.partition, logConfig);
        this.partitions.set(key(topic.name, p.partition), new Partition(topic.name, p.partition, topic.topicId, log, p.leaderEpoch, settings));
      }
    }
  }

  /** Opens (or creates) a partition's log, first discarding a directory that belongs to another topic id. */
  private async openPartitionLog(topic: TopicImage, partition: number, config: LogConfig): Promise<PartitionLog> {
    const dir = this.logManager.dirFor(topic.name, partition);
    const owner = await readPartitionTopicId(dir);
    if (owner !== null && owner !== topic.topicId) {
      this.logger.warn('deleting a partition directory left by an earlier topic of the same name', { dir, topicId: owner, current: topic.topicId });
      await this.logManager.deleteLog(topic.name, partition);
    }
    const log = await this.logManager.getOrCreateLog(topic.name, partition, config);
    if (owner !== topic.topicId) await writeFileAtomic(join(dir, PARTITION_METADATA), `version: 0\ntopic_id: ${topic.topicId}\n`);
    return log;
  }

  /**
   * Deletes partition directories the image does not know (a crash between committing a topic
   * deletion and deleting its logs leaves them behind). Run once at startup, after replay.
   */
  async deleteOrphanLogs(image: MetadataImage): Promise<void> {
    for (const d of await this.logManager.listPartitionDirs()) {
      if (d.topic === METADATA_TOPIC) continue;
      const t = image.topic(d.topic);
      const known = t !== undefined && d.partition < t.partitions.length && t.partitions[d.partition]?.replicas.includes(this.nodeId);
      const owner = known ? await readPartitionTopicId(d.dir) : null;
      if (known && (owner === null || owner === t!.topicId)) continue;
      this.logger.warn('deleting orphan partition directory', { dir: d.dir, reason: known ? 'belongs to an earlier topic id' : 'not in the metadata image' });
      await this.logManager.deleteLog(d.topic, d.partition);
    }
  }

  private async removeTopic(topic: TopicImage): Promise<void> {
    for (const p of topic.partitions) {
      if (p === undefined) continue;
      const part = this.partitions.get(key(topic.name, p.partition));
      if (part === undefined || part.topicId !== topic.topicId) continue;
      this.partitions.delete(key(topic.name, p.partition));
      await this.logManager.deleteLog(topic.name, p.partition);
    }
    this.logger.info('deleted topic logs', { topic: topic.name, topicId: topic.topicId });
  }

  /** Validates and appends one partition's records; resolves when `acks` is satisfied. */
  async produce(partition: Partition, records: Buffer | null, acks: number, nowMs: number): Promise<ProduceResult> {
    const result: ProduceResult = {
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      baseOffset: -1,
      logAppendTimeMs: -1,
      logStartOffset: partition.log.logStartOffset,
      recordErrors: [],
    };
    if (records === null || records.length === 0) {
      result.errorCode = ErrorCode.CORRUPT_MESSAGE;
      result.errorMessage = 'Produce request carries no records';
      return result;
    }
    const s = partition.settings;
    const v = validateProduceRecords(records, { maxMessageBytes: s.maxMessageBytes, requireKeys: s.requireKeys });
    if (!v.ok) {
      result.errorCode = v.errorCode;
      result.errorMessage = v.message;
      result.recordErrors = (v.recordErrors ?? []).map((e) => ({ batchIndex: e.batchIndex, batchIndexErrorMessage: e.message }));
      return result;
    }
    if (s.logAppendTime) {
      for (const b of v.batches) setLogAppendTime(records, nowMs, b.offset);
      result.logAppendTimeMs = nowMs;
    } else if (s.timestampBeforeMaxMs < Number.MAX_SAFE_INTEGER || s.timestampAfterMaxMs < Number.MAX_SAFE_INTEGER) {
      for (const b of v.batches) {
        const ts = b.header.maxTimestamp;
        if (ts < nowMs - s.timestampBeforeMaxMs || ts > nowMs + s.timestampAfterMaxMs) {
          result.errorCode = ErrorCode.INVALID_TIMESTAMP;
          result.errorMessage = `Timestamp ${ts} of a batch is out of the range allowed by message.timestamp.before/after.max.ms`;
          return result;
        }
      }
    }
    const first = v.batches[0]!.header;
    if (first.producerId >= 0) {
      // Kafka ≥ 3 takes one batch per partition; with a producer id the log needs exactly one.
      if (v.batches.length > 1) {
        result.errorCode = ErrorCode.INVALID_RECORD;
        result.errorMessage = 'An idempotent or transactional produce must carry exactly one batch per partition';
        return result;
      }
      if ((first.attributes & 0x10) !== 0) {
        const verdict = this.verifyTransaction?.(first.producerId, first.producerEpoch, partition.topic, partition.index) ?? ErrorCode.INVALID_TXN_STATE;
        if (verdict !== ErrorCode.NONE) {
          result.errorCode = verdict;
          result.errorMessage = `Transactional batch of producer ${first.producerId} epoch ${first.producerEpoch} is not part of an open transaction on ${partition.topic}-${partition.index}`;
          return result;
        }
      }
    }
    let appended;
    try {
      // Enqueued synchronously after the verification above: a later marker queues behind it.
      appended = await partition.log.append(records, partition.leaderEpoch);
    } catch (e) {
      if (e instanceof ProducerStateError || (e instanceof StorageError && e.code === 'INVALID_RECORD')) {
        result.errorCode = (ErrorCode as Record<string, number>)[e.code] ?? ErrorCode.UNKNOWN_SERVER_ERROR;
        result.errorMessage = e.message;
        return result;
      }
      throw e;
    }
    result.baseOffset = appended.firstOffset;
    result.logStartOffset = partition.log.logStartOffset;
    this.metrics?.produced(partition.topic, records.length, v.recordCount);
    this.wakeFetchers(partition);
    if (acks === -1 && this.fsyncOnAcksAll) await partition.log.flush();
    return result;
  }

  /**
   * Appends a group or transaction coordinator's batch to an internal-topic partition this broker
   * leads (the caller checks leadership) and resolves with its first offset once the batch is
   * committed: the coordinators' writes have acks=-1 semantics whatever `strand.acks.all.fsync`
   * says, so nothing a coordinator acknowledged is lost.
   */
  async appendCoordinatorBatch(partition: Partition, batch: Buffer, origin: AppendOrigin): Promise<number> {
    const appended = await partition.log.append(batch, partition.leaderEpoch, origin);
    this.wakeFetchers(partition);
    await partition.log.flush();
    return appended.firstOffset;
  }

  /**
   * Writes a transaction marker (control batch) for the coordinator; resolves with its offset once
   * fsynced. Markers bypass sequence checks but not the producer epoch check.
   */
  async appendTxnMarker(partition: Partition, producerId: number, producerEpoch: number, commit: boolean, coordinatorEpoch: number): Promise<number> {
    const batch = encodeControlBatch({ producerId, producerEpoch, type: commit ? 1 : 0, coordinatorEpoch, timestamp: Date.now() });
    const appended = await partition.log.append(batch, partition.leaderEpoch, 'coordinator');
    this.wakeFetchers(partition);
    await partition.log.flush();
    return appended.firstOffset;
  }

  /** producer.id.expiration.ms over every hosted partition. */
  expireProducers(nowMs: number, expirationMs: number): void {
    for (const p of this.partitions.values()) {
      const n = p.log.removeExpiredProducers(nowMs, expirationMs);
      if (n > 0) this.logger.debug('expired producer ids', { topic: p.topic, partition: p.index, removed: n });
    }
  }

  private wakeFetchers(partition: Partition): void {
    if (this.waiters.size === 0) return;
    const k = key(partition.topic, partition.index);
    for (const w of this.waiters) if (w.keys.has(k)) w.wake();
  }

  /**
   * Reads each partition once; if fewer than `minBytes` came back and `maxWaitMs` allows, waits
   * for an append to one of them (or the deadline) and reads again. KIP-74: the first partition
   * that has data returns at least one whole batch even past the limits.
   */
  async fetch(reqs: FetchPartitionRequest[], maxBytes: number, minBytes: number, maxWaitMs: number, signal?: AbortSignal): Promise<FetchPartitionResult[]> {
    const deadline = Date.now() + Math.max(0, maxWaitMs);
    for (;;) {
      const results = await this.readOnce(reqs, maxBytes);
      const bytes = results.reduce((n, r) => n + (r.records?.length ?? 0), 0);
      const anyError = results.some((r) => r.errorCode !== ErrorCode.NONE);
      const remaining = deadline - Date.now();
      if (bytes >= minBytes || anyError || remaining <= 0 || signal?.aborted) {
        if (this.metrics !== null) results.forEach((r, i) => reqs[i]!.partition && this.metrics!.fetched(reqs[i]!.partition!.topic, r.records));
        return results;
      }
      for (const r of results) if (r.records !== null && isLazyRecords(r.records)) r.records.release();
      const keys = new Set(reqs.filter((r) => r.partition !== undefined).map((r) => key(r.partition!.topic, r.partition!.index)));
      await new Promise<void>((resolve) => {
        const waiter = { keys, wake: () => done() };
        const timer = setTimeout(() => done(), remaining);
        const onAbort = (): void => done();
        signal?.addEventListener('abort', onAbort, { once: true });
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.waiters.delete(waiter);
          resolve();
        };
        this.waiters.add(waiter);
      });
    }
  }

  private async readOnce(reqs: FetchPartitionRequest[], maxBytes: number): Promise<FetchPartitionResult[]> {
    let budget = maxBytes;
    let gotAny = false;
    const out: FetchPartitionResult[] = [];
    for (const req of reqs) {
      const p = req.partition;
      if (p === undefined) {
        out.push({ errorCode: req.missingError, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, records: null });
        continue;
      }
      const log = p.log;
      const hw = log.highWatermark;
      const lso = log.lastStableOffset;
      // read_committed reads stop at the last stable offset: nothing of an undecided transaction.
      const upper = req.readCommitted === true ? lso : hw;
      const base = { highWatermark: hw, lastStableOffset: lso, logStartOffset: log.logStartOffset };
      if (req.fetchOffset < log.logStartOffset || req.fetchOffset > log.logEndOffset) {
        out.push({ ...base, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, records: null });
        continue;
      }
      const limit = Math.min(req.partitionMaxBytes, budget);
      let records: Records;
      try {
        records = req.fetchOffset >= upper || (limit <= 0 && gotAny) ? EMPTY : await log.readRecords(req.fetchOffset, Math.max(0, limit), upper, !gotAny);
      } catch (e) {
        if (e instanceof OffsetOutOfRangeError) {
          out.push({ ...base, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, records: null });
          continue;
        }
        if (e instanceof LogClosedError) {
          // The topic was deleted while this fetch waited.
          out.push({ ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, records: null });
          continue;
        }
        throw e;
      }
      if (records.length > 0) gotAny = true;
      budget -= records.length;
      if (req.readCommitted === true) {
        const aborted = records.length === 0 ? [] : log.abortedTransactions(req.fetchOffset, upper).map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
        out.push({ ...base, errorCode: ErrorCode.NONE, records, abortedTransactions: aborted });
      } else out.push({ ...base, errorCode: ErrorCode.NONE, records });
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);
