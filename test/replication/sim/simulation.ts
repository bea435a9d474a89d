/**
 * A deterministic simulation of partition replication: the real replication logic of
 * src/broker/replication/partition-state.ts (the leader's fetch validation, follower tracking,
 * high watermark and ISR decisions; the follower's handling of fetch responses and truncation)
 * on 2–5 simulated brokers replicating one partition, with the real LeaderEpochFileCache in each
 * replica's log (sim/replica-log.ts), driven by a seeded scheduler (test/raft/sim/world.ts) over a
 * simulated network, clock and disk, with a simulated controller and acks=all producers.
 *
 * The world:
 * - network: every message may be dropped (0–10 %) and is delayed 1–maxDelay ms (so messages
 *   reorder); partitions split brokers, the controller and producers into two sides, later healed.
 * - disk: a process crash (kill -9) keeps what was written; a machine crash (power loss) keeps
 *   what was flushed plus maybe a prefix of the rest. The high watermark restarts from the node's
 *   last replication-offset-checkpoint. A leader acknowledges acks=all only once the records are
 *   flushed on it (strand.acks.all.fsync); a follower flushes what it appended before it fetches
 *   again, so the offset it reports to the leader is durable.
 * - controller (a model of h/meta's, never crashing: the Raft simulation covers the quorum):
 *   brokers heartbeat; one not heard from for the session timeout is fenced — removed from the ISR
 *   (the last member stays), its leadership moved to the first live ISR member in replica order
 *   (a clean election, leader epoch + 1), or leader -1; a restarted broker re-registers and is
 *   fenced the same way before it is unfenced (KRaft); an offline partition takes back an ISR
 *   member that returns. AlterPartition is checked as Kafka's (leader epoch, partition epoch,
 *   eligible members) and committed. Brokers learn partition state from versioned pushes.
 * - brokers: glue like the broker's (ReplicaManager, fetcher, Fetch and Produce handlers) around
 *   the real logic: one fetch in flight per follower (stale responses ignored), one AlterPartition
 *   in flight per leader, ISR shrink checks every 50 ms, produce refused below min.insync.replicas.
 * - producers send acks=all appends of unique record ids to whichever broker they think leads.
 *
 * Invariants (checked after every event unless said otherwise; the first broken ends the run):
 * - NoAckedRecordLost: every record acknowledged to a producer is, at its acknowledged offset, in
 *   the log of every replica of the controller's ISR — checked when acknowledged, whenever an ISR
 *   member truncates or crashes, when a replica joins the ISR, when a replica becomes leader, and
 *   at the end on every replica.
 * - NoOffsetTwoRecords: no two replicas ever expose different records at an offset below their
 *   high watermarks (so a consumer reads one history), and no offset is acknowledged twice.
 * - MonotonicHighWatermark: a leader's high watermark never decreases during its tenure.
 * - IsrContainsLeader: the controller's ISR holds its leader; a leader's ISR (and pending change)
 *   holds itself.
 * - LogMatching (after each slice of 100 ms): two logs with a batch of the same epoch at the same
 *   offset hold the same records up to it.
 * - Liveness: once the network heals and all brokers are up, within 6 s of simulated time every
 *   replica is in the ISR, a new record is acknowledged, and all logs are equal.
 * - Assertion: the code's own assertions.
 */
import assert from 'node:assert/strict';
import { ErrorCode } from '../../../src/protocol/errors.js';
import {
  LeaderPartitionState,
  applyFollowerFetch,
  isrChangeOutcome,
  lastFetchedEpoch,
  planFollowerFetch,
  type EpochEndOffset,
  type FollowerFetchResponse,
} from '../../../src/broker/replication/partition-state.js';
import { InvariantViolation, Random, Scheduler, check, fnv } from '../../raft/sim/world.js';
import { SimReplicaLog, encodeBatches } from './replica-log.js';

/** Deliberate bugs in the glue around the logic, to show the checker catches them. Never set outside tests. */
export interface ReplicationBugs {
  /** The leader's high watermark follows its own log end, ignoring the followers. */
  hwIgnoresFollowers?: boolean;
  /** Followers ignore diverging epochs: they never truncate. */
  followerNeverTruncates?: boolean;
  /** The controller elects any live replica, in the ISR or not (an unclean election). */
  electOutsideIsr?: boolean;
  /** Followers fetch on before flushing what they appended. */
  followerFetchBeforeFlush?: boolean;
}

export interface ReplicationSimOptions {
  seed: number;
  bugs?: ReplicationBugs;
  trace?: boolean;
}

export interface ReplicationSimResult {
  seed: number;
  violation: { invariant: string; detail: string; atMs: number } | null;
  traceHash: string;
  events: number;
  brokers: number;
  acked: number;
  elections: number;
  crashes: number;
  machineCrashes: number;
  partitions: number;
  truncations: number;
  isrChanges: number;
}

const CHAOS_MS = 3000;
const LIVENESS_BOUND_MS = 6000;
const CONTROLLER = 0;
const HEARTBEAT_MS = 50;
const SESSION_TIMEOUT_MS = 400;
const LAG_MAX_MS = 300;
const FETCH_INTERVAL_MS = 20;
const REQUEST_TIMEOUT_MS = 200;
const PRODUCE_TIMEOUT_MS = 600;
const CHECKPOINT_MS = 100;
const MAX_FETCH_RECORDS = 8;

interface PartitionRecord {
  replicas: number[];
  isr: number[];
  leader: number;
  leaderEpoch: number;
  partitionEpoch: number;
  /** Brokers fenced when this was sent. */
  fenced: number[];
  /** Increases with every change: brokers apply only newer ones. */
  version: number;
}

type Message =
  | { type: 'Fetch'; reqId: number; currentLeaderEpoch: number; fetchOffset: number; lastFetchedEpoch: number }
  | { type: 'FetchResponse'; reqId: number; response: FollowerFetchResponse }
  | { type: 'Produce'; reqId: number; records: string[] }
  | { type: 'ProduceResponse'; reqId: number; errorCode: number; baseOffset: number }
  | { type: 'AlterPartition'; reqId: number; leaderEpoch: number; partitionEpoch: number; newIsr: number[] }
  | { type: 'AlterPartitionResponse'; reqId: number; errorCode: number; state: PartitionRecord | null }
  | { type: 'Heartbeat'; incarnation: number }
  /** The controller handled this incarnation's registration at `version`. */
  | { type: 'HeartbeatResponse'; incarnation: number; version: number }
  | { type: 'Metadata'; state: PartitionRecord }
  | { type: 'MetadataRequest' }
  | { type: 'MetadataResponse'; leader: number };

const NO_DIVERGENCE: EpochEndOffset = { epoch: -1, endOffset: -1 };

interface PendingProduce {
  from: number;
  reqId: number;
  firstOffset: number;
  lastOffset: number;
  leaderEpoch: number;
  deadlineMs: number;
}

class SimBroker {
  readonly log = new SimReplicaLog();
  up = false;
  incarnation = 0;
  meta: PartitionRecord | null = null;
  /** The newest metadata version applied. */
  metaVersion = 0;
  /**
   * Until the controller has its registration, a (re)started broker takes no role: like Kafka's, it
   * first catches up with the metadata that includes its own (fenced) registration.
   */
  registeredAtVersion: number | null = null;
  leader: LeaderPartitionState | null = null;
  /** High watermark at the start of this leadership (and its growth since): MonotonicHighWatermark. */
  tenureHw = 0;
  follow: { leaderId: number; leaderEpoch: number; inflight: { reqId: number; fetchOffset: number; sentMs: number } | null } | null = null;
  pending: PendingProduce[] = [];
  /** The AlterPartition in flight; `deadlineMs` -1 while waiting for the metadata to settle it. */
  alter: { reqId: number; deadlineMs: number; newIsr: number[] } | null = null;
  checkpointHw = 0;
  /** Offsets below this were checked against the committed history (NoOffsetTwoRecords). */
  checkedHw = 0;
  constructor(readonly id: number) {}
}

class SimProducer {
  leaderGuess = -1;
  next = 0;
  readonly inflight = new Map<number, { records: string[]; sentMs: number; to: number }>();
  refreshing = false;
  constructor(readonly id: number) {}
}

export class ReplicationSimulation {
  private readonly random: Random;
  private readonly scheduler = new Scheduler();
  private readonly brokers: SimBroker[];
  private readonly producers: SimProducer[];
  private readonly minIsr: number;
  private readonly dropRate: number;
  private readonly maxDelayMs: number;
  private readonly machineCrashRate: number;
  private readonly bugs: ReplicationBugs;
  private side = new Map<number, number>();
  private reqIds = 0;
  private trace = 0x811c9dc5;
  private events = 0;
  private pendingWork: Promise<unknown>[] = [];
  private producersStopped = false;
  // controller
  private part: PartitionRecord;
  private readonly registrations = new Map<number, { incarnation: number; lastHeartbeatMs: number; fenced: boolean }>();
  // checker
  /** committed[o]: the record exposed at offset o below some high watermark. */
  private readonly committed: string[] = [];
  /** offset -> acknowledged record id. */
  private readonly acked = new Map<number, string>();
  private stats = { elections: 0, crashes: 0, machineCrashes: 0, partitions: 0, truncations: 0, isrChanges: 0 };

  constructor(private readonly options: ReplicationSimOptions) {
    const r = (this.random = new Random(options.seed));
    this.bugs = options.bugs ?? {};
    const n = r.pick([2, 3, 3, 3, 3, 4, 5]);
    this.brokers = Array.from({ length: n }, (_, i) => new SimBroker(i + 1));
    this.producers = Array.from({ length: r.int(1, 3) }, (_, i) => new SimProducer(100 + i));
    this.minIsr = Math.min(n, r.pick([1, 2, 2]));
    this.dropRate = r.pick([0, 0.01, 0.05, 0.1]);
    this.maxDelayMs = r.pick([2, 10, 30]);
    this.machineCrashRate = r.pick([0, 0.3, 1]);
    const replicas = this.brokers.map((b) => b.id);
    this.part = { replicas, isr: [...replicas], leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0, fenced: [], version: 1 };
    // The brokers registered before the topic was created (their first incarnation).
    for (const id of replicas) this.registrations.set(id, { incarnation: 1, lastHeartbeatMs: 0, fenced: false });
  }

  async run(): Promise<ReplicationSimResult> {
    let violation: ReplicationSimResult['violation'] = null;
    try {
      this.scheduler.at(0, () => this.controllerTick());
      for (const b of this.brokers) this.startBroker(b);
      for (const p of this.producers) this.startProducer(p);
      await this.chaos();
      await this.calm();
    } catch (e) {
      violation =
        e instanceof InvariantViolation
          ? { invariant: e.invariant, detail: e.detail, atMs: this.scheduler.nowMs }
          : { invariant: 'Assertion', detail: e instanceof Error ? (e.stack ?? e.message) : String(e), atMs: this.scheduler.nowMs };
    }
    return {
      seed: this.options.seed,
      violation,
      traceHash: this.trace.toString(16).padStart(8, '0'),
      events: this.events,
      brokers: this.brokers.length,
      acked: this.acked.size,
      ...this.stats,
    };
  }

  // ------------------------------------------------------------------ phases

  private async chaos(): Promise<void> {
    const r = this.random;
    for (let t = r.int(200, 600); t < CHAOS_MS; t += r.int(150, 700)) {
      const kind = r.int(0, 4);
      if (kind <= 1) this.scheduler.at(t, () => this.crashRandomBroker());
      else if (kind === 2) this.scheduler.at(t, () => this.partitionRandomly());
      else if (kind === 3) this.scheduler.at(t, () => this.heal());
      else this.scheduler.at(t, () => this.restartGracefully());
    }
    await this.runUntil(CHAOS_MS);
  }

  private async calm(): Promise<void> {
    this.heal();
    for (const b of this.brokers) if (!b.up) this.startBroker(b);
    const deadline = this.scheduler.nowMs + LIVENESS_BOUND_MS;
    const ackedBefore = this.acked.size;
    while (this.scheduler.nowMs < deadline) {
      await this.runUntil(Math.min(deadline, this.scheduler.nowMs + 100));
      // Once a record written after the heal is acknowledged, the producers stop and the replicas must converge.
      if (this.acked.size > ackedBefore) this.producersStopped = true;
      if (this.producersStopped && this.converged()) {
        this.checkFinal();
        return;
      }
    }
    const state = this.brokers
      .map((b) => `${b.id}:${b.up ? (b.leader ? `leader@${b.leader.leaderEpoch}` : b.follow ? `follower(${b.follow.leaderId}@${b.follow.leaderEpoch})` : 'idle') : 'down'} leo=${b.log.logEndOffset} hw=${b.log.highWatermark}`)
      .join(' ');
    throw new InvariantViolation(
      'Liveness',
      `not converged ${LIVENESS_BOUND_MS} ms after healing (controller: leader ${this.part.leader}@${this.part.leaderEpoch} isr [${this.part.isr}]; acked ${this.acked.size - ackedBefore} new) ${state}`,
    );
  }

  /** Every replica in the ISR, all logs equal to the leader's, high watermarks at the log end. */
  private converged(): boolean {
    const leader = this.brokers.find((b) => b.id === this.part.leader);
    if (leader === undefined || leader.leader === null || this.part.isr.length !== this.brokers.length) return false;
    const leo = leader.log.logEndOffset;
    return this.brokers.every((b) => b.up && b.log.logEndOffset === leo && b.log.highWatermark === leo);
  }

  private async runUntil(untilMs: number): Promise<void> {
    while (this.scheduler.step(untilMs)) {
      while (this.pendingWork.length > 0) await this.pendingWork.shift();
      this.events++;
      this.checkAfterEvent();
    }
    this.scheduler.nowMs = Math.max(this.scheduler.nowMs, untilMs);
    this.checkLogMatching();
  }

  // ------------------------------------------------------------------ faults

  private crashRandomBroker(): void {
    const up = this.brokers.filter((b) => b.up);
    if (up.length === 0) return;
    const b = this.random.pick(up);
    const machine = this.random.chance(this.machineCrashRate);
    this.stopBroker(b);
    const lost = b.log.crash(this.random, machine, b.checkpointHw);
    this.stats.crashes++;
    if (machine) this.stats.machineCrashes++;
    this.record(`crash ${b.id}${machine ? ' (machine)' : ''} lost=${lost} leo=${b.log.logEndOffset} hw=${b.log.highWatermark}`);
    b.checkedHw = Math.min(b.checkedHw, b.log.highWatermark);
    this.checkAckedOn(b, 'after a crash');
    this.scheduler.at(this.scheduler.nowMs + this.random.int(50, 1000), () => {
      if (!b.up) this.startBroker(b);
    });
  }

  private restartGracefully(): void {
    const up = this.brokers.filter((b) => b.up);
    if (up.length === 0) return;
    const b = this.random.pick(up);
    b.log.flush();
    b.checkpointHw = b.log.highWatermark;
    this.stopBroker(b);
    b.log.crash(this.random, false, b.checkpointHw);
    this.record(`stopped ${b.id}`);
    this.scheduler.at(this.scheduler.nowMs + this.random.int(20, 300), () => {
      if (!b.up) this.startBroker(b);
    });
  }

  private stopBroker(b: SimBroker): void {
    b.up = false;
    b.leader = null;
    b.follow = null;
    b.meta = null;
    b.registeredAtVersion = null;
    b.pending = [];
    b.alter = null;
  }

  private partitionRandomly(): void {
    const ids = [CONTROLLER, ...this.brokers.map((b) => b.id), ...this.producers.map((p) => p.id)];
    this.side = new Map(ids.map((id) => [id, this.random.int(0, 1)]));
    this.stats.partitions++;
    this.record(`partition ${[...this.side].map(([id, s]) => `${id}=${s}`).join(',')}`);
  }

  private heal(): void {
    this.side = new Map();
    this.record('heal');
  }

  // ------------------------------------------------------------------ network

  private connected(a: number, b: number): boolean {
    return (this.side.get(a) ?? 0) === (this.side.get(b) ?? 0);
  }

  private send(from: number, to: number, m: Message): void {
    if (this.random.chance(this.dropRate)) return;
    const delay = this.random.int(1, this.maxDelayMs);
    const fromIncarnation = from >= 1 && from < 100 ? this.brokers[from - 1]!.incarnation : 0;
    this.scheduler.at(this.scheduler.nowMs + delay, () => {
      if (!this.connected(from, to)) return;
      // A reply to (or from) a process that has since restarted has nowhere to go.
      if (from >= 1 && from < 100 && this.brokers[from - 1]!.incarnation !== fromIncarnation) return;
      this.deliver(from, to, m);
    });
  }

  private deliver(from: number, to: number, m: Message): void {
    if (to === CONTROLLER) return this.controllerReceive(from, m);
    if (to >= 100) return this.producerReceive(this.producers[to - 100]!, from, m);
    const b = this.brokers[to - 1]!;
    if (!b.up) return;
    this.record(`deliver ${from}->${to} ${describe(m)}`);
    switch (m.type) {
      case 'Metadata':
        return this.applyMetadata(b, m.state);
      case 'Fetch':
        return this.handleFetch(b, from, m);
      case 'FetchResponse':
        return this.handleFetchResponse(b, from, m);
      case 'Produce':
        return this.handleProduce(b, from, m);
      case 'AlterPartitionResponse':
        return this.handleAlterPartitionResponse(b, m);
      case 'MetadataRequest':
        return this.send(b.id, from, { type: 'MetadataResponse', leader: b.meta?.leader ?? -1 });
      case 'HeartbeatResponse':
        if (m.incarnation === b.incarnation && b.registeredAtVersion === null) b.registeredAtVersion = m.version;
        return;
      default:
        assert.fail(`broker got ${m.type}`);
    }
  }

  // ------------------------------------------------------------------ controller

  private controllerTick(): void {
    const now = this.scheduler.nowMs;
    for (const [id, reg] of this.registrations) {
      if (!reg.fenced && now - reg.lastHeartbeatMs > SESSION_TIMEOUT_MS) this.fence(id, 'session timeout');
    }
    // Pushes are best effort: repeat the current state now and then.
    this.broadcast();
    this.scheduler.at(now + 100, () => this.controllerTick());
  }

  private controllerReceive(from: number, m: Message): void {
    this.record(`controller <- ${from} ${describe(m)}`);
    if (m.type === 'Heartbeat') {
      const reg = this.registrations.get(from);
      const now = this.scheduler.nowMs;
      if (reg === undefined || reg.incarnation !== m.incarnation) {
        // (Re-)registration: a restarted broker is fenced until it heartbeats again (KRaft).
        if (reg !== undefined && m.incarnation < reg.incarnation) return;
        this.registrations.set(from, { incarnation: m.incarnation, lastHeartbeatMs: now, fenced: true });
        this.fence(from, 'registration');
      } else {
        reg.lastHeartbeatMs = now;
        if (reg.fenced) this.unfence(from);
      }
      this.send(CONTROLLER, from, { type: 'HeartbeatResponse', incarnation: m.incarnation, version: this.part.version });
      return;
    }
    if (m.type === 'AlterPartition') {
      const errorCode = this.alterPartition(from, m);
      this.send(CONTROLLER, from, { type: 'AlterPartitionResponse', reqId: m.reqId, errorCode, state: errorCode === ErrorCode.NONE ? { ...this.part } : null });
      return;
    }
    if (m.type === 'MetadataRequest') {
      this.send(CONTROLLER, from, { type: 'MetadataResponse', leader: this.part.leader });
      return;
    }
    assert.fail(`controller got ${m.type}`);
  }

  private isFenced(id: number): boolean {
    return this.registrations.get(id)?.fenced ?? true;
  }

  private alterPartition(from: number, m: Extract<Message, { type: 'AlterPartition' }>): number {
    const p = this.part;
    if (from !== p.leader || m.leaderEpoch !== p.leaderEpoch) return ErrorCode.FENCED_LEADER_EPOCH;
    if (m.partitionEpoch !== p.partitionEpoch) return ErrorCode.INVALID_UPDATE_VERSION;
    if (!m.newIsr.includes(p.leader) || m.newIsr.some((id) => !p.replicas.includes(id))) return ErrorCode.INVALID_REQUEST;
    if (m.newIsr.some((id) => this.isFenced(id) && !p.isr.includes(id))) return ErrorCode.INELIGIBLE_REPLICA;
    const added = m.newIsr.filter((id) => !p.isr.includes(id));
    this.commit({ isr: [...m.newIsr] }, `AlterPartition from ${from}`);
    for (const id of added) this.checkAckedOn(this.brokers[id - 1]!, 'joining the ISR');
    return ErrorCode.NONE;
  }

  private fence(id: number, why: string): void {
    const reg = this.registrations.get(id)!;
    reg.fenced = true;
    const p = this.part;
    let isr = p.isr;
    let leader = p.leader;
    if (isr.includes(id) && isr.length > 1) isr = isr.filter((x) => x !== id);
    if (leader === id) leader = this.electFrom(isr, id);
    if (isr !== p.isr || leader !== p.leader) this.commit({ isr, leader }, `fence ${id} (${why})`);
    else this.registrationChanged(`fence ${id} (${why})`);
  }

  /** A broker's fencing changed (Kafka's BrokerRegistrationChangeRecord): a new metadata version. */
  private registrationChanged(why: string): void {
    this.part = { ...this.part, version: this.part.version + 1 };
    this.record(`commit ${why}`);
    this.broadcast();
  }

  private unfence(id: number): void {
    this.registrations.get(id)!.fenced = false;
    const p = this.part;
    if (p.leader === -1 && (p.isr.includes(id) || this.bugs.electOutsideIsr === true)) this.commit({ leader: id }, `unfence ${id}: the offline partition takes it as leader`);
    else this.registrationChanged(`unfence ${id}`);
  }

  /** A clean election: the first live ISR member in replica order, other than `excluding`. */
  private electFrom(isr: readonly number[], excluding: number): number {
    const pool = this.bugs.electOutsideIsr === true ? this.part.replicas : isr;
    for (const id of this.part.replicas) if (id !== excluding && pool.includes(id) && !this.isFenced(id)) return id;
    return -1;
  }

  private commit(change: Partial<Pick<PartitionRecord, 'isr' | 'leader'>>, why: string): void {
    const p = this.part;
    const leader = change.leader ?? p.leader;
    let isr = change.isr ?? p.isr;
    // An unclean election (only with the electOutsideIsr bug) restarts the ISR at the new leader, as Kafka's.
    if (leader >= 0 && !isr.includes(leader)) isr = [leader];
    const next: PartitionRecord = {
      replicas: p.replicas,
      isr,
      leader,
      leaderEpoch: leader !== p.leader ? p.leaderEpoch + 1 : p.leaderEpoch,
      partitionEpoch: p.partitionEpoch + 1,
      fenced: [],
      version: p.version + 1,
    };
    if (leader !== p.leader && leader >= 0) this.stats.elections++;
    if (next.isr.join() !== p.isr.join()) this.stats.isrChanges++;
    this.part = next;
    this.record(`commit ${why}: leader ${next.leader}@${next.leaderEpoch} isr [${next.isr}] pe ${next.partitionEpoch}`);
    check(next.leader === -1 || next.isr.includes(next.leader), 'IsrContainsLeader', () => `controller committed leader ${next.leader} outside ISR [${next.isr}]`);
    this.broadcast();
  }

  private broadcast(): void {
    const fenced = [...this.registrations].filter(([, r]) => r.fenced).map(([id]) => id);
    for (const b of this.brokers) this.send(CONTROLLER, b.id, { type: 'Metadata', state: { ...this.part, fenced } });
  }

  // ------------------------------------------------------------------ brokers

  private startBroker(b: SimBroker): void {
    b.incarnation++;
    b.up = true;
    b.checkedHw = Math.min(b.checkedHw, b.log.highWatermark);
    const inc = b.incarnation;
    const every = (ms: number, fn: () => void): void => {
      const tick = (): void => {
        if (!b.up || b.incarnation !== inc) return;
        fn();
        this.scheduler.at(this.scheduler.nowMs + ms, tick);
      };
      this.scheduler.at(this.scheduler.nowMs + this.random.int(0, ms), tick);
    };
    this.record(`start ${b.id} leo=${b.log.logEndOffset} hw=${b.log.highWatermark}`);
    every(HEARTBEAT_MS, () => this.send(b.id, CONTROLLER, { type: 'Heartbeat', incarnation: inc }));
    every(50, () => this.leaderTick(b));
    every(FETCH_INTERVAL_MS, () => this.maybeFetch(b));
    every(CHECKPOINT_MS, () => (b.checkpointHw = b.log.highWatermark));
  }

  private applyMetadata(b: SimBroker, state: PartitionRecord): void {
    if (b.registeredAtVersion === null || state.version < b.registeredAtVersion) return;
    if (b.meta !== null && state.version <= b.metaVersion) return;
    b.meta = state;
    b.metaVersion = state.version;
    const now = this.scheduler.nowMs;
    if (state.leader === b.id) {
      if (b.leader !== null && b.leader.leaderEpoch === state.leaderEpoch) {
        // The change in flight ends only if this state is newer than what the leader had.
        if (b.leader.isrChangeCommitted(state.isr, state.partitionEpoch, state.replicas)) b.alter = null;
        this.advanceHighWatermark(b);
        return;
      }
      // Becoming leader at a new epoch.
      this.failPending(b, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      b.follow = null;
      b.alter = null;
      b.log.assignEpochStartOffset(state.leaderEpoch);
      b.leader = new LeaderPartitionState({
        leaderId: b.id,
        leaderEpoch: state.leaderEpoch,
        partitionEpoch: state.partitionEpoch,
        replicas: state.replicas,
        isr: state.isr,
        leaderEpochStartOffset: b.log.logEndOffset,
        nowMs: now,
      });
      b.tenureHw = b.log.highWatermark;
      this.record(`leader ${b.id}@${state.leaderEpoch} leo=${b.log.logEndOffset} hw=${b.log.highWatermark}`);
      this.checkAckedOn(b, `becoming leader of epoch ${state.leaderEpoch}`, true);
      this.advanceHighWatermark(b);
      return;
    }
    if (b.leader !== null) {
      this.record(`resign ${b.id}@${b.leader.leaderEpoch}`);
      b.leader = null;
      b.alter = null;
      this.failPending(b, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    }
    if (state.leader < 0 || !state.replicas.includes(b.id)) {
      b.follow = null;
      return;
    }
    if (b.follow === null || b.follow.leaderId !== state.leader || b.follow.leaderEpoch !== state.leaderEpoch) {
      b.follow = { leaderId: state.leader, leaderEpoch: state.leaderEpoch, inflight: null };
      this.maybeFetch(b);
    }
  }

  private failPending(b: SimBroker, errorCode: number): void {
    for (const p of b.pending.splice(0)) this.send(b.id, p.from, { type: 'ProduceResponse', reqId: p.reqId, errorCode, baseOffset: -1 });
  }

  /** Leader: ISR shrink, AlterPartition and produce timeouts. */
  private leaderTick(b: SimBroker): void {
    const now = this.scheduler.nowMs;
    for (const p of b.pending.filter((x) => now > x.deadlineMs)) {
      b.pending.splice(b.pending.indexOf(p), 1);
      this.send(b.id, p.from, { type: 'ProduceResponse', reqId: p.reqId, errorCode: ErrorCode.REQUEST_TIMED_OUT, baseOffset: -1 });
    }
    const st = b.leader;
    if (st === null) return;
    if (b.alter !== null && b.alter.deadlineMs >= 0 && now > b.alter.deadlineMs) {
      // No answer: the change may have been committed. Keep it pending and ask again.
      this.sendAlter(b, b.alter.newIsr);
    }
    if (b.alter === null) {
      const shrunk = st.isrShrink(now, b.log.logEndOffset, LAG_MAX_MS);
      if (shrunk !== null) this.proposeIsr(b, shrunk);
    }
  }

  private proposeIsr(b: SimBroker, newIsr: number[]): void {
    b.leader!.beginIsrChange(newIsr);
    this.record(`propose ${b.id} isr [${newIsr}]`);
    this.sendAlter(b, newIsr);
  }

  private sendAlter(b: SimBroker, newIsr: number[]): void {
    const st = b.leader!;
    const reqId = ++this.reqIds;
    b.alter = { reqId, deadlineMs: this.scheduler.nowMs + REQUEST_TIMEOUT_MS, newIsr };
    this.send(b.id, CONTROLLER, { type: 'AlterPartition', reqId, leaderEpoch: st.leaderEpoch, partitionEpoch: st.partitionEpoch, newIsr });
  }

  private handleAlterPartitionResponse(b: SimBroker, m: Extract<Message, { type: 'AlterPartitionResponse' }>): void {
    const st = b.leader;
    if (b.alter === null || b.alter.reqId !== m.reqId || st === null) return;
    if (m.errorCode === ErrorCode.NONE && m.state !== null) {
      if (m.state.leaderEpoch === st.leaderEpoch && st.isrChangeCommitted(m.state.isr, m.state.partitionEpoch, m.state.replicas)) b.alter = null;
      else b.alter.deadlineMs = -1;
    } else {
      const outcome = isrChangeOutcome(m.errorCode);
      if (outcome === 'refused') {
        st.isrChangeFailed();
        b.alter = null;
      } else if (outcome === 'await-metadata') {
        b.alter.deadlineMs = -1;
      } else {
        this.sendAlter(b, b.alter.newIsr);
      }
    }
    this.advanceHighWatermark(b);
  }

  private advanceHighWatermark(b: SimBroker): void {
    const st = b.leader;
    if (st === null) return;
    // The leader's own log counts up to what it has fsynced (PartitionLog.recoveryPoint): a power
    // loss must not take back an offset below the high watermark.
    const own = b.log.flushedEndOffset;
    const candidate = this.bugs.hwIgnoresFollowers === true ? b.log.logEndOffset : st.highWatermarkCandidate(own);
    b.log.updateHighWatermark(candidate);
    this.completeProduces(b);
  }

  private completeProduces(b: SimBroker): void {
    const hw = b.log.highWatermark;
    const flushed = b.log.flushedEndOffset;
    const done = b.pending.filter((p) => hw > p.lastOffset && flushed > p.lastOffset);
    if (done.length === 0) return;
    b.pending = b.pending.filter((p) => !done.includes(p));
    for (const p of done) {
      // Acknowledged when the leader answers success, whether or not the producer hears it.
      for (let o = p.firstOffset; o <= p.lastOffset; o++) this.acknowledge(b.log.recordAt(o)!, o);
      this.send(b.id, p.from, { type: 'ProduceResponse', reqId: p.reqId, errorCode: ErrorCode.NONE, baseOffset: p.firstOffset });
    }
  }

  private handleProduce(b: SimBroker, from: number, m: Extract<Message, { type: 'Produce' }>): void {
    const st = b.leader;
    const reply = (errorCode: number): void => this.send(b.id, from, { type: 'ProduceResponse', reqId: m.reqId, errorCode, baseOffset: -1 });
    if (st === null) return reply(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    if (!st.enoughReplicas(this.minIsr)) return reply(ErrorCode.NOT_ENOUGH_REPLICAS);
    const { firstOffset, lastOffset } = b.log.appendAsLeader(m.records, st.leaderEpoch);
    b.pending.push({ from, reqId: m.reqId, firstOffset, lastOffset, leaderEpoch: st.leaderEpoch, deadlineMs: this.scheduler.nowMs + PRODUCE_TIMEOUT_MS });
    // Group commit: the fsync lands a little later.
    const inc = b.incarnation;
    this.scheduler.at(this.scheduler.nowMs + this.random.int(1, 5), () => {
      if (!b.up || b.incarnation !== inc) return;
      b.log.flush();
      this.record(`flush ${b.id} ${b.log.logEndOffset}`);
      this.advanceHighWatermark(b);
    });
    this.advanceHighWatermark(b);
  }

  private handleFetch(b: SimBroker, from: number, m: Extract<Message, { type: 'Fetch' }>): void {
    const st = b.leader;
    const respond = (response: Partial<FollowerFetchResponse>): void =>
      this.send(b.id, from, {
        type: 'FetchResponse',
        reqId: m.reqId,
        response: { errorCode: ErrorCode.NONE, highWatermark: b.log.highWatermark, logStartOffset: b.log.logStartOffset, divergingEpoch: NO_DIVERGENCE, records: null, ...response },
      });
    if (st === null) return respond({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER });
    if (m.currentLeaderEpoch !== st.leaderEpoch) return respond({ errorCode: m.currentLeaderEpoch < st.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH });
    const v = st.validateFetch(b.log, m.fetchOffset, m.lastFetchedEpoch);
    if (v.kind === 'diverging') return respond({ divergingEpoch: v.divergingEpoch });
    if (v.kind === 'out-of-range') return respond({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE });
    const leo = b.log.logEndOffset;
    st.updateFollower(from, m.fetchOffset, leo, this.scheduler.nowMs);
    this.advanceHighWatermark(b);
    if (b.alter === null) {
      const eligible = (id: number): boolean => !(b.meta?.fenced.includes(id) ?? true);
      const expanded = st.isrExpansion(from, b.log.highWatermark, eligible);
      if (expanded !== null) this.proposeIsr(b, expanded);
    }
    const batches = m.fetchOffset < leo ? b.log.read(m.fetchOffset, MAX_FETCH_RECORDS) : [];
    respond({ records: batches.length > 0 ? encodeBatches(batches) : null });
  }

  private maybeFetch(b: SimBroker): void {
    const f = b.follow;
    if (f === null || !b.up) return;
    const now = this.scheduler.nowMs;
    if (f.inflight !== null && now - f.inflight.sentMs < REQUEST_TIMEOUT_MS) return;
    // What the follower reports must be on disk: flush what it appended before fetching past it.
    if (this.bugs.followerFetchBeforeFlush !== true) b.log.flush();
    const reqId = ++this.reqIds;
    const fetchOffset = b.log.logEndOffset;
    f.inflight = { reqId, fetchOffset, sentMs: now };
    this.send(b.id, f.leaderId, { type: 'Fetch', reqId, currentLeaderEpoch: f.leaderEpoch, fetchOffset, lastFetchedEpoch: lastFetchedEpoch(b.log) });
  }

  private handleFetchResponse(b: SimBroker, from: number, m: Extract<Message, { type: 'FetchResponse' }>): void {
    const f = b.follow;
    if (f === null || f.leaderId !== from || f.inflight === null || f.inflight.reqId !== m.reqId) return;
    const fetchOffset = f.inflight.fetchOffset;
    f.inflight = null;
    assert.equal(fetchOffset, b.log.logEndOffset, 'the log moved under an in-flight fetch');
    let action = planFollowerFetch(b.log, fetchOffset, m.response);
    if (action.kind === 'truncate' && this.bugs.followerNeverTruncates === true) action = { kind: 'backoff', errorCode: 0 };
    const leoBefore = b.log.logEndOffset;
    const inc = b.incarnation;
    this.pendingWork.push(
      applyFollowerFetch(b.log, action).then((changed) => {
        if (action.kind === 'truncate' || action.kind === 'restart') {
          if (b.log.logEndOffset < leoBefore) {
            this.stats.truncations++;
            this.record(`truncate ${b.id} ${leoBefore} -> ${b.log.logEndOffset} (${action.kind})`);
            b.checkedHw = Math.min(b.checkedHw, b.log.highWatermark);
            this.checkAckedOn(b, `truncating to ${b.log.logEndOffset}`);
          }
        }
        if (!b.up || b.incarnation !== inc) return;
        if (changed) this.scheduler.at(this.scheduler.nowMs + 1, () => this.maybeFetch(b));
      }),
    );
  }

  // ------------------------------------------------------------------ producers

  private startProducer(p: SimProducer): void {
    const tick = (): void => {
      this.produceTick(p);
      this.scheduler.at(this.scheduler.nowMs + this.random.int(10, 40), tick);
    };
    this.scheduler.at(this.random.int(0, 20), tick);
    this.refreshMetadata(p);
  }

  private refreshMetadata(p: SimProducer): void {
    if (p.refreshing) return;
    p.refreshing = true;
    // A Metadata request to a random broker (its image may lag) or to the controller's view.
    const to = this.random.chance(0.5) ? this.random.pick(this.brokers).id : CONTROLLER;
    this.send(p.id, to, { type: 'MetadataRequest' });
    this.scheduler.at(this.scheduler.nowMs + REQUEST_TIMEOUT_MS, () => (p.refreshing = false));
  }

  private produceTick(p: SimProducer): void {
    if (this.producersStopped) return;
    const now = this.scheduler.nowMs;
    for (const [reqId, r] of p.inflight) {
      if (now - r.sentMs > PRODUCE_TIMEOUT_MS + 100) {
        p.inflight.delete(reqId);
        this.refreshMetadata(p);
      }
    }
    if (p.leaderGuess < 0) return this.refreshMetadata(p);
    if (p.inflight.size >= 5) return;
    const records = Array.from({ length: this.random.int(1, 3) }, () => `p${p.id}-${p.next++}`);
    const reqId = ++this.reqIds;
    p.inflight.set(reqId, { records, sentMs: now, to: p.leaderGuess });
    this.send(p.id, p.leaderGuess, { type: 'Produce', reqId, records });
  }

  private producerReceive(p: SimProducer, from: number, m: Message): void {
    this.record(`deliver ${from}->${p.id} ${describe(m)}`);
    if (m.type === 'MetadataResponse') {
      p.refreshing = false;
      if (m.leader >= 0) p.leaderGuess = m.leader;
      return;
    }
    assert(m.type === 'ProduceResponse');
    const r = p.inflight.get(m.reqId);
    if (r === undefined) return;
    p.inflight.delete(m.reqId);
    if (m.errorCode !== ErrorCode.NONE) this.refreshMetadata(p);
  }

  // ------------------------------------------------------------------ invariants

  private acknowledge(id: string, offset: number): void {
    const other = this.acked.get(offset);
    check(other === undefined, 'NoOffsetTwoRecords', () => `offset ${offset} acknowledged twice: ${other} and ${id}`);
    this.acked.set(offset, id);
    this.record(`ack ${id}@${offset}`);
    for (const replica of this.part.isr) {
      const b = this.brokers[replica - 1]!;
      const got = b.log.recordAt(offset);
      check(got === id, 'NoAckedRecordLost', () => `${id} acknowledged at ${offset}, but ISR member ${b.id} has ${got ?? 'nothing'} there (isr [${this.part.isr}])`);
    }
  }

  /** Every acknowledged record is in `b`'s log at its offset, if `b` is in the ISR (or `always`). */
  private checkAckedOn(b: SimBroker, when: string, always = false): void {
    if (!always && !this.part.isr.includes(b.id)) return;
    for (const [offset, id] of this.acked) {
      const got = b.log.recordAt(offset);
      check(got === id, 'NoAckedRecordLost', () => `${id} acknowledged at ${offset}; replica ${b.id} (isr [${this.part.isr}]) has ${got ?? 'nothing'} there ${when}`);
    }
  }

  private checkAfterEvent(): void {
    const p = this.part;
    check(p.leader === -1 || p.isr.includes(p.leader), 'IsrContainsLeader', () => `controller leader ${p.leader} outside ISR [${p.isr}]`);
    for (const b of this.brokers) {
      if (!b.up) continue;
      const st = b.leader;
      if (st !== null) {
        check(st.isr.includes(b.id) && (st.pendingIsr === null || st.pendingIsr.includes(b.id)), 'IsrContainsLeader', () => `leader ${b.id} has ISR [${st.isr}] pending [${st.pendingIsr ?? ''}]`);
        const hw = b.log.highWatermark;
        check(hw >= b.tenureHw, 'MonotonicHighWatermark', () => `leader ${b.id}@${st.leaderEpoch} high watermark went from ${b.tenureHw} to ${hw}`);
        b.tenureHw = hw;
      }
      const hw = b.log.highWatermark;
      for (let o = b.checkedHw; o < hw; o++) {
        const rec = b.log.recordAt(o);
        check(rec !== undefined, 'NoOffsetTwoRecords', () => `replica ${b.id} exposes offset ${o} below its high watermark ${hw} but has no record there`);
        if (o < this.committed.length) {
          check(this.committed[o] === rec, 'NoOffsetTwoRecords', () => `replica ${b.id} exposes ${rec} at ${o} below its high watermark ${hw}, but ${this.committed[o]} was exposed there`);
        } else {
          check(o === this.committed.length, 'NoOffsetTwoRecords', () => `gap in the committed history at ${this.committed.length}`);
          this.committed.push(rec!);
        }
      }
      b.checkedHw = Math.max(b.checkedHw, hw);
    }
  }

  private checkLogMatching(): void {
    const logs = this.brokers.map((b) => ({ id: b.id, batches: b.log.batches() }));
    for (let i = 0; i < logs.length; i++) {
      for (let j = i + 1; j < logs.length; j++) {
        const a = logs[i]!;
        const c = logs[j]!;
        // The largest offset where both have a batch of the same epoch starting there.
        const starts = new Map(a.batches.map((x) => [x.baseOffset, x.epoch]));
        let upTo = -1;
        for (const x of c.batches) if (starts.get(x.baseOffset) === x.epoch) upTo = Math.max(upTo, x.baseOffset + x.records.length);
        for (let o = 0; o < upTo; o++) {
          const ra = this.brokers[a.id - 1]!.log.recordAt(o);
          const rc = this.brokers[c.id - 1]!.log.recordAt(o);
          check(ra === rc, 'LogMatching', () => `replicas ${a.id} and ${c.id} share an epoch batch ending at ${upTo} but differ at ${o}: ${ra} vs ${rc}`);
        }
      }
    }
  }

  private checkFinal(): void {
    for (const b of this.brokers) this.checkAckedOn(b, 'at the end', true);
  }

  private record(event: string): void {
    this.trace = fnv(this.trace, `${this.scheduler.nowMs} ${event}\n`);
    if (this.options.trace === true) process.stderr.write(`${this.scheduler.nowMs} ${event}\n`);
  }
}

function describe(m: Message): string {
  switch (m.type) {
    case 'Fetch':
      return `Fetch e${m.currentLeaderEpoch} ${m.fetchOffset}@${m.lastFetchedEpoch}`;
    case 'FetchResponse': {
      const r = m.response;
      return `FetchResp err=${r.errorCode} hw=${r.highWatermark}${r.divergingEpoch.epoch >= 0 || r.divergingEpoch.endOffset >= 0 ? ` div=${r.divergingEpoch.endOffset}@${r.divergingEpoch.epoch}` : ''} bytes=${r.records?.length ?? 0}`;
    }
    case 'Produce':
      return `Produce ${m.records.join(',')}`;
    case 'ProduceResponse':
      return `ProduceResp err=${m.errorCode} base=${m.baseOffset}`;
    case 'AlterPartition':
      return `AlterPartition e${m.leaderEpoch} pe${m.partitionEpoch} [${m.newIsr}]`;
    case 'AlterPartitionResponse':
      return `AlterPartitionResp err=${m.errorCode}`;
    case 'Heartbeat':
      return `Heartbeat i${m.incarnation}`;
    case 'HeartbeatResponse':
      return `HeartbeatResp i${m.incarnation} v${m.version}`;
    case 'Metadata':
      return `Metadata v${m.state.version} leader ${m.state.leader}@${m.state.leaderEpoch} isr [${m.state.isr}] fenced [${m.state.fenced}]`;
    case 'MetadataRequest':
      return 'MetadataRequest';
    case 'MetadataResponse':
      return `MetadataResp leader ${m.leader}`;
  }
}

export function runReplicationSimulation(options: ReplicationSimOptions): Promise<ReplicationSimResult> {
  return new ReplicationSimulation(options).run();
}

