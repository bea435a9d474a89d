/**
 * OffsetIndex: a sparse map from offset to file position within one segment (Kafka's `.index`).
 *
 * File layout: a sequence of 8-byte entries, big-endian, no header:
 *   @0 relativeOffset  int32   batch base offset - segment base offset
 *   @4 position        int32   byte position of that batch in the segment's `.log`
 * Both fields strictly increase from entry to entry. An entry is added for a batch when more than
 * index.interval.bytes have been appended since the previous entry, so lookups land at most about
 * one interval (plus one batch) before the wanted batch. Unlike Kafka, the entry names the batch's
 * *base* offset, so a floor lookup always lands on a batch that starts at or before the target.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { IndexFile, lastAtOrBelow } from './index-file.js';

export const OFFSET_INDEX_ENTRY_SIZE = 8;

export class OffsetIndex extends IndexFile {
  private rels = new Int32Array(16);
  private positions = new Int32Array(16);

  constructor(path: string, baseOffset: number, maxIndexBytes: number) {
    super(path, baseOffset, OFFSET_INDEX_ENTRY_SIZE, Math.max(1, Math.floor(maxIndexBytes / OFFSET_INDEX_ENTRY_SIZE)));
  }

  /**
   * Load the file if present and sane. Returns false (and an empty index) when the file is missing
   * or fails a check: size not a multiple of 8, entries not strictly increasing, a position at or
   * beyond the end of the log file.
   */
  async load(logSize: number): Promise<boolean> {
    let data: Buffer;
    try {
      data = await fs.promises.readFile(this.path);
    } catch {
      return false;
    }
    if (data.length % OFFSET_INDEX_ENTRY_SIZE !== 0) return false;
    const n = data.length / OFFSET_INDEX_ENTRY_SIZE;
    let lastRel = -1;
    let lastPos = -1;
    this.entries = 0;
    for (let i = 0; i < n; i++) {
      const rel = data.readInt32BE(i * 8);
      const pos = data.readInt32BE(i * 8 + 4);
      if (rel <= lastRel || pos <= lastPos || pos >= logSize) {
        this.entries = 0;
        return false;
      }
      this.push(rel, pos);
      lastRel = rel;
      lastPos = pos;
    }
    this.markLoaded(n);
    return true;
  }

  private push(rel: number, pos: number): void {
    this.ensureCapacity();
    this.rels[this.entries] = rel;
    this.positions[this.entries] = pos;
    this.entries++;
  }

  protected capacity(): number {
    return this.rels.length;
  }

  protected grow(capacity: number): void {
    const r = new Int32Array(capacity);
    r.set(this.rels.subarray(0, this.entries));
    const p = new Int32Array(capacity);
    p.set(this.positions.subarray(0, this.entries));
    this.rels = r;
    this.positions = p;
  }

  protected encode(buf: Buffer, at: number, entry: number): void {
    buf.writeInt32BE(this.rels[entry]!, at);
    buf.writeInt32BE(this.positions[entry]!, at + 4);
  }

  append(offset: number, position: number): void {
    const rel = offset - this.baseOffset;
    assert(rel >= 0 && rel <= 0x7fffffff, `offset ${offset} not relative to base ${this.baseOffset}`);
    if (this.entries > 0) {
      assert(rel > this.rels[this.entries - 1]!, `index offsets must increase: ${offset}`);
      assert(position > this.positions[this.entries - 1]!, `index positions must increase: ${position}`);
    }
    this.push(rel, position);
  }

  /** The last entry with offset <= target, or the segment start when none. */
  lookup(offset: number): { offset: number; position: number } {
    const i = this.floorEntry(offset - this.baseOffset);
    if (i < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.baseOffset + this.rels[i]!, position: this.positions[i]! };
  }

  lastEntry(): { offset: number; position: number } {
    if (this.entries === 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.baseOffset + this.rels[this.entries - 1]!, position: this.positions[this.entries - 1]! };
  }

  /** The position of the last indexed batch that starts at or before `position`, or -1 when none does. */
  floorPosition(position: number): number {
    const i = lastAtOrBelow(this.positions, this.entries, position);
    return i < 0 ? -1 : this.positions[i]!;
  }

  /** Drop entries for batches at or beyond `position` (log truncated there). */
  truncateToPosition(position: number): void {
    let n = this.entries;
    while (n > 0 && this.positions[n - 1]! >= position) n--;
    this.truncateEntries(n);
  }

  private floorEntry(rel: number): number {
    return lastAtOrBelow(this.rels, this.entries, rel);
  }
}
