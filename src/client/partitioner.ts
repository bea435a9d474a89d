/**
 * Key → partition, as the Java client does it, so a key lands on the same partition whichever
 * client wrote it: `positive(murmur2(keyBytes)) % numPartitions`, where murmur2 is the 32-bit
 * MurmurHash2 with Kafka's seed 0x9747b28c and `positive` clears the sign bit. librdkafka's
 * `murmur2_random` partitioner and KafkaJS's default partitioner give the same answer.
 *
 * Keyless records use sticky partitioning (KIP-480): all go to one partition until its batch is
 * sent, then the next batch picks another partition at random; fewer, fuller batches.
 */

const M = 0x5bd1e995;
const SEED = 0x9747b28c;

/** Kafka's murmur2 of `data`, as a signed 32-bit integer (Java's `Utils.murmur2`). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Java's `Utils.toPositive`: the sign bit cleared (not Math.abs). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition the Java client chooses for a key. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  return toPositive(murmur2(key)) % numPartitions;
}

/** A custom partitioner: return a partition index, or undefined to fall back to the default. */
export type Partitioner = (args: { topic: string; key: Buffer | null; value: Buffer | null; numPartitions: number }) => number | undefined;
