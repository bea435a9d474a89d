/**
 * RaftClient: one voter of a KIP-595 Raft quorum (Kafka's KafkaRaftClient), as deterministic,
 * I/O-free logic over the seams in types.ts.
 *
 * States (Kafka's names): `unattached` (an epoch is known, no leader; maybe a vote cast),
 * `follower` (fetching from the leader of the epoch), `candidate` (asking for votes in a new epoch),
 * `leader`, `resigned` (a leader giving up its epoch: on graceful shutdown, after losing contact
 * with a majority, or at restart after having been leader).
 *
 * Behaviour:
 * - Elections. A voter that hears nothing from a leader within the election timeout (unattached)
 *   or fetch timeout (follower) becomes a candidate of epoch + 1, votes for itself and sends Vote
 *   to the other voters. A voter grants at most one vote per epoch, only to a candidate whose log
 *   ends at a (last epoch, end offset) at least its own, and persists `quorum-state` before it
 *   answers. A majority of votes makes the leader, which appends a LeaderChange control entry
 *   (its epoch start) and announces itself with BeginQuorumEpoch. Any message with a higher epoch
 *   moves a replica to that epoch (as a follower when the leader is named, else unattached).
 * - Replication is pull-based. A follower sends Fetch(fetchOffset, lastFetchedEpoch) where
 *   fetchOffset is its flushed log end. The leader checks the pair against its own log: if the
 *   follower's last epoch does not end where the leader's does, the answer is a diverging epoch
 *   (the end of the largest leader epoch <= lastFetchedEpoch) and the follower truncates to it;
 *   if the offset is below the leader's log start, the answer is the latest snapshot id and the
 *   follower pulls it with FetchSnapshot. Otherwise the leader sends entries from fetchOffset.
 * - Commit. The high watermark is the largest offset flushed by a majority of voters (the
 *   leader's own flushed end counts), and only moves past an entry of the current epoch (the
 *   LeaderChange entry makes that immediate). It is not persisted (as in KIP-595): after a
 *   restart it starts at the snapshot end and is learnt again from the leader. Within one
 *   incarnation it never decreases. Committed entries go to the listener in order, once.
 * - Check quorum. A leader that has not been fetched from by a majority within the fetch
 *   timeout resigns, so an isolated leader steps down and stops accepting proposals.
 * - Snapshots. `createSnapshot(endOffset, data)` stores the state machine at a committed offset
 *   and deletes the log below it.
 *
 * - Observers. A replica that is not a voter (a broker, in Kafka) never votes or stands for
 *   election: without a leader it sends a Fetch to a random voter, whose answer names the leader,
 *   and then follows it like a voter does. Its fetches do not count for the high watermark.
 *
 * Limits: the voter set is static (`controller.quorum.voters`; no KIP-853 reconfiguration); the
 * leader answers a fetch at once (no long poll: a caught-up follower fetches again after
 * `fetchIntervalMs`); no pre-vote (KIP-996).
 */
import assert from 'node:assert/strict';
import { ErrorCode } from '../protocol/errors.js';
import type {
  BeginQuorumEpochRequest,
  BeginQuorumEpochResponse,
  EndQuorumEpochRequest,
  EndQuorumEpochResponse,
  FetchRequest,
  FetchResponse,
  FetchSnapshotRequest,
  FetchSnapshotResponse,
  LogEntry,
  OffsetAndEpoch,
  QuorumStateStore,
  RaftClock,
  RaftListener,
  RaftLogStore,
  RaftMessage,
  RaftSnapshotStore,
  RaftTransport,
  SnapshotId,
  VoteRequest,
  VoteResponse,
} from './types.js';

export type RaftRole = 'unattached' | 'follower' | 'candidate' | 'leader' | 'resigned';

/**
 * Deliberate bugs, only for proving that the simulation's invariant checks catch them
 * (test/raft/simulation.test.ts). Never set outside tests.
 */
export interface RaftTestingBugs {
  /** Grant a vote in an epoch where a vote was already given to someone else. */
  voteTwice?: boolean;
  /** Advance the high watermark to the largest replica offset instead of the majority's. */
  commitWithoutMajority?: boolean;
  /** Followers report offsets they have not flushed. */
  fetchBeforeFlush?: boolean;
}

export interface RaftConfig {
  nodeId: number;
  /** The voters' node ids (`controller.quorum.voters`), including this one. */
  voters: readonly number[];
  /** `controller.quorum.election.timeout.ms`: the base; each timeout is random in [t, 2t). */
  electionTimeoutMs: number;
  /** `controller.quorum.fetch.timeout.ms`: a follower without a good fetch for this long stands for election. */
  fetchTimeoutMs: number;
  /** `controller.quorum.request.timeout.ms`: an unanswered request is sent again after this long. */
  requestTimeoutMs: number;
  /** `controller.quorum.retry.backoff.ms`. */
  retryBackoffMs: number;
  /** How long a caught-up follower waits before its next fetch. */
  fetchIntervalMs: number;
  /** `controller.quorum.append.linger.ms`: how long a leader gathers proposals before one flush. */
  appendLingerMs: number;
  /** The most entries in one Fetch response. */
  maxFetchEntries: number;
  /** The most entry bytes in one Fetch response (at least one entry is always sent). */
  maxFetchBytes: number;
  /** The most bytes in one FetchSnapshot response. */
  snapshotChunkBytes: number;
  /** Proposals are refused while this many entries are uncommitted. */
  maxUncommittedEntries: number;
  /** Uniform in [0, 1): seeded in simulations. */
  random: () => number;
  testingBugs?: RaftTestingBugs;
}

export const DEFAULT_RAFT_TIMING = {
  electionTimeoutMs: 1000,
  fetchTimeoutMs: 2000,
  requestTimeoutMs: 2000,
  retryBackoffMs: 20,
  fetchIntervalMs: 50,
  appendLingerMs: 5,
  maxFetchEntries: 1000,
  maxFetchBytes: 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  maxUncommittedEntries: 10000,
} as const;

/** The LeaderChange control entry's value (Kafka's LeaderChangeMessage, as JSON). */
export interface LeaderChangeMessage {
  version: 0;
  leaderId: number;
  voters: Array<{ voterId: number }>;
  grantingVoters: Array<{ voterId: number }>;
}

export interface QuorumDescription {
  leaderId: number;
  leaderEpoch: number;
  /** -1 until the leader has committed an entry of its epoch. */
  highWatermark: number;
  voters: Array<{ replicaId: number; logEndOffset: number; lastFetchTimestamp: number }>;
  observers: Array<{ replicaId: number; logEndOffset: number; lastFetchTimestamp: number }>;
}

/** The most observers a leader keeps state for. */
const MAX_OBSERVERS = 1024;

interface ReplicaState {
  /** The replica's flushed log end as of its last valid fetch; -1 before one. */
  endOffset: number;
  lastFetchMs: number;
}

interface InFlightFetch {
  fetchOffset: number;
  lastFetchedEpoch: number;
  sentMs: number;
}

interface SnapshotFetch {
  id: SnapshotId;
  chunks: Buffer[];
  position: number;
  /** When the outstanding FetchSnapshot was sent, or -1 when none is outstanding. */
  sentMs: number;
}

export class RaftClient {
  private role: RaftRole = 'unattached';
  private epoch = 0;
  private leaderId = -1;
  private votedId = -1;
  private highWatermark = 0;
  /** The next offset to hand to the listener. */
  private appliedOffset = 0;
  private snapshotId: SnapshotId | null = null;
  private started = false;
  private closed = false;

  /** unattached, candidate, resigned: when to stand for (another) election. */
  private electionDeadlineMs = Infinity;
  /** follower: when to give up on the leader. */
  private fetchDeadlineMs = Infinity;

  // candidate
  private readonly granted = new Set<number>();
  private readonly rejected = new Set<number>();
  private voteRetryMs = Infinity;

  // leader
  private epochStartOffset = 0;
  private readonly replicas = new Map<number, ReplicaState>();
  private readonly unannounced = new Set<number>();
  private announceRetryMs = Infinity;
  private flushAtMs = Infinity;

  // follower
  private inFlight: InFlightFetch | null = null;
  private nextFetchMs = Infinity;
  private snapshotFetch: SnapshotFetch | null = null;

  private readonly majority: number;
  /** Not a voter: replicates and applies the log, never votes or leads (a broker, in Kafka). */
  readonly observer: boolean;
  /** The leader's view of the observers that fetch from it (they do not count for the high watermark). */
  private readonly observers = new Map<number, ReplicaState>();

  constructor(
    private readonly config: RaftConfig,
    private readonly log: RaftLogStore,
    private readonly quorumState: QuorumStateStore,
    private readonly snapshots: RaftSnapshotStore,
    private readonly clock: RaftClock,
    private readonly transport: RaftTransport,
    private readonly listener: RaftListener,
  ) {
    assert(config.voters.length > 0 && new Set(config.voters).size === config.voters.length, `bad voter set ${config.voters.join(',')}`);
    this.observer = !config.voters.includes(config.nodeId);
    this.majority = Math.floor(config.voters.length / 2) + 1;
  }

  // ---- the public surface ----

  get nodeId(): number {
    return this.config.nodeId;
  }
  get currentRole(): RaftRole {
    return this.role;
  }
  get currentEpoch(): number {
    return this.epoch;
  }
  get currentLeaderId(): number {
    return this.leaderId;
  }
  get currentVotedId(): number {
    return this.votedId;
  }
  get currentHighWatermark(): number {
    return this.highWatermark;
  }
  get latestSnapshotId(): SnapshotId | null {
    return this.snapshotId;
  }
  isLeader(): boolean {
    return this.role === 'leader';
  }

  /**
   * The leader's view of the quorum (what DescribeQuorum answers): each voter's flushed log end
   * as of its last fetch (the leader's own flushed end for itself; -1 before a first fetch) and
   * when it last fetched. Null when this replica is not the leader.
   */
  describeQuorum(): QuorumDescription | null {
    if (this.role !== 'leader') return null;
    const now = this.clock.nowMs();
    return {
      leaderId: this.config.nodeId,
      leaderEpoch: this.epoch,
      highWatermark: this.highWatermark > this.epochStartOffset ? this.highWatermark : -1,
      voters: this.config.voters.map((id) => {
        if (id === this.config.nodeId) return { replicaId: id, logEndOffset: this.log.flushedEndOffset, lastFetchTimestamp: now };
        const r = this.replicas.get(id)!;
        return { replicaId: id, logEndOffset: r.endOffset, lastFetchTimestamp: r.lastFetchMs };
      }),
      observers: [...this.observers].sort((a, b) => a[0] - b[0]).map(([id, r]) => ({ replicaId: id, logEndOffset: r.endOffset, lastFetchTimestamp: r.lastFetchMs })),
    };
  }

  /** Loads the snapshot and the quorum state; call once before anything else. */
  start(): void {
    assert(!this.started, 'started twice');
    this.started = true;
    const snapshot = this.snapshots.latest();
    if (snapshot !== null) {
      this.snapshotId = snapshot.id;
      // A crash between writing a snapshot and deleting the log below it leaves both.
      if (this.log.logStartOffset < snapshot.id.endOffset) this.log.deleteBefore(snapshot.id.endOffset);
      this.highWatermark = snapshot.id.endOffset;
      this.appliedOffset = snapshot.id.endOffset;
      this.listener.handleLoadSnapshot(snapshot.id, snapshot.data);
    } else {
      assert.equal(this.log.logStartOffset, 0, 'log starts past 0 but there is no snapshot');
    }
    assert(this.log.logStartOffset === this.highWatermark, `log start ${this.log.logStartOffset} is not the snapshot end ${this.highWatermark}`);

    const state = this.quorumState.read();
    const now = this.clock.nowMs();
    if (state === null) {
      this.becomeUnattached(0, -1);
    } else {
      this.epoch = state.leaderEpoch;
      this.leaderId = state.leaderId;
      this.votedId = state.votedId;
      if (state.leaderId === this.config.nodeId) {
        // A leader does not come back as leader: it gives its epoch up and lets the quorum move on.
        this.role = 'resigned';
        this.electionDeadlineMs = now + this.randomElectionTimeoutMs();
      } else if (state.leaderId >= 0) {
        this.role = 'follower';
        this.fetchDeadlineMs = now + this.config.fetchTimeoutMs;
        this.nextFetchMs = now;
      } else if (state.votedId === this.config.nodeId) {
        this.role = 'candidate';
        this.granted.add(this.config.nodeId);
        this.electionDeadlineMs = now + this.randomElectionTimeoutMs();
        this.voteRetryMs = now;
      } else {
        this.role = 'unattached';
        this.electionDeadlineMs = now + this.randomElectionTimeoutMs();
      }
    }
    if (!this.observer && this.config.voters.length === 1 && this.role !== 'leader') this.becomeCandidate();
    this.listener.handleLeaderChange(this.leaderId, this.epoch);
    this.scheduleWakeup();
  }

  /** Stops timers; a closed client ignores messages and polls. */
  close(): void {
    this.closed = true;
  }

  /**
   * Appends entries to the leader's log; returns the offset of the last one and the epoch, or
   * null when this replica is not the leader or too much is uncommitted. They are committed
   * when the high watermark passes that offset with the entry there still of that epoch.
   */
  propose(values: readonly Buffer[]): OffsetAndEpoch | null {
    assert(values.length > 0, 'empty proposal');
    if (this.closed || this.role !== 'leader') return null;
    if (this.log.endOffset - this.highWatermark + values.length > this.config.maxUncommittedEntries) return null;
    this.log.append(values.map((value) => ({ epoch: this.epoch, control: false, value })));
    this.flushAtMs = Math.min(this.flushAtMs, this.clock.nowMs() + this.config.appendLingerMs);
    this.scheduleWakeup();
    return { offset: this.log.endOffset - 1, epoch: this.epoch };
  }

  /**
   * Stores a snapshot of the state machine covering [0, endOffset) and deletes the log below it.
   * endOffset must be committed and already applied by the listener.
   */
  createSnapshot(endOffset: number, data: Buffer): SnapshotId {
    assert(endOffset <= this.appliedOffset, `snapshot at ${endOffset} past the applied offset ${this.appliedOffset}`);
    assert(endOffset > this.log.logStartOffset, `snapshot at ${endOffset} is not past the log start ${this.log.logStartOffset}`);
    const id: SnapshotId = { endOffset, epoch: this.log.entry(endOffset - 1).epoch };
    this.snapshots.write(id, data);
    this.snapshotId = id;
    this.log.deleteBefore(endOffset);
    return id;
  }

  /** Graceful leadership hand-off (before shutdown): the leader resigns and tells the others. */
  resign(): void {
    if (this.role === 'leader') this.becomeResigned();
    this.scheduleWakeup();
  }

  /** The timers: call when the clock reaches the time last passed to `wakeAt`. */
  poll(): void {
    if (this.closed) return;
    const now = this.clock.nowMs();
    switch (this.role) {
      case 'leader':
        if (this.flushAtMs <= now) this.flushLeader();
        if (this.announceRetryMs <= now) this.announce();
        this.checkQuorum(now);
        break;
      case 'candidate':
        if (this.electionDeadlineMs <= now) this.becomeCandidate();
        else if (this.voteRetryMs <= now) this.requestVotes();
        break;
      case 'unattached':
      case 'resigned':
        if (this.electionDeadlineMs <= now) this.standForElection();
        break;
      case 'follower':
        if (this.fetchDeadlineMs <= now) {
          this.standForElection();
          break;
        }
        if (this.inFlight !== null && this.inFlight.sentMs + this.config.requestTimeoutMs <= now) this.inFlight = null;
        if (this.snapshotFetch !== null && this.snapshotFetch.sentMs >= 0 && this.snapshotFetch.sentMs + this.config.requestTimeoutMs <= now) {
          this.sendFetchSnapshot();
        } else if (this.snapshotFetch === null && this.inFlight === null && this.nextFetchMs <= now) {
          this.sendFetch();
        }
        break;
    }
    this.scheduleWakeup();
  }

  /** One message from the transport. */
  handle(message: RaftMessage): void {
    if (this.closed) return;
    if (!this.plausible(message)) return;
    switch (message.type) {
      case 'VoteRequest':
        this.handleVoteRequest(message);
        break;
      case 'VoteResponse':
        this.handleVoteResponse(message);
        break;
      case 'BeginQuorumEpochRequest':
        this.handleBeginQuorumEpochRequest(message);
        break;
      case 'BeginQuorumEpochResponse':
        this.handleBeginQuorumEpochResponse(message);
        break;
      case 'EndQuorumEpochRequest':
        this.handleEndQuorumEpochRequest(message);
        break;
      case 'EndQuorumEpochResponse':
        this.maybeTransition(message.leaderId, message.leaderEpoch);
        break;
      case 'FetchRequest':
        this.handleFetchRequest(message);
        break;
      case 'FetchResponse':
        this.handleFetchResponse(message);
        break;
      case 'FetchSnapshotRequest':
        this.handleFetchSnapshotRequest(message);
        break;
      case 'FetchSnapshotResponse':
        this.handleFetchSnapshotResponse(message);
        break;
    }
    this.scheduleWakeup();
  }

  /**
   * Drops answers that name a leader outside the voter set or a negative epoch: they cannot come
   * from a voter of this quorum, and acting on them could corrupt the state (requests are
   * validated by their handlers, which answer with an error).
   */
  private plausible(m: RaftMessage): boolean {
    if (m.type.endsWith('Request')) return true;
    const r = m as Extract<RaftMessage, { leaderId: number; leaderEpoch: number }>;
    return r.leaderEpoch >= 0 && (r.leaderId === -1 || this.config.voters.includes(r.leaderId));
  }

  private isVoter(id: number): boolean {
    return this.config.voters.includes(id);
  }

  // ---- log helpers ----

  /** The epoch of the last entry (or of the snapshot when the log is empty; 0 for nothing at all). */
  lastEpoch(): number {
    if (this.log.endOffset > this.log.logStartOffset) return this.log.entry(this.log.endOffset - 1).epoch;
    return this.snapshotId?.epoch ?? 0;
  }

  /**
   * Where the largest epoch <= `epoch` ends in this log (Kafka's endOffsetForEpoch): the offset
   * after its last entry, with that epoch. Epochs never decrease along the log, so this is a
   * binary search for the first entry of a larger epoch.
   */
  endOffsetForEpoch(epoch: number): OffsetAndEpoch {
    let lo = this.log.logStartOffset;
    let hi = this.log.endOffset;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.log.entry(mid).epoch > epoch) hi = mid;
      else lo = mid + 1;
    }
    if (lo > this.log.logStartOffset) return { offset: lo, epoch: this.log.entry(lo - 1).epoch };
    if (this.snapshotId !== null && this.snapshotId.epoch <= epoch) return { offset: this.log.logStartOffset, epoch: this.snapshotId.epoch };
    return { offset: this.log.logStartOffset, epoch: 0 };
  }

  private appendEntries(entries: readonly LogEntry[]): void {
    let last = this.lastEpoch();
    for (const e of entries) {
      if (e.epoch < last) assert.fail(`entry of epoch ${e.epoch} after epoch ${last}`);
      if (e.epoch > this.epoch) assert.fail(`entry of epoch ${e.epoch} from the future (current ${this.epoch})`);
      last = e.epoch;
    }
    this.log.append(entries);
  }

  // ---- state transitions (each persists quorum-state before anything depends on it) ----

  private persist(): void {
    this.quorumState.write({ leaderEpoch: this.epoch, leaderId: this.leaderId, votedId: this.votedId });
  }

  private resetRoleState(): void {
    this.electionDeadlineMs = Infinity;
    this.fetchDeadlineMs = Infinity;
    this.granted.clear();
    this.rejected.clear();
    this.voteRetryMs = Infinity;
    this.replicas.clear();
    this.observers.clear();
    this.unannounced.clear();
    this.announceRetryMs = Infinity;
    this.inFlight = null;
    this.nextFetchMs = Infinity;
    this.snapshotFetch = null;
  }

  private setLeader(leaderId: number, epoch: number): void {
    const changed = leaderId !== this.leaderId || epoch !== this.epoch;
    this.leaderId = leaderId;
    this.epoch = epoch;
    if (changed) this.listener.handleLeaderChange(leaderId, epoch);
  }

  private becomeUnattached(epoch: number, votedId: number): void {
    assert(epoch >= this.epoch, `epoch going back from ${this.epoch} to ${epoch}`);
    if (this.role === 'leader') this.flushLeader();
    this.resetRoleState();
    this.role = 'unattached';
    this.votedId = votedId;
    this.setLeader(-1, epoch);
    this.persist();
    this.electionDeadlineMs = this.clock.nowMs() + this.randomElectionTimeoutMs();
  }

  private becomeFollower(epoch: number, leaderId: number): void {
    assert(epoch >= this.epoch, `epoch going back from ${this.epoch} to ${epoch}`);
    assert(leaderId !== this.config.nodeId, 'following itself');
    assert(!(epoch === this.epoch && (this.role === 'leader' || this.role === 'resigned')), `two leaders in epoch ${epoch}: ${this.config.nodeId} and ${leaderId}`);
    if (this.role === 'leader') this.flushLeader();
    if (epoch > this.epoch) this.votedId = -1;
    this.resetRoleState();
    this.role = 'follower';
    this.setLeader(leaderId, epoch);
    this.persist();
    const now = this.clock.nowMs();
    this.fetchDeadlineMs = now + this.config.fetchTimeoutMs;
    this.nextFetchMs = now;
  }

  /** A voter without a leader stands for election; an observer looks for the leader instead. */
  private standForElection(): void {
    if (!this.observer) return this.becomeCandidate();
    if (this.role !== 'unattached') this.becomeUnattached(this.epoch, -1);
    // Any voter answers a Fetch with the leader it knows (or an epoch to move to).
    const voter = this.config.voters[Math.floor(this.config.random() * this.config.voters.length)]!;
    this.transport.send(voter, {
      type: 'FetchRequest',
      sourceId: this.config.nodeId,
      currentLeaderEpoch: this.epoch,
      fetchOffset: this.log.endOffset,
      lastFetchedEpoch: this.lastEpoch(),
    });
    this.electionDeadlineMs = this.clock.nowMs() + this.config.requestTimeoutMs;
  }

  private becomeCandidate(): void {
    assert(!this.observer, 'an observer never stands for election');
    if (this.role === 'leader') this.flushLeader();
    this.resetRoleState();
    this.role = 'candidate';
    this.votedId = this.config.nodeId;
    this.setLeader(-1, this.epoch + 1);
    this.persist();
    this.granted.add(this.config.nodeId);
    this.electionDeadlineMs = this.clock.nowMs() + this.randomElectionTimeoutMs();
    if (this.granted.size >= this.majority) this.becomeLeader();
    else this.requestVotes();
  }

  private becomeLeader(): void {
    assert.equal(this.role, 'candidate');
    const granting = [...this.granted].sort((a, b) => a - b);
    this.resetRoleState();
    this.role = 'leader';
    this.setLeader(this.config.nodeId, this.epoch);
    this.persist();
    const now = this.clock.nowMs();
    this.epochStartOffset = this.log.endOffset;
    for (const v of this.config.voters) {
      if (v === this.config.nodeId) continue;
      // Counting the election as contact gives every follower one fetch timeout to show up.
      this.replicas.set(v, { endOffset: -1, lastFetchMs: now });
      this.unannounced.add(v);
    }
    const change: LeaderChangeMessage = {
      version: 0,
      leaderId: this.config.nodeId,
      voters: this.config.voters.map((voterId) => ({ voterId })),
      grantingVoters: granting.map((voterId) => ({ voterId })),
    };
    this.appendEntries([{ epoch: this.epoch, control: true, value: Buffer.from(JSON.stringify(change)) }]);
    this.flushLeader();
    this.announce();
  }

  private becomeResigned(): void {
    assert.equal(this.role, 'leader');
    this.flushLeader();
    // Successors in the order of how much of the log they have.
    const successors = [...this.replicas.entries()].sort((a, b) => b[1].endOffset - a[1].endOffset || a[0] - b[0]).map(([id]) => id);
    this.resetRoleState();
    this.role = 'resigned';
    this.electionDeadlineMs = this.clock.nowMs() + this.randomElectionTimeoutMs();
    for (const v of successors) {
      this.transport.send(v, {
        type: 'EndQuorumEpochRequest',
        sourceId: this.config.nodeId,
        leaderId: this.config.nodeId,
        leaderEpoch: this.epoch,
        preferredSuccessors: successors,
      });
    }
  }

  /**
   * A message carried (leaderId, epoch). A higher epoch moves this replica there; a leader named
   * for the current epoch is followed. Returns whether the state changed.
   */
  private maybeTransition(leaderId: number, epoch: number): boolean {
    if (epoch > this.epoch) {
      if (leaderId >= 0 && leaderId !== this.config.nodeId) this.becomeFollower(epoch, leaderId);
      else this.becomeUnattached(epoch, -1);
      return true;
    }
    if (epoch === this.epoch && leaderId >= 0 && leaderId !== this.config.nodeId && (this.role === 'unattached' || this.role === 'candidate')) {
      this.becomeFollower(epoch, leaderId);
      return true;
    }
    return false;
  }

  private randomElectionTimeoutMs(): number {
    return this.config.electionTimeoutMs + Math.floor(this.config.random() * this.config.electionTimeoutMs);
  }

  // ---- Vote ----

  private requestVotes(): void {
    const now = this.clock.nowMs();
    this.voteRetryMs = now + this.config.requestTimeoutMs;
    const lastOffset = this.log.endOffset;
    const lastOffsetEpoch = this.lastEpoch();
    for (const v of this.config.voters) {
      if (v === this.config.nodeId || this.granted.has(v) || this.rejected.has(v)) continue;
      this.transport.send(v, {
        type: 'VoteRequest',
        sourceId: this.config.nodeId,
        candidateEpoch: this.epoch,
        candidateId: this.config.nodeId,
        lastOffsetEpoch,
        lastOffset,
      });
    }
  }

  private handleVoteRequest(m: VoteRequest): void {
    const respond = (errorCode: number, voteGranted: boolean): void =>
      this.transport.send(m.sourceId, {
        type: 'VoteResponse',
        sourceId: this.config.nodeId,
        errorCode,
        leaderId: this.leaderId,
        leaderEpoch: this.epoch,
        voteGranted,
      });
    if (!this.isVoter(m.candidateId) || m.candidateId !== m.sourceId || m.candidateId === this.config.nodeId) return respond(ErrorCode.INCONSISTENT_VOTER_SET, false);
    if (m.lastOffset < 0 || m.lastOffsetEpoch < 0) return respond(ErrorCode.INVALID_REQUEST, false);
    if (m.candidateEpoch < this.epoch) return respond(ErrorCode.FENCED_LEADER_EPOCH, false);
    if (m.candidateEpoch > this.epoch) this.becomeUnattached(m.candidateEpoch, -1);

    let grant = this.mayVoteFor(m.candidateId);
    if (grant) {
      const myLastEpoch = this.lastEpoch();
      grant = m.lastOffsetEpoch > myLastEpoch || (m.lastOffsetEpoch === myLastEpoch && m.lastOffset >= this.log.endOffset);
    }
    // (With the voteTwice bug a candidate grants and stays a candidate, counting its own vote too.)
    if (grant && this.votedId !== m.candidateId && this.role !== 'candidate') {
      this.votedId = m.candidateId;
      this.persist();
      this.electionDeadlineMs = this.clock.nowMs() + this.randomElectionTimeoutMs();
    }
    respond(ErrorCode.NONE, grant);
  }

  /** Whether this replica may give its vote of the current epoch to `candidateId` (the log comparison aside). */
  private mayVoteFor(candidateId: number): boolean {
    if (this.observer) return false;
    switch (this.role) {
      case 'unattached':
        return this.votedId === -1 || this.votedId === candidateId || this.config.testingBugs?.voteTwice === true;
      case 'candidate':
        return this.config.testingBugs?.voteTwice === true;
      default:
        // A follower has a leader in this epoch; a leader or resigned leader voted for itself.
        return false;
    }
  }

  private handleVoteResponse(m: VoteResponse): void {
    if (this.maybeTransition(m.leaderId, m.leaderEpoch)) return;
    if (this.role !== 'candidate' || m.leaderEpoch !== this.epoch || m.errorCode !== ErrorCode.NONE) return;
    if (m.voteGranted) {
      this.granted.add(m.sourceId);
      if (this.granted.size >= this.majority) this.becomeLeader();
    } else {
      this.rejected.add(m.sourceId);
    }
  }

  // ---- BeginQuorumEpoch / EndQuorumEpoch ----

  private announce(): void {
    this.announceRetryMs = this.unannounced.size === 0 ? Infinity : this.clock.nowMs() + this.config.requestTimeoutMs;
    for (const v of this.unannounced) {
      this.transport.send(v, { type: 'BeginQuorumEpochRequest', sourceId: this.config.nodeId, leaderId: this.config.nodeId, leaderEpoch: this.epoch });
    }
  }

  private handleBeginQuorumEpochRequest(m: BeginQuorumEpochRequest): void {
    if (!this.isVoter(m.leaderId) || m.leaderId !== m.sourceId || m.leaderId === this.config.nodeId || m.leaderEpoch < 0) {
      return this.transport.send(m.sourceId, { type: 'BeginQuorumEpochResponse', sourceId: this.config.nodeId, errorCode: ErrorCode.INCONSISTENT_VOTER_SET, leaderId: this.leaderId, leaderEpoch: this.epoch });
    }
    if (m.leaderEpoch >= this.epoch && !(this.role === 'follower' && this.leaderId === m.leaderId && this.epoch === m.leaderEpoch)) {
      this.becomeFollower(m.leaderEpoch, m.leaderId);
    }
    this.transport.send(m.sourceId, {
      type: 'BeginQuorumEpochResponse',
      sourceId: this.config.nodeId,
      errorCode: m.leaderEpoch < this.epoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.NONE,
      leaderId: this.leaderId,
      leaderEpoch: this.epoch,
    });
  }

  private handleBeginQuorumEpochResponse(m: BeginQuorumEpochResponse): void {
    if (this.maybeTransition(m.leaderId, m.leaderEpoch)) return;
    if (this.role === 'leader' && m.leaderEpoch === this.epoch && m.errorCode === ErrorCode.NONE) this.unannounced.delete(m.sourceId);
  }

  private handleEndQuorumEpochRequest(m: EndQuorumEpochRequest): void {
    if (!this.isVoter(m.leaderId) || m.leaderId !== m.sourceId || m.leaderId === this.config.nodeId || m.leaderEpoch < 0) {
      return this.transport.send(m.sourceId, { type: 'EndQuorumEpochResponse', sourceId: this.config.nodeId, errorCode: ErrorCode.INCONSISTENT_VOTER_SET, leaderId: this.leaderId, leaderEpoch: this.epoch });
    }
    if (m.leaderEpoch > this.epoch) this.becomeUnattached(m.leaderEpoch, -1);
    if (m.leaderEpoch === this.epoch && (this.role === 'unattached' || (this.role === 'follower' && this.leaderId === m.leaderId))) {
      // The preferred successor stands first; the others wait longer the further down the list they are.
      const position = m.preferredSuccessors.indexOf(this.config.nodeId);
      const backoffMs = position < 0 ? this.randomElectionTimeoutMs() : Math.min(this.config.electionTimeoutMs, this.config.retryBackoffMs * 2 ** position);
      const at = this.clock.nowMs() + backoffMs + Math.floor(this.config.random() * this.config.retryBackoffMs);
      if (this.role === 'follower') this.fetchDeadlineMs = Math.min(this.fetchDeadlineMs, at);
      else this.electionDeadlineMs = Math.min(this.electionDeadlineMs, at);
    }
    this.transport.send(m.sourceId, {
      type: 'EndQuorumEpochResponse',
      sourceId: this.config.nodeId,
      errorCode: m.leaderEpoch < this.epoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.NONE,
      leaderId: this.leaderId,
      leaderEpoch: this.epoch,
    });
  }

  // ---- leader: flush, high watermark, check quorum ----

  private flushLeader(): void {
    this.flushAtMs = Infinity;
    this.log.flush();
    if (this.role === 'leader') this.maybeAdvanceHighWatermark();
  }

  private maybeAdvanceHighWatermark(): void {
    const offsets = this.config.voters.map((v) => (v === this.config.nodeId ? this.log.flushedEndOffset : this.replicas.get(v)!.endOffset)).sort((a, b) => b - a);
    const candidate = this.config.testingBugs?.commitWithoutMajority === true ? offsets[0]! : offsets[this.majority - 1]!;
    // Only an entry of this epoch commits what is below it (Raft's rule; KIP-595's epoch start offset).
    if (candidate > this.epochStartOffset && candidate > this.highWatermark) {
      this.highWatermark = candidate;
      this.applyCommitted();
    }
  }

  private observerState(id: number): ReplicaState {
    let state = this.observers.get(id);
    if (state === undefined) {
      // Bounded: the least recently seen observer makes room.
      if (this.observers.size >= MAX_OBSERVERS) {
        const oldest = [...this.observers].sort((a, b) => a[1].lastFetchMs - b[1].lastFetchMs)[0]![0];
        this.observers.delete(oldest);
      }
      state = { endOffset: -1, lastFetchMs: 0 };
      this.observers.set(id, state);
    }
    return state;
  }

  private checkQuorum(now: number): void {
    if (this.config.voters.length === 1) return;
    const times = this.config.voters.map((v) => (v === this.config.nodeId ? now : this.replicas.get(v)!.lastFetchMs)).sort((a, b) => b - a);
    if (now - times[this.majority - 1]! > this.config.fetchTimeoutMs) this.becomeResigned();
  }

  private applyCommitted(): void {
    while (this.appliedOffset < this.highWatermark) {
      this.listener.handleCommit(this.appliedOffset, this.log.entry(this.appliedOffset));
      this.appliedOffset++;
    }
  }

  // ---- Fetch ----

  private sendFetch(): void {
    if (this.config.testingBugs?.fetchBeforeFlush !== true) assert.equal(this.log.flushedEndOffset, this.log.endOffset, 'a follower fetches from its flushed end');
    const fetchOffset = this.log.endOffset;
    const lastFetchedEpoch = this.lastEpoch();
    this.inFlight = { fetchOffset, lastFetchedEpoch, sentMs: this.clock.nowMs() };
    this.transport.send(this.leaderId, {
      type: 'FetchRequest',
      sourceId: this.config.nodeId,
      currentLeaderEpoch: this.epoch,
      fetchOffset,
      lastFetchedEpoch,
    });
  }

  private handleFetchRequest(m: FetchRequest): void {
    const base = {
      type: 'FetchResponse' as const,
      sourceId: this.config.nodeId,
      leaderId: this.leaderId,
      leaderEpoch: this.epoch,
      highWatermark: -1,
      fetchOffset: m.fetchOffset,
      lastFetchedEpoch: m.lastFetchedEpoch,
      divergingEpoch: null,
      snapshotId: null,
      entries: [],
    };
    const fail = (errorCode: number): void => this.transport.send(m.sourceId, { ...base, errorCode });
    if (m.currentLeaderEpoch < this.epoch) return fail(ErrorCode.FENCED_LEADER_EPOCH);
    if (m.currentLeaderEpoch > this.epoch) return fail(ErrorCode.UNKNOWN_LEADER_EPOCH);
    if (this.role !== 'leader') return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    if (m.fetchOffset < 0 || m.lastFetchedEpoch < 0 || m.lastFetchedEpoch > this.epoch) return fail(ErrorCode.INVALID_REQUEST);

    const now = this.clock.nowMs();
    const replica = this.replicas.get(m.sourceId) ?? this.observerState(m.sourceId);
    replica.lastFetchMs = now;
    this.unannounced.delete(m.sourceId);
    const highWatermark = this.highWatermark > this.epochStartOffset ? this.highWatermark : -1;
    const start = this.log.logStartOffset;
    const snap = this.snapshotId;
    if (snap !== null && start > 0 && (m.fetchOffset < start || (m.fetchOffset === start && m.lastFetchedEpoch !== snap.epoch) || m.lastFetchedEpoch < snap.epoch)) {
      return this.transport.send(m.sourceId, { ...base, errorCode: ErrorCode.NONE, highWatermark, snapshotId: snap });
    }
    const end = this.endOffsetForEpoch(m.lastFetchedEpoch);
    if (end.epoch !== m.lastFetchedEpoch || m.fetchOffset > end.offset) {
      return this.transport.send(m.sourceId, { ...base, errorCode: ErrorCode.NONE, highWatermark, divergingEpoch: end });
    }
    // The follower's log matches ours up to fetchOffset, and it has flushed that much.
    replica.endOffset = m.fetchOffset;
    if (this.replicas.has(m.sourceId)) this.maybeAdvanceHighWatermark();
    const upTo = Math.min(this.log.endOffset, m.fetchOffset + this.config.maxFetchEntries);
    const entries: LogEntry[] = [];
    let bytes = 0;
    for (let o = m.fetchOffset; o < upTo; o++) {
      const e = this.log.entry(o);
      bytes += e.value.length;
      if (entries.length > 0 && bytes > this.config.maxFetchBytes) break;
      entries.push(e);
    }
    this.transport.send(m.sourceId, {
      ...base,
      errorCode: ErrorCode.NONE,
      highWatermark: this.highWatermark > this.epochStartOffset ? this.highWatermark : -1,
      entries,
    });
  }

  private handleFetchResponse(m: FetchResponse): void {
    if (this.maybeTransition(m.leaderId, m.leaderEpoch)) return;
    if (this.role !== 'follower' || m.leaderEpoch !== this.epoch || m.sourceId !== this.leaderId) return;
    const f = this.inFlight;
    if (f === null || f.fetchOffset !== m.fetchOffset || f.lastFetchedEpoch !== m.lastFetchedEpoch) return; // stale or duplicate
    this.inFlight = null;
    const now = this.clock.nowMs();
    if (m.errorCode !== ErrorCode.NONE) {
      this.nextFetchMs = now + this.config.retryBackoffMs;
      return;
    }
    assert(this.log.endOffset === f.fetchOffset && this.lastEpoch() === f.lastFetchedEpoch, 'the log changed under an in-flight fetch');
    this.fetchDeadlineMs = now + this.config.fetchTimeoutMs;

    if (m.divergingEpoch !== null) {
      const mine = this.endOffsetForEpoch(m.divergingEpoch.epoch);
      const truncateTo = Math.max(this.log.logStartOffset, Math.min(mine.offset, m.divergingEpoch.offset));
      assert(truncateTo >= this.highWatermark, `truncation to ${truncateTo} below the high watermark ${this.highWatermark}`);
      this.log.truncateTo(truncateTo);
      this.log.flush();
      this.nextFetchMs = now;
      return;
    }
    if (m.snapshotId !== null) {
      this.snapshotFetch = { id: m.snapshotId, chunks: [], position: 0, sentMs: -1 };
      this.sendFetchSnapshot();
      return;
    }
    if (m.entries.length > 0) {
      let last = this.lastEpoch();
      for (const e of m.entries) {
        if (e.epoch < last || e.epoch > this.epoch) {
          // Not what a leader of this epoch sends: drop the answer and fetch again.
          this.nextFetchMs = now + this.config.retryBackoffMs;
          return;
        }
        last = e.epoch;
      }
      this.appendEntries(m.entries);
      if (this.config.testingBugs?.fetchBeforeFlush !== true) this.log.flush();
    }
    if (m.highWatermark >= 0) {
      const hw = Math.min(m.highWatermark, this.log.endOffset);
      if (hw > this.highWatermark) {
        this.highWatermark = hw;
        this.applyCommitted();
      }
    }
    this.nextFetchMs = m.entries.length > 0 ? now : now + this.config.fetchIntervalMs;
  }

  // ---- FetchSnapshot ----

  private sendFetchSnapshot(): void {
    const s = this.snapshotFetch!;
    s.sentMs = this.clock.nowMs();
    this.transport.send(this.leaderId, {
      type: 'FetchSnapshotRequest',
      sourceId: this.config.nodeId,
      currentLeaderEpoch: this.epoch,
      snapshotId: s.id,
      position: s.position,
    });
  }

  private handleFetchSnapshotRequest(m: FetchSnapshotRequest): void {
    const base = {
      type: 'FetchSnapshotResponse' as const,
      sourceId: this.config.nodeId,
      leaderId: this.leaderId,
      leaderEpoch: this.epoch,
      snapshotId: m.snapshotId,
      size: 0,
      position: m.position,
      bytes: Buffer.alloc(0),
    };
    const fail = (errorCode: number): void => this.transport.send(m.sourceId, { ...base, errorCode });
    if (m.currentLeaderEpoch < this.epoch) return fail(ErrorCode.FENCED_LEADER_EPOCH);
    if (m.currentLeaderEpoch > this.epoch) return fail(ErrorCode.UNKNOWN_LEADER_EPOCH);
    if (this.role !== 'leader') return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    const snapshot = this.snapshots.latest();
    if (snapshot === null || snapshot.id.endOffset !== m.snapshotId.endOffset || snapshot.id.epoch !== m.snapshotId.epoch) return fail(ErrorCode.SNAPSHOT_NOT_FOUND);
    if (m.position < 0 || m.position >= snapshot.data.length) return fail(ErrorCode.INVALID_REQUEST);
    const bytes = snapshot.data.subarray(m.position, m.position + this.config.snapshotChunkBytes);
    this.transport.send(m.sourceId, { ...base, errorCode: ErrorCode.NONE, size: snapshot.data.length, bytes });
  }

  private handleFetchSnapshotResponse(m: FetchSnapshotResponse): void {
    if (this.maybeTransition(m.leaderId, m.leaderEpoch)) return;
    const s = this.snapshotFetch;
    if (this.role !== 'follower' || m.leaderEpoch !== this.epoch || m.sourceId !== this.leaderId || s === null) return;
    if (s.sentMs < 0 || m.snapshotId.endOffset !== s.id.endOffset || m.snapshotId.epoch !== s.id.epoch || m.position !== s.position) return;
    const now = this.clock.nowMs();
    if (m.errorCode !== ErrorCode.NONE || m.bytes.length === 0 || m.position + m.bytes.length > m.size) {
      // The leader moved on to a newer snapshot (or answered nonsense): start again from a Fetch.
      this.snapshotFetch = null;
      this.nextFetchMs = now + this.config.retryBackoffMs;
      return;
    }
    this.fetchDeadlineMs = now + this.config.fetchTimeoutMs;
    s.chunks.push(m.bytes);
    s.position += m.bytes.length;
    if (s.position < m.size) {
      this.sendFetchSnapshot();
      return;
    }
    const data = Buffer.concat(s.chunks);
    assert(s.id.endOffset > this.highWatermark, `snapshot at ${s.id.endOffset} is not past the high watermark ${this.highWatermark}`);
    this.snapshots.write(s.id, data);
    this.snapshotId = s.id;
    // The whole log goes: the snapshot replaces what was below it, and what was above it is fetched again.
    this.log.truncateTo(this.log.logStartOffset);
    this.log.flush();
    this.log.deleteBefore(s.id.endOffset);
    this.highWatermark = s.id.endOffset;
    this.appliedOffset = s.id.endOffset;
    this.listener.handleLoadSnapshot(s.id, data);
    this.snapshotFetch = null;
    this.nextFetchMs = now;
  }

  // ---- timers ----

  private scheduleWakeup(): void {
    if (this.closed) return;
    let at: number;
    switch (this.role) {
      case 'leader':
        at = Math.min(this.flushAtMs, this.announceRetryMs, this.checkQuorumAtMs());
        break;
      case 'candidate':
        at = Math.min(this.electionDeadlineMs, this.voteRetryMs);
        break;
      case 'unattached':
      case 'resigned':
        at = this.electionDeadlineMs;
        break;
      case 'follower': {
        at = this.fetchDeadlineMs;
        if (this.inFlight !== null) at = Math.min(at, this.inFlight.sentMs + this.config.requestTimeoutMs);
        else if (this.snapshotFetch !== null) at = Math.min(at, this.snapshotFetch.sentMs + this.config.requestTimeoutMs);
        else at = Math.min(at, this.nextFetchMs);
        break;
      }
    }
    if (at !== Infinity) this.clock.wakeAt(Math.max(at, this.clock.nowMs()));
  }

  private checkQuorumAtMs(): number {
    if (this.config.voters.length === 1) return Infinity;
    const times = this.config.voters.map((v) => (v === this.config.nodeId ? Infinity : this.replicas.get(v)!.lastFetchMs)).sort((a, b) => b - a);
    return times[this.majority - 1]! + this.config.fetchTimeoutMs + 1;
  }
}
