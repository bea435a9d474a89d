/**
 * PartitionLog: one partition's log on local disk (Kafka's UnifiedLog + LocalLog).
 *
 * Behaviour:
 *  - Appends are serialized per log in call order through one writer queue. Queued appends are
 *    written as a group with one writev (up to MAX_GROUP_BYTES / MAX_IOVECS); offsets are assigned
 *    when the group forms; `logEndOffset` and the high watermark only move when the write lands,
 *    so readers never see bytes in flight.
 *  - A batch is stored byte-for-byte; storage rewrites only baseOffset and partitionLeaderEpoch in
 *    place, in the caller's buffer (neither is covered by the CRC).
 *  - Roll (a new active segment) when the next append would overflow segment.bytes, segment.ms has
 *    passed since the active segment's first append, an index is full, or a relative offset would
 *    overflow. The old segment is fsynced (log and indexes) in the background while the new one
 *    takes writes (as Kafka), one rolled segment at a time; its end then becomes the recovery
 *    point, checkpointed in `recovery-point` for the loader.
 *  - flush() is a group commit: one fdatasync of the active segment at a time (after the rolled
 *    segment's, if that still runs); callers arriving while one runs share the next one, which
 *    starts when the running one ends.
 *  - flush.messages: when the unflushed count reaches it, the appends of that group resolve only
 *    after an fsync. flush.ms is driven from outside (LogManager calls flushIfDue).
 *  - Operations that change the segment list (truncate, retention, DeleteRecords, close) run as
 *    exclusive tasks in the writer queue. Deleted segment files are unlinked at once; the fd is
 *    closed when the last in-flight read or fsync releases it (so file.delete.delay.ms is not used).
 *  - Reads are not queued: they look up the segment list synchronously and hold a reference.
 *  - Producer state (producer-state.ts): each batch with a producer id is checked when its group
 *    forms, in queue order, so a retried batch is recognised even while the original is in
 *    flight. A duplicate is answered with the original offsets (after the group's write) and not
 *    written; a refused batch rejects its append with a ProducerStateError. An append carrying
 *    a producer id holds exactly one batch. State is snapshotted on roll and close and rebuilt on
 *    open from the newest snapshot plus a replay of the batches after it.
 *  - lastStableOffset = min(high watermark, first offset of the earliest open transaction).
 *  - Replication (leader-epoch-cache.ts): `leaderEpochCache` records the first offset of every
 *    leader epoch; a leader append assigns its epoch when it is newer than the latest one, and the
 *    checkpoint file is written before the first batch of that epoch. appendAsFollower stores a
 *    leader's batches as they are (offsets, epochs) through the same queue. Truncation truncates
 *    the cache and rebuilds producer state; a moved log start truncates the cache from the start.
 *  - High watermark: on one broker (`autoAdvanceHighWatermark`, the default) it follows the log
 *    end offset. A replicated partition turns that off and drives it with updateHighWatermark
 *    (forward only); it then starts from the `replication-offset-checkpoint` value LogManager read
 *    (or the log start offset), as Kafka's does, not from the log end offset.
 */
import { FileRecords } from './file-records.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  BATCH_LENGTH_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAGIC_V2,
  MAX_TIMESTAMP_OFFSET,
  MIN_BATCH_LENGTH,
  PARTITION_LEADER_EPOCH_OFFSET,
  RECORD_BATCH_HEADER_SIZE,
  readInt64,
  writeInt64,
} from './batch-layout.js';
import { readRecoveryPoint, writeLogStartOffset, writeRecoveryPoint } from './checkpoint.js';
import { LogClosedError, OffsetOutOfRangeError, StorageError } from './errors.js';
import { MAX_IOVECS } from './file-io.js';
import { loadLog } from './log-loader.js';
import { LogSegment, type BatchHeader } from './log-segment.js';
import { noopLogger, type Logger } from './logger.js';
import { PRODUCER_ID_OFFSET } from './batch-layout.js';
import { ProducerStateManager, producerBatchInfo, type AbortedTxn, type AppendOrigin } from './producer-state.js';
import { LeaderEpochFileCache, readLeaderEpochCheckpoint } from './leader-epoch-cache.js';
import { crc32c } from '@node-rs/crc32';
import { CRC_OFFSET, CRC_START } from './batch-layout.js';

export interface LogConfig {
  /** segment.bytes */
  segmentBytes: number;
  /** segment.ms */
  segmentMs: number;
  /** segment.index.bytes: an index this large is full and the segment rolls */
  segmentIndexBytes: number;
  /** index.interval.bytes */
  indexIntervalBytes: number;
  /** retention.ms, -1 = unlimited */
  retentionMs: number;
  /** retention.bytes, -1 = unlimited */
  retentionBytes: number;
  /** flush.messages */
  flushMessages: number;
  /** flush.ms */
  flushMs: number;
  /** file.delete.delay.ms — accepted but unused: files are unlinked at once, fds closed when idle */
  fileDeleteDelayMs: number;
  /** cleanup.policy contains `delete`: retention.ms / retention.bytes apply (Kafka skips them otherwise) */
  cleanupDelete: boolean;
  /** cleanup.policy contains `compact`: the log cleaner (log-cleaner.ts) compacts the closed segments */
  cleanupCompact: boolean;
  /** min.cleanable.dirty.ratio */
  minCleanableDirtyRatio: number;
  /** min.compaction.lag.ms */
  minCompactionLagMs: number;
  /** max.compaction.lag.ms */
  maxCompactionLagMs: number;
  /** delete.retention.ms: how long a tombstone (or an empty transaction's marker) outlives its first cleaning */
  deleteRetentionMs: number;
}

export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = Object.freeze({
  segmentBytes: 1073741824,
  segmentMs: 604800000,
  segmentIndexBytes: 10485760,
  indexIntervalBytes: 4096,
  retentionMs: 604800000,
  retentionBytes: -1,
  flushMessages: Number.MAX_SAFE_INTEGER,
  flushMs: Number.MAX_SAFE_INTEGER,
  fileDeleteDelayMs: 60000,
  cleanupDelete: true,
  cleanupCompact: false,
  minCleanableDirtyRatio: 0.5,
  minCompactionLagMs: 0,
  maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
  deleteRetentionMs: 86400000,
});

export interface AppendResult {
  firstOffset: number;
  lastOffset: number;
  /** Largest batch maxTimestamp in the append (-1 if none). */
  maxTimestamp: number;
  /** Base offset of the first batch holding maxTimestamp. */
  offsetOfMaxTimestamp: number;
  /** True when the batch duplicated one of its producer's last five: nothing was written. */
  duplicate?: boolean;
}

export interface OpenOptions {
  cleanShutdown: boolean;
  /**
   * The partition's high watermark from `replication-offset-checkpoint` (LogManager reads it), if
   * it has one: where a replicated partition's high watermark starts after a restart.
   */
  checkpointedHighWatermark?: number;
  clock?: () => number;
  logger?: Logger;
}

/** Most bytes one writev carries. */
const MAX_GROUP_BYTES = 16 * 1024 * 1024;

interface AppendOp {
  kind: 'append';
  buf: Buffer;
  leaderEpoch: number;
  records: number;
  origin: AppendOrigin;
  /** A follower append (appendAsFollower): offsets as received, from `followerFirstOffset` to `followerLastOffset`. */
  follower: boolean;
  followerFirstOffset: number;
  followerLastOffset: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
  result: AppendResult | null;
}

interface TaskOp {
  kind: 'task';
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Op = AppendOp | TaskOp;

/** Reads at least this large are streamed from the segment file rather than copied into memory. */
export const FILE_RECORDS_MIN_BYTES = 256 * 1024;

export class PartitionLog {
  config: LogConfig;
  /** The most recently queued append; flush() waits for it. */
  private lastAppend: Promise<unknown> = Promise.resolve();
  private segments: LogSegment[];
  private _logStartOffset: number;
  private _logEndOffset: number;
  private _highWatermark: number;
  /** Next offset to assign (>= logEndOffset; greater while a write is in flight). */
  private nextOffset: number;
  private maxTs: { timestamp: number; offset: number } | null = null;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private queue: Op[] = [];
  private queueHead = 0;
  private draining = false;
  private closed = false;
  private failure: StorageError | null = null;
  private unflushed = 0;
  /** Bumped by every truncation: an fsync that raced one does not move the recovery point. */
  private truncations = 0;
  /** Kafka's recovery point: every offset below it is on disk (fsynced). */
  private _recoveryPoint: number;
  private lastFlushMs: number;
  private fsyncRunning: Promise<void> | null = null;
  private fsyncNext: Promise<void> | null = null;
  /** The background fsync of the last rolled segment, while it runs (one at a time). */
  private rollFlush: Promise<void> | null = null;
  private rollFlushSegment: LogSegment | null = null;
  /** The `recovery-point` checkpoint as last written (null: not written by this log yet). */
  private checkpointedRecoveryPoint: number | null = null;
  private readonly groupBufs: Buffer[] = [];
  private readonly groupOps: AppendOp[] = [];
  /** Duplicates found while forming the current group: answered once its write has landed. */
  private readonly groupDuplicates: Array<{ op: AppendOp; result: AppendResult }> = [];
  /** Idempotent and transactional producers of this partition, open and aborted transactions. */
  readonly producerState: ProducerStateManager;
  /** The first offset of each leader epoch in this log (`leader-epoch-checkpoint`). */
  readonly leaderEpochCache: LeaderEpochFileCache;
  /**
   * The high watermark from `replication-offset-checkpoint`, clamped to [logStartOffset,
   * logEndOffset] (the log start offset when there was none). Used when the log stops following
   * its end offset before anything changed it (see autoAdvanceHighWatermark).
   */
  private pendingCheckpointHw: number | null;
  private _autoAdvanceHighWatermark = true;

  private constructor(
    readonly dir: string,
    readonly topic: string,
    readonly partition: number,
    config: LogConfig,
    segments: LogSegment[],
    logStartOffset: number,
    clock: () => number,
    logger: Logger,
    leaderEpochCache: LeaderEpochFileCache,
    checkpointedHighWatermark: number | undefined,
  ) {
    this.config = { ...config };
    this.segments = segments;
    this._logStartOffset = logStartOffset;
    this._logEndOffset = this.active.nextOffset;
    this.nextOffset = this._logEndOffset;
    this._highWatermark = this._logEndOffset;
    this.clock = clock;
    this.logger = logger;
    this.lastFlushMs = clock();
    // What open() found was closed cleanly (fsynced then) or validated and fsynced by the loader
    // after a crash (log-loader.ts): on disk.
    this._recoveryPoint = this._logEndOffset;
    this.recomputeMaxTimestamp();
    this.producerState = new ProducerStateManager(dir);
    this.leaderEpochCache = leaderEpochCache;
    this.pendingCheckpointHw = Math.min(Math.max(checkpointedHighWatermark ?? logStartOffset, logStartOffset), this._logEndOffset);
  }

  static async open(dir: string, topic: string, partition: number, config: LogConfig, opts: OpenOptions): Promise<PartitionLog> {
    const clock = opts.clock ?? Date.now;
    const logger = opts.logger ?? noopLogger;
    await fs.promises.mkdir(dir, { recursive: true });
    const loaded = await loadLog(dir, config, { cleanShutdown: opts.cleanShutdown, nowMs: clock(), logger });
    const epochs = await loadLeaderEpochCache(dir, loaded.segments, loaded.logStartOffset, logger);
    const log = new PartitionLog(dir, topic, partition, config, loaded.segments, loaded.logStartOffset, clock, logger, epochs, opts.checkpointedHighWatermark);
    await log.rebuildProducerState();
    logger.debug('opened log', {
      dir,
      segments: loaded.segments.length,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      recoveredBytes: loaded.recoveredBytes,
    });
    return log;
  }

  get logStartOffset(): number {
    return this._logStartOffset;
  }

  get logEndOffset(): number {
    return this._logEndOffset;
  }

  /**
   * Consumers read below it. On one broker it follows the log end offset; a replicated partition
   * drives it with updateHighWatermark.
   */
  get highWatermark(): number {
    return this._highWatermark;
  }

  /**
   * Sets the high watermark (clamped to [logStartOffset, logEndOffset]), up or down: Kafka's
   * updateHighWatermark, for initialising it. Replication moves it with updateHighWatermark.
   */
  setHighWatermark(offset: number): void {
    this.pendingCheckpointHw = null;
    this._highWatermark = Math.min(Math.max(offset, this._logStartOffset), this._logEndOffset);
  }

  /**
   * Moves the high watermark up to `offset` (clamped to the log end offset); never down — only
   * truncation (and a log start offset above it) lowers it. Returns the high watermark after the
   * call. The leader passes the smallest log end offset of its ISR; a follower the leader's.
   */
  updateHighWatermark(offset: number): number {
    assert(Number.isSafeInteger(offset), `bad high watermark ${offset}`);
    this.pendingCheckpointHw = null;
    const next = Math.min(offset, this._logEndOffset);
    if (next > this._highWatermark) this._highWatermark = next;
    return this._highWatermark;
  }

  /**
   * The last stable offset: below it every transaction is decided. read_committed consumers and
   * ListOffsets(latest, read_committed) stop here.
   */
  get lastStableOffset(): number {
    const unstable = this.producerState.firstUnstableOffset;
    return unstable === null ? this._highWatermark : Math.max(this._logStartOffset, Math.min(unstable, this._highWatermark));
  }

  /** Aborted transactions a read_committed fetch from `fetchOffset` up to `upperOffset` must be told about. */
  abortedTransactions(fetchOffset: number, upperOffset: number): AbortedTxn[] {
    return this.producerState.abortedTransactions(fetchOffset, upperOffset);
  }

  /** producer.id.expiration.ms: forgets idle producers with no open transaction. */
  removeExpiredProducers(nowMs: number, expirationMs: number): number {
    return this.producerState.removeExpired(nowMs, expirationMs);
  }

  /**
   * Whether appends move the high watermark along with the log end offset: true on one broker and
   * for a partition whose replica set is only this broker. Turning it off right after open (before
   * any append or truncation) starts the high watermark at the checkpointed one (see OpenOptions);
   * turning it off later keeps the current one. Turning it on moves it to the log end offset.
   */
  get autoAdvanceHighWatermark(): boolean {
    return this._autoAdvanceHighWatermark;
  }

  set autoAdvanceHighWatermark(on: boolean) {
    if (on === this._autoAdvanceHighWatermark) return;
    this._autoAdvanceHighWatermark = on;
    if (on) this._highWatermark = this._logEndOffset;
    else if (this.pendingCheckpointHw !== null) this._highWatermark = Math.min(Math.max(this.pendingCheckpointHw, this._logStartOffset), this._logEndOffset);
    this.pendingCheckpointHw = null;
  }

  get sizeInBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.size;
    return total;
  }

  get numberOfSegments(): number {
    return this.segments.length;
  }

  /** Messages appended since the last fsync began. */
  get unflushedMessages(): number {
    return this.unflushed;
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1]!;
  }

  // ---------------------------------------------------------------- append

  /**
   * Queues `batches` for appending. `origin` 'coordinator' is for the broker's own transactional
   * writes (markers, transactional offset commits): their sequences are not checked.
   */
  append(batches: Buffer, leaderEpoch: number, origin: AppendOrigin = 'client'): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new LogClosedError(`log ${this.dir} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    let records: number;
    try {
      records = checkBatches(batches);
    } catch (err) {
      return Promise.reject(err);
    }
    const appended = new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ kind: 'append', buf: batches, leaderEpoch, records, origin, follower: false, followerFirstOffset: -1, followerLastOffset: -1, resolve, reject, result: null });
      if (!this.draining) void this.drain();
    });
    this.lastAppend = appended;
    return appended;
  }

  /**
   * Queues a follower's append of batches fetched from the leader (Kafka's appendAsFollower):
   * stored as received — base offsets and partition leader epochs kept. Every batch's framing and
   * CRC-32C are checked and its offsets must increase (gaps are allowed: a compacted leader log
   * has them); when the append reaches the head of the queue its first offset must be at or
   * above the log end offset, else it is refused with a StorageError `UNEXPECTED_APPEND_OFFSET`
   * (the follower fetched from the wrong offset or raced a truncation). Producer state takes the
   * leader's batches without sequence checks; the epoch cache takes each newer epoch.
   */
  appendAsFollower(batches: Buffer): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new LogClosedError(`log ${this.dir} is closed`));
    if (this.failure) return Promise.reject(this.failure);
    let range: { records: number; firstOffset: number; lastOffset: number };
    try {
      range = checkFollowerBatches(batches);
    } catch (err) {
      return Promise.reject(err);
    }
    const appended = new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({
        kind: 'append',
        buf: batches,
        leaderEpoch: -1,
        records: range.records,
        origin: 'replication',
        follower: true,
        followerFirstOffset: range.firstOffset,
        followerLastOffset: range.lastOffset,
        resolve,
        reject,
        result: null,
      });
      if (!this.draining) void this.drain();
    });
    this.lastAppend = appended;
    return appended;
  }

  /**
   * Records that `leaderEpoch` starts at the current log end offset, if it is newer than the
   * latest epoch (Kafka does this when a replica becomes leader, so the previous epoch's end is
   * known even before the new leader appends). Queued behind the appends before it; resolves
   * once the checkpoint file is written.
   */
  assignEpochStartOffset(leaderEpoch: number): Promise<void> {
    assert(Number.isSafeInteger(leaderEpoch) && leaderEpoch >= 0, `bad leader epoch ${leaderEpoch}`);
    return this.runTask(async () => {
      this.leaderEpochCache.assign(leaderEpoch, this.nextOffset);
      await this.leaderEpochCache.flush();
    });
  }

  private runTask<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new LogClosedError(`log ${this.dir} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: 'task', run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private shiftOp(): Op {
    const op = this.queue[this.queueHead]!;
    this.queueHead++;
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return op;
  }

  private peekOp(): Op | undefined {
    return this.queue[this.queueHead];
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let op = this.peekOp(); op; op = this.peekOp()) {
        if (op.kind === 'task') {
          this.shiftOp();
          try {
            op.resolve(await op.run());
          } catch (err) {
            op.reject(err);
          }
          continue;
        }
        if (this.failure || this.closed) {
          this.shiftOp();
          op.reject(this.failure ?? new LogClosedError(`log ${this.dir} is closed`));
          continue;
        }
        try {
          await this.writeGroup();
        } catch (err) {
          // An invariant broke mid-group: stop taking writes rather than guess.
          this.fail(err);
          for (const op of this.groupOps) op.reject(this.failure);
          this.groupOps.length = 0;
        }
      }
    } finally {
      this.draining = false;
      this.queue.length = 0;
      this.queueHead = 0;
    }
  }

  /** Form one group of queued appends in the active segment, write it, settle its promises. */
  private async writeGroup(): Promise<void> {
    const nowMs = this.clock();
    const ops = this.groupOps;
    const bufs = this.groupBufs;
    ops.length = 0;
    bufs.length = 0;
    let bytes = 0;
    let records = 0;
    let seg = this.active;
    const position = seg.writeEnd;
    for (let op = this.peekOp(); op && op.kind === 'append'; op = this.peekOp()) {
      if (ops.length >= MAX_IOVECS || (ops.length > 0 && bytes + op.buf.length > MAX_GROUP_BYTES)) break;
      if (op.follower && op.followerFirstOffset < this.nextOffset) {
        this.shiftOp();
        op.reject(
          new StorageError(
            'UNEXPECTED_APPEND_OFFSET',
            `follower append at ${op.followerFirstOffset} is below the log end offset ${this.nextOffset} of ${this.topic}-${this.partition}`,
          ),
        );
        continue;
      }
      const lastOffset = op.follower ? op.followerLastOffset : this.nextOffset + op.records - 1;
      if (seg.shouldRoll(op.buf.length, lastOffset, nowMs, this.config.segmentBytes, this.config.segmentMs)) {
        if (ops.length > 0) break;
        try {
          await this.roll(nowMs);
        } catch (err) {
          this.fail(err);
          return;
        }
        seg = this.active;
        return this.writeGroup();
      }
      this.shiftOp();
      if (!op.follower && (readInt64(op.buf, PRODUCER_ID_OFFSET) >= 0 || op.buf.length > batchSizeAt(op.buf, 0))) {
        // Producer state is checked here, in queue order, against everything assigned before.
        let dup: AppendResult | null;
        try {
          dup = this.checkProducer(op);
        } catch (err) {
          op.reject(err);
          continue;
        }
        if (dup !== null) {
          this.groupDuplicates.push({ op, result: dup });
          continue;
        }
      }
      op.result = this.assignOffsets(seg, op, nowMs);
      ops.push(op);
      bufs.push(op.buf);
      bytes += op.buf.length;
      records += op.records;
    }
    if (ops.length === 0) {
      this.settleDuplicates();
      return;
    }
    try {
      // A new epoch is on disk in the checkpoint before any of its batches (see leader-epoch-cache.ts).
      if (this.leaderEpochCache.dirty) await this.leaderEpochCache.flush();
      await seg.write(bufs, position, bytes, nowMs);
      if (this.pendingTxnIndex.length > 0) {
        const entries = this.pendingTxnIndex.splice(0);
        await this.producerState.appendTxnIndex(seg.baseOffset, entries);
      }
    } catch (err) {
      this.fail(err);
      for (const op of ops) op.reject(this.failure);
      for (const d of this.groupDuplicates.splice(0)) d.op.reject(this.failure);
      return;
    }
    this.settleDuplicates();
    this._logEndOffset = seg.nextOffset;
    this.pendingCheckpointHw = null;
    if (this._autoAdvanceHighWatermark) this._highWatermark = this._logEndOffset;
    if (seg.maxTimestamp >= 0 && (this.maxTs === null || seg.maxTimestamp > this.maxTs.timestamp)) {
      this.maxTs = { timestamp: seg.maxTimestamp, offset: seg.offsetOfMaxTimestamp };
    }
    this.unflushed += records;
    if (this.unflushed >= this.config.flushMessages) {
      const done = ops.slice();
      this.groupFsync().then(
        () => {
          for (const op of done) op.resolve(op.result!);
        },
        (err) => {
          for (const op of done) op.reject(err);
        },
      );
    } else {
      for (const op of ops) op.resolve(op.result!);
    }
    ops.length = 0;
    bufs.length = 0;
  }

  private settleDuplicates(): void {
    for (const d of this.groupDuplicates.splice(0)) d.op.resolve(d.result);
  }

  /** Aborted-transaction entries assigned in the group being formed, for the segment's `.txnindex`. */
  private readonly pendingTxnIndex: AbortedTxn[] = [];

  /**
   * Checks an append's producer batch; throws ProducerStateError (refused) or returns the
   * original offsets of a duplicate, null when it is new.
   */
  private checkProducer(op: AppendOp): AppendResult | null {
    if (op.buf.length > batchSizeAt(op.buf, 0)) {
      for (let at = 0; at < op.buf.length; at += batchSizeAt(op.buf, at)) {
        if (readInt64(op.buf, at + PRODUCER_ID_OFFSET) >= 0) {
          throw new StorageError('INVALID_RECORD', 'an append with a producer id must hold exactly one batch');
        }
      }
      return null;
    }
    const v = this.producerState.check(producerBatchInfo(op.buf, 0), op.origin);
    if (v.kind === 'ok') return null;
    return { firstOffset: v.firstOffset, lastOffset: v.lastOffset, maxTimestamp: -1, offsetOfMaxTimestamp: v.firstOffset, duplicate: true };
  }

  private assignOffsets(seg: LogSegment, op: AppendOp, nowMs: number): AppendResult {
    if (op.follower) return this.placeFollowerBatches(seg, op, nowMs);
    const buf = op.buf;
    const firstOffset = this.nextOffset;
    if (op.leaderEpoch >= 0) this.leaderEpochCache.assign(op.leaderEpoch, firstOffset);
    let maxTimestamp = -1;
    let offsetOfMaxTimestamp = firstOffset;
    let at = 0;
    while (at < buf.length) {
      const size = buf.readInt32BE(at + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
      const baseOffset = this.nextOffset;
      const lastOffset = baseOffset + buf.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
      writeInt64(buf, at, baseOffset);
      buf.writeInt32BE(op.leaderEpoch, at + PARTITION_LEADER_EPOCH_OFFSET);
      const ts = this.placeBatch(seg, buf, at, size, baseOffset, lastOffset, nowMs);
      if (ts > maxTimestamp) {
        maxTimestamp = ts;
        offsetOfMaxTimestamp = baseOffset;
      }
      at += size;
    }
    return { firstOffset, lastOffset: this.nextOffset - 1, maxTimestamp, offsetOfMaxTimestamp };
  }

  /**
   * Records one batch placed at [baseOffset, lastOffset] in `seg`: its index entries, its
   * producer's state (and a finished aborted transaction for the `.txnindex`), the next offset.
   * Returns the batch's max timestamp.
   */
  private placeBatch(seg: LogSegment, buf: Buffer, at: number, size: number, baseOffset: number, lastOffset: number, nowMs: number): number {
    const ts = readInt64(buf, at + MAX_TIMESTAMP_OFFSET);
    seg.assignBatch(baseOffset, lastOffset, ts, size, nowMs);
    if (readInt64(buf, at + PRODUCER_ID_OFFSET) >= 0) {
      const done = this.producerState.apply(producerBatchInfo(buf, at), baseOffset, lastOffset, seg.baseOffset);
      if (done !== null && done.aborted) {
        const a = this.producerState.abortedTransactions(done.markerOffset, Number.MAX_SAFE_INTEGER).find((x) => x.lastOffset === done.markerOffset);
        if (a !== undefined) this.pendingTxnIndex.push(a);
      }
    }
    this.nextOffset = lastOffset + 1;
    return ts;
  }

  /** assignOffsets for a follower append: the batches keep their offsets and epochs. */
  private placeFollowerBatches(seg: LogSegment, op: AppendOp, nowMs: number): AppendResult {
    const buf = op.buf;
    let maxTimestamp = -1;
    let offsetOfMaxTimestamp = op.followerFirstOffset;
    for (let at = 0; at < buf.length; ) {
      const size = batchSizeAt(buf, at);
      const baseOffset = readInt64(buf, at);
      const lastOffset = baseOffset + buf.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
      assert(baseOffset >= this.nextOffset, `follower batch at ${baseOffset} below ${this.nextOffset}`);
      const epoch = buf.readInt32BE(at + PARTITION_LEADER_EPOCH_OFFSET);
      if (epoch >= 0) this.leaderEpochCache.assign(epoch, baseOffset);
      const ts = this.placeBatch(seg, buf, at, size, baseOffset, lastOffset, nowMs);
      if (ts > maxTimestamp) {
        maxTimestamp = ts;
        offsetOfMaxTimestamp = baseOffset;
      }
      at += size;
    }
    return { firstOffset: op.followerFirstOffset, lastOffset: op.followerLastOffset, maxTimestamp, offsetOfMaxTimestamp };
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = new StorageError('KAFKA_STORAGE_ERROR', `log ${this.dir} failed: ${(err as Error)?.message ?? err}`, { cause: err });
    this.logger.error('log failed; appends rejected until reopened', { dir: this.dir, error: String(err) });
  }

  /**
   * A new active segment. The old one is fsynced (log and indexes) in the background, as Kafka
   * does, so appends go on meanwhile instead of waiting for up to a segment's worth of write-back;
   * an fsync of the active segment (acks=all, flush.messages, flush.ms) waits for it first, and
   * the next roll waits for it, so at most one rolled segment is ever unsynced. When it is done,
   * the recovery point moves past the old segment, on disk (the `recovery-point` checkpoint) and
   * here.
   */
  private async roll(nowMs: number): Promise<void> {
    const old = this.active;
    assert(old.writeEnd === old.size, 'roll with a write in flight');
    await this.rolledSegmentSynced();
    if (this.failure) throw this.failure;
    const seg = await LogSegment.create(this.dir, this.nextOffset, this.config, nowMs);
    this.segments.push(seg);
    // Producer state as of the new segment's base offset: recovery replays only from here.
    await this.producerState.writeSnapshot(this.nextOffset);
    await this.producerState.pruneSnapshots(this.nextOffset);
    const flush = this.syncRolled(old).finally(() => {
      if (this.rollFlush !== flush) return;
      this.rollFlush = null;
      this.rollFlushSegment = null;
    });
    this.rollFlush = flush;
    this.rollFlushSegment = old;
    this.logger.debug('rolled segment', { dir: this.dir, baseOffset: seg.baseOffset });
  }

  /**
   * Fsyncs a rolled segment and moves the recovery point past it; a failure fails the log.
   * Truncations wait for this (rolledSegmentSynced), so the target still stands when it is written.
   */
  private async syncRolled(old: LogSegment): Promise<void> {
    const target = old.nextOffset;
    if (!old.acquire()) return; // deleted meanwhile (retention): nothing left to sync
    try {
      await old.flushAll();
      await writeRecoveryPoint(this.dir, target);
      this.checkpointedRecoveryPoint = target;
      this._recoveryPoint = Math.max(this._recoveryPoint, target);
    } catch (err) {
      this.fail(err);
    } finally {
      old.release();
    }
  }

  /** Resolves when no rolled segment is waiting for its fsync. */
  private async rolledSegmentSynced(): Promise<void> {
    while (this.rollFlush !== null) await this.rollFlush;
  }

  /** Before segments' files go: let the rolled segment's fsync finish if it is one of them (it writes its indexes by path). */
  private async beforeRemoving(segs: readonly LogSegment[]): Promise<void> {
    if (this.rollFlushSegment !== null && segs.includes(this.rollFlushSegment)) await this.rolledSegmentSynced();
  }

  /**
   * After a truncation to the log end: no segment may end at or below the checkpointed recovery
   * point while holding data that was never synced, so the checkpoint comes down first.
   */
  private async lowerRecoveryPointCheckpoint(): Promise<void> {
    const onDisk = this.checkpointedRecoveryPoint ?? (await readRecoveryPoint(this.dir));
    if (onDisk !== null && onDisk > this._logEndOffset) {
      await writeRecoveryPoint(this.dir, this._logEndOffset);
      this.checkpointedRecoveryPoint = this._logEndOffset;
    }
  }

  // ---------------------------------------------------------------- flush

  /** Resolves when everything appended before the call is fsynced. */
  async flush(): Promise<void> {
    // Wait for the appends queued before this call (not a barrier in the queue: later appends
    // keep grouping into one write), then join the group fsync.
    await this.lastAppend.catch(() => undefined);
    await this.groupFsync();
  }

  /** flush.ms: flush if something is unflushed and flushMs has passed since the last flush. */
  async flushIfDue(nowMs: number): Promise<void> {
    if (this.unflushed > 0 && nowMs - this.lastFlushMs >= this.config.flushMs) await this.flush();
  }

  private groupFsync(): Promise<void> {
    if (!this.fsyncRunning) {
      this.fsyncRunning = this.fsyncActive().finally(() => {
        this.fsyncRunning = null;
      });
      return this.fsyncRunning;
    }
    if (!this.fsyncNext) {
      this.fsyncNext = this.fsyncRunning
        .catch(() => {})
        .then(() => {
          this.fsyncNext = null;
          return this.groupFsync();
        });
    }
    return this.fsyncNext;
  }

  private async fsyncActive(): Promise<void> {
    // Older segments are fsynced when they roll (in the background): wait for the last one.
    await this.rolledSegmentSynced();
    const seg = this.active;
    const covered = this.unflushed;
    const target = this._logEndOffset;
    const truncations = this.truncations;
    if (!seg.acquire()) return; // closing: close() fsyncs
    try {
      await seg.fsync();
    } finally {
      seg.release();
    }
    this.unflushed = Math.max(0, this.unflushed - covered);
    this.lastFlushMs = this.clock();
    if (seg === this.active && truncations === this.truncations) this._recoveryPoint = Math.max(this._recoveryPoint, target);
  }

  /**
   * Every offset below this is fsynced (Kafka's recovery point). A leader that answers acks=all
   * only once records are on disk (strand.acks.all.fsync) counts its own log up to here, not its
   * log end, towards the high watermark, so a power loss never takes back an offset consumers saw.
   */
  get recoveryPoint(): number {
    return this._recoveryPoint;
  }

  // ---------------------------------------------------------------- read

  /** Index of the segment holding `offset` (last one with baseOffset <= offset). */
  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * The first batch holding an offset ≥ `fetchOffset` below `maxOffset`, with its segment
   * acquired (the caller releases it); null when there is nothing to read there.
   */
  private async locate(fetchOffset: number, maxOffset: number): Promise<{ seg: LogSegment; first: BatchHeader; limit: number; limitOffset: number } | null> {
    if (this.closed) throw new LogClosedError(`log ${this.dir} is closed`);
    if (fetchOffset < this._logStartOffset || fetchOffset > this._logEndOffset) {
      throw new OffsetOutOfRangeError(
        `offset ${fetchOffset} out of range [${this._logStartOffset}, ${this._logEndOffset}] for ${this.topic}-${this.partition}`,
      );
    }
    const limitOffset = Math.min(maxOffset, this._logEndOffset);
    if (fetchOffset >= limitOffset) return null;
    for (let i = this.segmentIndexFor(fetchOffset); i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      if (!seg.acquire()) continue;
      let found = false;
      try {
        const limit = seg.size;
        const first = await seg.findBatch(fetchOffset, limit);
        if (first === null || first.lastOffset >= limitOffset) {
          if (first !== null) return null;
          continue;
        }
        found = true;
        return { seg, first, limit, limitOffset };
      } finally {
        if (!found) seg.release();
      }
    }
    return null;
  }

  async read(fetchOffset: number, maxBytes: number, maxOffset: number, minOneBatch: boolean): Promise<Buffer> {
    const at = await this.locate(fetchOffset, maxOffset);
    if (at === null) return EMPTY;
    try {
      return await readFrom(at.seg, at.first, at.limit, maxBytes, at.limitOffset, minOneBatch);
    } finally {
      at.seg.release();
    }
  }

  /**
   * Like read(), but a result of at least FILE_RECORDS_MIN_BYTES comes back as a FileRecords
   * slice of the segment for the caller to stream and then release, instead of a copy in memory.
   * Where `maxBytes` cuts a batch, the slice ends at the last batch boundary the offset index
   * knows before the cut; only when it knows none does it end inside that batch (Fetch allows a
   * partial trailing batch and clients drop it, as with Kafka's sendfile). With `minOneBatch`
   * the first batch is always whole.
   */
  async readRecords(fetchOffset: number, maxBytes: number, maxOffset: number, minOneBatch: boolean): Promise<Buffer | FileRecords> {
    const at = await this.locate(fetchOffset, maxOffset);
    if (at === null) return EMPTY;
    const { seg, first, limit, limitOffset } = at;
    let handedOver = false;
    try {
      let end = limit;
      if (limitOffset < seg.nextOffset) {
        const stop = await seg.findBatch(limitOffset, limit);
        if (stop) end = stop.position;
      }
      let size = Math.min(end - first.position, maxBytes);
      if (first.size > maxBytes) {
        if (!minOneBatch) return EMPTY;
        size = first.size;
      } else if (size < end - first.position) {
        // maxBytes ends the slice inside a batch, which the client would drop and fetch again next
        // time. End it instead where the last whole batch the offset index knows ends (a batch
        // start at most index.interval.bytes of batches before the cut); without one, keep Kafka's
        // partial trailing batch.
        const boundary = seg.indexedBatchStartAtOrBefore(first.position + size);
        if (boundary > first.position) size = boundary - first.position;
      }
      // Small: copied into memory, no more than the slice (readFrom keeps its whole batches).
      if (size < FILE_RECORDS_MIN_BYTES) return await readFrom(seg, first, limit, size, limitOffset, minOneBatch);
      handedOver = true;
      return new FileRecords(seg, first.position, size);
    } finally {
      if (!handedOver) seg.release();
    }
  }

  async findBatchByTimestamp(timestampMs: number): Promise<{ batch: Buffer; baseOffset: number } | null> {
    if (this.closed) throw new LogClosedError(`log ${this.dir} is closed`);
    const segments = this.segments.slice();
    for (const seg of segments) {
      if (seg.nextOffset <= this._logStartOffset || seg.maxTimestamp < timestampMs) continue;
      if (!seg.acquire()) continue;
      try {
        const h = await seg.findBatchByTimestamp(timestampMs, this._logStartOffset);
        if (!h || h.baseOffset >= this._highWatermark) {
          if (h) return null;
          continue;
        }
        const batch = Buffer.allocUnsafe(h.size);
        const n = await seg.readBytesCachedFirst(batch, 0, h.size, h.position);
        if (n < h.size) return null;
        return { batch, baseOffset: h.baseOffset };
      } finally {
        seg.release();
      }
    }
    return null;
  }

  maxTimestampAndOffset(): { timestamp: number; offset: number } | null {
    return this.maxTs ? { ...this.maxTs } : null;
  }

  private recomputeMaxTimestamp(): void {
    this.maxTs = null;
    for (const s of this.segments) {
      if (s.maxTimestamp >= 0 && (this.maxTs === null || s.maxTimestamp > this.maxTs.timestamp)) {
        this.maxTs = { timestamp: s.maxTimestamp, offset: s.offsetOfMaxTimestamp };
      }
    }
  }

  // ---------------------------------------------------------------- delete, retention, truncate

  async deleteRecordsBefore(offset: number): Promise<number> {
    return this.runTask(async () => {
      if (offset > this._highWatermark || offset < 0) {
        throw new OffsetOutOfRangeError(`DeleteRecords offset ${offset} above high watermark ${this._highWatermark}`);
      }
      if (offset <= this._logStartOffset) return this._logStartOffset;
      this._logStartOffset = offset;
      await writeLogStartOffset(this.dir, offset);
      this.leaderEpochCache.truncateFromStart(offset);
      await this.leaderEpochCache.flush();
      // The active segment can go too when every record in it is below the new start: roll first.
      if (offset >= this.active.nextOffset && !this.active.isEmpty) await this.roll(this.clock());
      await this.deleteSegmentsWhile((seg, next) => next !== undefined && next.baseOffset <= this._logStartOffset, 'delete-records');
      return this._logStartOffset;
    });
  }

  async applyRetention(nowMs: number): Promise<number> {
    return this.runTask(async () => {
      let deleted = 0;
      // Segments wholly below the log start offset (left by DeleteRecords).
      deleted += await this.deleteSegmentsWhile((_s, next) => next !== undefined && next.baseOffset <= this._logStartOffset, 'log-start-offset');
      // Time and size retention belong to cleanup.policy=delete; a compact-only log keeps every key.
      if (!this.config.cleanupDelete) return deleted;
      const retentionMs = this.config.retentionMs;
      if (retentionMs >= 0) {
        deleted += await this.deleteSegmentsWhile((s, next) => next !== undefined && nowMs - s.largestTimestamp > retentionMs, 'retention.ms');
      }
      const retentionBytes = this.config.retentionBytes;
      if (retentionBytes >= 0) {
        let excess = this.sizeInBytes - retentionBytes;
        deleted += await this.deleteSegmentsWhile((s, next) => {
          if (next === undefined || excess - s.size < 0) return false;
          excess -= s.size;
          return true;
        }, 'retention.bytes');
      }
      return deleted;
    });
  }

  /** Delete segments from the front while `pred` holds (never the active one); advance the log start offset. */
  private async deleteSegmentsWhile(pred: (s: LogSegment, next: LogSegment | undefined) => boolean, reason: string): Promise<number> {
    const doomed: LogSegment[] = [];
    while (this.segments.length > 1 && pred(this.segments[0]!, this.segments[1])) doomed.push(this.segments.shift()!);
    if (doomed.length === 0) return 0;
    await this.beforeRemoving(doomed);
    const newStart = Math.max(this._logStartOffset, this.segments[0]!.baseOffset);
    if (newStart !== this._logStartOffset) {
      this._logStartOffset = newStart;
      if (this._highWatermark < newStart) this._highWatermark = newStart;
      await writeLogStartOffset(this.dir, newStart);
      this.leaderEpochCache.truncateFromStart(newStart);
      await this.leaderEpochCache.flush();
    }
    this.recomputeMaxTimestamp();
    const live = new Set(this.segments.map((s) => s.baseOffset));
    this.producerState.dropSegments((base) => live.has(base));
    for (const seg of doomed) {
      this.logger.info('deleting segment', { dir: this.dir, baseOffset: seg.baseOffset, reason });
      await seg.deleteFiles();
    }
    return doomed.length;
  }

  // ---------------------------------------------------------------- log cleaner (log-cleaner.ts)

  /** The segment list as it is now (the last one is the active segment); for the cleaner. */
  segmentsForCleaner(): readonly LogSegment[] {
    return this.segments.slice();
  }

  /**
   * Swaps cleaned segments in for `replaced` (a contiguous run of closed segments), as an exclusive
   * task in the writer queue. `swap` does the crash-safe file work (log-cleaner.ts) and returns the
   * base offsets of the new segment files, which are then opened and spliced in. Returns false,
   * without calling `swap`, when the segment list changed meanwhile (retention, truncation,
   * close): the caller discards its cleaned files.
   */
  async replaceSegments(replaced: readonly LogSegment[], swap: () => Promise<number[]>): Promise<boolean> {
    return this.runTask(async () => {
      if (this.closed || this.failure || replaced.length === 0) return false;
      const at = this.segments.indexOf(replaced[0]!);
      if (at < 0 || at + replaced.length >= this.segments.length) return false;
      for (let i = 0; i < replaced.length; i++) if (this.segments[at + i] !== replaced[i]) return false;
      await this.beforeRemoving(replaced);
      const lastModifiedMs = Math.max(...replaced.map((s) => s.lastModifiedMs));
      let newBases: number[];
      try {
        newBases = await swap();
      } catch (err) {
        // The files may be half swapped: stop taking writes; reopening the log completes the swap.
        this.fail(err);
        throw err;
      }
      const fresh: LogSegment[] = [];
      for (const base of newBases) {
        const { segment } = await LogSegment.open(this.dir, base, this.config, { recover: false, nowMs: this.clock() });
        // Retention by time (compact,delete) must not restart because the files were rewritten.
        segment.lastModifiedMs = lastModifiedMs;
        fresh.push(segment);
      }
      this.segments.splice(at, replaced.length, ...fresh);
      // The old files are gone (the swap unlinked them); close the fds once in-flight reads end.
      for (const s of replaced) void s.close().catch(() => {});
      const gone = new Set(replaced.map((s) => s.baseOffset));
      // Their aborted transactions' data was removed with them; their .txnindex files are gone.
      this.producerState.dropSegments((base) => !gone.has(base));
      this.recomputeMaxTimestamp();
      return true;
    });
  }

  /**
   * Removes every batch with an offset at or above `offset` (a batch holding `offset` goes whole,
   * so the log may end below it): a follower dropping what the leader does not have. The epoch
   * cache loses the epochs starting there, producer state is rebuilt, the high watermark falls to
   * the new log end if it was above. Below the log start offset, the log restarts empty at
   * `offset` (truncateFullyAndStartAt). At or above the log end nothing is removed, but epoch
   * entries starting at the log end are (as Kafka: an epoch this replica led without writing).
   */
  async truncateTo(offset: number): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0, `bad truncation offset ${offset}`);
    await this.runTask(async () => {
      await this.rolledSegmentSynced();
      if (offset >= this.nextOffset) {
        // Nothing to remove, but the epoch cache may name an epoch starting at the log end that
        // wrote nothing here (this replica led it briefly): the leader's log decides that epoch now.
        this.leaderEpochCache.truncateFromEnd(this.nextOffset);
        await this.leaderEpochCache.flush();
        return;
      }
      if (offset < this._logStartOffset || offset < this.segments[0]!.baseOffset) {
        await this.restartAt(offset);
        return;
      }
      while (this.segments.length > 1 && this.active.baseOffset >= offset) {
        const seg = this.segments.pop()!;
        await seg.deleteFiles();
      }
      await this.active.truncateTo(offset);
      this.resetOffsets();
      await this.lowerRecoveryPointCheckpoint();
      this.leaderEpochCache.truncateFromEnd(this._logEndOffset);
      await this.leaderEpochCache.flush();
      if (this._logStartOffset > this._logEndOffset) {
        // The batch holding the start offset went too.
        this._logStartOffset = this._logEndOffset;
        await writeLogStartOffset(this.dir, this._logStartOffset);
      }
      await this.rebuildProducerState();
    });
  }

  /**
   * Kafka's truncateFullyAndStartAt: deletes every segment and restarts the log empty at `offset`
   * (log start = log end = high watermark = `offset`; the epoch cache and producer state are
   * emptied). A follower does this when it is behind the leader's log start offset.
   */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0, `bad start offset ${offset}`);
    await this.runTask(() => this.restartAt(offset));
  }

  private async restartAt(offset: number): Promise<void> {
    await this.rolledSegmentSynced();
    const doomed = this.segments;
    this.segments = [await LogSegment.create(this.dir, offset, this.config, this.clock())];
    for (const s of doomed) {
      // A segment with the same base offset was just replaced on disk by create(): only close it.
      if (s.baseOffset === offset) await s.close();
      else await s.deleteFiles();
    }
    this._logStartOffset = offset;
    await writeLogStartOffset(this.dir, offset);
    this.resetOffsets();
    await this.lowerRecoveryPointCheckpoint();
    this._highWatermark = offset;
    this._recoveryPoint = offset;
    this.leaderEpochCache.clear();
    await this.leaderEpochCache.flush();
    // Producer snapshots describe the old log: none applies to the restarted one.
    await this.producerState.pruneSnapshots(-1, 0);
    await this.rebuildProducerState();
  }

  private resetOffsets(): void {
    this.nextOffset = this.active.nextOffset;
    this._logEndOffset = this.nextOffset;
    this._recoveryPoint = Math.min(this._recoveryPoint, this._logEndOffset);
    this.truncations++;
    this._highWatermark = Math.min(this._highWatermark, this._logEndOffset);
    if (this._autoAdvanceHighWatermark) this._highWatermark = this._logEndOffset;
    this.recomputeMaxTimestamp();
  }

  /**
   * Rebuilds producer state and the aborted-transaction list: the newest snapshot at or below the
   * log end offset, then a replay of every batch after it (recovery, truncation). Writes a fresh
   * snapshot at the log end offset when it replayed anything.
   */
  private async rebuildProducerState(): Promise<void> {
    const ps = this.producerState;
    const end = this._logEndOffset;
    const snap = await ps.loadLatestSnapshot(end);
    const from = Math.max(snap ?? 0, this._logStartOffset);
    const bases = this.segments.map((s) => s.baseOffset);
    await ps.loadTxnIndexes(bases, from);
    let replayed = 0;
    let next = from;
    while (next < end) {
      const buf = await this.read(next, 1 << 20, end, true);
      if (buf.length === 0) break;
      for (let at = 0; at + RECORD_BATCH_HEADER_SIZE <= buf.length; at += batchSizeAt(buf, at)) {
        const base = readInt64(buf, at);
        const last = base + buf.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
        next = last + 1;
        if (last < from || readInt64(buf, at + PRODUCER_ID_OFFSET) < 0) continue;
        ps.apply(producerBatchInfo(buf, at), base, last, this.segments[this.segmentIndexFor(base)]!.baseOffset);
        replayed++;
      }
    }
    const touched = bases.filter((b, i) => (bases[i + 1] ?? Number.MAX_SAFE_INTEGER) > from);
    await ps.rewriteTxnIndexes(touched);
    if (next > from) {
      await ps.writeSnapshot(end);
      await ps.pruneSnapshots(end);
    }
    if (replayed > 0) this.logger.info('rebuilt producer state', { dir: this.dir, fromOffset: from, batches: replayed, producers: ps.producers.size });
  }

  updateConfig(config: LogConfig): void {
    this.config = { ...config };
  }

  // ---------------------------------------------------------------- close, delete

  private closing: Promise<void> | null = null;

  async close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = this.runTask(async () => {
      this.closed = true;
      if (this.fsyncRunning) await this.fsyncRunning.catch(() => {});
      if (this.fsyncNext) await this.fsyncNext.catch(() => {});
      await this.rolledSegmentSynced();
      const active = this.active;
      if (!this.failure) await active.flushAll();
      if (!this.failure) await this.leaderEpochCache.flush();
      if (!this.failure) {
        await this.producerState.writeSnapshot(this._logEndOffset);
        await this.producerState.pruneSnapshots(this._logEndOffset);
      }
      for (const s of this.segments) await s.close();
      // A failed log may hold a torn tail: make the caller skip the clean-shutdown marker.
      if (this.failure) throw this.failure;
    });
    return this.closing;
  }

  async delete(): Promise<void> {
    await this.close().catch(() => {});
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }
}

const EMPTY = Buffer.alloc(0);

const batchSizeAt = (buf: Buffer, at: number): number => buf.readInt32BE(at + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;

/**
 * Read whole batches starting with `first` within one segment: up to maxBytes, never a batch with
 * lastOffset >= limitOffset; with minOneBatch the first batch comes back even if larger.
 */
async function readFrom(
  seg: LogSegment,
  first: BatchHeader,
  limit: number,
  maxBytes: number,
  limitOffset: number,
  minOneBatch: boolean,
): Promise<Buffer> {
  if (first.lastOffset >= limitOffset) return EMPTY;
  if (first.size > maxBytes) {
    if (!minOneBatch) return EMPTY;
    const buf = Buffer.allocUnsafe(first.size);
    const n = await seg.readBytesCachedFirst(buf, 0, first.size, first.position);
    assert(n === first.size, `short read of batch at ${seg.logPath}:${first.position}`);
    return buf;
  }
  const want = Math.min(maxBytes, limit - first.position);
  const buf = Buffer.allocUnsafe(want);
  const n = await seg.readBytesCachedFirst(buf, 0, want, first.position);
  // Walk the headers in what was read; keep whole batches below limitOffset.
  let end = 0;
  while (end + RECORD_BATCH_HEADER_SIZE <= n) {
    const batchLength = buf.readInt32BE(end + BATCH_LENGTH_OFFSET);
    assert(batchLength >= MIN_BATCH_LENGTH && buf[end + MAGIC_OFFSET] === MAGIC_V2, `bad batch at ${seg.logPath}:${first.position + end}`);
    const size = batchLength + LOG_OVERHEAD;
    if (end + size > n) break;
    const lastOffset = readInt64(buf, end) + buf.readInt32BE(end + LAST_OFFSET_DELTA_OFFSET);
    if (lastOffset >= limitOffset) break;
    end += size;
  }
  return end === n ? buf : buf.subarray(0, end);
}

/**
 * Loads the leader epoch cache of a log being opened: the checkpoint file, cut to the log's
 * [start, end); when the file is missing or unreadable, rebuilt from the partition leader epochs of
 * the batches (and written back if that found anything, or to replace a corrupt file).
 */
async function loadLeaderEpochCache(dir: string, segments: LogSegment[], logStartOffset: number, logger: Logger): Promise<LeaderEpochFileCache> {
  const logEndOffset = segments[segments.length - 1]!.nextOffset;
  const read = await readLeaderEpochCheckpoint(dir);
  if (read.kind === 'ok') {
    const cache = new LeaderEpochFileCache(dir, read.entries);
    cache.truncateFromEnd(logEndOffset);
    cache.truncateFromStart(logStartOffset);
    await cache.flush();
    return cache;
  }
  if (read.kind === 'corrupt') logger.warn('rebuilding a corrupt leader-epoch-checkpoint from the log', { dir, reason: read.reason });
  const cache = new LeaderEpochFileCache(dir);
  for (const seg of segments) {
    await seg.scanHeaders(0, seg.size, (h) => {
      if (h.partitionLeaderEpoch >= 0) cache.assign(h.partitionLeaderEpoch, h.baseOffset);
      return true;
    });
  }
  cache.truncateFromStart(logStartOffset);
  if (!cache.isEmpty() || read.kind === 'corrupt') await cache.persist();
  return cache;
}

/**
 * A follower append's checks: whole magic-2 batches with valid CRC-32C, offsets increasing from
 * batch to batch. Returns the offsets taken and the first and last offset.
 */
function checkFollowerBatches(buf: Buffer): { records: number; firstOffset: number; lastOffset: number } {
  const records = checkBatches(buf);
  let firstOffset = -1;
  let lastOffset = -1;
  for (let at = 0; at < buf.length; at += batchSizeAt(buf, at)) {
    const size = batchSizeAt(buf, at);
    const base = readInt64(buf, at);
    if (base < 0 || base <= lastOffset) throw new StorageError('INVALID_RECORD', `follower batch offsets do not increase: ${base} after ${lastOffset}`);
    if (crc32c(buf.subarray(at + CRC_START, at + size)) !== buf.readUInt32BE(at + CRC_OFFSET)) {
      throw new StorageError('CORRUPT_MESSAGE', `CRC mismatch in the follower batch at offset ${base}`);
    }
    if (firstOffset < 0) firstOffset = base;
    lastOffset = base + buf.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
    if (!Number.isSafeInteger(lastOffset)) throw new StorageError('INVALID_RECORD', `follower batch last offset out of range at ${base}`);
  }
  return { records, firstOffset, lastOffset };
}

/**
 * Check the framing of an append: one or more whole magic-2 batches back to back. Full
 * validation (CRC, sequence, sizes) is the broker's; this guards storage's own invariants.
 * Returns the number of offsets the batches take.
 */
function checkBatches(buf: Buffer): number {
  let at = 0;
  let offsets = 0;
  if (buf.length === 0) throw new StorageError('INVALID_RECORD', 'empty append');
  while (at < buf.length) {
    if (at + RECORD_BATCH_HEADER_SIZE > buf.length) throw new StorageError('INVALID_RECORD', `truncated batch header at ${at}`);
    const batchLength = buf.readInt32BE(at + BATCH_LENGTH_OFFSET);
    if (batchLength < MIN_BATCH_LENGTH || at + batchLength + LOG_OVERHEAD > buf.length) {
      throw new StorageError('INVALID_RECORD', `bad batchLength ${batchLength} at ${at}`);
    }
    if (buf[at + MAGIC_OFFSET] !== MAGIC_V2) throw new StorageError('INVALID_RECORD', `magic ${buf[at + MAGIC_OFFSET]} at ${at}`);
    const delta = buf.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
    if (delta < 0) throw new StorageError('INVALID_RECORD', `negative lastOffsetDelta at ${at}`);
    offsets += delta + 1;
    at += batchLength + LOG_OVERHEAD;
  }
  return offsets;
}
