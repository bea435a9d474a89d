/**
 * Zero-copy fetch: sendfile(2) from a segment file to a client socket, through Strand's small
 * native addon (native/sendfile.c; see src/native/addon.ts). Kafka sends FileRecords
 * the same way (FileChannel.transferTo). Without the addon (not built, not Linux, or
 * `strand.network.sendfile=false`) the broker copies fetched bytes through user space instead.
 */
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { loadNativeAddon, type NativeAddon } from '../native/addon.js';

/** Sends `length` bytes of `fileFd` from `position` to `socketFd`; resolves with the bytes sent, short if the peer stopped reading for `pollMs`. */
export type Sendfile = NativeAddon['sendfile'];

let loaded: { sendfile: Sendfile | null; reason: string } | null = null;

/** The addon's sendfile, or null with the reason it is unavailable. Loaded once. */
export function loadSendfile(): { sendfile: Sendfile | null; reason: string } {
  if (loaded !== null) return loaded;
  const { addon, reason } = loadNativeAddon();
  if (addon === null) loaded = { sendfile: null, reason };
  else loaded = addon.supported ? { sendfile: addon.sendfile, reason } : { sendfile: null, reason: 'sendfile is not supported on this platform' };
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
