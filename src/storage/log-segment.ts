/**
 * LogSegment: one `.log` file of stored record batches plus its `.index` and `.timeindex`.
 *
 * Files, named by the segment's base offset as 20 zero-padded digits:
 *   00000000000000000000.log        record batches (magic 2) back to back, byte-for-byte as
 *                                   appended (see batch-layout.ts); no file header
 *   00000000000000000000.index      OffsetIndex (offset-index.ts)
 *   00000000000000000000.timeindex  TimeIndex (time-index.ts)
 *
 * The segment keeps one fd open on its `.log` for positional writes and reads. Two sizes: `size`
 * is what has been written (readers never look past it); `writeEnd` also counts bytes assigned to
 * an append whose write is still in flight. The fd is reference counted so a read or an fsync in
 * flight keeps it open while the segment is closed or deleted underneath.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import {
  BASE_OFFSET_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  CRC_START,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAGIC_V2,
  MAX_TIMESTAMP_OFFSET,
  MIN_BATCH_LENGTH,
  PARTITION_LEADER_EPOCH_OFFSET,
  RECORD_BATCH_HEADER_SIZE,
  readInt64,
} from './batch-layout.js';
import { CorruptSegmentError } from './errors.js';
import { closeFile, fstatSize, fsyncFile, ftruncateFile, openFile, readAt, readAtCachedFirst, writevFully } from './file-io.js';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';

export const LOG_SUFFIX = '.log';
export const INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';

export function segmentFileName(baseOffset: number, suffix: string): string {
  return String(baseOffset).padStart(20, '0') + suffix;
}

/** Parsed header fields of one batch during a scan (reused object; copy what you keep). */
export interface BatchHeader {
  position: number;
  baseOffset: number;
  lastOffset: number;
  size: number;
  maxTimestamp: number;
}

/** A header seen by scanHeaders: also the batch's partition leader epoch. */
export interface ScannedBatchHeader extends BatchHeader {
  partitionLeaderEpoch: number;
}

const SCAN_CHUNK_BYTES = 8192;

/**
 * Headers of the most recently assigned batches, kept in memory: a consumer at the tail asks for
 * the offset right after what it last read, and finds its batch here without reading the file.
 */
const RECENT_BATCHES = 64;
const RECOVERY_CHUNK_BYTES = 1 << 20;
const MAX_RELATIVE_OFFSET = 0x7fffffff;

export interface SegmentIndexConfig {
  segmentIndexBytes: number;
  indexIntervalBytes: number;
}

export class LogSegment {
  readonly logPath: string;
  readonly offsetIndex: OffsetIndex;
  readonly timeIndex: TimeIndex;
  /** Bytes written and visible to readers. */
  size = 0;
  /** Bytes assigned (size plus any write in flight). */
  writeEnd = 0;
  /** One past the last offset assigned in this segment (baseOffset when empty). */
  nextOffset: number;
  /** Largest batch maxTimestamp in the segment, -1 when none. */
  maxTimestamp = -1;
  /** Base offset of the first batch holding maxTimestamp, -1 when none. */
  offsetOfMaxTimestamp = -1;
  /** Wall-clock time of the first append (or the first batch's timestamp after a restart); for segment.ms. */
  firstAppendMs = -1;
  /** Last time the segment was written (file mtime after a load); retention falls back to it. */
  lastModifiedMs: number;
  private bytesSinceLastIndexEntry = 0;
  private refs = 0;
  private closing: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    private fd: number,
    private indexIntervalBytes: number,
    segmentIndexBytes: number,
    nowMs: number,
  ) {
    this.logPath = join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    this.offsetIndex = new OffsetIndex(join(dir, segmentFileName(baseOffset, INDEX_SUFFIX)), baseOffset, segmentIndexBytes);
    this.timeIndex = new TimeIndex(join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)), baseOffset, segmentIndexBytes);
    this.nextOffset = baseOffset;
    this.lastModifiedMs = nowMs;
  }

  /** Create a new empty segment (replacing any leftover files of the same base offset). */
  static async create(dir: string, baseOffset: number, config: SegmentIndexConfig, nowMs: number): Promise<LogSegment> {
    const fd = await openFile(join(dir, segmentFileName(baseOffset, LOG_SUFFIX)), 'w+');
    const seg = new LogSegment(dir, baseOffset, fd, config.indexIntervalBytes, config.segmentIndexBytes, nowMs);
    await seg.offsetIndex.persist();
    await seg.timeIndex.persist();
    return seg;
  }

  /**
   * Open an existing segment. With `recover`, every batch is validated (CRC-32C included) and the
   * file truncated at the first bad one; indexes are rebuilt. Without it, indexes are loaded and
   * checked, and rebuilt (by the same scan) if missing or inconsistent.
   * Returns the segment and how many bytes recovery cut off (0 when none).
   */
  static async open(
    dir: string,
    baseOffset: number,
    config: SegmentIndexConfig,
    opts: { recover: boolean; nowMs: number },
  ): Promise<{ segment: LogSegment; truncatedBytes: number; rebuiltIndexes: boolean }> {
    const path = join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    const fd = await openFile(path, 'r+');
    const seg = new LogSegment(dir, baseOffset, fd, config.indexIntervalBytes, config.segmentIndexBytes, opts.nowMs);
    try {
      const st = await fs.promises.stat(path);
      seg.lastModifiedMs = st.mtimeMs;
      seg.size = await fstatSize(fd);
      seg.writeEnd = seg.size;
      let rebuild = opts.recover;
      if (!rebuild) {
        const okOffsets = await seg.offsetIndex.load(seg.size);
        const okTimes = okOffsets && (await seg.timeIndex.load());
        rebuild = !okTimes || !(await seg.loadTail());
      }
      let truncatedBytes = 0;
      if (rebuild) {
        truncatedBytes = await seg.recover();
        await seg.offsetIndex.persist();
        await seg.timeIndex.persist();
      }
      if (seg.size > 0) {
        const hdr = Buffer.allocUnsafe(RECORD_BATCH_HEADER_SIZE);
        await readAt(fd, hdr, 0, RECORD_BATCH_HEADER_SIZE, 0);
        const ts = readInt64(hdr, MAX_TIMESTAMP_OFFSET);
        seg.firstAppendMs = ts > 0 ? ts : opts.nowMs;
      }
      return { segment: seg, truncatedBytes, rebuiltIndexes: rebuild };
    } catch (err) {
      await closeFile(fd).catch(() => {});
      throw err;
    }
  }

  get isEmpty(): boolean {
    return this.writeEnd === 0;
  }

  /** Largest timestamp for retention: the max batch timestamp, else the file's last modification. */
  get largestTimestamp(): number {
    return this.maxTimestamp > 0 ? this.maxTimestamp : this.lastModifiedMs;
  }

  // ---- append path (called by PartitionLog's serialized writer) ----

  /**
   * Kafka's shouldRoll: would `bytes` more overflow segment.bytes, has segment.ms passed since the
   * first append, is an index full, or would `lastOffset` not fit a relative int32? Never rolls an
   * empty segment (an oversized batch goes into an empty segment).
   */
  shouldRoll(bytes: number, lastOffset: number, nowMs: number, segmentBytes: number, segmentMs: number): boolean {
    if (this.writeEnd === 0) return false;
    return (
      this.writeEnd > segmentBytes - bytes ||
      (this.firstAppendMs >= 0 && nowMs - this.firstAppendMs >= segmentMs) ||
      this.offsetIndex.isFull ||
      this.timeIndex.isFull ||
      lastOffset - this.baseOffset > MAX_RELATIVE_OFFSET
    );
  }

  /**
   * Record one batch about to be written at `writeEnd` (in-memory bookkeeping and sparse index
   * entries). Readers are bounded by `size`, which moves only after the write lands.
   */
  assignBatch(baseOffset: number, lastOffset: number, maxTimestamp: number, batchBytes: number, nowMs: number): void {
    assert(baseOffset >= this.nextOffset, `offsets must increase: ${baseOffset} < ${this.nextOffset}`);
    assert(lastOffset >= baseOffset && lastOffset - this.baseOffset <= MAX_RELATIVE_OFFSET);
    const position = this.writeEnd;
    if (this.firstAppendMs < 0) this.firstAppendMs = nowMs;
    this.trackBatch(baseOffset, lastOffset, maxTimestamp, position, batchBytes);
    this.writeEnd = position + batchBytes;
  }

  /** Ring of recent batch headers, oldest first from `recentHead`; cleared on truncation. */
  private readonly recent: BatchHeader[] = [];
  private recentHead = 0;

  private rememberBatch(h: BatchHeader): void {
    if (this.recent.length < RECENT_BATCHES) this.recent.push(h);
    else {
      this.recent[this.recentHead] = h;
      this.recentHead = (this.recentHead + 1) % RECENT_BATCHES;
    }
  }

  /**
   * The first batch with lastOffset >= offset among the recent ones, if the ring answers the
   * question: `offset` is at or after the oldest remembered batch, so no earlier batch can hold it.
   * Returns undefined when the ring cannot tell, null when no written batch holds the offset.
   */
  private findRecent(offset: number, limit: number): BatchHeader | null | undefined {
    const n = this.recent.length;
    if (n === 0) return undefined;
    const oldest = this.recent[n < RECENT_BATCHES ? 0 : this.recentHead]!;
    if (offset < oldest.baseOffset) return undefined;
    for (let i = 0; i < n; i++) {
      const h = this.recent[(this.recentHead + i) % n]!;
      if (h.lastOffset >= offset) return h.position + h.size <= limit ? { ...h } : null;
    }
    return null;
  }

  private trackBatch(baseOffset: number, lastOffset: number, maxTimestamp: number, position: number, batchBytes: number): void {
    this.rememberBatch({ position, baseOffset, lastOffset, size: batchBytes, maxTimestamp });
    if (maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = maxTimestamp;
      this.offsetOfMaxTimestamp = baseOffset;
    }
    if (this.bytesSinceLastIndexEntry > this.indexIntervalBytes) {
      this.offsetIndex.append(baseOffset, position);
      if (this.maxTimestamp >= 0) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += batchBytes;
    this.nextOffset = lastOffset + 1;
  }

  /** Write buffers at `position` (== size at the time the group was formed). */
  async write(bufs: Buffer[], position: number, bytes: number, nowMs: number): Promise<void> {
    assert(position === this.size, `write at ${position} but size is ${this.size}`);
    assert(position + bytes <= this.writeEnd);
    await writevFully(this.fd, bufs, position);
    this.size = position + bytes;
    this.lastModifiedMs = nowMs;
  }

  // ---- fd lifetime ----

  /** Take a reference on the fd; false if the segment is closing (caller treats it as gone). */
  acquire(): boolean {
    if (this.closing) return false;
    this.refs++;
    return true;
  }

  release(): void {
    assert(this.refs > 0);
    this.refs--;
    if (this.refs === 0 && this.closeResolve) this.closeResolve();
  }

  async fsync(): Promise<void> {
    await fsyncFile(this.fd);
  }

  /** Persist indexes (with the final time-index entry) and fsync everything: on roll and close. */
  async flushAll(): Promise<void> {
    if (this.maxTimestamp >= 0) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    await fsyncFile(this.fd);
    await this.offsetIndex.persist();
    await this.timeIndex.persist();
  }

  /** Close the fd once no read or fsync holds it. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        if (this.refs > 0) await new Promise<void>((resolve) => (this.closeResolve = resolve));
        await closeFile(this.fd);
      })();
    }
    return this.closing;
  }

  /** Unlink the files now (open fds keep reading fine) and close once idle. */
  async deleteFiles(): Promise<void> {
    await Promise.all([
      fs.promises.rm(this.logPath, { force: true }),
      this.offsetIndex.deleteFile(),
      this.timeIndex.deleteFile(),
      // The segment's aborted-transaction index (producer-state.ts), if it has one.
      fs.promises.rm(join(this.dir, segmentFileName(this.baseOffset, '.txnindex')), { force: true }),
    ]);
    await this.close();
  }

  // ---- reads ----

  /** Read raw bytes; returns the number read (short only at end of file). */
  /** The `.log` descriptor, for sendfile by a holder of a reference (acquire). */
  descriptor(): number {
    return this.fd;
  }

  async readBytes(buf: Buffer, off: number, len: number, position: number): Promise<number> {
    return readAt(this.fd, buf, off, len, position);
  }

  /** readBytes for one read on the request path: from the page cache without the pool when it holds the range (readAtCachedFirst). */
  async readBytesCachedFirst(buf: Buffer, off: number, len: number, position: number): Promise<number> {
    return readAtCachedFirst(this.fd, buf, off, len, position);
  }

  /**
   * Visit batch headers from `position` up to `limit` (exclusive) until `visit` returns false.
   * Throws CorruptSegmentError on a malformed header (never in a healthy segment).
   */
  async scanHeaders(position: number, limit: number, visit: (h: ScannedBatchHeader) => boolean): Promise<void> {
    const chunk = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
    let chunkPos = 0;
    let chunkLen = 0;
    let firstRead = true;
    const h: ScannedBatchHeader = { position: 0, baseOffset: 0, lastOffset: 0, size: 0, maxTimestamp: 0, partitionLeaderEpoch: -1 };
    let pos = position;
    while (pos + RECORD_BATCH_HEADER_SIZE <= limit) {
      if (pos < chunkPos || pos + RECORD_BATCH_HEADER_SIZE > chunkPos + chunkLen) {
        // The first chunk of a scan (usually the only one: a lookup starts at an index entry) comes
        // from the page cache when it can; a longer scan yields to the event loop on each chunk.
        const read = firstRead ? readAtCachedFirst : readAt;
        firstRead = false;
        chunkPos = pos;
        chunkLen = await read(this.fd, chunk, 0, Math.min(SCAN_CHUNK_BYTES, limit - pos), pos);
        if (chunkLen < RECORD_BATCH_HEADER_SIZE) return;
      }
      const at = pos - chunkPos;
      const batchLength = chunk.readInt32BE(at + BATCH_LENGTH_OFFSET);
      if (batchLength < MIN_BATCH_LENGTH || chunk[at + MAGIC_OFFSET] !== MAGIC_V2 || pos + batchLength + LOG_OVERHEAD > limit) {
        throw new CorruptSegmentError(`bad batch header at ${this.logPath}:${pos}`);
      }
      h.position = pos;
      h.baseOffset = readInt64(chunk, at + BASE_OFFSET_OFFSET);
      h.size = batchLength + LOG_OVERHEAD;
      h.lastOffset = h.baseOffset + chunk.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
      h.maxTimestamp = readInt64(chunk, at + MAX_TIMESTAMP_OFFSET);
      h.partitionLeaderEpoch = chunk.readInt32BE(at + PARTITION_LEADER_EPOCH_OFFSET);
      if (!visit(h)) return;
      pos += h.size;
    }
  }

  /**
   * The start of the last batch the offset index knows at or before `position` (so the end of the
   * batch before it), or -1: a boundary between whole batches found without reading the file.
   */
  indexedBatchStartAtOrBefore(position: number): number {
    return this.offsetIndex.floorPosition(position);
  }

  /** The first batch with lastOffset >= offset (via the index and a short scan), or null. */
  async findBatch(offset: number, limit = this.size): Promise<BatchHeader | null> {
    const recent = this.findRecent(offset, limit);
    if (recent !== undefined) return recent;
    const start = this.offsetIndex.lookup(offset);
    let found: BatchHeader | null = null;
    await this.scanHeaders(start.position, limit, (h) => {
      if (h.lastOffset < offset) return true;
      found = { ...h };
      return false;
    });
    return found;
  }

  /** The first batch with maxTimestamp >= timestampMs and lastOffset >= minOffset, or null. */
  async findBatchByTimestamp(timestampMs: number, minOffset: number): Promise<BatchHeader | null> {
    if (this.maxTimestamp < timestampMs) return null;
    const entry = this.timeIndex.lookup(timestampMs);
    const fromOffset = Math.max(entry ? entry.offset : this.baseOffset, minOffset);
    const start = this.offsetIndex.lookup(fromOffset);
    let found: BatchHeader | null = null;
    await this.scanHeaders(start.position, this.size, (h) => {
      if (h.maxTimestamp < timestampMs || h.lastOffset < minOffset) return true;
      found = { ...h };
      return false;
    });
    return found;
  }

  // ---- load, recovery, truncation ----

  /**
   * Clean-load check: the last offset-index entry must point at a batch with that base offset, and
   * the batches after it must parse to the end of the file. Sets nextOffset and the max timestamp.
   */
  private async loadTail(): Promise<boolean> {
    const last = this.offsetIndex.lastEntry();
    const fromTime = this.timeIndex.lastEntry();
    if (fromTime) {
      this.maxTimestamp = fromTime.timestamp;
      this.offsetOfMaxTimestamp = fromTime.offset;
    }
    let ok = true;
    let first = true;
    let end = last.position;
    try {
      await this.scanHeaders(last.position, this.size, (h) => {
        if (first && this.offsetIndex.entries > 0 && h.baseOffset !== last.offset) {
          ok = false;
          return false;
        }
        if (h.baseOffset < this.nextOffset) {
          ok = false;
          return false;
        }
        first = false;
        this.trackBatch(h.baseOffset, h.lastOffset, h.maxTimestamp, h.position, h.size);
        end = h.position + h.size;
        return true;
      });
    } catch {
      ok = false;
    }
    // The scan re-adds index entries only past the loaded ones; drop any it duplicated.
    if (!ok || end !== this.size) {
      this.resetState();
      return false;
    }
    return true;
  }

  private resetState(): void {
    this.offsetIndex.reset();
    this.timeIndex.reset();
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = -1;
    this.bytesSinceLastIndexEntry = 0;
  }

  /**
   * Validate every batch from the start (sane header, within the file, magic 2, CRC-32C,
   * increasing offsets), rebuild both indexes, and truncate at the first invalid batch.
   * Returns the number of bytes truncated.
   */
  async recover(): Promise<number> {
    this.resetState();
    const fileSize = this.size;
    let buf = Buffer.allocUnsafe(Math.min(RECOVERY_CHUNK_BYTES, Math.max(fileSize, RECORD_BATCH_HEADER_SIZE)));
    let bufPos = 0;
    let bufLen = 0;
    let pos = 0;
    for (;;) {
      if (pos + RECORD_BATCH_HEADER_SIZE > fileSize) break;
      if (pos + RECORD_BATCH_HEADER_SIZE > bufPos + bufLen) {
        bufPos = pos;
        bufLen = await readAt(this.fd, buf, 0, Math.min(buf.length, fileSize - pos), pos);
        if (bufLen < RECORD_BATCH_HEADER_SIZE) break;
      }
      let at = pos - bufPos;
      const batchLength = buf.readInt32BE(at + BATCH_LENGTH_OFFSET);
      const size = batchLength + LOG_OVERHEAD;
      if (batchLength < MIN_BATCH_LENGTH || pos + size > fileSize || buf[at + MAGIC_OFFSET] !== MAGIC_V2) break;
      if (pos + size > bufPos + bufLen) {
        if (size > buf.length) buf = Buffer.allocUnsafe(size);
        bufPos = pos;
        bufLen = await readAt(this.fd, buf, 0, Math.min(buf.length, fileSize - pos), pos);
        if (bufLen < size) break;
        at = 0;
      }
      const crc = buf.readUInt32BE(at + CRC_OFFSET);
      if (crc32c(buf.subarray(at + CRC_START, at + size)) !== crc) break;
      const baseOffset = readInt64(buf, at + BASE_OFFSET_OFFSET);
      const lastOffsetDelta = buf.readInt32BE(at + LAST_OFFSET_DELTA_OFFSET);
      const lastOffset = baseOffset + lastOffsetDelta;
      if (baseOffset < this.nextOffset || lastOffsetDelta < 0 || lastOffset - this.baseOffset > MAX_RELATIVE_OFFSET) break;
      this.trackBatch(baseOffset, lastOffset, readInt64(buf, at + MAX_TIMESTAMP_OFFSET), pos, size);
      pos += size;
    }
    const truncated = fileSize - pos;
    if (truncated > 0) {
      await ftruncateFile(this.fd, pos);
      await fsyncFile(this.fd);
    }
    this.size = pos;
    this.writeEnd = pos;
    return truncated;
  }

  /**
   * Remove every batch with lastOffset >= offset (a batch containing `offset` goes entirely, as in
   * Kafka). Returns the bytes removed. Only called with no write in flight.
   */
  async truncateTo(offset: number): Promise<number> {
    assert(this.writeEnd === this.size, 'truncate with a write in flight');
    if (offset >= this.nextOffset) return 0;
    const batch = await this.findBatch(offset);
    const position = batch ? batch.position : this.size;
    const removed = this.size - position;
    await ftruncateFile(this.fd, position);
    this.size = position;
    this.writeEnd = position;
    this.recent.length = 0;
    this.recentHead = 0;
    this.offsetIndex.truncateToPosition(position);
    // Recompute the in-memory tail from the last surviving index entry.
    const keep = this.offsetIndex.lookup(offset);
    this.timeIndex.truncateToOffset(keep.offset);
    const fromTime = this.timeIndex.lastEntry();
    this.maxTimestamp = fromTime ? fromTime.timestamp : -1;
    this.offsetOfMaxTimestamp = fromTime ? fromTime.offset : -1;
    this.nextOffset = keep.offset;
    this.bytesSinceLastIndexEntry = 0;
    const tail: BatchHeader[] = [];
    await this.scanHeaders(keep.position, this.size, (h) => {
      tail.push({ ...h });
      return true;
    });
    // Re-track the tail batches without re-adding the surviving index entry itself.
    const savedEntries = this.offsetIndex.entries;
    for (const h of tail) {
      if (h.position === keep.position && savedEntries > 0) {
        if (h.maxTimestamp > this.maxTimestamp) {
          this.maxTimestamp = h.maxTimestamp;
          this.offsetOfMaxTimestamp = h.baseOffset;
        }
        this.bytesSinceLastIndexEntry = h.size;
        this.nextOffset = h.lastOffset + 1;
        continue;
      }
      this.trackBatch(h.baseOffset, h.lastOffset, h.maxTimestamp, h.position, h.size);
    }
    if (this.size === 0) this.firstAppendMs = -1;
    await this.offsetIndex.persist();
    await this.timeIndex.persist();
    return removed;
  }
}
