/**
 * A small seeded PRNG (mulberry32) for property tests: the same seed gives the same cases, and a
 * failing case reports its seed so it can be replayed.
 */

export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  bool(pTrue = 0.5): boolean {
    return this.next() < pTrue;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }

  /** Bytes that compress: runs of a few symbols. */
  compressibleBytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    const alphabet = this.int(1, 8);
    for (let i = 0; i < n; i++) b[i] = 97 + Math.floor(this.next() * alphabet);
    return b;
  }

  /** A string with some multi-byte UTF-8 characters. */
  string(maxChars: number): string {
    const chars = ['a', 'b', 'z', '-', '_', '.', 'é', 'ß', '中', '🚀'];
    let s = '';
    const n = this.int(0, maxChars);
    for (let i = 0; i < n; i++) s += this.pick(chars);
    return s;
  }
}

/** The same generator as a bare function returning numbers in [0, 1). */
export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}
