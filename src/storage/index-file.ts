/**
 * What the offset index and the time index share: a sorted array of fixed-size entries, kept in
 * memory (typed arrays) and persisted to an append-only file.
 *
 * Persistence policy (a deliberate difference from Kafka, which preallocates and mmaps): entries
 * live in memory and are written to the file only by `persist()`, which the segment calls on
 * roll, close and truncation. The file therefore has no preallocated tail to trim, and appends
 * never touch the index file. After an unclean shutdown the active segment's indexes are rebuilt
 * from the log anyway, so an index file that lags the log is harmless.
 */
import fs from 'node:fs';
import { closeFile, fsyncFile, ftruncateFile, openFile, writeFully } from './file-io.js';

/** The position of the last of `values[0 .. count)` (in non-decreasing order) that is <= `target`, or -1. */
export function lastAtOrBelow(values: Int32Array | Float64Array, count: number, target: number): number {
  let lo = 0;
  let hi = count - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= target) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export abstract class IndexFile {
  /** Number of entries in memory. */
  entries = 0;
  /** Entries known to be in the file, in order, identical to memory. */
  private persisted = 0;
  /** Entries physically in the file (may exceed `entries` after a truncation until persisted). */
  private fileEntries = 0;

  constructor(
    readonly path: string,
    readonly baseOffset: number,
    readonly entrySize: number,
    /** Index is full at this many entries (segment.index.bytes / entrySize); the segment rolls. */
    public maxEntries: number,
  ) {}

  get isFull(): boolean {
    return this.entries >= this.maxEntries;
  }

  get sizeInBytes(): number {
    return this.entries * this.entrySize;
  }

  protected abstract grow(capacity: number): void;
  protected abstract capacity(): number;
  protected abstract encode(buf: Buffer, at: number, entry: number): void;

  protected ensureCapacity(): void {
    const cap = this.capacity();
    if (this.entries < cap) return;
    this.grow(Math.max(16, cap * 2));
  }

  /** Mark the file as matching memory after a load. */
  protected markLoaded(fileEntries: number): void {
    this.persisted = fileEntries;
    this.fileEntries = fileEntries;
  }

  /** Forget entries from `entry` on (memory now; the file on the next persist). */
  truncateEntries(entry: number): void {
    if (entry >= this.entries) return;
    this.entries = Math.max(0, entry);
    if (this.persisted > this.entries) this.persisted = this.entries;
  }

  /** Drop everything; the file is rewritten from scratch on the next persist. */
  reset(): void {
    this.entries = 0;
    this.persisted = 0;
  }

  /** Write entries not yet in the file, cut any stale tail, fsync. */
  async persist(): Promise<void> {
    if (this.persisted === this.entries && this.fileEntries === this.entries) return;
    const fd = await openFile(this.path, fs.existsSync(this.path) ? 'r+' : 'w');
    try {
      if (this.fileEntries !== this.persisted || this.persisted === 0) {
        await ftruncateFile(fd, this.persisted * this.entrySize);
        this.fileEntries = this.persisted;
      }
      const count = this.entries - this.persisted;
      if (count > 0) {
        const buf = Buffer.allocUnsafe(count * this.entrySize);
        for (let i = 0; i < count; i++) this.encode(buf, i * this.entrySize, this.persisted + i);
        await writeFully(fd, buf, this.persisted * this.entrySize);
      }
      await fsyncFile(fd);
      this.persisted = this.entries;
      this.fileEntries = this.entries;
    } finally {
      await closeFile(fd);
    }
  }

  async deleteFile(): Promise<void> {
    await fs.promises.rm(this.path, { force: true });
  }
}
