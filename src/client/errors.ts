/**
 * The client's errors. Every error the client throws or rejects with is a `StrandError` with one
 * stable `code` (a string; for broker errors, Kafka's name from the error table, e.g.
 * `NOT_LEADER_OR_FOLLOWER`) and flags that say what to do about it:
 *
 * - `retriable`: the same request may succeed if sent again (Kafka's RetriableException set,
 *   plus network errors and timeouts);
 * - `needsMetadataRefresh`: the client's view of leaders or topics is stale;
 * - `needsRejoin`: a consumer group member must join the group again.
 *
 * Kafka errors found in a response are `KafkaError`s (with the numeric `errorCode`); errors of
 * the connection are `ConnectionError`s; the client's own limits are `StrandError`s with codes
 * such as `BUFFER_FULL`, `REQUEST_TIMEOUT`, `DELIVERY_TIMEOUT`, `CLIENT_CLOSED`.
 */
import { ErrorCode, RETRIABLE_CODES, errorName } from '../protocol/errors.js';

export interface StrandErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  needsMetadataRefresh?: boolean;
  needsRejoin?: boolean;
}

export class StrandError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly needsMetadataRefresh: boolean;
  readonly needsRejoin: boolean;

  constructor(code: string, message: string, options: StrandErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'StrandError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.needsMetadataRefresh = options.needsMetadataRefresh ?? false;
    this.needsRejoin = options.needsRejoin ?? false;
  }
}

/** Codes after which the client's metadata (leaders, topics, coordinator) is stale. */
const STALE_METADATA = new Set<number>([
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.BROKER_NOT_AVAILABLE,
  ErrorCode.REPLICA_NOT_AVAILABLE,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.NOT_CONTROLLER,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.KAFKA_STORAGE_ERROR,
  ErrorCode.UNKNOWN_TOPIC_ID,
  ErrorCode.INCONSISTENT_TOPIC_ID,
]);

/** Codes after which a group member must rejoin its group. */
const REJOIN = new Set<number>([
  ErrorCode.ILLEGAL_GENERATION,
  ErrorCode.UNKNOWN_MEMBER_ID,
  ErrorCode.REBALANCE_IN_PROGRESS,
  ErrorCode.MEMBER_ID_REQUIRED,
  ErrorCode.FENCED_INSTANCE_ID,
]);

/** An error code returned by a broker in a response. */
export class KafkaError extends StrandError {
  readonly errorCode: number;

  constructor(errorCode: number, context?: string, brokerMessage?: string | null) {
    const name = errorName(errorCode);
    const detail = brokerMessage ? `: ${brokerMessage}` : '';
    super(name, `${name}${context ? ` (${context})` : ''}${detail}`, {
      retriable: RETRIABLE_CODES.has(errorCode) || errorCode === ErrorCode.REBALANCE_IN_PROGRESS,
      needsMetadataRefresh: STALE_METADATA.has(errorCode),
      needsRejoin: REJOIN.has(errorCode),
    });
    this.name = 'KafkaError';
    this.errorCode = errorCode;
  }
}

/** The connection to a broker failed or closed; retriable, and leaders may have moved. */
export class ConnectionError extends StrandError {
  constructor(message: string, cause?: unknown) {
    super('NETWORK_EXCEPTION', message, { cause, retriable: true, needsMetadataRefresh: true });
    this.name = 'ConnectionError';
  }
}

/** Throws a KafkaError for a non-zero code. */
export function throwIfError(errorCode: number, context?: string, message?: string | null): void {
  if (errorCode !== 0) throw new KafkaError(errorCode, context, message);
}

export function isRetriable(e: unknown): boolean {
  return e instanceof StrandError && e.retriable;
}

export { ErrorCode };
