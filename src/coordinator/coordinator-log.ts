/**
 * Where the group coordinator's records go: the partitions of `__consumer_offsets`.
 *
 * `CoordinatorLog` is the seam: the broker gives the coordinator `PartitionCoordinatorLog` over
 * the real partition logs; tests use `MemoryCoordinatorLog` (and a "restart" is a new coordinator
 * replaying the same memory log). An append is one record batch (all or nothing after a crash)
 * and resolves only once the batch is fsynced, so an acknowledged commit survives kill -9.
 */
import { decodeRecordBatches, encodeRecordBatch } from '../protocol/records.js';
import type { PartitionLog } from '../storage/log.js';
import type { CoordinatorRecord } from './group-records.js';

export interface ReplayedRecord extends CoordinatorRecord {
  /** The record's offset in its partition. */
  offset: number;
}

export interface CoordinatorLog {
  readonly partitions: number;
  /** Appends `records` to `partition` as one batch, durably; resolves with the offset of the first. */
  append(partition: number, records: CoordinatorRecord[], nowMs: number): Promise<number>;
  /** Every record of `partition`, in offset order. */
  replay(partition: number, onRecord: (r: ReplayedRecord) => void): Promise<void>;
}

const READ_CHUNK_BYTES = 4 << 20;

export class PartitionCoordinatorLog implements CoordinatorLog {
  constructor(private readonly logs: readonly PartitionLog[]) {
    if (logs.length === 0) throw new Error('the offsets topic has no partitions');
  }

  get partitions(): number {
    return this.logs.length;
  }

  private log(partition: number): PartitionLog {
    const log = this.logs[partition];
    if (log === undefined) throw new Error(`no log for offsets partition ${partition}`);
    return log;
  }

  async append(partition: number, records: CoordinatorRecord[], nowMs: number): Promise<number> {
    const log = this.log(partition);
    const batch = encodeRecordBatch({ records: records.map((r) => ({ key: r.key, value: r.value, timestamp: nowMs })) });
    const appended = await log.append(batch, 0);
    await log.flush();
    return appended.firstOffset;
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
        for (const r of b.records) {
          const offset = b.header.baseOffset + r.offsetDelta;
          if (offset < next || r.key === null) continue;
          onRecord({ key: r.key, value: r.value, offset });
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

  async append(partition: number, records: CoordinatorRecord[]): Promise<number> {
    await Promise.resolve();
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('injected append failure');
    }
    const log = this.data[partition]!;
    const first = log.length;
    for (const r of records) log.push({ key: Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), offset: log.length });
    return first;
  }

  async replay(partition: number, onRecord: (r: ReplayedRecord) => void): Promise<void> {
    for (const r of this.data[partition]!) onRecord(r);
  }
}
