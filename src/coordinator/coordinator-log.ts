/**
 * Where the coordinators' records go: the partitions of `__consumer_offsets` /
 * `__transaction_state`.
 *
 * `CoordinatorLog` is the seam: the broker gives a coordinator `PartitionCoordinatorLog`, which
 * appends through the broker's replication path and replays the local partition logs; tests use
 * `MemoryCoordinatorLog` (a "restart" or a failover is another coordinator replaying the same
 * memory log). An append is one record batch (all or nothing after a crash) and resolves only
 * once the batch is committed — replicated to the ISR in a cluster (acks=-1), fsynced on a
 * single broker — so an acknowledged commit survives kill -9 and the loss of the leader. An
 * append to a partition this broker does not lead rejects with code NOT_LEADER_OR_FOLLOWER.
 */
import { Attr, decodeRecordBatches, encodeRecordBatch } from '../protocol/records.js';
import type { PartitionLog } from '../storage/log.js';
import type { AppendOrigin } from '../storage/producer-state.js';
import type { CoordinatorRecord } from './group-records.js';

export interface ReplayedRecord extends CoordinatorRecord {
  /** The record's offset in its partition. */
  offset: number;
  /** Set for a record of a transactional batch (a transactional offset commit): its producer id. */
  producerId?: number;
  /** Set for a transaction marker (control record) of `producerId`. */
  marker?: 'COMMIT' | 'ABORT';
}

/** A transactional append: the batch carries the producer id and epoch and the transactional bit. */
export interface TxnAppend {
  producerId: number;
  producerEpoch: number;
}

export interface CoordinatorLog {
  readonly partitions: number;
  /** Appends `records` to `partition` as one batch, durably; resolves with the offset of the first. */
  append(partition: number, records: CoordinatorRecord[], nowMs: number, txn?: TxnAppend): Promise<number>;
  /** Every record of `partition`, in offset order. */
  replay(partition: number, onRecord: (r: ReplayedRecord) => void): Promise<void>;
}

const READ_CHUNK_BYTES = 4 << 20;

/** What `PartitionCoordinatorLog` needs of the broker. */
export interface CoordinatorPartitionIo {
  /** The local log of `partition` of the topic (replay reads it), or undefined when it is not hosted here. */
  localLog(partition: number): PartitionLog | undefined;
  /**
   * Appends `batch` to `partition` as its leader and resolves with the first offset once it is
   * committed (acks=-1); rejects with code NOT_LEADER_OR_FOLLOWER when this broker does not lead it.
   */
  appendCommitted(partition: number, batch: Buffer, origin: AppendOrigin): Promise<number>;
}

export class PartitionCoordinatorLog implements CoordinatorLog {
  constructor(
    readonly topic: string,
    readonly partitions: number,
    private readonly io: CoordinatorPartitionIo,
  ) {
    if (partitions <= 0) throw new Error(`${topic} has no partitions`);
  }

  private log(partition: number): PartitionLog {
    const log = this.io.localLog(partition);
    if (log === undefined) throw new Error(`no log for ${this.topic}-${partition} on this broker`);
    return log;
  }

  async append(partition: number, records: CoordinatorRecord[], nowMs: number, txn?: TxnAppend): Promise<number> {
    const batch = encodeRecordBatch({
      records: records.map((r) => ({ key: r.key, value: r.value, timestamp: nowMs })),
      ...(txn === undefined ? {} : { producerId: txn.producerId, producerEpoch: txn.producerEpoch, transactional: true }),
    });
    // 'coordinator': no sequence checks, but a stale producer epoch is refused by the log.
    return this.io.appendCommitted(partition, batch, txn === undefined ? 'client' : 'coordinator');
  }

  async replay(partition: number, onRecord: (r: ReplayedRecord) => void): Promise<void> {
    const log = this.log(partition);
    let next = log.logStartOffset;
    const end = log.logEndOffset;
    while (next < end) {
      const buf = await log.read(next, READ_CHUNK_BYTES, end, true);
      const batches = decodeRecordBatches(buf);
      if (batches.length === 0) throw new Error(`offsets partition ${partition}: no complete batch at ${next} below ${end}`);
      for (const b of batches) {
        const h = b.header;
        const control = (h.attributes & Attr.control) !== 0;
        const transactional = (h.attributes & Attr.transactional) !== 0;
        for (const r of b.records) {
          const offset = h.baseOffset + r.offsetDelta;
          if (offset < next || r.key === null) continue;
          if (control) {
            const type = r.key.length >= 4 ? r.key.readInt16BE(2) : -1;
            if (type === 0 || type === 1) onRecord({ key: r.key, value: r.value, offset, producerId: h.producerId, marker: type === 1 ? 'COMMIT' : 'ABORT' });
          } else if (transactional) onRecord({ key: r.key, value: r.value, offset, producerId: h.producerId });
          else onRecord({ key: r.key, value: r.value, offset });
        }
        next = Math.max(next, b.header.baseOffset + b.header.lastOffsetDelta + 1);
      }
    }
  }
}

/** An in-memory log for tests; `failNext` makes appends reject (a storage error). */
export class MemoryCoordinatorLog implements CoordinatorLog {
  readonly data: ReplayedRecord[][];
  failNext = 0;

  constructor(readonly partitions: number) {
    this.data = Array.from({ length: partitions }, () => []);
  }

  async append(partition: number, records: CoordinatorRecord[], _nowMs?: number, txn?: TxnAppend): Promise<number> {
    await Promise.resolve();
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected append failure');
    }
    const log = this.data[partition]!;
    const first = log.length;
    for (const r of records) {
      log.push({ key: Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), offset: log.length, ...(txn === undefined ? {} : { producerId: txn.producerId }) });
    }
    return first;
  }

  /** A transaction marker, as the broker's marker writer would append it. */
  appendMarker(partition: number, producerId: number, commit: boolean): number {
    const log = this.data[partition]!;
    const key = Buffer.alloc(4);
    key.writeInt16BE(commit ? 1 : 0, 2);
    log.push({ key, value: null, offset: log.length, producerId, marker: commit ? 'COMMIT' : 'ABORT' });
    return log.length - 1;
  }

  async replay(partition: number, onRecord: (r: ReplayedRecord) => void): Promise<void> {
    for (const r of this.data[partition]!) onRecord(r);
  }
}
