/**
 * Writer: the encoding twin of Reader.
 *
 * Small fields go into a growing scratch buffer; large byte blobs (record batches read from a
 * segment) are kept by reference as separate chunks, so a Fetch response never copies its records.
 * `finish()` returns the chunks ready for a vectored socket write, and `toBuffer()` one Buffer.
 */

/**
 * Record bytes that are produced when the response is sent rather than when it is encoded (a
 * slice of a log segment: Kafka's FileRecords). The encoder needs only the length; the connection
 * streams the bytes with `readInto` and calls `release` when done or abandoned.
 */
export interface LazyRecords {
  readonly length: number;
  readInto(buf: Buffer, from: number, len: number): Promise<number>;
  /** Where the bytes are in a file, for sendfile; absent when they are not in one. */
  fileRegion?(): { fd: number; position: number };
  release(): void;
}

/** The value of a `records` field: bytes in memory, or bytes still in a file. */
export type Records = Buffer | LazyRecords;

export const isLazyRecords = (r: Records): r is LazyRecords => !Buffer.isBuffer(r);

/** Records decoded from the wire are always in memory. */
export function recordsInMemory(r: Records): Buffer;
export function recordsInMemory(r: Records | null): Buffer | null;
export function recordsInMemory(r: Records | null): Buffer | null {
  if (r !== null && !Buffer.isBuffer(r)) throw new TypeError('expected records in memory');
  return r;
}

/** A chunk of an encoded message. */
export type Chunk = Buffer | LazyRecords;

const TWO_POW_32 = 4294967296;
/** Blobs at least this large are referenced, not copied. */
const ZERO_COPY_MIN_BYTES = 4096;
const EMPTY = Buffer.alloc(0);

export class Writer {
  private buf: Buffer;
  private pos = 0;
  private chunks: Chunk[] = [];
  private chunkedBytes = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.chunkedBytes + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    // (After finish() the scratch is empty: it starts again at 256 bytes.)
    let size = Math.max(256, this.buf.length * 2);
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
    return this;
  }

  uint8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  bool(v: boolean): this {
    return this.uint8(v ? 1 : 0);
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  uint16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  int64(v: number): this {
    this.ensure(8);
    const hi = Math.floor(v / TWO_POW_32);
    const lo = v - hi * TWO_POW_32;
    this.buf.writeInt32BE(hi | 0, this.pos);
    this.buf.writeUInt32BE(lo >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  float64(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }

  uuid(v: string): this {
    const b = Buffer.from(v, 'base64url');
    if (b.length !== 16) throw new RangeError(`uuid must be 16 bytes, got ${b.length}`);
    return this.raw(b);
  }

  unsignedVarint(v: number): this {
    this.ensure(5);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  varint(v: number): this {
    return this.unsignedVarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  varlong(v: number): this {
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    this.ensure(10);
    while (z >= 0x80) {
      this.buf[this.pos++] = (z % 128) | 0x80;
      z = Math.floor(z / 128);
    }
    this.buf[this.pos++] = z;
    return this;
  }

  /** Raw bytes without a length prefix. */
  raw(b: Buffer | LazyRecords): this {
    if (!Buffer.isBuffer(b) || b.length >= ZERO_COPY_MIN_BYTES) {
      this.flushScratch();
      this.chunks.push(b);
      this.chunkedBytes += b.length;
      return this;
    }
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    return this;
  }

  private flushScratch(): void {
    if (this.pos === 0) return;
    const part = this.buf.subarray(0, this.pos);
    this.chunks.push(part);
    this.chunkedBytes += this.pos;
    this.buf = Buffer.allocUnsafe(Math.max(256, this.buf.length - this.pos));
    this.pos = 0;
  }

  string(v: string): this {
    const n = Buffer.byteLength(v);
    this.int16(n);
    this.ensure(n);
    this.pos += this.buf.write(v, this.pos, 'utf8');
    return this;
  }

  nullableString(v: string | null): this {
    return v === null ? this.int16(-1) : this.string(v);
  }

  compactString(v: string): this {
    const n = Buffer.byteLength(v);
    this.unsignedVarint(n + 1);
    this.ensure(n);
    this.pos += this.buf.write(v, this.pos, 'utf8');
    return this;
  }

  compactNullableString(v: string | null): this {
    return v === null ? this.unsignedVarint(0) : this.compactString(v);
  }

  bytes(v: Buffer | LazyRecords): this {
    return this.int32(v.length).raw(v);
  }

  nullableBytes(v: Buffer | LazyRecords | null): this {
    return v === null ? this.int32(-1) : this.bytes(v);
  }

  compactBytes(v: Buffer | LazyRecords): this {
    return this.unsignedVarint(v.length + 1).raw(v);
  }

  compactNullableBytes(v: Buffer | LazyRecords | null): this {
    return v === null ? this.unsignedVarint(0) : this.compactBytes(v);
  }

  arrayLength(n: number, compact: boolean): this {
    return compact ? this.unsignedVarint(n + 1) : this.int32(n);
  }

  /** An empty tag buffer. */
  emptyTaggedFields(): this {
    return this.uint8(0);
  }

  /** Overwrites an INT32 at an absolute position already written (for length prefixes). */
  patchInt32(at: number, v: number): void {
    if (at < this.chunkedBytes) throw new RangeError('cannot patch bytes already handed off as a chunk');
    this.buf.writeInt32BE(v | 0, at - this.chunkedBytes);
  }

  /** The encoded bytes as chunks, in order; large blobs are the caller's buffers, not copies. */
  finish(): Chunk[] {
    // The last part of the scratch goes out as it is; no new scratch until more is written.
    if (this.pos > 0) {
      this.chunks.push(this.buf.subarray(0, this.pos));
      this.buf = EMPTY;
      this.pos = 0;
    }
    const out = this.chunks;
    this.chunks = [];
    this.chunkedBytes = 0;
    return out;
  }

  /** One Buffer of everything written (throws if lazy records were written). */
  toBuffer(): Buffer {
    const chunks = this.finish();
    if (!chunks.every((c): c is Buffer => Buffer.isBuffer(c))) throw new TypeError('toBuffer() with lazy records; stream finish() instead');
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }
}
