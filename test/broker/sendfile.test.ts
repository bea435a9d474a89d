/**
 * Zero-copy fetch: segment slices sent with sendfile(2) through Strand's native addon arrive
 * byte for byte as the copied path sends them, also to a reader that stalls mid-response (the
 * addon gives up its pool thread and the rest goes through the socket's write queue) and past a
 * reader that disconnects mid-response (the broker keeps serving everyone else).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import * as m from '../../src/protocol/messages/index.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { loadSendfile } from '../../src/broker/sendfile.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

const IN_CI = process.env['CI'] !== undefined && process.env['CI'] !== '' && process.env['CI'] !== 'false';
const addon = loadSendfile();
const TOPIC = 'zero-copy';
const BATCHES = 24; // ~24 MiB: fetches span several 1 MiB pieces and two responses

let zeroCopy: BrokerProcess;
let copied: BrokerProcess;

before(async () => {
  zeroCopy = await startBroker({ overrides: { 'message.max.bytes': 2 << 20 } });
  const c = await ProtocolConnection.connect('127.0.0.1', zeroCopy.port);
  await c.send(m.ApiKey.CreateTopics, 7, { topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
  for (let i = 0; i < BATCHES; i++) {
    // Distinct bytes per batch, so a piece sent twice or out of order cannot go unnoticed.
    const records = Array.from({ length: 16 }, (_, j) => ({ key: Buffer.from(`k${i}-${j}`), value: Buffer.alloc(64 * 1024, (i * 16 + j) % 251) }));
    const p = await c.send(m.ApiKey.Produce, 7, { transactionalId: null, acks: 1, timeoutMs: 5000, topicData: [{ name: TOPIC, partitionData: [{ index: 0, records: encodeRecordBatch({ records }) }] }] });
    assert.equal(p.responses[0].partitionResponses[0].errorCode, 0);
  }
  c.close();
  await zeroCopy.stop();
  // The same data served twice: sendfile on (the default) and off.
  zeroCopy = await startBroker({ dataDir: zeroCopy.dataDir, overrides: { 'message.max.bytes': 2 << 20 } });
  copied = await startBroker({ dataDir: await copyDir(zeroCopy.dataDir), overrides: { 'message.max.bytes': 2 << 20, 'strand.network.sendfile': 'false' } });
});

after(async () => {
  const codes = [await zeroCopy.stop(), await copied.stop()];
  zeroCopy.cleanup();
  copied.cleanup();
  assert.deepEqual(codes, [0, 0]);
});

async function copyDir(dir: string): Promise<string> {
  const { cpSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const to = mkdtempSync(join(tmpdir(), 'strand-sendfile-'));
  cpSync(dir, to, { recursive: true });
  return to;
}

function fetchFrame(c: ProtocolConnection, offset: number): Buffer {
  return c.encodeRequest(m.ApiKey.Fetch, 4, {
    ...m.defaultFetchRequest(),
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 64 << 20,
    topics: [{ topic: TOPIC, topicId: m.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: offset, partitionMaxBytes: 16 << 20 }] }],
  });
}

/** Every response byte of fetching the whole partition (two ~16 MiB fetches), reading with optional stalls. */
async function fetchAllRaw(broker: BrokerProcess, stallMs: number): Promise<Buffer> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const s = connect({ host: '127.0.0.1', port: broker.port });
  await new Promise((r) => s.once('connect', r));
  const responses: Buffer[] = [];
  let offset = 0;
  try {
    for (;;) {
      const frame = await new Promise<Buffer>((resolve, reject) => {
        const got: Buffer[] = [];
        let n = 0;
        let stalled = stallMs === 0;
        const onData = (d: Buffer): void => {
          got.push(d);
          n += d.length;
          if (!stalled && n > 1 << 20) {
            // Stop reading with most of the response unsent: the broker's socket fills up.
            stalled = true;
            s.pause();
            setTimeout(() => s.resume(), stallMs);
          }
          if (n >= 4 && n >= 4 + Buffer.concat(got).readInt32BE(0)) {
            s.off('data', onData);
            resolve(Buffer.concat(got));
          }
        };
        s.on('data', onData);
        s.once('error', reject);
        s.write(fetchFrame(c, offset));
      });
      responses.push(frame.subarray(8)); // without the size and correlation id
      const resp = m.decodeFetchResponse(new (await import('../../src/protocol/reader.js')).Reader(frame.subarray(8)), 4);
      const records = resp.responses[0]!.partitions[0]!.records as Buffer | null;
      if (records === null || records.length === 0) break;
      let at = 0;
      while (at + 61 <= records.length) {
        const size = records.readInt32BE(at + 8) + 12;
        offset = Number(records.readBigInt64BE(at)) + records.readInt32BE(at + 23) + 1;
        at += size;
      }
    }
  } finally {
    s.destroy();
    c.close();
  }
  return Buffer.concat(responses);
}

test('the native sendfile addon is built (CI must build it; elsewhere the copied path is used)', (t) => {
  if (addon.sendfile === null) {
    if (IN_CI) assert.fail(`sendfile unavailable under CI: ${addon.reason}`);
    t.skip(`sendfile unavailable: ${addon.reason}; fetches are copied through user space`);
    return;
  }
  assert.match(zeroCopy.output(), /broker started/);
  assert.doesNotMatch(zeroCopy.output(), /copied through user space/);
  assert.match(copied.output(), /copied through user space.*strand\.network\.sendfile=false/);
});

test('fetch responses are byte-identical with sendfile on and off', { timeout: 60000 }, async () => {
  const a = await fetchAllRaw(zeroCopy, 0);
  const b = await fetchAllRaw(copied, 0);
  assert.ok(a.length > BATCHES * 1_000_000, `fetched ${a.length} bytes`);
  assert.ok(a.equals(b), 'responses differ between sendfile and the copied path');
});

test('a reader that stalls mid-response still gets every byte, in order', { timeout: 60000 }, async () => {
  const expected = await fetchAllRaw(copied, 0);
  const stalled = await fetchAllRaw(zeroCopy, 300);
  assert.ok(stalled.equals(expected), 'a stalled reader got different bytes');
});

test('a reader that disconnects mid-response does not disturb the broker or other readers', { timeout: 60000 }, async () => {
  const c = await ProtocolConnection.connect('127.0.0.1', zeroCopy.port);
  for (let i = 0; i < 5; i++) {
    const s = connect({ host: '127.0.0.1', port: zeroCopy.port });
    await new Promise((r) => s.once('connect', r));
    await new Promise<void>((resolve) => {
      s.once('data', () => {
        s.destroy(); // gone with ~16 MiB still to send
        resolve();
      });
      s.write(fetchFrame(c, 0));
    });
  }
  c.close();
  const expected = await fetchAllRaw(copied, 0);
  assert.ok((await fetchAllRaw(zeroCopy, 0)).equals(expected));
  assert.doesNotMatch(zeroCopy.output(), /failed to send a response| ERROR /);
});
