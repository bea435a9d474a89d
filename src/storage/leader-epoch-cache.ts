/**
 * LeaderEpochFileCache: which leader epoch wrote which offsets of a partition (Kafka's
 * LeaderEpochFileCache, KIP-101 / KIP-279). One entry per epoch: the offset of the first batch that
 * epoch wrote. A replica that was leader (or followed an older leader) asks the current leader where
 * its last epoch ends (OffsetForLeaderEpoch, or Fetch's diverging epoch) and truncates to that
 * instead of to its high watermark, so no record survives on one replica and not on another.
 *
 * Semantics (as Kafka's):
 *  - assign(epoch, startOffset): takes effect when `epoch` is newer than the latest entry's, or is
 *    the latest and starts earlier. Entries with an epoch >= `epoch` or a start offset >=
 *    `startOffset` are removed first, so the entries stay increasing in both epoch and start
 *    offset. An epoch older than the latest is ignored (Kafka would drop the newer entries): only
 *    truncation rewrites history here, so a stray batch with a stale epoch cannot erase epochs.
 *  - endOffsetFor(requested, logEndOffset):
 *      requested = -1 (undefined)          → {-1, -1}
 *      requested = the latest epoch          → {requested, logEndOffset}
 *      requested > every epoch               → {-1, -1}
 *      requested < every epoch               → {requested, start offset of the first epoch}
 *      otherwise                             → {largest epoch <= requested, start of the next epoch}
 *  - truncateFromEnd(endOffset): drops entries starting at or after `endOffset` (log truncation).
 *  - truncateFromStart(startOffset): drops entries wholly below the new log start offset; the last
 *    of them is kept, moved up to start at `startOffset` (retention, DeleteRecords).
 *
 * File `<partitionDir>/leader-epoch-checkpoint` (Kafka's format), text:
 *   0                       version
 *   <n>                     number of entries
 *   <epoch> <startOffset>   n lines, ascending
 * It is written whole and atomically (temp file, fsync, rename, fsync dir: file-io.ts) after every
 * change. The in-memory state changes synchronously; `flush()` resolves once the state as of the
 * call is on disk (PartitionLog awaits it before the data of a new epoch is written, so the file
 * never lacks an epoch whose batches are on disk — after a crash it may name epochs beyond the log
 * end, which loading truncates away). A missing or unreadable file is rebuilt from the batches'
 * partition leader epochs by PartitionLog.open.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './file-io.js';

export const LEADER_EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';
const CHECKPOINT_VERSION = 0;
/** Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET. */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** Result of reading the checkpoint: its entries, or why it cannot be used. */
export type CheckpointRead = { kind: 'ok'; entries: EpochEntry[] } | { kind: 'missing' } | { kind: 'corrupt'; reason: string };

/** Parses `leader-epoch-checkpoint` text; entries must be strictly increasing in epoch and start offset. */
export function parseLeaderEpochCheckpoint(text: string): CheckpointRead {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length < 2 || lines[0] !== String(CHECKPOINT_VERSION)) return { kind: 'corrupt', reason: `bad version line ${JSON.stringify(lines[0])}` };
  const n = Number(lines[1]);
  if (!Number.isSafeInteger(n) || n < 0 || lines.length !== n + 2) return { kind: 'corrupt', reason: `count ${JSON.stringify(lines[1])} does not match ${lines.length - 2} entries` };
  const entries: EpochEntry[] = [];
  for (let i = 0; i < n; i++) {
    const m = /^(\d+) (\d+)$/.exec(lines[i + 2]!);
    if (!m) return { kind: 'corrupt', reason: `bad entry line ${JSON.stringify(lines[i + 2])}` };
    const epoch = Number(m[1]);
    const startOffset = Number(m[2]);
    if (!Number.isSafeInteger(epoch) || epoch > 0x7fffffff || !Number.isSafeInteger(startOffset)) return { kind: 'corrupt', reason: `entry out of range ${lines[i + 2]}` };
    const prev = entries[entries.length - 1];
    if (prev !== undefined && (epoch <= prev.epoch || startOffset <= prev.startOffset)) return { kind: 'corrupt', reason: `entries not increasing at ${lines[i + 2]}` };
    entries.push({ epoch, startOffset });
  }
  return { kind: 'ok', entries };
}

export async function readLeaderEpochCheckpoint(dir: string): Promise<CheckpointRead> {
  let text: string;
  try {
    text = await fs.promises.readFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  return parseLeaderEpochCheckpoint(text);
}

export function formatLeaderEpochCheckpoint(entries: readonly EpochEntry[]): string {
  let s = `${CHECKPOINT_VERSION}\n${entries.length}\n`;
  for (const e of entries) s += `${e.epoch} ${e.startOffset}\n`;
  return s;
}

export class LeaderEpochFileCache {
  /** Ascending in both epoch and startOffset. */
  private epochs: EpochEntry[];
  private readonly path: string | null;
  /** Bumped by every change; `written` is the version on disk. */
  private version = 0;
  private written = 0;
  private writing: Promise<void> | null = null;
  private writeError: unknown = null;

  /** `dir` null keeps the cache in memory only (simulations, tests). */
  constructor(dir: string | null, entries: readonly EpochEntry[] = []) {
    this.path = dir === null ? null : join(dir, LEADER_EPOCH_CHECKPOINT_FILE);
    this.epochs = entries.map((e) => ({ ...e }));
    for (let i = 1; i < this.epochs.length; i++) {
      assert(this.epochs[i]!.epoch > this.epochs[i - 1]!.epoch && this.epochs[i]!.startOffset > this.epochs[i - 1]!.startOffset, 'epoch entries must increase');
    }
  }

  /** True when a change is not on disk yet. */
  get dirty(): boolean {
    return this.path !== null && this.version !== this.written;
  }

  entries(): ReadonlyArray<EpochEntry> {
    return this.epochs.map((e) => ({ ...e }));
  }

  isEmpty(): boolean {
    return this.epochs.length === 0;
  }

  /** The latest epoch, -1 when empty. */
  latestEpoch(): number {
    return this.epochs.length === 0 ? UNDEFINED_EPOCH : this.epochs[this.epochs.length - 1]!.epoch;
  }

  latestEntry(): EpochEntry | null {
    const e = this.epochs[this.epochs.length - 1];
    return e === undefined ? null : { ...e };
  }

  /** The earliest entry, null when empty. */
  earliestEntry(): EpochEntry | null {
    const e = this.epochs[0];
    return e === undefined ? null : { ...e };
  }

  /** The epoch that wrote `offset` (the largest entry starting at or below it), -1 when none. */
  epochForOffset(offset: number): number {
    let found = UNDEFINED_EPOCH;
    for (const e of this.epochs) {
      if (e.startOffset > offset) break;
      found = e.epoch;
    }
    return found;
  }

  /** Records that `epoch` starts at `startOffset` (see the header for when this changes anything). */
  assign(epoch: number, startOffset: number): void {
    assert(Number.isSafeInteger(epoch) && epoch >= 0 && Number.isSafeInteger(startOffset) && startOffset >= 0, `invalid epoch entry ${epoch}@${startOffset}`);
    const last = this.epochs[this.epochs.length - 1];
    if (last !== undefined && (epoch < last.epoch || (epoch === last.epoch && startOffset >= last.startOffset))) return;
    while (this.epochs.length > 0) {
      const e = this.epochs[this.epochs.length - 1]!;
      if (e.epoch < epoch && e.startOffset < startOffset) break;
      this.epochs.pop();
    }
    this.epochs.push({ epoch, startOffset });
    this.changed();
  }

  /**
   * Where `requestedEpoch` ends on this replica (see the header). `epoch` of the answer is the
   * largest epoch <= requestedEpoch known here.
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): { epoch: number; endOffset: number } {
    if (requestedEpoch === UNDEFINED_EPOCH || this.epochs.length === 0) return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    if (requestedEpoch === this.latestEpoch()) return { epoch: requestedEpoch, endOffset: logEndOffset };
    // The first entry with an epoch above the requested one.
    let hi = 0;
    while (hi < this.epochs.length && this.epochs[hi]!.epoch <= requestedEpoch) hi++;
    if (hi === this.epochs.length) return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    const higher = this.epochs[hi]!;
    if (hi === 0) return { epoch: requestedEpoch, endOffset: higher.startOffset };
    return { epoch: this.epochs[hi - 1]!.epoch, endOffset: higher.startOffset };
  }

  /** Drops the entries starting at or after `endOffset` (the log was truncated to it). */
  truncateFromEnd(endOffset: number): void {
    const before = this.epochs.length;
    while (this.epochs.length > 0 && this.epochs[this.epochs.length - 1]!.startOffset >= endOffset) this.epochs.pop();
    if (this.epochs.length !== before) this.changed();
  }

  /** The log now starts at `startOffset`: entries below it go, the last of them moved up to it. */
  truncateFromStart(startOffset: number): void {
    let n = 0;
    while (n < this.epochs.length && this.epochs[n]!.startOffset <= startOffset) n++;
    if (n === 0) return;
    const kept = this.epochs[n - 1]!;
    if (n === 1 && kept.startOffset === startOffset) return;
    this.epochs = [{ epoch: kept.epoch, startOffset }, ...this.epochs.slice(n)];
    this.changed();
  }

  /** Removes every entry (the log was emptied and restarted). */
  clear(): void {
    if (this.epochs.length === 0) return;
    this.epochs = [];
    this.changed();
  }

  private changed(): void {
    this.version++;
  }

  /**
   * Resolves once the entries as of this call are on disk (one write at a time; a call while one
   * runs waits for it and writes again if something changed). Rejects if a write failed.
   */
  async flush(): Promise<void> {
    if (this.path === null) return;
    for (;;) {
      if (this.writeError !== null) throw this.writeError;
      if (this.writing !== null) {
        await this.writing.catch(() => {});
        continue;
      }
      if (this.version === this.written) return;
      const version = this.version;
      const text = formatLeaderEpochCheckpoint(this.epochs);
      this.writing = writeFileAtomic(this.path, text).then(
        () => {
          this.written = Math.max(this.written, version);
          this.writing = null;
        },
        (err: unknown) => {
          this.writeError = err;
          this.writing = null;
        },
      );
    }
  }

  /** Writes the file even if unchanged (rebuilt caches, first load). */
  async persist(): Promise<void> {
    this.changed();
    await this.flush();
  }
}
