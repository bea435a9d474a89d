/**
 * The consumer: group membership (classic protocol, eager rebalancing), fetching, handlers,
 * commits, and what to do with a record whose handler keeps failing.
 *
 * Membership. FindCoordinator, then JoinGroup — a first join without a member id gets
 * MEMBER_ID_REQUIRED and joins again with the id it was given (KIP-394) — then SyncGroup; the
 * leader computes the assignment with the first assignor every member supports. A heartbeat
 * runs every `heartbeatIntervalMs` on its own; when it reports REBALANCE_IN_PROGRESS (or the
 * subscription's partition count changed) the consumer stops fetching, lets the handlers in
 * progress finish, commits what was handled (synchronously), gives up its partitions (the
 * `revoked` event) and joins again. Because the commit completes before the partitions are
 * released, a rebalance does not re-deliver handled records when commits are synchronous.
 * UNKNOWN_MEMBER_ID and ILLEGAL_GENERATION mean the member was already removed: it rejoins
 * without committing (the records handled since the last commit may then be delivered again,
 * which at-least-once allows). `groupInstanceId` makes the member static (KIP-345): it keeps its
 * partitions across a restart within the session timeout and does not send LeaveGroup.
 *
 * Fetching. One Fetch per leader for the assigned, unpaused partitions (lane 'fetch'), the next
 * one sent while the handlers process the previous result. Records before the position (a batch
 * that starts earlier), control batches and, under read_committed, aborted transactions' records
 * are skipped. OFFSET_OUT_OF_RANGE resets the partition by `autoOffsetReset`.
 *
 * Handling. `eachMessage` or `eachBatch`, in order within a partition; up to
 * `partitionsConsumedConcurrently` partitions at once. The async iterator (`for await (const m
 * of consumer)`) is `eachMessage` underneath: a message counts as handled when the loop asks for
 * the next one.
 *
 * Commits and delivery semantics (`commit`):
 *   'auto'         (default) every `autoCommitIntervalMs` and on rebalance and close, the offsets
 *                  handled so far — at-least-once;
 *   'message'      synchronously after each message — at-least-once, at most one re-delivery;
 *   'batch'        synchronously after each batch;
 *   'manual'       only `commit()` / `commitOffsets()` (and on rebalance and close unless
 *                  `commitOnRevoke: false`);
 *   'before'       synchronously before a fetched batch is handed to the handler — at-most-once.
 * Exactly-once (read-process-write in a transaction, the offsets committed by a transactional
 * producer): `runExactlyOnce` in exactly-once.ts, with 'manual' and `commitOnRevoke: false`.
 * Under read_committed, OffsetFetch answering UNSTABLE_OFFSET_COMMIT (a transaction holds the
 * group's offsets pending) is retried until that transaction ends.
 *
 * Failures. A handler that throws is retried per `retry` (attempts, exponential backoff with
 * jitter, `retryOn` to choose which errors retry); when the attempts run out, `onFailure`
 * decides: 'fail' (default) stops the consumer with the error, 'skip' moves on, 'deadLetter'
 * publishes the record to `deadLetterTopic` (default `<topic>.DLT`) with its key, value and
 * headers plus headers saying where it came from, then moves on. Either way one poison record
 * never stalls its partition.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import { Writer, recordsInMemory } from '../protocol/writer.js';
import { decodeRecordBatches, isControlBatch, isTransactional, type RecordHeader } from '../protocol/records.js';
import {
  FetchApi,
  HeartbeatApi,
  JoinGroupApi,
  LeaveGroupApi,
  ListOffsetsApi,
  OffsetCommitApi,
  OffsetFetchApi,
  SyncGroupApi,
  decodeConsumerProtocolAssignment,
  decodeConsumerProtocolSubscription,
  encodeConsumerProtocolAssignment,
  encodeConsumerProtocolSubscription,
  type FetchResponse,
  type FetchResponsePartitionData,
  type OffsetFetchResponse,
} from '../protocol/messages/index.js';
import { ZERO_UUID } from '../protocol/reader.js';
import { ASSIGNORS, type Assignor, type AssignorName } from './assignors.js';
import { backoffMs, sleep, type Cluster } from './cluster.js';
import { channels } from './connection.js';
import { KafkaError, StrandError } from './errors.js';
import type { Kafka } from './kafka.js';
import type { Producer } from './producer.js';
import type { ConsumerGroupMetadata } from './transaction.js';
import type { Deserializer } from './serializers.js';

export interface ConsumerMessage<K = Buffer | null, V = Buffer | null> {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: K;
  value: V;
  headers: RecordHeader[];
  /** The raw key and value bytes (for dead-lettering and re-publishing). */
  rawKey: Buffer | null;
  rawValue: Buffer | null;
}

export interface EachMessagePayload<K, V> {
  message: ConsumerMessage<K, V>;
  topic: string;
  partition: number;
  /** Sends a heartbeat now (long handlers). */
  heartbeat(): Promise<void>;
}

export interface EachBatchPayload<K, V> {
  batch: { topic: string; partition: number; messages: ConsumerMessage<K, V>[]; highWatermark: number };
  /** Marks messages up to `offset` as handled (the rest are retried if the handler throws). */
  resolveOffset(offset: number): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
}

export interface RunOptions<K, V> {
  eachMessage?: (payload: EachMessagePayload<K, V>) => Promise<void> | void;
  eachBatch?: (payload: EachBatchPayload<K, V>) => Promise<void> | void;
}

export interface ConsumerRetryPolicy {
  /** Attempts after the first (default 0). */
  retries?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Which errors are retried (default: all). */
  retryOn?: (error: unknown) => boolean;
}

export type CommitStrategy = 'auto' | 'message' | 'batch' | 'manual' | 'before';

export interface ConsumerOptions<K = Buffer | null, V = Buffer | null> {
  /** Consumer group; without one, use `assign()` (no commits). */
  groupId?: string;
  /** Static membership (KIP-345). */
  groupInstanceId?: string;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /**
   * Assignors offered, in preference order (default ['range', 'roundrobin']). With
   * `['cooperative-sticky']` (every assignor cooperative) the member rebalances incrementally
   * (KIP-429): it keeps its partitions while rejoining and gives up only those moved elsewhere.
   */
  assignors?: Array<AssignorName | Assignor>;
  /** Where to start without a committed offset: 'earliest' | 'latest' (default) | 'none' (error). */
  autoOffsetReset?: 'earliest' | 'latest' | 'none';
  /** Shorthand: autoOffsetReset 'earliest'. */
  fromBeginning?: boolean;
  commit?: CommitStrategy;
  autoCommitIntervalMs?: number;
  /** Commit handled offsets before giving up partitions in a rebalance or close (default true). */
  commitOnRevoke?: boolean;
  maxWaitMs?: number;
  minBytes?: number;
  maxBytes?: number;
  maxPartitionBytes?: number;
  isolationLevel?: 'read_uncommitted' | 'read_committed';
  partitionsConsumedConcurrently?: number;
  keyDeserializer?: Deserializer<K>;
  valueDeserializer?: Deserializer<V>;
  retry?: ConsumerRetryPolicy;
  onFailure?: 'fail' | 'skip' | 'deadLetter';
  deadLetterTopic?: string | ((topic: string) => string);
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: number;
}

interface PartitionState {
  topic: string;
  partition: number;
  /** Next offset to fetch. */
  fetchOffset: number;
  /** Bumped by seek and reset: fetched data of an older epoch is dropped. */
  epoch: number;
  paused: boolean;
  /** Next offset to hand out (one past the last handled). */
  position: number;
  /** Last committed offset (next to consume), or -1. */
  committed: number;
  highWatermark: number;
  /** A seek to a timestamp, applied by the loop. */
  pendingTimestamp: number | null;
}

interface FetchedPartition {
  state: PartitionState;
  epoch: number;
  messages: ConsumerMessage<any, any>[];
  highWatermark: number;
  nextFetchOffset: number;
}

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export const DLT_HEADERS = {
  topic: 'strand.dlt.topic',
  partition: 'strand.dlt.partition',
  offset: 'strand.dlt.offset',
  error: 'strand.dlt.error',
  attempts: 'strand.dlt.attempts',
  timestamp: 'strand.dlt.timestamp',
} as const;

export class Consumer<K = Buffer | null, V = Buffer | null> extends EventEmitter {
  private readonly groupId: string | null;
  private readonly groupInstanceId: string | null;
  private readonly sessionTimeoutMs: number;
  private readonly rebalanceTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly assignors: Assignor[];
  /** Every assignor offered is cooperative: incremental rebalancing (KIP-429). */
  private readonly cooperative: boolean;
  private readonly autoOffsetReset: 'earliest' | 'latest' | 'none';
  private readonly commitStrategy: CommitStrategy;
  private readonly autoCommitIntervalMs: number;
  private readonly commitOnRevoke: boolean;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly maxBytes: number;
  private readonly maxPartitionBytes: number;
  private readonly isolationLevel: number;
  private readonly concurrency: number;
  private readonly keyDeserializer: Deserializer<K> | null;
  private readonly valueDeserializer: Deserializer<V> | null;
  private readonly retry: Required<Omit<ConsumerRetryPolicy, 'retryOn'>> & { retryOn?: (e: unknown) => boolean };
  private readonly onFailure: 'fail' | 'skip' | 'deadLetter';
  private readonly deadLetterTopic: (topic: string) => string;

  private subscription: string[] = [];
  private manual = false;
  private readonly partitions = new Map<string, PartitionState>();
  private memberId = '';
  private generationId = -1;
  private protocolName: string | null = null;
  private needRejoin = false;
  private running = false;
  /** run() was called (the consumer may have stopped since, e.g. on a handler failure). */
  private started = false;
  private stopping = false;
  private closing: Promise<void> | null = null;
  private loop: Promise<void> | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private commitTimer: NodeJS.Timeout | null = null;
  private inJoin = false;
  private subscribedPartitionCounts = new Map<string, number>();
  private dlqProducer: Producer<Buffer | null, Buffer | null> | null = null;
  private fatal: Error | null = null;
  private readonly handledEvents: Array<() => void> = [];

  constructor(
    private readonly cluster: Cluster,
    opts: ConsumerOptions<K, V>,
    private readonly kafka: Kafka | null = null,
  ) {
    super();
    this.groupId = opts.groupId ?? null;
    this.groupInstanceId = opts.groupInstanceId ?? null;
    this.sessionTimeoutMs = opts.sessionTimeoutMs ?? 30000;
    this.rebalanceTimeoutMs = opts.rebalanceTimeoutMs ?? 60000;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? 3000;
    this.assignors = (opts.assignors ?? ['range', 'roundrobin']).map((a) => (typeof a === 'string' ? ASSIGNORS[a] : a));
    if (this.assignors.some((a) => a === undefined)) throw new StrandError('INVALID_CONFIG', `unknown assignor in ${JSON.stringify(opts.assignors)}`);
    // As the Java client: cooperative only when every assignor offered supports it.
    this.cooperative = this.assignors.every((a) => a.protocol === 'cooperative');
    this.autoOffsetReset = opts.fromBeginning ? 'earliest' : (opts.autoOffsetReset ?? 'latest');
    this.commitStrategy = opts.commit ?? 'auto';
    this.autoCommitIntervalMs = opts.autoCommitIntervalMs ?? 5000;
    this.commitOnRevoke = opts.commitOnRevoke ?? true;
    this.maxWaitMs = opts.maxWaitMs ?? 500;
    this.minBytes = opts.minBytes ?? 1;
    this.maxBytes = opts.maxBytes ?? 52428800;
    this.maxPartitionBytes = opts.maxPartitionBytes ?? 1048576;
    this.isolationLevel = opts.isolationLevel === 'read_uncommitted' ? 0 : 1;
    this.concurrency = Math.max(1, opts.partitionsConsumedConcurrently ?? 1);
    this.keyDeserializer = opts.keyDeserializer ?? null;
    this.valueDeserializer = opts.valueDeserializer ?? null;
    this.retry = { retries: 0, initialBackoffMs: 100, maxBackoffMs: 5000, ...opts.retry };
    this.onFailure = opts.onFailure ?? 'fail';
    const dlt = opts.deadLetterTopic;
    this.deadLetterTopic = typeof dlt === 'function' ? dlt : dlt !== undefined ? () => dlt : (t) => `${t}.DLT`;
  }

  // ------------------------------------------------------------------------------ public api

  /** Topics to consume as a group member. */
  subscribe(topics: string | string[]): void {
    if (this.groupId === null) throw new StrandError('INVALID_CONFIG', 'subscribe() needs a groupId; use assign() without one');
    if (this.running) throw new StrandError('ILLEGAL_STATE', 'subscribe before run()');
    this.subscription = [...new Set([...this.subscription, ...(Array.isArray(topics) ? topics : [topics])])];
  }

  /** Partitions to consume without a group (offsets: given, else autoOffsetReset). */
  assign(partitions: Array<{ topic: string; partition: number; offset?: number }>): void {
    if (this.running) throw new StrandError('ILLEGAL_STATE', 'assign before run()');
    this.manual = true;
    for (const p of partitions) this.partitions.set(key(p.topic, p.partition), this.newState(p.topic, p.partition, p.offset ?? -1, -1));
  }

  /**
   * Where this member stands in its group — group id, generation, member id, instance id — as a
   * transactional producer's `sendOffsets({ consumer })` sends it (KIP-447): a member that has
   * lost its partitions in a rebalance cannot commit offsets for them in a transaction.
   */
  groupMetadata(): ConsumerGroupMetadata {
    if (this.groupId === null) throw new StrandError('INVALID_CONFIG', 'groupMetadata() needs a groupId');
    return { groupId: this.groupId, generationId: this.manual ? -1 : this.generationId, memberId: this.manual ? '' : this.memberId, groupInstanceId: this.manual ? null : this.groupInstanceId };
  }

  /** False when offsets are committed only by someone else (`commit: 'manual'` with `commitOnRevoke: false`), as exactly-once needs. */
  get commitsOffsets(): boolean {
    return this.commitStrategy !== 'manual' || this.commitOnRevoke;
  }

  /** The partitions currently assigned. */
  assignment(): Array<{ topic: string; partition: number }> {
    return [...this.partitions.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** Starts consuming; resolves once the first assignment is in place (group) or at once (assign). */
  async run(handlers: RunOptions<K, V>): Promise<void> {
    if (this.running) throw new StrandError('ILLEGAL_STATE', 'the consumer is already running');
    if (!handlers.eachMessage && !handlers.eachBatch) throw new StrandError('INVALID_CONFIG', 'run() needs eachMessage or eachBatch');
    if (!this.manual && this.subscription.length === 0) throw new StrandError('INVALID_CONFIG', 'subscribe() or assign() before run()');
    this.running = true;
    this.started = true;
    if (!this.manual) {
      await this.joinAndSync();
      this.startHeartbeat();
    }
    await this.initPositions();
    if (this.groupId !== null && this.commitStrategy === 'auto') {
      this.commitTimer = setInterval(() => void this.commit().catch((e) => this.emit('commitError', e)), this.autoCommitIntervalMs);
      this.commitTimer.unref();
    }
    this.loop = this.fetchLoop(handlers).catch((e: Error) => {
      this.fatal = e;
      this.running = false;
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
  }

  /** Resolves when the consumer stops; rejects with the error that stopped it. */
  async done(): Promise<void> {
    await this.loop;
    if (this.fatal) throw this.fatal;
  }

  /** Async iterator over messages; a message is handled once the loop asks for the next. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerMessage<K, V>> {
    const queue: Array<{ m: ConsumerMessage<K, V>; done: () => void }> = [];
    let wake: (() => void) | null = null;
    await this.run({
      eachMessage: ({ message }) =>
        new Promise<void>((resolve) => {
          queue.push({ m: message, done: resolve });
          wake?.();
        }),
    });
    let current: { m: ConsumerMessage<K, V>; done: () => void } | undefined;
    try {
      for (;;) {
        current?.done();
        current = undefined;
        while (queue.length === 0) {
          if (!this.running) return;
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 200).unref();
          });
          wake = null;
        }
        current = queue.shift()!;
        yield current.m;
      }
    } finally {
      current?.done();
      if (this.running) await this.close();
    }
  }

  /** Moves a partition's position (the next record delivered is at `offset`, or the first at/after `timestamp`). */
  seek(spec: { topic: string; partition: number; offset?: number; timestamp?: number }): void {
    const s = this.partitions.get(key(spec.topic, spec.partition));
    if (s === undefined) throw new StrandError('ILLEGAL_STATE', `${spec.topic}-${spec.partition} is not assigned`);
    s.epoch++;
    if (spec.timestamp !== undefined) {
      s.pendingTimestamp = spec.timestamp;
      s.fetchOffset = -1;
    } else {
      if (spec.offset === undefined || spec.offset < 0) throw new StrandError('INVALID_CONFIG', 'seek needs an offset ≥ 0 or a timestamp');
      s.fetchOffset = spec.offset;
      s.position = spec.offset;
    }
  }

  pause(topics: Array<{ topic: string; partitions?: number[] }>): void {
    for (const s of this.partitions.values()) {
      if (topics.some((t) => t.topic === s.topic && (t.partitions === undefined || t.partitions.includes(s.partition)))) {
        s.paused = true;
        s.epoch++;
        s.fetchOffset = s.position;
      }
    }
  }

  resume(topics: Array<{ topic: string; partitions?: number[] }>): void {
    for (const s of this.partitions.values()) {
      if (topics.some((t) => t.topic === s.topic && (t.partitions === undefined || t.partitions.includes(s.partition)))) s.paused = false;
    }
  }

  paused(): Array<{ topic: string; partition: number }> {
    return [...this.partitions.values()].filter((s) => s.paused).map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** Commits the handled offsets of every assigned partition (synchronously: resolves when stored). */
  async commit(): Promise<void> {
    const offsets: TopicPartitionOffset[] = [];
    for (const s of this.partitions.values()) if (s.position >= 0 && s.position !== s.committed) offsets.push({ topic: s.topic, partition: s.partition, offset: s.position });
    if (offsets.length > 0) await this.commitOffsets(offsets);
  }

  /** Commits explicit offsets (the next offset to consume, Kafka's convention). */
  async commitOffsets(offsets: TopicPartitionOffset[]): Promise<void> {
    if (this.groupId === null) throw new StrandError('INVALID_CONFIG', 'commits need a groupId');
    if (offsets.length === 0) return;
    const groupId = this.groupId;
    const byTopic = new Map<string, Array<{ partitionIndex: number; committedOffset: number; committedLeaderEpoch: number; commitTimestamp: number; committedMetadata: string | null }>>();
    for (const o of offsets) {
      let l = byTopic.get(o.topic);
      if (l === undefined) byTopic.set(o.topic, (l = []));
      l.push({ partitionIndex: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: null });
    }
    const resp = await this.groupRequest('OffsetCommit', (c) =>
      c.request(OffsetCommitApi, {
        groupId,
        generationIdOrMemberEpoch: this.manual ? -1 : this.generationId,
        memberId: this.manual ? '' : this.memberId,
        groupInstanceId: this.manual ? null : this.groupInstanceId,
        retentionTimeMs: -1,
        topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
      }),
    );
    for (const t of resp.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== 0) {
          const e = new KafkaError(p.errorCode, `commit ${t.name}-${p.partitionIndex}`);
          if (e.needsRejoin) this.needRejoin = true;
          throw e;
        }
      }
    }
    for (const o of offsets) {
      const s = this.partitions.get(key(o.topic, o.partition));
      if (s) s.committed = o.offset;
    }
    if (channels.commit.hasSubscribers) channels.commit.publish({ groupId, offsets });
    this.emit('commit', offsets);
  }

  /** Stops fetching, waits for the handlers in progress, commits, leaves the group, closes connections. */
  close(): Promise<void> {
    // A second call (e.g. the user's, after runExactlyOnce stopped a fenced pipeline) waits for the first.
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.stopping = true;
    const wasRunning = this.started;
    this.running = false;
    await this.loop?.catch(() => {});
    if (this.commitTimer) clearInterval(this.commitTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (wasRunning && this.groupId !== null && this.commitStrategy !== 'before' && (this.commitStrategy !== 'manual' || this.commitOnRevoke)) {
      await this.commit().catch((e) => this.emit('commitError', e));
    }
    if (wasRunning && !this.manual && this.memberId !== '' && this.groupInstanceId === null) await this.leaveGroup().catch(() => {});
    await this.dlqProducer?.close().catch(() => {});
    await this.cluster.close();
  }

  // ----------------------------------------------------------------------------- membership

  private async groupRequest<T>(what: string, fn: (c: Awaited<ReturnType<Cluster['connection']>>) => Promise<T>): Promise<T> {
    const groupId = this.groupId!;
    return this.cluster.withRetry(what, async () => {
      const node = await this.cluster.coordinator(groupId);
      try {
        return await fn(await this.cluster.connection(node, 'group'));
      } catch (e) {
        if (e instanceof StrandError && e.needsMetadataRefresh) this.cluster.forgetCoordinator(groupId);
        throw e;
      }
    });
  }

  private subscriptionMetadata(assignor: Assignor): Buffer {
    const w = new Writer(64);
    w.int16(1);
    // Cooperative members join with what they own; eager members have given everything up.
    const owned = new Map<string, number[]>();
    if (this.cooperative) {
      for (const s of this.partitions.values()) {
        let l = owned.get(s.topic);
        if (l === undefined) owned.set(s.topic, (l = []));
        l.push(s.partition);
      }
    }
    encodeConsumerProtocolSubscription(
      w,
      {
        topics: this.subscription,
        userData: assignor.subscriptionUserData?.(this.generationId) ?? null,
        ownedPartitions: [...owned].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) })),
        generationId: -1,
        rackId: null,
      },
      1,
    );
    return w.toBuffer();
  }

  private async joinAndSync(): Promise<void> {
    const groupId = this.groupId!;
    this.inJoin = true;
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.stopping) return;
        try {
          await this.cluster.refreshMetadata(this.subscription);
          const join = await this.groupRequest('JoinGroup', (c) =>
            c.request(
              JoinGroupApi,
              {
                groupId,
                sessionTimeoutMs: this.sessionTimeoutMs,
                rebalanceTimeoutMs: this.rebalanceTimeoutMs,
                memberId: this.memberId,
                groupInstanceId: this.groupInstanceId,
                protocolType: 'consumer',
                protocols: this.assignors.map((a) => ({ name: a.name, metadata: this.subscriptionMetadata(a) })),
                reason: null,
              },
              { extraTimeoutMs: this.rebalanceTimeoutMs },
            ),
          );
          if (join.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
            this.memberId = join.memberId;
            continue;
          }
          if (join.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) {
            this.memberId = '';
            continue;
          }
          if (join.errorCode !== 0) throw new KafkaError(join.errorCode, `JoinGroup ${groupId}`);
          this.memberId = join.memberId;
          this.generationId = join.generationId;
          this.protocolName = join.protocolName;
          let assignments: Array<{ memberId: string; assignment: Buffer }> = [];
          if (join.leader === join.memberId) assignments = await this.computeAssignment(join.protocolName ?? this.assignors[0]!.name, join.members);
          const sync = await this.groupRequest('SyncGroup', (c) =>
            c.request(
              SyncGroupApi,
              { groupId, generationId: this.generationId, memberId: this.memberId, groupInstanceId: this.groupInstanceId, protocolType: 'consumer', protocolName: this.protocolName, assignments },
              { extraTimeoutMs: this.rebalanceTimeoutMs },
            ),
          );
          if (sync.errorCode !== 0) {
            const e = new KafkaError(sync.errorCode, `SyncGroup ${groupId}`);
            if (e.needsRejoin || e.retriable) {
              if (sync.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
              continue;
            }
            throw e;
          }
          this.needRejoin = false;
          if (this.cooperative) await this.applyIncrementalAssignment(sync.assignment);
          else this.applyAssignment(sync.assignment);
          return;
        } catch (e) {
          if (e instanceof StrandError && (e.retriable || e.needsRejoin) && attempt < 50 && !this.stopping) {
            if (e instanceof KafkaError && e.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
            await sleep(backoffMs(Math.min(attempt + 1, 5), 100, 1000));
            continue;
          }
          throw e;
        }
      }
    } finally {
      this.inJoin = false;
    }
  }

  private async computeAssignment(protocol: string, members: Array<{ memberId: string; metadata: Buffer }>): Promise<Array<{ memberId: string; assignment: Buffer }>> {
    const assignor = this.assignors.find((a) => a.name === protocol) ?? this.assignors[0]!;
    const subs = members.map((m) => {
      const r = new Reader(m.metadata);
      const version = r.int16();
      const s = decodeConsumerProtocolSubscription(r, Math.min(version, 3));
      return { memberId: m.memberId, topics: s.topics, userData: s.userData, ownedPartitions: s.ownedPartitions, generation: s.generationId };
    });
    const topics = [...new Set(subs.flatMap((s) => s.topics))];
    await this.cluster.refreshMetadata(topics);
    const counts = new Map<string, number>();
    for (const t of topics) {
      const info = this.cluster.topics.get(t);
      if (info) counts.set(t, info.partitions.length);
    }
    this.subscribedPartitionCounts = counts;
    const result = assignor.assign(subs, counts);
    return subs.map((s) => {
      const w = new Writer(64);
      w.int16(0);
      const mine = result.get(s.memberId) ?? new Map<string, number[]>();
      encodeConsumerProtocolAssignment(w, { assignedPartitions: [...mine].map(([topic, partitions]) => ({ topic, partitions })), userData: null }, 0);
      return { memberId: s.memberId, assignment: w.toBuffer() };
    });
  }

  private decodeAssignment(bytes: Buffer): Array<{ topic: string; partition: number }> {
    const assigned: Array<{ topic: string; partition: number }> = [];
    if (bytes.length >= 2) {
      const r = new Reader(bytes);
      const version = r.int16();
      const a = decodeConsumerProtocolAssignment(r, version);
      for (const tp of a.assignedPartitions) for (const p of tp.partitions) assigned.push({ topic: tp.topic, partition: p });
    }
    return assigned;
  }

  /**
   * Cooperative (KIP-429): partitions kept keep their state (position, pause) and are not
   * announced again; partitions no longer assigned are committed (handled offsets, when
   * commitOnRevoke) and given up — the `revoked` event lists only those — and the member rejoins
   * at once so that the second phase can hand them to their new owner; new partitions are
   * announced with `assigned`.
   */
  private async applyIncrementalAssignment(bytes: Buffer): Promise<void> {
    const assigned = this.decodeAssignment(bytes);
    const keep = new Set(assigned.map((tp) => key(tp.topic, tp.partition)));
    const revoked = [...this.partitions.values()].filter((s) => !keep.has(key(s.topic, s.partition)));
    if (revoked.length > 0) {
      if (this.commitOnRevoke && this.commitStrategy !== 'before') {
        const offsets = revoked.filter((s) => s.position >= 0 && s.position !== s.committed).map((s) => ({ topic: s.topic, partition: s.partition, offset: s.position }));
        await this.commitOffsets(offsets).catch((e) => this.emit('commitError', e));
      }
      for (const s of revoked) this.partitions.delete(key(s.topic, s.partition));
      this.emit('revoked', revoked.map((s) => ({ topic: s.topic, partition: s.partition })));
      this.needRejoin = true; // the second phase: the revoked partitions go to their new owners
    }
    const added = assigned.filter((tp) => !this.partitions.has(key(tp.topic, tp.partition)));
    for (const tp of added) this.partitions.set(key(tp.topic, tp.partition), this.newState(tp.topic, tp.partition, -1, -1));
    if (channels.rebalance.hasSubscribers) channels.rebalance.publish({ groupId: this.groupId, memberId: this.memberId, generationId: this.generationId, assigned, added, revoked: revoked.map((s) => ({ topic: s.topic, partition: s.partition })) });
    this.emit('assigned', added);
  }

  private applyAssignment(bytes: Buffer): void {
    const assigned = this.decodeAssignment(bytes);
    this.partitions.clear();
    for (const tp of assigned) this.partitions.set(key(tp.topic, tp.partition), this.newState(tp.topic, tp.partition, -1, -1));
    if (channels.rebalance.hasSubscribers) channels.rebalance.publish({ groupId: this.groupId, memberId: this.memberId, generationId: this.generationId, assigned });
    this.emit('assigned', assigned);
  }

  private newState(topic: string, partition: number, offset: number, committed: number): PartitionState {
    return { topic, partition, fetchOffset: offset, epoch: 0, paused: false, position: offset, committed, highWatermark: -1, pendingTimestamp: null };
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch(() => {}), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    if (this.manual || this.inJoin || this.needRejoin || this.stopping || this.groupId === null) return;
    const groupId = this.groupId;
    const r = await this.groupRequest('Heartbeat', (c) => c.request(HeartbeatApi, { groupId, generationId: this.generationId, memberId: this.memberId, groupInstanceId: this.groupInstanceId }));
    if (r.errorCode === 0) {
      await this.checkPartitionCounts();
      return;
    }
    const e = new KafkaError(r.errorCode, `Heartbeat ${groupId}`);
    if (e.needsRejoin) {
      if (r.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
      if (r.errorCode !== ErrorCode.REBALANCE_IN_PROGRESS) this.generationId = -1;
      this.needRejoin = true;
    }
  }

  /** The leader rejoins when a subscribed topic gained partitions. */
  private async checkPartitionCounts(): Promise<void> {
    if (this.subscribedPartitionCounts.size === 0) return;
    await this.cluster.refreshMetadata(this.subscription).catch(() => {});
    for (const [t, n] of this.subscribedPartitionCounts) if ((this.cluster.topics.get(t)?.partitions.length ?? n) !== n) this.needRejoin = true;
  }

  private async leaveGroup(): Promise<void> {
    const groupId = this.groupId!;
    await this.groupRequest('LeaveGroup', (c) => c.request(LeaveGroupApi, { groupId, memberId: this.memberId, members: [{ memberId: this.memberId, groupInstanceId: null, reason: 'consumer closed' }] }));
    this.memberId = '';
  }

  /**
   * Eager rebalance: commit what was handled, give everything up, join again. Cooperative: join
   * again with what is owned; the assignment then says what to give up (see
   * applyIncrementalAssignment). A member that was removed from the group (its generation reset
   * by UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION) has lost its partitions either way: they are
   * dropped without a commit.
   */
  private async rebalance(): Promise<void> {
    if (this.cooperative) {
      if (this.generationId < 0 && this.partitions.size > 0) {
        const lost = this.assignment();
        this.partitions.clear();
        this.emit('revoked', lost);
      }
      await this.joinAndSync();
      await this.initPositions();
      return;
    }
    const revoked = this.assignment();
    if (this.generationId >= 0 && this.groupId !== null && this.commitOnRevoke && this.commitStrategy !== 'before') {
      await this.commit().catch((e) => this.emit('commitError', e));
    }
    this.emit('revoked', revoked);
    this.partitions.clear();
    await this.joinAndSync();
    await this.initPositions();
  }

  // -------------------------------------------------------------------------------- offsets

  /** Committed offsets for the new partitions, then autoOffsetReset for those without one. */
  private async initPositions(): Promise<void> {
    const unknown = [...this.partitions.values()].filter((s) => s.fetchOffset < 0 && s.pendingTimestamp === null);
    if (unknown.length > 0 && this.groupId !== null) {
      const groupId = this.groupId;
      const byTopic = new Map<string, number[]>();
      for (const s of unknown) {
        let l = byTopic.get(s.topic);
        if (l === undefined) byTopic.set(s.topic, (l = []));
        l.push(s.partition);
      }
      const resp = await this.fetchCommittedOffsets(groupId, [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })));
      for (const t of resp.topics) {
        for (const p of t.partitions) {
          const s = this.partitions.get(key(t.name, p.partitionIndex));
          if (s && p.committedOffset >= 0) {
            s.fetchOffset = s.position = s.committed = p.committedOffset;
          }
        }
      }
    }
    const rest = [...this.partitions.values()].filter((s) => s.fetchOffset < 0 && s.pendingTimestamp === null);
    if (rest.length > 0) {
      if (this.autoOffsetReset === 'none') throw new StrandError('NO_OFFSET', `no committed offset for ${rest.map((s) => `${s.topic}-${s.partition}`).join(', ')}`);
      await this.resolveOffsets(rest, this.autoOffsetReset === 'earliest' ? -2 : -1);
    }
    const timed = [...this.partitions.values()].filter((s) => s.pendingTimestamp !== null);
    for (const s of timed) await this.resolveOffsets([s], s.pendingTimestamp!);
  }

  /**
   * OffsetFetch with require_stable: while a transaction has offsets of the group pending, the
   * broker answers UNSTABLE_OFFSET_COMMIT; that is retried (with backoff, for up to
   * `rebalanceTimeoutMs`) until the transaction ends, so a consumer never starts from an offset a
   * transaction is about to move.
   */
  private async fetchCommittedOffsets(groupId: string, topics: Array<{ name: string; partitionIndexes: number[] }>): Promise<OffsetFetchResponse> {
    const deadline = Date.now() + this.rebalanceTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const resp = await this.groupRequest('OffsetFetch', async (c) => {
        const r = await c.request(OffsetFetchApi, { groupId, topics, groups: [], requireStable: true });
        if (r.errorCode !== 0 && r.errorCode !== ErrorCode.UNSTABLE_OFFSET_COMMIT) throw new KafkaError(r.errorCode, `OffsetFetch ${groupId}`);
        return r;
      });
      let code = resp.errorCode;
      for (const t of resp.topics) for (const p of t.partitions) if (code === 0 && p.errorCode !== 0) code = p.errorCode;
      if (code === 0) return resp;
      if (code !== ErrorCode.UNSTABLE_OFFSET_COMMIT || Date.now() > deadline || this.stopping) throw new KafkaError(code, `OffsetFetch ${groupId}`);
      this.cluster.logger.debug('offsets pending in a transaction; fetching them again', { groupId, attempt });
      await sleep(backoffMs(Math.min(attempt, 5), 50, 1000));
    }
  }

  /** ListOffsets for partitions (timestamp -2 earliest, -1 latest, else the first offset at/after it). */
  private async resolveOffsets(states: PartitionState[], timestamp: number): Promise<void> {
    await this.cluster.withRetry('ListOffsets', async () => {
      for (const s of states) {
        const info = await this.cluster.topic(s.topic);
        const leader = info.partitions[s.partition]?.leader ?? -1;
        if (leader < 0) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `${s.topic}-${s.partition}`);
        const conn = await this.cluster.connection(leader);
        const r = await conn.request(ListOffsetsApi, {
          replicaId: -1,
          isolationLevel: this.isolationLevel,
          timeoutMs: 30000,
          topics: [{ name: s.topic, partitions: [{ partitionIndex: s.partition, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }],
        });
        const p = r.topics[0]?.partitions[0];
        if (p === undefined) throw new StrandError('CORRUPT_RESPONSE', 'empty ListOffsets response', { retriable: true });
        if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `ListOffsets ${s.topic}-${s.partition}`);
        let offset = p.offset;
        if (offset < 0) {
          // No record at/after the timestamp: the end of the log.
          const end = await conn.request(ListOffsetsApi, {
            replicaId: -1,
            isolationLevel: this.isolationLevel,
            timeoutMs: 30000,
            topics: [{ name: s.topic, partitions: [{ partitionIndex: s.partition, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }],
          });
          offset = end.topics[0]?.partitions[0]?.offset ?? 0;
        }
        s.fetchOffset = s.position = offset;
        s.pendingTimestamp = null;
      }
    });
  }

  // ------------------------------------------------------------------------------- fetching

  private async fetchLoop(handlers: RunOptions<K, V>): Promise<void> {
    let prefetch: Promise<FetchedPartition[]> | null = null;
    while (this.running) {
      if (this.needRejoin && !this.manual) {
        if (prefetch) await this.dropFetched(prefetch);
        prefetch = null;
        await this.rebalance();
        continue;
      }
      if ([...this.partitions.values()].some((s) => s.pendingTimestamp !== null)) {
        if (prefetch) await this.dropFetched(prefetch);
        prefetch = null;
        await this.initPositions();
      }
      const current = prefetch ?? this.fetchOnce();
      let fetched: FetchedPartition[];
      try {
        fetched = await current;
      } catch (e) {
        prefetch = null;
        if (e instanceof StrandError && e.retriable) {
          if (e.needsMetadataRefresh) await this.cluster.refreshMetadata().catch(() => {});
          await sleep(100);
          continue;
        }
        throw e;
      }
      prefetch = this.running && !this.needRejoin ? this.fetchOnce() : null;
      prefetch?.catch(() => {});
      await this.process(fetched, handlers);
    }
    if (prefetch) await prefetch.catch(() => {});
  }

  /**
   * Discards a prefetch that will not be handed out. Fetching moved each partition's fetch offset
   * past the data; partitions kept across the rebalance (cooperative) would otherwise skip it, so
   * they fetch again from their position.
   */
  private async dropFetched(prefetch: Promise<FetchedPartition[]>): Promise<void> {
    const dropped = await prefetch.catch((): FetchedPartition[] => []);
    for (const f of dropped) {
      if (f.state.epoch === f.epoch) {
        f.state.epoch++;
        f.state.fetchOffset = f.state.position;
      }
    }
  }

  private async fetchOnce(): Promise<FetchedPartition[]> {
    const fetchable = [...this.partitions.values()].filter((s) => !s.paused && s.fetchOffset >= 0 && s.pendingTimestamp === null);
    // Partitions whose leader is not known yet (first fetch, or after a leader change): one
    // metadata refresh for all of them, then fetch from the leaders it names.
    const leaderless = new Set(fetchable.filter((s) => this.cluster.leaderOf(s.topic, s.partition) < 0).map((s) => s.topic));
    if (leaderless.size > 0) await this.cluster.refreshMetadata([...leaderless]).catch(() => {});
    const byLeader = new Map<number, PartitionState[]>();
    for (const s of fetchable) {
      const leader = this.cluster.leaderOf(s.topic, s.partition);
      if (leader < 0) continue;
      let l = byLeader.get(leader);
      if (l === undefined) byLeader.set(leader, (l = []));
      l.push(s);
    }
    if (byLeader.size === 0) {
      await sleep(Math.min(100, this.maxWaitMs));
      return [];
    }
    const results = await Promise.all([...byLeader].map(([leader, states]) => this.fetchFrom(leader, states)));
    return results.flat();
  }

  private async fetchFrom(leader: number, states: PartitionState[]): Promise<FetchedPartition[]> {
    const conn = await this.cluster.connection(leader, 'fetch');
    const epochs = states.map((s) => ({ s, epoch: s.epoch, offset: s.fetchOffset }));
    const byTopic = new Map<string, Array<{ partition: number; currentLeaderEpoch: number; fetchOffset: number; lastFetchedEpoch: number; logStartOffset: number; partitionMaxBytes: number; replicaDirectoryId: string }>>();
    for (const s of states) {
      let l = byTopic.get(s.topic);
      if (l === undefined) byTopic.set(s.topic, (l = []));
      l.push({ partition: s.partition, currentLeaderEpoch: -1, fetchOffset: s.fetchOffset, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: this.maxPartitionBytes, replicaDirectoryId: ZERO_UUID });
    }
    const resp: FetchResponse = await conn.request(
      FetchApi,
      {
        clusterId: null,
        replicaId: -1,
        replicaState: { replicaId: -1, replicaEpoch: -1 },
        maxWaitMs: this.maxWaitMs,
        minBytes: this.minBytes,
        maxBytes: this.maxBytes,
        isolationLevel: this.isolationLevel,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, topicId: ZERO_UUID, partitions })),
        forgottenTopicsData: [],
        rackId: '',
      },
      { extraTimeoutMs: this.maxWaitMs },
    );
    if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, 'Fetch');
    const out: FetchedPartition[] = [];
    for (const t of resp.responses) {
      for (const p of t.partitions) {
        const e = epochs.find((x) => x.s.topic === t.topic && x.s.partition === p.partitionIndex);
        if (e === undefined || e.s.epoch !== e.epoch || this.partitions.get(key(t.topic, p.partitionIndex)) !== e.s) continue;
        const f = await this.partitionResult(e.s, e.offset, p);
        if (f) out.push(f);
      }
    }
    return out;
  }

  private async partitionResult(s: PartitionState, fetchOffset: number, p: FetchResponsePartitionData): Promise<FetchedPartition | null> {
    if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
      if (this.autoOffsetReset === 'none') throw new KafkaError(p.errorCode, `${s.topic}-${s.partition} at ${fetchOffset}`);
      s.epoch++;
      await this.resolveOffsets([s], this.autoOffsetReset === 'earliest' ? -2 : -1);
      return null;
    }
    if (p.errorCode !== 0) {
      const e = new KafkaError(p.errorCode, `Fetch ${s.topic}-${s.partition}`);
      if (e.needsMetadataRefresh) void this.cluster.refreshMetadata([s.topic]).catch(() => {});
      if (e.retriable) return null;
      throw e;
    }
    s.highWatermark = p.highWatermark;
    const records = recordsInMemory(p.records);
    if (records === null || records.length === 0) return null;
    const batches = decodeRecordBatches(records);
    const aborted = this.isolationLevel === 1 && p.abortedTransactions ? [...p.abortedTransactions].sort((a, b) => a.firstOffset - b.firstOffset) : [];
    const abortedProducers = new Set<number>();
    const messages: ConsumerMessage<any, any>[] = [];
    let next = fetchOffset;
    for (const b of batches) {
      const h = b.header;
      const last = h.baseOffset + h.lastOffsetDelta;
      while (aborted.length > 0 && aborted[0]!.firstOffset <= last) abortedProducers.add(aborted.shift()!.producerId);
      if (isControlBatch(h)) {
        abortedProducers.delete(h.producerId);
        next = Math.max(next, last + 1);
        continue;
      }
      if (isTransactional(h) && abortedProducers.has(h.producerId)) {
        next = Math.max(next, last + 1);
        continue;
      }
      for (const r of b.records) {
        const offset = h.baseOffset + r.offsetDelta;
        if (offset < fetchOffset) continue;
        messages.push({
          topic: s.topic,
          partition: s.partition,
          offset,
          timestamp: h.attributes & 8 ? h.maxTimestamp : h.baseTimestamp + r.timestampDelta,
          key: this.keyDeserializer ? this.keyDeserializer.deserialize(r.key, s.topic) : r.key,
          value: this.valueDeserializer ? this.valueDeserializer.deserialize(r.value, s.topic) : r.value,
          headers: r.headers,
          rawKey: r.key,
          rawValue: r.value,
        });
      }
      next = Math.max(next, last + 1);
    }
    if (next === fetchOffset) return null;
    s.fetchOffset = next;
    return { state: s, epoch: s.epoch, messages, highWatermark: p.highWatermark, nextFetchOffset: next };
  }

  // ------------------------------------------------------------------------------- handling

  private async process(fetched: FetchedPartition[], handlers: RunOptions<K, V>): Promise<void> {
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < fetched.length && this.running && !this.needRejoin) {
        const f = fetched[i++]!;
        if (f.state.epoch !== f.epoch || this.partitions.get(key(f.state.topic, f.state.partition)) !== f.state) continue;
        await this.processPartition(f, handlers);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, fetched.length) }, worker));
    // Data not handled (stopped, rebalance, seek) is fetched again from the position.
    for (const f of fetched) {
      if (f.state.epoch === f.epoch && f.state.position < f.nextFetchOffset && (!this.running || this.needRejoin)) {
        f.state.epoch++;
        f.state.fetchOffset = f.state.position;
      }
    }
  }

  /** The fetched data still belongs to the partition's current assignment and position epoch. */
  private isCurrent(f: FetchedPartition): boolean {
    return f.state.epoch === f.epoch && this.partitions.get(key(f.state.topic, f.state.partition)) === f.state;
  }

  /** ... and the consumer is still running, so more of it may be handed out. */
  private stillCurrent(f: FetchedPartition): boolean {
    return this.running && this.isCurrent(f);
  }

  private async processPartition(f: FetchedPartition, handlers: RunOptions<K, V>): Promise<void> {
    const s = f.state;
    const msgs = f.messages.filter((m) => m.offset >= s.position);
    if (this.commitStrategy === 'before' && this.groupId !== null) {
      await this.commitOffsets([{ topic: s.topic, partition: s.partition, offset: f.nextFetchOffset }]);
    }
    const heartbeat = (): Promise<void> => this.heartbeat();
    if (handlers.eachBatch) {
      let from = 0;
      while (from < msgs.length && this.stillCurrent(f)) {
        let resolved = -1;
        const batchMsgs = msgs.slice(from);
        const ok = await this.withRetries(batchMsgs[0]!, async () =>
          handlers.eachBatch!({
            batch: { topic: s.topic, partition: s.partition, messages: batchMsgs, highWatermark: f.highWatermark },
            resolveOffset: (o) => {
              resolved = Math.max(resolved, o);
              s.position = Math.max(s.position, o + 1);
            },
            heartbeat,
            isRunning: () => this.stillCurrent(f),
          }),
          () => this.isCurrent(f),
        );
        if (ok === null) return;
        if (ok) {
          if (this.isCurrent(f)) s.position = Math.max(s.position, f.nextFetchOffset);
          break;
        }
        // The first unresolved message was skipped or dead-lettered; go on after it.
        const failedAt = batchMsgs.findIndex((m) => m.offset > resolved);
        from += failedAt < 0 ? batchMsgs.length : failedAt + 1;
        s.position = Math.max(s.position, (msgs[from - 1]?.offset ?? s.position - 1) + 1);
      }
      if (this.commitStrategy === 'batch' && this.stillCurrent(f)) await this.commit();
    } else {
      for (const m of msgs) {
        if (!this.stillCurrent(f)) return;
        const ok = await this.withRetries(m, async () => handlers.eachMessage!({ message: m as ConsumerMessage<K, V>, topic: s.topic, partition: s.partition, heartbeat }), () => this.isCurrent(f));
        if (ok === null || !this.isCurrent(f)) return;
        s.position = m.offset + 1;
        if (this.commitStrategy === 'message') await this.commit();
      }
      if (this.stillCurrent(f)) s.position = Math.max(s.position, f.nextFetchOffset);
      if (this.commitStrategy === 'batch' && this.stillCurrent(f)) await this.commit();
    }
  }

  /**
   * Runs a handler with the retry policy; returns true on success, false when the record was
   * skipped or dead-lettered, null when it failed after its partition was taken away or sought
   * (`current` false): then it is neither retried nor skipped — whoever reads the partition next
   * gets it again from the committed or sought offset.
   */
  private async withRetries(m: ConsumerMessage<any, any>, fn: () => Promise<void> | void, current: () => boolean): Promise<boolean | null> {
    let attempt = 0;
    for (;;) {
      try {
        await fn();
        return true;
      } catch (e) {
        attempt++;
        const retriable = this.retry.retryOn ? this.retry.retryOn(e) : true;
        if (retriable && attempt <= this.retry.retries && this.running && current()) {
          if (channels.retry.hasSubscribers) channels.retry.publish({ what: 'handler', topic: m.topic, partition: m.partition, offset: m.offset, attempt, error: e });
          this.emit('retry', { message: m, attempt, error: e });
          await sleep(backoffMs(attempt, this.retry.initialBackoffMs, this.retry.maxBackoffMs));
          continue;
        }
        if (!this.running) throw e;
        if (!current()) return null;
        if (this.onFailure === 'fail') throw e;
        if (this.onFailure === 'deadLetter') await this.deadLetter(m, e, attempt);
        else this.emit('skip', { message: m, attempts: attempt, error: e });
        return false;
      }
    }
  }

  private async deadLetter(m: ConsumerMessage<any, any>, error: unknown, attempts: number): Promise<void> {
    if (this.dlqProducer === null) {
      if (this.kafka === null) throw new StrandError('INVALID_CONFIG', 'dead-lettering needs a consumer created by Kafka.consumer()');
      this.dlqProducer = this.kafka.producer<Buffer | null, Buffer | null>({ lingerMs: 0, acks: -1 });
    }
    const topic = this.deadLetterTopic(m.topic);
    const headers: Array<[string, Buffer | string | null]> = m.headers.map((h) => [h.key, h.value]);
    headers.push(
      [DLT_HEADERS.topic, m.topic],
      [DLT_HEADERS.partition, String(m.partition)],
      [DLT_HEADERS.offset, String(m.offset)],
      [DLT_HEADERS.error, error instanceof Error ? error.message : String(error)],
      [DLT_HEADERS.attempts, String(attempts)],
      [DLT_HEADERS.timestamp, String(m.timestamp)],
    );
    await this.dlqProducer.send({ topic, key: m.rawKey, value: m.rawValue, headers });
    if (channels.deadLetter.hasSubscribers) channels.deadLetter.publish({ topic: m.topic, partition: m.partition, offset: m.offset, deadLetterTopic: topic, error });
    this.emit('deadLetter', { message: m, topic, attempts, error });
  }
}
