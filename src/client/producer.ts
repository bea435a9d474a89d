/**
 * The producer: records in, acknowledged offsets out.
 *
 * `send()` serializes a record, chooses its partition (explicit, custom partitioner, murmur2 of
 * the key as the Java client does, or sticky for keyless records) and appends it to that
 * partition's open batch; the promise it returns settles when the batch is acknowledged (acks
 * 1/-1), written to the socket (acks 0), or fails for good.
 *
 * A batch is sent when it reaches `batchBytes`, when it has waited `lingerMs`, or on `flush()`.
 * A drain groups ready batches by leader into one Produce request per broker (at most
 * `maxRequestBytes`, at most `maxInFlightPerBroker` requests in flight per broker), compressing
 * each batch with `compression`.
 *
 * Failures: a retriable error (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, a closed
 * connection, a timeout, ...) puts the batch back at the head of its partition's queue after an
 * exponential backoff with jitter, refreshing metadata first when the error says leaders moved;
 * the same encoded bytes are re-sent. A batch that is still not acknowledged `deliveryTimeoutMs`
 * after its first record was appended, or that fails with a non-retriable error, rejects every
 * record's promise with that error.
 *
 * Back-pressure: bytes appended and not yet acknowledged are bounded by `bufferBytes`. A `send`
 * that does not fit waits (FIFO) until acknowledgements free space, up to `maxBlockMs`, then
 * rejects with `BUFFER_FULL`; `maxBlockMs: 0` rejects at once. Awaiting `send` (or
 * `waitForCapacity()`) is how a caller that produces faster than the broker acknowledges slows
 * down.
 *
 * Idempotence: on by default where the broker offers InitProducerId (checked with ApiVersions);
 * then acks is -1, batches carry the producer id, epoch and per-partition sequence numbers, and
 * retries re-send the same sequence so the broker drops duplicates. A broker without
 * InitProducerId gets non-idempotent delivery (at-least-once: a retry after a lost response can
 * duplicate a batch; with more than one request in flight per broker a retry can reorder batches
 * of a partition). `producer.idempotent` says which mode is in use.
 *
 * Transactions (`transactionalId`): InitProducerId with the transactional id on connect
 * (`initTransactions()`, or implicitly on the first `transaction()`), which fences older
 * producers with the same id and aborts their open transaction. Records are sent only inside a
 * transaction. The drain holds back a partition's batches until the partition has been added to
 * the transaction (AddPartitionsToTxn, one request at a time for every partition waiting);
 * batches carry the transactional flag and the Produce request the transactional id. A failed
 * batch makes the transaction abortable: the batches not sent yet fail with it and only
 * `abort()` is allowed. Fencing errors make the producer fatal. After an abort that left a
 * sequence gap (a failed or dropped batch), the producer bumps its epoch with InitProducerId
 * (KIP-360: its own id and epoch), which starts every partition's sequence at 0 again. The
 * state machine and the coordinator requests are in transaction.ts.
 */
import type { RecordHeader } from '../protocol/records.js';
import { RecordBatchBuilder } from '../protocol/batch-builder.js';
import { parseCompressionName, type CompressionCodec, type CompressionName } from '../protocol/compression.js';
import { ErrorCode } from '../protocol/errors.js';
import {
  AddOffsetsToTxnApi,
  AddPartitionsToTxnApi,
  EndTxnApi,
  InitProducerIdApi,
  ProduceApi,
  TxnOffsetCommitApi,
  type AddPartitionsToTxnResponse,
  type InitProducerIdResponse,
  type ProduceRequestTopicProduceData,
  type ProduceResponse,
  type TxnOffsetCommitRequestTopic,
} from '../protocol/messages/index.js';
import { backoffMs, sleep, type Cluster, type TopicInfo } from './cluster.js';
import { channels, type Connection } from './connection.js';
import { KafkaError, StrandError } from './errors.js';
import { Transaction, coordinatorRequest, isFatalTxnError, type SendOffsetsOptions, type TransactionState } from './transaction.js';
import { partitionForKey, type Partitioner } from './partitioner.js';
import { bytesSerde, type Serializer } from './serializers.js';

export type Acks = 0 | 1 | -1 | 'all';

export type HeaderValue = string | Buffer | null | undefined;
export type Headers = Record<string, HeaderValue> | Array<[string, HeaderValue]>;

export interface ProducerRecord<K = Buffer | string | null, V = Buffer | string | null> {
  topic: string;
  key?: K | null;
  value: V | null;
  headers?: Headers;
  /** Explicit partition; otherwise the partitioner chooses. */
  partition?: number;
  /** CreateTime in ms (default: now). */
  timestamp?: number;
}

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** The record's offset; -1 with acks=0. */
  offset: number;
  timestamp: number;
}

export interface ProducerOptions<K = Buffer | string | null, V = Buffer | string | null> {
  /** 0: no response; 1: the leader appended; -1 / 'all': all in-sync replicas (default -1). */
  acks?: Acks;
  /** How long a batch waits for more records before it is sent (default 5 ms). */
  lingerMs?: number;
  /** A batch is sent once its records reach this many bytes (default 65536). */
  batchBytes?: number;
  /** Largest Produce request (default 1048576, Kafka's max.request.size). */
  maxRequestBytes?: number;
  compression?: CompressionName;
  /** Bound on bytes appended and not yet acknowledged (default 32 MiB). */
  bufferBytes?: number;
  /** How long `send` waits for buffer space before rejecting with BUFFER_FULL (default 60000; 0 = reject at once). */
  maxBlockMs?: number;
  /** Time from `send` to acknowledgement, retries included, before the record fails (default 120000). */
  deliveryTimeoutMs?: number;
  /** Broker-side wait for acks, sent in the Produce request (default 30000). */
  ackTimeoutMs?: number;
  /** Retries per batch within the delivery timeout (default unlimited). */
  retries?: number;
  /** First retry backoff (default 100 ms), doubling up to `retryBackoffMaxMs` (default 1000 ms). */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Produce requests in flight per broker (default 5). A request carries at most one batch per partition. */
  maxInFlightPerBroker?: number;
  /**
   * Batches of one partition in flight at once, each in its own request (default: up to
   * `maxInFlightPerBroker`; at most 5 with idempotence, the window Kafka brokers deduplicate in).
   */
  maxInFlightPerPartition?: number;
  /** Use an idempotent producer when the broker supports it (default true). */
  idempotent?: boolean;
  /**
   * Makes the producer transactional: records are sent only inside `producer.transaction()`.
   * Implies idempotence and acks -1 (other settings are refused). A new producer with the same
   * id fences this one.
   */
  transactionalId?: string;
  /** The coordinator aborts a transaction left open this long (default 60000; at most the broker's transaction.max.timeout.ms). */
  transactionTimeoutMs?: number;
  partitioner?: Partitioner;
  keySerializer?: Serializer<K>;
  valueSerializer?: Serializer<V>;
}

/** One `sendBatch` call: settles once every record is acknowledged or has failed. */
interface BulkSend {
  records: ProducerRecord<any, any>[];
  /** CreateTime of the records without a timestamp. */
  now: number;
  /** Explicit timestamps, when a record has one (copied: the caller may reuse its array). */
  timestamps: Float64Array | null;
  results: RecordMetadata[];
  remaining: number;
  error: Error | null;
  resolve: (m: RecordMetadata[]) => void;
  reject: (e: Error) => void;
}

/**
 * Who waits for records of a batch: one `send` (group null, one record at index `at`), or a run of
 * `count` consecutive records of one `sendBatch` (records `from`.. of the group, `at`.. of the batch).
 */
class Sink {
  constructor(
    readonly group: BulkSend | null,
    readonly from: number,
    readonly at: number,
    public count: number,
    readonly timestamp: number,
    readonly resolve: ((m: RecordMetadata) => void) | null,
    readonly reject: ((e: Error) => void) | null,
  ) {}
}

interface Batch {
  queue: PartitionQueue;
  topic: string;
  partition: number;
  /** Records are written here as they are appended; null once encoded with compression. */
  builder: RecordBatchBuilder | null;
  count: number;
  sinks: Sink[];
  /** Bytes of buffer space the batch's records hold (released on completion). */
  bytes: number;
  createdAt: number;
  /** Creation order among all batches: a partition's batches take their sequence numbers in this order. */
  ordinal: number;
  attempts: number;
  retryAt: number;
  encoded: Buffer | null;
  lastError: Error | null;
}

interface PartitionQueue {
  topic: string;
  partition: number;
  open: Batch | null;
  ready: Batch[];
  /** Batches of this partition awaiting a response. */
  inFlight: number;
  /** Idempotent: batches that have their sequence numbers and no final answer yet (in flight or back in `ready`). */
  unresolved: Set<Batch>;
  /** Transactional: the transaction (serial) this partition was last added to. */
  txnAdded: number;
  /** Transactional: waiting for or in an AddPartitionsToTxn. */
  adding: boolean;
}

/** The producer's side of its open transaction. */
interface TxnState {
  serial: number;
  state: TransactionState;
  /** Why the transaction can only be aborted. */
  error: Error | null;
  /** Partitions added with AddPartitionsToTxn. */
  partitions: number;
  /** Groups added with AddOffsetsToTxn. */
  groups: Set<string>;
  /** Sends between their first check and their append (slow paths); commit waits for them. */
  appending: number;
  appendWaiters: Array<() => void>;
  /** sendOffsets calls in progress. */
  ops: Set<Promise<void>>;
  /** EndTxn failed after its retries: commit() (or abort()) may send it again. */
  endFailed: boolean;
}

function abortableError(cause: Error): StrandError {
  return new StrandError('TRANSACTION_ABORTABLE', `the transaction cannot commit, only abort(): ${cause.message}`, { cause });
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

/** Buffer space a record holds beyond its key, value and headers (its framing, roughly). */
const RECORD_OVERHEAD_BYTES = 24;
/** Kafka brokers deduplicate the last 5 batches per producer and partition. */
const IDEMPOTENT_MAX_IN_FLIGHT = 5;

function toHeaders(h: Headers | undefined): RecordHeader[] | null {
  if (h === undefined) return null;
  const entries = Array.isArray(h) ? h : Object.entries(h);
  const out: RecordHeader[] = [];
  for (const [key, v] of entries) {
    if (v === undefined) continue;
    out.push({ key, value: v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8') });
  }
  return out;
}

function headersBytes(headers: RecordHeader[] | null): number {
  let bytes = 0;
  if (headers !== null) for (const h of headers) bytes += h.key.length + (h.value?.length ?? 0) + 4;
  return bytes;
}

/** The error of an AddPartitionsToTxn answer: the first partition's that is not OPERATION_NOT_ATTEMPTED (those only say another failed). */
function addPartitionsError(r: AddPartitionsToTxnResponse): number {
  if (r.errorCode !== 0) return r.errorCode;
  let other = 0;
  for (const t of r.resultsByTopicV3AndBelow) {
    for (const p of t.resultsByPartition) {
      if (p.partitionErrorCode === ErrorCode.OPERATION_NOT_ATTEMPTED) other = p.partitionErrorCode;
      else if (p.partitionErrorCode !== 0) return p.partitionErrorCode;
    }
  }
  return other;
}

export class Producer<K = Buffer | string | null, V = Buffer | string | null> {
  private readonly acks: number;
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly maxRequestBytes: number;
  private readonly codec: CompressionCodec;
  private readonly bufferBytes: number;
  private readonly maxBlockMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly ackTimeoutMs: number;
  private readonly retries: number;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;
  private readonly maxInFlight: number;
  private maxInFlightPerPartition: number;
  private readonly wantIdempotence: boolean;
  private readonly partitioner: Partitioner | undefined;
  private readonly keySerializer: Serializer<K>;
  private readonly valueSerializer: Serializer<V>;

  /** topic → partition → queue, and every queue in creation order (for the drain). */
  private readonly queues = new Map<string, PartitionQueue[]>();
  private readonly allQueues: PartitionQueue[] = [];
  private readonly sticky = new Map<string, number>();
  private readonly inFlightByNode = new Map<number, number>();
  private readonly waiters: Waiter[] = [];
  /** Batch buffers of `batchBytes` given back after acknowledgement, reused by new batches. */
  private readonly pool: Buffer[] = [];
  private readonly poolMax: number;
  private usedBytes = 0;
  private outstandingBatches = 0;
  private flushWaiters: Array<() => void> = [];
  private drainTimer: NodeJS.Timeout | null = null;
  private drainAt = Infinity;
  private drainImmediate: NodeJS.Immediate | null = null;
  private flushing = 0;
  private connected: Promise<void> | null = null;
  /** Set once connect() finished: the producer id (if any) is known, so records may be batched. */
  private ready = false;
  private closed = false;
  private producerId = -1;
  private producerEpoch = -1;
  private readonly sequences = new Map<string, number>();
  private nextOrdinal = 0;
  private idempotent_ = false;
  private readonly transactionalId: string | null;
  private readonly transactionTimeoutMs: number;
  /** The open transaction. */
  private txn: TxnState | null = null;
  private txnSerial = 0;
  /** Fencing (or another fatal error): every later call fails with it. */
  private fatal: Error | null = null;
  /** A sequence gap may exist (a failed or dropped batch): bump the epoch before the next transaction. */
  private bumpEpoch = false;
  private readonly addQueue: PartitionQueue[] = [];
  private addLoop: Promise<void> | null = null;

  constructor(
    private readonly cluster: Cluster,
    opts: ProducerOptions<K, V> = {},
    private readonly ownsCluster = false,
  ) {
    const acks = opts.acks === 'all' ? -1 : (opts.acks ?? -1);
    if (acks !== 0 && acks !== 1 && acks !== -1) throw new StrandError('INVALID_CONFIG', `acks must be 0, 1, -1 or 'all', not ${String(opts.acks)}`);
    this.acks = acks;
    this.lingerMs = opts.lingerMs ?? 5;
    this.batchBytes = opts.batchBytes ?? 65536;
    this.maxRequestBytes = opts.maxRequestBytes ?? 1048576;
    const codec = parseCompressionName(opts.compression ?? 'none');
    if (codec === undefined) throw new StrandError('INVALID_CONFIG', `unknown compression ${opts.compression}`);
    this.codec = codec;
    this.bufferBytes = opts.bufferBytes ?? 32 * 1024 * 1024;
    this.maxBlockMs = opts.maxBlockMs ?? 60000;
    this.deliveryTimeoutMs = opts.deliveryTimeoutMs ?? 120000;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 30000;
    this.retries = opts.retries ?? Number.MAX_SAFE_INTEGER;
    this.retryBackoffMs = opts.retryBackoffMs ?? 100;
    this.retryBackoffMaxMs = opts.retryBackoffMaxMs ?? 1000;
    this.maxInFlight = Math.max(1, opts.maxInFlightPerBroker ?? 5);
    this.maxInFlightPerPartition = Math.max(1, opts.maxInFlightPerPartition ?? this.maxInFlight);
    this.wantIdempotence = (opts.idempotent ?? true) && acks === -1;
    this.transactionalId = opts.transactionalId ?? null;
    this.transactionTimeoutMs = opts.transactionTimeoutMs ?? 60000;
    if (this.transactionalId !== null) {
      if (this.transactionalId === '') throw new StrandError('INVALID_CONFIG', 'transactionalId must not be empty');
      if (opts.idempotent === false) throw new StrandError('INVALID_CONFIG', 'a transactional producer is idempotent: idempotent: false cannot be combined with transactionalId');
      if (acks !== -1) throw new StrandError('INVALID_CONFIG', `a transactional producer needs acks -1 ('all'), not ${String(opts.acks)}`);
      if (!(this.transactionTimeoutMs > 0)) throw new StrandError('INVALID_CONFIG', 'transactionTimeoutMs must be positive');
    }
    this.partitioner = opts.partitioner;
    this.keySerializer = opts.keySerializer ?? (bytesSerde as unknown as Serializer<K>);
    this.valueSerializer = opts.valueSerializer ?? (bytesSerde as unknown as Serializer<V>);
    if (this.batchBytes <= 0 || this.bufferBytes < this.batchBytes) throw new StrandError('INVALID_CONFIG', 'batchBytes must be positive and at most bufferBytes');
    this.poolMax = Math.max(2, Math.min(64, Math.floor(this.bufferBytes / this.batchBytes)));
  }

  /** True when batches carry a producer id and sequence numbers (the broker supports idempotence). */
  get idempotent(): boolean {
    return this.idempotent_;
  }

  /** Bytes appended and not yet acknowledged. */
  get bufferedBytes(): number {
    return this.usedBytes;
  }

  /** Connects and, when asked for and supported, gets a producer id. Called by the first send too. */
  connect(): Promise<void> {
    this.connected ??= this.doConnect().then(
      () => {
        this.ready = true;
      },
      (e: unknown) => {
        this.connected = null;
        throw e;
      },
    );
    return this.connected;
  }

  private async doConnect(): Promise<void> {
    const conn = await this.cluster.withRetry('connect', () => this.cluster.anyConnection());
    if (this.transactionalId !== null) {
      for (const api of [InitProducerIdApi, AddPartitionsToTxnApi, AddOffsetsToTxnApi, EndTxnApi, TxnOffsetCommitApi]) {
        if (!conn.supports(api.key)) throw new StrandError('UNSUPPORTED_VERSION', `${conn.address} does not offer ${api.name}: no transactions`);
      }
      await this.initTransactionalId(false);
      this.idempotent_ = true;
      this.maxInFlightPerPartition = Math.min(this.maxInFlightPerPartition, IDEMPOTENT_MAX_IN_FLIGHT);
      return;
    }
    if (!this.wantIdempotence) return;
    if (!conn.supports(InitProducerIdApi.key)) {
      this.cluster.logger.warn('the broker does not offer InitProducerId: producing without idempotence', { broker: conn.address });
      return;
    }
    const resp = await this.cluster.withRetry('InitProducerId', async () => {
      const c = await this.cluster.anyConnection();
      const r = await c.request(InitProducerIdApi, { transactionalId: null, transactionTimeoutMs: 60000, producerId: -1, producerEpoch: -1 });
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, 'InitProducerId');
      return r;
    });
    this.producerId = resp.producerId;
    this.producerEpoch = resp.producerEpoch;
    this.idempotent_ = true;
    this.maxInFlightPerPartition = Math.min(this.maxInFlightPerPartition, IDEMPOTENT_MAX_IN_FLIGHT);
  }

  // Scratch output of prepare(), on the producer so the per-record path allocates nothing.
  private prepKey: Buffer | null = null;
  private prepValue: Buffer | null = null;
  private prepHeaders: RecordHeader[] | null = null;
  private prepBytes = 0;

  /**
   * Serializes a record and sizes it into the prep* fields; returns why it cannot be sent
   * (serialization failed, or larger than maxRequestBytes), else null. Read the fields at once.
   */
  private prepare(r: ProducerRecord<K, V>): Error | null {
    try {
      this.prepKey = this.serializeKey(r);
      this.prepValue = this.serializeValue(r);
    } catch (e) {
      return this.serializationError(r.topic, e);
    }
    this.prepHeaders = toHeaders(r.headers);
    this.prepBytes = RECORD_OVERHEAD_BYTES + (this.prepKey?.length ?? 0) + (this.prepValue?.length ?? 0) + headersBytes(this.prepHeaders);
    return this.prepBytes > this.maxRequestBytes ? this.tooLarge(this.prepBytes) : null;
  }

  private serializeKey(record: ProducerRecord<K, V>): Buffer | null {
    return record.key === undefined || record.key === null ? null : this.keySerializer.serialize(record.key, record.topic);
  }

  private serializeValue(record: ProducerRecord<K, V>): Buffer | null {
    return record.value === null ? null : this.valueSerializer.serialize(record.value, record.topic);
  }

  private serializationError(topic: string, e: unknown): StrandError {
    return new StrandError('SERIALIZATION_ERROR', `cannot serialize a record for ${topic}: ${(e as Error).message}`, { cause: e });
  }

  private tooLarge(bytes: number): KafkaError {
    return new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a record of ${bytes} bytes exceeds maxRequestBytes ${this.maxRequestBytes}`);
  }

  /** Sends one record; resolves with its offset once acknowledged. */
  send(record: ProducerRecord<K, V>): Promise<RecordMetadata> {
    if (this.closed) return Promise.reject(new StrandError('CLIENT_CLOSED', 'the producer is closed'));
    if (this.transactionalId !== null) {
      const refused = this.txnRefusal();
      if (refused !== null) return Promise.reject(refused);
    }
    const unsendable = this.prepare(record);
    if (unsendable !== null) return Promise.reject(unsendable);
    const { prepKey: key, prepValue: value, prepHeaders: headers, prepBytes: bytes } = this;
    const timestamp = record.timestamp ?? Date.now();
    const topic = this.cluster.topics.get(record.topic);
    if (topic !== undefined && this.ready && this.waiters.length === 0 && this.usedBytes + bytes <= this.bufferBytes) {
      return new Promise((resolve, reject) => {
        let b: Batch;
        try {
          b = this.appendRecord(topic, record.partition, key, value, headers, timestamp);
        } catch (e) {
          reject(e as Error);
          return;
        }
        this.usedBytes += bytes;
        b.bytes += bytes;
        b.sinks.push(new Sink(null, 0, b.count - 1, 1, timestamp, resolve, reject));
      });
    }
    return this.sendSlow(record, key, value, headers, timestamp, bytes);
  }

  private async sendSlow(record: ProducerRecord<K, V>, key: Buffer | null, value: Buffer | null, headers: RecordHeader[] | null, timestamp: number, bytes: number): Promise<RecordMetadata> {
    const txn = this.txn;
    if (txn !== null) txn.appending++;
    let b: Batch;
    try {
      await this.connect();
      await this.reserve(bytes);
      try {
        const topic = await this.cluster.topic(record.topic);
        if (this.closed) throw new StrandError('CLIENT_CLOSED', 'the producer closed');
        if (this.transactionalId !== null) {
          const refused = this.txnRecheck(txn);
          if (refused !== null) throw refused;
        }
        b = this.appendRecord(topic, record.partition, key, value, headers, timestamp);
      } catch (e) {
        this.release(bytes);
        throw e;
      }
    } finally {
      if (txn !== null) this.appended(txn);
    }
    b.bytes += bytes;
    return new Promise((resolve, reject) => b.sinks.push(new Sink(null, 0, b.count - 1, 1, timestamp, resolve, reject)));
  }

  /**
   * Sends several records; resolves with their metadata (in the order given) once all are
   * acknowledged, or rejects with the first failure once every record has settled. One promise
   * for the lot: the way to send in bulk. Records that fit in the buffer are appended before this
   * returns; when the buffer is full the rest wait (FIFO, up to `maxBlockMs`, after which they
   * fail with BUFFER_FULL).
   */
  sendBatch(records: ProducerRecord<K, V>[]): Promise<RecordMetadata[]> {
    if (this.closed) return Promise.reject(new StrandError('CLIENT_CLOSED', 'the producer is closed'));
    if (this.transactionalId !== null) {
      const refused = this.txnRefusal();
      if (refused !== null) return Promise.reject(refused);
    }
    if (records.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const g: BulkSend = { records, now: Date.now(), timestamps: null, results: new Array<RecordMetadata>(records.length), remaining: records.length, error: null, resolve, reject };
      this.appendBulk(g, 0);
    });
  }

  /** Appends records `from`.. of a sendBatch synchronously, until one needs to wait (connect, metadata, buffer space). */
  private appendBulk(g: BulkSend, from: number): void {
    const records = g.records as ProducerRecord<K, V>[];
    const n = records.length;
    let topic: TopicInfo | undefined;
    for (let i = from; i < n; i++) {
      const r = records[i]!;
      if (this.closed) {
        this.failRest(g, i, new StrandError('CLIENT_CLOSED', 'the producer closed'));
        return;
      }
      if (topic === undefined || topic.name !== r.topic) topic = this.cluster.topics.get(r.topic);
      if (topic === undefined || !this.ready || this.waiters.length > 0) {
        void this.appendBulkSlow(g, i);
        return;
      }
      const refused = this.prepare(r);
      if (refused !== null) {
        this.failRecords(g, 1, refused);
        continue;
      }
      if (this.usedBytes + this.prepBytes > this.bufferBytes) {
        void this.appendBulkSlow(g, i);
        return;
      }
      this.appendToGroup(g, i, topic, this.prepKey, this.prepValue, this.prepHeaders, this.prepBytes, false);
    }
  }

  /** Record `i` of a sendBatch, when it has to wait; then the rest, synchronously again. */
  private async appendBulkSlow(g: BulkSend, i: number): Promise<void> {
    const txn = this.txn;
    if (txn === null) return this.appendBulkWait(g, i, null);
    txn.appending++;
    try {
      await this.appendBulkWait(g, i, txn);
    } finally {
      this.appended(txn);
    }
  }

  private async appendBulkWait(g: BulkSend, i: number, txn: TxnState | null): Promise<void> {
    const r = g.records[i] as ProducerRecord<K, V>;
    try {
      await this.connect();
    } catch (e) {
      this.failRest(g, i, e as Error);
      return;
    }
    const refused = this.prepare(r);
    if (refused !== null) {
      this.failRecords(g, 1, refused);
      this.appendBulk(g, i + 1);
      return;
    }
    // Taken before the waits below: another record's prepare() may run meanwhile.
    const { prepKey: key, prepValue: value, prepHeaders: headers, prepBytes: bytes } = this;
    try {
      await this.reserve(bytes);
    } catch (e) {
      // No buffer space within maxBlockMs: the rest of the call would wait as long again.
      this.failRest(g, i, e as Error);
      return;
    }
    let topic: TopicInfo;
    try {
      topic = await this.cluster.topic(r.topic);
    } catch (e) {
      this.release(bytes);
      this.failRecords(g, 1, e as Error);
      this.appendBulk(g, i + 1);
      return;
    }
    if (this.closed) {
      this.release(bytes);
      this.failRest(g, i, new StrandError('CLIENT_CLOSED', 'the producer closed'));
      return;
    }
    if (this.transactionalId !== null) {
      const refused = this.txnRecheck(txn);
      if (refused !== null) {
        this.release(bytes);
        this.failRest(g, i, refused);
        return;
      }
    }
    this.appendToGroup(g, i, topic, key, value, headers, bytes, true);
    this.appendBulk(g, i + 1);
  }

  private appendToGroup(g: BulkSend, i: number, topic: TopicInfo, key: Buffer | null, value: Buffer | null, headers: RecordHeader[] | null, bytes: number, reserved: boolean): void {
    const r = g.records[i]!;
    let timestamp = g.now;
    if (r.timestamp !== undefined) {
      timestamp = r.timestamp;
      (g.timestamps ??= new Float64Array(g.records.length).fill(NaN))[i] = timestamp;
    }
    let b: Batch;
    try {
      b = this.appendRecord(topic, r.partition, key, value, headers, timestamp);
    } catch (e) {
      if (reserved) this.release(bytes);
      this.failRecords(g, 1, e as Error);
      return;
    }
    if (!reserved) this.usedBytes += bytes;
    b.bytes += bytes;
    const last = b.sinks.length > 0 ? b.sinks[b.sinks.length - 1]! : null;
    if (last !== null && last.group === g && last.from + last.count === i) last.count++;
    else b.sinks.push(new Sink(g, i, b.count - 1, 1, 0, null, null));
  }

  private failRecords(g: BulkSend, count: number, e: Error): void {
    g.error ??= e;
    g.remaining -= count;
    if (g.remaining === 0) g.reject(g.error);
  }

  private failRest(g: BulkSend, from: number, e: Error): void {
    this.failRecords(g, g.records.length - from, e);
  }

  /** Resolves when at least `bytes` of buffer are free (a way to apply back-pressure without awaiting each send). */
  async waitForCapacity(bytes = this.batchBytes): Promise<void> {
    await this.reserve(bytes);
    this.release(bytes);
  }

  private reserve(bytes: number): Promise<void> {
    if (this.waiters.length === 0 && this.usedBytes + bytes <= this.bufferBytes) {
      this.usedBytes += bytes;
      return Promise.resolve();
    }
    if (this.maxBlockMs <= 0) {
      return Promise.reject(new StrandError('BUFFER_FULL', `the producer buffer is full (${this.usedBytes} of ${this.bufferBytes} bytes waiting for acknowledgement)`, { retriable: true }));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { bytes, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new StrandError('BUFFER_FULL', `no buffer space for ${this.maxBlockMs} ms (${this.usedBytes} of ${this.bufferBytes} bytes waiting for acknowledgement)`, { retriable: true }));
        this.wakeWaiters();
      }, this.maxBlockMs);
      this.waiters.push(w);
    });
  }

  private release(bytes: number): void {
    this.usedBytes -= bytes;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      if (this.usedBytes + w.bytes > this.bufferBytes && this.usedBytes > 0) return;
      this.waiters.shift();
      if (w.timer) clearTimeout(w.timer);
      this.usedBytes += w.bytes;
      w.resolve();
    }
  }

  private choosePartition(topic: TopicInfo, explicit: number | undefined, key: Buffer | null, value: Buffer | null): number {
    const n = topic.partitions.length;
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 0 || explicit >= n) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic.name} has no partition ${explicit}`);
      return explicit;
    }
    if (this.partitioner) {
      const p = this.partitioner({ topic: topic.name, key, value, numPartitions: n });
      if (p !== undefined) return p;
    }
    if (key !== null) return partitionForKey(key, n);
    let p = this.sticky.get(topic.name);
    if (p === undefined || p >= n) {
      p = Math.floor(Math.random() * n);
      this.sticky.set(topic.name, p);
    }
    return p;
  }

  /** Called when a batch of the sticky partition is closed: the next keyless records go elsewhere. */
  private rotateSticky(topic: string, partition: number): void {
    if (this.sticky.get(topic) !== partition) return;
    const n = this.cluster.topics.get(topic)?.partitions.length ?? 1;
    if (n <= 1) return;
    let next = Math.floor(Math.random() * (n - 1));
    if (next >= partition) next++;
    this.sticky.set(topic, next);
  }

  private queueFor(topic: string, partition: number): PartitionQueue {
    let qs = this.queues.get(topic);
    if (qs === undefined) this.queues.set(topic, (qs = []));
    let q = qs[partition];
    if (q === undefined) {
      q = { topic, partition, open: null, ready: [], inFlight: 0, unresolved: new Set(), txnAdded: -1, adding: false };
      qs[partition] = q;
      this.allQueues.push(q);
    }
    return q;
  }

  /**
   * Writes a record into its partition's open batch (sealing a full one and opening the next);
   * returns the batch, whose `count - 1` is the record's index. Throws for an invalid partition.
   * The caller accounts the buffer bytes and attaches who waits for the record.
   */
  private appendRecord(topic: TopicInfo, explicit: number | undefined, key: Buffer | null, value: Buffer | null, headers: RecordHeader[] | null, timestamp: number): Batch {
    const partition = this.choosePartition(topic, explicit, key, value);
    const q = this.queueFor(topic.name, partition);
    let b = q.open;
    if (b !== null) {
      if (b.builder!.append(key, value, headers, timestamp)) {
        b.count++;
        return b;
      }
      this.seal(q);
      this.scheduleDrain(0);
    }
    b = {
      queue: q,
      topic: topic.name,
      partition,
      builder: new RecordBatchBuilder(this.batchBytes, this.pool.pop()),
      count: 0,
      sinks: [],
      bytes: 0,
      createdAt: Date.now(),
      ordinal: this.nextOrdinal++,
      attempts: 0,
      retryAt: 0,
      encoded: null,
      lastError: null,
    };
    q.open = b;
    this.outstandingBatches++;
    b.builder!.append(key, value, headers, timestamp); // an empty batch takes any record
    b.count++;
    this.scheduleDrain(this.flushing > 0 ? 0 : this.lingerMs);
    return b;
  }

  private seal(q: PartitionQueue): void {
    const b = q.open;
    if (b === null) return;
    q.ready.push(b);
    q.open = null;
    this.rotateSticky(q.topic, q.partition);
  }

  private scheduleDrain(delayMs: number): void {
    if (this.closed && this.outstandingBatches === 0) return;
    if (delayMs <= 0) {
      this.drainImmediate ??= setImmediate(() => {
        this.drainImmediate = null;
        this.drain();
      });
      return;
    }
    const at = Date.now() + delayMs;
    if (this.drainTimer !== null && this.drainAt <= at) return;
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.drainAt = at;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      this.drainAt = Infinity;
      this.drain();
    }, delayMs);
  }

  /**
   * Sends every batch that may go now, grouped per leader: each request takes at most one batch
   * per partition (the head of its queue), up to `maxRequestBytes`; requests are sent while the
   * broker's and the partitions' in-flight limits allow. Reschedules itself for batches still
   * lingering or backing off; a response drains again.
   */
  private drain(): void {
    const now = Date.now();
    let nextWake = Infinity;
    const byNode = new Map<number, PartitionQueue[]>();
    let needMetadata = false;
    for (const q of this.allQueues) {
      if (q.open !== null) {
        if (this.flushing > 0 || now - q.open.createdAt >= this.lingerMs) this.seal(q);
        else nextWake = Math.min(nextWake, q.open.createdAt + this.lingerMs);
      }
      while (q.ready.length > 0) {
        const b = q.ready[0]!;
        if (now - b.createdAt <= this.deliveryTimeoutMs) break;
        q.ready.shift();
        this.fail(b, new StrandError('DELIVERY_TIMEOUT', `${b.count} records for ${b.topic}-${b.partition} not acknowledged within ${this.deliveryTimeoutMs} ms${b.lastError ? `; last error: ${b.lastError.message}` : ''}`, { cause: b.lastError ?? undefined, retriable: true }));
      }
      if (q.ready.length === 0) continue;
      if (this.transactionalId !== null && q.txnAdded !== this.txnSerial) {
        this.addToTransaction(q); // drains again once added
        continue;
      }
      const head = q.ready[0]!;
      if (head.retryAt > now) {
        nextWake = Math.min(nextWake, head.retryAt);
        continue;
      }
      if (q.inFlight >= this.maxInFlightPerPartition) continue; // its responses drain again
      const leader = this.cluster.leaderOf(q.topic, q.partition);
      if (leader < 0) {
        needMetadata = true;
        nextWake = Math.min(nextWake, now + this.retryBackoffMs);
        continue;
      }
      let list = byNode.get(leader);
      if (list === undefined) byNode.set(leader, (list = []));
      list.push(q);
    }
    if (needMetadata) this.cluster.refreshMetadata().then(() => this.scheduleDrain(0), () => {});
    for (const [node, qs] of byNode) {
      let budget = this.acks === 0 ? Infinity : this.maxInFlight - (this.inFlightByNode.get(node) ?? 0);
      while (budget > 0) {
        const request: Batch[] = [];
        let size = 0;
        for (const q of qs) {
          if (q.ready.length === 0 || q.inFlight >= this.maxInFlightPerPartition) continue;
          const b = q.ready[0]!;
          if (b.retryAt > now) continue;
          b.encoded ??= this.encode(b);
          if (request.length > 0 && size + b.encoded.length > this.maxRequestBytes) continue; // the next request takes it
          size += b.encoded.length;
          request.push(b);
          q.ready.shift();
          q.inFlight++;
        }
        if (request.length === 0) break;
        budget--;
        void this.sendRequest(node, request);
      }
    }
    if (nextWake !== Infinity) this.scheduleDrain(Math.max(1, nextWake - Date.now()));
  }

  private encode(b: Batch): Buffer {
    let baseSequence = -1;
    if (this.idempotent_) {
      const k = `${b.topic}\u0000${b.partition}`;
      baseSequence = this.sequences.get(k) ?? 0;
      this.sequences.set(k, (baseSequence + b.count) % 2147483648);
      b.queue.unresolved.add(b);
    }
    const builder = b.builder!;
    const encoded = builder.build({ compression: this.codec, producerId: this.producerId, producerEpoch: this.producerEpoch, baseSequence, transactional: this.transactionalId !== null });
    if (this.codec !== 0) {
      // The compressed batch is a new buffer: the records' buffer can serve the next batch now.
      this.recycle(builder.buffer);
      b.builder = null;
    }
    return encoded;
  }

  private recycle(buf: Buffer): void {
    if (buf.length === this.batchBytes && this.pool.length < this.poolMax) this.pool.push(buf);
  }

  private async sendRequest(node: number, batches: Batch[]): Promise<void> {
    this.inFlightByNode.set(node, (this.inFlightByNode.get(node) ?? 0) + 1);
    const byTopic = new Map<string, ProduceRequestTopicProduceData>();
    for (const b of batches) {
      let t = byTopic.get(b.topic);
      if (t === undefined) byTopic.set(b.topic, (t = { name: b.topic, partitionData: [] }));
      t.partitionData.push({ index: b.partition, records: b.encoded });
    }
    const body = { transactionalId: this.transactionalId, acks: this.acks, timeoutMs: this.ackTimeoutMs, topicData: [...byTopic.values()] };
    try {
      const conn = await this.cluster.connection(node, 'produce');
      if (this.acks === 0) {
        conn.send(ProduceApi, body);
        // The socket may still hold the batch bytes: they are not recycled.
        for (const b of batches) this.complete(b, -1, -1, false);
        return;
      }
      const resp = await conn.request(ProduceApi, body, { extraTimeoutMs: this.ackTimeoutMs });
      this.handleResponse(batches, resp);
    } catch (e) {
      for (const b of batches) this.retryOrFail(b, e as Error);
    } finally {
      for (const b of batches) b.queue.inFlight--;
      this.inFlightByNode.set(node, (this.inFlightByNode.get(node) ?? 1) - 1);
      this.scheduleDrain(0);
    }
  }

  private handleResponse(batches: Batch[], resp: ProduceResponse): void {
    let refresh = false;
    for (const b of batches) {
      let r: ProduceResponse['responses'][number]['partitionResponses'][number] | undefined;
      for (const t of resp.responses) {
        if (t.name !== b.topic) continue;
        for (const p of t.partitionResponses) if (p.index === b.partition) r = p;
      }
      if (r === undefined) {
        this.retryOrFail(b, new StrandError('CORRUPT_RESPONSE', `no result for ${b.topic}-${b.partition} in the Produce response`, { retriable: true }));
        continue;
      }
      if (r.errorCode === 0 || r.errorCode === ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
        this.complete(b, r.baseOffset, r.logAppendTimeMs, true);
        continue;
      }
      const e = new KafkaError(r.errorCode, `Produce to ${b.topic}-${b.partition}`, r.errorMessage);
      if (e.needsMetadataRefresh) refresh = true;
      if (r.errorCode === ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER && this.hasOlderUnresolved(b)) {
        // An earlier batch of the partition failed or is being retried: the broker refuses the
        // gap, and this batch goes again after it (as Kafka's producer does), not failed for good.
        this.retryOrFail(b, new StrandError('OUT_OF_ORDER_SEQUENCE_NUMBER', `${e.message}; retried after the earlier batches of the partition`, { retriable: true, cause: e }));
        continue;
      }
      this.retryOrFail(b, e);
    }
    if (refresh) this.cluster.refreshMetadata().then(() => this.scheduleDrain(0), () => this.scheduleDrain(this.retryBackoffMs));
  }

  private retryOrFail(b: Batch, e: Error): void {
    b.lastError = e;
    b.attempts++;
    const retriable = e instanceof StrandError && e.retriable;
    if (!retriable || b.attempts > this.retries || Date.now() - b.createdAt > this.deliveryTimeoutMs || this.closed) {
      this.fail(b, e);
      return;
    }
    if (e instanceof StrandError && e.needsMetadataRefresh) void this.cluster.refreshMetadata().catch(() => {});
    b.retryAt = Date.now() + backoffMs(b.attempts, this.retryBackoffMs, this.retryBackoffMaxMs);
    if (channels.retry.hasSubscribers) channels.retry.publish({ what: 'produce', topic: b.topic, partition: b.partition, attempt: b.attempts, error: e });
    // Back into its partition's queue in creation (= sequence) order: several batches failed by one
    // lost connection are re-sent oldest first, so the broker sees their sequences in order.
    const ready = b.queue.ready;
    let at = 0;
    while (at < ready.length && ready[at]!.ordinal < b.ordinal) at++;
    ready.splice(at, 0, b);
    this.scheduleDrain(b.retryAt - Date.now());
  }

  private complete(b: Batch, baseOffset: number, logAppendTimeMs: number, recycle: boolean): void {
    const topic = b.topic;
    const partition = b.partition;
    for (const s of b.sinks) {
      const g = s.group;
      if (g === null) {
        s.resolve!({ topic, partition, offset: baseOffset < 0 ? -1 : baseOffset + s.at, timestamp: logAppendTimeMs >= 0 ? logAppendTimeMs : s.timestamp });
        continue;
      }
      const ts = g.timestamps;
      for (let j = 0; j < s.count; j++) {
        const i = s.from + j;
        let timestamp = logAppendTimeMs;
        if (timestamp < 0) timestamp = ts !== null && !Number.isNaN(ts[i]) ? ts[i]! : g.now;
        g.results[i] = { topic, partition, offset: baseOffset < 0 ? -1 : baseOffset + s.at + j, timestamp };
      }
      g.remaining -= s.count;
      if (g.remaining === 0) {
        if (g.error) g.reject(g.error);
        else g.resolve(g.results);
      }
    }
    if (recycle && b.builder !== null) this.recycle(b.builder.buffer);
    this.finish(b);
  }

  /** Fails a batch's records; `notify`: the failure also fails the open transaction (not when abort() drops the batch). */
  private fail(b: Batch, e: Error, notify = true): void {
    if (notify && this.transactionalId !== null) this.txnFailed(e);
    for (const s of b.sinks) {
      if (s.group === null) s.reject!(e);
      else this.failRecords(s.group, s.count, e);
    }
    this.finish(b);
  }

  /** Whether an earlier batch of `b`'s partition still waits for its final answer. */
  private hasOlderUnresolved(b: Batch): boolean {
    for (const o of b.queue.unresolved) if (o.ordinal < b.ordinal) return true;
    return false;
  }

  private finish(b: Batch): void {
    b.queue.unresolved.delete(b);
    b.sinks = [];
    b.builder = null;
    b.encoded = null;
    this.outstandingBatches--;
    this.release(b.bytes);
    if (this.outstandingBatches === 0) for (const w of this.flushWaiters.splice(0)) w();
  }

  // --------------------------------------------------------------------------- transactions

  /**
   * Transactional producers: connects and gets the producer id and epoch for the transactional
   * id (InitProducerId), fencing any older producer with that id and aborting its open
   * transaction. `transaction()` does this too when it has not been done.
   */
  async initTransactions(): Promise<void> {
    if (this.transactionalId === null) throw new StrandError('INVALID_CONFIG', 'initTransactions() needs a producer created with a transactionalId');
    if (this.fatal !== null) throw this.fatal;
    await this.connect();
  }

  /** Starts a transaction (after initTransactions(), implicitly if needed). One at a time per producer. */
  async transaction(): Promise<Transaction<K, V>> {
    if (this.transactionalId === null) throw new StrandError('INVALID_CONFIG', 'transaction() needs a producer created with a transactionalId');
    if (this.closed) throw new StrandError('CLIENT_CLOSED', 'the producer is closed');
    await this.connect();
    if (this.fatal !== null) throw this.fatal;
    if (this.bumpEpoch && this.txn === null) await this.initTransactionalId(true);
    if (this.txn !== null) throw new StrandError('ILLEGAL_STATE', `a transaction is already ${this.txn.state}: commit or abort it first`);
    const t: TxnState = { serial: ++this.txnSerial, state: 'ongoing', error: null, partitions: 0, groups: new Set(), appending: 0, appendWaiters: [], ops: new Set(), endFailed: false };
    this.txn = t;
    const ended = (): Promise<never> => Promise.reject(new StrandError('ILLEGAL_STATE', `the transaction is ${t.state}`));
    return new Transaction<K, V>({
      send: (r) => (this.txn === t ? this.send(r) : ended()),
      sendBatch: (rs) => (this.txn === t ? this.sendBatch(rs) : ended()),
      sendOffsets: (o) => this.sendOffsetsInTransaction(t, o),
      commit: () => this.commitTransaction(t),
      abort: () => this.abortTransaction(t),
      state: () => t.state,
    });
  }

  /** The error that made a transactional producer unusable (fenced, ...), or null. */
  get fatalError(): Error | null {
    return this.fatal;
  }

  /** True for a producer created with a transactionalId. */
  get transactional(): boolean {
    return this.transactionalId !== null;
  }

  /** Why a record may not be sent now by a transactional producer (null: it may). */
  private txnRefusal(): Error | null {
    if (this.fatal !== null) return this.fatal;
    const t = this.txn;
    if (t === null) return new StrandError('ILLEGAL_STATE', 'a transactional producer sends only inside a transaction: call producer.transaction() first');
    if (t.error !== null) return abortableError(t.error);
    if (t.state !== 'ongoing') return new StrandError('ILLEGAL_STATE', `the transaction is ${t.state}: no more records can join it`);
    return null;
  }

  /** A send that passed txnRefusal() and waited (connect, metadata, buffer space): may it still join its transaction? */
  private txnRecheck(t: TxnState | null): Error | null {
    if (this.fatal !== null) return this.fatal;
    if (t === null || this.txn !== t) return new StrandError('ILLEGAL_STATE', 'the transaction ended before the record could join it');
    if (t.error !== null) return abortableError(t.error);
    if (t.state === 'aborting') return new StrandError('TRANSACTION_ABORTED', 'the transaction was aborted');
    return null;
  }

  private appended(t: TxnState): void {
    t.appending--;
    if (t.appending === 0) for (const w of t.appendWaiters.splice(0)) w();
  }

  private async appendsSettled(t: TxnState): Promise<void> {
    if (t.appending > 0) await new Promise<void>((resolve) => t.appendWaiters.push(resolve));
  }

  /**
   * Something in the open transaction failed. Fencing and its kin make the producer fatal;
   * anything else makes the transaction abortable. Either way the batches not sent yet fail now.
   */
  private txnFailed(e: Error): void {
    if (isFatalTxnError(e)) {
      this.setFatal(e);
      return;
    }
    // A failed batch may or may not be in the log: its partition's sequence is uncertain. (The
    // bump costs one InitProducerId; other failures get the same clean start.)
    this.bumpEpoch = true;
    const t = this.txn;
    if (t === null || t.error !== null || t.state === 'aborting') return;
    t.error = e;
    if (t.state === 'ongoing') t.state = 'abortable';
    this.cluster.logger.warn('the transaction failed and must be aborted', { transactionalId: this.transactionalId, error: e.message });
    this.failUnsent(abortableError(e));
  }

  private setFatal(e: Error): void {
    if (this.fatal !== null) return;
    const fenced = e instanceof KafkaError && (e.errorCode === ErrorCode.PRODUCER_FENCED || e.errorCode === ErrorCode.INVALID_PRODUCER_EPOCH);
    this.fatal = fenced
      ? new KafkaError(
          e.errorCode,
          `transactional id ${this.transactionalId}; first seen: ${e.message}`,
          'a newer producer with this transactional id took over, or the coordinator aborted a transaction left open longer than transactionTimeoutMs; close this producer',
        )
      : e;
    this.cluster.logger.error('the transactional producer failed for good; close it', { transactionalId: this.transactionalId, error: e.message });
    this.failUnsent(e);
  }

  /** Fails every batch not sent yet (the open ones too); batches in flight finish on their own. */
  private failUnsent(e: Error): void {
    for (const q of this.allQueues) {
      this.seal(q);
      while (q.ready.length > 0) {
        const b = q.ready.shift()!;
        if (b.encoded !== null) this.bumpEpoch = true; // its sequence numbers were taken
        this.fail(b, e, false);
      }
    }
  }

  /** Queues a partition for AddPartitionsToTxn; one request at a time carries every partition waiting. */
  private addToTransaction(q: PartitionQueue): void {
    const t = this.txn;
    if (q.adding || t === null || t.error !== null || this.fatal !== null) return;
    q.adding = true;
    this.addQueue.push(q);
    this.addLoop ??= this.addPartitions().finally(() => {
      this.addLoop = null;
    });
  }

  private async addPartitions(): Promise<void> {
    while (this.addQueue.length > 0) {
      const qs = this.addQueue.splice(0);
      const t = this.txn;
      if (t === null) {
        for (const q of qs) q.adding = false;
        continue;
      }
      const byTopic = new Map<string, number[]>();
      for (const q of qs) {
        let l = byTopic.get(q.topic);
        if (l === undefined) byTopic.set(q.topic, (l = []));
        l.push(q.partition);
      }
      try {
        await this.txnCoordinatorRequest(`AddPartitionsToTxn ${[...byTopic].map(([topic, ps]) => `${topic}[${ps.join(',')}]`).join(' ')}`, (c) =>
          c.request(AddPartitionsToTxnApi, {
            transactions: [],
            v3AndBelowTransactionalId: this.transactionalId!,
            v3AndBelowProducerId: this.producerId,
            v3AndBelowProducerEpoch: this.producerEpoch,
            v3AndBelowTopics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
          }),
          addPartitionsError,
        );
        for (const q of qs) q.txnAdded = t.serial;
        t.partitions += qs.length;
      } catch (e) {
        if (this.txn === t) this.txnFailed(e as Error);
      } finally {
        for (const q of qs) q.adding = false;
      }
      this.scheduleDrain(0);
    }
  }

  /** A request to the transaction coordinator, retried per transaction.ts. */
  private txnCoordinatorRequest<T>(what: string, send: (c: Connection) => Promise<T>, errorOf: (r: T) => number): Promise<T> {
    return coordinatorRequest({
      cluster: this.cluster,
      key: this.transactionalId!,
      keyType: 1,
      what,
      timeoutMs: this.txnOpTimeoutMs(),
      retryBackoffMs: this.retryBackoffMs,
      retryBackoffMaxMs: this.retryBackoffMaxMs,
      send,
      errorOf,
      cancelled: () => this.fatal !== null,
    });
  }

  /** How long a transactional operation retries: maxBlockMs, as Java's max.block.ms (at least 1 s). */
  private txnOpTimeoutMs(): number {
    return Math.max(1000, this.maxBlockMs);
  }

  /**
   * InitProducerId for the transactional id. `bump`: this producer's own epoch is to be bumped
   * (KIP-360, InitProducerId v3+ with the current id and epoch), which starts every partition's
   * sequence at 0 again; if another producer took the id over meanwhile the answer is
   * PRODUCER_FENCED and this producer becomes fatal instead of fencing the newer one.
   */
  private async initTransactionalId(bump: boolean): Promise<void> {
    let r: InitProducerIdResponse;
    try {
      r = await this.txnCoordinatorRequest(
        'InitProducerId',
        (c) => {
          if (bump && c.versionFor(InitProducerIdApi.key, InitProducerIdApi.name) < 3) {
            throw new StrandError('UNSUPPORTED_VERSION', `${c.address} cannot bump a producer epoch (InitProducerId v3, KIP-360): after a failed transaction close this producer and create another`);
          }
          return c.request(InitProducerIdApi, {
            transactionalId: this.transactionalId,
            transactionTimeoutMs: this.transactionTimeoutMs,
            producerId: bump ? this.producerId : -1,
            producerEpoch: bump ? this.producerEpoch : -1,
          });
        },
        (x) => x.errorCode,
      );
    } catch (e) {
      if (bump && (isFatalTxnError(e) || (e instanceof StrandError && e.code === 'UNSUPPORTED_VERSION'))) this.setFatal(e as Error);
      throw this.fatal ?? e;
    }
    this.producerId = r.producerId;
    this.producerEpoch = r.producerEpoch;
    this.sequences.clear();
    this.bumpEpoch = false;
    this.cluster.logger.debug('transactional producer initialised', { transactionalId: this.transactionalId, producerId: r.producerId, producerEpoch: r.producerEpoch });
  }

  private async sendOffsetsInTransaction(t: TxnState, opts: SendOffsetsOptions): Promise<void> {
    if (this.txn !== t) throw new StrandError('ILLEGAL_STATE', `the transaction is ${t.state}`);
    const refused = this.txnRefusal();
    if (refused !== null) throw refused;
    const meta = opts.consumer?.groupMetadata();
    const groupId = meta?.groupId ?? opts.consumerGroupId;
    if (groupId === undefined || groupId === '') throw new StrandError('INVALID_CONFIG', 'sendOffsets needs a consumer (in a group) or a consumerGroupId');
    if (opts.offsets.length === 0) return;
    const byTopic = new Map<string, TxnOffsetCommitRequestTopic>();
    for (const o of opts.offsets) {
      if (!Number.isInteger(o.offset) || o.offset < 0) throw new StrandError('INVALID_CONFIG', `offset ${o.offset} for ${o.topic}-${o.partition} is not an offset`);
      let topic = byTopic.get(o.topic);
      if (topic === undefined) byTopic.set(o.topic, (topic = { name: o.topic, partitions: [] }));
      topic.partitions.push({ partitionIndex: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, committedMetadata: o.metadata ?? null });
    }
    const op = (async () => {
      if (!t.groups.has(groupId)) {
        await this.txnCoordinatorRequest(
          `AddOffsetsToTxn ${groupId}`,
          (c) => c.request(AddOffsetsToTxnApi, { transactionalId: this.transactionalId!, producerId: this.producerId, producerEpoch: this.producerEpoch, groupId }),
          (r) => r.errorCode,
        );
        t.groups.add(groupId);
      }
      await coordinatorRequest({
        cluster: this.cluster,
        key: groupId,
        keyType: 0,
        what: `TxnOffsetCommit ${groupId}`,
        timeoutMs: this.txnOpTimeoutMs(),
        retryBackoffMs: this.retryBackoffMs,
        retryBackoffMaxMs: this.retryBackoffMaxMs,
        cancelled: () => this.fatal !== null,
        send: (c) =>
          c.request(TxnOffsetCommitApi, {
            transactionalId: this.transactionalId!,
            groupId,
            producerId: this.producerId,
            producerEpoch: this.producerEpoch,
            generationId: meta?.generationId ?? -1,
            memberId: meta?.memberId ?? '',
            groupInstanceId: meta?.groupInstanceId ?? null,
            topics: [...byTopic.values()],
          }),
        errorOf: (r) => {
          for (const tp of r.topics) for (const p of tp.partitions) if (p.errorCode !== 0) return p.errorCode;
          return 0;
        },
      });
    })();
    t.ops.add(op);
    try {
      await op;
    } catch (e) {
      if (this.txn === t) this.txnFailed(e as Error);
      throw this.fatal ?? e;
    } finally {
      t.ops.delete(op);
    }
  }

  private async endTransaction(t: TxnState, committed: boolean): Promise<void> {
    if (t.partitions === 0 && t.groups.size === 0) return; // nothing reached the coordinator: nothing to end
    try {
      await this.txnCoordinatorRequest(
        `EndTxn(${committed ? 'commit' : 'abort'})`,
        (c) => c.request(EndTxnApi, { transactionalId: this.transactionalId!, producerId: this.producerId, producerEpoch: this.producerEpoch, committed }),
        (r) => r.errorCode,
      );
    } catch (e) {
      if (isFatalTxnError(e)) this.setFatal(e as Error);
      else t.endFailed = true;
      throw this.fatal ?? e;
    }
  }

  private async commitTransaction(t: TxnState): Promise<void> {
    if (this.fatal !== null) throw this.fatal;
    if (this.txn !== t) throw new StrandError('ILLEGAL_STATE', `the transaction is ${t.state}`);
    if (t.state === 'abortable') throw abortableError(t.error!);
    const retryEnd = t.state === 'committing' && t.endFailed;
    if (t.state !== 'ongoing' && !retryEnd) throw new StrandError('ILLEGAL_STATE', `cannot commit a transaction that is ${t.state}`);
    t.state = 'committing';
    if (!retryEnd) {
      await this.appendsSettled(t);
      await Promise.allSettled([...t.ops]);
      await this.flush();
      if (this.fatal !== null) throw this.fatal;
      if (t.error !== null) {
        t.state = 'abortable';
        throw abortableError(t.error);
      }
    }
    t.endFailed = false;
    await this.endTransaction(t, true);
    t.state = 'committed';
    this.txn = null;
  }

  private async abortTransaction(t: TxnState): Promise<void> {
    if (this.fatal !== null) throw this.fatal;
    if (this.txn !== t) throw new StrandError('ILLEGAL_STATE', `the transaction is ${t.state}`);
    if (t.state === 'committing') {
      throw new StrandError('ILLEGAL_STATE', t.endFailed ? 'the commit was decided but not confirmed: call commit() again' : 'commit() is in progress');
    }
    const retryEnd = t.state === 'aborting' && t.endFailed;
    if (t.state === 'aborting' && !retryEnd) throw new StrandError('ILLEGAL_STATE', 'abort() is in progress');
    t.state = 'aborting';
    if (!retryEnd) {
      const aborted = new StrandError('TRANSACTION_ABORTED', 'the transaction was aborted before the record was sent');
      this.failUnsent(aborted);
      await this.appendsSettled(t);
      await Promise.allSettled([...t.ops]);
      this.failUnsent(aborted);
      await this.flush();
      while (this.addLoop !== null) await this.addLoop;
      if (this.fatal !== null) throw this.fatal;
    }
    t.endFailed = false;
    await this.endTransaction(t, false);
    t.state = 'aborted';
    this.txn = null;
    if (this.bumpEpoch) {
      await this.initTransactionalId(true).catch((e: unknown) => {
        if (this.fatal !== null) throw e;
        // Not fatal (e.g. the coordinator is still unavailable): the next transaction() tries again.
      });
    }
  }

  /** Sends every buffered record now and resolves when all have been acknowledged or have failed. */
  async flush(): Promise<void> {
    if (this.outstandingBatches === 0) return;
    this.flushing++;
    try {
      const done = new Promise<void>((resolve) => this.flushWaiters.push(resolve));
      this.scheduleDrain(0);
      await done;
    } finally {
      this.flushing--;
    }
  }

  /** Flushes, then closes (and closes the connections if this producer owns them). */
  async close(): Promise<void> {
    if (this.closed) return;
    const txn = this.txn;
    if (txn !== null && this.fatal === null) {
      // Not committed: aborting now spares read_committed readers the wait for the transaction timeout.
      await this.abortTransaction(txn).catch((e: unknown) => this.cluster.logger.warn('could not abort the open transaction on close', { error: (e as Error).message }));
    }
    await this.flush();
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new StrandError('CLIENT_CLOSED', 'the producer closed'));
    }
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.drainImmediate) clearImmediate(this.drainImmediate);
    this.pool.length = 0;
    if (this.ownsCluster) await this.cluster.close();
  }
}

export { sleep };
