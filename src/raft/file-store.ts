/**
 * The Raft seams on real files, in one directory (Kafka's `__cluster_metadata-0/` of a KRaft node):
 *
 *   00000000000000000000.log     the log: one record batch per entry (entry-codec.ts), named by
 *                                its log start offset; one segment only
 *   quorum-state                 Kafka's JSON (data_version 0): leaderId, leaderEpoch, votedId,
 *                                appliedOffset (always 0 here), currentVoters
 *   00000000000000000120-0000000003.checkpoint
 *                                a snapshot (end offset 120, epoch 3); the state machine's bytes
 *
 * The I/O is synchronous because the Raft core is (see types.ts); the metadata log is small and
 * snapshotted, so it is held in memory as well as on disk. `PartitionLog` (src/storage) is not
 * reused: its appends are asynchronous and queued, and the core needs a log whose state is
 * settled when a call returns.
 *
 * Durability: appends are written at once and fsynced by flush(); a crash can lose what was not
 * flushed, and open() truncates a torn or corrupt tail (as log-loader.ts does for partition
 * logs). quorum-state and snapshots are written to a temporary file, fsynced and renamed, and the
 * directory fsynced. deleteBefore() rewrites the kept entries into a new segment the same way,
 * then removes the old one; open() keeps the newest segment and removes leftovers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { decodeEntry, encodeEntry } from './entry-codec.js';
import type { LogEntry, QuorumState, QuorumStateStore, RaftLogStore, RaftSnapshotStore, SnapshotId } from './types.js';

const LOG_SUFFIX = '.log';
const SNAPSHOT_SUFFIX = '.checkpoint';
/** Batch framing: base offset (8) and batch length (4) precede the length's bytes. */
const LOG_OVERHEAD = 12;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeFileAtomic(dir: string, name: string, data: Buffer | string): void {
  const tmp = join(dir, `${name}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, join(dir, name));
  fsyncDir(dir);
}

export class FileRaftLog implements RaftLogStore {
  private entries: LogEntry[] = [];
  /** Byte position of each entry in the segment, and the segment's size. */
  private positions: number[] = [];
  private size = 0;
  private flushed: number;

  private constructor(
    private readonly dir: string,
    private start: number,
    private fd: number,
  ) {
    this.flushed = start;
  }

  /** Opens (or creates) the log in `dir`, recovering a torn tail. */
  static open(dir: string): FileRaftLog {
    fs.mkdirSync(dir, { recursive: true });
    const segments = fs
      .readdirSync(dir)
      .filter((n) => /^\d{20}\.log$/.test(n))
      .sort();
    for (const n of fs.readdirSync(dir)) if (n.endsWith('.tmp')) fs.rmSync(join(dir, n));
    const name = segments.pop() ?? `${pad(0, 20)}${LOG_SUFFIX}`;
    // An older segment is left over from a deleteBefore() interrupted after its rename.
    for (const old of segments) fs.rmSync(join(dir, old));
    const start = Number(name.slice(0, 20));
    const fd = fs.openSync(join(dir, name), fs.existsSync(join(dir, name)) ? 'r+' : 'w+');
    const log = new FileRaftLog(dir, start, fd);
    log.recover();
    return log;
  }

  private recover(): void {
    const bytes = fs.readFileSync(this.fd);
    let pos = 0;
    while (pos + LOG_OVERHEAD <= bytes.length) {
      const size = LOG_OVERHEAD + bytes.readInt32BE(pos + 8);
      if (size <= LOG_OVERHEAD || pos + size > bytes.length) break;
      let decoded: { offset: number; entry: LogEntry };
      try {
        decoded = decodeEntry(bytes.subarray(pos, pos + size));
      } catch {
        break;
      }
      if (decoded.offset !== this.endOffset) break;
      const last = this.entries[this.entries.length - 1];
      if (last !== undefined && decoded.entry.epoch < last.epoch) break;
      this.positions.push(pos);
      this.entries.push(decoded.entry);
      pos += size;
    }
    if (pos < bytes.length) {
      fs.ftruncateSync(this.fd, pos);
      fs.fsyncSync(this.fd);
    }
    this.size = pos;
    this.flushed = this.endOffset;
  }

  get logStartOffset(): number {
    return this.start;
  }
  get endOffset(): number {
    return this.start + this.entries.length;
  }
  get flushedEndOffset(): number {
    return this.flushed;
  }

  entry(offset: number): LogEntry {
    const e = this.entries[offset - this.start];
    // (Not assert(cond, `...`): this is hot, and the message would be built on every call.)
    if (e === undefined) assert.fail(`no entry at ${offset} (log ${this.start}..${this.endOffset})`);
    return e;
  }

  append(entries: readonly LogEntry[]): void {
    const buffers = entries.map((e, i) => encodeEntry(this.endOffset + i, e));
    const data = Buffer.concat(buffers);
    let written = 0;
    while (written < data.length) written += fs.writeSync(this.fd, data, written, data.length - written, this.size + written);
    for (let i = 0; i < entries.length; i++) {
      this.positions.push(this.size);
      this.entries.push(entries[i]!);
      this.size += buffers[i]!.length;
    }
  }

  truncateTo(offset: number): void {
    assert(offset >= this.start && offset <= this.endOffset, `truncation to ${offset} outside ${this.start}..${this.endOffset}`);
    if (offset === this.endOffset) return;
    const i = offset - this.start;
    this.size = this.positions[i]!;
    this.entries.length = i;
    this.positions.length = i;
    fs.ftruncateSync(this.fd, this.size);
    this.flushed = Math.min(this.flushed, offset);
  }

  flush(): void {
    fs.fsyncSync(this.fd);
    this.flushed = this.endOffset;
  }

  deleteBefore(offset: number): void {
    assert(offset >= this.start, `deleting before ${offset}, below the log start ${this.start}`);
    if (offset === this.start) return;
    const keep = offset >= this.endOffset ? [] : this.entries.slice(offset - this.start);
    const name = `${pad(offset, 20)}${LOG_SUFFIX}`;
    const buffers = keep.map((e, i) => encodeEntry(offset + i, e));
    writeFileAtomic(this.dir, name, Buffer.concat(buffers));
    const oldName = `${pad(this.start, 20)}${LOG_SUFFIX}`;
    fs.closeSync(this.fd);
    fs.rmSync(join(this.dir, oldName));
    this.fd = fs.openSync(join(this.dir, name), 'r+');
    this.start = offset;
    this.entries = keep;
    this.positions = [];
    let pos = 0;
    for (const b of buffers) {
      this.positions.push(pos);
      pos += b.length;
    }
    this.size = pos;
    this.flushed = this.endOffset;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Kafka's quorum-state file (data_version 0). */
interface QuorumStateFile {
  clusterId: string;
  leaderId: number;
  leaderEpoch: number;
  votedId: number;
  appliedOffset: number;
  currentVoters: Array<{ voterId: number }>;
  data_version: 0;
}

export const QUORUM_STATE_FILE = 'quorum-state';

export class FileQuorumStateStore implements QuorumStateStore {
  constructor(
    private readonly dir: string,
    private readonly voters: readonly number[],
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  read(): QuorumState | null {
    let text: string;
    try {
      text = fs.readFileSync(join(this.dir, QUORUM_STATE_FILE), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const f = JSON.parse(text) as Partial<QuorumStateFile>;
    const ints = [f.leaderId, f.leaderEpoch, f.votedId];
    if (!ints.every((v) => Number.isSafeInteger(v))) throw new Error(`${join(this.dir, QUORUM_STATE_FILE)} is not a quorum-state file: ${text.slice(0, 200)}`);
    return { leaderId: f.leaderId!, leaderEpoch: f.leaderEpoch!, votedId: f.votedId! };
  }

  write(state: QuorumState): void {
    const f: QuorumStateFile = {
      clusterId: '',
      leaderId: state.leaderId,
      leaderEpoch: state.leaderEpoch,
      votedId: state.votedId,
      appliedOffset: 0,
      currentVoters: this.voters.map((voterId) => ({ voterId })),
      data_version: 0,
    };
    writeFileAtomic(this.dir, QUORUM_STATE_FILE, JSON.stringify(f));
  }
}

export function snapshotFileName(id: SnapshotId): string {
  return `${pad(id.endOffset, 20)}-${pad(id.epoch, 10)}${SNAPSHOT_SUFFIX}`;
}

export class FileSnapshotStore implements RaftSnapshotStore {
  private cached: { id: SnapshotId; data: Buffer } | null | undefined;

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  latest(): { id: SnapshotId; data: Buffer } | null {
    if (this.cached !== undefined) return this.cached;
    const names = fs
      .readdirSync(this.dir)
      .filter((n) => /^\d{20}-\d{10}\.checkpoint$/.test(n))
      .sort();
    const name = names.pop();
    this.cached = name === undefined ? null : { id: { endOffset: Number(name.slice(0, 20)), epoch: Number(name.slice(21, 31)) }, data: fs.readFileSync(join(this.dir, name)) };
    return this.cached;
  }

  write(id: SnapshotId, data: Buffer): void {
    const previous = this.latest();
    writeFileAtomic(this.dir, snapshotFileName(id), data);
    this.cached = { id, data: Buffer.from(data) };
    if (previous !== null && snapshotFileName(previous.id) !== snapshotFileName(id)) fs.rmSync(join(this.dir, snapshotFileName(previous.id)), { force: true });
  }
}
