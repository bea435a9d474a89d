/**
 * Zero-copy fetch: sendfile(2) from a segment file to a client socket, through Strand's small
 * native addon (native/sendfile.c, built by `npm install` with node-gyp). Kafka sends FileRecords
 * the same way (FileChannel.transferTo). Without the addon (not built, not Linux, or
 * `strand.network.sendfile=false`) the broker copies fetched bytes through user space instead.
 */
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** Sends `length` bytes of `fileFd` from `position` to `socketFd`; resolves with the bytes sent, short if the peer stopped reading for `pollMs`. */
export type Sendfile = (socketFd: number, fileFd: number, position: number, length: number, pollMs: number) => Promise<number>;

interface NativeAddon {
  sendfile: Sendfile;
  supported: boolean;
}

let loaded: { sendfile: Sendfile | null; reason: string } | null = null;

/** The addon's sendfile, or null with the reason it is unavailable. Loaded once. */
export function loadSendfile(): { sendfile: Sendfile | null; reason: string } {
  if (loaded !== null) return loaded;
  try {
    // dist/src/broker/ → the package root, where node-gyp puts build/Release.
    const addon = createRequire(import.meta.url)('../../../build/Release/strand_native.node') as NativeAddon;
    loaded = addon.supported ? { sendfile: addon.sendfile, reason: 'native addon' } : { sendfile: null, reason: 'sendfile is not supported on this platform' };
  } catch (e) {
    loaded = { sendfile: null, reason: `native addon not built (${(e as Error).message.split('\n')[0]})` };
  }
  return loaded;
}

/** The kernel descriptor of a plain TCP socket, or -1 (TLS, not connected, or not a TCP handle). */
export function socketFd(socket: Socket): number {
  if (socket instanceof TLSSocket) return -1;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** The peer closed or reset the connection while data was being sent. */
export function peerGone(e: unknown): boolean {
  const errno = (e as { errno?: unknown }).errno;
  return errno === 32 /* EPIPE */ || errno === 104 /* ECONNRESET */ || errno === 107 /* ENOTCONN */;
}
