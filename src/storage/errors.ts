/**
 * Operating errors of the storage layer: typed, with one stable `code` and whether retrying may help.
 * Programmer errors are `assert` failures (node:assert), which stay on in production.
 */

export class StorageError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, opts: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'StorageError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
}

/** A fetch or DeleteRecords offset outside what the log holds (Kafka's OFFSET_OUT_OF_RANGE). */
export class OffsetOutOfRangeError extends StorageError {
  constructor(message: string) {
    super('OFFSET_OUT_OF_RANGE', message);
    this.name = 'OffsetOutOfRangeError';
  }
}

/** The log was closed (or deleted) while an operation was queued or requested. */
export class LogClosedError extends StorageError {
  constructor(message: string) {
    super('LOG_CLOSED', message, { retriable: true });
    this.name = 'LogClosedError';
  }
}

/** Bytes on disk that do not parse as expected outside recovery (recovery truncates instead). */
export class CorruptSegmentError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super('CORRUPT_SEGMENT', message, { cause });
    this.name = 'CorruptSegmentError';
  }
}
