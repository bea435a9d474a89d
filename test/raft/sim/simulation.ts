/**
 * A deterministic simulation of a Raft quorum: the real RaftClient on each node, driven by a
 * seeded scheduler over a simulated network (loss, delay, duplication, reordering, partitions
 * that heal), a simulated clock, and a simulated disk (a crash loses unflushed writes).
 *
 * A run has two phases. Chaos: nodes crash and restart, the network splits and heals, clients
 * propose to whoever believes it leads, nodes snapshot. Calm: the network heals, every node is up,
 * and within a bound of simulated time a leader must be elected and a new proposal committed on
 * every node (liveness). The invariants below are checked continuously; the first one broken
 * ends the run with its name. A run is a pure function of its seed, and so is its trace hash.
 *
 * Invariants:
 * - ElectionSafety: at most one leader per epoch, ever (across crashes); observers (non-voters,
 *   0–2 per run) never stand for election.
 * - CommittedHistory: every entry a node commits equals the entry the first committer of that
 *   offset committed (so committed entries are never lost or changed); nodes commit in order.
 * - SnapshotHistory: a snapshot a node loads equals the committed history at its end offset.
 * - LeaderCompleteness: a new leader's log holds the whole committed history.
 * - MonotonicHighWatermark: a node's high watermark never decreases within one incarnation
 *   (process lifetime). KIP-595 does not persist it: after a restart a node's high watermark
 *   starts at its durable snapshot's end offset (at most what it knew before) and is learnt
 *   again from the leader. The largest high watermark of all nodes never decreases.
 * - LogMatching: two logs with an entry of the same epoch at the same offset are identical up
 *   to that offset.
 * - Liveness: in the calm phase a leader is elected and a proposal commits on all nodes within
 *   `livenessBoundMs` of simulated time.
 * - Assertion: the Raft code's own assertions (e.g. no truncation below the high watermark).
 */
import { RaftClient, type RaftConfig, type RaftTestingBugs } from '../../../src/raft/raft-client.js';
import type { LogEntry, RaftListener, RaftMessage, SnapshotId } from '../../../src/raft/types.js';
import { InvariantViolation, Random, Scheduler, SimLog, SimQuorumStateStore, SimSnapshotStore, check, fnv } from './world.js';

export interface SimulationOptions {
  seed: number;
  bugs?: RaftTestingBugs;
  /** Print every event to stderr. */
  trace?: boolean;
}

export interface SimulationResult {
  seed: number;
  /** Null when every invariant held. */
  violation: { invariant: string; detail: string; atMs: number } | null;
  /** A hash of every event in order: equal for equal seeds. */
  traceHash: string;
  events: number;
  committed: number;
  maxEpoch: number;
  crashes: number;
  gracefulRestarts: number;
  partitions: number;
  snapshotsInstalled: number;
}

const CHAOS_MS = 5000;
const LIVENESS_BOUND_MS = 6000;

function entryKey(e: LogEntry): string {
  return `${e.epoch}:${e.control ? 'c' : 'd'}:${e.value.toString('latin1')}`;
}

/** The committed history everyone must agree on, with a running hash per prefix. */
class History {
  readonly keys: string[] = [];
  /** chain[n] is the hash of the first n entries. */
  readonly chain: number[] = [0x811c9dc5];
  get length(): number {
    return this.keys.length;
  }
}

/** The state machine on each node: a hash chain over the committed entries. */
class ChainStateMachine implements RaftListener {
  applied = 0;
  chain = 0x811c9dc5;
  constructor(
    private readonly sim: Simulation,
    private readonly node: SimNode,
  ) {}
  handleCommit(offset: number, entry: LogEntry): void {
    const h = this.sim.history;
    check(offset === this.applied, 'CommittedHistory', () => `node ${this.node.id} committed offset ${offset} after ${this.applied - 1}`);
    const key = entryKey(entry);
    if (offset < h.length) {
      check(h.keys[offset] === key, 'CommittedHistory', () => `node ${this.node.id} committed ${key} at ${offset}, but ${h.keys[offset]} was committed there`);
    } else {
      check(offset === h.length, 'CommittedHistory', () => `node ${this.node.id} committed offset ${offset} beyond the history's end ${h.length}`);
      h.keys.push(key);
      h.chain.push(fnv(h.chain[offset]!, key));
    }
    this.chain = fnv(this.chain, key);
    this.applied = offset + 1;
  }
  handleLoadSnapshot(id: SnapshotId, data: Buffer): void {
    const s = JSON.parse(data.toString('utf8')) as { endOffset: number; chain: number };
    const h = this.sim.history;
    check(s.endOffset === id.endOffset, 'SnapshotHistory', () => `snapshot ${id.endOffset} holds state at ${s.endOffset}`);
    check(id.endOffset <= h.length && h.chain[id.endOffset] === s.chain, 'SnapshotHistory', () => `node ${this.node.id} loaded a snapshot at ${id.endOffset} that is not the committed history`);
    this.applied = s.endOffset;
    this.chain = s.chain;
    this.sim.snapshotsInstalled++;
  }
  handleLeaderChange(): void {}
  snapshotData(): Buffer {
    return Buffer.from(JSON.stringify({ endOffset: this.applied, chain: this.chain }));
  }
}

class SimNode {
  readonly log = new SimLog();
  readonly quorumState = new SimQuorumStateStore();
  readonly snapshots = new SimSnapshotStore();
  client: RaftClient | null = null;
  machine: ChainStateMachine | null = null;
  incarnation = 0;
  wakeToken = 0;
  lastHighWatermark = 0;
  wasLeader = false;
  constructor(readonly id: number) {}
  get up(): boolean {
    return this.client !== null;
  }
}

export class Simulation {
  readonly history = new History();
  snapshotsInstalled = 0;
  private readonly random: Random;
  private readonly scheduler = new Scheduler();
  private readonly nodes: SimNode[];
  private readonly voters: number[];
  /** epoch -> the leader elected in it. */
  private readonly leaders = new Map<number, number>();
  /** Node id -> partition side; nodes on different sides cannot talk. */
  private side = new Map<number, number>();
  private dropRate: number;
  private duplicateRate: number;
  private maxDelayMs: number;
  private trace = 0x811c9dc5;
  private events = 0;
  private crashes = 0;
  private gracefulRestarts = 0;
  private partitions = 0;
  private proposals = 0;
  private maxHighWatermark = 0;

  constructor(private readonly options: SimulationOptions) {
    this.random = new Random(options.seed);
    const size = this.random.pick([1, 3, 3, 3, 3, 5, 5, 5, 5, 5]);
    const observers = this.random.int(0, 2);
    this.voters = Array.from({ length: size }, (_, i) => i + 1);
    this.nodes = Array.from({ length: size + observers }, (_, i) => new SimNode(i + 1));
    this.dropRate = this.random.pick([0, 0.01, 0.05, 0.1]);
    this.duplicateRate = this.random.pick([0, 0.02, 0.05]);
    this.maxDelayMs = this.random.pick([2, 10, 30, 60]);
  }

  run(): SimulationResult {
    let violation: SimulationResult['violation'] = null;
    try {
      for (const n of this.nodes) this.startNode(n);
      this.chaos();
      this.calm();
    } catch (e) {
      violation =
        e instanceof InvariantViolation
          ? { invariant: e.invariant, detail: e.detail, atMs: this.scheduler.nowMs }
          : { invariant: 'Assertion', detail: e instanceof Error ? e.message : String(e), atMs: this.scheduler.nowMs };
    }
    return {
      seed: this.options.seed,
      violation,
      traceHash: this.trace.toString(16).padStart(8, '0'),
      events: this.events,
      committed: this.history.length,
      maxEpoch: Math.max(0, ...this.leaders.keys()),
      crashes: this.crashes,
      gracefulRestarts: this.gracefulRestarts,
      partitions: this.partitions,
      snapshotsInstalled: this.snapshotsInstalled,
    };
  }

  // ---- phases ----

  private chaos(): void {
    const r = this.random;
    const faulty = this.nodes.length > 1;
    // Faults and client activity, scheduled up front from the seed.
    for (let t = r.int(0, 50); t < CHAOS_MS; t += r.int(5, 60)) {
      this.scheduler.at(t, () => this.proposeEverywhere());
    }
    for (let t = r.int(100, 600); t < CHAOS_MS; t += r.int(100, 600)) {
      this.scheduler.at(t, () => this.maybeSnapshot());
    }
    if (faulty) {
      for (let t = r.int(100, 1000); t < CHAOS_MS; t += r.int(200, 1200)) {
        const kind = r.int(0, 3);
        if (kind === 0) this.scheduler.at(t, () => this.crashRandomNode());
        else if (kind === 1) this.scheduler.at(t, () => this.partitionRandomly());
        else if (kind === 2) this.scheduler.at(t, () => this.heal());
        else this.scheduler.at(t, () => this.restartGracefully());
      }
    } else {
      for (let t = r.int(100, 1000); t < CHAOS_MS; t += r.int(300, 1500)) this.scheduler.at(t, () => this.crashRandomNode());
    }
    this.runUntil(CHAOS_MS);
  }

  private calm(): void {
    this.heal();
    for (const n of this.nodes) if (!n.up) this.startNode(n);
    const deadline = this.scheduler.nowMs + LIVENESS_BOUND_MS;
    // Keep proposing until one commits everywhere.
    let target: { offset: number; epoch: number; proposer: SimNode } | null = null;
    while (this.scheduler.nowMs < deadline) {
      this.runUntil(Math.min(deadline, this.scheduler.nowMs + 50));
      if (target === null) {
        const leader = this.nodes.find((n) => n.client?.isLeader() === true);
        const at = leader?.client!.propose([Buffer.from(`final-${this.options.seed}`)]) ?? null;
        if (at !== null) target = { ...at, proposer: leader! };
        continue;
      }
      const t = target;
      const key = this.history.keys[t.offset];
      if (key === undefined ? t.proposer.client?.currentEpoch !== t.epoch : !key.startsWith(`${t.epoch}:`)) {
        target = null; // its leader lost the epoch before it committed: propose again
      } else if (this.nodes.every((n) => (n.client?.currentHighWatermark ?? -1) > t.offset)) {
        return;
      }
    }
    const roles = this.nodes.map((n) => (n.client === null ? `${n.id}:down` : `${n.id}:${n.client.currentRole}@${n.client.currentEpoch} hw=${n.client.currentHighWatermark}`)).join(' ');
    throw new InvariantViolation('Liveness', `no proposal committed on every node within ${LIVENESS_BOUND_MS} ms of a healed network (${roles})`);
  }

  private runUntil(untilMs: number): void {
    while (this.scheduler.step(untilMs)) {
      this.events++;
      this.checkAfterEvent();
    }
    this.scheduler.nowMs = Math.max(this.scheduler.nowMs, untilMs);
    this.checkLogMatching();
  }

  // ---- nodes ----

  private config(id: number): RaftConfig {
    return {
      nodeId: id,
      voters: this.voters,
      electionTimeoutMs: 150,
      fetchTimeoutMs: 300,
      requestTimeoutMs: 100,
      retryBackoffMs: 10,
      fetchIntervalMs: 20,
      appendLingerMs: 5,
      maxFetchEntries: 16,
      maxFetchBytes: 40,
      snapshotChunkBytes: 16,
      maxUncommittedEntries: 64,
      random: () => this.random.next(),
      testingBugs: this.options.bugs,
    };
  }

  private startNode(n: SimNode): void {
    n.incarnation++;
    const incarnation = n.incarnation;
    const machine = new ChainStateMachine(this, n);
    n.machine = machine;
    const clock = {
      nowMs: () => this.scheduler.nowMs,
      wakeAt: (timeMs: number) => {
        const token = ++n.wakeToken;
        this.scheduler.at(timeMs, () => {
          if (n.incarnation !== incarnation || n.wakeToken !== token || n.client === null) return;
          this.record(`poll ${n.id}`);
          n.client.poll();
        });
      },
    };
    const transport = { send: (to: number, m: RaftMessage) => this.send(n.id, to, m) };
    const client = new RaftClient(this.config(n.id), n.log, n.quorumState, n.snapshots, clock, transport, machine);
    n.client = client;
    n.wasLeader = false;
    this.record(`start ${n.id}`);
    client.start();
    n.lastHighWatermark = client.currentHighWatermark;
    this.checkAfterEvent();
  }

  private crashRandomNode(): void {
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return;
    const n = this.random.pick(up);
    n.client!.close();
    n.client = null;
    n.machine = null;
    n.log.crash(this.random);
    this.crashes++;
    this.record(`crash ${n.id}`);
    const downMs = this.random.int(50, 1500);
    this.scheduler.at(this.scheduler.nowMs + downMs, () => {
      if (!n.up) this.startNode(n);
    });
  }

  /** A clean shutdown: a leader resigns (EndQuorumEpoch), the log is flushed, and the node comes back later. */
  private restartGracefully(): void {
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return;
    const n = this.random.pick(up);
    const client = n.client!;
    client.resign();
    this.gracefulRestarts++;
    this.record(`stopping ${n.id}`);
    // Its messages (EndQuorumEpoch) leave before it stops.
    this.scheduler.at(this.scheduler.nowMs + this.random.int(1, 20), () => {
      if (n.client !== client) return;
      client.close();
      n.client = null;
      n.machine = null;
      n.log.flush();
      this.record(`stopped ${n.id}`);
      this.scheduler.at(this.scheduler.nowMs + this.random.int(20, 500), () => {
        if (!n.up) this.startNode(n);
      });
    });
  }

  private partitionRandomly(): void {
    this.side = new Map(this.nodes.map((n) => [n.id, this.random.int(0, 1)]));
    this.partitions++;
    this.record(`partition ${[...this.side].map(([id, s]) => `${id}=${s}`).join(',')}`);
  }

  private heal(): void {
    this.side = new Map();
    this.record('heal');
  }

  private proposeEverywhere(): void {
    for (const n of this.nodes) {
      if (!n.client?.isLeader()) continue;
      const count = this.random.int(1, 3);
      const values = Array.from({ length: count }, () => Buffer.from(`v${this.proposals++}`));
      const at = n.client.propose(values);
      this.record(`propose ${n.id} ${at === null ? 'refused' : `${at.offset}@${at.epoch}`}`);
    }
  }

  private maybeSnapshot(): void {
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return;
    const n = this.random.pick(up);
    const machine = n.machine!;
    if (machine.applied > n.log.logStartOffset) {
      n.client!.createSnapshot(machine.applied, machine.snapshotData());
      this.record(`snapshot ${n.id} ${machine.applied}`);
    }
  }

  // ---- network ----

  private connected(a: number, b: number): boolean {
    return (this.side.get(a) ?? 0) === (this.side.get(b) ?? 0);
  }

  private send(from: number, to: number, m: RaftMessage): void {
    const copies = this.random.chance(this.dropRate) ? 0 : this.random.chance(this.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.random.int(1, this.maxDelayMs);
      this.scheduler.at(this.scheduler.nowMs + delay, () => {
        const dest = this.nodes[to - 1]!;
        if (dest.client === null || !this.connected(from, to)) return;
        this.record(`deliver ${from}->${to} ${describe(m)}`);
        dest.client.handle(m);
      });
    }
  }

  // ---- invariants ----

  private record(event: string): void {
    this.trace = fnv(this.trace, `${this.scheduler.nowMs} ${event}\n`);
    if (this.options.trace === true) process.stderr.write(`${this.scheduler.nowMs} ${event}\n`);
  }

  private checkAfterEvent(): void {
    for (const n of this.nodes) {
      const c = n.client;
      if (c === null) continue;
      const hw = c.currentHighWatermark;
      check(hw >= n.lastHighWatermark, 'MonotonicHighWatermark', () => `node ${n.id} high watermark went from ${n.lastHighWatermark} to ${hw}`);
      check(hw <= this.history.length, 'CommittedHistory', () => `node ${n.id} high watermark ${hw} is past what was committed (${this.history.length})`);
      n.lastHighWatermark = hw;
      this.maxHighWatermark = Math.max(this.maxHighWatermark, hw);
      if (c.observer) {
        check(c.currentRole !== 'candidate' && c.currentRole !== 'leader', 'ElectionSafety', () => `observer ${n.id} became ${c.currentRole}`);
      }
      if (c.isLeader()) {
        const epoch = c.currentEpoch;
        const other = this.leaders.get(epoch);
        check(other === undefined || other === n.id, 'ElectionSafety', () => `nodes ${other} and ${n.id} both leaders of epoch ${epoch}`);
        if (!n.wasLeader) {
          this.leaders.set(epoch, n.id);
          this.record(`leader ${n.id}@${epoch}`);
          this.checkLeaderCompleteness(n);
        }
        n.wasLeader = true;
      } else {
        n.wasLeader = false;
      }
    }
  }

  private checkLeaderCompleteness(n: SimNode): void {
    const log = n.log.view();
    const h = this.history;
    check(log.start + log.entries.length >= h.length, 'LeaderCompleteness', () => `leader ${n.id} log ends at ${log.start + log.entries.length}, before the committed ${h.length}`);
    const snap = n.snapshots.latest();
    if (snap !== null) {
      const s = JSON.parse(snap.data.toString('utf8')) as { chain: number };
      check(h.chain[snap.id.endOffset] === s.chain, 'LeaderCompleteness', () => `leader ${n.id} snapshot at ${snap.id.endOffset} is not the committed history`);
    }
    for (let o = log.start; o < h.length; o++) {
      check(entryKey(log.entries[o - log.start]!) === h.keys[o], 'LeaderCompleteness', () => `leader ${n.id} of epoch ${n.client!.currentEpoch} has ${entryKey(log.entries[o - log.start]!)} at ${o}, committed was ${h.keys[o]}`);
    }
  }

  private checkLogMatching(): void {
    const up = this.nodes.filter((n) => n.up);
    for (let i = 0; i < up.length; i++) {
      for (let j = i + 1; j < up.length; j++) {
        const a = up[i]!.log.view();
        const b = up[j]!.log.view();
        const lo = Math.max(a.start, b.start);
        const hi = Math.min(a.start + a.entries.length, b.start + b.entries.length);
        let o = hi - 1;
        while (o >= lo && a.entries[o - a.start]!.epoch !== b.entries[o - b.start]!.epoch) o--;
        for (; o >= lo; o--) {
          const ka = entryKey(a.entries[o - a.start]!);
          const kb = entryKey(b.entries[o - b.start]!);
          check(ka === kb, 'LogMatching', () => `nodes ${up[i]!.id} and ${up[j]!.id} agree on an epoch later in their logs but differ at ${o}: ${ka} vs ${kb}`);
        }
      }
    }
  }
}

function describe(m: RaftMessage): string {
  switch (m.type) {
    case 'VoteRequest':
      return `Vote e${m.candidateEpoch} last=${m.lastOffset}@${m.lastOffsetEpoch}`;
    case 'VoteResponse':
      return `VoteResp e${m.leaderEpoch} granted=${m.voteGranted} err=${m.errorCode}`;
    case 'FetchRequest':
      return `Fetch e${m.currentLeaderEpoch} ${m.fetchOffset}@${m.lastFetchedEpoch}`;
    case 'FetchResponse':
      return `FetchResp e${m.leaderEpoch} err=${m.errorCode} hw=${m.highWatermark} n=${m.entries.length}${m.divergingEpoch ? ` div=${m.divergingEpoch.offset}@${m.divergingEpoch.epoch}` : ''}${m.snapshotId ? ` snap=${m.snapshotId.endOffset}` : ''}`;
    case 'FetchSnapshotRequest':
      return `FetchSnapshot e${m.currentLeaderEpoch} ${m.snapshotId.endOffset} pos=${m.position}`;
    case 'FetchSnapshotResponse':
      return `FetchSnapshotResp e${m.leaderEpoch} err=${m.errorCode} pos=${m.position} n=${m.bytes.length}/${m.size}`;
    default:
      return `${m.type} e${m.leaderEpoch}`;
  }
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

