/**
 * TimeIndex: a sparse map from timestamp to offset within one segment (Kafka's `.timeindex`).
 *
 * File layout: a sequence of 12-byte entries, big-endian, no header:
 *   @0 timestamp       int64   the largest batch maxTimestamp seen in the segment so far
 *   @8 relativeOffset  int32   base offset (relative) of the first batch that reached it
 * Timestamps strictly increase; relative offsets never decrease. An entry is added alongside each
 * offset-index entry when the segment's max timestamp has grown, and once more on roll and close
 * so the last entry always holds the segment's largest timestamp. Every batch before an entry's
 * offset has a maxTimestamp below the entry's timestamp, so a floor lookup is a safe scan start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readInt64, writeInt64 } from './batch-layout.js';
import { IndexFile, lastAtOrBelow } from './index-file.js';

export const TIME_INDEX_ENTRY_SIZE = 12;

export class TimeIndex extends IndexFile {
  private timestamps = new Float64Array(16);
  private rels = new Int32Array(16);

  constructor(path: string, baseOffset: number, maxIndexBytes: number) {
    super(path, baseOffset, TIME_INDEX_ENTRY_SIZE, Math.max(1, Math.floor(maxIndexBytes / TIME_INDEX_ENTRY_SIZE)));
  }

  /** Load if present and sane (size a multiple of 12, timestamps increasing, offsets not decreasing). */
  async load(): Promise<boolean> {
    let data: Buffer;
    try {
      data = await fs.promises.readFile(this.path);
    } catch {
      return false;
    }
    if (data.length % TIME_INDEX_ENTRY_SIZE !== 0) return false;
    const n = data.length / TIME_INDEX_ENTRY_SIZE;
    let lastTs = -Infinity;
    let lastRel = 0;
    this.entries = 0;
    for (let i = 0; i < n; i++) {
      const ts = readInt64(data, i * 12);
      const rel = data.readInt32BE(i * 12 + 8);
      if (ts <= lastTs || rel < lastRel || !Number.isSafeInteger(ts)) {
        this.entries = 0;
        return false;
      }
      this.push(ts, rel);
      lastTs = ts;
      lastRel = rel;
    }
    this.markLoaded(n);
    return true;
  }

  private push(ts: number, rel: number): void {
    this.ensureCapacity();
    this.timestamps[this.entries] = ts;
    this.rels[this.entries] = rel;
    this.entries++;
  }

  protected capacity(): number {
    return this.rels.length;
  }

  protected grow(capacity: number): void {
    const t = new Float64Array(capacity);
    t.set(this.timestamps.subarray(0, this.entries));
    const r = new Int32Array(capacity);
    r.set(this.rels.subarray(0, this.entries));
    this.timestamps = t;
    this.rels = r;
  }

  protected encode(buf: Buffer, at: number, entry: number): void {
    writeInt64(buf, at, this.timestamps[entry]!);
    buf.writeInt32BE(this.rels[entry]!, at + 8);
  }

  /** Add (timestamp, offset) if timestamp is larger than the last entry's; otherwise a no-op. */
  maybeAppend(timestamp: number, offset: number): void {
    if (this.entries > 0 && timestamp <= this.timestamps[this.entries - 1]!) return;
    const rel = offset - this.baseOffset;
    assert(rel >= 0 && rel <= 0x7fffffff, `offset ${offset} not relative to base ${this.baseOffset}`);
    if (this.entries > 0) assert(rel >= this.rels[this.entries - 1]!, `time index offsets must not decrease: ${offset}`);
    this.push(timestamp, rel);
  }

  lastEntry(): { timestamp: number; offset: number } | null {
    if (this.entries === 0) return null;
    return { timestamp: this.timestamps[this.entries - 1]!, offset: this.baseOffset + this.rels[this.entries - 1]! };
  }

  /** The last entry with timestamp <= target; null when none (scan from the segment start). */
  lookup(timestamp: number): { timestamp: number; offset: number } | null {
    const found = lastAtOrBelow(this.timestamps, this.entries, timestamp);
    if (found < 0) return null;
    return { timestamp: this.timestamps[found]!, offset: this.baseOffset + this.rels[found]! };
  }

  /** Drop entries whose offset is at or beyond `offset`. */
  truncateToOffset(offset: number): void {
    let n = this.entries;
    while (n > 0 && this.baseOffset + this.rels[n - 1]! >= offset) n--;
    this.truncateEntries(n);
  }
}
