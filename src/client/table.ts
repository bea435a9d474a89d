/**
 * Table: a compacted topic read into memory as a key → value map and kept current (the idea of
 * Kafka Streams' GlobalKTable, without Streams).
 *
 * Behaviour:
 *  - `start()` looks up the topic's partitions, then asks each leader (ListOffsets) for the log
 *    start offset and the end offset as of now — the last stable offset under read_committed (the
 *    default), the high watermark under read_uncommitted — and starts one fetch loop per leader
 *    from the log start. No consumer group: nothing is committed, every table reads everything.
 *  - Each record updates the map: a value upserts its key, a tombstone (null value) deletes it.
 *    Records without a key (not possible on a compacted topic) are ignored. Control batches and,
 *    under read_committed, records of aborted transactions are skipped. Keys are compared by their
 *    bytes, so any key deserializer works.
 *  - Every upsert, and every tombstone of a key present, emits a `change` event
 *    `{ key, value, previous, partition, offset, timestamp }` (value `undefined` for a delete) and
 *    is handed to every `changes()` iterator. Changes are emitted while loading too; `caughtUp`
 *    tells them apart.
 *  - Caught up: a partition is caught up once its position reaches the end offset it had at
 *    start, or once a fetch below that offset returns nothing for it in a response not cut short by
 *    its byte limit (the rest of the log was compacted away). When every partition is, `ready()`
 *    resolves and the `caughtUp` event fires, once. A topic with no records is caught up at once.
 *  - Back-pressure: a `changes()` iterator holds at most `maxBufferedChanges` changes; while one
 *    is full, no further fetch is sent.
 *  - Errors: retriable ones (leader moved, connection lost) are retried after a metadata refresh;
 *    OFFSET_OUT_OF_RANGE (the log start moved) restarts the partition from the new log start;
 *    anything else (a deserializer that throws, an unknown topic) stops the table: `ready()`
 *    rejects, `error` is emitted if anyone listens, iterators throw it.
 *  - `close()` stops the loops and closes the table's connections; the map stays readable.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode } from '../protocol/errors.js';
import { FetchApi, ListOffsetsApi, type FetchResponsePartitionData } from '../protocol/messages/index.js';
import { ZERO_UUID } from '../protocol/reader.js';
import { recordsInMemory } from '../protocol/writer.js';
import { decodeRecordBatches, isControlBatch, isTransactional } from '../protocol/records.js';
import { backoffMs, sleep, type Cluster } from './cluster.js';
import { KafkaError, StrandError } from './errors.js';
import { stringSerde, type Deserializer, type Serializer } from './serializers.js';

export interface TableOptions<K, V> {
  /** Turns key bytes into K (default: UTF-8 strings). A Serde also lets `get()` take any K. */
  keyDeserializer?: Deserializer<K> | (Deserializer<K> & Serializer<K>);
  /** Turns value bytes into V (default: raw Buffers). Never called for tombstones. */
  valueDeserializer?: Deserializer<V>;
  /** Default 'read_committed': records of open or aborted transactions are not applied. */
  isolationLevel?: 'read_committed' | 'read_uncommitted';
  /** Only these partitions (default: all of them). */
  partitions?: number[];
  /** Longest a fetch waits for new records (default 500). */
  maxWaitMs?: number;
  /** Bytes a fetch may return per partition (default 1 MiB). */
  maxPartitionBytes?: number;
  /** Changes a `changes()` iterator buffers before the table stops fetching (default 10000). */
  maxBufferedChanges?: number;
}

export interface TableChange<K, V> {
  key: K;
  /** The new value; undefined when a tombstone deleted the key. */
  value: V | undefined;
  /** The value before; undefined when the key is new. */
  previous: V | undefined;
  partition: number;
  offset: number;
  timestamp: number;
}

interface Entry<K, V> {
  key: K;
  value: V;
  partition: number;
  offset: number;
}

interface PartitionReader {
  partition: number;
  position: number;
  /** The end offset at start; caught up when reached. */
  endAtStart: number;
  caughtUp: boolean;
}

interface ChangeQueue<K, V> {
  items: TableChange<K, V>[];
  wake: (() => void) | null;
}

const rawKey = (b: Buffer): string => b.toString('latin1');

/** Bytes a Fetch may return in all (its partitions share it). */
const FETCH_MAX_BYTES = 52428800;

export class Table<K = string, V = Buffer> extends EventEmitter {
  private readonly entries_ = new Map<string, Entry<K, V>>();
  private readonly keyDeserializer: Deserializer<K>;
  private readonly valueDeserializer: Deserializer<V> | null;
  private readonly isolationLevel: number;
  private readonly maxWaitMs: number;
  private readonly maxPartitionBytes: number;
  private readonly maxBuffered: number;
  private readonly readers = new Map<number, PartitionReader>();
  private readonly queues = new Set<ChangeQueue<K, V>>();
  private readonly spaceWaiters: Array<() => void> = [];
  private started: Promise<void> | null = null;
  private loops: Promise<void>[] = [];
  private closed = false;
  private failure: Error | null = null;
  private caughtUp_ = false;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;

  constructor(
    private readonly cluster: Cluster,
    readonly topic: string,
    private readonly opts: TableOptions<K, V> = {},
  ) {
    super();
    this.keyDeserializer = opts.keyDeserializer ?? (stringSerde as unknown as Deserializer<K>);
    this.valueDeserializer = opts.valueDeserializer ?? null;
    this.isolationLevel = opts.isolationLevel === 'read_uncommitted' ? 0 : 1;
    this.maxWaitMs = opts.maxWaitMs ?? 500;
    this.maxPartitionBytes = opts.maxPartitionBytes ?? 1048576;
    this.maxBuffered = Math.max(1, opts.maxBufferedChanges ?? 10000);
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // ready() may never be awaited; its rejection is reported through 'error' and iterators too.
    this.readyPromise.catch(() => {});
  }

  // ------------------------------------------------------------------------------ public api

  /** Starts loading; resolves once the end offsets are known and the fetch loops run. */
  start(): Promise<void> {
    this.started ??= this.begin();
    return this.started;
  }

  /** Resolves when the table holds everything the topic held when it started (starts it if needed). */
  async ready(): Promise<void> {
    await this.start();
    return this.readyPromise;
  }

  /** Every partition has reached the end offset it had at start. */
  get caughtUp(): boolean {
    return this.caughtUp_;
  }

  get size(): number {
    return this.entries_.size;
  }

  /** The value of `key`, or undefined. Keys are compared by their bytes: a string key is UTF-8 encoded unless the key deserializer is a Serde. */
  get(key: K | Buffer): V | undefined {
    return this.entries_.get(this.lookupKey(key))?.value;
  }

  has(key: K | Buffer): boolean {
    return this.entries_.has(this.lookupKey(key));
  }

  /** Where the current value of `key` was read from. */
  position(key: K | Buffer): { partition: number; offset: number } | undefined {
    const e = this.entries_.get(this.lookupKey(key));
    return e === undefined ? undefined : { partition: e.partition, offset: e.offset };
  }

  *entries(): IterableIterator<[K, V]> {
    for (const e of this.entries_.values()) yield [e.key, e.value];
  }

  *keys(): IterableIterator<K> {
    for (const e of this.entries_.values()) yield e.key;
  }

  *values(): IterableIterator<V> {
    for (const e of this.entries_.values()) yield e.value;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** A copy of the table as a Map (meaningful for keys compared by value: strings, numbers). */
  toMap(): Map<K, V> {
    return new Map(this.entries());
  }

  /** Where each partition is: next offset to read, end offset at start, caught up. */
  positions(): Array<{ partition: number; position: number; endOffsetAtStart: number; caughtUp: boolean }> {
    return [...this.readers.values()].map((r) => ({ partition: r.partition, position: r.position, endOffsetAtStart: r.endAtStart, caughtUp: r.caughtUp }));
  }

  /**
   * The changes applied from now on, as an async iterator; ends when the table closes, throws
   * if it fails. A slow reader holds the table back (see maxBufferedChanges), not the other way.
   */
  changes(): AsyncIterableIterator<TableChange<K, V>> {
    const q: ChangeQueue<K, V> = { items: [], wake: null };
    this.queues.add(q);
    const done = (): void => {
      this.queues.delete(q);
      this.releaseSpace();
    };
    const it: AsyncIterableIterator<TableChange<K, V>> = {
      next: async () => {
        for (;;) {
          if (q.items.length > 0) {
            const value = q.items.shift()!;
            if (q.items.length < this.maxBuffered) this.releaseSpace();
            return { value, done: false };
          }
          if (this.failure) {
            done();
            throw this.failure;
          }
          if (this.closed || !this.queues.has(q)) {
            done();
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => (q.wake = r));
          q.wake = null;
        }
      },
      return: async () => {
        done();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Stops reading and closes the connections. The map keeps its contents. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.caughtUp_ && this.failure === null) this.rejectReady(new StrandError('CLIENT_CLOSED', `table ${this.topic} closed before it caught up`));
    this.wakeAll();
    this.releaseSpace();
    await this.cluster.close();
    await Promise.allSettled(this.loops);
  }

  // ------------------------------------------------------------------------------- loading

  private lookupKey(key: K | Buffer): string {
    if (Buffer.isBuffer(key)) return rawKey(key);
    const ser = (this.keyDeserializer as Partial<Serializer<K>>).serialize;
    if (typeof ser === 'function') {
      const b = ser.call(this.keyDeserializer, key as K, this.topic);
      if (b === null) throw new StrandError('INVALID_CONFIG', 'the key serializer turned a key into null');
      return rawKey(b);
    }
    if (typeof key === 'string') return rawKey(Buffer.from(key, 'utf8'));
    throw new StrandError('INVALID_CONFIG', 'get() with a non-string key needs a key Serde (serialize and deserialize) or the key bytes');
  }

  private async begin(): Promise<void> {
    try {
      const info = await this.cluster.topic(this.topic);
      const wanted = this.opts.partitions ?? info.partitions.map((p) => p.partition);
      for (const p of wanted) {
        if (info.partitions[p] === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${this.topic}-${p}`);
      }
      const start = await this.listOffsets(wanted, -2);
      const end = await this.listOffsets(wanted, -1);
      for (const p of wanted) {
        const r: PartitionReader = { partition: p, position: start.get(p)!, endAtStart: end.get(p)!, caughtUp: false };
        r.caughtUp = r.position >= r.endAtStart;
        this.readers.set(p, r);
      }
    } catch (e) {
      this.fail(e);
      throw e;
    }
    this.checkCaughtUp();
    if (this.closed) return;
    this.loops = [this.loop()];
  }

  /** ListOffsets (timestamp -2 log start, -1 end) for the partitions, from each one's leader. */
  private async listOffsets(partitions: number[], timestamp: number): Promise<Map<number, number>> {
    return this.cluster.withRetry(`ListOffsets ${this.topic}`, async () => {
      await this.cluster.topic(this.topic);
      const byLeader = this.byLeader(partitions);
      const out = new Map<number, number>();
      for (const [leader, ps] of byLeader) {
        const conn = await this.cluster.connection(leader);
        const resp = await conn.request(ListOffsetsApi, {
          replicaId: -1,
          isolationLevel: this.isolationLevel,
          timeoutMs: 30000,
          topics: [{ name: this.topic, partitions: ps.map((p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 })) }],
        });
        for (const t of resp.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `ListOffsets ${this.topic}-${p.partitionIndex}`);
            out.set(p.partitionIndex, p.offset);
          }
        }
      }
      for (const p of partitions) if (!out.has(p)) throw new StrandError('CORRUPT_RESPONSE', `ListOffsets did not answer ${this.topic}-${p}`, { retriable: true });
      return out;
    });
  }

  private byLeader(partitions: number[]): Map<number, number[]> {
    const byLeader = new Map<number, number[]>();
    for (const p of partitions) {
      const leader = this.cluster.leaderOf(this.topic, p);
      if (leader < 0) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `${this.topic}-${p}`);
      let l = byLeader.get(leader);
      if (l === undefined) byLeader.set(leader, (l = []));
      l.push(p);
    }
    return byLeader;
  }

  /** One loop for all partitions: a fetch per leader at a time, in parallel. */
  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      try {
        await this.waitForSpace();
        if (this.closed) return;
        const byLeader = this.byLeader([...this.readers.keys()]);
        await Promise.all([...byLeader].map(([leader, ps]) => this.fetchFrom(leader, ps)));
        attempt = 0;
      } catch (e) {
        if (this.closed) return;
        if (e instanceof StrandError && e.retriable) {
          attempt++;
          await sleep(backoffMs(attempt, 100, 2000));
          await this.cluster.refreshMetadata([this.topic]).catch(() => {});
          continue;
        }
        this.fail(e);
        return;
      }
    }
  }

  private async fetchFrom(leader: number, partitions: number[]): Promise<void> {
    const conn = await this.cluster.connection(leader, 'fetch');
    const sent = new Map(partitions.map((p) => [p, this.readers.get(p)!.position]));
    const resp = await conn.request(
      FetchApi,
      {
        clusterId: null,
        replicaId: -1,
        replicaState: { replicaId: -1, replicaEpoch: -1 },
        maxWaitMs: this.maxWaitMs,
        minBytes: 1,
        maxBytes: FETCH_MAX_BYTES,
        isolationLevel: this.isolationLevel,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          {
            topic: this.topic,
            topicId: ZERO_UUID,
            partitions: partitions.map((p) => ({
              partition: p,
              currentLeaderEpoch: -1,
              fetchOffset: sent.get(p)!,
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: this.maxPartitionBytes,
              replicaDirectoryId: ZERO_UUID,
            })),
          },
        ],
        forgottenTopicsData: [],
        rackId: '',
      },
      { extraTimeoutMs: this.maxWaitMs },
    );
    if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, 'Fetch');
    // An empty partition means "nothing to read there" only if the response was not cut short by
    // its byte limit (a broker leaves the partitions after the limit empty).
    let returned = 0;
    for (const t of resp.responses) for (const p of t.partitions) returned += p.records === null ? 0 : p.records.length;
    const emptyMeansNothing = returned + this.maxPartitionBytes <= FETCH_MAX_BYTES;
    let retriable: KafkaError | null = null;
    for (const t of resp.responses) {
      for (const p of t.partitions) {
        const r = this.readers.get(p.partitionIndex);
        if (r === undefined || sent.get(p.partitionIndex) !== r.position || this.closed) continue;
        const e = await this.apply(r, p, emptyMeansNothing);
        if (e !== null) retriable = e;
      }
    }
    this.checkCaughtUp();
    if (retriable !== null) throw retriable;
  }

  /** Applies one partition's fetched records; returns a retriable error to back off on. */
  private async apply(r: PartitionReader, p: FetchResponsePartitionData, emptyMeansNothing: boolean): Promise<KafkaError | null> {
    if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
      // The log start moved past us (records deleted): start again from the new log start.
      r.position = (await this.listOffsets([r.partition], -2)).get(r.partition)!;
      return null;
    }
    if (p.errorCode !== 0) {
      const e = new KafkaError(p.errorCode, `Fetch ${this.topic}-${r.partition}`);
      if (e.retriable) return e;
      throw e;
    }
    const bytes = recordsInMemory(p.records);
    const batches = bytes === null || bytes.length === 0 ? [] : decodeRecordBatches(bytes);
    if (batches.length === 0) {
      // Nothing readable from here: whatever lies below the end offset was compacted away or is
      // not readable (markers). The partition has everything it can have.
      // (A fetch below the end offset with data there answers at once, with at least one batch.)
      if (emptyMeansNothing) r.caughtUp = true;
      return null;
    }
    const aborted = this.isolationLevel === 1 && p.abortedTransactions ? [...p.abortedTransactions].sort((a, b) => a.firstOffset - b.firstOffset) : [];
    const abortedProducers = new Set<number>();
    for (const b of batches) {
      const h = b.header;
      const last = h.baseOffset + h.lastOffsetDelta;
      while (aborted.length > 0 && aborted[0]!.firstOffset <= last) abortedProducers.add(aborted.shift()!.producerId);
      if (isControlBatch(h)) {
        abortedProducers.delete(h.producerId);
      } else if (!(isTransactional(h) && abortedProducers.has(h.producerId))) {
        for (const rec of b.records) {
          const offset = h.baseOffset + rec.offsetDelta;
          if (offset < r.position || rec.key === null) continue;
          const timestamp = h.attributes & 8 ? h.maxTimestamp : h.baseTimestamp + rec.timestampDelta;
          this.applyRecord(r.partition, offset, timestamp, rec.key, rec.value);
        }
      }
      r.position = Math.max(r.position, last + 1);
    }
    if (!r.caughtUp && r.position >= r.endAtStart) r.caughtUp = true;
    return null;
  }

  private applyRecord(partition: number, offset: number, timestamp: number, key: Buffer, value: Buffer | null): void {
    const k = rawKey(key);
    const before = this.entries_.get(k);
    let change: TableChange<K, V>;
    if (value === null) {
      if (before === undefined) return;
      this.entries_.delete(k);
      change = { key: before.key, value: undefined, previous: before.value, partition, offset, timestamp };
    } else {
      const v = this.valueDeserializer ? this.valueDeserializer.deserialize(value, this.topic) : (value as unknown as V);
      const dk = before?.key ?? this.keyDeserializer.deserialize(key, this.topic);
      this.entries_.set(k, { key: dk, value: v, partition, offset });
      change = { key: dk, value: v, previous: before?.value, partition, offset, timestamp };
    }
    this.emit('change', change);
    for (const q of this.queues) {
      q.items.push(change);
      q.wake?.();
    }
  }

  private checkCaughtUp(): void {
    if (this.caughtUp_ || this.closed) return;
    for (const r of this.readers.values()) if (!r.caughtUp) return;
    this.caughtUp_ = true;
    this.resolveReady();
    this.emit('caughtUp');
  }

  private fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (this.failure !== null) return;
    this.failure = err;
    if (!this.caughtUp_) this.rejectReady(err);
    this.wakeAll();
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private wakeAll(): void {
    for (const q of this.queues) q.wake?.();
  }

  private async waitForSpace(): Promise<void> {
    while (!this.closed && [...this.queues].some((q) => q.items.length >= this.maxBuffered)) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
  }

  private releaseSpace(): void {
    for (const w of this.spaceWaiters.splice(0)) w();
  }
}
