/**
 * LogManager: owns the partition directories under one data dir (Kafka's LogManager).
 *
 * Layout: `<dataDir>/<topic>-<partition>/` per partition log (see log.ts) and the clean-shutdown
 * marker `<dataDir>/.strand-clean-shutdown` (see checkpoint.ts). Other entries in the data dir
 * (the broker's `__meta`, ...) are ignored; logs are opened only through getOrCreateLog.
 *
 * Background tasks (timers unref'd, one run at a time):
 *  - retention every retentionCheckIntervalMs (log.retention.check.interval.ms);
 *  - flush.ms every flushSchedulerIntervalMs (log.flush.scheduler.interval.ms), if given;
 *  - the log cleaner (log-cleaner.ts) over the logs with cleanup.policy containing `compact`,
 *    when `cleaner.enabled` (log.cleaner.enable); stopped before the logs close;
 *  - the high watermarks to `replication-offset-checkpoint` (checkpoint.ts) every
 *    highWatermarkCheckpointIntervalMs (replica.high.watermark.checkpoint.interval.ms) when one
 *    changed, and at shutdown after the logs closed; read at startup and handed to each log opened.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import {
  consumeCleanShutdownMarker,
  readHighWatermarkCheckpoint,
  writeCleanShutdownMarker,
  writeHighWatermarkCheckpoint,
} from './checkpoint.js';
import { StorageError } from './errors.js';
import { DEFAULT_CLEANER_CONFIG, LogCleaner, type CleanerConfig, type CleanerFaultHook } from './log-cleaner.js';
import { PartitionLog, type LogConfig } from './log.js';
import { noopLogger, type Logger } from './logger.js';

const PARTITION_DIR = /^(.+)-(\d+)$/;

export interface LogManagerOptions {
  logger?: Logger;
  clock?: () => number;
  retentionCheckIntervalMs: number;
  flushSchedulerIntervalMs?: number;
  /** replica.high.watermark.checkpoint.interval.ms (Kafka's default 5000) */
  highWatermarkCheckpointIntervalMs?: number;
  /** log.cleaner.* (default: Kafka's defaults, enabled) */
  cleaner?: Partial<CleanerConfig>;
  /** Test seam of the cleaner: called at named points of a pass. */
  cleanerFault?: CleanerFaultHook;
}

export class LogManager {
  private readonly logs = new Map<string, PartitionLog>();
  private readonly opening = new Map<string, Promise<PartitionLog>>();
  private readonly logger: Logger;
  private readonly clock: () => number;
  private cleanShutdown = false;
  private started = false;
  private stopped = false;
  private retentionTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private retentionRun: Promise<void> | null = null;
  private flushRun: Promise<void> | null = null;
  private hwTimer: NodeJS.Timeout | null = null;
  private hwRun: Promise<void> | null = null;
  /** High watermarks of `replication-offset-checkpoint` as read at startup and last written. */
  private checkpointedHw = new Map<string, number>();
  /** Compaction of the `cleanup.policy=compact` logs; its dirtyRatio() and lastRun() are for the CLI and console. */
  readonly cleaner: LogCleaner;

  constructor(
    readonly dataDir: string,
    private readonly opts: LogManagerOptions,
  ) {
    this.logger = opts.logger ?? noopLogger;
    this.clock = opts.clock ?? Date.now;
    this.cleaner = new LogCleaner({
      config: { ...DEFAULT_CLEANER_CONFIG, ...opts.cleaner },
      logs: () => this.logs.values(),
      clock: this.clock,
      logger: this.logger,
      ...(opts.cleanerFault ? { fault: opts.cleanerFault } : {}),
    });
  }

  /** Create the data dir, read and remove the clean-shutdown marker, start background tasks. */
  async startup(): Promise<{ cleanShutdown: boolean }> {
    await fs.promises.mkdir(this.dataDir, { recursive: true });
    this.cleanShutdown = await consumeCleanShutdownMarker(this.dataDir);
    try {
      this.checkpointedHw = await readHighWatermarkCheckpoint(this.dataDir);
    } catch (err) {
      // Without it replicated partitions start from their log start offset and learn the rest.
      this.logger.warn('ignoring an unreadable high watermark checkpoint', { dataDir: this.dataDir, error: String(err) });
    }
    this.started = true;
    this.hwTimer = setInterval(() => void this.checkpointHighWatermarks().catch(() => {}), this.opts.highWatermarkCheckpointIntervalMs ?? 5000);
    this.hwTimer.unref();
    this.retentionTimer = setInterval(() => void this.runRetention(), this.opts.retentionCheckIntervalMs);
    this.retentionTimer.unref();
    if (this.opts.flushSchedulerIntervalMs !== undefined) {
      this.flushTimer = setInterval(() => void this.runFlush(), this.opts.flushSchedulerIntervalMs);
      this.flushTimer.unref();
    }
    this.cleaner.start();
    this.logger.info('log manager started', { dataDir: this.dataDir, cleanShutdown: this.cleanShutdown });
    return { cleanShutdown: this.cleanShutdown };
  }

  dirFor(topic: string, partition: number): string {
    return join(this.dataDir, `${topic}-${partition}`);
  }

  async getOrCreateLog(topic: string, partition: number, config: LogConfig): Promise<PartitionLog> {
    if (!this.started || this.stopped) throw new StorageError('LOG_MANAGER_NOT_RUNNING', 'log manager is not running');
    const k = `${topic}-${partition}`;
    const existing = this.logs.get(k);
    if (existing) return existing;
    let pending = this.opening.get(k);
    if (!pending) {
      const hw = this.checkpointedHw.get(k);
      pending = PartitionLog.open(this.dirFor(topic, partition), topic, partition, config, {
        cleanShutdown: this.cleanShutdown,
        clock: this.clock,
        logger: this.logger,
        ...(hw !== undefined ? { checkpointedHighWatermark: hw } : {}),
      }).then(
        (log) => {
          this.opening.delete(k);
          this.logs.set(k, log);
          return log;
        },
        (err) => {
          this.opening.delete(k);
          throw err;
        },
      );
      this.opening.set(k, pending);
    }
    return pending;
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(`${topic}-${partition}`);
  }

  async deleteLog(topic: string, partition: number): Promise<void> {
    const k = `${topic}-${partition}`;
    const pending = this.opening.get(k);
    if (pending) await pending.catch(() => {});
    const log = this.logs.get(k);
    this.logs.delete(k);
    this.checkpointedHw.delete(k);
    if (log) await log.delete();
    else await fs.promises.rm(this.dirFor(topic, partition), { recursive: true, force: true });
  }

  allLogs(): PartitionLog[] {
    return [...this.logs.values()];
  }

  /** Directories named `<topic>-<digits>` in the data dir, open or not. */
  async listPartitionDirs(): Promise<{ topic: string; partition: number; dir: string }[]> {
    const out: { topic: string; partition: number; dir: string }[] = [];
    for (const entry of await fs.promises.readdir(this.dataDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const m = PARTITION_DIR.exec(entry.name);
      if (!m) continue;
      out.push({ topic: m[1]!, partition: Number(m[2]), dir: join(this.dataDir, entry.name) });
    }
    return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /** One retention pass over every log (also what the timer runs). Returns segments deleted. */
  async runRetention(): Promise<number> {
    if (this.retentionRun) {
      await this.retentionRun;
      return 0;
    }
    let deleted = 0;
    this.retentionRun = (async () => {
      const now = this.clock();
      for (const log of this.logs.values()) {
        try {
          deleted += await log.applyRetention(now);
        } catch (err) {
          if (!this.stopped) this.logger.warn('retention failed', { dir: log.dir, error: String(err) });
        }
      }
    })().finally(() => {
      this.retentionRun = null;
    });
    await this.retentionRun;
    return deleted;
  }

  /** flush.ms pass: flush every log whose oldest unflushed append is at least flushMs old. */
  async runFlush(): Promise<void> {
    if (this.flushRun) return this.flushRun;
    this.flushRun = (async () => {
      const now = this.clock();
      await Promise.all(
        [...this.logs.values()].map((log) =>
          log.flushIfDue(now).catch((err) => {
            if (!this.stopped) this.logger.warn('scheduled flush failed', { dir: log.dir, error: String(err) });
          }),
        ),
      );
    })().finally(() => {
      this.flushRun = null;
    });
    return this.flushRun;
  }

  /**
   * Writes `replication-offset-checkpoint` if a high watermark changed since the last write: the
   * open logs' high watermarks, plus the entries read at startup of logs not opened since (their
   * directories still exist).
   */
  async checkpointHighWatermarks(): Promise<void> {
    if (this.hwRun) return this.hwRun;
    this.hwRun = this.writeHighWatermarks(this.currentHighWatermarks()).finally(() => {
      this.hwRun = null;
    });
    return this.hwRun;
  }

  private currentHighWatermarks(): Map<string, number> {
    const next = new Map(this.checkpointedHw);
    for (const [k, log] of this.logs) next.set(k, log.highWatermark);
    return next;
  }

  private async writeHighWatermarks(next: Map<string, number>): Promise<void> {
    let changed = next.size !== this.checkpointedHw.size;
    for (const [k, hw] of next) if (this.checkpointedHw.get(k) !== hw) changed = true;
    if (!changed) return;
    const entries: { topic: string; partition: number; highWatermark: number }[] = [];
    for (const [k, hw] of next) {
      const m = PARTITION_DIR.exec(k);
      if (!m) continue;
      if (!this.logs.has(k) && !fs.existsSync(join(this.dataDir, k))) {
        next.delete(k);
        continue;
      }
      entries.push({ topic: m[1]!, partition: Number(m[2]), highWatermark: hw });
    }
    try {
      await writeHighWatermarkCheckpoint(this.dataDir, entries);
      this.checkpointedHw = next;
    } catch (err) {
      this.logger.warn('writing the high watermark checkpoint failed', { dataDir: this.dataDir, error: String(err) });
      throw err;
    }
  }

  /** Stop timers, close every log (fsync), then write the clean-shutdown marker last. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.hwTimer) clearInterval(this.hwTimer);
    await this.cleaner.stop();
    await this.hwRun?.catch(() => {});
    await Promise.allSettled([...this.opening.values()]);
    await this.retentionRun?.catch(() => {});
    await this.flushRun?.catch(() => {});
    const results = await Promise.allSettled([...this.logs.values()].map((log) => log.close()));
    // After the closes: nothing moves a high watermark any more.
    const hws = this.currentHighWatermarks();
    if (this.started) await this.writeHighWatermarks(hws).catch(() => {});
    this.logs.clear();
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0) {
      // Without every log closed cleanly the next start must recover: no marker.
      this.logger.error('logs failed to close; not marking a clean shutdown', { failed: failed.length });
      return;
    }
    if (this.started) await writeCleanShutdownMarker(this.dataDir);
    this.logger.info('log manager shut down cleanly', { dataDir: this.dataDir });
  }
}
