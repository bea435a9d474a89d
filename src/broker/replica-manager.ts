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
import type { MetadataImage, PartitionImage, TopicImage } from './metadata/image.js';
import { LeaderPartitionState, isrChangeOutcome, type EpochEndOffset } from './replication/partition-state.js';
import { ReplicaFetcherManager } from './replication/replica-fetcher.js';

/** A coordinator append that could not be committed; `code` is the Kafka error name. */
export class ReplicationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicationError';
  }
}

export class Partition {
  /** The leader in the image (-1: none); this broker serves clients only when it is the leader. */
  leaderId = -1;
  partitionEpoch = -1;
  replicas: readonly number[] = [];
  isr: readonly number[] = [];
  /** While this broker leads the partition and it has other replicas: the followers' state (replication/partition-state.ts). */
  leaderState: LeaderPartitionState | null = null;
  /** acks=all produces waiting for the high watermark (DelayedProduce). */
  readonly delayedProduces = new Set<DelayedProduce>();

  constructor(
    readonly topic: string,
    readonly index: number,
    readonly topicId: string,
    readonly log: PartitionLog,
    public leaderEpoch: number,
    public settings: TopicSettings,
    /** This broker's node id. */
    readonly localId: number = -1,
  ) {}

  /** The last stable offset: the high watermark, or the first offset of the earliest open transaction if lower. */
  get lastStableOffset(): number {
    return this.log.lastStableOffset;
  }

  get isLeader(): boolean {
    return this.leaderId === this.localId && this.localId >= 0;
  }
}

/** An acks=all produce waiting until the high watermark reaches `requiredOffset`. */
interface DelayedProduce {
  requiredOffset: number;
  minIsr: number;
  complete: (errorCode: number) => void;
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
  /** A follower's fetch (replica_id ≥ 0): the epoch of its log's last batch, -1 when unknown. */
  lastFetchedEpoch?: number;
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
  /** A follower's fetch whose last epoch does not end where the leader's does: where to truncate (no records). */
  divergingEpoch?: EpochEndOffset;
}

/** Kafka's AlterPartition as the controller offers it (`broker.controller.alterPartition`). */
export type AlterPartitionFn = (req: { topicId: string; partition: number; leaderEpoch: number; partitionEpoch: number; newIsr: number[] }) => Promise<{ errorCode: number; partition: PartitionImage | null }>;

/**
 * Asks the transaction coordinator whether a transactional batch may be written: NONE, or the
 * error to answer (INVALID_PRODUCER_EPOCH for a fenced producer, INVALID_TXN_STATE otherwise).
 */
export type TransactionVerifier = (producerId: number, producerEpoch: number, topic: string, partition: number) => number;

/** How long a leader waits for the controller's answer to an ISR change before sending it again. */
const ALTER_PARTITION_TIMEOUT_MS = 10_000;

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
  /** Set by the broker: AlterPartition to the active controller; without it the ISR never changes. */
  alterPartition: AlterPartitionFn | null = null;
  /** In a cluster: whether this broker's session with the controller is live (BrokerLifecycle.leaseValid); a leader without one takes no writes. */
  leaderLeaseValid: () => boolean = () => true;
  /** The image applied last (broker endpoints and fencing for the fetchers and ISR expansion). */
  private image: MetadataImage | null = null;
  private readonly fetchers: ReplicaFetcherManager;
  private readonly replicaLagTimeMaxMs: number;
  private isrTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** ISR changes this broker has had committed, as a leader (counters for the metrics). */
  isrShrinks = 0;
  isrExpands = 0;

  constructor(
    readonly logManager: LogManager,
    private readonly config: BrokerConfig,
    private readonly nodeId: number,
    private readonly logger: Logger,
  ) {
    this.fsyncOnAcksAll = config.bool('strand.acks.all.fsync');
    this.replicaLagTimeMaxMs = config.number('replica.lag.time.max.ms');
    this.fetchers = new ReplicaFetcherManager(
      {
        nodeId,
        endpointOf: (brokerId) => {
          const b = this.image?.brokers.get(brokerId);
          return b === undefined ? null : { host: b.host, port: b.port };
        },
        afterFollowerAppend: (p) => this.wakeFetchers(p),
      },
      {
        maxWaitMs: config.number('replica.fetch.wait.max.ms'),
        minBytes: config.number('replica.fetch.min.bytes'),
        maxBytes: config.number('replica.fetch.max.bytes'),
        responseMaxBytes: config.number('replica.fetch.response.max.bytes'),
        backoffMs: config.number('replica.fetch.backoff.ms'),
        socketTimeoutMs: config.number('replica.socket.timeout.ms'),
        flushBeforeFetch: config.bool('strand.acks.all.fsync'),
      },
      logger.child('fetcher'),
    );
  }

  getPartition(topic: string, index: number): Partition | undefined {
    return this.partitions.get(key(topic, index));
  }

  allPartitions(): IterableIterator<Partition> {
    return this.partitions.values();
  }

  /**
   * Brings hosted partitions in line with the image: new logs for new partitions, deletion for
   * removed topics (and for partitions this broker is no longer a replica of), config updates,
   * and each partition's role — leader when the image names this broker, else follower of the
   * named leader (fetching from it).
   */
  async applyImage(image: MetadataImage, previous: MetadataImage): Promise<void> {
    this.image = image;
    for (const [name, old] of previous.topicsByName) {
      const now = image.topicsByName.get(name);
      if (now === undefined || now.topicId !== old.topicId) await this.removeTopic(old);
    }
    for (const topic of image.topicsByName.values()) {
      const configs = effectiveTopicConfigs(topic.configs, this.config);
      const logConfig = logConfigOf(configs);
      const settings = topicSettingsOf(configs);
      for (const p of topic.partitions) {
        if (p === undefined) continue;
        const existing = this.partitions.get(key(topic.name, p.partition));
        if (!p.replicas.includes(this.nodeId)) {
          // Reassigned away from this broker (Kafka's StopReplica with deletion).
          if (existing !== undefined && existing.topicId === topic.topicId) await this.removePartition(existing, 'no longer a replica');
          continue;
        }
        let part = existing;
        if (part !== undefined && part.topicId === topic.topicId) {
          part.settings = settings;
          part.log.updateConfig(logConfig);
        } else {
          const log = await this.openPartitionLog(topic, p.partition, logConfig);
          part = new Partition(topic.name, p.partition, topic.topicId, log, -1, settings, this.nodeId);
          this.partitions.set(key(topic.name, p.partition), part);
        }
        this.applyPartitionState(part, p);
      }
    }
  }

  /** Leader or follower transitions of one partition (Kafka's makeLeader / makeFollower). */
  private applyPartitionState(part: Partition, p: PartitionImage): void {
    const roleChanged = p.leader !== part.leaderId || p.leaderEpoch !== part.leaderEpoch;
    part.replicas = p.replicas;
    part.isr = p.isr;
    part.partitionEpoch = p.partitionEpoch;
    const replicated = p.replicas.length > 1 || p.replicas[0] !== this.nodeId;
    if (p.leader === this.nodeId) {
      if (roleChanged) {
        this.fetchers.removePartition(part);
        part.leaderId = p.leader;
        part.leaderEpoch = p.leaderEpoch;
        part.leaderState = null;
        // Known before anything is appended in this epoch: where the previous epoch ends (followers
        // ask). A partition with no other replica leaves it to its first append.
        if (replicated) void part.log.assignEpochStartOffset(p.leaderEpoch).catch((e: unknown) => {
          if (!(e instanceof LogClosedError)) this.logger.error('could not record the start of a leader epoch', { topic: part.topic, partition: part.index, epoch: p.leaderEpoch, error: e });
        });
        if (replicated) this.logger.info('became leader', { topic: part.topic, partition: part.index, leaderEpoch: p.leaderEpoch, isr: p.isr.join(','), logEndOffset: part.log.logEndOffset, highWatermark: part.log.highWatermark });
      }
      part.log.autoAdvanceHighWatermark = !replicated;
      if (!replicated) {
        part.leaderState = null;
        return;
      }
      if (part.leaderState === null) {
        part.leaderState = new LeaderPartitionState({
          leaderId: this.nodeId,
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
          replicas: p.replicas,
          isr: p.isr,
          leaderEpochStartOffset: part.log.logEndOffset,
          nowMs: Date.now(),
        });
        this.startIsrTask();
      } else {
        part.leaderState.isrChangeCommitted(p.isr, p.partitionEpoch, p.replicas);
      }
      this.maybeIncrementHighWatermark(part);
      return;
    }
    // A follower (or a replica of a partition without a leader).
    part.log.autoAdvanceHighWatermark = false;
    if (!roleChanged) return;
    const wasLeader = part.isLeader;
    part.leaderId = p.leader;
    part.leaderEpoch = p.leaderEpoch;
    part.leaderState = null;
    this.failDelayedProduces(part, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    this.wakeFetchers(part); // consumers long-polling here get NOT_LEADER_OR_FOLLOWER on their next read
    if (p.leader >= 0) this.fetchers.addPartition(part, p.leader, p.leaderEpoch);
    else this.fetchers.removePartition(part);
    this.logger.info(wasLeader ? 'became follower (was leader)' : 'following', { topic: part.topic, partition: part.index, leader: p.leader, leaderEpoch: p.leaderEpoch, logEndOffset: part.log.logEndOffset });
  }

  private async removePartition(part: Partition, reason: string): Promise<void> {
    this.partitions.delete(key(part.topic, part.index));
    this.fetchers.removePartition(part);
    part.leaderState = null;
    part.leaderId = -1;
    this.failDelayedProduces(part, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    await this.logManager.deleteLog(part.topic, part.index);
    this.logger.info('deleted partition log', { topic: part.topic, partition: part.index, reason });
  }

  /** Stops the replica fetchers and the ISR task, and answers waiting acks=all produces (clean shutdown). */
  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.isrTimer !== null) clearInterval(this.isrTimer);
    this.isrTimer = null;
    for (const p of this.partitions.values()) this.failDelayedProduces(p, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    await this.fetchers.shutdown();
  }

  // ------------------------------------------------------------ leader: high watermark and ISR

  /** Moves a replicated leader's high watermark to what its ISR has; wakes consumers and acks=all produces when it moved. */
  private maybeIncrementHighWatermark(part: Partition): void {
    const ls = part.leaderState;
    if (ls === null) return;
    const before = part.log.highWatermark;
    const after = part.log.updateHighWatermark(ls.highWatermarkCandidate(part.log.logEndOffset));
    if (after > before) {
      this.wakeFetchers(part);
      this.completeDelayedProduces(part);
    }
  }

  /** Whether the controller would take `brokerId` into an ISR: registered and not fenced. */
  private eligible = (brokerId: number): boolean => {
    const b = this.image?.brokers.get(brokerId) as { fenced?: boolean } | undefined;
    return b !== undefined && b.fenced !== true;
  };

  private startIsrTask(): void {
    if (this.isrTimer !== null || this.stopped) return;
    // Kafka checks every replica.lag.time.max.ms / 2.
    this.isrTimer = setInterval(() => this.shrinkIsrs(Date.now()), Math.max(50, Math.floor(this.replicaLagTimeMaxMs / 2)));
    this.isrTimer.unref();
  }

  /** Removes lagging followers from the ISR of every partition led here (Kafka's maybeShrinkIsr). */
  shrinkIsrs(nowMs: number): void {
    for (const part of this.partitions.values()) {
      const ls = part.leaderState;
      if (ls === null) continue;
      const next = ls.isrShrink(nowMs, part.log.logEndOffset, this.replicaLagTimeMaxMs);
      if (next === null) continue;
      const out = ls.isr.filter((id) => !next.includes(id));
      this.logger.info('shrinking ISR', { topic: part.topic, partition: part.index, from: ls.isr.join(','), to: next.join(','), lagging: out.join(','), logEndOffset: part.log.logEndOffset, highWatermark: part.log.highWatermark });
      this.changeIsr(part, ls, next, 'shrink');
    }
  }

  private changeIsr(part: Partition, ls: LeaderPartitionState, newIsr: number[], kind: 'shrink' | 'expand'): void {
    if (this.alterPartition === null) return;
    ls.beginIsrChange(newIsr);
    this.sendIsrChange(part, ls, ls.pendingIsr!, kind, 0);
  }

  /**
   * Sends the ISR change in flight (`pending`) to the controller; what an answer means is
   * partition-state.ts isrChangeOutcome (Kafka's handleAlterPartitionError): a certain refusal
   * drops it, a stale view keeps it until the next image replaces it, and no answer (a timeout, a
   * controller failover) sends the same request again — dropping it could let the high watermark
   * pass a member the controller did add.
   */
  private sendIsrChange(part: Partition, ls: LeaderPartitionState, pending: readonly number[], kind: 'shrink' | 'expand', attempt: number): void {
    const alter = this.alterPartition;
    if (alter === null) return;
    const current = (): boolean => !this.stopped && part.leaderState === ls && ls.pendingIsr === pending;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ALTER_PARTITION_TIMEOUT_MS} ms`)), ALTER_PARTITION_TIMEOUT_MS);
      timer.unref();
    });
    const req = { topicId: part.topicId, partition: part.index, leaderEpoch: ls.leaderEpoch, partitionEpoch: ls.partitionEpoch, newIsr: [...pending] };
    const outcome = (errorCode: number | null, detail: string): void => {
      const what = isrChangeOutcome(errorCode);
      const fields = { topic: part.topic, partition: part.index, kind, newIsr: pending.join(','), errorCode: errorCode ?? 'none', detail };
      if (what === 'refused') {
        ls.isrChangeFailed();
        this.logger.info('ISR change refused by the controller', fields);
      } else if (what === 'await-metadata') {
        this.logger.info('ISR change refused: this leader\'s view is stale, waiting for the metadata', fields);
      } else {
        this.logger.info('ISR change not answered; sending it again', { ...fields, attempt: attempt + 1 });
        const retry = setTimeout(() => {
          if (current()) this.sendIsrChange(part, ls, pending, kind, attempt + 1);
        }, Math.min(100 * 2 ** attempt, 2000));
        retry.unref();
      }
    };
    Promise.race([alter(req), timeout])
      .finally(() => clearTimeout(timer))
      .then(
        (r) => {
          if (!current()) return; // leadership moved, or an image already settled it
          if (r.errorCode === ErrorCode.NONE && r.partition !== null) {
            // Committed with another leader or epoch: the image that makes this broker follow is on its way.
            if (r.partition.leader !== this.nodeId || r.partition.leaderEpoch !== ls.leaderEpoch) return;
            ls.isrChangeCommitted(r.partition.isr, r.partition.partitionEpoch, r.partition.replicas);
            if (r.partition.partitionEpoch >= part.partitionEpoch) {
              part.isr = r.partition.isr;
              part.partitionEpoch = r.partition.partitionEpoch;
            }
            if (kind === 'shrink') this.isrShrinks++;
            else this.isrExpands++;
            this.maybeIncrementHighWatermark(part);
            return;
          }
          outcome(r.errorCode === ErrorCode.NONE ? null : r.errorCode, 'answered');
        },
        (e: unknown) => {
          if (current()) outcome(null, e instanceof Error ? e.message : String(e));
        },
      );
  }

  /**
   * A follower's fetch of a partition led here: checked against the leader's epochs (a diverging
   * epoch when its log went another way), then its position is recorded, which may move the high
   * watermark and let it into the ISR. Returns the diverging epoch, or null.
   */
  private followerFetched(part: Partition, replicaId: number, fetchOffset: number, lastFetchedEpoch: number): { error: number } | { diverging: EpochEndOffset } | null {
    const ls = part.leaderState;
    if (ls === null || !ls.replicas.includes(replicaId) || replicaId === this.nodeId) return { error: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    const v = ls.validateFetch(part.log, fetchOffset, lastFetchedEpoch);
    if (v.kind === 'diverging') return { diverging: v.divergingEpoch };
    if (v.kind === 'out-of-range') return { error: ErrorCode.OFFSET_OUT_OF_RANGE };
    ls.updateFollower(replicaId, fetchOffset, part.log.logEndOffset, Date.now());
    this.maybeIncrementHighWatermark(part);
    const grown = ls.isrExpansion(replicaId, part.log.highWatermark, this.eligible);
    if (grown !== null) {
      this.logger.info('expanding ISR', { topic: part.topic, partition: part.index, from: ls.isr.join(','), to: grown.join(','), follower: replicaId, followerLogEndOffset: fetchOffset, highWatermark: part.log.highWatermark });
      this.changeIsr(part, ls, grown, 'expand');
    }
    return null;
  }

  // ------------------------------------------------------------ acks=all (DelayedProduce)

  /**
   * Resolves with NONE once the high watermark reaches `requiredOffset` (everything below it is on
   * every ISR member), NOT_ENOUGH_REPLICAS_AFTER_APPEND when it got there with an ISR smaller than
   * `minIsr`, REQUEST_TIMED_OUT after `timeoutMs`, NOT_LEADER_OR_FOLLOWER if leadership moves
   * first. Immediate for a partition with no other replica. Coordinators use it for their appends.
   */
  waitForReplication(part: Partition, requiredOffset: number, timeoutMs: number, minIsr = 1): Promise<number> {
    if (!part.isLeader) return Promise.resolve(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const ls = part.leaderState;
    if (ls === null) return Promise.resolve(ErrorCode.NONE);
    if (part.log.highWatermark >= requiredOffset) return Promise.resolve(ls.maximalIsr.length >= minIsr ? ErrorCode.NONE : ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    if (this.stopped) return Promise.resolve(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => d.complete(ErrorCode.REQUEST_TIMED_OUT), Math.max(0, timeoutMs));
      const d: DelayedProduce = {
        requiredOffset,
        minIsr,
        complete: (errorCode) => {
          clearTimeout(timer);
          part.delayedProduces.delete(d);
          resolve(errorCode);
        },
      };
      part.delayedProduces.add(d);
    });
  }

  private completeDelayedProduces(part: Partition): void {
    if (part.delayedProduces.size === 0) return;
    const hw = part.log.highWatermark;
    const isrSize = part.leaderState?.maximalIsr.length ?? 1;
    for (const d of [...part.delayedProduces]) {
      if (hw >= d.requiredOffset) d.complete(isrSize >= d.minIsr ? ErrorCode.NONE : ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    }
  }

  private failDelayedProduces(part: Partition, errorCode: number): void {
    for (const d of [...part.delayedProduces]) d.complete(errorCode);
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
  async deleteOrphanLogs(given: MetadataImage): Promise<void> {
    for (const d of await this.logManager.listPartitionDirs()) {
      if (d.topic === METADATA_TOPIC) continue;
      // The newest image this manager has applied may be ahead of the caller's (image listeners
      // still running); a partition hosted now is never an orphan.
      const image = this.image !== null && this.image.offset > given.offset ? this.image : given;
      const hosted = this.partitions.get(key(d.topic, d.partition));
      if (hosted !== undefined && image.topic(d.topic)?.topicId === hosted.topicId) continue;
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
      this.fetchers.removePartition(part);
      part.leaderState = null;
      part.leaderId = -1;
      this.failDelayedProduces(part, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      await this.logManager.deleteLog(topic.name, p.partition);
    }
    this.logger.info('deleted topic logs', { topic: topic.name, topicId: topic.topicId });
  }

  /**
   * Validates and appends one partition's records; resolves when `acks` is satisfied: acks=1 after
   * the local append, acks=-1 once fsynced (strand.acks.all.fsync) and, for a partition with other
   * replicas, once the high watermark has passed the batch (bounded by `timeoutMs`, the request's
   * timeout: REQUEST_TIMED_OUT). Only the leader appends (else NOT_LEADER_OR_FOLLOWER); acks=-1
   * with an ISR smaller than min.insync.replicas is refused before appending (NOT_ENOUGH_REPLICAS).
   */
  async produce(partition: Partition, records: Buffer | null, acks: number, nowMs: number, timeoutMs = 30000): Promise<ProduceResult> {
    const result: ProduceResult = {
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      baseOffset: -1,
      logAppendTimeMs: -1,
      logStartOffset: partition.log.logStartOffset,
      recordErrors: [],
    };
    if (!partition.isLeader) {
      result.errorCode = ErrorCode.NOT_LEADER_OR_FOLLOWER;
      result.errorMessage = `This broker (${this.nodeId}) is not the leader of ${partition.topic}-${partition.index}; the leader is ${partition.leaderId}`;
      return result;
    }
    if (partition.replicas.length > 1 && !this.leaderLeaseValid()) {
      // Cut off from the controller for longer than its session: it has been fenced and its
      // leaderships moved, even if this broker's image does not show it yet.
      result.errorCode = ErrorCode.NOT_LEADER_OR_FOLLOWER;
      result.errorMessage = `This broker (${this.nodeId}) has no live session with the controller: it cannot lead ${partition.topic}-${partition.index} until it catches up`;
      return result;
    }
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
    if (acks === -1 && partition.isr.length < s.minInsyncReplicas) {
      result.errorCode = ErrorCode.NOT_ENOUGH_REPLICAS;
      result.errorMessage = `The ISR of ${partition.topic}-${partition.index} (${partition.isr.join(',')}) is smaller than min.insync.replicas (${s.minInsyncReplicas})`;
      return result;
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
    if (partition.leaderState === null) {
      if (acks === -1 && this.fsyncOnAcksAll) await partition.log.flush();
      return result;
    }
    // A replicated partition: an ISR of only this broker lets the high watermark move at once.
    this.maybeIncrementHighWatermark(partition);
    if (acks !== -1) return result;
    const [, code] = await Promise.all([
      this.fsyncOnAcksAll ? partition.log.flush() : undefined,
      this.waitForReplication(partition, appended.lastOffset + 1, timeoutMs, s.minInsyncReplicas),
    ]);
    if (code !== ErrorCode.NONE) {
      result.errorCode = code;
      result.errorMessage =
        code === ErrorCode.REQUEST_TIMED_OUT
          ? `The ISR of ${partition.topic}-${partition.index} did not replicate the batch within ${timeoutMs} ms`
          : code === ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
            ? `The batch was written, but the ISR of ${partition.topic}-${partition.index} shrank below min.insync.replicas (${s.minInsyncReplicas})`
            : `${partition.topic}-${partition.index} lost its leadership on this broker before the batch was replicated`;
    }
    return result;
  }

  /**
   * Appends a group or transaction coordinator's batch to an internal-topic partition this broker
   * leads and resolves with its first offset once the batch is committed (acks=-1, whatever
   * `strand.acks.all.fsync` says: fsynced, and on a replicated partition in the ISR's logs,
   * within `timeoutMs`), so nothing a coordinator acknowledged is lost on failover. Rejects with
   * a `ReplicationError` (a Kafka error name as `code`): NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS
   * (nothing written), REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND.
   */
  async appendCoordinatorBatch(partition: Partition, batch: Buffer, origin: AppendOrigin, timeoutMs: number): Promise<number> {
    if (!partition.isLeader) throw new ReplicationError('NOT_LEADER_OR_FOLLOWER', `this broker does not lead ${partition.topic}-${partition.index}`);
    const minIsr = partition.settings.minInsyncReplicas;
    if (partition.leaderState !== null && partition.isr.length < minIsr) {
      throw new ReplicationError('NOT_ENOUGH_REPLICAS', `the ISR of ${partition.topic}-${partition.index} (${partition.isr.join(',')}) is smaller than min.insync.replicas (${minIsr})`);
    }
    const appended = await partition.log.append(batch, partition.leaderEpoch, origin);
    this.wakeFetchers(partition);
    await this.awaitCommitted(partition, appended.lastOffset + 1, timeoutMs, minIsr);
    return appended.firstOffset;
  }

  /** Fsyncs, and on a replicated partition waits for the high watermark to pass `requiredOffset`; rejects with a ReplicationError. */
  private async awaitCommitted(partition: Partition, requiredOffset: number, timeoutMs: number, minIsr: number): Promise<void> {
    if (partition.leaderState === null) {
      await partition.log.flush();
      return;
    }
    this.maybeIncrementHighWatermark(partition);
    const [, code] = await Promise.all([partition.log.flush(), this.waitForReplication(partition, requiredOffset, timeoutMs, minIsr)]);
    if (code !== ErrorCode.NONE) {
      const name = Object.entries(ErrorCode).find(([, v]) => v === code)?.[0] ?? 'UNKNOWN_SERVER_ERROR';
      throw new ReplicationError(name, `${partition.topic}-${partition.index}: the batch below ${requiredOffset} was not committed (${name})`);
    }
  }

  /**
   * Writes a transaction marker (control batch) for the coordinator; resolves with its offset once
   * committed as a coordinator batch is (acks=-1 within `timeoutMs`, as Kafka writes markers).
   * Markers bypass sequence checks but not the producer epoch check, nor the coordinator epoch
   * check (a marker older than the producer's last one is TRANSACTION_COORDINATOR_FENCED).
   */
  async appendTxnMarker(partition: Partition, producerId: number, producerEpoch: number, commit: boolean, coordinatorEpoch: number, timeoutMs = 30000): Promise<number> {
    const batch = encodeControlBatch({ producerId, producerEpoch, type: commit ? 1 : 0, coordinatorEpoch, timestamp: Date.now() });
    const appended = await partition.log.append(batch, partition.leaderEpoch, 'coordinator');
    this.wakeFetchers(partition);
    await this.awaitCommitted(partition, appended.lastOffset + 1, timeoutMs, 1);
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
   *
   * A follower's fetch (`replicaId` ≥ 0) is first checked and recorded per partition
   * (followerFetched: a diverging epoch or an error answers at once, else its position may move
   * the high watermark and grow the ISR) and reads up to the log end offset; a consumer's reads
   * up to the high watermark (read_committed: the last stable offset).
   */
  async fetch(reqs: FetchPartitionRequest[], maxBytes: number, minBytes: number, maxWaitMs: number, signal?: AbortSignal, replicaId = -1): Promise<FetchPartitionResult[]> {
    const deadline = Date.now() + Math.max(0, maxWaitMs);
    const follower = replicaId >= 0;
    const settled = follower ? reqs.map((r) => this.followerCheck(r, replicaId)) : null;
    for (;;) {
      const results = await this.readOnce(reqs, maxBytes, settled);
      const bytes = results.reduce((n, r) => n + (r.records?.length ?? 0), 0);
      const anyError = results.some((r) => r.errorCode !== ErrorCode.NONE || r.divergingEpoch !== undefined);
      const remaining = deadline - Date.now();
      if (bytes >= minBytes || anyError || remaining <= 0 || signal?.aborted || this.stopped) {
        if (this.metrics !== null && !follower) results.forEach((r, i) => reqs[i]!.partition && this.metrics!.fetched(reqs[i]!.partition!.topic, r.records));
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

  /** A follower's fetch of one partition: its answer when it is settled without reading (an error, a diverging epoch), else null. */
  private followerCheck(req: FetchPartitionRequest, replicaId: number): FetchPartitionResult | null {
    const p = req.partition;
    if (p === undefined) return null;
    const r = this.followerFetched(p, replicaId, req.fetchOffset, req.lastFetchedEpoch ?? -1);
    if (r === null) return null;
    const base = { highWatermark: p.log.highWatermark, lastStableOffset: p.log.lastStableOffset, logStartOffset: p.log.logStartOffset };
    if ('diverging' in r) return { ...base, errorCode: ErrorCode.NONE, records: null, divergingEpoch: r.diverging };
    return { ...base, errorCode: r.error, records: null };
  }

  /** After an append this broker made as leader outside produce() (coordinators): wakes fetches, moves the high watermark of an ISR of one. */
  appendedAsLeader(partition: Partition): void {
    this.wakeFetchers(partition);
    this.maybeIncrementHighWatermark(partition);
  }

  private async readOnce(reqs: FetchPartitionRequest[], maxBytes: number, settled: ReadonlyArray<FetchPartitionResult | null> | null): Promise<FetchPartitionResult[]> {
    let budget = maxBytes;
    let gotAny = false;
    const out: FetchPartitionResult[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const req = reqs[i]!;
      const done = settled?.[i];
      if (done !== undefined && done !== null) {
        out.push(done);
        continue;
      }
      const p = req.partition;
      if (p === undefined) {
        out.push({ errorCode: req.missingError, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, records: null });
        continue;
      }
      const log = p.log;
      const hw = log.highWatermark;
      const lso = log.lastStableOffset;
      // A follower reads to the log end; read_committed reads stop at the last stable offset:
      // nothing of an undecided transaction.
      const upper = settled !== null ? log.logEndOffset : req.readCommitted === true ? lso : hw;
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
