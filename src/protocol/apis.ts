/**
 * Request and response headers, and the framing rules that depend on (api key, version).
 *
 * Request header v2 is used for flexible request versions, v1 otherwise; response header v1 for
 * flexible response versions, v0 otherwise — except ApiVersions, whose response header is always
 * v0 so that a client can read it before knowing what the broker supports (KIP-511).
 */
import { API_BY_KEY, ApiKey, decodeRequestHeader, encodeResponseHeader, type RequestHeader } from './messages/index.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

export function isFlexible(apiKey: number, version: number): boolean {
  const api = API_BY_KEY.get(apiKey);
  return api !== undefined && api.flexibleFrom >= 0 && version >= api.flexibleFrom;
}

export function requestHeaderVersion(apiKey: number, version: number): number {
  return isFlexible(apiKey, version) ? 2 : 1;
}

export function responseHeaderVersion(apiKey: number, version: number): number {
  if (apiKey === ApiKey.ApiVersions) return 0;
  return isFlexible(apiKey, version) ? 1 : 0;
}

/**
 * Reads a request header. The api key and version come first in every header version, so they
 * are peeked to choose the header version; an unknown api key is read as header v1.
 */
export function readRequestHeader(r: Reader): RequestHeader {
  const apiKey = r.buf.length >= r.offset + 4 ? r.buf.readInt16BE(r.offset) : -1;
  const version = r.buf.length >= r.offset + 4 ? r.buf.readInt16BE(r.offset + 2) : 0;
  return decodeRequestHeader(r, requestHeaderVersion(apiKey, version));
}

/** Writes a response header for (api key, version) with `correlationId`. */
export function writeResponseHeader(w: Writer, apiKey: number, version: number, correlationId: number): void {
  encodeResponseHeader(w, { correlationId }, responseHeaderVersion(apiKey, version));
}
