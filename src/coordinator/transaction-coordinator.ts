/**
 * The transaction coordinator (Kafka's TransactionCoordinator + TransactionStateManager +
 * TransactionMarkerChannelManager, transactions v1) over the internal topic `__transaction_state`.
 *
 * Behaviour:
 * - Each transactional id has one TransactionLogValue (transaction-records.ts) on partition
 *   `abs(javaStringHashCode(id)) % partitions`. Every state change is written (one batch,
 *   fsynced) before it is applied in memory and answered, so memory always equals a replay.
 *   Coordination follows partition leadership: `onElection(p, leaderEpoch)` replays partition p
 *   (its ids answer COORDINATOR_LOAD_IN_PROGRESS meanwhile); a transaction found in
 *   PrepareCommit/PrepareAbort has its markers (re)written and is completed; one found Ongoing is
 *   aborted by the timeout like any. `onResignation(p)` drops p's ids (NOT_COORDINATOR) and stops
 *   their marker phases. The leader epoch is the coordinator epoch every marker carries: a data
 *   partition refuses a marker older than one it has seen (TRANSACTION_COORDINATOR_FENCED), so a
 *   deposed coordinator cannot undo its successor's decision. `load()` elects every partition.
 * - States: Empty → Ongoing (AddPartitionsToTxn / AddOffsetsToTxn) → PrepareCommit |
 *   PrepareAbort (EndTxn, answered once this is durable) → markers to every partition of the
 *   transaction → CompleteCommit | CompleteAbort. PrepareEpochFence is the in-memory state of an
 *   Ongoing transaction being fenced (a new InitProducerId, or the timeout): the epoch is bumped
 *   and the transaction aborted with the new epoch, so the old producer's writes are refused by
 *   every partition (INVALID_PRODUCER_EPOCH) and by this coordinator (PRODUCER_FENCED).
 * - One write per transactional id at a time: a request arriving while one is in flight, or
 *   while markers are being written, gets CONCURRENT_TRANSACTIONS (clients retry).
 * - InitProducerId: without a transactional id a new producer id (epoch 0) for an idempotent
 *   producer; with one, a new id the first time, else the epoch bumped (a new producer id when the
 *   epoch would pass 32766). An Ongoing transaction is fenced and aborted first
 *   (CONCURRENT_TRANSACTIONS until done). A timeout above `transaction.max.timeout.ms` (or ≤ 0)
 *   is INVALID_TRANSACTION_TIMEOUT.
 * - Producer ids come from `allocateProducerId` (blocks committed to the metadata log first), so
 *   no id is handed out twice, across restarts too.
 * - Every `transaction.abort.timed.out.transaction.cleanup.interval.ms` Ongoing transactions
 *   older than their timeout are fenced and aborted; Empty/Complete ids idle for
 *   `transactional.id.expiration.ms` are tombstoned.
 * - Markers go through `TxnMarkerWriter` (the broker writes control batches to partition logs
 *   and tells the group coordinator about __consumer_offsets markers); a failed marker write is
 *   retried until it succeeds or the coordinator shuts down. A partition that no longer exists
 *   is skipped, as Kafka does.
 */
import { ErrorCode } from '../protocol/errors.js';
import type { Logger } from '../storage/logger.js';
import assert from 'node:assert/strict';
import type { CoordinatorLog } from './coordinator-log.js';
import { OwnedPartitions, appendErrorCode } from './owned-partitions.js';
import type { Scheduler } from './time.js';
import {
  TxnState,
  TXN_STATE_NAMES,
  decodeTransactionKey,
  decodeTransactionValue,
  partitionForTransactionalId,
  transactionRecord,
  type TransactionLogValue,
  type TxnPartition,
  type TxnStateCode,
} from './transaction-records.js';

export interface TransactionCoordinatorConfig {
  maxTimeoutMs: number;
  idExpirationMs: number;
  abortCheckIntervalMs: number;
  /** Delay between retries of a failed marker write. */
  markerRetryBackoffMs: number;
}

export const DEFAULT_TXN_CONFIG: Readonly<TransactionCoordinatorConfig> = Object.freeze({
  maxTimeoutMs: 900000,
  idExpirationMs: 604800000,
  abortCheckIntervalMs: 10000,
  markerRetryBackoffMs: 100,
});

export interface TxnMarkerWriter {
  /**
   * Writes a COMMIT/ABORT marker for `producerId`/`producerEpoch` to one partition, durably.
   * Resolves false when the partition does not exist (skipped); rejects on a write failure.
   */
  writeMarker(p: TxnPartition, producerId: number, producerEpoch: number, commit: boolean, coordinatorEpoch: number): Promise<boolean>;
}

export interface TransactionCoordinatorOptions {
  scheduler: Scheduler;
  config: TransactionCoordinatorConfig;
  logger: Logger;
  allocateProducerId(): Promise<number>;
  markers: TxnMarkerWriter;
}

export interface TxnMetadata extends TransactionLogValue {
  readonly transactionalId: string;
  /** A write or the marker phase is in flight: other requests get CONCURRENT_TRANSACTIONS. */
  pending: boolean;
  /** In-memory only: the state while a fence is being written (PrepareEpochFence) — else equals `state`. */
  shownState: TxnStateCode;
}

export interface InitProducerIdResult {
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}

/** Epochs are INT16; Kafka starts a new producer id before the epoch reaches Short.MAX_VALUE. */
const MAX_EPOCH = 32766;

const key = (p: TxnPartition): string => `${p.topic}\u0000${p.partition}`;

export class TransactionCoordinator {
  private readonly txns = new Map<string, TxnMetadata>();
  private readonly byProducerId = new Map<number, TxnMetadata>();
  private log_: CoordinatorLog | null = null;
  /** The partitions of `__transaction_state` this coordinator serves (or is loading). */
  private readonly owned = new OwnedPartitions();
  private stopped = false;
  private cancelTimer: (() => void) | null = null;
  /** Marker phases in flight (tests wait for them). */
  private readonly completions = new Set<Promise<void>>();
  /** Observers of state changes (the model test checks invariants on every one). */
  onTransition: ((tid: string, from: TxnStateCode, to: TxnStateCode, meta: TxnMetadata) => void) | null = null;

  constructor(private readonly opts: TransactionCoordinatorOptions) {}

  /** Whether it has a log, no partition is loading, and `shutdown()` has not run. */
  get ready(): boolean {
    return this.log_ !== null && !this.stopped && !this.owned.anyLoading;
  }

  get attached(): boolean {
    return this.log_ !== null;
  }

  private get log(): CoordinatorLog {
    if (this.log_ === null) throw new Error('transaction coordinator used before it has a log');
    return this.log_;
  }

  get partitions(): number {
    return this.log.partitions;
  }

  /** COORDINATOR_LOAD_IN_PROGRESS before a log or while a partition loads, NOT_COORDINATOR after shutdown, else NONE. */
  unavailable(): number {
    if (this.stopped) return ErrorCode.NOT_COORDINATOR;
    if (this.log_ === null || this.owned.anyLoading) return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    return ErrorCode.NONE;
  }

  /** NONE when this coordinator serves `transactionalId`'s partition; else NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
  unavailableFor(transactionalId: string): number {
    if (this.stopped) return ErrorCode.NOT_COORDINATOR;
    if (this.log_ === null) return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    return this.owned.errorFor(this.partitionOf(transactionalId));
  }

  private partitionOf(tid: string): number {
    return partitionForTransactionalId(tid, this.log.partitions);
  }

  /** The coordinator epoch (leader epoch) of `partition`, -1 when not coordinated here. */
  epochOf(partition: number): number {
    return this.owned.epochOf(partition);
  }

  activePartitions(): number[] {
    return this.owned.active();
  }

  transaction(transactionalId: string): Readonly<TxnMetadata> | undefined {
    return this.txns.get(transactionalId);
  }

  transactions(): IterableIterator<Readonly<TxnMetadata>> {
    return this.txns.values();
  }

  /** Resolves when every marker phase started so far has finished. */
  async idle(): Promise<void> {
    while (this.completions.size > 0) await Promise.all([...this.completions]);
  }

  // ------------------------------------------------------------------------------ load

  /** Gives the coordinator the log of `__transaction_state` and starts the timeout task; partitions are served once elected. */
  attach(log: CoordinatorLog): void {
    if (this.log_ !== null) {
      assert.equal(log.partitions, this.log_.partitions, 'the transaction state topic changed its partition count');
      return;
    }
    this.log_ = log;
    this.scheduleChecks();
  }

  /**
   * The transaction state topic is gone (deleted, or re-created under a new topic id): every
   * partition is resigned and the log dropped; `attach()` may give a new one.
   */
  detach(): void {
    for (const p of this.owned.owned()) this.onResignation(p);
    this.log_ = null;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  /** Attaches `log` and loads every partition (a single broker, which leads them all). */
  async load(log: CoordinatorLog): Promise<void> {
    this.attach(log);
    for (let p = 0; p < log.partitions; p++) await this.onElection(p, 0);
    this.opts.logger.info('loaded transactions from __transaction_state', { transactionalIds: this.txns.size });
  }

  /**
   * This broker became the leader of `__transaction_state`-`partition` at `epoch` (Kafka's
   * TransactionCoordinator.onElection): replays the partition, then serves its transactional ids;
   * a transaction found in PrepareCommit/PrepareAbort has its markers (re)written, with `epoch`
   * as the coordinator epoch, and is completed. Meanwhile its ids get COORDINATOR_LOAD_IN_PROGRESS.
   * A repeated election at the same epoch is a no-op; a later epoch reloads.
   */
  async onElection(partition: number, epoch: number): Promise<void> {
    if (this.stopped) return;
    const log = this.log;
    assert.ok(partition >= 0 && partition < log.partitions, `no transaction state partition ${partition}`);
    const token = this.owned.elect(partition, epoch);
    if (token === null) return;
    this.dropPartition(partition);
    const values = new Map<string, TransactionLogValue | null>();
    try {
      await log.replay(partition, (r) => {
        const tid = decodeTransactionKey(r.key);
        if (tid === null) {
          this.opts.logger.warn('skipping an unknown record key in the transaction state topic', { partition, offset: r.offset });
          return;
        }
        values.set(tid, r.value === null ? null : decodeTransactionValue(r.value));
      });
    } catch (e) {
      if (this.owned.isLoading(partition, token)) this.owned.resign(partition);
      this.opts.logger.error('loading a transaction state partition failed; its transactional ids are not served', { partition, epoch, error: e });
      throw e;
    }
    if (this.stopped || !this.owned.loaded(partition, token)) {
      this.opts.logger.info('discarding the load of a transaction state partition resigned meanwhile', { partition, epoch });
      return;
    }
    const loaded: TxnMetadata[] = [];
    for (const [tid, v] of values) if (v !== null) loaded.push(this.install(tid, v));
    const resume = loaded.filter((m) => m.state === TxnState.PrepareCommit || m.state === TxnState.PrepareAbort);
    const fields = { partition, epoch, transactionalIds: loaded.length, completing: resume.length };
    if (loaded.length > 0) this.opts.logger.info('loaded a transaction state partition: now coordinating its transactional ids', fields);
    else this.opts.logger.debug('loaded a transaction state partition: now coordinating its transactional ids', fields);
    for (const m of resume) {
      m.pending = true;
      this.startCompletion(m, m.state === TxnState.PrepareCommit);
    }
  }

  /**
   * This broker no longer leads `__transaction_state`-`partition`: its transactional ids are
   * dropped from memory (requests for them get NOT_COORDINATOR) and marker phases in flight stop
   * (the new coordinator completes them from the log). With `epoch`, only a resignation newer
   * than the election is applied.
   */
  onResignation(partition: number, epoch?: number): void {
    if (!this.owned.resign(partition, epoch)) return;
    const n = this.dropPartition(partition);
    this.opts.logger.info('resigned a transaction state partition: its transactional ids moved to its new leader', { partition, transactionalIds: n });
  }

  private dropPartition(partition: number): number {
    let n = 0;
    for (const [tid, m] of [...this.txns]) {
      if (this.partitionOf(tid) !== partition) continue;
      this.txns.delete(tid);
      if (this.byProducerId.get(m.producerId) === m) this.byProducerId.delete(m.producerId);
      n++;
    }
    return n;
  }

  private install(tid: string, v: TransactionLogValue): TxnMetadata {
    const old = this.txns.get(tid);
    if (old !== undefined && this.byProducerId.get(old.producerId) === old) this.byProducerId.delete(old.producerId);
    const m: TxnMetadata = { ...v, partitions: [...v.partitions], transactionalId: tid, pending: old?.pending ?? false, shownState: v.state };
    this.txns.set(tid, m);
    this.byProducerId.set(m.producerId, m);
    return m;
  }

  // ------------------------------------------------------------------------------ writes

  /** Writes `next` for `tid`; on success installs it (keeping `pending` as the caller sets it). */
  private async write(tid: string, next: TransactionLogValue | null): Promise<number> {
    if (this.stopped || this.log_ === null) return ErrorCode.NOT_COORDINATOR;
    const partition = this.partitionOf(tid);
    const epoch = this.owned.epochOf(partition);
    if (!this.owned.isActive(partition, epoch)) return ErrorCode.NOT_COORDINATOR;
    try {
      await this.log.append(partition, [transactionRecord(tid, next)], this.opts.scheduler.now());
    } catch (e) {
      const code = appendErrorCode(e);
      if (code === ErrorCode.NOT_COORDINATOR) this.opts.logger.info('could not write to __transaction_state: no longer its leader', { transactionalId: tid, partition, error: e });
      else this.opts.logger.error('failed to write to __transaction_state', { transactionalId: tid, partition, error: e });
      return code;
    }
    // Shut down, or the partition moved, while the write was in flight: the log has it (the new
    // coordinator replays it if it was committed); this memory no longer matters.
    if (this.stopped || !this.owned.isActive(partition, epoch)) return ErrorCode.NOT_COORDINATOR;
    const from = this.txns.get(tid)?.state ?? TxnState.Empty;
    if (next === null) {
      const old = this.txns.get(tid);
      this.txns.delete(tid);
      if (old !== undefined && this.byProducerId.get(old.producerId) === old) this.byProducerId.delete(old.producerId);
      return ErrorCode.NONE;
    }
    const m = this.install(tid, next);
    this.onTransition?.(tid, from, next.state, m);
    return ErrorCode.NONE;
  }

  private valueOf(m: TxnMetadata): TransactionLogValue {
    return { producerId: m.producerId, producerEpoch: m.producerEpoch, timeoutMs: m.timeoutMs, state: m.state, partitions: m.partitions, lastUpdateMs: m.lastUpdateMs, startMs: m.startMs };
  }

  /** Writes `v` with the id marked pending meanwhile (other requests get CONCURRENT_TRANSACTIONS). */
  private async writeExclusive(m: TxnMetadata, v: TransactionLogValue): Promise<number> {
    m.pending = true;
    try {
      return await this.write(m.transactionalId, v);
    } finally {
      m.pending = false;
      const cur = this.txns.get(m.transactionalId);
      if (cur !== undefined) cur.pending = false;
    }
  }

  /** Transactional ids whose first InitProducerId is being written. */
  private readonly creating = new Set<string>();

  // ------------------------------------------------------------------------------ InitProducerId

  async initProducerId(transactionalId: string | null, timeoutMs: number, reqProducerId: number, reqEpoch: number, fencedCode: number): Promise<InitProducerIdResult> {
    const fail = (errorCode: number): InitProducerIdResult => ({ errorCode, producerId: -1, producerEpoch: -1 });
    if (transactionalId === null) {
      // An idempotent producer needs only an id, whatever the transaction state partitions do.
      if (this.stopped) return fail(ErrorCode.NOT_COORDINATOR);
      try {
        return { errorCode: ErrorCode.NONE, producerId: await this.opts.allocateProducerId(), producerEpoch: 0 };
      } catch (e) {
        this.opts.logger.error('producer id allocation failed', { error: e });
        return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
      }
    }
    if (transactionalId === '') return fail(ErrorCode.INVALID_REQUEST);
    const unavailable = this.unavailableFor(transactionalId);
    if (unavailable !== ErrorCode.NONE) return fail(unavailable);
    if (timeoutMs <= 0 || timeoutMs > this.opts.config.maxTimeoutMs) return fail(ErrorCode.INVALID_TRANSACTION_TIMEOUT);
    const now = this.opts.scheduler.now();
    let m = this.txns.get(transactionalId);
    if (m === undefined) {
      if (this.creating.has(transactionalId)) return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
      this.creating.add(transactionalId);
      try {
        let pid: number;
        try {
          pid = await this.opts.allocateProducerId();
        } catch (e) {
          this.opts.logger.error('producer id allocation failed', { error: e });
          return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
        }
        const v: TransactionLogValue = { producerId: pid, producerEpoch: 0, timeoutMs, state: TxnState.Empty, partitions: [], lastUpdateMs: now, startMs: -1 };
        const err = await this.write(transactionalId, v);
        return err === ErrorCode.NONE ? { errorCode: ErrorCode.NONE, producerId: pid, producerEpoch: 0 } : fail(err);
      } finally {
        this.creating.delete(transactionalId);
      }
    }
    if (m.pending) return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
    if (reqProducerId >= 0 && (reqProducerId !== m.producerId || reqEpoch !== m.producerEpoch)) {
      // KIP-360: a producer re-initialising with an id and epoch that are not the current ones is a zombie.
      return fail(fencedCode);
    }
    switch (m.state) {
      case TxnState.PrepareCommit:
      case TxnState.PrepareAbort:
        return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
      case TxnState.Ongoing: {
        await this.fenceAndAbort(m, `a new producer initialised transactional id ${transactionalId}`);
        return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
      }
      default: {
        let producerId = m.producerId;
        let epoch = m.producerEpoch + 1;
        if (epoch > MAX_EPOCH) {
          try {
            producerId = await this.opts.allocateProducerId();
          } catch {
            return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
          }
          epoch = 0;
          m = this.txns.get(transactionalId);
          if (m === undefined || m.pending) return fail(ErrorCode.CONCURRENT_TRANSACTIONS);
        }
        const mm = m;
        const v: TransactionLogValue = { ...this.valueOf(mm), producerId, producerEpoch: epoch, timeoutMs, state: TxnState.Empty, partitions: [], lastUpdateMs: now, startMs: -1 };
        const err = await this.writeExclusive(mm, v);
        return err === ErrorCode.NONE ? { errorCode: ErrorCode.NONE, producerId, producerEpoch: epoch } : fail(err);
      }
    }
  }

  // ------------------------------------------------------------------------------ checks shared by the txn apis

  /** The transaction of `tid` if `producerId`/`epoch` own it; else the error to answer. */
  private ownedBy(tid: string, producerId: number, epoch: number, fencedCode: number): TxnMetadata | number {
    const unavailable = this.unavailableFor(tid);
    if (unavailable !== ErrorCode.NONE) return unavailable;
    const m = this.txns.get(tid);
    if (m === undefined || m.producerId !== producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    if (m.producerEpoch !== epoch) return fencedCode;
    return m;
  }

  // ------------------------------------------------------------------------------ AddPartitionsToTxn / AddOffsetsToTxn

  async addPartitions(tid: string, producerId: number, epoch: number, partitions: TxnPartition[], fencedCode: number): Promise<number> {
    const m = this.ownedBy(tid, producerId, epoch, fencedCode);
    if (typeof m === 'number') return m;
    if (m.pending || m.state === TxnState.PrepareCommit || m.state === TxnState.PrepareAbort) return ErrorCode.CONCURRENT_TRANSACTIONS;
    if (m.state === TxnState.Dead || m.state === TxnState.PrepareEpochFence) return ErrorCode.INVALID_TXN_STATE;
    const have = new Set(m.partitions.map(key));
    const added = partitions.filter((p) => !have.has(key(p)));
    if (m.state === TxnState.Ongoing && added.length === 0) return ErrorCode.NONE;
    const now = this.opts.scheduler.now();
    const fresh = m.state !== TxnState.Ongoing;
    const merged = fresh ? dedupe(partitions) : [...m.partitions, ...dedupe(added)];
    const v: TransactionLogValue = { ...this.valueOf(m), state: TxnState.Ongoing, partitions: merged, lastUpdateMs: now, startMs: fresh ? now : m.startMs };
    return this.writeExclusive(m, v);
  }

  // ------------------------------------------------------------------------------ EndTxn

  async endTxn(tid: string, producerId: number, epoch: number, commit: boolean, fencedCode: number): Promise<number> {
    const m = this.ownedBy(tid, producerId, epoch, fencedCode);
    if (typeof m === 'number') return m;
    if (m.pending) return ErrorCode.CONCURRENT_TRANSACTIONS;
    switch (m.state) {
      case TxnState.Ongoing:
        return this.prepareAndComplete(m, commit, m.producerEpoch);
      case TxnState.CompleteCommit:
        return commit ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE;
      case TxnState.CompleteAbort:
        return commit ? ErrorCode.INVALID_TXN_STATE : ErrorCode.NONE;
      case TxnState.PrepareCommit:
        return commit ? ErrorCode.CONCURRENT_TRANSACTIONS : ErrorCode.INVALID_TXN_STATE;
      case TxnState.PrepareAbort:
        return commit ? ErrorCode.INVALID_TXN_STATE : ErrorCode.CONCURRENT_TRANSACTIONS;
      default:
        return ErrorCode.INVALID_TXN_STATE;
    }
  }

  /** Writes PrepareCommit/PrepareAbort (with `epoch`), then completes in the background. */
  private async prepareAndComplete(m: TxnMetadata, commit: boolean, epoch: number): Promise<number> {
    const v: TransactionLogValue = { ...this.valueOf(m), producerEpoch: epoch, state: commit ? TxnState.PrepareCommit : TxnState.PrepareAbort, lastUpdateMs: this.opts.scheduler.now() };
    m.pending = true;
    const err = await this.write(m.transactionalId, v);
    const cur = this.txns.get(m.transactionalId)!;
    if (err !== ErrorCode.NONE) {
      cur.pending = false;
      m.shownState = m.state;
      return err;
    }
    cur.pending = true;
    this.startCompletion(cur, commit);
    return ErrorCode.NONE;
  }

  /** Fences the producer of an Ongoing transaction (epoch + 1) and aborts the transaction with the new epoch. */
  private async fenceAndAbort(m: TxnMetadata, why: string): Promise<number> {
    if (m.producerEpoch + 1 > MAX_EPOCH + 1) return ErrorCode.INVALID_TXN_STATE;
    m.shownState = TxnState.PrepareEpochFence;
    this.opts.logger.info('fencing producer and aborting its transaction', { transactionalId: m.transactionalId, producerId: m.producerId, epoch: m.producerEpoch, why });
    return this.prepareAndComplete(m, false, m.producerEpoch + 1);
  }

  private startCompletion(m: TxnMetadata, commit: boolean): void {
    const p = this.complete(m.transactionalId, commit).finally(() => {
      this.completions.delete(p);
    });
    this.completions.add(p);
  }

  /** Writes the markers to every partition (retrying failures), then the Complete state. */
  private async complete(tid: string, commit: boolean): Promise<void> {
    const partition = this.partitionOf(tid);
    const coordinatorEpoch = this.owned.epochOf(partition);
    for (;;) {
      const m = this.txns.get(tid);
      // Stopped, or the partition moved: its new coordinator completes the transaction.
      if (m === undefined || this.stopped || !this.owned.isActive(partition, coordinatorEpoch)) return;
      try {
        await Promise.all(m.partitions.map((p) => this.opts.markers.writeMarker(p, m.producerId, m.producerEpoch, commit, coordinatorEpoch)));
      } catch (e) {
        if ((e as { code?: unknown }).code === 'TRANSACTION_COORDINATOR_FENCED') {
          // A data partition has seen a marker of a newer coordinator epoch: this one is stale.
          this.opts.logger.warn('a newer transaction coordinator has taken over; stopping this one\'s markers', { transactionalId: tid, partition, coordinatorEpoch, error: e });
          return;
        }
        this.opts.logger.warn('writing transaction markers failed; retrying', { transactionalId: tid, error: e });
        await new Promise<void>((resolve) => this.opts.scheduler.schedule(this.opts.config.markerRetryBackoffMs, resolve));
        continue;
      }
      const v: TransactionLogValue = { ...this.valueOf(m), state: commit ? TxnState.CompleteCommit : TxnState.CompleteAbort, partitions: [], lastUpdateMs: this.opts.scheduler.now() };
      const err = await this.write(tid, v);
      if (err !== ErrorCode.NONE) {
        if (this.stopped || !this.owned.isActive(partition, coordinatorEpoch)) return;
        await new Promise<void>((resolve) => this.opts.scheduler.schedule(this.opts.config.markerRetryBackoffMs, resolve));
        continue;
      }
      const cur = this.txns.get(tid);
      if (cur !== undefined) cur.pending = false;
      this.opts.logger.debug('transaction completed', { transactionalId: tid, producerId: m.producerId, result: commit ? 'commit' : 'abort', partitions: m.partitions.length });
      return;
    }
  }

  // ------------------------------------------------------------------------------ produce verification and offsets

  /**
   * Whether a transactional batch of `producerId`/`epoch` may be written to `topic`-`partition`:
   * NONE only while its transaction is Ongoing (not being ended) and includes the partition.
   */
  verifyWrite(producerId: number, epoch: number, topic: string, partition: number): number {
    if (this.log_ === null) return ErrorCode.NOT_ENOUGH_REPLICAS;
    const m = this.byProducerId.get(producerId);
    if (m === undefined) {
      // A producer coordinated on another broker (this one does not serve every partition of
      // __transaction_state): not verifiable here, so accepted as Kafka did before KIP-890.
      return this.owned.active().length === this.log_.partitions ? ErrorCode.INVALID_TXN_STATE : ErrorCode.NONE;
    }
    if (epoch < m.producerEpoch) return ErrorCode.INVALID_PRODUCER_EPOCH;
    if (epoch !== m.producerEpoch || m.state !== TxnState.Ongoing || m.shownState !== TxnState.Ongoing) return ErrorCode.INVALID_TXN_STATE;
    if (!m.partitions.some((p) => p.topic === topic && p.partition === partition)) return ErrorCode.INVALID_TXN_STATE;
    return ErrorCode.NONE;
  }

  // ------------------------------------------------------------------------------ timers

  private scheduleChecks(): void {
    if (this.stopped) return;
    this.cancelTimer = this.opts.scheduler.schedule(this.opts.config.abortCheckIntervalMs, () => {
      void this.checkTimeouts().finally(() => this.scheduleChecks());
    });
  }

  /** Aborts timed-out Ongoing transactions and expires idle transactional ids; returns how many of each. */
  async checkTimeouts(): Promise<{ aborted: number; expired: number }> {
    const now = this.opts.scheduler.now();
    let aborted = 0;
    let expired = 0;
    for (const tid of [...this.txns.keys()]) {
      // Looked up afresh: an earlier await may have replaced this id's metadata.
      const m = this.txns.get(tid);
      if (m === undefined || m.pending || this.stopped) continue;
      if (m.state === TxnState.Ongoing && m.startMs >= 0 && now - m.startMs > m.timeoutMs) {
        aborted++;
        await this.fenceAndAbort(m, `transaction timed out after ${m.timeoutMs} ms`);
      } else if ((m.state === TxnState.Empty || m.state === TxnState.CompleteCommit || m.state === TxnState.CompleteAbort) && now - m.lastUpdateMs >= this.opts.config.idExpirationMs) {
        expired++;
        m.pending = true;
        const err = await this.write(m.transactionalId, null);
        if (err !== ErrorCode.NONE) m.pending = false;
        else this.opts.logger.info('expired transactional id', { transactionalId: m.transactionalId });
      }
    }
    return { aborted, expired };
  }

  shutdown(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  // ------------------------------------------------------------------------------ describe

  stateName(m: Readonly<TxnMetadata>): string {
    return TXN_STATE_NAMES[m.shownState] ?? 'Unknown';
  }
}

function dedupe(ps: TxnPartition[]): TxnPartition[] {
  const seen = new Set<string>();
  return ps.filter((p) => (seen.has(key(p)) ? false : (seen.add(key(p)), true)));
}
