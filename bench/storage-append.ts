/**
 * Storage append micro-benchmark: PartitionLog.append vs raw fs.writeSync sequential appends.
 * Usage: node dist/bench/storage-append.js [seconds-per-case]
 * Writes to a temp dir under os.tmpdir(); no fsync in either (page-cache rate, as Kafka acks=1).
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { DEFAULT_LOG_CONFIG, PartitionLog } from '../src/storage/log.js';

const seconds = Number(process.argv[2] ?? 3);
const TOTAL_BYTES_CAP = 2 * 1024 * 1024 * 1024;

/** A magic-2 batch of `count` records of `valueBytes` each, ~targetBytes total. */
function makeBatch(targetBytes: number, valueBytes: number): { buf: Buffer; records: number } {
  const recordBytes = 1 + 1 + 1 + 2 + 1 + 2 + valueBytes + 1; // len, attrs, tsDelta, offDelta, key, valueLen, value, headers
  const records = Math.max(1, Math.floor((targetBytes - 61) / recordBytes));
  const buf = Buffer.alloc(61 + records * recordBytes);
  let at = 61;
  for (let i = 0; i < records; i++) {
    const body = recordBytes - 2; // length varint takes 2 bytes when >= 64
    buf[at++] = ((body << 1) & 0x7f) | 0x80;
    buf[at++] = body >> 6;
    buf[at++] = 0; // attributes
    buf[at++] = 0; // timestampDelta
    buf[at++] = ((i << 1) & 0x7f) | 0x80; // offsetDelta (2-byte varint)
    buf[at++] = (i << 1) >> 7;
    buf[at++] = 1; // key -1
    buf[at++] = ((valueBytes << 1) & 0x7f) | 0x80;
    buf[at++] = (valueBytes << 1) >> 7;
    at += valueBytes;
    buf[at++] = 0; // headers
  }
  buf.writeInt32BE(buf.length - 12, 8);
  buf[16] = 2;
  buf.writeInt32BE(records - 1, 23);
  buf.writeBigInt64BE(BigInt(Date.now()), 27);
  buf.writeBigInt64BE(BigInt(Date.now()), 35);
  buf.writeBigInt64BE(-1n, 43);
  buf.writeUInt32BE(crc32c(buf.subarray(21)), 17);
  return { buf, records };
}

function rawWriteSync(dir: string, buf: Buffer): { bytesPerSec: number; opsPerSec: number } {
  const path = join(dir, 'raw.bin');
  const fd = fs.openSync(path, 'w');
  let pos = 0;
  let ops = 0;
  const start = process.hrtime.bigint();
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline && pos < TOTAL_BYTES_CAP) {
    for (let i = 0; i < 16; i++) {
      fs.writeSync(fd, buf, 0, buf.length, pos);
      pos += buf.length;
      ops++;
    }
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  fs.closeSync(fd);
  fs.rmSync(path);
  return { bytesPerSec: pos / secs, opsPerSec: ops / secs };
}

async function logAppend(dir: string, template: Buffer, inFlight: number): Promise<{ bytesPerSec: number; opsPerSec: number }> {
  const logDir = join(dir, `t-${inFlight}-${template.length}`);
  const log = await PartitionLog.open(
    logDir,
    't',
    0,
    { ...DEFAULT_LOG_CONFIG, retentionMs: -1, fileDeleteDelayMs: 0 },
    { cleanShutdown: true },
  );
  // Distinct buffers: append rewrites baseOffset in place, so one buffer cannot be in flight twice.
  const pool = Array.from({ length: inFlight * 2 }, () => Buffer.from(template));
  let bytes = 0;
  let ops = 0;
  let next = 0;
  const deadline = Date.now() + seconds * 1000;
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline && bytes < TOTAL_BYTES_CAP) {
      const buf = pool[next++ % pool.length]!;
      await log.append(buf, 0);
      bytes += buf.length;
      ops++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await log.delete();
  return { bytesPerSec: bytes / secs, opsPerSec: ops / secs };
}

const dir = fs.mkdtempSync(join(tmpdir(), 'strand-bench-'));
try {
  for (const [label, size] of [
    ['16 KiB', 16 * 1024],
    ['1 MiB', 1024 * 1024],
  ] as const) {
    const { buf, records } = makeBatch(size, 100);
    const raw = rawWriteSync(dir, buf);
    console.log(`${label} batches (${records} records of 100 B): raw fs.writeSync ${(raw.bytesPerSec / 2 ** 20).toFixed(0)} MiB/s, ${raw.opsPerSec.toFixed(0)} writes/s`);
    for (const inFlight of [1, 8, 64]) {
      const r = await logAppend(dir, buf, inFlight);
      console.log(
        `  PartitionLog.append, ${inFlight} in flight: ${(r.bytesPerSec / 2 ** 20).toFixed(0)} MiB/s, ${r.opsPerSec.toFixed(0)} appends/s, ` +
          `${((r.opsPerSec * records) / 1e6).toFixed(2)} M records/s, ${((100 * r.bytesPerSec) / raw.bytesPerSec).toFixed(0)}% of raw`,
      );
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
