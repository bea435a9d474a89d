/**
 * The seams of the Raft core (KIP-595, Kafka's KRaft): everything the core needs from the outside
 * world is one of these small synchronous interfaces, so the same code runs over real files and
 * TCP (src/raft/file-store.ts, src/raft/tcp-transport.ts) or inside a seeded simulation with a
 * simulated clock, network and disk (test/raft/sim/).
 *
 * Synchronous on purpose: the core never holds an invariant across an `await`, so there is no
 * interleaving to reason about, and "persisted before answering" is a plain statement order.
 * The metadata log is small (it is snapshotted), so blocking file I/O in the real adapter is a
 * fair price for that (KafkaRaftClient is single-threaded over a blocking log in the same way).
 */

/** One entry of the replicated log. `control` entries are Raft's own (the LeaderChange record). */
export interface LogEntry {
  readonly epoch: number;
  readonly control: boolean;
  readonly value: Buffer;
}

/** Where an epoch ends, or where a log ends: an offset and the epoch of the entry before it. */
export interface OffsetAndEpoch {
  readonly offset: number;
  readonly epoch: number;
}

/** A snapshot covers the log below `endOffset`; `epoch` is the epoch of the entry at endOffset - 1. */
export interface SnapshotId {
  readonly endOffset: number;
  readonly epoch: number;
}

/**
 * The durable log of one replica. Offsets are dense: [logStartOffset, endOffset).
 * `append` and `truncateTo` are volatile until `flush()`; a crash may lose any unflushed change
 * (the simulated disk loses them, or keeps a prefix of the unflushed appends).
 */
export interface RaftLogStore {
  readonly logStartOffset: number;
  readonly endOffset: number;
  /** Everything below this offset survives a crash. */
  readonly flushedEndOffset: number;
  /** The entry at `offset`, logStartOffset <= offset < endOffset. */
  entry(offset: number): LogEntry;
  append(entries: readonly LogEntry[]): void;
  /** Removes [offset, endOffset); logStartOffset <= offset <= endOffset. */
  truncateTo(offset: number): void;
  flush(): void;
  /**
   * Forgets the entries below `offset` once a snapshot covers them (logStartOffset <= offset).
   * If `offset` is past endOffset the log becomes empty and starts at `offset`. Durable when it returns.
   */
  deleteBefore(offset: number): void;
}

/** Kafka's `quorum-state` file: the epoch, the leader if known, and the vote cast in that epoch. */
export interface QuorumState {
  readonly leaderEpoch: number;
  /** -1 when no leader is known in this epoch. */
  readonly leaderId: number;
  /** -1 when this replica has not voted in this epoch. */
  readonly votedId: number;
}

export interface QuorumStateStore {
  read(): QuorumState | null;
  /** Durable when it returns (written to a temporary file, fsynced, renamed). */
  write(state: QuorumState): void;
}

export interface RaftSnapshotStore {
  latest(): { id: SnapshotId; data: Buffer } | null;
  /** Durable when it returns; older snapshots may be deleted. */
  write(id: SnapshotId, data: Buffer): void;
}

/**
 * Time: the core reads the clock and asks to be polled again at a given time (one pending wakeup
 * per replica; a new request replaces the previous one).
 */
export interface RaftClock {
  nowMs(): number;
  wakeAt(timeMs: number): void;
}

/** Best-effort, unordered message delivery to another voter (messages may be lost or duplicated). */
export interface RaftTransport {
  send(destinationId: number, message: RaftMessage): void;
}

/** The state machine on top: it sees committed entries in offset order, and snapshots. */
export interface RaftListener {
  /** The entry at `offset` is committed (called once per offset per incarnation, in order). */
  handleCommit(offset: number, entry: LogEntry): void;
  /** Replace the state with this snapshot (at start, or when a follower installs one from the leader). */
  handleLoadSnapshot(id: SnapshotId, data: Buffer): void;
  /** The known leader changed (leaderId -1: unknown). */
  handleLeaderChange(leaderId: number, epoch: number): void;
}

// The messages: Kafka's Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and FetchSnapshot, reduced
// to the fields of one partition (the metadata partition). `sourceId` is the sender. Responses
// echo what they answer (Kafka correlates by request; a datagram network cannot), and the TCP
// transport fills the echo from the request it sent.

export interface VoteRequest {
  readonly type: 'VoteRequest';
  readonly sourceId: number;
  readonly candidateEpoch: number;
  readonly candidateId: number;
  readonly lastOffsetEpoch: number;
  readonly lastOffset: number;
}

export interface VoteResponse {
  readonly type: 'VoteResponse';
  readonly sourceId: number;
  readonly errorCode: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  readonly voteGranted: boolean;
}

export interface BeginQuorumEpochRequest {
  readonly type: 'BeginQuorumEpochRequest';
  readonly sourceId: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
}

export interface BeginQuorumEpochResponse {
  readonly type: 'BeginQuorumEpochResponse';
  readonly sourceId: number;
  readonly errorCode: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
}

export interface EndQuorumEpochRequest {
  readonly type: 'EndQuorumEpochRequest';
  readonly sourceId: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  /** Voters in the order the resigning leader prefers them as its successor. */
  readonly preferredSuccessors: readonly number[];
}

export interface EndQuorumEpochResponse {
  readonly type: 'EndQuorumEpochResponse';
  readonly sourceId: number;
  readonly errorCode: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
}

export interface FetchRequest {
  readonly type: 'FetchRequest';
  readonly sourceId: number;
  /** The fetcher's view of the leader epoch (Kafka's CurrentLeaderEpoch). */
  readonly currentLeaderEpoch: number;
  readonly fetchOffset: number;
  readonly lastFetchedEpoch: number;
}

export interface FetchResponse {
  readonly type: 'FetchResponse';
  readonly sourceId: number;
  readonly errorCode: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  /** -1 when the leader does not know it yet (it has not committed an entry of its epoch). */
  readonly highWatermark: number;
  /** Echo of the request. */
  readonly fetchOffset: number;
  readonly lastFetchedEpoch: number;
  /** Set when the fetcher's log diverges: truncate to where this epoch ends on the leader. */
  readonly divergingEpoch: OffsetAndEpoch | null;
  /** Set when the fetch offset is below the leader's log start: fetch this snapshot first. */
  readonly snapshotId: SnapshotId | null;
  /** Entries from fetchOffset on. */
  readonly entries: readonly LogEntry[];
}

export interface FetchSnapshotRequest {
  readonly type: 'FetchSnapshotRequest';
  readonly sourceId: number;
  readonly currentLeaderEpoch: number;
  readonly snapshotId: SnapshotId;
  readonly position: number;
}

export interface FetchSnapshotResponse {
  readonly type: 'FetchSnapshotResponse';
  readonly sourceId: number;
  readonly errorCode: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  readonly snapshotId: SnapshotId;
  /** Total size of the snapshot in bytes. */
  readonly size: number;
  readonly position: number;
  readonly bytes: Buffer;
}

export type RaftRequest = VoteRequest | BeginQuorumEpochRequest | EndQuorumEpochRequest | FetchRequest | FetchSnapshotRequest;
export type RaftResponse = VoteResponse | BeginQuorumEpochResponse | EndQuorumEpochResponse | FetchResponse | FetchSnapshotResponse;
export type RaftMessage = RaftRequest | RaftResponse;
