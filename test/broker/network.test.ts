/**
 * The network layer against a real broker process: framing limits, bad input closing only the
 * offending connection (with a log line), KIP-511's ApiVersions answer, responses in request
 * order, acks=0 without a response, framing of requests cut at any point, and bounded memory
 * when a client stops reading.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import * as m from '../../src/protocol/messages/index.js';
import { Reader } from '../../src/protocol/reader.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker({ overrides: { 'socket.request.max.bytes': 1048576 + 4096, 'message.max.bytes': 1048576 + 1024 } });
});

after(async () => {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0);
});

/** Writes raw bytes on a fresh socket and resolves when the broker closes it (or after timeoutMs, with false). */
function closedAfter(bytes: Buffer, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: broker.port }, () => s.write(bytes));
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function waitForLog(pattern: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(broker.output())) {
    if (Date.now() > deadline) assert.fail(`no log line matching ${pattern}:\n${broker.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stillServes(): Promise<void> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const resp = await c.send(m.ApiKey.ApiVersions, 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  assert.equal(resp.errorCode, 0);
  c.close();
}

test('a negative frame size closes that connection with a log line', { timeout: 20000 }, async () => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(-5, 0);
  assert.equal(await closedAfter(b), true);
  await waitForLog(/closing connection: negative frame size/);
  await stillServes();
});

test('a frame over socket.request.max.bytes closes that connection', { timeout: 20000 }, async () => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(50 * 1024 * 1024, 0);
  assert.equal(await closedAfter(b), true);
  await waitForLog(/frame larger than socket.request.max.bytes/);
  await stillServes();
});

test('an unknown api key and an unsupported version close the connection; others keep working', { timeout: 20000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const frame = c.encodeRequest(m.ApiKey.Metadata, 1, { ...m.defaultMetadataRequest(), topics: null });
  frame.writeInt16BE(9999, 4);
  assert.equal(await closedAfter(frame), true);
  await waitForLog(/closing connection: unknown api key.*apiKey=9999/);
  const frame2 = c.encodeRequest(m.ApiKey.Fetch, 13, m.defaultFetchRequest());
  frame2.writeInt16BE(17, 6); // above the advertised Fetch range
  assert.equal(await closedAfter(frame2), true);
  await waitForLog(/unsupported api version.*api=Fetch/);
  c.close();
  await stillServes();
});

test('an undecodable body closes the connection', { timeout: 20000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const frame = c.encodeRequest(m.ApiKey.Metadata, 1, { ...m.defaultMetadataRequest(), topics: [{ topicId: m.defaultMetadataRequestTopic().topicId, name: 'abc' }] });
  // Claim a huge topics array in a tiny body.
  frame.writeInt32BE(0x7ffffff0, frame.length - 4 - 2 - 3 - 4 + 0);
  const truncated = frame.subarray(0, frame.length - 2);
  truncated.writeInt32BE(truncated.length - 4, 0);
  assert.equal(await closedAfter(truncated), true);
  await waitForLog(/undecodable request body/);
  c.close();
  await stillServes();
});

test('ApiVersions above the supported version gets the v0 UNSUPPORTED_VERSION answer with the ranges (KIP-511)', { timeout: 20000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const frame = c.encodeRequest(m.ApiKey.ApiVersions, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' }, 77);
  frame.writeInt16BE(9, 6); // version 9
  const s: Socket = c.socket;
  const answer = await new Promise<Buffer>((resolve) => {
    let buf = Buffer.alloc(0);
    s.removeAllListeners('data');
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) resolve(buf.subarray(4, 4 + buf.readInt32BE(0)));
    });
    s.write(frame);
  });
  assert.equal(answer.readInt32BE(0), 77); // response header v0: correlation id only
  const r = new Reader(answer, 4);
  const body = m.decodeApiVersionsResponse(r, 0);
  assert.equal(r.error, null);
  assert.equal(body.errorCode, 35);
  const av = body.apiKeys.find((k) => k.apiKey === 18)!;
  assert.deepEqual([av.minVersion, av.maxVersion], [0, 3]);
  c.close();
});

test('pipelined requests are answered in request order, and acks=0 gets no response', { timeout: 20000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  await c.send(m.ApiKey.Metadata, 12, { ...m.defaultMetadataRequest(), topics: [{ topicId: m.defaultMetadataRequestTopic().topicId, name: 'order-test' }] });
  const batch = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('fire and forget') }] });
  // A long-poll fetch first: later requests must not overtake it.
  const fetch = c.send(m.ApiKey.Fetch, 11, {
    ...m.defaultFetchRequest(),
    maxWaitMs: 300,
    minBytes: 1 << 20,
    maxBytes: 1 << 20,
    topics: [{ topic: 'order-test', topicId: m.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
  });
  c.sendNoResponse(m.ApiKey.Produce, 7, { transactionalId: null, acks: 0, timeoutMs: 1000, topicData: [{ name: 'order-test', partitionData: [{ index: 0, records: batch }] }] });
  const order: string[] = [];
  const done = [
    fetch.then(() => order.push('fetch')),
    c.send(m.ApiKey.ApiVersions, 0, m.defaultApiVersionsRequest()).then(() => order.push('apiversions')),
    c.send(m.ApiKey.Metadata, 1, { ...m.defaultMetadataRequest(), topics: null }).then(() => order.push('metadata')),
  ];
  await Promise.all(done);
  assert.deepEqual(order, ['fetch', 'apiversions', 'metadata']);
  // The acks=0 record was appended.
  const lo = await c.send(m.ApiKey.ListOffsets, 1, { replicaId: -1, isolationLevel: 0, timeoutMs: 0, topics: [{ name: 'order-test', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }] });
  assert.equal(lo.topics[0].partitions[0].offset, 1);
  c.close();
});

/**
 * Fetches partition 0 of `topic` from offset 0 until it has as many batches as `sent`, and checks
 * each stored batch against the one sent: they may differ only in baseOffset (bytes 0-7) and
 * partitionLeaderEpoch (12-15).
 */
async function assertStoredAsSent(c: ProtocolConnection, topic: string, sent: Buffer[]): Promise<void> {
  const stored: Buffer[] = [];
  let offset = 0;
  while (stored.length < sent.length) {
    const f = await c.send(m.ApiKey.Fetch, 4, {
      ...m.defaultFetchRequest(),
      maxWaitMs: 1000,
      minBytes: 1,
      maxBytes: 64 << 20,
      topics: [{ topic, topicId: m.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: offset, partitionMaxBytes: 64 << 20 }] }],
    });
    const records = f.responses[0].partitions[0].records as Buffer;
    for (let at = 0; at + 61 <= records.length; ) {
      const size = records.readInt32BE(at + 8) + 12;
      stored.push(Buffer.from(records.subarray(at, at + size)));
      offset = Number(records.readBigInt64BE(at)) + records.readInt32BE(at + 23) + 1;
      at += size;
    }
  }
  for (const [i, batch] of sent.entries()) {
    const got = stored[i]!;
    assert.equal(got.length, batch.length, `batch ${i} length`);
    assert.ok(got.subarray(16).equals(batch.subarray(16)) && got.subarray(8, 12).equals(batch.subarray(8, 12)), `batch ${i} bytes differ`);
  }
}

test('large produce requests pipelined on one connection (pooled frame buffers) are stored byte for byte', { timeout: 60000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  await c.send(m.ApiKey.Metadata, 12, { ...m.defaultMetadataRequest(), topics: [{ topicId: m.defaultMetadataRequestTopic().topicId, name: 'pooled-frames' }] });
  // 40 requests of ~200 KiB to ~1 MiB in flight at once, each with its own byte pattern, some acks=0:
  // a frame buffer reused before its append was written would store another request's bytes.
  const batches = Array.from({ length: 40 }, (_, i) =>
    encodeRecordBatch({ records: Array.from({ length: 4 }, (_, j) => ({ key: Buffer.from(`${i}/${j}`), value: Buffer.alloc(50 * 1024 * (1 + (i % 5)), (i * 7 + j) % 256) })) }),
  );
  const answers: Array<Promise<unknown>> = [];
  for (const [i, records] of batches.entries()) {
    const body = { transactionalId: null, acks: i % 4 === 3 ? 0 : 1, timeoutMs: 5000, topicData: [{ name: 'pooled-frames', partitionData: [{ index: 0, records }] }] };
    if (body.acks === 0) c.sendNoResponse(m.ApiKey.Produce, 7, body);
    else answers.push(c.send(m.ApiKey.Produce, 7, body));
  }
  for (const a of await Promise.all(answers)) assert.equal((a as { responses: Array<{ partitionResponses: Array<{ errorCode: number }> }> }).responses[0]!.partitionResponses[0]!.errorCode, 0);
  await assertStoredAsSent(c, 'pooled-frames', batches);
  c.close();
});

test('large and small requests cut into pieces at every kind of boundary are framed exactly (shared read buffer)', { timeout: 60000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  await c.send(m.ApiKey.Metadata, 12, { ...m.defaultMetadataRequest(), topics: [{ topicId: m.defaultMetadataRequestTopic().topicId, name: 'split-frames' }] });
  // A deterministic generator (xorshift) for sizes and cut points.
  let seed = 0x2545f491;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  // 90 requests, more than a connection handles at once (64): large Produce frames (assembled
  // straight from the read buffer when one starts a read), small ones and ApiVersions between them.
  const sent: Buffer[] = [];
  const frames: Buffer[] = [];
  const realWrite = c.socket.write.bind(c.socket);
  (c.socket as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => frames.push(b) > 0;
  const answers: Array<Promise<unknown>> = [];
  for (let i = 0; i < 90; i++) {
    if (i % 3 === 0) {
      answers.push(c.send(m.ApiKey.ApiVersions, 3, { clientSoftwareName: 'split', clientSoftwareVersion: String(i) }));
      continue;
    }
    const bytes = i % 3 === 1 ? 64 * 1024 + rand(400 * 1024) : 1 + rand(2000);
    const records = encodeRecordBatch({ records: [{ key: Buffer.from(String(i)), value: Buffer.alloc(bytes, i % 251) }] });
    sent.push(records);
    answers.push(c.send(m.ApiKey.Produce, 7, { transactionalId: null, acks: 1, timeoutMs: 5000, topicData: [{ name: 'split-frames', partitionData: [{ index: 0, records }] }] }));
  }
  (c.socket as unknown as { write: typeof realWrite }).write = realWrite;
  // Cut the stream 0 to 7 bytes into every frame (splitting size prefixes and headers), and at
  // random points (splitting bodies, or leaving several frames in one piece); each piece is a
  // separate read for the broker.
  const stream = Buffer.concat(frames);
  const cuts = new Set<number>([stream.length]);
  let start = 0;
  for (const [k, f] of frames.entries()) {
    cuts.add(start + (k % 8));
    if (rand(2) === 0) cuts.add(start + rand(f.length));
    start += f.length;
  }
  let at = 0;
  for (const cut of [...cuts].sort((x, y) => x - y)) {
    if (cut <= at) continue;
    realWrite(stream.subarray(at, cut));
    at = cut;
    await new Promise((r) => setTimeout(r, 1));
  }
  const results = (await Promise.all(answers)) as Array<{ errorCode?: number; responses?: Array<{ partitionResponses: Array<{ errorCode: number }> }> }>;
  for (const r of results) assert.equal(r.errorCode ?? r.responses![0]!.partitionResponses[0]!.errorCode, 0);
  await assertStoredAsSent(c, 'split-frames', sent);
  c.close();
});

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

test('a client that stops reading cannot make the broker buffer without bound', { timeout: 60000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  await c.send(m.ApiKey.Metadata, 12, { ...m.defaultMetadataRequest(), topics: [{ topicId: m.defaultMetadataRequestTopic().topicId, name: 'slow-reader' }] });
  const big = encodeRecordBatch({ records: [{ key: null, value: Buffer.alloc(1000 * 1024, 'z') }] });
  const p = await c.send(m.ApiKey.Produce, 7, { transactionalId: null, acks: 1, timeoutMs: 1000, topicData: [{ name: 'slow-reader', partitionData: [{ index: 0, records: big }] }] });
  assert.equal(p.responses[0].partitionResponses[0].errorCode, 0);
  const before = rssBytes(broker.child.pid!);
  // 3,000 fetches of ~1 MiB each: ~3 GiB of responses if the broker buffered them all.
  const reader = connect({ host: '127.0.0.1', port: broker.port });
  await new Promise((r) => reader.once('connect', r));
  reader.pause();
  const frame = c.encodeRequest(m.ApiKey.Fetch, 4, {
    ...m.defaultFetchRequest(),
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 2 << 20,
    topics: [{ topic: 'slow-reader', topicId: m.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: 0, partitionMaxBytes: 2 << 20 }] }],
  });
  for (let i = 0; i < 3000; i++) reader.write(frame);
  let peak = 0;
  const until = Date.now() + 4000;
  while (Date.now() < until) {
    peak = Math.max(peak, rssBytes(broker.child.pid!));
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(peak - before < 600 * 1024 * 1024, `broker RSS grew by ${Math.round((peak - before) / 2 ** 20)} MiB`);
  reader.destroy();
  c.close();
  await stillServes();
});

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

test('a broker whose stderr reader went away keeps serving and does not spin (EPIPE regression)', { timeout: 30000 }, async () => {
  const b = await startBroker();
  try {
    b.child.stderr!.destroy();
    b.child.stdout!.destroy();
    // Provoke log lines: each bad frame logs a warning to the closed stderr.
    for (let i = 0; i < 5; i++) {
      const bad = Buffer.alloc(4);
      bad.writeInt32BE(-1, 0);
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: b.port }, () => s.write(bad));
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
    }
    const before = cpuTicks(b.child.pid!);
    await new Promise((r) => setTimeout(r, 1000));
    const used = cpuTicks(b.child.pid!) - before;
    assert.ok(used < 30, `idle broker used ${used} ticks in 1 s`);
    const c = await ProtocolConnection.connect('127.0.0.1', b.port);
    assert.equal((await c.send(m.ApiKey.ApiVersions, 3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' })).errorCode, 0);
    c.close();
  } finally {
    assert.equal(await b.stop(), 0);
    b.cleanup();
  }
});
