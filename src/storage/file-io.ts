/**
 * The file-system seam of storage: positional I/O on raw file descriptors through node:fs's
 * callback API (cheaper per call than fs/promises FileHandle), wrapped in promises. Every partial
 * write is completed here, so callers see all-or-error. Everything storage does to files goes
 * through this module or through the few path operations at the bottom.
 */
import fs from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import { loadNativeAddon, type NativeAddon } from '../native/addon.js';

export function openFile(path: string, flags: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

export function fsyncFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function ftruncateFile(fd: number, size: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, size, (err) => (err ? reject(err) : resolve())));
}

export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}

function writeOnce(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function writevOnce(fd: number, bufs: Buffer[], pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.writev(fd, bufs, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Write all of `buf` at `pos`. */
export async function writeFully(fd: number, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await writeOnce(fd, buf, done, buf.length - done, pos + done);
    if (n <= 0) throw new Error(`short write: ${n} bytes at ${pos + done}`);
    done += n;
  }
}

/** Max iovecs per writev call (Linux IOV_MAX). */
export const MAX_IOVECS = 1024;

/** Write all of `bufs` back to back starting at `pos` (one writev when the kernel takes it all). */
export async function writevFully(fd: number, bufs: Buffer[], pos: number): Promise<void> {
  if (bufs.length === 1) return writeFully(fd, bufs[0]!, pos);
  let total = 0;
  for (const b of bufs) total += b.length;
  let done = 0;
  let rest = bufs;
  while (done < total) {
    const n = await writevOnce(fd, rest.length > MAX_IOVECS ? rest.slice(0, MAX_IOVECS) : rest, pos + done);
    if (n <= 0) throw new Error(`short writev: ${n} bytes at ${pos + done}`);
    done += n;
    if (done >= total) break;
    // Drop what was written; keep the tail of a partly written buffer.
    let skip = n;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = rest.slice(i);
    if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

function readOnce(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Read up to `len` bytes at `pos` into `buf` at `off`; fewer only at end of file. Returns bytes read. */
export async function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  let done = 0;
  while (done < len) {
    const n = await readOnce(fd, buf, off + done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** The native page-cache-only read (loaded on first use), until the kernel or file system says it has no RWF_NOWAIT. */
let preadCached: NativeAddon['preadCached'] | null | undefined;

/** Reads larger than this go through the pool even when cached: a cached read holds the event loop for its copy. */
export const CACHED_READ_MAX_BYTES = 256 * 1024;

/**
 * Like readAt, but a small read (up to CACHED_READ_MAX_BYTES) first takes what the page cache
 * already holds, synchronously and without waiting for the disk (preadv2 with RWF_NOWAIT, through
 * the native addon); whatever is not cached is read through the pool. Recent data, which most
 * fetches ask for, then costs one system call instead of a trip through libuv's thread pool and
 * back, and cold data still never stalls the event loop on the disk. For single reads on the
 * request path: a loop of cached reads never yields to the event loop between them.
 */
export async function readAtCachedFirst(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  let done = 0;
  if (preadCached === undefined) preadCached = loadNativeAddon().addon?.preadCached ?? null;
  if (preadCached !== null && len <= CACHED_READ_MAX_BYTES) {
    const n = preadCached(fd, buf, off, len, pos);
    if (n === len) return n;
    if (n > 0) done = n; // a cached prefix (or the part before the end of the file: the pool's read then returns 0)
    else if (n === -constants.errno.EOPNOTSUPP || n === -constants.errno.ENOSYS) preadCached = null;
    // 0 (the end of the file), -EAGAIN (not cached), any other error: the pool's read answers.
  }
  return done + (await readAt(fd, buf, off + done, len - done, pos + done));
}

export async function fsyncDir(path: string): Promise<void> {
  const fd = await openFile(path, 'r');
  try {
    await fsyncFile(fd);
  } finally {
    await closeFile(fd);
  }
}

/** Write a small file atomically: temp file, fsync, rename over, fsync the directory. */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  const fd = await openFile(tmp, 'w');
  try {
    await writeFully(fd, Buffer.isBuffer(data) ? data : Buffer.from(data), 0);
    await fsyncFile(fd);
  } finally {
    await closeFile(fd);
  }
  await fs.promises.rename(tmp, path);
  await fsyncDir(dirname(path));
}
