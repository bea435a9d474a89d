/**
 * Strand's small native addon (native/*.c, built by `npm install` with node-gyp): sendfile(2) for
 * the zero-copy fetch, and a page-cache-only read (preadv2 with RWF_NOWAIT) for storage. Node has
 * neither. Everything works without the addon (not built, or not Linux), only slower: the broker
 * copies fetched bytes through user space and storage reads through libuv's thread pool.
 */
import { createRequire } from 'node:module';

export interface NativeAddon {
  /** Sends `length` bytes of `fileFd` from `position` to `socketFd` on a pool thread; resolves with the bytes sent, short if the peer stopped reading for `pollMs`. */
  sendfile: (socketFd: number, fileFd: number, position: number, length: number, pollMs: number) => Promise<number>;
  /** Whether this platform has sendfile. */
  supported: boolean;
  /**
   * Reads what the page cache already holds, synchronously, never waiting for the disk: the bytes
   * read (short when only a prefix is cached; 0 at end of file), or -errno (-EAGAIN: not cached;
   * -EOPNOTSUPP / -ENOSYS: no RWF_NOWAIT here).
   */
  preadCached: (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;
}

let loaded: { addon: NativeAddon | null; reason: string } | null = null;

/** The addon, or null with the reason it is unavailable. Loaded once per process. */
export function loadNativeAddon(): { addon: NativeAddon | null; reason: string } {
  if (loaded !== null) return loaded;
  try {
    // dist/src/native/ → the package root, where node-gyp puts build/Release.
    const addon = createRequire(import.meta.url)('../../../build/Release/strand_native.node') as NativeAddon;
    loaded = { addon, reason: 'native addon' };
  } catch (e) {
    loaded = { addon: null, reason: `native addon not built (${(e as Error).message.split('\n')[0]})` };
  }
  return loaded;
}
