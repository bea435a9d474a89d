/**
 * The simulated world of the Raft simulation: a seeded random source, an event scheduler with a
 * simulated clock, and a simulated disk whose unflushed writes a crash can lose.
 *
 * Everything is deterministic given the seed: events at the same simulated time run in the order
 * they were scheduled, and all randomness comes from one Random.
 */
import assert from 'node:assert/strict';
import { Prng } from '../../protocol/prng.js';
import type { LogEntry, QuorumState, QuorumStateStore, RaftLogStore, RaftSnapshotStore, SnapshotId } from '../../../src/raft/types.js';

/** The property tests' mulberry32 (test/protocol/prng.ts), in the simulation's words. */
export class Random extends Prng {
  chance(p: number): boolean {
    return this.bool(p);
  }
  override pick<T>(items: readonly T[]): T {
    assert(items.length > 0);
    return super.pick(items);
  }
}

interface ScheduledEvent {
  timeMs: number;
  seq: number;
  run: () => void;
}

/** A binary heap of events ordered by (time, insertion order). */
export class Scheduler {
  nowMs = 0;
  private seq = 0;
  private readonly heap: ScheduledEvent[] = [];

  at(timeMs: number, run: () => void): void {
    if (timeMs < this.nowMs) assert.fail(`scheduling in the past: ${timeMs} < ${this.nowMs}`);
    const e = { timeMs, seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  /** Runs the next event if it is due by `untilMs`; returns false when there is none. */
  step(untilMs: number): boolean {
    const h = this.heap;
    if (h.length === 0 || h[0]!.timeMs > untilMs) return false;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    this.nowMs = top.timeMs;
    top.run();
    return true;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}

interface LogImage {
  start: number;
  entries: LogEntry[];
}

/**
 * A log on a simulated disk. `volatile` is what the process sees; `durable` is what survives a
 * crash. flush() makes volatile durable. A crash keeps the durable image plus, when the only
 * unflushed changes were appends, a random prefix of them (a torn write that got partly out).
 */
export class SimLog implements RaftLogStore {
  private durable: LogImage = { start: 0, entries: [] };
  private volatile: LogImage = { start: 0, entries: [] };
  /** The volatile log equals the durable one below this offset. */
  private flushed = 0;
  private truncatedSinceFlush = false;

  get logStartOffset(): number {
    return this.volatile.start;
  }
  get endOffset(): number {
    return this.volatile.start + this.volatile.entries.length;
  }
  get flushedEndOffset(): number {
    return Math.max(this.flushed, this.volatile.start);
  }
  entry(offset: number): LogEntry {
    const e = this.volatile.entries[offset - this.volatile.start];
    if (e === undefined) assert.fail(`no entry at ${offset} (log ${this.logStartOffset}..${this.endOffset})`);
    return e;
  }
  append(entries: readonly LogEntry[]): void {
    this.volatile.entries.push(...entries);
  }
  truncateTo(offset: number): void {
    assert(offset >= this.logStartOffset && offset <= this.endOffset, `truncation to ${offset} outside ${this.logStartOffset}..${this.endOffset}`);
    if (offset === this.endOffset) return;
    this.volatile.entries.length = offset - this.volatile.start;
    this.flushed = Math.min(this.flushed, offset);
    this.truncatedSinceFlush = true;
  }
  flush(): void {
    this.durable = { start: this.volatile.start, entries: [...this.volatile.entries] };
    this.flushed = this.endOffset;
    this.truncatedSinceFlush = false;
  }
  deleteBefore(offset: number): void {
    assert(offset >= this.logStartOffset, `deleting before ${offset}, below the log start ${this.logStartOffset}`);
    for (const image of [this.volatile, this.durable]) {
      const end = image.start + image.entries.length;
      if (offset >= end) image.entries = [];
      else image.entries = image.entries.slice(offset - image.start);
      image.start = offset;
    }
    this.flushed = Math.max(this.flushed, offset);
  }

  /** The process died: what the disk holds now. */
  crash(random: Random): void {
    const kept: LogImage = { start: this.durable.start, entries: [...this.durable.entries] };
    const durableEnd = kept.start + kept.entries.length;
    if (!this.truncatedSinceFlush && this.volatile.start === kept.start && this.endOffset > durableEnd) {
      const n = random.int(0, this.endOffset - durableEnd);
      kept.entries.push(...this.volatile.entries.slice(kept.entries.length, kept.entries.length + n));
    }
    this.durable = kept;
    this.volatile = { start: kept.start, entries: [...kept.entries] };
    this.flushed = this.endOffset;
    this.truncatedSinceFlush = false;
  }

  /** For the checker: the process's view. */
  view(): { start: number; entries: readonly LogEntry[] } {
    return this.volatile;
  }
}

/** quorum-state on a simulated disk: each write is durable (the real one fsyncs and renames). */
export class SimQuorumStateStore implements QuorumStateStore {
  private state: QuorumState | null = null;
  writes = 0;
  read(): QuorumState | null {
    return this.state;
  }
  write(state: QuorumState): void {
    this.state = { ...state };
    this.writes++;
  }
}

export class SimSnapshotStore implements RaftSnapshotStore {
  private snapshot: { id: SnapshotId; data: Buffer } | null = null;
  latest(): { id: SnapshotId; data: Buffer } | null {
    return this.snapshot;
  }
  write(id: SnapshotId, data: Buffer): void {
    assert(this.snapshot === null || id.endOffset >= this.snapshot.id.endOffset, 'snapshot going backwards');
    this.snapshot = { id, data: Buffer.from(data) };
  }
}

/** A named invariant a simulation found broken, with what it saw. */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

/** Throws InvariantViolation(invariant, detail()) unless `ok`. */
export function check(ok: boolean, invariant: string, detail: () => string): void {
  if (!ok) throw new InvariantViolation(invariant, detail());
}

/** FNV-1a over 32 bits, chained: a run's event-trace hash (two runs of a seed must agree). */
export function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A simulation test's options from the environment, under `prefix` (STRAND_SIM, STRAND_REPL_SIM):
 * <prefix>_SEEDS seeds (default 2000) from <prefix>_FIRST_SEED (default 1), or only <prefix>_SEED
 * with <prefix>_TRACE=1 printing its events and <prefix>_BUGS=a,b turning on testing bugs; and the
 * message for a broken invariant, with the one-line command that replays it.
 */
export class SimulationEnv<Bugs> {
  readonly single: number | null;
  readonly seeds: number;
  readonly firstSeed: number;
  readonly trace: boolean;
  /** The testing bugs <prefix>_BUGS turns on, if any. */
  readonly bugs: Bugs | undefined;

  constructor(
    private readonly prefix: string,
    /** The compiled test file the replay command runs. */
    private readonly testFile: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const seed = env[`${prefix}_SEED`];
    this.single = seed === undefined ? null : Number(seed);
    this.seeds = Number(env[`${prefix}_SEEDS`] ?? 2000);
    this.firstSeed = Number(env[`${prefix}_FIRST_SEED`] ?? 1);
    this.trace = env[`${prefix}_TRACE`] === '1';
    const bugs = env[`${prefix}_BUGS`];
    this.bugs = bugs === undefined || bugs === '' ? undefined : (Object.fromEntries(bugs.split(',').map((b) => [b, true])) as Bugs);
  }

  replayCommand(seed: number, bugs?: Bugs): string {
    const bugEnv = bugs === undefined ? '' : ` ${this.prefix}_BUGS=${Object.keys(bugs as object).join(',')}`;
    return `${this.prefix}_SEED=${seed}${bugEnv} ${this.prefix}_TRACE=1 node --test ${this.testFile}`;
  }

  /** The assertion message for a run that broke an invariant. */
  failure(r: { seed: number; violation: { invariant: string; detail: string; atMs: number } | null }, bugs?: Bugs): string {
    const v = r.violation!;
    return `seed ${r.seed} broke ${v.invariant} at ${v.atMs} ms: ${v.detail}\nreplay: ${this.replayCommand(r.seed, bugs)}`;
  }
}
