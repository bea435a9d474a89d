/**
 * Small checkpoint files.
 *
 * `<partitionDir>/log-start-offset` — the partition's log start offset, written atomically (temp
 * file, fsync, rename, fsync dir) whenever DeleteRecords or retention moves it. Text, two lines:
 *   0            format version
 *   <offset>     decimal log start offset
 *
 * `<partitionDir>/recovery-point` — Kafka's recovery point for the rolled segments: every segment
 * that ends at or below this offset is fsynced. A rolled segment is fsynced in the background
 * (appends go on into the new segment meanwhile), and this is written, atomically, when that
 * fsync is done; a truncation below it lowers it first. Same two-line format. Missing: no
 * background fsync has finished in this directory yet (at most one runs at a time, so only the
 * second-to-last segment can be unsynced).
 *
 * `<dataDir>/replication-offset-checkpoint` — every partition's high watermark (Kafka's file and
 * format), written atomically by LogManager every replica.high.watermark.checkpoint.interval.ms
 * when something changed, and on clean shutdown. Text:
 *   0                              format version
 *   <n>                            number of entries
 *   <topic> <partition> <offset>   n lines
 * A replicated partition's high watermark starts from it after a restart (PartitionLog); a
 * missing entry means the log start offset (the leader tells a follower the rest).
 *
 * `<dataDir>/.strand-clean-shutdown` — empty marker written LAST by LogManager.shutdown() after
 * every log is flushed and closed; removed (and the removal fsynced) by startup(). If it is absent
 * at startup, the previous run crashed and every partition recovers its tail.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { StorageError } from './errors.js';
import { fsyncDir, writeFileAtomic } from './file-io.js';

export const LOG_START_OFFSET_FILE = 'log-start-offset';
export const CLEAN_SHUTDOWN_FILE = '.strand-clean-shutdown';
const CHECKPOINT_VERSION = 0;

export async function readLogStartOffset(dir: string): Promise<number | null> {
  return readOffsetFile(dir, LOG_START_OFFSET_FILE);
}

async function readOffsetFile(dir: string, name: string): Promise<number | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(join(dir, name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const lines = text.split('\n');
  const version = Number(lines[0]);
  const offset = Number(lines[1]);
  if (version !== CHECKPOINT_VERSION || !Number.isSafeInteger(offset) || offset < 0) {
    throw new StorageError('CORRUPT_CHECKPOINT', `bad ${name} in ${dir}: ${JSON.stringify(text)}`);
  }
  return offset;
}

export async function writeLogStartOffset(dir: string, offset: number): Promise<void> {
  await writeFileAtomic(join(dir, LOG_START_OFFSET_FILE), `${CHECKPOINT_VERSION}\n${offset}\n`);
}

export const RECOVERY_POINT_FILE = 'recovery-point';

export async function readRecoveryPoint(dir: string): Promise<number | null> {
  return readOffsetFile(dir, RECOVERY_POINT_FILE);
}

export async function writeRecoveryPoint(dir: string, offset: number): Promise<void> {
  await writeFileAtomic(join(dir, RECOVERY_POINT_FILE), `${CHECKPOINT_VERSION}\n${offset}\n`);
}

export async function writeCleanShutdownMarker(dataDir: string): Promise<void> {
  await writeFileAtomic(join(dataDir, CLEAN_SHUTDOWN_FILE), '');
}

/** True if the marker was there; removes it durably either way. */
export async function consumeCleanShutdownMarker(dataDir: string): Promise<boolean> {
  const path = join(dataDir, CLEAN_SHUTDOWN_FILE);
  const present = fs.existsSync(path);
  if (present) {
    await fs.promises.rm(path, { force: true });
    await fsyncDir(dataDir);
  }
  return present;
}

export const REPLICATION_OFFSET_CHECKPOINT_FILE = 'replication-offset-checkpoint';

/** Key `<topic>-<partition>` → high watermark; empty when the file is missing. Throws on a corrupt file. */
export async function readHighWatermarkCheckpoint(dataDir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = await fs.promises.readFile(join(dataDir, REPLICATION_OFFSET_CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const n = Number(lines[1]);
  const bad = (): never => {
    throw new StorageError('CORRUPT_CHECKPOINT', `bad ${REPLICATION_OFFSET_CHECKPOINT_FILE} in ${dataDir}`);
  };
  if (Number(lines[0]) !== CHECKPOINT_VERSION || lines[0] === '' || !Number.isSafeInteger(n) || n < 0 || lines.length !== n + 2) bad();
  for (let i = 2; i < lines.length; i++) {
    const m = /^(\S+) (\d+) (\d+)$/.exec(lines[i]!);
    if (!m) return bad();
    const offset = Number(m[3]);
    if (!Number.isSafeInteger(offset)) bad();
    out.set(`${m[1]}-${m[2]}`, offset);
  }
  return out;
}

export async function writeHighWatermarkCheckpoint(dataDir: string, entries: ReadonlyArray<{ topic: string; partition: number; highWatermark: number }>): Promise<void> {
  let text = `${CHECKPOINT_VERSION}\n${entries.length}\n`;
  for (const e of entries) text += `${e.topic} ${e.partition} ${e.highWatermark}\n`;
  await writeFileAtomic(join(dataDir, REPLICATION_OFFSET_CHECKPOINT_FILE), text);
}
