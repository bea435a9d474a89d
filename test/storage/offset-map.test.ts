/**
 * The cleaner's offset map (src/storage/offset-map.ts) against a model: a JavaScript Map keyed by
 * each key's bytes, with the same capacity rule. Keys are drawn so that they collide in every way
 * the table must tell apart: the empty key, keys that differ only by trailing zero bytes, raw
 * keys of exactly 16 bytes, longer keys (stored by MD5) sharing their first 16 bytes, and enough
 * of them to make the table grow several times and wrap its probes around the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { OffsetMap, OFFSET_MAP_ENTRY_BYTES } from '../../src/storage/offset-map.js';
import { Prng } from '../protocol/prng.js';

/** A key from a small pool of awkward shapes, or a random one. */
function drawKey(rng: Prng, pool: readonly Buffer[]): Buffer {
  if (rng.bool(0.6)) return rng.pick(pool);
  return rng.bytes(rng.pick([0, 1, 2, 15, 16, 17, 40]));
}

function awkwardKeys(rng: Prng, n: number): Buffer[] {
  const keys: Buffer[] = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0]), Buffer.alloc(16), Buffer.alloc(17), Buffer.alloc(32)];
  const prefix = rng.bytes(16);
  for (let i = 0; i < n; i++) {
    switch (i % 5) {
      case 0: // differs only by trailing zeros from the next
        keys.push(Buffer.concat([Buffer.from(`k${i}`), Buffer.alloc(i % 4)]));
        break;
      case 1: // exactly 16 bytes
        keys.push(Buffer.from(`${i}`.padStart(16, 'x')));
        break;
      case 2: // longer than 16, same first 16 bytes as every other such key
        keys.push(Buffer.concat([prefix, Buffer.from(`${i}`)]));
        break;
      default:
        keys.push(rng.bytes(rng.int(0, 24)));
    }
  }
  return keys;
}

test('the offset map agrees with a model over random puts and gets (growth, wrap-around, every key shape)', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const rng = new Prng(seed);
    // From a map that stays at its first size to one that grows several times.
    const bufferBytes = rng.pick([24 * 8, 1600, 24 * 5000, 24 * 60000]);
    const map = new OffsetMap(bufferBytes);
    const model = new Map<string, number>();
    const pool = awkwardKeys(rng, rng.int(10, 3000));
    const ops = rng.int(2000, 40000);
    for (let i = 0; i < ops; i++) {
      const key = drawKey(rng, pool);
      const id = key.toString('hex');
      const where = `seed ${seed}, op ${i}, key ${id}`;
      if (rng.bool(0.7)) {
        const offset = rng.int(0, 2 ** 40);
        const fits = model.has(id) || model.size < map.capacity;
        assert.equal(map.put(key, offset), fits, where);
        if (fits) model.set(id, offset);
      } else {
        assert.equal(map.get(key), model.get(id), where);
      }
      assert.equal(map.size, model.size, where);
    }
    for (const [id, offset] of model) assert.equal(map.get(Buffer.from(id, 'hex')), offset, `seed ${seed}: final ${id}`);
    assert.equal(map.isFull, model.size >= map.capacity);
  }
});

test('the offset map: capacity is Kafka\'s load factor of 24-byte entries; when full it refuses new keys, still updates old ones', () => {
  assert.equal(OFFSET_MAP_ENTRY_BYTES, 24);
  assert.equal(new OffsetMap(1600).capacity, 60);
  assert.equal(new OffsetMap(128 * 1024 * 1024).capacity, 5_033_164);
  const map = new OffsetMap(24 * 10); // 9 entries
  for (let i = 0; i < 9; i++) assert.ok(map.put(Buffer.from(`key-${i}`), i));
  assert.ok(map.isFull);
  assert.equal(map.put(Buffer.from('key-9'), 9), false);
  assert.equal(map.get(Buffer.from('key-9')), undefined);
  assert.ok(map.put(Buffer.from('key-3'), 33), 'a key already in a full map is updated');
  assert.equal(map.get(Buffer.from('key-3')), 33);
  assert.equal(map.size, 9);
});

test('the offset map tells a long key from a 16-byte key equal to its MD5', () => {
  const long = Buffer.from('a key longer than sixteen bytes');
  const digest = createHash('md5').update(long).digest();
  const map = new OffsetMap(1 << 20);
  map.put(long, 1);
  assert.equal(map.get(digest), undefined);
  map.put(digest, 2);
  assert.equal(map.get(long), 1);
  assert.equal(map.get(digest), 2);
  assert.equal(map.size, 2);
});

test('the offset map tells apart keys whose bytes differ only in length (zero padding), in a nearly full table', () => {
  // 20 slots, 18 entries allowed: every probe runs through other entries. All these keys pad to
  // the same 16 zero bytes; only their length (and the 17-byte one's MD5) tells them apart.
  const map = new OffsetMap(24 * 20);
  assert.equal(map.capacity, 18);
  const keys = Array.from({ length: 18 }, (_, n) => Buffer.alloc(n));
  keys.forEach((k, i) => assert.ok(map.put(k, 100 + i), `put ${k.length}`));
  assert.equal(map.size, 18);
  keys.forEach((k, i) => assert.equal(map.get(k), 100 + i, `get ${k.length}`));
  assert.equal(map.put(Buffer.alloc(18), 1), false, 'full');
});
