/**
 * Fuzz: at least 100,000 mutated and random requests to a real broker process. The broker must
 * never exit, must keep answering well-formed requests on other connections, and a real client
 * must work afterwards. Invariants: no crash (process alive), no unbounded growth (the run ends),
 * every connection either gets answers or is closed cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import * as messages from '../../src/protocol/messages/index.js';
import { encodeRequestHeader } from '../../src/protocol/messages/index.js';
import { requestHeaderVersion } from '../../src/protocol/apis.js';
import { Writer } from '../../src/protocol/writer.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { startBroker } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { SUPPORTED_APIS } from '../../src/broker/handlers/index.js';
import { ValueMaker, loadSpec, prng } from '../protocol/spec-values.js';

const TOTAL = 100_000;
/** Well-formed requests per connection before its hostile one: 0..PER_CONNECTION-1, about 10 % hostile overall. */
const PER_CONNECTION = 19;
const PARALLEL = 8;

type Api = { key: number; name: string; minVersion: number; maxVersion: number; encodeRequest(w: Writer, v: unknown, version: number): void };

function frame(apiKey: number, version: number, correlationId: number, body: (w: Writer) => void): Buffer {
  const w = new Writer();
  w.int32(0);
  encodeRequestHeader(w, { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: 'fuzz' }, requestHeaderVersion(apiKey, version));
  body(w);
  const b = w.toBuffer();
  b.writeInt32BE(b.length - 4, 0);
  return b;
}

test('100,000 mutated and random requests never take the broker down', { timeout: 240_000 }, async () => {
  const broker = await startBroker({ overrides: { 'auto.create.topics.enable': 'false', 'log.segment.bytes': 1048576 } });
  try {
    const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 100000);
    const rand = prng(seed);
    const int = (n: number): number => Math.floor(rand() * n);
    // Templates: valid requests for every api × version in the specs (advertised or not; Kafka's and
    // Strand's extensions), plus unknown keys.
    const apis = [...messages.ALL_APIS, ...messages.STRAND_APIS] as unknown as Api[];
    const makers = new Map(apis.map((a) => [a.key, new ValueMaker(loadSpec(`${a.name}Request.json`), messages as unknown as Record<string, unknown>, rand)]));
    const supported = new Map(SUPPORTED_APIS.map((s) => [s.key, s]));

    /** A well-formed request: an advertised api and version with random field values. */
    function validFrame(correlationId: number): Buffer {
      const key = [...supported.keys()][int(supported.size)]!;
      const s = supported.get(key)!;
      const api = apis.find((a) => a.key === key)!;
      const version = s.minVersion + int(s.maxVersion - s.minVersion + 1);
      if (api.key === 0 && rand() < 0.5) {
        // A produce with a real record batch, so the batch validator sees real input.
        const batch = encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.alloc(int(200)) }], compression: int(5) as 0 | 1 | 2 | 3 | 4 });
        return frame(api.key, version, correlationId, (w) => api.encodeRequest(w, { transactionalId: null, acks: [0, 1, -1][int(3)], timeoutMs: 1000, topicData: [{ name: 'fuzz', partitionData: [{ index: 0, records: batch }] }] }, version));
      }
      const value = makers.get(api.key)!.struct(null, version) as Record<string, unknown>;
      // Long polls would only slow the run; keep waits short.
      if ('maxWaitMs' in value) value['maxWaitMs'] = int(50);
      return frame(api.key, version, correlationId, (w) => api.encodeRequest(w, value, version));
    }

    /** A hostile request: mutated bytes, truncation, garbage, a bad size, an unknown api or version, or any api in the specs. */
    function hostileFrame(correlationId: number): Buffer {
      let f: Buffer;
      if (rand() < 0.2) {
        const api = apis[int(apis.length)]!;
        const version = api.minVersion + int(api.maxVersion - api.minVersion + 1);
        const value = makers.get(api.key)!.struct(null, version) as Record<string, unknown>;
        if ('maxWaitMs' in value) value['maxWaitMs'] = int(50);
        f = frame(api.key, version, correlationId, (w) => api.encodeRequest(w, value, version));
      } else {
        f = Buffer.from(validFrame(correlationId));
      }
      const m = rand();
      if (m < 0.45) {
        for (let i = 0, n = 1 + int(4); i < n; i++) f[4 + int(f.length - 4)] ^= 1 << int(8);
      } else if (m < 0.65) {
        f = f.subarray(0, 4 + int(f.length - 4));
        f.writeInt32BE(f.length - 4, 0);
      } else if (m < 0.8) {
        f = Buffer.alloc(4 + 8 + int(64));
        for (let i = 4; i < f.length; i++) f[i] = int(256);
        f.writeInt32BE(f.length - 4, 0);
      } else if (m < 0.85) {
        f.writeInt32BE([-1, -2147483648, 0x7fffffff, 200 * 1024 * 1024][int(4)]!, 0);
      } else if (m < 0.92) {
        f.writeInt16BE(int(65536) - 32768, 4); // random api key
      } else {
        f.writeInt16BE(int(65536) - 32768, 6); // random version
      }
      return f;
    }

    // Each connection carries well-formed requests and ends with one hostile request, so every
    // request sent is read by the broker (a hostile one may close the connection it arrives on).
    let sent = 0;
    let hostile = 0;
    let responses = 0;
    async function oneConnection(): Promise<void> {
      const frames: Buffer[] = [];
      const valid = int(PER_CONNECTION);
      for (let i = 0; i < valid && sent < TOTAL - 1; i++, sent++) frames.push(validFrame(i));
      frames.push(hostileFrame(valid));
      sent++;
      hostile++;
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: broker.port }, () => {
          s.end(Buffer.concat(frames));
        });
        let buf = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
            buf = buf.subarray(4 + buf.readInt32BE(0));
            responses++;
          }
        });
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.setTimeout(20_000, () => s.destroy());
      });
    }
    const workers = Array.from({ length: PARALLEL }, async () => {
      while (sent < TOTAL) {
        await oneConnection();
        assert.equal(broker.child.exitCode, null, `broker exited during fuzzing (seed ${seed})\n${broker.output().slice(-3000)}`);
      }
    });
    await Promise.all(workers);
    assert.ok(sent >= TOTAL);
    // Well-formed requests are answered even on a connection a later hostile request closes
    // (only acks=0 produces get no answer).
    assert.ok(responses > 0.8 * (sent - hostile), `${responses} responses to ${sent - hostile} well-formed requests`);
    assert.equal(broker.child.exitCode, null, `broker exited (seed ${seed})`);

    // A client still works: create a topic, produce, fetch the record back.
    const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    const created = await c.send(messages.ApiKey.CreateTopics, 4, { ...messages.defaultCreateTopicsRequest(), topics: [{ name: 'after-fuzz', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000 }).catch(() => null);
    if (created === null) {
      await c.send(messages.ApiKey.Metadata, 12, { topics: [{ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'after-fuzz' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    }
    const batch = encodeRecordBatch({ records: [{ key: Buffer.from('alive'), value: Buffer.from('still serving') }] });
    const produced = await c.send(messages.ApiKey.Produce, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'after-fuzz', partitionData: [{ index: 0, records: batch }] }] });
    assert.equal(produced.responses[0].partitionResponses[0].errorCode, 0, broker.output().slice(-2000));
    const fetched = await c.send(messages.ApiKey.Fetch, 11, {
      ...messages.defaultFetchRequest(),
      maxWaitMs: 100,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{ topic: 'after-fuzz', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [{ ...messages.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
    });
    const records = fetched.responses[0].partitions[0].records as Buffer;
    assert.ok(records.includes(Buffer.from('still serving')));
    c.close();
    const logged = broker.output();
    assert.match(logged, /closing connection/); // bad input was logged, per connection
    console.log(`fuzz: seed ${seed}: ${sent} requests (${hostile} hostile), ${responses} responses`);
  } finally {
    const code = await broker.stop();
    if (process.env['FUZZ_LOG']) writeFileSync(process.env['FUZZ_LOG'], broker.output());
    assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-2000)}`);
    broker.cleanup();
  }
});
