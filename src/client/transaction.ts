/**
 * Transactions in the client: the handle `producer.transaction()` returns, and the requests to
 * the transaction and group coordinators with their retry and error rules.
 *
 * A transaction's life (Kafka's TransactionManager, pre-KIP-890):
 *
 *   ongoing ──commit()──▶ committing ──EndTxn(commit)──▶ committed
 *      │   ╲                  │ (a send failed)
 *      │    ╲──abort()──▶ aborting ──EndTxn(abort)──▶ aborted
 *      ▼                      ▲
 *   abortable ───abort()──────┘          (any state) ──fencing──▶ the producer is fatal
 *
 * - `ongoing`: sends and `sendOffsets` join the transaction. Each partition is added to the
 *   transaction with AddPartitionsToTxn before its first batch goes out; a group with
 *   AddOffsetsToTxn before its TxnOffsetCommit.
 * - `abortable`: something in the transaction failed (a batch, an AddPartitionsToTxn, a
 *   TxnOffsetCommit refused for a stale generation, ...). Its outcome cannot be a commit; sends,
 *   `sendOffsets` and `commit()` reject with TRANSACTION_ABORTABLE; `abort()` ends it.
 * - Fatal (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING,
 *   INVALID_TXN_STATE, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, ...): another producer with the same
 *   transactional id took over (or the coordinator timed the transaction out and bumped the
 *   epoch). Every later call rejects with that error; close the producer.
 *
 * Coordinator requests retry CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS,
 * NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE and network errors with exponential backoff (from
 * 20 ms for CONCURRENT_TRANSACTIONS, which clears as soon as the previous EndTxn has written its
 * markers), finding the coordinator again (FindCoordinator key type 1 for the transactional id,
 * 0 for a group) when it moved or its connection failed, until `timeoutMs`.
 */
import { ErrorCode } from '../protocol/errors.js';
import { backoffMs, sleep, type Cluster } from './cluster.js';
import { channels, type Connection } from './connection.js';
import { KafkaError, StrandError } from './errors.js';
import type { ProducerRecord, RecordMetadata } from './producer.js';

/** A consumer's place in its group, sent with transactional offset commits (KIP-447 fencing). */
export interface ConsumerGroupMetadata {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

/** Anything that can say where it stands in its group: a `Consumer`, or the metadata itself. */
export interface HasGroupMetadata {
  groupMetadata(): ConsumerGroupMetadata;
}

export interface SendOffsetsOptions {
  /**
   * The consumer whose input the offsets belong to: its group id, generation and member id go
   * with the commit, so a member that lost its partitions in a rebalance cannot commit them
   * (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID make the transaction abortable).
   */
  consumer?: HasGroupMetadata;
  /** The group, without a consumer (no generation check). */
  consumerGroupId?: string;
  /** The next offset to consume per partition (Kafka's convention: last handled + 1). */
  offsets: Array<{ topic: string; partition: number; offset: number; metadata?: string | null }>;
}

export type TransactionState = 'ongoing' | 'abortable' | 'committing' | 'aborting' | 'committed' | 'aborted';

/** What the producer does for a transaction handle (closures over its private state). */
export interface TransactionOps<K, V> {
  send(record: ProducerRecord<K, V>): Promise<RecordMetadata>;
  sendBatch(records: ProducerRecord<K, V>[]): Promise<RecordMetadata[]>;
  sendOffsets(opts: SendOffsetsOptions): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  state(): TransactionState;
}

/**
 * One transaction of a transactional producer. `send` / `sendBatch` have the producer's shapes
 * (and while the transaction is open, the producer's own `send` joins it too); `sendOffsets`
 * commits consumer offsets as part of it; `commit()` first waits for every record sent in it to
 * be acknowledged; `abort()` drops what was not sent yet and tells the coordinator to write
 * ABORT markers. Either ends it: the next `producer.transaction()` starts another.
 */
export class Transaction<K = Buffer | string | null, V = Buffer | string | null> {
  constructor(private readonly ops: TransactionOps<K, V>) {}

  /** Where the transaction is: 'ongoing', 'abortable' (only abort() is allowed), 'committing', 'aborting', 'committed', 'aborted'. */
  get state(): TransactionState {
    return this.ops.state();
  }

  /** True until commit() or abort() has ended the transaction. */
  get isActive(): boolean {
    const s = this.ops.state();
    return s !== 'committed' && s !== 'aborted';
  }

  send(record: ProducerRecord<K, V>): Promise<RecordMetadata> {
    return this.ops.send(record);
  }

  sendBatch(records: ProducerRecord<K, V>[]): Promise<RecordMetadata[]> {
    return this.ops.sendBatch(records);
  }

  /** Commits consumer offsets in this transaction (AddOffsetsToTxn, then TxnOffsetCommit); visible to the group only if it commits. */
  sendOffsets(opts: SendOffsetsOptions): Promise<void> {
    return this.ops.sendOffsets(opts);
  }

  commit(): Promise<void> {
    return this.ops.commit();
  }

  abort(): Promise<void> {
    return this.ops.abort();
  }
}

/** Errors after which the producer can do nothing more (Kafka: fatal, not abortable). */
const FATAL = new Set<number>([
  ErrorCode.PRODUCER_FENCED,
  ErrorCode.INVALID_PRODUCER_EPOCH,
  ErrorCode.INVALID_PRODUCER_ID_MAPPING,
  ErrorCode.INVALID_TXN_STATE,
  ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
  ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
  ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
  ErrorCode.INVALID_TRANSACTION_TIMEOUT,
]);

/** Whether an error ends the producer (fencing and its kin) rather than just the transaction. */
export function isFatalTxnError(e: unknown): boolean {
  return e instanceof KafkaError && FATAL.has(e.errorCode);
}

/** Codes a coordinator request is retried on (after finding the coordinator again for the first three). */
const REDISCOVER = new Set<number>([ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NETWORK_EXCEPTION]);
const RETRY = new Set<number>([...REDISCOVER, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.REQUEST_TIMED_OUT, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);

export interface CoordinatorRequestOptions<T> {
  cluster: Cluster;
  /** The transactional id (keyType 1) or group id (keyType 0) that names the coordinator. */
  key: string;
  keyType: 0 | 1;
  what: string;
  /** Give up (with the last error) after this long. */
  timeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  send(conn: Connection): Promise<T>;
  /** The response's error code that matters (0 = success). */
  errorOf(r: T): number;
  /** Stop retrying (e.g. the producer is closing). */
  cancelled?: () => boolean;
}

/**
 * Sends a request to the coordinator of `key` until it succeeds, fails for good (a KafkaError
 * with the response's code), or `timeoutMs` passes.
 */
export async function coordinatorRequest<T>(o: CoordinatorRequestOptions<T>): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    let error: StrandError;
    let code: number;
    try {
      const node = await o.cluster.coordinator(o.key, o.keyType);
      const conn = await o.cluster.connection(node);
      const r = await o.send(conn);
      code = o.errorOf(r);
      if (code === ErrorCode.NONE) return r;
      error = new KafkaError(code, o.what);
    } catch (e) {
      if (!(e instanceof StrandError) || !e.retriable) throw e;
      error = e;
      code = e instanceof KafkaError ? e.errorCode : ErrorCode.NETWORK_EXCEPTION;
    }
    if (!RETRY.has(code)) throw error;
    if (REDISCOVER.has(code) || !(error instanceof KafkaError)) o.cluster.forgetCoordinator(o.key, o.keyType);
    const initialMs = code === ErrorCode.CONCURRENT_TRANSACTIONS ? Math.min(20, o.retryBackoffMs) : o.retryBackoffMs;
    const waitMs = backoffMs(attempt, initialMs, o.retryBackoffMaxMs);
    if (Date.now() + waitMs > deadline || o.cancelled?.()) {
      throw new StrandError(error.code, `${o.what}: still failing after ${o.timeoutMs} ms: ${error.message}`, { cause: error, retriable: true });
    }
    o.cluster.logger.debug('retrying', { what: o.what, attempt, error: error.code, waitMs });
    if (channels.retry.hasSubscribers) channels.retry.publish({ what: o.what, attempt, error });
    await sleep(waitMs);
  }
}
