/** The storage layer's public surface. */
export * from './batch-layout.js';
export * from './errors.js';
export type { Logger } from './logger.js';
export { DEFAULT_LOG_CONFIG, PartitionLog, type AppendResult, type LogConfig, type OpenOptions } from './log.js';
export { LogManager, type LogManagerOptions } from './log-manager.js';
export { LeaderEpochFileCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, type EpochEntry } from './leader-epoch-cache.js';
