/** Builds magic-2 record batches by hand for storage tests (real CRC-32C, minimal records). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { crc32c } from '@node-rs/crc32';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogConfig } from '../../src/storage/log.js';

function zigzagVarint(out: number[], v: number): void {
  // Values here stay small; encode as zigzag varlong via BigInt-free math.
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
}

export interface BatchSpec {
  records: number;
  baseTimestamp?: number;
  /** Per-record timestamp delta (default i). */
  timestampDelta?: (i: number) => number;
  valueBytes?: number;
  /** Fill byte or function for values. */
  fill?: number;
  producerId?: number;
}

export function makeBatch(spec: BatchSpec): Buffer {
  const baseTs = spec.baseTimestamp ?? 1_700_000_000_000;
  const valueBytes = spec.valueBytes ?? 10;
  const recs: Buffer[] = [];
  let maxDelta = 0;
  for (let i = 0; i < spec.records; i++) {
    const delta = spec.timestampDelta ? spec.timestampDelta(i) : i;
    if (delta > maxDelta) maxDelta = delta;
    const body: number[] = [0];
    zigzagVarint(body, delta);
    zigzagVarint(body, i);
    zigzagVarint(body, -1);
    zigzagVarint(body, valueBytes);
    const value = Buffer.alloc(valueBytes, spec.fill ?? (i & 0xff));
    const tail: number[] = [];
    zigzagVarint(tail, 0);
    const len: number[] = [];
    zigzagVarint(len, body.length + valueBytes + tail.length);
    recs.push(Buffer.from(len), Buffer.from(body), value, Buffer.from(tail));
  }
  const records = Buffer.concat(recs);
  const buf = Buffer.alloc(61 + records.length);
  buf.writeBigInt64BE(0n, 0);
  buf.writeInt32BE(buf.length - 12, 8);
  buf.writeInt32BE(-1, 12);
  buf.writeInt8(2, 16);
  buf.writeInt16BE(0, 21);
  buf.writeInt32BE(spec.records - 1, 23);
  buf.writeBigInt64BE(BigInt(baseTs), 27);
  buf.writeBigInt64BE(BigInt(baseTs + maxDelta), 35);
  buf.writeBigInt64BE(BigInt(spec.producerId ?? -1), 43);
  buf.writeInt16BE(-1, 51);
  buf.writeInt32BE(-1, 53);
  buf.writeInt32BE(spec.records, 57);
  records.copy(buf, 61);
  buf.writeUInt32BE(crc32c(buf.subarray(21)), 17);
  return buf;
}

export interface ParsedBatch {
  baseOffset: number;
  lastOffset: number;
  leaderEpoch: number;
  maxTimestamp: number;
  size: number;
  crcOk: boolean;
}

/** Split stored bytes into batches (whole batches only; asserts framing). */
export function parseBatches(buf: Buffer): ParsedBatch[] {
  const out: ParsedBatch[] = [];
  let at = 0;
  while (at < buf.length) {
    const size = buf.readInt32BE(at + 8) + 12;
    if (at + size > buf.length) throw new Error(`partial batch at ${at}`);
    const b = buf.subarray(at, at + size);
    const baseOffset = Number(b.readBigInt64BE(0));
    out.push({
      baseOffset,
      lastOffset: baseOffset + b.readInt32BE(23),
      leaderEpoch: b.readInt32BE(12),
      maxTimestamp: Number(b.readBigInt64BE(35)),
      size,
      crcOk: crc32c(b.subarray(21)) === b.readUInt32BE(17),
    });
    at += size;
  }
  return out;
}

export function testConfig(over: Partial<LogConfig> = {}): LogConfig {
  return {
    segmentBytes: 1024 * 1024,
    segmentMs: Number.MAX_SAFE_INTEGER,
    segmentIndexBytes: 1024 * 1024,
    indexIntervalBytes: 4096,
    retentionMs: -1,
    retentionBytes: -1,
    flushMessages: Number.MAX_SAFE_INTEGER,
    flushMs: Number.MAX_SAFE_INTEGER,
    fileDeleteDelayMs: 0,
    cleanupDelete: true,
    cleanupCompact: false,
    minCleanableDirtyRatio: 0.5,
    minCompactionLagMs: 0,
    maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
    deleteRetentionMs: 86400000,
    ...over,
  };
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'strand-storage-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Poll `cond` until true or fail after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A batch as a leader would send it to a follower: `makeBatch(spec)` with its base offset and
 * partition leader epoch set, and optionally producer fields (CRC recomputed).
 */
export function leaderBatch(
  spec: BatchSpec & { baseOffset: number; leaderEpoch: number; producerEpoch?: number; baseSequence?: number; transactional?: boolean },
): Buffer {
  const buf = makeBatch(spec);
  buf.writeBigInt64BE(BigInt(spec.baseOffset), 0);
  buf.writeInt32BE(spec.leaderEpoch, 12);
  if (spec.producerId !== undefined && spec.producerId >= 0) {
    buf.writeInt16BE(spec.transactional ? 0x10 : 0, 21);
    buf.writeInt16BE(spec.producerEpoch ?? 0, 51);
    buf.writeInt32BE(spec.baseSequence ?? 0, 53);
    buf.writeUInt32BE(crc32c(buf.subarray(21)), 17);
  }
  return buf;
}

/**
 * Runs `node writer ...args`, a child that prints each acknowledged offset on its own line
 * (increasing), and kills it with SIGKILL after `killAfter` acknowledgements. Returns the last
 * acknowledged offset (`acked` if none); fails if the child exits before being killed.
 */
export async function runWriterUntilKilled(writer: string, args: string[], acked: number, killAfter: number): Promise<number> {
  const child = spawn(process.execPath, [writer, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pending = '';
  let acks = 0;
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const off = Number(line);
      assert.ok(off > acked, `acks increase: ${off} after ${acked}`);
      acked = off;
      if (++acks === killAfter) child.kill('SIGKILL');
    }
  });
  await exited;
  assert.ok(acks >= killAfter, `child exited early after ${acks} acks`);
  return acked;
}
