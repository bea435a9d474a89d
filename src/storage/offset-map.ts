/**
 * The log cleaner's offset map (Kafka's SkimpyOffsetMap): key → the last offset seen for it over
 * a log's dirty section, bounded by `log.cleaner.dedupe.buffer.size`.
 *
 * An entry is a 16-byte key and an 8-byte offset, 24 bytes as in Kafka (plus one byte here that
 * says which kind of key it holds), in typed arrays: no object per key for the garbage collector
 * to allocate, promote and trace, and never more than the dedupe buffer's bytes (plus that byte a
 * slot). The JavaScript Map of strings it replaces held ~85 bytes of heap a key (~430 MB at the
 * default buffer's 5 million entries), all of it traced at every full collection while the
 * broker's event loop waits.
 *
 * Keys up to 16 bytes are stored as they are, so they never collide; a longer key is stored as
 * its MD5, as Kafka's map stores every key. The table is open addressing with linear probing.
 * It starts small and doubles while it is at most 3/4 full, up to the slots the dedupe buffer
 * allows, so a pass over a few thousand keys takes kilobytes; `capacity` (the entries allowed,
 * Kafka's load factor 0.9 of those slots) is what the cleaner sees.
 */
import { createHash } from 'node:crypto';

/** Kafka's SkimpyOffsetMap: a 16-byte hash and an 8-byte offset per entry. */
export const OFFSET_MAP_ENTRY_BYTES = 24;
/** Kafka's log.cleaner.io.buffer.load.factor. */
export const OFFSET_MAP_LOAD_FACTOR = 0.9;
const KEY_BYTES = 16;
const INITIAL_SLOTS = 1024;
/** `kinds` value of an empty slot; a raw key of length n is n + 1; a hashed key HASHED. */
const EMPTY = 0;
const HASHED = KEY_BYTES + 2;

export class OffsetMap {
  /** Entries the map takes before put refuses new keys. */
  readonly capacity: number;
  private readonly maxSlots: number;
  private slots: number;
  private entries = 0;
  /** Per slot: EMPTY, a raw key's length + 1, or HASHED. */
  private kinds: Uint8Array;
  /** Per slot: the key (raw, zero-padded, or its MD5) as four 32-bit words. */
  private keys: Uint32Array;
  private offsets: Float64Array;
  /** The key being looked up, in the same form. */
  private readonly probe = new Uint32Array(KEY_BYTES / 4);
  private readonly probeBytes = new Uint8Array(this.probe.buffer);
  private probeKind = EMPTY;

  constructor(dedupeBufferBytes: number) {
    this.capacity = Math.max(1, Math.floor((dedupeBufferBytes * OFFSET_MAP_LOAD_FACTOR) / OFFSET_MAP_ENTRY_BYTES));
    // Room for every entry allowed and at least one empty slot, which ends every probe.
    this.maxSlots = Math.max(this.capacity + 1, Math.floor(dedupeBufferBytes / OFFSET_MAP_ENTRY_BYTES));
    this.slots = Math.min(this.maxSlots, INITIAL_SLOTS);
    this.kinds = new Uint8Array(this.slots);
    this.keys = new Uint32Array(this.slots * 4);
    this.offsets = new Float64Array(this.slots);
  }

  get size(): number {
    return this.entries;
  }

  get isFull(): boolean {
    return this.entries >= this.capacity;
  }

  /** Records `offset` as the latest for `key`; false (nothing stored) when the key is new and the map is full. */
  put(key: Buffer, offset: number): boolean {
    this.load(key);
    let slot = this.find();
    if (this.kinds[slot] === EMPTY) {
      if (this.isFull) return false;
      if (this.entries + 1 > (this.slots * 3) / 4 && this.slots < this.maxSlots) {
        this.grow();
        slot = this.find();
      }
      this.kinds[slot] = this.probeKind;
      this.keys.set(this.probe, slot * 4);
      this.entries++;
    }
    this.offsets[slot] = offset;
    return true;
  }

  get(key: Buffer): number | undefined {
    this.load(key);
    const slot = this.find();
    return this.kinds[slot] === EMPTY ? undefined : this.offsets[slot];
  }

  /** Puts `key` in probe form: its bytes zero-padded, or its MD5 when longer than 16 bytes. */
  private load(key: Buffer): void {
    if (key.length <= KEY_BYTES) {
      this.probe.fill(0);
      this.probeBytes.set(key);
      this.probeKind = key.length + 1;
    } else {
      this.probeBytes.set(createHash('md5').update(key).digest());
      this.probeKind = HASHED;
    }
  }

  /** The slot holding the probe's key, or the empty slot where it would go. */
  private find(): number {
    const p = this.probe;
    const kind = this.probeKind;
    // FNV-1a over the four words and the kind, then murmur3's finaliser to spread the bits.
    let h = 0x811c9dc5 ^ kind;
    for (let i = 0; i < 4; i++) h = Math.imul(h ^ p[i]!, 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    let slot = (h >>> 0) % this.slots;
    for (;;) {
      const k = this.kinds[slot]!;
      if (k === EMPTY) return slot;
      const at = slot * 4;
      if (k === kind && this.keys[at] === p[0] && this.keys[at + 1] === p[1] && this.keys[at + 2] === p[2] && this.keys[at + 3] === p[3]) return slot;
      slot = slot + 1 === this.slots ? 0 : slot + 1;
    }
  }

  /** Doubles the table (up to maxSlots) and re-inserts every entry. Keeps the probe. */
  private grow(): void {
    const { kinds, keys, offsets, slots } = this;
    const probe = Uint32Array.from(this.probe);
    const probeKind = this.probeKind;
    this.slots = Math.min(this.maxSlots, slots * 2);
    this.kinds = new Uint8Array(this.slots);
    this.keys = new Uint32Array(this.slots * 4);
    this.offsets = new Float64Array(this.slots);
    for (let s = 0; s < slots; s++) {
      if (kinds[s] === EMPTY) continue;
      this.probe.set(keys.subarray(s * 4, s * 4 + 4));
      this.probeKind = kinds[s]!;
      const to = this.find();
      this.kinds[to] = kinds[s]!;
      this.keys.set(this.probe, to * 4);
      this.offsets[to] = offsets[s]!;
    }
    this.probe.set(probe);
    this.probeKind = probeKind;
  }
}
