/**
 * LogLoader: turn a partition directory into a list of open segments, recovering after a crash.
 *
 * Steps:
 *  0. Finish or discard an interrupted log cleaner swap (log-cleaner.ts, recoverCleanerSwap): with
 *     its manifest on disk the new segment set is completed, without it the `.cleaned` / `.swap`
 *     files are deleted, so the old segment set stays.
 *  1. Delete leftovers: `*.tmp` (a checkpoint write cut short), `*.deleted`, and `.index` /
 *     `.timeindex` files whose `.log` is gone.
 *  2. Open each `.log` in base-offset order. Indexes are loaded and sanity-checked (see
 *     OffsetIndex.load, TimeIndex.load, LogSegment.loadTail); a missing or inconsistent index is
 *     rebuilt by scanning its log.
 *  3. After an unclean shutdown the segments that may hold unsynced data are fully validated:
 *     every batch's header, CRC-32C and offsets; the file is truncated at the first invalid or
 *     torn batch. Those are the last segment (and the one before it, if the last is empty) and
 *     every segment ending above the `recovery-point` checkpoint (checkpoint.ts): a rolled segment
 *     is fsynced in the background, and the checkpoint moves past it when that is done. Without
 *     the checkpoint, the second-to-last segment is validated too (only one such fsync runs at a
 *     time); with an unreadable one, every segment. Segments below it are not rescanned, as in
 *     Kafka.
 *  4. If recovery cut a segment that is not the last, the segments after it are deleted (their
 *     offsets would no longer follow on), as Kafka does.
 *  5. The validated segments are fsynced: a crash of the process leaves their data in the page
 *     cache, not necessarily on disk, and the log opens with its recovery point at its end (the
 *     acks=all high watermark counts on it). Kafka instead keeps its recovery point at the
 *     checkpoint until the next flush; its high watermark does not depend on flushes.
 *  6. The log start offset comes from the `log-start-offset` checkpoint, clamped to
 *     [first segment base offset, log end offset].
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { readLogStartOffset, readRecoveryPoint } from './checkpoint.js';
import { recoverCleanerSwap } from './log-cleaner.js';
import type { Logger } from './logger.js';
import { INDEX_SUFFIX, LOG_SUFFIX, LogSegment, TIME_INDEX_SUFFIX, type SegmentIndexConfig } from './log-segment.js';

const SEGMENT_FILE = /^(\d{20})\.(log|index|timeindex)$/;

export interface LoadedLog {
  segments: LogSegment[];
  logStartOffset: number;
  recoveredBytes: number;
}

export async function loadLog(
  dir: string,
  config: SegmentIndexConfig,
  opts: { cleanShutdown: boolean; nowMs: number; logger: Logger },
): Promise<LoadedLog> {
  await recoverCleanerSwap(dir, opts.logger);
  const names = await fs.promises.readdir(dir);
  const logBases = new Set<number>();
  const others: { name: string; base: number }[] = [];
  for (const name of names) {
    if (name.endsWith('.tmp') || name.endsWith('.deleted')) {
      await fs.promises.rm(join(dir, name), { force: true });
      continue;
    }
    const m = SEGMENT_FILE.exec(name);
    if (!m) continue;
    const base = Number(m[1]);
    if (m[2] === 'log') logBases.add(base);
    else others.push({ name, base });
  }
  for (const o of others) {
    if (!logBases.has(o.base)) {
      opts.logger.warn('deleting orphan index file', { dir, file: o.name });
      await fs.promises.rm(join(dir, o.name), { force: true });
    }
  }
  const bases = [...logBases].sort((a, b) => a - b);
  const segments: LogSegment[] = [];
  /** The segments validated here: what they hold may be in the page cache only. */
  const validated: LogSegment[] = [];
  let recoveredBytes = 0;
  const recoveryPoint = opts.cleanShutdown ? null : await readRecoveryPoint(dir).catch((err: unknown) => {
    // Unreadable: trust no rolled segment (-1: every segment ends above it).
    opts.logger.warn('unreadable recovery-point checkpoint; validating every segment', { dir, error: String(err) });
    return -1;
  });
  try {
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const isLast = i === bases.length - 1;
      let recover = !opts.cleanShutdown && isLast;
      if (!opts.cleanShutdown && !isLast) {
        // A rolled segment whose background fsync may not have finished (see the recovery point).
        recover = recoveryPoint === null ? i === bases.length - 2 : bases[i + 1]! > recoveryPoint;
      }
      if (!recover && !opts.cleanShutdown && i === bases.length - 2) {
        // Also recover the second-to-last segment when the last one is empty.
        const lastSize = (await fs.promises.stat(join(dir, String(bases[i + 1]).padStart(20, '0') + LOG_SUFFIX))).size;
        recover = lastSize === 0;
      }
      const { segment, truncatedBytes, rebuiltIndexes } = await LogSegment.open(dir, base, config, { recover, nowMs: opts.nowMs });
      segments.push(segment);
      if (recover) validated.push(segment);
      if (rebuiltIndexes && !recover) opts.logger.warn('rebuilt indexes of segment', { dir, baseOffset: base });
      if (truncatedBytes > 0) {
        recoveredBytes += truncatedBytes;
        opts.logger.warn('truncated invalid tail of segment', { dir, baseOffset: base, truncatedBytes, nextOffset: segment.nextOffset });
        if (!isLast) {
          for (const later of bases.slice(i + 1)) {
            opts.logger.warn('deleting segment after a truncated one', { dir, baseOffset: later });
            for (const suffix of [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]) {
              await fs.promises.rm(join(dir, String(later).padStart(20, '0') + suffix), { force: true });
            }
          }
          break;
        }
      }
      const prev = segments[segments.length - 2];
      if (prev && prev.nextOffset > segment.baseOffset) {
        throw new Error(`segment ${base} overlaps the previous one ending at ${prev.nextOffset} in ${dir}`);
      }
    }
    // The log opens with its recovery point at its end (log.ts): after a crash of the process (not
    // of the machine) the validated segments may hold data the kernel has not written back yet,
    // and so may a truncation just made. fsync them before anything counts them as on disk.
    for (const segment of validated) await segment.fsync();
    const checkpoint = await readLogStartOffset(dir);
    if (segments.length === 0) {
      const base = checkpoint ?? 0;
      segments.push(await LogSegment.create(dir, base, config, opts.nowMs));
    }
    const first = segments[0]!;
    const logEndOffset = segments[segments.length - 1]!.nextOffset;
    const logStartOffset = Math.min(Math.max(checkpoint ?? first.baseOffset, first.baseOffset), logEndOffset);
    return { segments, logStartOffset, recoveredBytes };
  } catch (err) {
    await Promise.all(segments.map((s) => s.close().catch(() => {})));
    throw err;
  }
}
