/**
 * LogCleaner: log compaction for `cleanup.policy=compact` (and `compact,delete`), Kafka's
 * LogCleaner / Cleaner / LogCleanerManager in one file; the SkimpyOffsetMap is offset-map.ts.
 *
 * Behaviour:
 *  - LogManager runs one cleaner task. Each pass picks the filthiest eligible log, cleans it, and
 *    looks again at once; with nothing to clean it sleeps `log.cleaner.backoff.ms`. Work is done in
 *    short synchronous slices (one batch at a time; the event loop gets a turn at least every
 *    SLICE_MS) and I/O is throttled to `log.cleaner.io.max.bytes.per.second`.
 *  - Only closed segments are cleaned, and only below the first uncleanable offset:
 *    min(active segment base, last stable offset, base of the first segment younger than
 *    min.compaction.lag.ms). The *dirty* section runs from the cleaner checkpoint to there; the
 *    dirty ratio is dirty bytes / (clean + dirty bytes). A log is eligible when the ratio reaches
 *    min.cleanable.dirty.ratio, when a dirty segment began more than max.compaction.lag.ms ago, or
 *    when a delete horizon stamped by an earlier pass has passed.
 *  - Offset map (offset-map.ts): key → last offset over the dirty section, bounded by
 *    `log.cleaner.dedupe.buffer.size` at Kafka's 24 bytes an entry (load factor 0.9), in typed
 *    arrays. Keys up to 16 bytes are used as they are, longer ones by their MD5 (as Kafka's
 *    SkimpyOffsetMap). When the map fills, the pass ends at the last whole segment that fitted
 *    (at least one segment is always taken). Records of aborted transactions do not enter the map.
 *  - Every segment from the start of the log to the end of the mapped section is rewritten,
 *    grouped so each group of consecutive segments fits one segment (segment.bytes, 32-bit
 *    relative offsets). A record is kept when its key's last offset is its own (or its key is not
 *    in the map: it lies in the already-clean section). Keyless records are dropped (they cannot
 *    be produced to a compacted topic). Offsets are kept: batches keep their base offset and
 *    lastOffsetDelta (so sequence numbers and a consumer's next offset stay right); gaps are
 *    normal. A batch whose records all stay is copied byte for byte; one that lost records is
 *    re-encoded with its own codec, producer id, epoch, base sequence, transactional/control bits
 *    and timestamp type; a batch that lost all of them goes.
 *  - Tombstones (null value) and the markers of transactions with no data left are kept for
 *    delete.retention.ms after the pass that first sees them: that pass stamps the batch with
 *    `hasDeleteHorizonMs` (attribute bit 6, KIP-534; baseTimestamp then holds the horizon and record
 *    timestamp deltas are relative to it, so record timestamps read the same). A later pass after
 *    the horizon drops them. The earliest horizon left in the log is checkpointed, so the log is
 *    cleaned again when it passes even if nothing new is dirty.
 *  - Records of aborted transactions (the partition's aborted-transaction list, loaded from the
 *    `.txnindex` files) are dropped. The cleaned segments get no `.txnindex`: a marker in them has
 *    no aborted data left to describe.
 *  - Swap, crash-safe (see completeSwap): cleaned files are written as `<base>.log.cleaned`,
 *    `.index.cleaned`, `.timeindex.cleaned` and fsynced; then the manifest `cleaner-swap` (old and
 *    new base offsets) is written atomically — the commit point; then `.cleaned` → `.swap`, the old
 *    segments' files are deleted, `.swap` → final names, and the manifest is removed. Log loading
 *    (log-loader.ts) runs the same completion when it finds the manifest, and deletes stray
 *    `.cleaned` / `.swap` files when it does not: after a kill -9 at any point the log is either
 *    the old segment set or the new one. One manifest covers a whole pass, so a pass is all or
 *    nothing.
 *
 * `cleaner-offset-checkpoint` (per partition directory, written atomically after a pass), text:
 *   0                        format version
 *   <offset>                 the log is clean below this offset
 *   <ms>                     earliest delete horizon left in the log, -1 when none
 *
 * `cleaner-swap` (per partition directory, only while a swap is in progress), text:
 *   0                        format version
 *   <bases...>               base offsets of the segments being replaced, space separated
 *   <bases...>               base offsets of the segments replacing them
 *
 * Not done: the last batch of each producer is not kept for producer state, as Kafka keeps it
 * (Strand rebuilds producer state from the snapshot written at each roll, above the cleaned range).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import {
  Attr,
  compressionOf,
  crcOf,
  decodeRecordBatch,
  encodeRecordBatch,
  type Record as BatchRecord,
  type RecordBatchHeader,
} from '../protocol/records.js';
import { BATCH_LENGTH_OFFSET, LOG_OVERHEAD, MIN_BATCH_LENGTH, RECORD_BATCH_HEADER_SIZE, readInt64, writeInt64 } from './batch-layout.js';
import { CorruptSegmentError } from './errors.js';
import { closeFile, fsyncDir, fsyncFile, openFile, readAt, writeFileAtomic, writevFully } from './file-io.js';
import type { PartitionLog } from './log.js';
import { INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, segmentFileName, type LogSegment } from './log-segment.js';
import { noopLogger, type Logger } from './logger.js';
import { OffsetMap } from './offset-map.js';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';
import { TXN_INDEX_SUFFIX } from './producer-state.js';

export const CLEANER_CHECKPOINT_FILE = 'cleaner-offset-checkpoint';
export const SWAP_MANIFEST_FILE = 'cleaner-swap';
export const CLEANED_SUFFIX = '.cleaned';
export const SWAP_SUFFIX = '.swap';
const CHECKPOINT_VERSION = 0;
/** Longest synchronous stretch of cleaning work before the event loop gets a turn. */
const SLICE_MS = 5;
const READ_CHUNK_BYTES = 1 << 20;
const WRITE_BUFFER_BYTES = 1 << 20;
const MAX_RELATIVE_OFFSET = 0x7fffffff;
/** Files of a segment the swap moves, the log last (its rename completes a segment). */
const SWAPPED_SUFFIXES = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] as const;

export interface CleanerConfig {
  /** log.cleaner.enable */
  enabled: boolean;
  /** log.cleaner.backoff.ms: sleep when no log needs cleaning */
  backoffMs: number;
  /** log.cleaner.dedupe.buffer.size: bytes of offset map (24 bytes an entry) */
  dedupeBufferSize: number;
  /** log.cleaner.io.max.bytes.per.second (read + written); Infinity for no limit */
  ioMaxBytesPerSecond: number;
}

export const DEFAULT_CLEANER_CONFIG: Readonly<CleanerConfig> = Object.freeze({
  enabled: true,
  backoffMs: 15000,
  dedupeBufferSize: 134217728,
  ioMaxBytesPerSecond: Number.POSITIVE_INFINITY,
});

/** What one cleaning pass did (Kafka's CleanerStats), for the CLI and console. */
export interface CleanerStats {
  topic: string;
  partition: number;
  startMs: number;
  endMs: number;
  /** The log is clean below this offset after the pass. */
  cleanedUpTo: number;
  dirtyRatioBefore: number;
  bytesRead: number;
  bytesWritten: number;
  recordsRead: number;
  recordsKept: number;
  tombstonesRemoved: number;
  abortedRecordsRemoved: number;
  markersRemoved: number;
  segmentsBefore: number;
  segmentsAfter: number;
  offsetMapEntries: number;
  /** bytesRead / wall time, MB/s */
  throughputMBps: number;
}

/** A stop or a changed segment list ended a pass early; nothing was swapped. */
class CleanerAborted extends Error {}

/** Called at named points of a pass and its swap; a test can throw or kill the process there. */
export type CleanerFaultHook = (point: string) => void;

// ------------------------------------------------------------------------------- checkpoint

export interface CleanerCheckpoint {
  cleanedUpTo: number;
  /** Earliest delete horizon still stamped in the log, -1 when none. */
  nextDeleteHorizonMs: number;
}

export async function readCleanerCheckpoint(dir: string): Promise<CleanerCheckpoint | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(join(dir, CLEANER_CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const [v, o, h] = text.split('\n');
  const cleanedUpTo = Number(o);
  const nextDeleteHorizonMs = Number(h);
  // A checkpoint is only a hint: a bad one means "nothing is known to be clean".
  if (Number(v) !== CHECKPOINT_VERSION || !Number.isSafeInteger(cleanedUpTo) || cleanedUpTo < 0 || !Number.isSafeInteger(nextDeleteHorizonMs)) return null;
  return { cleanedUpTo, nextDeleteHorizonMs };
}

export async function writeCleanerCheckpoint(dir: string, c: CleanerCheckpoint): Promise<void> {
  await writeFileAtomic(join(dir, CLEANER_CHECKPOINT_FILE), `${CHECKPOINT_VERSION}\n${c.cleanedUpTo}\n${c.nextDeleteHorizonMs}\n`);
}

// ------------------------------------------------------------------------------- swap

export interface SwapManifest {
  replaced: number[];
  swapped: number[];
}

function encodeManifest(m: SwapManifest): string {
  return `${CHECKPOINT_VERSION}\n${m.replaced.join(' ')}\n${m.swapped.join(' ')}\n`;
}

function parseManifest(text: string, dir: string): SwapManifest {
  const [v, r, s] = text.split('\n');
  const bases = (line: string | undefined): number[] => (line ?? '').split(' ').filter((x) => x !== '').map(Number);
  const m = { replaced: bases(r), swapped: bases(s) };
  if (Number(v) !== CHECKPOINT_VERSION || m.replaced.length === 0 || m.swapped.length === 0 || [...m.replaced, ...m.swapped].some((b) => !Number.isSafeInteger(b) || b < 0)) {
    throw new CorruptSegmentError(`bad ${SWAP_MANIFEST_FILE} in ${dir}: ${JSON.stringify(text)}`);
  }
  return m;
}

const exists = (path: string): boolean => fs.existsSync(path);

/**
 * Finishes a committed swap (the manifest is on disk): every step is idempotent, so it is both the
 * normal path and the recovery of an interrupted one.
 *  1. `.cleaned` → `.swap` for every new file still named `.cleaned`;
 *  2. the old segments' files are deleted, except a final name a new file already took (a name
 *     with a `.swap` waiting is deleted; the rename in 3 would replace it anyway);
 *  3. `.swap` → final name, indexes first and the log last;
 *  4. the manifest goes.
 */
export async function completeSwap(dir: string, m: SwapManifest, fault?: CleanerFaultHook): Promise<void> {
  const path = (base: number, suffix: string): string => join(dir, segmentFileName(base, suffix));
  for (const base of m.swapped) {
    for (const suffix of SWAPPED_SUFFIXES) {
      const cleaned = path(base, suffix + CLEANED_SUFFIX);
      if (exists(cleaned)) {
        await fs.promises.rename(cleaned, path(base, suffix + SWAP_SUFFIX));
        fault?.('swap:renamed-cleaned');
      }
    }
  }
  await fsyncDir(dir);
  const swapped = new Set(m.swapped);
  for (const base of m.replaced) {
    // A new segment's final name is the new file once its swap has been renamed; otherwise old.
    const keep = swapped.has(base) && !exists(path(base, LOG_SUFFIX + SWAP_SUFFIX));
    if (keep) continue;
    for (const suffix of [...SWAPPED_SUFFIXES, TXN_INDEX_SUFFIX]) {
      if (swapped.has(base) && suffix !== TXN_INDEX_SUFFIX && suffix !== LOG_SUFFIX && !exists(path(base, suffix + SWAP_SUFFIX))) continue;
      await fs.promises.rm(path(base, suffix), { force: true });
      fault?.('swap:deleted-old');
    }
  }
  await fsyncDir(dir);
  for (const base of m.swapped) {
    for (const suffix of SWAPPED_SUFFIXES) {
      const swap = path(base, suffix + SWAP_SUFFIX);
      if (exists(swap)) {
        await fs.promises.rename(swap, path(base, suffix));
        fault?.('swap:renamed-swap');
      }
    }
  }
  await fsyncDir(dir);
  await fs.promises.rm(join(dir, SWAP_MANIFEST_FILE), { force: true });
  await fsyncDir(dir);
}

/**
 * Called by the log loader before it opens segments: completes a committed swap, and deletes
 * `.cleaned` / `.swap` files left by a pass that never committed. Returns what it did.
 */
export async function recoverCleanerSwap(dir: string, logger: Logger = noopLogger): Promise<'none' | 'completed' | 'discarded'> {
  let outcome: 'none' | 'completed' | 'discarded' = 'none';
  const manifestPath = join(dir, SWAP_MANIFEST_FILE);
  if (exists(manifestPath)) {
    const m = parseManifest(await fs.promises.readFile(manifestPath, 'utf8'), dir);
    logger.warn('completing an interrupted log cleaner swap', { dir, replaced: m.replaced, swapped: m.swapped });
    await completeSwap(dir, m);
    outcome = 'completed';
  }
  for (const name of await fs.promises.readdir(dir)) {
    if (name.endsWith(CLEANED_SUFFIX) || name.endsWith(SWAP_SUFFIX)) {
      await fs.promises.rm(join(dir, name), { force: true });
      if (outcome === 'none') outcome = 'discarded';
    }
  }
  if (outcome === 'discarded') logger.warn('discarded the files of an uncommitted log cleaner pass', { dir });
  return outcome;
}

// ------------------------------------------------------------------------------- I/O helpers

class Throttler {
  private windowStart = performance.now();
  private bytes = 0;

  constructor(private readonly bytesPerSecond: number) {}

  async consumed(n: number): Promise<void> {
    if (!Number.isFinite(this.bytesPerSecond) || this.bytesPerSecond <= 0) return;
    this.bytes += n;
    const elapsedMs = performance.now() - this.windowStart;
    const wantMs = (this.bytes / this.bytesPerSecond) * 1000;
    if (wantMs > elapsedMs + 1) await sleep(wantMs - elapsedMs);
    if (elapsedMs > 1000) {
      this.windowStart = performance.now();
      this.bytes = 0;
    }
  }
}

/** Visits every whole batch of a segment (up to its size at the start), in chunks. */
async function forEachBatch(seg: LogSegment, visit: (batch: Buffer) => Promise<void>, onRead: (n: number) => Promise<void>): Promise<void> {
  const limit = seg.size;
  let buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(limit, RECORD_BATCH_HEADER_SIZE)));
  let pos = 0;
  while (pos + RECORD_BATCH_HEADER_SIZE <= limit) {
    const n = await seg.readBytes(buf, 0, Math.min(buf.length, limit - pos), pos);
    await onRead(n);
    let at = 0;
    while (at + RECORD_BATCH_HEADER_SIZE <= n) {
      const batchLength = buf.readInt32BE(at + BATCH_LENGTH_OFFSET);
      if (batchLength < MIN_BATCH_LENGTH) throw new CorruptSegmentError(`bad batch at ${seg.logPath}:${pos + at}`);
      const size = batchLength + LOG_OVERHEAD;
      if (at + size > n) break;
      await visit(buf.subarray(at, at + size));
      at += size;
    }
    if (at === 0) {
      // One batch bigger than the buffer: grow and read it whole.
      const size = buf.readInt32BE(BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
      if (pos + size > limit) throw new CorruptSegmentError(`batch at ${seg.logPath}:${pos} runs past the end`);
      buf = Buffer.allocUnsafe(size);
      continue;
    }
    pos += at;
  }
}

/** Writes one cleaned segment: `<base>.log.cleaned` and its two indexes, the way LogSegment builds them. */
class CleanedSegmentWriter {
  readonly logPath: string;
  private fd = -1;
  private position = 0;
  private readonly offsetIndex: OffsetIndex;
  private readonly timeIndex: TimeIndex;
  private bytesSinceLastIndexEntry = 0;
  private maxTimestamp = -1;
  private offsetOfMaxTimestamp = -1;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytesWritten = 0;

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
    private readonly indexIntervalBytes: number,
    segmentIndexBytes: number,
  ) {
    this.logPath = join(dir, segmentFileName(baseOffset, LOG_SUFFIX + CLEANED_SUFFIX));
    this.offsetIndex = new OffsetIndex(join(dir, segmentFileName(baseOffset, INDEX_SUFFIX + CLEANED_SUFFIX)), baseOffset, segmentIndexBytes);
    this.timeIndex = new TimeIndex(join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX + CLEANED_SUFFIX)), baseOffset, segmentIndexBytes);
  }

  async open(): Promise<void> {
    this.fd = await openFile(this.logPath, 'w');
    // The index files always exist, even empty, so a swap never leaves an old index under a new log.
    for (const p of [this.offsetIndex.path, this.timeIndex.path]) await closeFile(await openFile(p, 'w'));
  }

  async append(batch: Buffer, onWrite: (n: number) => Promise<void>): Promise<void> {
    const baseOffset = readInt64(batch, 0);
    const lastOffset = baseOffset + batch.readInt32BE(23);
    const maxTimestamp = readInt64(batch, 35);
    assert(lastOffset - this.baseOffset <= MAX_RELATIVE_OFFSET && baseOffset >= this.baseOffset);
    if (maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = maxTimestamp;
      this.offsetOfMaxTimestamp = baseOffset;
    }
    if (this.bytesSinceLastIndexEntry > this.indexIntervalBytes) {
      this.offsetIndex.append(baseOffset, this.position);
      if (this.maxTimestamp >= 0) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += batch.length;
    this.position += batch.length;
    // The batch may be a view into a read buffer that is about to be reused.
    this.pending.push(Buffer.from(batch));
    this.pendingBytes += batch.length;
    if (this.pendingBytes >= WRITE_BUFFER_BYTES) await this.flushPending(onWrite);
  }

  private async flushPending(onWrite: (n: number) => Promise<void>): Promise<void> {
    if (this.pendingBytes === 0) return;
    const bufs = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    await writevFully(this.fd, bufs, this.position - bytes);
    this.bytesWritten += bytes;
    await onWrite(bytes);
  }

  /** Write what is buffered, fsync the log and persist both indexes. */
  async finish(onWrite: (n: number) => Promise<void>): Promise<void> {
    await this.flushPending(onWrite);
    if (this.maxTimestamp >= 0) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    await fsyncFile(this.fd);
    await closeFile(this.fd);
    this.fd = -1;
    await this.offsetIndex.persist();
    await this.timeIndex.persist();
  }

  async discard(): Promise<void> {
    if (this.fd >= 0) await closeFile(this.fd).catch(() => {});
    this.fd = -1;
    for (const p of [this.logPath, this.offsetIndex.path, this.timeIndex.path]) await fs.promises.rm(p, { force: true });
  }
}

// ------------------------------------------------------------------------------- batch filtering

/** Re-encodes a batch with only `kept` records, everything else as it was; `horizonMs` ≥ 0 stamps the delete horizon. */
export function rewriteBatch(h: RecordBatchHeader, kept: readonly BatchRecord[], horizonMs: number): Buffer {
  const logAppendTime = (h.attributes & Attr.timestampType) !== 0;
  const out = encodeRecordBatch({
    // Raw timestamps (baseTimestamp + delta) keep their value whatever the new base is.
    records: kept.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: h.baseTimestamp + r.timestampDelta, offsetDelta: r.offsetDelta })),
    baseOffset: h.baseOffset,
    compression: compressionOf(h.attributes),
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    transactional: (h.attributes & Attr.transactional) !== 0,
    control: (h.attributes & Attr.control) !== 0,
    partitionLeaderEpoch: h.partitionLeaderEpoch,
    timestampType: logAppendTime ? 1 : 0,
    baseTimestamp: horizonMs >= 0 ? horizonMs : h.baseTimestamp,
  });
  // The batch keeps its offset span, so a consumer's next offset and the producer's sequence range stay right.
  out.writeInt32BE(h.lastOffsetDelta, 23);
  if (horizonMs >= 0) out.writeInt16BE(out.readInt16BE(21) | Attr.deleteHorizon, 21);
  if (logAppendTime) writeInt64(out, 35, h.maxTimestamp);
  out.writeUInt32BE(crcOf(out), 17);
  return out;
}

interface PassCounters {
  bytesRead: number;
  bytesWritten: number;
  recordsRead: number;
  recordsKept: number;
  tombstonesRemoved: number;
  abortedRecordsRemoved: number;
  markersRemoved: number;
  /** Earliest delete horizon left in the rewritten segments, -1 when none. */
  nextDeleteHorizonMs: number;
}

/**
 * Decides what of one batch survives the pass. Returns the bytes to write (the batch itself, a
 * rewrite, or null to drop it).
 */
class BatchFilter {
  /** Producers whose open transaction (in offset order) has kept data so far. */
  private readonly txnHasData = new Map<number, boolean>();

  constructor(
    private readonly map: OffsetMap,
    private readonly aborted: ReadonlyMap<number, ReadonlyArray<{ first: number; last: number }>>,
    private readonly nowMs: number,
    private readonly deleteRetentionMs: number,
    private readonly counters: PassCounters,
  ) {}

  private noteHorizon(ms: number): void {
    if (this.counters.nextDeleteHorizonMs < 0 || ms < this.counters.nextDeleteHorizonMs) this.counters.nextDeleteHorizonMs = ms;
  }

  filter(raw: Buffer): Buffer | null {
    const { header: h, records } = decodeRecordBatch(raw, { verifyCrc: false });
    this.counters.recordsRead += records.length;
    const hasHorizon = (h.attributes & Attr.deleteHorizon) !== 0;
    const horizonPassed = hasHorizon && this.nowMs >= h.baseTimestamp;
    if ((h.attributes & Attr.control) !== 0) {
      // A marker. Its transaction is empty when none of its data was kept (an aborted one always is).
      const empty = this.txnHasData.get(h.producerId) !== true;
      this.txnHasData.delete(h.producerId);
      if (!empty) return this.keep(raw, records.length);
      if (horizonPassed) {
        this.counters.markersRemoved++;
        return null;
      }
      if (hasHorizon) {
        this.noteHorizon(h.baseTimestamp);
        return this.keep(raw, records.length);
      }
      const horizon = this.nowMs + this.deleteRetentionMs;
      this.noteHorizon(horizon);
      this.counters.recordsKept += records.length;
      return rewriteBatch(h, records, horizon);
    }
    const transactional = (h.attributes & Attr.transactional) !== 0;
    if (transactional && this.isAborted(h.producerId, h.baseOffset)) {
      this.counters.abortedRecordsRemoved += records.length;
      return null;
    }
    let stamp = false;
    const kept: BatchRecord[] = [];
    for (const r of records) {
      if (r.key === null) continue;
      const latest = this.map.get(r.key);
      if (latest !== undefined && h.baseOffset + r.offsetDelta < latest) continue;
      if (r.value === null) {
        if (horizonPassed) {
          this.counters.tombstonesRemoved++;
          continue;
        }
        if (!hasHorizon) stamp = true;
      }
      kept.push(r);
    }
    if (kept.length > 0 && transactional) this.txnHasData.set(h.producerId, true);
    if (kept.length === 0) return null;
    let horizon = -1;
    if (hasHorizon && kept.some((r) => r.value === null)) horizon = h.baseTimestamp;
    else if (stamp) horizon = this.nowMs + this.deleteRetentionMs;
    if (horizon >= 0) this.noteHorizon(horizon);
    if (kept.length === records.length && !stamp) return this.keep(raw, 0, kept.length);
    this.counters.recordsKept += kept.length;
    // A batch with no tombstone left drops its horizon (its baseTimestamp becomes a timestamp again).
    return rewriteBatch(h, kept, horizon);
  }

  private keep(raw: Buffer, controlRecords: number, dataRecords = 0): Buffer {
    this.counters.recordsKept += controlRecords + dataRecords;
    return raw;
  }

  private isAborted(producerId: number, offset: number): boolean {
    const ranges = this.aborted.get(producerId);
    if (ranges === undefined) return false;
    for (const r of ranges) if (offset >= r.first && offset <= r.last) return true;
    return false;
  }
}

// ------------------------------------------------------------------------------- the cleaner

interface LogCleanerState {
  checkpoint: CleanerCheckpoint | null;
  loaded: boolean;
  lastRun: CleanerStats | null;
  lastError: string | null;
}

/** What a log's cleanable section looks like now. */
export interface CleanableRange {
  /** Closed segments wholly below the first uncleanable offset. */
  segments: LogSegment[];
  firstDirtyOffset: number;
  firstUncleanableOffset: number;
  cleanBytes: number;
  dirtyBytes: number;
  dirtyRatio: number;
  /** A dirty segment is older than max.compaction.lag.ms. */
  maxLagDue: boolean;
  /** A delete horizon stamped earlier has passed. */
  horizonDue: boolean;
}

export interface LogCleanerOptions {
  config: CleanerConfig;
  /** The logs to consider (LogManager's open logs). */
  logs: () => Iterable<PartitionLog>;
  clock?: () => number;
  logger?: Logger;
  /** Test seam: called at named points of a pass. */
  fault?: CleanerFaultHook;
}

export class LogCleaner {
  private readonly states = new WeakMap<PartitionLog, LogCleanerState>();
  private readonly clock: () => number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  /** Passes completed since start (tests wait on it). */
  passes = 0;
  /** Bytes read and written by all passes since start. */
  totalBytesRead = 0;
  totalBytesWritten = 0;
  /** The last pass completed over any log. */
  lastPass: CleanerStats | null = null;

  constructor(private readonly opts: LogCleanerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.logger = opts.logger ?? noopLogger;
  }

  get config(): CleanerConfig {
    return this.opts.config;
  }

  start(): void {
    if (!this.opts.config.enabled || this.stopped) return;
    this.schedule(this.opts.config.backoffMs);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    let cleaned = false;
    try {
      cleaned = (await this.cleanFilthiest()) !== null;
    } catch (err) {
      if (!this.stopped) this.logger.warn('log cleaner pass failed', { error: String(err) });
    }
    // More may be dirty: look again at once; otherwise back off.
    this.schedule(cleaned ? 0 : this.opts.config.backoffMs);
  }

  /** Stop the task and wait for a pass in progress to end (it aborts at the next batch). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  private state(log: PartitionLog): LogCleanerState {
    let s = this.states.get(log);
    if (!s) {
      s = { checkpoint: null, loaded: false, lastRun: null, lastError: null };
      this.states.set(log, s);
    }
    return s;
  }

  private async loadState(log: PartitionLog): Promise<LogCleanerState> {
    const s = this.state(log);
    if (!s.loaded) {
      s.checkpoint = await readCleanerCheckpoint(log.dir).catch(() => null);
      s.loaded = true;
    }
    return s;
  }

  /** The last pass over `log`, if any since the broker started. */
  lastRun(log: PartitionLog): CleanerStats | null {
    return this.states.get(log)?.lastRun ?? null;
  }

  /** The error of the last failed pass over `log`, if the last pass failed. */
  lastError(log: PartitionLog): string | null {
    return this.states.get(log)?.lastError ?? null;
  }

  /** The cleaner offset checkpoint of `log` (loaded from disk on first use). */
  async checkpointOf(log: PartitionLog): Promise<CleanerCheckpoint | null> {
    return (await this.loadState(log)).checkpoint;
  }

  /** Dirty bytes / (clean + dirty bytes) of the cleanable section, as the cleaner sees it now (0 for a log that is not compacted). */
  dirtyRatio(log: PartitionLog): number {
    if (!log.config.cleanupCompact) return 0;
    return this.cleanableRange(log, this.clock()).dirtyRatio;
  }

  /** Kafka's LogCleanerManager.cleanableOffsets and dirty-ratio computation. */
  cleanableRange(log: PartitionLog, nowMs: number): CleanableRange {
    const c = log.config;
    const all = log.segmentsForCleaner();
    const closed = all.slice(0, -1);
    let firstUncleanable = Math.min(all[all.length - 1]!.baseOffset, log.lastStableOffset);
    if (c.minCompactionLagMs > 0) {
      const young = closed.find((s) => s.largestTimestamp > nowMs - c.minCompactionLagMs);
      if (young) firstUncleanable = Math.min(firstUncleanable, young.baseOffset);
    }
    const segments: LogSegment[] = [];
    for (let i = 0; i < closed.length; i++) if (all[i + 1]!.baseOffset <= firstUncleanable) segments.push(closed[i]!);
    const cp = this.states.get(log)?.checkpoint ?? null;
    let firstDirty = cp?.cleanedUpTo ?? log.logStartOffset;
    if (firstDirty < log.logStartOffset || firstDirty > log.logEndOffset) firstDirty = log.logStartOffset;
    let cleanBytes = 0;
    let dirtyBytes = 0;
    let maxLagDue = false;
    segments.forEach((s, i) => {
      const next = all[i + 1]!;
      if (next.baseOffset <= firstDirty) cleanBytes += s.size;
      else {
        dirtyBytes += s.size;
        if (s.firstAppendMs >= 0 && nowMs - s.firstAppendMs > c.maxCompactionLagMs) maxLagDue = true;
      }
    });
    const total = cleanBytes + dirtyBytes;
    const horizon = cp?.nextDeleteHorizonMs ?? -1;
    return {
      segments,
      firstDirtyOffset: firstDirty,
      firstUncleanableOffset: firstUncleanable,
      cleanBytes,
      dirtyBytes,
      dirtyRatio: total === 0 ? 0 : dirtyBytes / total,
      maxLagDue: maxLagDue && dirtyBytes > 0,
      horizonDue: horizon >= 0 && nowMs >= horizon && segments.length > 0,
    };
  }

  private eligible(log: PartitionLog, r: CleanableRange): boolean {
    if (!log.config.cleanupCompact || r.segments.length === 0) return false;
    return (r.dirtyBytes > 0 && (r.dirtyRatio >= log.config.minCleanableDirtyRatio || r.maxLagDue)) || r.horizonDue;
  }

  /** One pass over the filthiest eligible log (Kafka's grabFilthiestCompactedLog); null when none qualifies. */
  async cleanFilthiest(): Promise<CleanerStats | null> {
    const now = this.clock();
    let best: { log: PartitionLog; ratio: number } | null = null;
    for (const log of this.opts.logs()) {
      if (!log.config.cleanupCompact) continue;
      await this.loadState(log);
      const r = this.cleanableRange(log, now);
      if (!this.eligible(log, r)) continue;
      const ratio = r.horizonDue || r.maxLagDue ? Math.max(r.dirtyRatio, 1) : r.dirtyRatio;
      if (best === null || ratio > best.ratio) best = { log, ratio };
    }
    if (best === null) return null;
    return this.clean(best.log);
  }

  /**
   * Cleans `log` if it is eligible (or whatever is cleanable, with `force`); null when there was
   * nothing to do or the pass was abandoned (segment list changed, log closed, cleaner stopped).
   */
  async clean(log: PartitionLog, opts: { force?: boolean } = {}): Promise<CleanerStats | null> {
    while (this.running) await this.running.catch(() => {});
    if (this.stopped) return null;
    const run = this.cleanLog(log, opts.force === true);
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = null;
    }
  }

  private async cleanLog(log: PartitionLog, force: boolean): Promise<CleanerStats | null> {
    const state = await this.loadState(log);
    const nowMs = this.clock();
    const range = this.cleanableRange(log, nowMs);
    if (range.segments.length === 0 || !log.config.cleanupCompact) return null;
    if (!force && !this.eligible(log, range)) return null;
    const startMs = Date.now();
    const counters: PassCounters = {
      bytesRead: 0,
      bytesWritten: 0,
      recordsRead: 0,
      recordsKept: 0,
      tombstonesRemoved: 0,
      abortedRecordsRemoved: 0,
      markersRemoved: 0,
      nextDeleteHorizonMs: -1,
    };
    const throttler = new Throttler(this.opts.config.ioMaxBytesPerSecond);
    const onRead = async (n: number): Promise<void> => {
      counters.bytesRead += n;
      await throttler.consumed(n);
    };
    const onWrite = async (n: number): Promise<void> => {
      counters.bytesWritten += n;
      await throttler.consumed(n);
    };
    let sliceStart = performance.now();
    const pace = async (): Promise<void> => {
      if (this.stopped) throw new CleanerAborted('cleaner stopped');
      if (performance.now() - sliceStart >= SLICE_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    };
    const all = log.segmentsForCleaner();
    const nextBaseOf = (seg: LogSegment): number => all[all.indexOf(seg) + 1]!.baseOffset;
    const acquired: LogSegment[] = [];
    const writers: CleanedSegmentWriter[] = [];
    try {
      for (const s of range.segments) {
        if (!s.acquire()) throw new CleanerAborted('segment closed');
        acquired.push(s);
      }
      // Aborted transactions, by producer.
      const aborted = new Map<number, Array<{ first: number; last: number }>>();
      for (const a of log.abortedTransactions(0, range.firstUncleanableOffset)) {
        let list = aborted.get(a.producerId);
        if (!list) aborted.set(a.producerId, (list = []));
        list.push({ first: a.firstOffset, last: a.lastOffset });
      }
      const isAborted = (pid: number, offset: number): boolean => (aborted.get(pid) ?? []).some((r) => offset >= r.first && offset <= r.last);

      // 1. The offset map over the dirty section, whole segments while they fit.
      const map = new OffsetMap(this.opts.config.dedupeBufferSize);
      let endOffset = range.firstDirtyOffset;
      const dirty = range.segments.filter((s) => nextBaseOf(s) > range.firstDirtyOffset);
      for (const seg of dirty) {
        let full = false;
        const taken = endOffset !== range.firstDirtyOffset;
        await forEachBatch(
          seg,
          async (raw) => {
            await pace();
            if (full) return;
            const { header: h, records } = decodeRecordBatch(raw, { verifyCrc: false });
            if ((h.attributes & Attr.control) !== 0) return;
            if ((h.attributes & Attr.transactional) !== 0 && isAborted(h.producerId, h.baseOffset)) return;
            for (const r of records) {
              if (r.key === null) continue;
              if (!map.put(r.key, h.baseOffset + r.offsetDelta)) {
                if (taken) {
                  full = true;
                  return;
                }
                // Not even one segment fits: take it anyway rather than never clean this log.
                this.logger.warn('log cleaner offset map overflow within one segment', { dir: log.dir, baseOffset: seg.baseOffset, capacity: map.capacity });
              }
            }
          },
          onRead,
        );
        if (full) break;
        endOffset = nextBaseOf(seg);
      }
      if (dirty.length === 0) endOffset = range.segments.length > 0 ? nextBaseOf(range.segments[range.segments.length - 1]!) : endOffset;
      this.opts.fault?.('pass:offset-map-built');

      // 2. Rewrite every segment below endOffset, grouped to fit one segment each.
      const toClean = range.segments.filter((s) => nextBaseOf(s) <= endOffset);
      if (toClean.length === 0) return null;
      const groups: LogSegment[][] = [];
      for (const seg of toClean) {
        const g = groups[groups.length - 1];
        const bytes = g ? g.reduce((n, s) => n + s.size, 0) : 0;
        if (g && bytes + seg.size <= log.config.segmentBytes && nextBaseOf(seg) - 1 - g[0]!.baseOffset <= MAX_RELATIVE_OFFSET) g.push(seg);
        else groups.push([seg]);
      }
      const filter = new BatchFilter(map, aborted, nowMs, log.config.deleteRetentionMs, counters);
      for (const group of groups) {
        const w = new CleanedSegmentWriter(log.dir, group[0]!.baseOffset, log.config.indexIntervalBytes, log.config.segmentIndexBytes);
        writers.push(w);
        await w.open();
        for (const seg of group) {
          await forEachBatch(
            seg,
            async (raw) => {
              await pace();
              const out = filter.filter(raw);
              if (out !== null) await w.append(out, onWrite);
            },
            onRead,
          );
        }
        await w.finish(onWrite);
        this.opts.fault?.('pass:segment-written');
      }
      await fsyncDir(log.dir);
      this.opts.fault?.('pass:cleaned-files-written');

      // 3. The swap, as one exclusive task of the log.
      const manifest: SwapManifest = { replaced: toClean.map((s) => s.baseOffset), swapped: groups.map((g) => g[0]!.baseOffset) };
      const swapped = await log.replaceSegments(toClean, async () => {
        await writeFileAtomic(join(log.dir, SWAP_MANIFEST_FILE), encodeManifest(manifest));
        this.opts.fault?.('swap:committed');
        await completeSwap(log.dir, manifest, this.opts.fault);
        return manifest.swapped;
      });
      if (!swapped) throw new CleanerAborted('segment list changed during the pass');
      writers.length = 0;
      this.opts.fault?.('pass:swapped');
      const checkpoint = { cleanedUpTo: endOffset, nextDeleteHorizonMs: counters.nextDeleteHorizonMs };
      await writeCleanerCheckpoint(log.dir, checkpoint);
      state.checkpoint = checkpoint;
      const endMs = Date.now();
      const stats: CleanerStats = {
        topic: log.topic,
        partition: log.partition,
        startMs,
        endMs,
        cleanedUpTo: endOffset,
        dirtyRatioBefore: range.dirtyRatio,
        bytesRead: counters.bytesRead,
        bytesWritten: counters.bytesWritten,
        recordsRead: counters.recordsRead,
        recordsKept: counters.recordsKept,
        tombstonesRemoved: counters.tombstonesRemoved,
        abortedRecordsRemoved: counters.abortedRecordsRemoved,
        markersRemoved: counters.markersRemoved,
        segmentsBefore: toClean.length,
        segmentsAfter: groups.length,
        offsetMapEntries: map.size,
        throughputMBps: counters.bytesRead / 1048576 / Math.max(0.001, (endMs - startMs) / 1000),
      };
      state.lastRun = stats;
      state.lastError = null;
      this.passes++;
      this.totalBytesRead += stats.bytesRead;
      this.totalBytesWritten += stats.bytesWritten;
      this.lastPass = stats;
      this.logger.info('cleaned log', { ...stats });
      return stats;
    } catch (err) {
      for (const w of writers) await w.discard().catch(() => {});
      if (err instanceof CleanerAborted) {
        this.logger.debug('log cleaner pass abandoned', { dir: log.dir, reason: err.message });
        return null;
      }
      state.lastError = String(err);
      throw err;
    } finally {
      for (const s of acquired) s.release();
    }
  }
}
