/**
 * The replication decisions of one partition, with no I/O and no clock of their own (Kafka's
 * Partition and Replica state, the fetch validation of UnifiedLog, and the truncation rules of
 * AbstractFetcherThread). The replica manager and the replica fetcher drive them with the real
 * log and time; a simulation can drive them with a model log and a simulated clock.
 *
 * Leader side — `LeaderPartitionState`, one per partition this broker leads, created when it
 * becomes leader at an epoch:
 *  - `validateFetch(log, fetchOffset, lastFetchedEpoch)`: a follower's fetch is checked against
 *    the leader's epoch cache (KIP-595 / KIP-320 style). Where the follower's last epoch ends in
 *    the leader's log: if that epoch is not the follower's (`endOffsetFor` answered a smaller one)
 *    or ends before `fetchOffset`, the answer is a diverging epoch (epoch, end offset) and the
 *    follower truncates there. A fetch outside [log start, log end] is out of range.
 *  - `updateFollower(id, fetchOffset, leaderLogEndOffset, nowMs)`: a valid fetch at `fetchOffset`
 *    means the follower's log ends there. Its last caught-up time is Kafka's: the fetch time when
 *    it fetched at the leader's log end, else the previous fetch time when it fetched at or past
 *    the leader's log end as of that previous fetch.
 *  - `highWatermarkCandidate(leaderLogEndOffset)`: the smallest log end offset over the maximal
 *    ISR (the committed ISR plus a pending expansion; the leader's own log end offset counts for
 *    itself; a member that has not fetched since this leadership began counts as unknown, so the
 *    high watermark waits for it). The caller moves the log's high watermark forward only.
 *  - `isrExpansion(id, highWatermark, eligible)`: a replica outside the ISR joins once its log end
 *    offset reaches both the high watermark and the start of the leader's epoch (so it holds
 *    everything this leader may have committed), and the controller would accept it (`eligible`:
 *    registered and not fenced).
 *  - `isrShrink(nowMs, leaderLogEndOffset, lagMaxMs)`: an ISR member not at the leader's log end
 *    whose last caught-up time is older than `replica.lag.time.max.ms` leaves the ISR.
 *  - One ISR change at a time (`beginIsrChange` … `isrChangeCommitted` / `isrChangeFailed`), as
 *    Kafka's AlterPartition: while one is in flight no other is proposed. `isrChangeOutcome`
 *    says what an answer (or its absence) means: only a certain refusal drops the change; an
 *    unknown outcome is retried and a stale view waits for the next image.
 *  - `enoughReplicas(minIsr)`: acks=all needs a committed ISR of at least min.insync.replicas.
 *
 * Follower side — pure functions over the follower's log:
 *  - `lastFetchedEpoch(log)`: the epoch of the log's last batch (its epoch cache's latest), -1
 *    when unknown (then the leader does not validate).
 *  - `truncationForDivergingEpoch(log, diverging)`: Kafka's rule — where the follower's log has
 *    the diverging epoch, truncate to the smaller of both end offsets; where it does not, to the
 *    end of its largest epoch below (the next fetch asks again with that epoch).
 *  - `truncationForOutOfRange(...)`: a fetch offset below the leader's log start restarts the log
 *    there; above the leader's log end (a log without epochs) truncates to the leader's high
 *    watermark.
 *  - `followerHighWatermark(leaderHighWatermark, logEndOffset)`: min of both. The follower's log
 *    start offset follows the leader's (retention, DeleteRecords), up to its high watermark. An
 *    empty follower log whose start falls inside the leader's first batch restarts at that batch's
 *    base offset to store it whole.
 *  - `planFollowerFetch(...)` turns one partition of a fetch response into the action to take;
 *    `applyFollowerFetch` carries it out on a `FollowerLog` (a PartitionLog, or a model of one).
 *
 * Invariants: the high watermark candidate never exceeds the leader's log end offset (asserted);
 * with clean leader elections a follower never truncates below its high watermark (everything
 * below it was in every ISR member, so the new leader has it) — the fetcher logs a warning when
 * it does, which only an unclean election can cause.
 */
import assert from 'node:assert/strict';

/** What the replication logic reads of a log (PartitionLog satisfies it). */
export interface ReplicaLogView {
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
  readonly leaderEpochCache: {
    latestEpoch(): number;
    endOffsetFor(requestedEpoch: number, logEndOffset: number): { epoch: number; endOffset: number };
  };
}

/** What a follower does to its log (PartitionLog satisfies it). */
export interface FollowerLog extends ReplicaLogView {
  appendAsFollower(batches: Buffer): Promise<unknown>;
  truncateTo(offset: number): Promise<void>;
  truncateFullyAndStartAt(offset: number): Promise<void>;
  updateHighWatermark(offset: number): number;
  /** Moves the log start offset up (at most to the high watermark); resolves with the log start offset after. */
  deleteRecordsBefore(offset: number): Promise<number>;
}

export interface EpochEndOffset {
  epoch: number;
  endOffset: number;
}

/** Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET. */
export const UNKNOWN = -1;

export type FetchValidation = { kind: 'ok' } | { kind: 'diverging'; divergingEpoch: EpochEndOffset } | { kind: 'out-of-range' };

/** The leader's view of one follower (Kafka's ReplicaState). */
export interface FollowerState {
  readonly brokerId: number;
  /** -1 until it fetches in this leadership. */
  logEndOffset: number;
  lastCaughtUpTimeMs: number;
  lastFetchTimeMs: number;
  /** The leader's log end offset at the follower's previous fetch. */
  lastFetchLeaderLogEndOffset: number;
}

export interface LeaderStateInit {
  leaderId: number;
  leaderEpoch: number;
  partitionEpoch: number;
  replicas: readonly number[];
  isr: readonly number[];
  /** The leader's log end offset when it became leader (its epoch starts there). */
  leaderEpochStartOffset: number;
  nowMs: number;
}

export class LeaderPartitionState {
  readonly leaderId: number;
  readonly leaderEpoch: number;
  readonly leaderEpochStartOffset: number;
  private partitionEpoch_: number;
  private replicas_: number[];
  private isr_: number[];
  /** The ISR sent to the controller and not yet answered. */
  private pendingIsr_: number[] | null = null;
  private readonly followers = new Map<number, FollowerState>();

  constructor(init: LeaderStateInit) {
    assert(init.replicas.includes(init.leaderId), `leader ${init.leaderId} is not a replica of [${init.replicas.join(',')}]`);
    this.leaderId = init.leaderId;
    this.leaderEpoch = init.leaderEpoch;
    this.leaderEpochStartOffset = init.leaderEpochStartOffset;
    this.partitionEpoch_ = init.partitionEpoch;
    this.replicas_ = [...init.replicas];
    this.isr_ = [...init.isr];
    for (const id of init.replicas) {
      if (id === init.leaderId) continue;
      // Kafka: ISR members start caught up now, so a new leader does not shrink them at once.
      const caughtUp = init.isr.includes(id) ? init.nowMs : 0;
      this.followers.set(id, { brokerId: id, logEndOffset: UNKNOWN, lastCaughtUpTimeMs: caughtUp, lastFetchTimeMs: 0, lastFetchLeaderLogEndOffset: UNKNOWN });
    }
  }

  get partitionEpoch(): number {
    return this.partitionEpoch_;
  }

  get replicas(): readonly number[] {
    return this.replicas_;
  }

  /** The committed ISR. */
  get isr(): readonly number[] {
    return this.isr_;
  }

  get pendingIsr(): readonly number[] | null {
    return this.pendingIsr_;
  }

  /** The committed ISR plus members a pending change adds (Kafka's maximal ISR): the high watermark waits for all of them. */
  get maximalIsr(): readonly number[] {
    if (this.pendingIsr_ === null) return this.isr_;
    return [...new Set([...this.isr_, ...this.pendingIsr_])];
  }

  follower(id: number): Readonly<FollowerState> | undefined {
    return this.followers.get(id);
  }

  /** Checks a follower's fetch position against the leader's log. */
  validateFetch(log: ReplicaLogView, fetchOffset: number, lastFetchedEpoch: number): FetchValidation {
    if (lastFetchedEpoch >= 0) {
      const end = log.leaderEpochCache.endOffsetFor(lastFetchedEpoch, log.logEndOffset);
      if (end.epoch === UNKNOWN || end.endOffset === UNKNOWN) {
        // An epoch newer than any the leader knows: the follower's log cannot be trusted past the leader's start.
        return { kind: 'diverging', divergingEpoch: { epoch: UNKNOWN, endOffset: Math.max(log.logStartOffset, Math.min(fetchOffset, log.logEndOffset)) } };
      }
      if (end.epoch < lastFetchedEpoch || end.endOffset < fetchOffset) return { kind: 'diverging', divergingEpoch: end };
    }
    if (fetchOffset < log.logStartOffset || fetchOffset > log.logEndOffset) return { kind: 'out-of-range' };
    return { kind: 'ok' };
  }

  /** A validated fetch by `id` at `fetchOffset`; `leaderLogEndOffset` is the leader's log end offset now. */
  updateFollower(id: number, fetchOffset: number, leaderLogEndOffset: number, nowMs: number): void {
    const f = this.followers.get(id);
    if (f === undefined) return;
    if (fetchOffset >= leaderLogEndOffset) f.lastCaughtUpTimeMs = Math.max(f.lastCaughtUpTimeMs, nowMs);
    else if (f.lastFetchLeaderLogEndOffset >= 0 && fetchOffset >= f.lastFetchLeaderLogEndOffset) f.lastCaughtUpTimeMs = Math.max(f.lastCaughtUpTimeMs, f.lastFetchTimeMs);
    f.logEndOffset = fetchOffset;
    f.lastFetchLeaderLogEndOffset = leaderLogEndOffset;
    f.lastFetchTimeMs = nowMs;
  }

  /** The high watermark the maximal ISR allows (the caller never moves it back). */
  highWatermarkCandidate(leaderLogEndOffset: number): number {
    let hw = leaderLogEndOffset;
    for (const id of this.maximalIsr) {
      if (id === this.leaderId) continue;
      const f = this.followers.get(id);
      // A member this leader has not heard from (or not a replica any more): nothing is known to be replicated.
      const leo = f === undefined || f.logEndOffset < 0 ? -1 : f.logEndOffset;
      if (leo < hw) hw = leo;
    }
    assert(hw <= leaderLogEndOffset);
    return hw;
  }

  /** The ISR to propose with `id` added, or null (already in, a change pending, not caught up, or not eligible). */
  isrExpansion(id: number, highWatermark: number, eligible: (brokerId: number) => boolean): number[] | null {
    if (this.pendingIsr_ !== null || this.isr_.includes(id) || !this.replicas_.includes(id)) return null;
    const f = this.followers.get(id);
    if (f === undefined || f.logEndOffset < 0) return null;
    if (f.logEndOffset < highWatermark || f.logEndOffset < this.leaderEpochStartOffset) return null;
    if (!eligible(id)) return null;
    return [...this.isr_, id];
  }

  /** The ISR without its members that lag by more than `lagMaxMs`, or null when none does (or a change is pending). */
  isrShrink(nowMs: number, leaderLogEndOffset: number, lagMaxMs: number): number[] | null {
    if (this.pendingIsr_ !== null) return null;
    const out = this.outOfSyncReplicas(nowMs, leaderLogEndOffset, lagMaxMs);
    if (out.length === 0) return null;
    return this.isr_.filter((id) => !out.includes(id));
  }

  /** ISR members (not the leader) not at the leader's log end and not caught up within `lagMaxMs`. */
  outOfSyncReplicas(nowMs: number, leaderLogEndOffset: number, lagMaxMs: number): number[] {
    return this.isr_.filter((id) => {
      if (id === this.leaderId) return false;
      const f = this.followers.get(id);
      if (f === undefined) return true;
      return f.logEndOffset !== leaderLogEndOffset && nowMs - f.lastCaughtUpTimeMs > lagMaxMs;
    });
  }

  beginIsrChange(newIsr: readonly number[]): void {
    assert(this.pendingIsr_ === null, 'an ISR change is already in flight');
    assert(newIsr.includes(this.leaderId), 'the leader must stay in its ISR');
    this.pendingIsr_ = [...newIsr];
  }

  /** The controller refused the change in flight for certain (see isrChangeOutcome): drop it. */
  isrChangeFailed(): void {
    this.pendingIsr_ = null;
  }

  /**
   * The committed state of the partition (an AlterPartition answer, or an image with the same
   * leader epoch): taken, clearing the pending change, when its partition epoch is newer than this
   * leader's — or equal while no change is in flight, or equal with the pending ISR (the controller
   * had it already). Returns whether it was taken.
   */
  isrChangeCommitted(isr: readonly number[], partitionEpoch: number, replicas: readonly number[] = this.replicas_): boolean {
    if (partitionEpoch < this.partitionEpoch_) return false;
    // The state this leader already has (the image re-applied for some other change): it says
    // nothing about the change in flight, whose joining member the high watermark must keep
    // waiting for — clearing it here let the high watermark pass a member the controller then
    // added to the ISR without the records (found by the replication simulation, seed 27).
    // (The controller answers a request for the ISR it already has with that state, same epoch: then
    // the change is in effect and is taken.)
    if (partitionEpoch === this.partitionEpoch_ && this.pendingIsr_ !== null && !sameMembers(isr, this.pendingIsr_)) return false;
    this.pendingIsr_ = null;
    this.partitionEpoch_ = partitionEpoch;
    this.isr_ = [...isr];
    if (replicas !== this.replicas_) {
      this.replicas_ = [...replicas];
      for (const id of replicas) {
        if (id !== this.leaderId && !this.followers.has(id)) {
          this.followers.set(id, { brokerId: id, logEndOffset: UNKNOWN, lastCaughtUpTimeMs: 0, lastFetchTimeMs: 0, lastFetchLeaderLogEndOffset: UNKNOWN });
        }
      }
      for (const id of [...this.followers.keys()]) if (!replicas.includes(id)) this.followers.delete(id);
    }
    return true;
  }

  /** Whether acks=all may append: the committed ISR has at least `minIsr` members. */
  enoughReplicas(minIsr: number): boolean {
    return this.isr_.length >= minIsr;
  }
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/**
 * What an AlterPartition answer means for the change in flight (Kafka's handleAlterPartitionError).
 * `errorCode` null: no answer (timeout, connection lost, no controller) — the change may or may
 * not have been committed.
 *  - 'refused': the controller did not apply it and never will (INELIGIBLE_REPLICA,
 *    OPERATION_NOT_ATTEMPTED, INVALID_REQUEST): isrChangeFailed().
 *  - 'await-metadata': this leader's view is stale (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION,
 *    UNKNOWN_TOPIC_OR_PARTITION): keep the change pending until an image with a newer partition
 *    epoch (isrChangeCommitted) or a new leadership replaces it.
 *  - 'retry': unknown outcome: keep it pending and send the same request again. Dropping it would
 *    let the high watermark pass a joining member the controller may already have added to the
 *    ISR without the records (found by the replication simulation, seed 4730).
 */
export function isrChangeOutcome(errorCode: number | null): 'refused' | 'await-metadata' | 'retry' {
  switch (errorCode) {
    case AlterPartitionErrors.INELIGIBLE_REPLICA:
    case AlterPartitionErrors.OPERATION_NOT_ATTEMPTED:
    case AlterPartitionErrors.INVALID_REQUEST:
      return 'refused';
    case AlterPartitionErrors.FENCED_LEADER_EPOCH:
    case AlterPartitionErrors.INVALID_UPDATE_VERSION:
    case AlterPartitionErrors.UNKNOWN_TOPIC_OR_PARTITION:
      return 'await-metadata';
    default:
      return 'retry';
  }
}

/** Kafka error codes an AlterPartition answer may carry (kept here so the logic has no protocol dependency). */
export const AlterPartitionErrors = {
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_REQUEST: 42,
  OPERATION_NOT_ATTEMPTED: 55,
  FENCED_LEADER_EPOCH: 74,
  INVALID_UPDATE_VERSION: 95,
  INELIGIBLE_REPLICA: 107,
} as const;

// ------------------------------------------------------------------ follower side

/** The epoch a follower sends as `last_fetched_epoch`: its log's latest, -1 when it has none. */
export function lastFetchedEpoch(log: ReplicaLogView): number {
  return log.leaderEpochCache.latestEpoch();
}

/** Where a follower truncates when the leader answers a diverging epoch (Kafka's getOffsetTruncationState). */
export function truncationForDivergingEpoch(log: ReplicaLogView, diverging: EpochEndOffset): number {
  const leo = log.logEndOffset;
  if (diverging.epoch === UNKNOWN) return Math.min(diverging.endOffset, leo);
  const local = log.leaderEpochCache.endOffsetFor(diverging.epoch, leo);
  if (local.epoch === UNKNOWN || local.endOffset === UNKNOWN) return Math.min(diverging.endOffset, leo);
  // The follower has the epoch: both logs agree up to where the shorter one ends it.
  if (local.epoch === diverging.epoch) return Math.min(diverging.endOffset, local.endOffset);
  // It has only an older epoch: cut at its end; the next fetch names that epoch and is checked again.
  return Math.min(local.endOffset, leo);
}

/** What a follower does when the leader answers OFFSET_OUT_OF_RANGE. */
export function truncationForOutOfRange(log: ReplicaLogView, fetchOffset: number, leaderLogStartOffset: number, leaderHighWatermark: number): FollowerAction {
  if (fetchOffset < leaderLogStartOffset || leaderHighWatermark < log.logStartOffset) return { kind: 'restart', offset: Math.max(leaderLogStartOffset, 0) };
  // Past the leader's end with no epoch to compare: keep only what the leader has committed.
  return { kind: 'truncate', offset: Math.max(log.logStartOffset, Math.min(leaderHighWatermark, log.logEndOffset)) };
}

export function followerHighWatermark(leaderHighWatermark: number, logEndOffset: number): number {
  return Math.min(leaderHighWatermark, logEndOffset);
}

/** One partition of a Fetch response, as the follower sees it. */
export interface FollowerFetchResponse {
  errorCode: number;
  highWatermark: number;
  logStartOffset: number;
  divergingEpoch: EpochEndOffset;
  records: Buffer | null;
}

export type FollowerAction =
  | { kind: 'append'; records: Buffer | null; highWatermark: number; leaderLogStartOffset: number }
  | { kind: 'truncate'; offset: number }
  | { kind: 'restart'; offset: number }
  /** The leader says it is not (or no longer) the leader at this epoch: wait for the next metadata. */
  | { kind: 'await-metadata'; errorCode: number }
  | { kind: 'backoff'; errorCode: number };

/** Kafka error codes the follower acts on (kept here so the logic has no protocol dependency). */
export const FollowerErrors = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  NOT_LEADER_OR_FOLLOWER: 6,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_LEADER_EPOCH: 75,
  UNKNOWN_TOPIC_ID: 100,
} as const;

/** Decides what one partition of a fetch response means for the follower's log fetched at `fetchOffset`. */
export function planFollowerFetch(log: ReplicaLogView, fetchOffset: number, r: FollowerFetchResponse): FollowerAction {
  switch (r.errorCode) {
    case FollowerErrors.NONE:
      if (r.divergingEpoch.epoch >= 0 || r.divergingEpoch.endOffset >= 0) return { kind: 'truncate', offset: truncationForDivergingEpoch(log, r.divergingEpoch) };
      return { kind: 'append', records: r.records !== null && r.records.length > 0 ? r.records : null, highWatermark: r.highWatermark, leaderLogStartOffset: r.logStartOffset };
    case FollowerErrors.OFFSET_OUT_OF_RANGE:
      return truncationForOutOfRange(log, fetchOffset, r.logStartOffset, r.highWatermark);
    case FollowerErrors.NOT_LEADER_OR_FOLLOWER:
    case FollowerErrors.FENCED_LEADER_EPOCH:
    case FollowerErrors.UNKNOWN_LEADER_EPOCH:
    case FollowerErrors.UNKNOWN_TOPIC_OR_PARTITION:
    case FollowerErrors.UNKNOWN_TOPIC_ID:
      return { kind: 'await-metadata', errorCode: r.errorCode };
    default:
      return { kind: 'backoff', errorCode: r.errorCode };
  }
}

/**
 * Carries out `action` on the follower's log. Returns whether the log changed (appended or
 * truncated), so the fetcher knows to fetch again at once.
 */
export async function applyFollowerFetch(log: FollowerLog, action: FollowerAction): Promise<boolean> {
  switch (action.kind) {
    case 'append': {
      if (action.records !== null) {
        // An empty log restarted inside the leader's first batch (its log start falls mid-batch after
        // DeleteRecords): restart at that batch's base offset so the batch can be stored whole (Kafka's way).
        const base = Number(action.records.readBigInt64BE(0));
        const last = base + action.records.readInt32BE(23);
        if (log.logEndOffset === log.logStartOffset && base < log.logEndOffset && last >= log.logEndOffset) await log.truncateFullyAndStartAt(base);
        await log.appendAsFollower(action.records);
      }
      log.updateHighWatermark(followerHighWatermark(action.highWatermark, log.logEndOffset));
      // The leader's log start moved (retention, DeleteRecords): follow it as far as this replica's high watermark.
      const start = Math.min(action.leaderLogStartOffset, log.highWatermark);
      if (start > log.logStartOffset) await log.deleteRecordsBefore(start);
      return action.records !== null;
    }
    case 'truncate': {
      // Even at or past the log end: truncateTo then drops an epoch entry at the log end that wrote
      // nothing (this replica led an epoch without appending). Skipping it, the next fetch names
      // that epoch again and the leader answers the same diverging epoch forever (found by the
      // replication simulation, seed 1).
      const before = log.logEndOffset;
      const latest = log.leaderEpochCache.latestEpoch();
      await log.truncateTo(Math.min(action.offset, before));
      return log.logEndOffset !== before || log.leaderEpochCache.latestEpoch() !== latest;
    }
    case 'restart':
      await log.truncateFullyAndStartAt(action.offset);
      return true;
    default:
      return false;
  }
}
