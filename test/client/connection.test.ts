/**
 * The client connection's response framing. Plaintext connections read into one buffer shared by
 * the process and copy each response out into a buffer of its own, so these tests send exact bytes
 * from a TCP peer: a response cut at every byte, several responses in one write, responses larger
 * than the shared buffer, two connections receiving large responses at once (neither may see the
 * other's bytes), and a negative size, which fails that connection with a clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Connection } from '../../src/client/connection.js';
import { ConnectionError } from '../../src/client/errors.js';
import {
  ApiVersionsApi,
  defaultApiVersionsResponse,
  defaultSaslAuthenticateResponse,
  encodeApiVersionsResponse,
  encodeResponseHeader,
  encodeSaslAuthenticateResponse,
  SaslAuthenticateApi,
  type ApiVersionsResponse,
} from '../../src/protocol/messages/index.js';
import { Writer } from '../../src/protocol/writer.js';

/** An ApiVersions v3 response frame (size prefix included) with `extra` entries of api key `mark` after ApiVersions' own. */
function apiVersionsFrame(correlationId: number, extra = 0, mark = 1000): Buffer {
  const body: ApiVersionsResponse = { ...defaultApiVersionsResponse(), apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }] };
  for (let i = 0; i < extra; i++) body.apiKeys.push({ apiKey: mark, minVersion: i % 7, maxVersion: (i % 7) + (i % 3) });
  const w = new Writer(256);
  w.int32(0);
  encodeResponseHeader(w, { correlationId }, 0);
  encodeApiVersionsResponse(w, body, 3);
  const out = w.toBuffer();
  out.writeInt32BE(out.length - 4, 0);
  return out;
}

/** A peer that reads request frames and answers each through `answer` (given the request's correlation id and its index on the connection). */
async function peer(answer: (socket: Socket, correlationId: number, index: number) => void | Promise<void>): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    let buffered = Buffer.alloc(0);
    let index = 0;
    let chain = Promise.resolve();
    socket.on('data', (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        const correlationId = buffered.readInt32BE(8);
        buffered = buffered.subarray(4 + buffered.readInt32BE(0));
        const i = index++;
        chain = chain.then(() => answer(socket, correlationId, i));
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

const connect = (port: number): Promise<Connection> => Connection.connect({ host: '127.0.0.1', port, clientId: 'framing-test', requestTimeoutMs: 10000 });
const apiVersions = (c: Connection): Promise<ApiVersionsResponse> => c.request(ApiVersionsApi, { clientSoftwareName: 'strand', clientSoftwareVersion: '0' }, { version: 3 });
const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a response cut at every byte, each byte a separate write, is put back together', { timeout: 30000 }, async (t) => {
  const { server, port } = await peer(async (socket, correlationId, index) => {
    const frame = apiVersionsFrame(correlationId, index === 0 ? 0 : 3);
    if (index === 0) return void socket.write(frame);
    for (const byte of frame) {
      socket.write(Buffer.of(byte));
      await tick(1);
    }
  });
  t.after(() => server.close());
  const c = await connect(port);
  t.after(() => c.close());
  const r = await apiVersions(c);
  assert.deepEqual(r.apiKeys.map((k) => [k.apiKey, k.minVersion, k.maxVersion]), [[18, 0, 3], [1000, 0, 0], [1000, 1, 2], [1000, 2, 4]]);
});

test('several responses in one write are each delivered, in order', { timeout: 30000 }, async (t) => {
  const held: Buffer[] = [];
  const { server, port } = await peer((socket, correlationId, index) => {
    if (index === 0) return void socket.write(apiVersionsFrame(correlationId));
    held.push(apiVersionsFrame(correlationId, index));
    if (held.length === 3) socket.write(Buffer.concat(held));
  });
  t.after(() => server.close());
  const c = await connect(port);
  t.after(() => c.close());
  const rs = await Promise.all([apiVersions(c), apiVersions(c), apiVersions(c)]);
  assert.deepEqual(rs.map((r) => r.apiKeys.length), [2, 3, 4]);
});

test('responses larger than the shared read buffer, on two connections at once, each arrive intact', { timeout: 30000 }, async (t) => {
  // 60,000 entries of 7 bytes: a 420 KB response, more than the 256 KiB read buffer, sent in 16 KiB writes.
  const entries = 60000;
  const { server, port } = await peer(async (socket, correlationId, index) => {
    if (index === 0) return void socket.write(apiVersionsFrame(correlationId));
    const mark = (socket.remotePort ?? 0) % 30000;
    const frame = apiVersionsFrame(correlationId, entries, mark);
    for (let at = 0; at < frame.length; at += 16384) {
      socket.write(frame.subarray(at, at + 16384));
      await tick(0);
    }
  });
  t.after(() => server.close());
  const [a, b] = await Promise.all([connect(port), connect(port)]);
  t.after(() => {
    a.close();
    b.close();
  });
  for (let round = 0; round < 3; round++) {
    const [ra, rb] = await Promise.all([apiVersions(a), apiVersions(b)]);
    for (const r of [ra, rb]) {
      assert.equal(r.apiKeys.length, entries + 1);
      const mark = r.apiKeys[1]!.apiKey;
      r.apiKeys.slice(1).forEach((k, i) => {
        if (k.apiKey !== mark || k.minVersion !== i % 7 || k.maxVersion !== (i % 7) + (i % 3)) assert.fail(`entry ${i} is ${JSON.stringify(k)}`);
      });
    }
    assert.notEqual(ra.apiKeys[1]!.apiKey, rb.apiKeys[1]!.apiKey, 'the two connections got different responses');
  }
});

test('bytes fields of a decoded response keep their content after later reads (they are not views of the read buffer)', { timeout: 30000 }, async (t) => {
  const { server, port } = await peer(async (socket, correlationId, index) => {
    if (index === 0) return void socket.write(apiVersionsFrame(correlationId));
    // SaslAuthenticate v1 (header v0): 1,000 auth bytes of 0xA1, then of 0xA2, ... one response per write.
    const w = new Writer(2048);
    w.int32(0);
    encodeResponseHeader(w, { correlationId }, 0);
    encodeSaslAuthenticateResponse(w, { ...defaultSaslAuthenticateResponse(), authBytes: Buffer.alloc(1000, 0xa0 + index) }, 1);
    const frame = w.toBuffer();
    frame.writeInt32BE(frame.length - 4, 0);
    socket.write(frame);
    await tick(5);
  });
  t.after(() => server.close());
  const c = await connect(port);
  t.after(() => c.close());
  const first = await c.request(SaslAuthenticateApi, { authBytes: Buffer.alloc(0) }, { version: 1 });
  const later = await Promise.all([1, 2, 3].map(() => c.request(SaslAuthenticateApi, { authBytes: Buffer.alloc(0) }, { version: 1 })));
  assert.ok(first.authBytes.equals(Buffer.alloc(1000, 0xa1)), 'the bytes of the first response were overwritten');
  assert.deepEqual(later.map((r) => r.authBytes[0]), [0xa2, 0xa3, 0xa4]);
});

test('a negative response size fails the connection with a clear error', { timeout: 30000 }, async (t) => {
  const { server, port } = await peer((socket, correlationId, index) => {
    if (index === 0) return void socket.write(apiVersionsFrame(correlationId));
    socket.write(Buffer.from([0xff, 0xff, 0xff, 0xf0]));
  });
  t.after(() => server.close());
  const c = await connect(port);
  await assert.rejects(apiVersions(c), (e: unknown) => e instanceof ConnectionError && /invalid response size -16/.test(e.message));
  assert.ok(c.closed);
});

test('an abort signal ends a connect whose broker accepts but does not answer ApiVersions, at once, and closes the socket', { timeout: 30000 }, async (t) => {
  // A broker still catching up with the metadata log accepts connections and answers nothing.
  const accepted: Socket[] = [];
  const server = createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    socket.resume(); // reads and drops the request: never answers
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const abort = new AbortController();
  const started = Date.now();
  const attempt = Connection.connect({ host: '127.0.0.1', port, clientId: 'abort-test', connectTimeoutMs: 20000, requestTimeoutMs: 20000, signal: abort.signal });
  while (accepted.length === 0) await tick(5);
  abort.abort();
  await assert.rejects(attempt, (e: unknown) => e instanceof ConnectionError && /aborted/.test(e.message));
  assert.ok(Date.now() - started < 5000, `rejected after ${Date.now() - started} ms, not at the 20 s request timeout`);
  // The client's side is gone: the broker's socket sees the end.
  await new Promise<void>((resolve) => (accepted[0]!.readableEnded || accepted[0]!.destroyed ? resolve() : accepted[0]!.once('close', () => resolve())));
  // An already aborted signal fails before connecting.
  await assert.rejects(Connection.connect({ host: '127.0.0.1', port, clientId: 'abort-test', signal: abort.signal }), /aborted/);
  assert.equal(accepted.length, 1);
});
