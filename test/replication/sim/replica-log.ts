/**
 * A partition replica's log on the simulated disk of the replication simulation: batches of record
 * ids (each record is a unique string, so the checker can tell records apart), the leader epoch
 * cache (the real `LeaderEpochFileCache` of src/storage, kept in memory) and the high watermark.
 *
 * Semantics follow PartitionLog (src/storage/log.ts): leader appends stamp the leader epoch and
 * assign offsets; follower appends keep offsets and epochs and must start at or after the log end
 * offset; truncation removes whole batches and truncates the epoch cache; the high watermark only
 * moves forward except when truncation pulls it down.
 *
 * Durability: `volatile` is what the process sees, `durable` what survives a machine crash (a
 * power loss). flush() makes the volatile log durable. A process crash (kill -9) keeps what was
 * written (the page cache survives); a machine crash keeps the durable log plus, if nothing was
 * truncated since the last flush, a random prefix of the unflushed batches (a torn write). After
 * either, the epoch cache is what the checkpoint would give on load: the entries below the
 * recovered log end (the checkpoint is written before the batches of a new epoch).
 */
import assert from 'node:assert/strict';
import { LeaderEpochFileCache } from '../../../src/storage/leader-epoch-cache.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../../src/protocol/records.js';
import type { FollowerLog } from '../../../src/broker/replication/partition-state.js';
import type { Random } from '../../raft/sim/world.js';

export interface SimBatch {
  baseOffset: number;
  /** Partition leader epoch the batch was written in. */
  epoch: number;
  /** One id per record: offsets baseOffset .. baseOffset + records.length - 1. */
  records: readonly string[];
}

export const lastOffsetOf = (b: SimBatch): number => b.baseOffset + b.records.length - 1;

interface LogImage {
  start: number;
  batches: SimBatch[];
}

const endOf = (image: LogImage): number => (image.batches.length === 0 ? image.start : lastOffsetOf(image.batches[image.batches.length - 1]!) + 1);

const encoded = new WeakMap<SimBatch, Buffer>();
const decoded = new WeakMap<Buffer, SimBatch[]>();

/**
 * Batches as they travel in a Fetch response: real record batches v2 (base offset, partition
 * leader epoch, one record per id with the id as value), encoded once per batch.
 */
export function encodeBatches(batches: readonly SimBatch[]): Buffer {
  const parts = batches.map((b) => {
    let bytes = encoded.get(b);
    if (bytes === undefined) {
      bytes = encodeRecordBatch({
        baseOffset: b.baseOffset,
        partitionLeaderEpoch: b.epoch,
        baseTimestamp: 0,
        records: b.records.map((id) => ({ key: null, value: Buffer.from(id), timestamp: 0 })),
      });
      encoded.set(b, bytes);
    }
    return bytes;
  });
  const buf = Buffer.concat(parts);
  decoded.set(buf, [...batches]);
  return buf;
}

export function decodeBatches(buf: Buffer): SimBatch[] {
  const known = decoded.get(buf);
  if (known !== undefined) return known;
  return decodeRecordBatches(buf).map((b) => ({
    baseOffset: b.header.baseOffset,
    epoch: b.header.partitionLeaderEpoch,
    records: b.records.map((r) => r.value!.toString('utf8')),
  }));
}

/**
 * The FollowerLog methods are asynchronous like PartitionLog's, but take effect when called (the
 * simulation awaits them before its next event, so nothing interleaves).
 */
export class SimReplicaLog implements FollowerLog {
  private volatile: LogImage = { start: 0, batches: [] };
  private durable: LogImage = { start: 0, batches: [] };
  private truncatedSinceFlush = false;
  /** The real epoch cache (in memory: the simulation models its file with the rule above). */
  leaderEpochCache = new LeaderEpochFileCache(null);
  private hw = 0;
  /** Offsets below this are durable (flush). */
  private flushedEnd = 0;

  get logStartOffset(): number {
    return this.volatile.start;
  }

  get logEndOffset(): number {
    return endOf(this.volatile);
  }

  get highWatermark(): number {
    return this.hw;
  }

  /** The offset below which everything is on durable storage. */
  get flushedEndOffset(): number {
    return Math.max(this.flushedEnd, this.volatile.start);
  }

  /** Forward only, capped at the log end (PartitionLog.updateHighWatermark). */
  updateHighWatermark(offset: number): number {
    const next = Math.min(offset, this.logEndOffset);
    if (next > this.hw) this.hw = next;
    return this.hw;
  }

  /** A leader append: offsets from the log end, stamped with `epoch`. */
  appendAsLeader(records: readonly string[], epoch: number): { firstOffset: number; lastOffset: number } {
    assert(records.length > 0);
    const baseOffset = this.logEndOffset;
    this.leaderEpochCache.assign(epoch, baseOffset);
    this.volatile.batches.push({ baseOffset, epoch, records: [...records] });
    return { firstOffset: baseOffset, lastOffset: baseOffset + records.length - 1 };
  }

  appendAsFollower(records: Buffer): Promise<void> {
    this.appendBatches(decodeBatches(records));
    return Promise.resolve();
  }

  truncateTo(offset: number): Promise<void> {
    this.truncate(offset);
    return Promise.resolve();
  }

  truncateFullyAndStartAt(offset: number): Promise<void> {
    this.restartAt(offset);
    return Promise.resolve();
  }

  /** Moves the log start offset up to `offset` (at most the high watermark), dropping whole batches below it. */
  deleteRecordsBefore(offset: number): Promise<number> {
    const start = Math.min(offset, this.hw);
    if (start > this.volatile.start) {
      this.volatile = { start, batches: this.volatile.batches.filter((b) => lastOffsetOf(b) >= start) };
      this.leaderEpochCache.truncateFromStart(start);
    }
    return Promise.resolve(this.volatile.start);
  }

  /** A follower append: batches as the leader has them; the first must start at or after the log end. */
  appendBatches(batches: readonly SimBatch[]): void {
    let next = this.logEndOffset;
    for (const b of batches) {
      assert(b.baseOffset >= next, `follower append at ${b.baseOffset} below the log end ${next}`);
      assert(b.records.length > 0);
      if (b.epoch >= 0) this.leaderEpochCache.assign(b.epoch, b.baseOffset);
      this.volatile.batches.push({ baseOffset: b.baseOffset, epoch: b.epoch, records: [...b.records] });
      next = lastOffsetOf(b) + 1;
    }
  }

  /** Kafka's assignEpochStartOffset when a replica becomes leader. */
  assignEpochStartOffset(epoch: number): void {
    this.leaderEpochCache.assign(epoch, this.logEndOffset);
  }

  /** Whole batches from the one holding `offset`; up to `maxRecords` records (at least one batch). */
  read(fromOffset: number, maxRecords: number): SimBatch[] {
    assert(fromOffset >= this.logStartOffset && fromOffset <= this.logEndOffset, `read at ${fromOffset} outside ${this.logStartOffset}..${this.logEndOffset}`);
    const out: SimBatch[] = [];
    let n = 0;
    for (const b of this.volatile.batches) {
      if (lastOffsetOf(b) < fromOffset) continue;
      if (out.length > 0 && n + b.records.length > maxRecords) break;
      out.push(b);
      n += b.records.length;
    }
    return out;
  }

  /** Removes whole batches from the one holding `offset` on (PartitionLog.truncateTo). */
  truncate(offset: number): void {
    if (offset >= this.logEndOffset) {
      this.leaderEpochCache.truncateFromEnd(this.logEndOffset);
      return;
    }
    assert(offset >= this.logStartOffset, `truncation to ${offset} below the log start ${this.logStartOffset}`);
    const keep = this.volatile.batches.filter((b) => lastOffsetOf(b) < offset);
    this.volatile.batches = keep;
    this.leaderEpochCache.truncateFromEnd(this.logEndOffset);
    this.hw = Math.min(this.hw, this.logEndOffset);
    this.flushedEnd = Math.min(this.flushedEnd, this.logEndOffset);
    this.truncatedSinceFlush = true;
  }

  /** Empties the log and restarts it at `offset`. */
  restartAt(offset: number): void {
    this.volatile = { start: offset, batches: [] };
    this.leaderEpochCache.clear();
    this.hw = offset;
    this.flushedEnd = offset;
    this.truncatedSinceFlush = true;
  }

  flush(): void {
    this.durable = { start: this.volatile.start, batches: [...this.volatile.batches] };
    this.flushedEnd = this.logEndOffset;
    this.truncatedSinceFlush = false;
  }

  /**
   * The process died. `machine`: the machine lost power too, so unflushed writes are lost (but for
   * a torn prefix). Returns the number of offsets lost. The high watermark restarts at `hwAfter`
   * (the replication-offset-checkpoint value the node had), capped at the log end.
   */
  crash(random: Random, machine: boolean, hwAfter: number): number {
    const before = this.logEndOffset;
    if (machine) {
      const kept: LogImage = { start: this.durable.start, batches: [...this.durable.batches] };
      if (!this.truncatedSinceFlush && this.volatile.start === kept.start && this.volatile.batches.length > kept.batches.length) {
        const extra = this.volatile.batches.length - kept.batches.length;
        kept.batches.push(...this.volatile.batches.slice(kept.batches.length, kept.batches.length + random.int(0, extra)));
      }
      this.volatile = kept;
      this.durable = { start: kept.start, batches: [...kept.batches] };
    } else {
      this.durable = { start: this.volatile.start, batches: [...this.volatile.batches] };
    }
    this.truncatedSinceFlush = false;
    this.flushedEnd = this.logEndOffset;
    this.leaderEpochCache.truncateFromEnd(this.logEndOffset);
    this.hw = Math.max(this.logStartOffset, Math.min(hwAfter, this.logEndOffset));
    return before - this.logEndOffset;
  }

  /** The record id at each offset, for the checker. */
  recordAt(offset: number): string | undefined {
    for (const b of this.volatile.batches) {
      if (offset >= b.baseOffset && offset <= lastOffsetOf(b)) return b.records[offset - b.baseOffset];
    }
    return undefined;
  }

  batches(): readonly SimBatch[] {
    return this.volatile.batches;
  }

  /** The epoch of the batch holding `offset`, -1 when none. */
  epochAt(offset: number): number {
    for (const b of this.volatile.batches) if (offset >= b.baseOffset && offset <= lastOffsetOf(b)) return b.epoch;
    return -1;
  }
}
