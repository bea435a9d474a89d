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
 * retries re-send the same sequence so the broker drops duplicates. Strand does not implement
 * InitProducerId yet, so against Strand the producer falls back to non-idempotent delivery
 * (at-least-once: a retry after a lost response can duplicate a batch; with more than one request
 * in flight per broker a retry can reorder batches of a partition). `producer.idempotent` says
 * which mode is in use.
 */
import { encodeRecordBatch, type RecordHeader, type RecordInput } from '../protocol/records.js';
import { parseCompressionName, type CompressionCodec, type CompressionName } from '../protocol/compression.js';
import { ErrorCode } from '../protocol/errors.js';
import { InitProducerIdApi, ProduceApi, type ProduceRequestTopicProduceData, type ProduceResponse } from '../protocol/messages/index.js';
import { backoffMs, sleep, type Cluster, type TopicInfo } from './cluster.js';
import { channels } from './connection.js';
import { KafkaError, StrandError } from './errors.js';
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
  /** Produce requests in flight per broker (default 5). */
  maxInFlightPerBroker?: number;
  /** Use an idempotent producer when the broker supports it (default true). */
  idempotent?: boolean;
  partitioner?: Partitioner;
  keySerializer?: Serializer<K>;
  valueSerializer?: Serializer<V>;
}

interface Batch {
  topic: string;
  partition: number;
  records: RecordInput[];
  resolves: Array<(m: RecordMetadata) => void>;
  rejects: Array<(e: Error) => void>;
  timestamps: number[];
  bytes: number;
  createdAt: number;
  sealed: boolean;
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
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

const RECORD_OVERHEAD_BYTES = 24;

function toHeaders(h: Headers | undefined): RecordHeader[] | undefined {
  if (h === undefined) return undefined;
  const entries = Array.isArray(h) ? h : Object.entries(h);
  const out: RecordHeader[] = [];
  for (const [key, v] of entries) {
    if (v === undefined) continue;
    out.push({ key, value: v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8') });
  }
  return out;
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
  private readonly wantIdempotence: boolean;
  private readonly partitioner: Partitioner | undefined;
  private readonly keySerializer: Serializer<K>;
  private readonly valueSerializer: Serializer<V>;

  private readonly queues = new Map<string, PartitionQueue>();
  private readonly sticky = new Map<string, number>();
  private readonly inFlightByNode = new Map<number, number>();
  private readonly waiters: Waiter[] = [];
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
  private idempotent_ = false;

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
    this.wantIdempotence = (opts.idempotent ?? true) && acks === -1;
    this.partitioner = opts.partitioner;
    this.keySerializer = opts.keySerializer ?? (bytesSerde as unknown as Serializer<K>);
    this.valueSerializer = opts.valueSerializer ?? (bytesSerde as unknown as Serializer<V>);
    if (this.batchBytes <= 0 || this.bufferBytes < this.batchBytes) throw new StrandError('INVALID_CONFIG', 'batchBytes must be positive and at most bufferBytes');
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
  }

  /** Sends one record; resolves with its offset once acknowledged. */
  send(record: ProducerRecord<K, V>): Promise<RecordMetadata> {
    if (this.closed) return Promise.reject(new StrandError('CLIENT_CLOSED', 'the producer is closed'));
    let key: Buffer | null;
    let value: Buffer | null;
    try {
      key = record.key === undefined || record.key === null ? null : this.keySerializer.serialize(record.key, record.topic);
      value = record.value === null ? null : this.valueSerializer.serialize(record.value, record.topic);
    } catch (e) {
      return Promise.reject(new StrandError('SERIALIZATION_ERROR', `cannot serialize a record for ${record.topic}: ${(e as Error).message}`, { cause: e }));
    }
    const headers = toHeaders(record.headers);
    let bytes = RECORD_OVERHEAD_BYTES + (key?.length ?? 0) + (value?.length ?? 0);
    if (headers) for (const h of headers) bytes += h.key.length + (h.value?.length ?? 0) + 4;
    if (bytes > this.maxRequestBytes) {
      return Promise.reject(new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a record of ${bytes} bytes exceeds maxRequestBytes ${this.maxRequestBytes}`));
    }
    const input: RecordInput = { key, value, headers, timestamp: record.timestamp ?? Date.now() };
    const topic = this.cluster.topics.get(record.topic);
    if (topic !== undefined && this.ready && this.waiters.length === 0 && this.usedBytes + bytes <= this.bufferBytes) {
      return new Promise((resolve, reject) => this.append(topic, record.partition, input, bytes, resolve, reject));
    }
    return this.sendSlow(record, input, bytes);
  }

  private async sendSlow(record: ProducerRecord<K, V>, input: RecordInput, bytes: number): Promise<RecordMetadata> {
    await this.connect();
    await this.reserve(bytes);
    let topic: TopicInfo;
    try {
      topic = await this.cluster.topic(record.topic);
    } catch (e) {
      this.release(bytes);
      throw e;
    }
    return new Promise((resolve, reject) => this.append(topic, record.partition, input, bytes, resolve, reject, true));
  }

  /** Sends several records; resolves when all are acknowledged (rejects with the first failure). */
  sendBatch(records: ProducerRecord<K, V>[]): Promise<RecordMetadata[]> {
    return Promise.all(records.map((r) => this.send(r)));
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

  private choosePartition(topic: TopicInfo, explicit: number | undefined, input: RecordInput): number {
    const n = topic.partitions.length;
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 0 || explicit >= n) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic.name} has no partition ${explicit}`);
      return explicit;
    }
    if (this.partitioner) {
      const p = this.partitioner({ topic: topic.name, key: input.key ?? null, value: input.value, numPartitions: n });
      if (p !== undefined) return p;
    }
    if (input.key != null) return partitionForKey(input.key, n);
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

  private append(topic: TopicInfo, explicit: number | undefined, input: RecordInput, bytes: number, resolve: (m: RecordMetadata) => void, reject: (e: Error) => void, reserved = false): void {
    let partition: number;
    try {
      partition = this.choosePartition(topic, explicit, input);
    } catch (e) {
      if (reserved) this.release(bytes);
      reject(e as Error);
      return;
    }
    if (!reserved) this.usedBytes += bytes;
    const qk = `${topic.name}\u0000${partition}`;
    let q = this.queues.get(qk);
    if (q === undefined) {
      q = { topic: topic.name, partition, open: null, ready: [] };
      this.queues.set(qk, q);
    }
    let b = q.open;
    if (b !== null && b.bytes + bytes > this.batchBytes && b.records.length > 0) {
      this.seal(q);
      b = null;
    }
    if (b === null) {
      b = { topic: topic.name, partition, records: [], resolves: [], rejects: [], timestamps: [], bytes: 0, createdAt: Date.now(), sealed: false, attempts: 0, retryAt: 0, encoded: null, lastError: null };
      q.open = b;
      this.outstandingBatches++;
    }
    b.records.push(input);
    b.resolves.push(resolve);
    b.rejects.push(reject);
    b.timestamps.push(input.timestamp!);
    b.bytes += bytes;
    if (b.bytes >= this.batchBytes) {
      this.seal(q);
      this.scheduleDrain(0);
    } else if (this.flushing > 0) this.scheduleDrain(0);
    else this.scheduleDrain(this.lingerMs);
  }

  private seal(q: PartitionQueue): void {
    const b = q.open;
    if (b === null) return;
    b.sealed = true;
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

  /** Sends every batch that is ready, grouped per leader; reschedules itself for batches still lingering or backing off. */
  private drain(): void {
    const now = Date.now();
    let nextWake = Infinity;
    const byNode = new Map<number, Batch[]>();
    let needMetadata = false;
    for (const q of this.queues.values()) {
      if (q.open !== null) {
        if (this.flushing > 0 || now - q.open.createdAt >= this.lingerMs) this.seal(q);
        else nextWake = Math.min(nextWake, q.open.createdAt + this.lingerMs);
      }
      while (q.ready.length > 0) {
        const b = q.ready[0]!;
        if (now - b.createdAt > this.deliveryTimeoutMs) {
          q.ready.shift();
          this.fail(b, new StrandError('DELIVERY_TIMEOUT', `${b.records.length} records for ${b.topic}-${b.partition} not acknowledged within ${this.deliveryTimeoutMs} ms${b.lastError ? `; last error: ${b.lastError.message}` : ''}`, { cause: b.lastError ?? undefined, retriable: true }));
          continue;
        }
        if (b.retryAt > now) {
          nextWake = Math.min(nextWake, b.retryAt);
          break;
        }
        const leader = this.cluster.leaderOf(b.topic, b.partition);
        if (leader < 0) {
          needMetadata = true;
          nextWake = Math.min(nextWake, now + this.retryBackoffMs);
          break;
        }
        let list = byNode.get(leader);
        if (list === undefined) byNode.set(leader, (list = []));
        list.push(b);
        break; // one batch per partition per request; the next goes in a later request
      }
    }
    if (needMetadata) this.cluster.refreshMetadata().then(() => this.scheduleDrain(0), () => {});
    let more = false;
    for (const [node, batches] of byNode) {
      let budget = this.maxInFlight - (this.inFlightByNode.get(node) ?? 0);
      if (this.acks === 0) budget = Infinity;
      let i = 0;
      while (i < batches.length && budget > 0) {
        const request: Batch[] = [];
        let size = 0;
        while (i < batches.length) {
          const b = batches[i]!;
          b.encoded ??= this.encode(b);
          if (request.length > 0 && size + b.encoded.length > this.maxRequestBytes) break;
          size += b.encoded.length;
          request.push(b);
          i++;
        }
        for (const b of request) this.queueOf(b).ready.shift();
        budget--;
        void this.sendRequest(node, request);
      }
      if (i < batches.length) more = true;
    }
    // Partitions with more ready batches are drained again after the requests above are sent.
    for (const q of this.queues.values()) if (q.ready.length > 0 && q.ready[0]!.retryAt <= now) more = true;
    if (more && byNode.size > 0) {
      // Wait for an in-flight slot (a response reschedules the drain) unless slots are free now.
      let anyFree = false;
      for (const [node] of byNode) if ((this.inFlightByNode.get(node) ?? 0) < this.maxInFlight) anyFree = true;
      if (anyFree) this.scheduleDrain(0);
    }
    if (nextWake !== Infinity) this.scheduleDrain(Math.max(1, nextWake - Date.now()));
  }

  private queueOf(b: Batch): PartitionQueue {
    return this.queues.get(`${b.topic}\u0000${b.partition}`)!;
  }

  private encode(b: Batch): Buffer {
    let baseSequence = -1;
    if (this.idempotent_) {
      const k = `${b.topic}\u0000${b.partition}`;
      baseSequence = this.sequences.get(k) ?? 0;
      this.sequences.set(k, (baseSequence + b.records.length) % 2147483648);
    }
    return encodeRecordBatch({
      records: b.records,
      compression: this.codec,
      producerId: this.producerId,
      producerEpoch: this.producerEpoch,
      baseSequence,
    });
  }

  private async sendRequest(node: number, batches: Batch[]): Promise<void> {
    this.inFlightByNode.set(node, (this.inFlightByNode.get(node) ?? 0) + 1);
    const byTopic = new Map<string, ProduceRequestTopicProduceData>();
    for (const b of batches) {
      let t = byTopic.get(b.topic);
      if (t === undefined) byTopic.set(b.topic, (t = { name: b.topic, partitionData: [] }));
      t.partitionData.push({ index: b.partition, records: b.encoded });
    }
    const body = { transactionalId: null, acks: this.acks, timeoutMs: this.ackTimeoutMs, topicData: [...byTopic.values()] };
    try {
      const conn = await this.cluster.connection(node, 'produce');
      if (this.acks === 0) {
        conn.send(ProduceApi, body);
        for (const b of batches) this.complete(b, -1, -1);
        return;
      }
      const resp = await conn.request(ProduceApi, body, { extraTimeoutMs: this.ackTimeoutMs });
      this.handleResponse(batches, resp);
    } catch (e) {
      for (const b of batches) this.retryOrFail(b, e as Error);
    } finally {
      this.inFlightByNode.set(node, (this.inFlightByNode.get(node) ?? 1) - 1);
      this.scheduleDrain(0);
    }
  }

  private handleResponse(batches: Batch[], resp: ProduceResponse): void {
    const results = new Map<string, { errorCode: number; baseOffset: number; logAppendTimeMs: number; errorMessage: string | null }>();
    for (const t of resp.responses) for (const p of t.partitionResponses) results.set(`${t.name}\u0000${p.index}`, p);
    let refresh = false;
    for (const b of batches) {
      const r = results.get(`${b.topic}\u0000${b.partition}`);
      if (r === undefined) {
        this.retryOrFail(b, new StrandError('CORRUPT_RESPONSE', `no result for ${b.topic}-${b.partition} in the Produce response`, { retriable: true }));
        continue;
      }
      if (r.errorCode === 0 || r.errorCode === ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
        this.complete(b, r.baseOffset, r.logAppendTimeMs);
        continue;
      }
      const e = new KafkaError(r.errorCode, `Produce to ${b.topic}-${b.partition}`, r.errorMessage);
      if (e.needsMetadataRefresh) refresh = true;
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
    // Back at the head of its partition's queue, ahead of later batches.
    this.queueOf(b).ready.unshift(b);
    this.scheduleDrain(b.retryAt - Date.now());
  }

  private complete(b: Batch, baseOffset: number, logAppendTimeMs: number): void {
    for (let i = 0; i < b.resolves.length; i++) {
      b.resolves[i]!({
        topic: b.topic,
        partition: b.partition,
        offset: baseOffset < 0 ? -1 : baseOffset + i,
        timestamp: logAppendTimeMs >= 0 ? logAppendTimeMs : b.timestamps[i]!,
      });
    }
    this.finish(b);
  }

  private fail(b: Batch, e: Error): void {
    for (const reject of b.rejects) reject(e);
    this.finish(b);
  }

  private finish(b: Batch): void {
    b.records = [];
    b.encoded = null;
    this.outstandingBatches--;
    this.release(b.bytes);
    if (this.outstandingBatches === 0) for (const w of this.flushWaiters.splice(0)) w();
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
    await this.flush();
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new StrandError('CLIENT_CLOSED', 'the producer closed'));
    }
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.ownsCluster) await this.cluster.close();
  }
}

export { sleep };
