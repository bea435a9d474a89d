/**
 * The group coordinator: Kafka's classic consumer-group protocol (GroupCoordinator +
 * GroupMetadataManager) over the internal topic `__consumer_offsets`.
 *
 * Behaviour:
 * - Every group lives on partition `abs(javaStringHashCode(groupId)) % partitions` of
 *   `__consumer_offsets`. Committed offsets are OffsetCommit records; a group's membership is a
 *   GroupMetadata snapshot written when a rebalance completes (the leader's SyncGroup), when the
 *   group becomes empty, and when a static member is replaced; deletes are tombstones
 *   (group-records.ts has the byte formats, Kafka's). Unlike Kafka, a join completion also
 *   writes a member-less snapshot of the new generation, so a restart mid-rebalance never reuses
 *   a generation number.
 * - Coordination follows partition leadership (Kafka's onElection / onResignation): the broker
 *   calls `onElection(p, leaderEpoch)` when it becomes the leader of `__consumer_offsets`-p, which
 *   replays that partition into memory (groups with members load Stable and every member gets a
 *   fresh session timeout, so a client that keeps heartbeating keeps its membership across a
 *   restart or a failover), and `onResignation(p)` when it stops, which drops the partition's
 *   groups, cancels their timers and answers their waiting JoinGroup / SyncGroup with
 *   NOT_COORDINATOR. A request for a group of a partition not served here gets NOT_COORDINATOR;
 *   while its partition loads, COORDINATOR_LOAD_IN_PROGRESS. `load()` elects every partition (a
 *   single broker).
 * - An offset commit is acknowledged only after its batch is committed (in a cluster: replicated
 *   to the ISR, acks=-1; on one broker: fsynced), and only if the partition is still served here
 *   at the same epoch (else NOT_COORDINATOR); the in-memory
 *   offset is applied after that, and a record only replaces one with a smaller log offset, so
 *   memory always equals what a replay of the log gives.
 * - Rebalances (states in group.ts): a join of a new or changed member, a leave, a session
 *   expiry or a failed sync moves the group to PreparingRebalance; the join completes when every
 *   known member (and every member id handed out with MEMBER_ID_REQUIRED) has rejoined, or after
 *   the largest rebalance timeout, when members that did not rejoin are removed. The first
 *   rebalance of an empty group waits `group.initial.rebalance.delay.ms`, extended by that much
 *   for each new member, up to the rebalance timeout (Kafka's InitialDelayedJoin). Completion
 *   bumps the generation, picks the protocol most members prefer among those all support, keeps
 *   the leader (or picks one), answers every JoinGroup (only the leader gets the members), and
 *   waits for SyncGroup: the leader's assignment is stored, then handed to every member. Members
 *   that do not SyncGroup within the rebalance timeout are removed and the group rebalances.
 * - Static members (group.instance.id, KIP-345): a known instance rejoining with an empty member
 *   id while Stable gets a new member id and keeps its assignment with no rebalance (the reply
 *   names the old leader id, so it never re-assigns); any request carrying an instance id with
 *   another member id than the current one is FENCED_INSTANCE_ID.
 * - Every rebalance is logged at info: why it started, who joined or left, and on completion the
 *   generation, protocol, leader and members.
 * - Offsets of an Empty group expire `offsets.retention.minutes` after the later of the group
 *   becoming empty and the commit (checked every `offsets.retention.check.interval.ms`); an
 *   Empty group left without offsets is removed (tombstoned).
 * - Timers come from a Scheduler (time.ts): unref'd in the broker, manual in tests. `shutdown()`
 *   cancels them and answers every waiting JoinGroup/SyncGroup with NOT_COORDINATOR.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import { decodeConsumerProtocolSubscription } from '../protocol/messages/index.js';
import type { Logger } from '../storage/logger.js';
import type { CoordinatorLog, TxnAppend } from './coordinator-log.js';
import { PendingTxnOffsets } from './transaction-offsets.js';
import { OwnedPartitions, appendErrorCode } from './owned-partitions.js';
import {
  GroupMetadata,
  MemberMetadata,
  offsetKey,
  splitOffsetKey,
  EMPTY_BUFFER,
  type CommittedOffset,
  type GroupState,
  type JoinResult,
  type Protocol,
  type SyncResult,
} from './group.js';
import {
  decodeGroupMetadataValue,
  decodeKey,
  decodeOffsetCommitValue,
  groupMetadataRecord,
  offsetCommitRecord,
  partitionForGroup,
  type CoordinatorRecord,
  type GroupMetadataValue,
} from './group-records.js';
import type { Scheduler } from './time.js';

/** Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: a new member's JoinGroup that long unanswered is dropped. */
export const NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000;

export interface GroupCoordinatorConfig {
  initialRebalanceDelayMs: number;
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  maxGroupSize: number;
  offsetMetadataMaxBytes: number;
  offsetsRetentionMs: number;
  offsetsRetentionCheckIntervalMs: number;
}

export const DEFAULT_GROUP_CONFIG: Readonly<GroupCoordinatorConfig> = Object.freeze({
  initialRebalanceDelayMs: 3000,
  minSessionTimeoutMs: 6000,
  maxSessionTimeoutMs: 1800000,
  maxGroupSize: 2147483647,
  offsetMetadataMaxBytes: 4096,
  offsetsRetentionMs: 10080 * 60000,
  offsetsRetentionCheckIntervalMs: 600000,
});

export interface GroupCoordinatorOptions {
  scheduler: Scheduler;
  config: GroupCoordinatorConfig;
  logger: Logger;
  /** Whether a topic partition exists (commits to anything else get UNKNOWN_TOPIC_OR_PARTITION). */
  partitionExists(topic: string, partition: number): boolean;
  /** New member ids; defaults to `<client or instance id>-<uuid>` like Kafka. */
  newMemberId?(prefix: string): string;
}

export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  /** JoinGroup v4+: an empty member id gets MEMBER_ID_REQUIRED first (KIP-394). */
  requireKnownMemberId: boolean;
  reason: string | null;
}

export interface SyncRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string | null;
  protocolName: string | null;
  assignments: Array<{ memberId: string; assignment: Buffer }>;
}

export interface MemberIdentity {
  memberId: string;
  groupInstanceId: string | null;
  reason?: string | null;
}

export interface OffsetToCommit {
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  /** -1: the broker's time. */
  commitTimestamp: number;
}

export interface CommitRequest {
  groupId: string;
  /** -1 for a commit from outside group management (v0, or a "simple" consumer). */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  offsets: OffsetToCommit[];
}

export interface FetchedOffset {
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string;
  errorCode: number;
}

export interface GroupSummary {
  groupId: string;
  errorCode: number;
  state: string;
  protocolType: string;
  protocol: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; metadata: Buffer; assignment: Buffer }>;
}

const joinError = (memberId: string, errorCode: number): JoinResult => ({
  errorCode,
  generationId: -1,
  protocolType: null,
  protocolName: null,
  leader: '',
  memberId,
  members: [],
});

const syncError = (errorCode: number): SyncResult => ({ errorCode, protocolType: null, protocolName: null, assignment: EMPTY_BUFFER });

/** Topics in a consumer-protocol subscription, or null if the metadata is not one. */
export function consumerSubscriptionTopics(metadata: Buffer): string[] | null {
  if (metadata.length < 2) return null;
  const r = new Reader(metadata);
  const version = r.int16();
  const sub = decodeConsumerProtocolSubscription(r, Math.min(Math.max(version, 0), 3));
  return r.ok ? sub.topics : null;
}

export class GroupCoordinator {
  private readonly groups = new Map<string, GroupMetadata>();
  private stopped = false;
  private cancelRetention: (() => void) | null = null;
  private log_: CoordinatorLog | null = null;
  /** The partitions of `__consumer_offsets` this coordinator serves (or is loading). */
  private readonly owned = new OwnedPartitions();
  /** Transaction markers written to a partition while it loads: applied once it is installed. */
  private readonly markersWhileLoading = new Map<number, Array<{ producerId: number; commit: boolean }>>();
  private readonly scheduler: Scheduler;
  private readonly config: GroupCoordinatorConfig;
  private readonly logger: Logger;
  private readonly newMemberId: (prefix: string) => string;

  /** A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until it has a log, and NOT_COORDINATOR for partitions it was not elected for. */
  constructor(private readonly opts: GroupCoordinatorOptions) {
    this.scheduler = opts.scheduler;
    this.config = opts.config;
    this.logger = opts.logger;
    this.newMemberId = opts.newMemberId ?? ((prefix) => `${prefix}-${randomUUID()}`);
  }

  /** Creates a coordinator and loads every partition of `log` from it (a single broker leads them all). */
  static async load(opts: GroupCoordinatorOptions, log: CoordinatorLog): Promise<GroupCoordinator> {
    const c = new GroupCoordinator(opts);
    await c.load(log);
    return c;
  }

  /** Whether it has a log, no partition is loading, and `shutdown()` has not run. */
  get ready(): boolean {
    return this.log_ !== null && !this.stopped && !this.owned.anyLoading;
  }

  /** Whether a partition is being loaded. */
  get loading(): boolean {
    return this.owned.anyLoading;
  }

  /** Whether `attach()` has given it the offsets topic's log. */
  get attached(): boolean {
    return this.log_ !== null;
  }

  private get log(): CoordinatorLog {
    assert.ok(this.log_ !== null, 'the group coordinator has no log');
    return this.log_;
  }

  /** NONE, or why no group operation can be served now (a partition still loading counts). */
  unavailable(): number {
    if (this.stopped) return ErrorCode.NOT_COORDINATOR;
    if (this.log_ === null || this.owned.anyLoading) return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    return ErrorCode.NONE;
  }

  /** NONE when this coordinator serves `groupId`'s partition; else NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
  unavailableFor(groupId: string): number {
    if (this.stopped) return ErrorCode.NOT_COORDINATOR;
    if (this.log_ === null) return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    return this.owned.errorFor(this.partitionFor(groupId));
  }

  /** The coordinator epoch (leader epoch) of `partition`, -1 when not coordinated here. */
  epochOf(partition: number): number {
    return this.owned.epochOf(partition);
  }

  /** The partitions served (loaded), ascending. */
  activePartitions(): number[] {
    return this.owned.active();
  }

  /**
   * Gives the coordinator the log of `__consumer_offsets` (its partition count fixes where every
   * group lives) and starts the offset retention task. Partitions are served once elected.
   */
  attach(log: CoordinatorLog): void {
    if (this.log_ !== null) {
      assert.equal(log.partitions, this.log_.partitions, 'the offsets topic changed its partition count');
      return;
    }
    this.log_ = log;
    this.scheduleRetention();
  }

  /**
   * The offsets topic is gone (deleted, or re-created under a new topic id): every partition is
   * resigned and the log dropped; `attach()` may give a new one.
   */
  detach(): void {
    for (const p of this.owned.owned()) this.onResignation(p);
    this.log_ = null;
    this.cancelRetention?.();
    this.cancelRetention = null;
  }

  /** Attaches `log` and loads every partition of it (a single broker, which leads them all). */
  async load(log: CoordinatorLog): Promise<void> {
    assert.ok(this.log_ === null, 'the group coordinator is already loaded');
    this.attach(log);
    const started = Date.now();
    for (let p = 0; p < log.partitions; p++) await this.onElection(p, 0);
    let offsetCount = 0;
    for (const g of this.groups.values()) offsetCount += g.offsets.size;
    this.logger.info('loaded consumer groups from __consumer_offsets', { partitions: log.partitions, groups: this.groups.size, offsets: offsetCount, ms: Date.now() - started });
  }

  /**
   * This broker became the leader of `__consumer_offsets`-`partition` at `epoch` (Kafka's
   * GroupCoordinator.onElection): replays the partition into memory — groups, committed offsets,
   * pending transactional offsets — and then serves its groups (meanwhile
   * COORDINATOR_LOAD_IN_PROGRESS). Loaded groups with members are Stable and every member gets a
   * fresh session timeout, so clients that keep heartbeating keep their membership. A repeated
   * election at the same epoch is a no-op; a later epoch reloads. Rejects if the replay fails
   * (the partition is then not served).
   */
  async onElection(partition: number, epoch: number): Promise<void> {
    if (this.stopped) return;
    const log = this.log;
    assert.ok(partition >= 0 && partition < log.partitions, `no offsets partition ${partition}`);
    const token = this.owned.elect(partition, epoch);
    if (token === null) return;
    this.dropPartition(partition);
    const started = Date.now();
    const snapshots = new Map<string, GroupMetadataValue | null>();
    const offsets = new Map<string, Map<string, CommittedOffset>>();
    const pending = new PendingTxnOffsets();
    const p = partition;
    let records = 0;
    try {
      await log.replay(p, (r) => {
        records++;
        // Transactions (issue 5): offsets of a transactional batch wait for their marker.
        if (r.marker !== undefined) {
          for (const e of pending.take(p, r.producerId!)) {
            if (r.marker !== 'COMMIT') continue;
            let g = offsets.get(e.groupId);
            if (g === undefined) offsets.set(e.groupId, (g = new Map()));
            const cur = g.get(e.key);
            if (cur === undefined || cur.logOffset < e.value.logOffset) g.set(e.key, e.value);
          }
          return;
        }
        const key = decodeKey(r.key);
        if (key === null) {
          this.logger.warn('skipping an unknown record key in the offsets topic', { partition: p, offset: r.offset });
          return;
        }
        if (key.type === 'offset' && r.producerId !== undefined) {
          const v = r.value === null ? null : decodeOffsetCommitValue(r.value);
          if (v !== null) pending.add(p, r.producerId, { groupId: key.group, key: offsetKey(key.topic, key.partition), value: { ...v, logOffset: r.offset } });
          return;
        }
        if (key.type === 'offset') {
          let g = offsets.get(key.group);
          if (g === undefined) offsets.set(key.group, (g = new Map()));
          const v = r.value === null ? null : decodeOffsetCommitValue(r.value);
          if (v === null) g.delete(offsetKey(key.topic, key.partition));
          else g.set(offsetKey(key.topic, key.partition), { ...v, logOffset: r.offset });
        } else {
          const v = r.value === null ? null : decodeGroupMetadataValue(r.value);
          snapshots.set(key.group, v);
        }
      });
    } catch (e) {
      if (this.owned.isLoading(p, token)) {
        this.owned.resign(p);
        this.markersWhileLoading.delete(p);
      }
      this.logger.error('loading an offsets partition failed; its groups are not served', { partition: p, epoch, error: e });
      throw e;
    }
    if (this.stopped || !this.owned.loaded(p, token)) {
      this.logger.info('discarding the load of an offsets partition resigned meanwhile', { partition: p, epoch });
      return;
    }
    let loadedGroups = 0;
    for (const id of new Set([...snapshots.keys(), ...offsets.keys()])) {
      const snap = snapshots.get(id) ?? null;
      const offs = offsets.get(id);
      if (snap === null && (offs === undefined || offs.size === 0)) continue;
      this.groups.set(id, this.loadGroup(id, snap, offs ?? new Map()));
      loadedGroups++;
    }
    this.pendingTxnOffsets.takeAllFrom(pending);
    const markers = this.markersWhileLoading.get(p) ?? [];
    this.markersWhileLoading.delete(p);
    for (const m of markers) this.completeTransactionalOffsets(m.producerId, p, m.commit);
    const fields = { partition: p, epoch, records, groups: loadedGroups, ms: Date.now() - started };
    if (records > 0) this.logger.info('loaded an offsets partition: now coordinating its groups', fields);
    else this.logger.debug('loaded an offsets partition: now coordinating its groups', fields);
  }

  /**
   * This broker no longer leads `__consumer_offsets`-`partition` (Kafka's onResignation): its
   * groups are dropped from memory, their timers cancelled, and every waiting JoinGroup /
   * SyncGroup is answered NOT_COORDINATOR (clients look the coordinator up again). With `epoch`,
   * only a resignation newer than the election is applied.
   */
  onResignation(partition: number, epoch?: number): void {
    if (!this.owned.resign(partition, epoch)) return;
    this.markersWhileLoading.delete(partition);
    const dropped = this.dropPartition(partition);
    this.logger.info('resigned an offsets partition: its groups moved to its new leader', { partition, groups: dropped });
  }

  /** Removes the groups (and pending transactional offsets) of `partition` from memory; returns how many groups. */
  private dropPartition(partition: number): number {
    if (this.log_ === null) return 0;
    let n = 0;
    for (const g of [...this.groups.values()]) {
      if (this.partitionFor(g.groupId) !== partition) continue;
      this.groups.delete(g.groupId);
      this.cancelGroup(g, ErrorCode.NOT_COORDINATOR);
      n++;
    }
    this.pendingTxnOffsets.dropPartition(partition);
    return n;
  }

  /** Cancels a group's timers and answers its waiting JoinGroup / SyncGroup with `errorCode`. */
  private cancelGroup(g: GroupMetadata, errorCode: number): void {
    g.cancelJoinTimer?.();
    g.cancelJoinTimer = null;
    g.cancelSyncTimer?.();
    g.cancelSyncTimer = null;
    for (const cancel of g.pendingMembers.values()) cancel();
    for (const m of g.members.values()) {
      m.cancelHeartbeat?.();
      m.cancelHeartbeat = null;
      if (m.awaitingJoin !== null) {
        const r = m.awaitingJoin;
        m.awaitingJoin = null;
        r(joinError(m.memberId, errorCode));
      }
      if (m.awaitingSync !== null) {
        const r = m.awaitingSync;
        m.awaitingSync = null;
        r(syncError(errorCode));
      }
    }
  }

  private loadGroup(groupId: string, snap: GroupMetadataValue | null, offsets: Map<string, CommittedOffset>): GroupMetadata {
    const now = this.scheduler.now();
    const g = new GroupMetadata(groupId, now);
    for (const [k, v] of offsets) g.offsets.set(k, v);
    if (snap === null) return g;
    g.generationId = snap.generation;
    g.protocolType = snap.protocolType === '' ? null : snap.protocolType;
    g.protocolName = snap.protocol;
    if (snap.currentStateTimestamp >= 0) g.currentStateTimestampMs = snap.currentStateTimestamp;
    for (const m of snap.members) {
      const member = new MemberMetadata(m.memberId, m.groupInstanceId, m.clientId, m.clientHost, m.rebalanceTimeoutMs, m.sessionTimeoutMs, snap.protocolType, [
        { name: snap.protocol ?? '', metadata: m.subscription },
      ]);
      member.assignment = m.assignment;
      g.add(member);
    }
    if (g.members.size > 0) {
      g.leaderId = snap.leader !== null && g.members.has(snap.leader) ? snap.leader : g.members.keys().next().value!;
      g.state = 'Stable';
      for (const m of g.members.values()) this.scheduleHeartbeat(g, m);
    }
    return g;
  }

  get partitions(): number {
    return this.log.partitions;
  }

  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.log.partitions);
  }

  /** For tests and tools: the live group object (do not mutate). */
  group(groupId: string): GroupMetadata | undefined {
    return this.groups.get(groupId);
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  // ------------------------------------------------------------------------------- JoinGroup

  joinGroup(req: JoinRequest): Promise<JoinResult> {
    const unavailable = this.unavailableFor(req.groupId);
    if (unavailable !== ErrorCode.NONE) return Promise.resolve(joinError(req.memberId, unavailable));
    if (req.groupId === '') return Promise.resolve(joinError(req.memberId, ErrorCode.INVALID_GROUP_ID));
    if (req.sessionTimeoutMs < this.config.minSessionTimeoutMs || req.sessionTimeoutMs > this.config.maxSessionTimeoutMs) {
      return Promise.resolve(joinError(req.memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
    }
    let group = this.groups.get(req.groupId);
    if (group === undefined) {
      if (req.memberId !== '') return Promise.resolve(joinError(req.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      if (!new GroupMetadata(req.groupId, 0).supportsProtocols(req.protocolType, req.protocols)) {
        return Promise.resolve(joinError(req.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      }
      group = new GroupMetadata(req.groupId, this.scheduler.now());
      this.groups.set(req.groupId, group);
    }
    const g = group;
    if (g.is('Dead')) return Promise.resolve(joinError(req.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
    if (!g.supportsProtocols(req.protocolType, req.protocols)) return Promise.resolve(joinError(req.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    return new Promise<JoinResult>((resolve) => {
      if (req.memberId === '') this.joinUnknownMember(g, req, resolve);
      else this.joinKnownMember(g, req, resolve);
    });
  }

  private joinUnknownMember(g: GroupMetadata, req: JoinRequest, respond: (r: JoinResult) => void): void {
    if (g.members.size + g.pendingMembers.size >= this.config.maxGroupSize) {
      respond(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
      return;
    }
    const memberId = this.newMemberId(req.groupInstanceId ?? req.clientId);
    if (req.groupInstanceId !== null) {
      const old = g.staticMembers.get(req.groupInstanceId);
      if (old !== undefined) this.updateStaticMember(g, old, memberId, req, respond);
      else this.addMemberAndRebalance(g, memberId, req, respond);
    } else if (req.requireKnownMemberId) {
      // KIP-394: hand out the id first; the join that carries it is the real one.
      const cancel = this.scheduler.schedule(req.sessionTimeoutMs, () => {
        if (g.pendingMembers.delete(memberId)) {
          this.logger.info('pending member expired before joining', { group: g.groupId, memberId });
          this.maybeCompleteJoin(g);
        }
      });
      g.pendingMembers.set(memberId, cancel);
      respond(joinError(memberId, ErrorCode.MEMBER_ID_REQUIRED));
    } else {
      this.addMemberAndRebalance(g, memberId, req, respond);
    }
  }

  private joinKnownMember(g: GroupMetadata, req: JoinRequest, respond: (r: JoinResult) => void): void {
    const pending = g.pendingMembers.get(req.memberId);
    if (pending !== undefined) {
      pending();
      g.pendingMembers.delete(req.memberId);
      this.addMemberAndRebalance(g, req.memberId, req, respond);
      return;
    }
    const fenced = this.fencedError(g, req.memberId, req.groupInstanceId);
    if (fenced !== ErrorCode.NONE) {
      respond(joinError(req.memberId, fenced));
      return;
    }
    const member = g.members.get(req.memberId);
    if (member === undefined) {
      respond(joinError(req.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      return;
    }
    switch (g.state) {
      case 'PreparingRebalance':
        this.updateMemberAndRebalance(g, member, req, respond, 'member rejoined');
        return;
      case 'CompletingRebalance':
        if (member.matches(req.protocols)) {
          // A retried JoinGroup of this generation: answer it again.
          respond(this.joinResultFor(g, member));
        } else {
          this.updateMemberAndRebalance(g, member, req, respond, 'member rejoined with changed metadata');
        }
        return;
      case 'Stable':
        if (g.isLeader(member.memberId) || !member.matches(req.protocols)) {
          this.updateMemberAndRebalance(g, member, req, respond, g.isLeader(member.memberId) ? 'leader rejoined' : 'member rejoined with changed metadata');
        } else {
          this.scheduleHeartbeat(g, member);
          respond(this.joinResultFor(g, member));
        }
        return;
      default:
        respond(joinError(req.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
    }
  }

  private joinResultFor(g: GroupMetadata, member: MemberMetadata, leaderOverride?: string): JoinResult {
    const isLeader = leaderOverride === undefined && g.isLeader(member.memberId);
    return {
      errorCode: ErrorCode.NONE,
      generationId: g.generationId,
      protocolType: g.protocolType,
      protocolName: g.protocolName,
      leader: leaderOverride ?? g.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader
        ? [...g.members.values()].map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata: m.metadataFor(g.protocolName!) }))
        : [],
    };
  }

  private addMemberAndRebalance(g: GroupMetadata, memberId: string, req: JoinRequest, respond: (r: JoinResult) => void): void {
    const m = new MemberMetadata(memberId, req.groupInstanceId, req.clientId, req.clientHost, req.rebalanceTimeoutMs, req.sessionTimeoutMs, req.protocolType, req.protocols);
    m.isNew = true;
    m.awaitingJoin = respond;
    g.add(m);
    if (g.is('PreparingRebalance') && g.generationId === 0) g.newMemberAdded = true;
    this.scheduleHeartbeat(g, m);
    this.logger.info('member joining group', {
      group: g.groupId,
      memberId,
      groupInstanceId: req.groupInstanceId ?? undefined,
      clientId: req.clientId,
      protocols: req.protocols.map((p) => p.name).join(','),
      reason: req.reason ?? undefined,
    });
    this.maybePrepareRebalance(g, `new member ${memberId} joined${req.reason ? ` (${req.reason})` : ''}`);
  }

  private updateMemberAndRebalance(g: GroupMetadata, m: MemberMetadata, req: JoinRequest, respond: (r: JoinResult) => void, why: string): void {
    if (m.awaitingJoin !== null && m.awaitingJoin !== respond) m.awaitingJoin(joinError(m.memberId, ErrorCode.REBALANCE_IN_PROGRESS));
    m.protocols = req.protocols;
    m.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    m.sessionTimeoutMs = req.sessionTimeoutMs;
    m.clientId = req.clientId;
    m.clientHost = req.clientHost;
    m.awaitingJoin = respond;
    this.maybePrepareRebalance(g, `${why}: ${m.memberId}${req.reason ? ` (${req.reason})` : ''}`);
  }

  private updateStaticMember(g: GroupMetadata, oldMemberId: string, newMemberId: string, req: JoinRequest, respond: (r: JoinResult) => void): void {
    const instanceId = req.groupInstanceId!;
    const oldLeader = g.leaderId ?? '';
    const m = g.replaceStaticMember(instanceId, oldMemberId, newMemberId);
    // The old incarnation's waiting requests are fenced.
    if (m.awaitingJoin !== null) m.awaitingJoin(joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID));
    if (m.awaitingSync !== null) m.awaitingSync(syncError(ErrorCode.FENCED_INSTANCE_ID));
    m.awaitingJoin = null;
    m.awaitingSync = null;
    m.sessionTimeoutMs = req.sessionTimeoutMs;
    m.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    m.clientId = req.clientId;
    m.clientHost = req.clientHost;
    this.scheduleHeartbeat(g, m);
    // Kafka (updateStaticMemberAndRebalance): the member's protocols are updated, and a Stable
    // group rebalances only if that changes the protocol it would select. A cooperative client's
    // subscription carries its owned partitions, so a restarted one joins with other metadata
    // bytes than it left with; that alone must not cost the group a rebalance.
    const oldProtocols = m.protocols;
    m.protocols = req.protocols;
    if (g.is('Stable') && g.selectProtocol() === g.protocolName) {
      this.logger.info('static member rejoined: new member id, same assignment, no rebalance', {
        group: g.groupId,
        groupInstanceId: instanceId,
        oldMemberId,
        memberId: newMemberId,
        generation: g.generationId,
      });
      const generation = g.generationId;
      void this.append(g, [groupMetadataRecord(g.groupId, this.snapshot(g))]).then((err) => {
        if (err === ErrorCode.NONE) {
          respond(this.joinResultFor(g, m, oldLeader));
          return;
        }
        // Could not store the new id: undo, so the old incarnation is still the member.
        if (g.members.get(newMemberId) === m && g.generationId === generation) {
          g.replaceStaticMember(instanceId, newMemberId, oldMemberId);
          m.protocols = oldProtocols;
        }
        respond(joinError('', err));
      });
      return;
    }
    m.awaitingJoin = respond;
    this.maybePrepareRebalance(
      g,
      g.is('Stable')
        ? `static member ${instanceId} rejoined as ${newMemberId} with protocols that change the group's protocol`
        : `static member ${instanceId} rejoined as ${newMemberId} while ${g.state}`,
    );
  }

  private fencedError(g: GroupMetadata, memberId: string, instanceId: string | null): number {
    if (instanceId === null) return ErrorCode.NONE;
    const current = g.staticMembers.get(instanceId);
    if (current === undefined) return g.members.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
    return current === memberId ? ErrorCode.NONE : ErrorCode.FENCED_INSTANCE_ID;
  }

  // ------------------------------------------------------------------------------- rebalance

  private maybePrepareRebalance(g: GroupMetadata, reason: string): void {
    if (g.is('Stable') || g.is('CompletingRebalance') || g.is('Empty')) this.prepareRebalance(g, reason);
    else if (g.is('PreparingRebalance')) this.maybeCompleteJoin(g);
  }

  private prepareRebalance(g: GroupMetadata, reason: string): void {
    if (g.is('CompletingRebalance')) this.resetAndPropagateAssignmentError(g, ErrorCode.REBALANCE_IN_PROGRESS);
    g.cancelSyncTimer?.();
    g.cancelSyncTimer = null;
    g.pendingSyncMembers.clear();
    const initial = g.is('Empty');
    const previous = g.state;
    g.transitionTo('PreparingRebalance', this.scheduler.now());
    g.cancelJoinTimer?.();
    this.logger.info('preparing to rebalance group', {
      group: g.groupId,
      reason,
      previousState: previous,
      generation: g.generationId,
      members: g.members.size,
    });
    if (initial) {
      const delay = this.config.initialRebalanceDelayMs;
      g.inInitialDelay = true;
      g.newMemberAdded = false;
      g.initialDelayRemainingMs = Math.max(g.maxRebalanceTimeoutMs - delay, 0);
      g.cancelJoinTimer = this.scheduler.schedule(delay, () => this.onInitialDelayExpired(g));
    } else {
      g.inInitialDelay = false;
      g.cancelJoinTimer = this.scheduler.schedule(g.maxRebalanceTimeoutMs, () => {
        g.cancelJoinTimer = null;
        if (this.groups.get(g.groupId) === g && g.is('PreparingRebalance')) this.completeJoin(g, 'rebalance timeout');
      });
      this.maybeCompleteJoin(g);
    }
  }

  private onInitialDelayExpired(g: GroupMetadata): void {
    g.cancelJoinTimer = null;
    if (this.groups.get(g.groupId) !== g || !g.is('PreparingRebalance') || !g.inInitialDelay) return;
    if (g.newMemberAdded && g.initialDelayRemainingMs > 0) {
      const delay = Math.min(this.config.initialRebalanceDelayMs, g.initialDelayRemainingMs);
      g.initialDelayRemainingMs -= delay;
      g.newMemberAdded = false;
      g.cancelJoinTimer = this.scheduler.schedule(delay, () => this.onInitialDelayExpired(g));
      return;
    }
    g.inInitialDelay = false;
    this.completeJoin(g, 'initial rebalance delay elapsed');
  }

  private maybeCompleteJoin(g: GroupMetadata): void {
    if (g.is('PreparingRebalance') && !g.inInitialDelay && g.hasAllMembersJoined()) this.completeJoin(g, g.members.size === 0 ? 'no members left' : 'all members joined');
  }

  private completeJoin(g: GroupMetadata, why: string): void {
    assert.ok(g.is('PreparingRebalance'));
    g.cancelJoinTimer?.();
    g.cancelJoinTimer = null;
    g.inInitialDelay = false;
    const left: string[] = [];
    for (const m of [...g.members.values()]) {
      if (m.awaitingJoin === null) {
        left.push(m.memberId);
        g.remove(m.memberId);
      }
    }
    const now = this.scheduler.now();
    const previousGeneration = g.generationId;
    g.generationId++;
    if (g.members.size === 0) {
      g.protocolName = null;
      g.transitionTo('Empty', now);
      this.logger.info('group is empty after rebalance', { group: g.groupId, generation: g.generationId, removed: left.length > 0 ? left.join(',') : undefined, why });
      void this.append(g, [groupMetadataRecord(g.groupId, this.snapshot(g))]);
      return;
    }
    g.protocolName = g.selectProtocol();
    if (g.leaderId === null || !g.members.has(g.leaderId)) g.leaderId = g.members.keys().next().value!;
    g.transitionTo('CompletingRebalance', now);
    this.logger.info('rebalance: joins complete, waiting for the leader\'s assignment', {
      group: g.groupId,
      why,
      generation: g.generationId,
      previousGeneration,
      protocolType: g.protocolType,
      protocol: g.protocolName,
      leader: g.leaderId,
      members: [...g.members.keys()].join(','),
      removed: left.length > 0 ? left.join(',') : undefined,
    });
    for (const m of g.members.values()) {
      const respond = m.awaitingJoin!;
      m.awaitingJoin = null;
      m.isNew = false;
      m.assignment = EMPTY_BUFFER;
      g.pendingSyncMembers.add(m.memberId);
      this.scheduleHeartbeat(g, m);
      respond(this.joinResultFor(g, m));
    }
    // Record that this generation exists before anyone can use it, as a snapshot without members:
    // a restart before the leader's SyncGroup is stored loads the group Empty at this generation,
    // so its members rejoin into a new one and no generation number is ever handed out twice.
    void this.append(g, [groupMetadataRecord(g.groupId, { ...this.snapshot(g), protocol: null, leader: null, members: [] })]);
    const generation = g.generationId;
    g.cancelSyncTimer = this.scheduler.schedule(g.maxRebalanceTimeoutMs, () => {
      g.cancelSyncTimer = null;
      this.onSyncTimeout(g, generation);
    });
  }

  private onSyncTimeout(g: GroupMetadata, generation: number): void {
    if (this.groups.get(g.groupId) !== g || g.generationId !== generation) return;
    if (!(g.is('CompletingRebalance') || g.is('Stable')) || g.pendingSyncMembers.size === 0) return;
    const missing = [...g.pendingSyncMembers];
    for (const id of missing) this.removeMember(g, id, ErrorCode.REBALANCE_IN_PROGRESS);
    this.prepareRebalance(g, `members did not sync within the rebalance timeout: ${missing.join(',')}`);
  }

  private resetAndPropagateAssignmentError(g: GroupMetadata, errorCode: number): void {
    for (const m of g.members.values()) {
      m.assignment = EMPTY_BUFFER;
      if (m.awaitingSync !== null) {
        const respond = m.awaitingSync;
        m.awaitingSync = null;
        respond(syncError(errorCode));
      }
    }
  }

  /** Removes a member, answering its waiting requests with `errorCode`; the caller updates the group state. */
  private removeMember(g: GroupMetadata, memberId: string, errorCode: number): MemberMetadata | undefined {
    const m = g.remove(memberId);
    if (m === undefined) return undefined;
    if (m.awaitingJoin !== null) {
      const r = m.awaitingJoin;
      m.awaitingJoin = null;
      r(joinError(memberId, errorCode));
    }
    if (m.awaitingSync !== null) {
      const r = m.awaitingSync;
      m.awaitingSync = null;
      r(syncError(errorCode));
    }
    return m;
  }

  private removeMemberAndUpdateGroup(g: GroupMetadata, memberId: string, reason: string): void {
    this.removeMember(g, memberId, ErrorCode.UNKNOWN_MEMBER_ID);
    switch (g.state) {
      case 'Stable':
      case 'CompletingRebalance':
        this.prepareRebalance(g, reason);
        break;
      case 'PreparingRebalance':
        this.maybeCompleteJoin(g);
        break;
      default:
        break;
    }
  }

  private scheduleHeartbeat(g: GroupMetadata, m: MemberMetadata): void {
    m.cancelHeartbeat?.();
    m.latestHeartbeatMs = this.scheduler.now();
    const timeout = m.isNew ? NEW_MEMBER_JOIN_TIMEOUT_MS : m.sessionTimeoutMs;
    m.cancelHeartbeat = this.scheduler.schedule(timeout, () => {
      m.cancelHeartbeat = null;
      if (this.groups.get(g.groupId) !== g || g.members.get(m.memberId) !== m) return;
      // A member waiting in a rebalance is kept (its timer restarts when the join completes),
      // except a new member whose join waited NEW_MEMBER_JOIN_TIMEOUT_MS.
      if ((m.awaitingJoin !== null && !m.isNew) || m.awaitingSync !== null) return;
      const why = m.isNew ? 'new member did not complete its join in time' : `session timeout (${m.sessionTimeoutMs} ms) expired`;
      this.logger.info('member failed, removing it from the group', { group: g.groupId, memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? undefined, why });
      this.removeMemberAndUpdateGroup(g, m.memberId, `member ${m.memberId} failed: ${why}`);
    });
  }

  // ------------------------------------------------------------------------------- SyncGroup

  syncGroup(req: SyncRequest): Promise<SyncResult> {
    const unavailable = this.unavailableFor(req.groupId);
    if (unavailable !== ErrorCode.NONE) return Promise.resolve(syncError(unavailable));
    if (req.groupId === '') return Promise.resolve(syncError(ErrorCode.INVALID_GROUP_ID));
    const g = this.groups.get(req.groupId);
    if (g === undefined) return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    if (g.is('Dead')) return Promise.resolve(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
    const fenced = this.fencedError(g, req.memberId, req.groupInstanceId);
    if (fenced !== ErrorCode.NONE) return Promise.resolve(syncError(fenced));
    const m = g.members.get(req.memberId);
    if (m === undefined) return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    if (req.generationId !== g.generationId) return Promise.resolve(syncError(ErrorCode.ILLEGAL_GENERATION));
    if ((req.protocolType !== null && req.protocolType !== g.protocolType) || (req.protocolName !== null && req.protocolName !== g.protocolName)) {
      return Promise.resolve(syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    switch (g.state) {
      case 'PreparingRebalance':
        return Promise.resolve(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      case 'Stable':
        g.pendingSyncMembers.delete(m.memberId);
        this.scheduleHeartbeat(g, m);
        return Promise.resolve({ errorCode: ErrorCode.NONE, protocolType: g.protocolType, protocolName: g.protocolName, assignment: m.assignment });
      case 'CompletingRebalance':
        break;
      default:
        return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    }
    return new Promise<SyncResult>((resolve) => {
      if (m.awaitingSync !== null) m.awaitingSync(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      m.awaitingSync = resolve;
      g.pendingSyncMembers.delete(m.memberId);
      if (!g.isLeader(m.memberId)) return;
      const assignments = new Map<string, Buffer>();
      for (const a of req.assignments) if (g.members.has(a.memberId)) assignments.set(a.memberId, a.assignment);
      const generation = g.generationId;
      void this.append(g, [groupMetadataRecord(g.groupId, this.snapshot(g, assignments))]).then((err) => {
        if (this.groups.get(g.groupId) !== g || !g.is('CompletingRebalance') || g.generationId !== generation) return;
        if (err !== ErrorCode.NONE) {
          this.resetAndPropagateAssignmentError(g, err);
          this.prepareRebalance(g, `failed to store the assignment of generation ${generation}`);
          return;
        }
        for (const member of g.members.values()) {
          member.assignment = assignments.get(member.memberId) ?? EMPTY_BUFFER;
          if (member.awaitingSync !== null) {
            const respond = member.awaitingSync;
            member.awaitingSync = null;
            respond({ errorCode: ErrorCode.NONE, protocolType: g.protocolType, protocolName: g.protocolName, assignment: member.assignment });
          }
        }
        g.transitionTo('Stable', this.scheduler.now());
        this.logger.info('group is stable', {
          group: g.groupId,
          generation: g.generationId,
          protocol: g.protocolName,
          leader: g.leaderId,
          assignment: this.describeAssignment(g),
        });
      });
    });
  }

  /** member=topic:partitions;… for the log line, when the assignments are consumer-protocol. */
  private describeAssignment(g: GroupMetadata): string {
    const parts: string[] = [];
    for (const m of g.members.values()) {
      let desc = `${m.assignment.length}B`;
      if (g.protocolType === 'consumer' && m.assignment.length >= 2) {
        const r = new Reader(m.assignment);
        r.int16();
        const n = r.int32();
        const tps: string[] = [];
        for (let i = 0; i < n && r.ok && i < 1000; i++) {
          const topic = r.string();
          const k = r.int32();
          const ps: number[] = [];
          for (let j = 0; j < k && r.ok && j < 100000; j++) ps.push(r.int32());
          tps.push(`${topic}[${ps.join(' ')}]`);
        }
        if (r.ok) desc = tps.join(' ');
      }
      parts.push(`${m.memberId}=${desc}`);
    }
    return parts.join('; ');
  }

  // ------------------------------------------------------------------------------- Heartbeat

  heartbeat(req: { groupId: string; memberId: string; groupInstanceId: string | null; generationId: number }): number {
    const unavailable = this.unavailableFor(req.groupId);
    if (unavailable !== ErrorCode.NONE) return unavailable;
    if (req.groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const g = this.groups.get(req.groupId);
    if (g === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (g.is('Dead')) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const fenced = this.fencedError(g, req.memberId, req.groupInstanceId);
    if (fenced !== ErrorCode.NONE) return fenced;
    const m = g.members.get(req.memberId);
    if (m === undefined || g.is('Empty')) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (req.generationId !== g.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.scheduleHeartbeat(g, m);
    return g.is('PreparingRebalance') ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  // ------------------------------------------------------------------------------- LeaveGroup

  leaveGroup(groupId: string, leaving: MemberIdentity[]): { errorCode: number; members: Array<MemberIdentity & { errorCode: number }> } {
    const unavailable = this.unavailableFor(groupId);
    if (unavailable !== ErrorCode.NONE) return { errorCode: unavailable, members: [] };
    if (groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, members: [] };
    const g = this.groups.get(groupId);
    if (g === undefined || g.is('Dead')) {
      return { errorCode: ErrorCode.NONE, members: leaving.map((l) => ({ ...l, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })) };
    }
    const results = leaving.map((l) => {
      let memberId = l.memberId;
      if (l.groupInstanceId !== null) {
        const current = g.staticMembers.get(l.groupInstanceId);
        if (current === undefined) return { ...l, errorCode: ErrorCode.UNKNOWN_MEMBER_ID };
        if (memberId !== '' && memberId !== current) return { ...l, errorCode: ErrorCode.FENCED_INSTANCE_ID };
        memberId = current;
      }
      const pending = g.pendingMembers.get(memberId);
      if (pending !== undefined) {
        pending();
        g.pendingMembers.delete(memberId);
        this.logger.info('pending member left the group', { group: groupId, memberId });
        this.maybeCompleteJoin(g);
        return { ...l, errorCode: ErrorCode.NONE };
      }
      if (!g.members.has(memberId)) return { ...l, errorCode: ErrorCode.UNKNOWN_MEMBER_ID };
      this.logger.info('member left the group', { group: groupId, memberId, groupInstanceId: l.groupInstanceId ?? undefined, reason: l.reason ?? undefined });
      this.removeMemberAndUpdateGroup(g, memberId, `member ${memberId} left${l.reason ? ` (${l.reason})` : ''}`);
      return { ...l, errorCode: ErrorCode.NONE };
    });
    return { errorCode: ErrorCode.NONE, members: results };
  }

  // ------------------------------------------------------------------------------- offsets

  /** Validates, stores (fsynced) and applies a commit; one error code per offset, in order. */
  async commitOffsets(req: CommitRequest): Promise<number[]> {
    const all = (e: number): number[] => req.offsets.map(() => e);
    const unavailable = this.unavailableFor(req.groupId);
    if (unavailable !== ErrorCode.NONE) return all(unavailable);
    let g = this.groups.get(req.groupId);
    if (g === undefined) {
      // A group not managed by this coordinator (v0, simple consumers) may still store offsets.
      if (req.generationId >= 0) return all(ErrorCode.ILLEGAL_GENERATION);
      g = new GroupMetadata(req.groupId, this.scheduler.now());
      this.groups.set(req.groupId, g);
    }
    const group = g;
    if (group.is('Dead')) return all(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    const fenced = req.groupInstanceId === null ? ErrorCode.NONE : this.fencedError(group, req.memberId, req.groupInstanceId);
    if (fenced !== ErrorCode.NONE) return all(fenced);
    if (!(req.generationId < 0 && group.is('Empty'))) {
      if (group.is('CompletingRebalance')) return all(ErrorCode.REBALANCE_IN_PROGRESS);
      const m = group.members.get(req.memberId);
      if (m === undefined) return all(ErrorCode.UNKNOWN_MEMBER_ID);
      if (req.generationId !== group.generationId) return all(ErrorCode.ILLEGAL_GENERATION);
      this.scheduleHeartbeat(group, m);
    }
    const now = this.scheduler.now();
    const errors = this.offsetErrors(req.offsets);
    const toStore = req.offsets
      .map((o, i) => ({ o, i }))
      .filter(({ i }) => errors[i] === ErrorCode.NONE)
      .map(({ o, i }) => ({
        i,
        key: offsetKey(o.topic, o.partition),
        value: { offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata ?? '', commitTimestamp: o.commitTimestamp >= 0 ? o.commitTimestamp : now },
        record: null as CoordinatorRecord | null,
      }));
    if (toStore.length === 0) return errors;
    for (const s of toStore) {
      const { topic, partition } = splitOffsetKey(s.key);
      s.record = offsetCommitRecord(group.groupId, topic, partition, s.value);
    }
    const stored = await this.appendWithOffset(group, toStore.map((s) => s.record!));
    if (stored.errorCode !== ErrorCode.NONE) {
      for (const s of toStore) errors[s.i] = stored.errorCode;
      return errors;
    }
    toStore.forEach((s, j) => this.applyOffset(group, s.key, { ...s.value, logOffset: stored.firstOffset + j }));
    return errors;
  }

  private applyOffset(g: GroupMetadata, key: string, v: CommittedOffset): void {
    const cur = g.offsets.get(key);
    if (cur === undefined || cur.logOffset < v.logOffset) g.offsets.set(key, v);
  }

  // ------------------------------------------------------------- transactional offsets (issue 5)

  /** Transactional offsets written but not yet committed or aborted (transaction-offsets.ts). */
  /** Per offset: UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE, or NONE (plain and transactional commits alike). */
  private offsetErrors(offsets: ReadonlyArray<{ topic: string; partition: number; metadata: string | null }>): number[] {
    return offsets.map((o): number => {
      if (!this.opts.partitionExists(o.topic, o.partition)) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      if (o.metadata !== null && Buffer.byteLength(o.metadata) > this.config.offsetMetadataMaxBytes) return ErrorCode.OFFSET_METADATA_TOO_LARGE;
      return ErrorCode.NONE;
    });
  }

  readonly pendingTxnOffsets = new PendingTxnOffsets();

  /**
   * TxnOffsetCommit: writes the offsets in a transactional batch of the producer and holds them
   * pending until the transaction's marker (completeTransactionalOffsets). A generation ≥ 0 (v3+,
   * KIP-447) is checked like a plain commit; -1 skips the membership check.
   */
  async commitTransactionalOffsets(req: CommitRequest & { producerId: number; producerEpoch: number }): Promise<number[]> {
    const all = (e: number): number[] => req.offsets.map(() => e);
    const unavailable = this.unavailableFor(req.groupId);
    if (unavailable !== ErrorCode.NONE) return all(unavailable);
    const g = this.groups.get(req.groupId);
    if (g !== undefined && req.generationId >= 0) {
      const fenced = req.groupInstanceId === null ? ErrorCode.NONE : this.fencedError(g, req.memberId, req.groupInstanceId);
      if (fenced !== ErrorCode.NONE) return all(fenced);
      if (!g.members.has(req.memberId)) return all(ErrorCode.UNKNOWN_MEMBER_ID);
      if (req.generationId !== g.generationId) return all(ErrorCode.ILLEGAL_GENERATION);
    }
    const now = this.scheduler.now();
    const errors = this.offsetErrors(req.offsets);
    const toStore = req.offsets
      .map((o, i) => ({ o, i }))
      .filter(({ i }) => errors[i] === ErrorCode.NONE)
      .map(({ o, i }) => ({ i, o, value: { offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata ?? '', commitTimestamp: now } }));
    if (toStore.length === 0) return errors;
    const partition = this.partitionFor(req.groupId);
    const stored = await this.appendTo(
      req.groupId,
      toStore.map((s) => offsetCommitRecord(req.groupId, s.o.topic, s.o.partition, s.value)),
      { producerId: req.producerId, producerEpoch: req.producerEpoch },
    );
    if (stored.errorCode !== ErrorCode.NONE) {
      for (const s of toStore) errors[s.i] = stored.errorCode;
      return errors;
    }
    const firstOffset = stored.firstOffset;
    toStore.forEach((s, j) =>
      this.pendingTxnOffsets.add(partition, req.producerId, { groupId: req.groupId, key: offsetKey(s.o.topic, s.o.partition), value: { ...s.value, logOffset: firstOffset + j } }),
    );
    return errors;
  }

  /**
   * Called after the transaction marker of `producerId` is written to `offsetsPartition`: on
   * commit its pending offsets become the groups' committed offsets, on abort they are dropped.
   */
  completeTransactionalOffsets(producerId: number, offsetsPartition: number, commit: boolean): void {
    if (this.stopped) return;
    const owned = this.log_ === null ? ErrorCode.NOT_COORDINATOR : this.owned.errorFor(offsetsPartition);
    // Not served here: its coordinator replays the marker. Loading: applied after the replay.
    if (owned === ErrorCode.NOT_COORDINATOR) return;
    if (owned === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) {
      let l = this.markersWhileLoading.get(offsetsPartition);
      if (l === undefined) this.markersWhileLoading.set(offsetsPartition, (l = []));
      l.push({ producerId, commit });
      return;
    }
    for (const e of this.pendingTxnOffsets.take(offsetsPartition, producerId)) {
      if (!commit) continue;
      let g = this.groups.get(e.groupId);
      if (g === undefined) {
        g = new GroupMetadata(e.groupId, this.scheduler.now());
        this.groups.set(e.groupId, g);
      }
      this.applyOffset(g, e.key, e.value);
    }
  }


  /** OffsetFetch require_stable: whether a transactional offset is pending for the partition. */
  hasPendingTransactionalOffset(groupId: string, topic: string, partition: number): boolean {
    return this.pendingTxnOffsets.has(groupId, offsetKey(topic, partition));
  }

  /** Committed offsets of a group: of the given partitions (-1 where none), or all (topics null). */
  fetchOffsets(groupId: string, topics: Array<{ name: string; partitions: number[] }> | null): { errorCode: number; topics: Array<{ name: string; partitions: FetchedOffset[] }> } {
    const unavailable = this.unavailableFor(groupId);
    if (unavailable !== ErrorCode.NONE) return { errorCode: unavailable, topics: [] };
    const g = this.groups.get(groupId);
    const found = (o: CommittedOffset | undefined, partition: number): FetchedOffset =>
      o === undefined
        ? { partition, offset: -1, leaderEpoch: -1, metadata: '', errorCode: ErrorCode.NONE }
        : { partition, offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata, errorCode: ErrorCode.NONE };
    if (topics !== null) {
      return { errorCode: ErrorCode.NONE, topics: topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => found(g?.offsets.get(offsetKey(t.name, p)), p)) })) };
    }
    const byTopic = new Map<string, FetchedOffset[]>();
    if (g !== undefined) {
      for (const [k, o] of g.offsets) {
        const { topic, partition } = splitOffsetKey(k);
        let list = byTopic.get(topic);
        if (list === undefined) byTopic.set(topic, (list = []));
        list.push(found(o, partition));
      }
    }
    return { errorCode: ErrorCode.NONE, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions: partitions.sort((a, b) => a.partition - b.partition) })) };
  }

  /** OffsetDelete: removes committed offsets of partitions the group does not consume. */
  async deleteOffsets(groupId: string, topics: Array<{ name: string; partitions: number[] }>): Promise<{ errorCode: number; topics: Array<{ name: string; partitions: Array<{ partition: number; errorCode: number }> }> }> {
    const unavailable = this.unavailableFor(groupId);
    if (unavailable !== ErrorCode.NONE) return { errorCode: unavailable, topics: [] };
    if (groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, topics: [] };
    const g = this.groups.get(groupId);
    if (g === undefined || g.is('Dead')) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] };
    let subscribed: Set<string> | null = new Set();
    if (!g.is('Empty')) {
      subscribed = g.subscribedTopics(consumerSubscriptionTopics);
      if (subscribed === null) return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] };
    }
    const records: CoordinatorRecord[] = [];
    const keys: string[] = [];
    const result = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        if (!this.opts.partitionExists(t.name, p)) return { partition: p, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        if (subscribed!.has(t.name)) return { partition: p, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC };
        if (g.offsets.has(offsetKey(t.name, p))) {
          records.push(offsetCommitRecord(groupId, t.name, p, null));
          keys.push(offsetKey(t.name, p));
        }
        return { partition: p, errorCode: ErrorCode.NONE };
      }),
    }));
    if (records.length > 0) {
      for (const k of keys) g.offsets.delete(k);
      const err = await this.append(g, records);
      if (err !== ErrorCode.NONE) return { errorCode: err, topics: [] };
      this.logger.info('deleted committed offsets', { group: groupId, partitions: keys.length });
    }
    return { errorCode: ErrorCode.NONE, topics: result };
  }

  // ------------------------------------------------------------------------------- admin

  listGroups(statesFilter: readonly string[]): Array<{ groupId: string; protocolType: string; state: GroupState }> {
    const wanted = new Set(statesFilter.map((s) => s.toLowerCase()));
    return [...this.groups.values()]
      .filter((g) => !g.is('Dead') && (wanted.size === 0 || wanted.has(g.state.toLowerCase())))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType ?? '', state: g.state }));
  }

  describeGroup(groupId: string): GroupSummary {
    const unavailable = this.unavailableFor(groupId);
    if (unavailable !== ErrorCode.NONE) return { groupId, errorCode: unavailable, state: '', protocolType: '', protocol: '', members: [] };
    const g = this.groups.get(groupId);
    if (g === undefined || g.is('Dead')) return { groupId, errorCode: ErrorCode.NONE, state: 'Dead', protocolType: '', protocol: '', members: [] };
    const stable = g.is('Stable');
    return {
      groupId,
      errorCode: ErrorCode.NONE,
      state: g.state,
      protocolType: g.protocolType ?? '',
      protocol: stable ? (g.protocolName ?? '') : '',
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: stable ? m.metadataFor(g.protocolName!) : EMPTY_BUFFER,
        assignment: stable ? m.assignment : EMPTY_BUFFER,
      })),
    };
  }

  /** DeleteGroups: only Empty groups; their metadata and offsets are tombstoned. */
  async deleteGroups(groupIds: string[]): Promise<Array<{ groupId: string; errorCode: number }>> {
    return Promise.all(
      groupIds.map(async (groupId) => {
        const unavailable = this.unavailableFor(groupId);
        if (unavailable !== ErrorCode.NONE) return { groupId, errorCode: unavailable };
        const g = this.groups.get(groupId);
        if (g === undefined || g.is('Dead')) return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND };
        if (!g.is('Empty')) return { groupId, errorCode: ErrorCode.NON_EMPTY_GROUP };
        const err = await this.removeGroup(g, 'deleted by DeleteGroups');
        return { groupId, errorCode: err };
      }),
    );
  }

  private async removeGroup(g: GroupMetadata, why: string): Promise<number> {
    const records = [...g.offsets.keys()].map((k) => {
      const { topic, partition } = splitOffsetKey(k);
      return offsetCommitRecord(g.groupId, topic, partition, null);
    });
    records.push(groupMetadataRecord(g.groupId, null));
    g.transitionTo('Dead', this.scheduler.now());
    this.groups.delete(g.groupId);
    g.cancelJoinTimer?.();
    g.cancelSyncTimer?.();
    for (const cancel of g.pendingMembers.values()) cancel();
    this.logger.info('removed group', { group: g.groupId, why, offsets: g.offsets.size });
    return this.append(g, records);
  }

  // ------------------------------------------------------------------------------- retention

  private scheduleRetention(): void {
    if (this.stopped) return;
    this.cancelRetention = this.scheduler.schedule(this.config.offsetsRetentionCheckIntervalMs, () => {
      void this.expireOffsets().finally(() => this.scheduleRetention());
    });
  }

  /** Offsets of Empty groups older than the retention (from the later of emptying and the commit). */
  async expireOffsets(): Promise<number> {
    const now = this.scheduler.now();
    let expired = 0;
    for (const g of [...this.groups.values()]) {
      if (!g.is('Empty')) continue;
      const keys = [...g.offsets].filter(([, o]) => now - Math.max(g.currentStateTimestampMs, o.commitTimestamp) >= this.config.offsetsRetentionMs).map(([k]) => k);
      if (keys.length === g.offsets.size) {
        expired += keys.length;
        await this.removeGroup(g, `offsets expired after ${this.config.offsetsRetentionMs} ms`);
        continue;
      }
      if (keys.length === 0) continue;
      for (const k of keys) g.offsets.delete(k);
      expired += keys.length;
      await this.append(
        g,
        keys.map((k) => {
          const { topic, partition } = splitOffsetKey(k);
          return offsetCommitRecord(g.groupId, topic, partition, null);
        }),
      );
      this.logger.info('expired committed offsets', { group: g.groupId, partitions: keys.length });
    }
    return expired;
  }

  // ------------------------------------------------------------------------------- storage

  private snapshot(g: GroupMetadata, assignments?: ReadonlyMap<string, Buffer>): GroupMetadataValue {
    return {
      protocolType: g.protocolType ?? '',
      generation: g.generationId,
      protocol: g.protocolName,
      leader: g.members.size > 0 ? g.leaderId : null,
      currentStateTimestamp: g.currentStateTimestampMs,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        sessionTimeoutMs: m.sessionTimeoutMs,
        subscription: g.protocolName !== null ? m.metadataFor(g.protocolName) : EMPTY_BUFFER,
        assignment: assignments !== undefined ? (assignments.get(m.memberId) ?? EMPTY_BUFFER) : m.assignment,
      })),
    };
  }

  /**
   * Appends to the group's partition through `appendTo`; NOT_COORDINATOR when the partition is
   * not served here, or stopped being served (or changed epoch) while the append was in flight —
   * then the new coordinator replays whatever of it was committed, and this one's memory is left alone.
   */
  private async appendWithOffset(g: GroupMetadata, records: CoordinatorRecord[]): Promise<{ errorCode: number; firstOffset: number }> {
    return this.appendTo(g.groupId, records);
  }

  private async appendTo(groupId: string, records: CoordinatorRecord[], txn?: TxnAppend): Promise<{ errorCode: number; firstOffset: number }> {
    const partition = this.partitionFor(groupId);
    const epoch = this.owned.epochOf(partition);
    if (!this.owned.isActive(partition, epoch)) return { errorCode: ErrorCode.NOT_COORDINATOR, firstOffset: -1 };
    let firstOffset: number;
    try {
      firstOffset = await this.log.append(partition, records, this.scheduler.now(), txn);
    } catch (e) {
      // The log refuses a stale producer epoch (a fenced producer): the storage error code is Kafka's name.
      if (txn !== undefined && (e as { code?: string }).code === 'INVALID_PRODUCER_EPOCH') return { errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, firstOffset: -1 };
      const errorCode = appendErrorCode(e);
      if (errorCode === ErrorCode.NOT_COORDINATOR) this.logger.info('could not write to __consumer_offsets: no longer its leader', { group: groupId, partition, error: e });
      else this.logger.error('failed to write to __consumer_offsets', { group: groupId, partition, error: e });
      return { errorCode, firstOffset: -1 };
    }
    if (!this.owned.isActive(partition, epoch)) return { errorCode: ErrorCode.NOT_COORDINATOR, firstOffset: -1 };
    return { errorCode: ErrorCode.NONE, firstOffset };
  }

  private async append(g: GroupMetadata, records: CoordinatorRecord[]): Promise<number> {
    return (await this.appendWithOffset(g, records)).errorCode;
  }

  // ------------------------------------------------------------------------------- lifecycle

  /** Cancels every timer and answers every waiting JoinGroup / SyncGroup with NOT_COORDINATOR. */
  shutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelRetention?.();
    for (const g of this.groups.values()) this.cancelGroup(g, ErrorCode.NOT_COORDINATOR);
  }
}
