/**
 * Small checkpoint files.
 *
 * `<partitionDir>/log-start-offset` — the partition's log start offset, written atomically (temp
 * file, fsync, rename, fsync dir) whenever DeleteRecords or retention moves it. Text, two lines:
 *   0            format version
 *   <offset>     decimal log start offset
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
  let text: string;
  try {
    text = await fs.promises.readFile(join(dir, LOG_START_OFFSET_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const lines = text.split('\n');
  const version = Number(lines[0]);
  const offset = Number(lines[1]);
  if (version !== CHECKPOINT_VERSION || !Number.isSafeInteger(offset) || offset < 0) {
    throw new StorageError('CORRUPT_CHECKPOINT', `bad ${LOG_START_OFFSET_FILE} in ${dir}: ${JSON.stringify(text)}`);
  }
  return offset;
}

export async function writeLogStartOffset(dir: string, offset: number): Promise<void> {
  await writeFileAtomic(join(dir, LOG_START_OFFSET_FILE), `${CHECKPOINT_VERSION}\n${offset}\n`);
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
