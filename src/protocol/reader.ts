/**
 * Reader: big-endian primitives, varints and Kafka's compact types over one Buffer.
 *
 * The error is sticky (as in franz-go's kbin): a read past the end, a negative length where none
 * is allowed, or a count larger than the bytes left sets `error` and returns a zero value. Callers
 * decode a whole message and check `ok` once at the end, so a short or hostile buffer can never
 * throw out of a decoder or make it allocate more than the input justifies.
 */

const TWO_POW_32 = 4294967296;

export class Reader {
  offset: number;
  error: string | null = null;

  constructor(readonly buf: Buffer, offset = 0, readonly end = buf.length) {
    this.offset = offset;
  }

  get ok(): boolean {
    return this.error === null;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(reason: string): void {
    if (this.error === null) this.error = reason;
    this.offset = this.end;
  }

  private need(n: number): boolean {
    if (this.error !== null) return false;
    if (n < 0 || this.offset + n > this.end) {
      this.fail(`need ${n} bytes at offset ${this.offset}, have ${this.end - this.offset}`);
      return false;
    }
    return true;
  }

  int8(): number {
    if (!this.need(1)) return 0;
    return this.buf.readInt8(this.offset++);
  }

  uint8(): number {
    if (!this.need(1)) return 0;
    return this.buf[this.offset++]!;
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    if (!this.need(2)) return 0;
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  uint16(): number {
    if (!this.need(2)) return 0;
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    if (!this.need(4)) return 0;
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(): number {
    if (!this.need(4)) return 0;
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** INT64 as a JS number: exact within ±2^53, which covers offsets, timestamps and ids in practice. */
  int64(): number {
    if (!this.need(8)) return 0;
    const hi = this.buf.readInt32BE(this.offset);
    const lo = this.buf.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return hi * TWO_POW_32 + lo;
  }

  float64(): number {
    if (!this.need(8)) return 0;
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }

  uuid(): string {
    if (!this.need(16)) return ZERO_UUID;
    const v = this.buf.toString('base64url', this.offset, this.offset + 16);
    this.offset += 16;
    return v;
  }

  unsignedVarint(): number {
    // Most varints (record lengths, deltas, counts) are one byte.
    if (this.error === null && this.offset < this.end) {
      const first = this.buf[this.offset]!;
      if (first < 0x80) {
        this.offset++;
        return first;
      }
    }
    let value = 0;
    let mult = 1;
    for (let i = 0; i < 5; i++) {
      if (!this.need(1)) return 0;
      const b = this.buf[this.offset++]!;
      value += (b & 0x7f) * mult;
      if ((b & 0x80) === 0) return value;
      mult *= 128;
    }
    this.fail('unsigned varint longer than 5 bytes');
    return 0;
  }

  /** Zig-zag VARINT (int32). */
  varint(): number {
    const u = this.unsignedVarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** Zig-zag VARLONG as a number (exact within ±2^53). */
  varlong(): number {
    let value = 0;
    let mult = 1;
    for (let i = 0; i < 10; i++) {
      if (!this.need(1)) return 0;
      const b = this.buf[this.offset++]!;
      value += (b & 0x7f) * mult;
      if ((b & 0x80) === 0) return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
      mult *= 128;
    }
    this.fail('varlong longer than 10 bytes');
    return 0;
  }

  /** Raw bytes without a length prefix; a view into the input, not a copy. */
  raw(n: number): Buffer {
    if (!this.need(n)) return EMPTY;
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  private lengthCheck(n: number, what: string): boolean {
    if (this.error !== null) return false;
    if (n > this.end - this.offset) {
      this.fail(`${what} length ${n} exceeds the ${this.end - this.offset} bytes left`);
      return false;
    }
    return true;
  }

  string(): string {
    const n = this.int16();
    if (n < 0) {
      this.fail('null where a string is required');
      return '';
    }
    return this.utf8(n);
  }

  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    return this.utf8(n);
  }

  compactString(): string {
    const n = this.unsignedVarint() - 1;
    if (n < 0) {
      this.fail('null where a compact string is required');
      return '';
    }
    return this.utf8(n);
  }

  compactNullableString(): string | null {
    const n = this.unsignedVarint() - 1;
    if (n < 0) return null;
    return this.utf8(n);
  }

  private utf8(n: number): string {
    if (!this.lengthCheck(n, 'string')) return '';
    const v = this.buf.toString('utf8', this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  bytes(): Buffer {
    const n = this.int32();
    if (n < 0) {
      this.fail('null where bytes are required');
      return EMPTY;
    }
    return this.lengthCheck(n, 'bytes') ? this.raw(n) : EMPTY;
  }

  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    return this.lengthCheck(n, 'bytes') ? this.raw(n) : EMPTY;
  }

  compactBytes(): Buffer {
    const n = this.unsignedVarint() - 1;
    if (n < 0) {
      this.fail('null where compact bytes are required');
      return EMPTY;
    }
    return this.lengthCheck(n, 'bytes') ? this.raw(n) : EMPTY;
  }

  compactNullableBytes(): Buffer | null {
    const n = this.unsignedVarint() - 1;
    if (n < 0) return null;
    return this.lengthCheck(n, 'bytes') ? this.raw(n) : EMPTY;
  }

  /**
   * An array count (INT32, or UNSIGNED_VARINT n+1 when compact). -1 means null. Every element
   * takes at least `minElementBytes` bytes, so a count the remaining input cannot hold is refused
   * before anything is allocated.
   */
  arrayLength(compact: boolean, minElementBytes = 1): number {
    const n = compact ? this.unsignedVarint() - 1 : this.int32();
    if (this.error !== null) return -1;
    if (n < -1) {
      this.fail(`negative array length ${n}`);
      return -1;
    }
    if (n > 0 && n * minElementBytes > this.end - this.offset) {
      this.fail(`array of ${n} elements exceeds the ${this.end - this.offset} bytes left`);
      return -1;
    }
    return n;
  }

  /** Reads a tag buffer, handing each tag to `onTag` (which must consume exactly `size` bytes) or skipping it. */
  taggedFields(onTag?: (tag: number, size: number, r: Reader) => boolean): void {
    const count = this.unsignedVarint();
    for (let i = 0; i < count && this.error === null; i++) {
      const tag = this.unsignedVarint();
      const size = this.unsignedVarint();
      if (!this.lengthCheck(size, 'tagged field')) return;
      const start = this.offset;
      if (onTag !== undefined && onTag(tag, size, this)) {
        if (this.error === null && this.offset !== start + size) this.fail(`tagged field ${tag} size mismatch`);
      } else {
        this.offset = start + size;
      }
    }
  }
}

export const EMPTY = Buffer.alloc(0);
export const ZERO_UUID = 'AAAAAAAAAAAAAAAAAAAAAA';
