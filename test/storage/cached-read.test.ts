/**
 * Page-cache-first reads (src/storage/file-io.ts readAtCachedFirst, native/pread_cached.c): the
 * native read returns what the page cache holds and never waits for the disk; the storage read
 * built on it returns the right bytes whether the range is cached, partly cached or evicted.
 * Eviction is real: the file is fsynced and its clean pages dropped with
 * posix_fadvise(POSIX_FADV_DONTNEED) (through python3's os.posix_fadvise, which node:fs lacks),
 * and util-linux's fincore (mincore(2), which reads nothing) confirms what is left in the cache
 * before the native read is asked.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeAddon } from '../../src/native/addon.js';
import { CACHED_READ_MAX_BYTES, readAtCachedFirst } from '../../src/storage/file-io.js';
import { IN_CI } from '../interop/helpers.js';

const native = loadNativeAddon();
const SIZE = 1 << 20;
const EAGAIN = -constants.errno.EAGAIN;

let dir: string;
let path: string;
let fd: number;
let content: Buffer;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'strand-cached-read-'));
  path = join(dir, 'segment.log');
  // Distinct bytes per 4 KiB page, so a page read from the wrong place cannot go unnoticed.
  content = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4) content.writeUInt32BE(i, i);
  writeFileSync(path, content);
  fd = openSync(path, 'r');
  fsyncSync(fd);
});

after(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

/** Drops the file's clean pages in [offset, offset + length) from the page cache (length 0: to the end). */
function evict(offset: number, length: number): void {
  execFileSync('python3', ['-c', 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, int(sys.argv[2]), int(sys.argv[3]), os.POSIX_FADV_DONTNEED)', path, String(offset), String(length)], { timeout: 10_000 });
}

/** Bytes of the file in the page cache (fincore), or null when fincore is not installed. */
function resident(): number | null {
  try {
    return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { timeout: 10_000, encoding: 'utf8' }).trim());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Brings the whole file into the page cache through the normal read path. */
function warm(): void {
  assert.ok(readFileSync(path).equals(content));
}

function addon(t: { skip: (m: string) => void }): NonNullable<typeof native.addon> | null {
  if (native.addon !== null) return native.addon;
  if (IN_CI) assert.fail(`native addon unavailable under CI: ${native.reason}`);
  t.skip(`native addon unavailable (${native.reason}); storage reads go through the thread pool`);
  return null;
}

test('the native read copies a cached range, stops at the end of the file, and refuses a range outside its buffer', (t) => {
  const a = addon(t);
  if (a === null) return;
  warm();
  const buf = Buffer.alloc(64 * 1024);
  assert.equal(a.preadCached(fd, buf, 0, buf.length, 4096), buf.length);
  assert.ok(buf.equals(content.subarray(4096, 4096 + buf.length)));
  // Into the middle of the buffer.
  const mid = Buffer.alloc(100, 0xee);
  assert.equal(a.preadCached(fd, mid, 10, 50, 8192), 50);
  assert.ok(mid.subarray(10, 60).equals(content.subarray(8192, 8242)));
  assert.equal(mid[9], 0xee);
  assert.equal(mid[60], 0xee);
  // Across the end of the file: the part before it; at the end: 0.
  assert.equal(a.preadCached(fd, buf, 0, 1000, SIZE - 100), 100);
  assert.ok(buf.subarray(0, 100).equals(content.subarray(SIZE - 100)));
  assert.equal(a.preadCached(fd, buf, 0, 1000, SIZE), 0);
  // A closed descriptor is an errno, not a crash.
  assert.equal(a.preadCached(1 << 20, buf, 0, 10, 0), -constants.errno.EBADF);
  assert.throws(() => a.preadCached(fd, buf, buf.length - 10, 20, 0), RangeError);
  assert.throws(() => a.preadCached(fd, buf, -1, 10, 0), RangeError);
  assert.throws(() => a.preadCached(fd, Buffer.alloc(0), 0, 0, -5), RangeError);
});

test('an evicted range is not read by the native read, and readAtCachedFirst reads it through the pool', async (t) => {
  const a = addon(t);
  if (a === null) return;
  evict(0, 0);
  const left = resident();
  if (left === null) return t.skip('fincore (util-linux) not found: cannot tell what is cached');
  // tmpfs and some others keep every page resident: nothing to test against here.
  if (left !== 0) return t.skip(`this file system keeps the file's pages after POSIX_FADV_DONTNEED (${tmpdir()}: ${left} bytes resident)`);
  const buf = Buffer.alloc(64 * 1024);
  const n = a.preadCached(fd, buf, 0, buf.length, 128 * 1024);
  assert.equal(n, EAGAIN, 'nothing cached: EAGAIN, no waiting for the disk');
  const out = Buffer.alloc(buf.length);
  assert.equal(await readAtCachedFirst(fd, out, 0, out.length, 128 * 1024), out.length);
  assert.ok(out.equals(content.subarray(128 * 1024, 192 * 1024)));
});

test('a partly cached range: the native read returns the cached prefix, readAtCachedFirst all of it', async (t) => {
  const a = addon(t);
  if (a === null) return;
  warm();
  // Keep [0, 32 KiB) of the range cached and drop the rest of the file.
  const from = 256 * 1024;
  evict(from + 32 * 1024, 0);
  const left = resident();
  if (left === null) return t.skip('fincore (util-linux) not found: cannot tell what is cached');
  if (left !== from + 32 * 1024) return t.skip(`this file system keeps the file's pages after POSIX_FADV_DONTNEED (${tmpdir()}: ${left} bytes resident)`);
  const buf = Buffer.alloc(64 * 1024);
  const n = a.preadCached(fd, buf, 0, buf.length, from);
  assert.equal(n, 32 * 1024, 'the cached prefix only');
  assert.ok(buf.subarray(0, n).equals(content.subarray(from, from + n)));
  const out = Buffer.alloc(buf.length, 0xaa);
  assert.equal(await readAtCachedFirst(fd, out, 0, out.length, from), out.length);
  assert.ok(out.equals(content.subarray(from, from + out.length)));
});

test('readAtCachedFirst: cached, past the end of the file, larger than its limit, and on a closed descriptor', async () => {
  warm();
  const out = Buffer.alloc(8192);
  assert.equal(await readAtCachedFirst(fd, out, 0, out.length, 12_345), out.length);
  assert.ok(out.equals(content.subarray(12_345, 12_345 + out.length)));
  assert.equal(await readAtCachedFirst(fd, out, 0, out.length, SIZE - 10), 10);
  assert.ok(out.subarray(0, 10).equals(content.subarray(SIZE - 10)));
  assert.equal(await readAtCachedFirst(fd, out, 0, out.length, SIZE + 10), 0);
  const big = Buffer.alloc(CACHED_READ_MAX_BYTES + 4096);
  assert.equal(await readAtCachedFirst(fd, big, 0, big.length, 4), big.length);
  assert.ok(big.equals(content.subarray(4, 4 + big.length)));
  await assert.rejects(readAtCachedFirst(1 << 20, out, 0, 10, 0), /EBADF/);
});
