/**
 * Transactional offset commits waiting for their transaction's end (Kafka's pending
 * transactional offsets in GroupMetadata).
 *
 * TxnOffsetCommit writes OffsetCommit records to the group's partition of `__consumer_offsets` in
 * a transactional batch of the producer; they are held here, invisible to OffsetFetch, until the
 * transaction coordinator writes the COMMIT marker to that partition (they then become the
 * group's committed offsets, a later log offset winning as for plain commits) or the ABORT marker
 * (they are dropped). Replay after a restart rebuilds the same state from the batches and markers.
 * While any are pending for a partition, OffsetFetch with require_stable answers
 * UNSTABLE_OFFSET_COMMIT for it.
 */
import type { CommittedOffset } from './group.js';

export interface PendingOffset {
  groupId: string;
  /** offsetKey(topic, partition) */
  key: string;
  value: CommittedOffset;
}

export class PendingTxnOffsets {
  /** `${offsetsPartition}:${producerId}` → offsets written in the open transaction. */
  private readonly byProducer = new Map<string, PendingOffset[]>();
  /** groupId → offsetKey → number of pending entries (for require_stable). */
  private readonly byGroup = new Map<string, Map<string, number>>();

  add(offsetsPartition: number, producerId: number, entry: PendingOffset): void {
    const k = `${offsetsPartition}:${producerId}`;
    let l = this.byProducer.get(k);
    if (l === undefined) this.byProducer.set(k, (l = []));
    l.push(entry);
    let g = this.byGroup.get(entry.groupId);
    if (g === undefined) this.byGroup.set(entry.groupId, (g = new Map()));
    g.set(entry.key, (g.get(entry.key) ?? 0) + 1);
  }

  /** Removes and returns what `producerId` left pending on `offsetsPartition`. */
  take(offsetsPartition: number, producerId: number): PendingOffset[] {
    const k = `${offsetsPartition}:${producerId}`;
    const l = this.byProducer.get(k) ?? [];
    this.byProducer.delete(k);
    for (const e of l) {
      const g = this.byGroup.get(e.groupId);
      if (g === undefined) continue;
      const n = (g.get(e.key) ?? 1) - 1;
      if (n <= 0) g.delete(e.key);
      else g.set(e.key, n);
      if (g.size === 0) this.byGroup.delete(e.groupId);
    }
    return l;
  }

  /** Forgets every pending offset of `offsetsPartition` (its coordinator moved away). */
  dropPartition(offsetsPartition: number): void {
    for (const k of [...this.byProducer.keys()]) {
      if (k.startsWith(`${offsetsPartition}:`)) this.take(offsetsPartition, Number(k.slice(k.indexOf(':') + 1)));
    }
  }

  /** Moves everything `other` holds into this one (a partition's replay, once it is installed). */
  takeAllFrom(other: PendingTxnOffsets): void {
    for (const [k, entries] of other.byProducer) {
      const [p, pid] = k.split(':').map(Number) as [number, number];
      for (const e of entries) this.add(p, pid, e);
    }
    other.byProducer.clear();
    other.byGroup.clear();
  }

  /** Whether the group has a pending transactional offset for `key` (any partition when omitted). */
  has(groupId: string, key?: string): boolean {
    const g = this.byGroup.get(groupId);
    if (g === undefined) return false;
    return key === undefined ? g.size > 0 : g.has(key);
  }
}
