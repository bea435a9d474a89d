import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as messages from '../../src/protocol/messages/index.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { SUPPORTED_APIS } from '../../src/broker/handlers/index.js';
import { responseHeaderVersion, requestHeaderVersion } from '../../src/protocol/apis.js';
import { SPEC_DIR, ValueMaker, loadSpec, prng, versionRange } from './spec-values.js';

type Codec = {
  key: number;
  name: string;
  minVersion: number;
  maxVersion: number;
  encodeRequest(w: Writer, v: never, version: number): void;
  decodeRequest(r: Reader, version: number): unknown;
  encodeResponse(w: Writer, v: never, version: number): void;
  decodeResponse(r: Reader, version: number): unknown;
};

const mod = messages as unknown as Record<string, unknown>;

function roundTrip(api: Codec, kind: 'Request' | 'Response', version: number, seed: number): void {
  const spec = loadSpec(`${api.name}${kind}.json`);
  const maker = new ValueMaker(spec, mod, prng(seed));
  const value = maker.struct(null, version);
  const w = new Writer();
  (kind === 'Request' ? api.encodeRequest : api.encodeResponse)(w, value as never, version);
  const bytes = w.toBuffer();
  const r = new Reader(bytes);
  const back = (kind === 'Request' ? api.decodeRequest : api.decodeResponse)(r, version);
  assert.equal(r.error, null, `${api.name}${kind} v${version} seed ${seed}: ${r.error}`);
  assert.equal(r.remaining, 0, `${api.name}${kind} v${version} seed ${seed}: trailing bytes`);
  assert.deepEqual(back, value, `${api.name}${kind} v${version} seed ${seed}`);
  const w2 = new Writer();
  (kind === 'Request' ? api.encodeRequest : api.encodeResponse)(w2, back as never, version);
  assert.deepEqual(w2.toBuffer(), bytes, `${api.name}${kind} v${version} seed ${seed}: re-encoding differs`);
}

test('every message round-trips in every valid version (encode → decode → equal)', () => {
  let cases = 0;
  for (const api of messages.ALL_APIS as readonly Codec[]) {
    for (let v = api.minVersion; v <= api.maxVersion; v++) {
      for (let seed = 1; seed <= 8; seed++) {
        roundTrip(api, 'Request', v, api.key * 1000 + v * 10 + seed);
        roundTrip(api, 'Response', v, api.key * 1000 + v * 10 + seed);
        cases += 2;
      }
    }
  }
  assert.ok(cases > 1000);
});

test('every advertised api × version round-trips with many seeds', () => {
  for (const s of SUPPORTED_APIS) {
    const api = messages.API_BY_KEY.get(s.key) as unknown as Codec;
    for (let v = s.minVersion; v <= s.maxVersion; v++) {
      for (let seed = 100; seed < 150; seed++) {
        roundTrip(api, 'Request', v, seed);
        roundTrip(api, 'Response', v, seed);
      }
    }
  }
});

test('the generated api table matches the specs', () => {
  for (const api of messages.ALL_APIS as readonly Codec[]) {
    const spec = loadSpec(`${api.name}Request.json`);
    assert.equal(api.key, spec.apiKey);
    assert.deepEqual([api.minVersion, api.maxVersion], versionRange(spec.validVersions));
  }
});

test('Strand\'s extension apis match their specs and keep out of Kafka\'s api keys', () => {
  assert.ok(messages.STRAND_APIS.length > 0);
  const kafkaMax = Math.max(...messages.ALL_APIS.map((a) => a.key));
  for (const api of messages.STRAND_APIS as readonly Codec[]) {
    const spec = loadSpec(`${api.name}Request.json`);
    assert.equal(api.key, spec.apiKey);
    assert.ok(api.key >= 10000 && api.key > kafkaMax && api.key <= 32767, `${api.name} key ${api.key}`);
    assert.equal(messages.API_BY_KEY.get(api.key), api);
    for (let v = api.minVersion; v <= api.maxVersion; v++) for (let seed = 1; seed <= 20; seed++) {
      roundTrip(api, 'Request', v, seed);
      roundTrip(api, 'Response', v, seed);
    }
  }
});

test('unknown tagged fields are skipped', () => {
  // Metadata request v9 (flexible) with an extra tag 7 carrying 3 bytes in the top-level tag buffer.
  const w = new Writer();
  messages.encodeMetadataRequest(w, { ...messages.defaultMetadataRequest(), topics: [] }, 12);
  const base = w.toBuffer();
  assert.equal(base[base.length - 1], 0); // empty tag buffer
  const withTag = Buffer.concat([base.subarray(0, base.length - 1), Buffer.from([1, 7, 3, 0xaa, 0xbb, 0xcc])]);
  const r = new Reader(withTag);
  const v = messages.decodeMetadataRequest(r, 12);
  assert.equal(r.error, null);
  assert.equal(r.remaining, 0);
  assert.deepEqual(v.topics, []);
});

test('truncated and hostile input never throws from a decoder', () => {
  const rand = prng(42);
  for (const api of messages.ALL_APIS as readonly Codec[]) {
    for (let v = api.minVersion; v <= api.maxVersion; v++) {
      const maker = new ValueMaker(loadSpec(`${api.name}Request.json`), mod, rand);
      const w = new Writer();
      api.encodeRequest(w, maker.struct(null, v) as never, v);
      const bytes = w.toBuffer();
      for (let cut = 0; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 7))) {
        const r = new Reader(bytes.subarray(0, cut));
        api.decodeRequest(r, v);
        if (cut < bytes.length) assert.ok(r.error !== null || r.remaining === 0);
      }
      const garbage = Buffer.alloc(64);
      for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(rand() * 256);
      api.decodeRequest(new Reader(garbage), v);
    }
  }
});

// Bytes captured from KafkaJS (requests) and real Kafka brokers (responses).
const GOLDEN = join(SPEC_DIR, '..', 'golden-kafkajs');

test('golden bytes from KafkaJS and Kafka brokers decode, and re-encode to the same bytes', () => {
  assert.ok(existsSync(GOLDEN), `golden bytes missing at ${GOLDEN}`);
  let decoded = 0;
  const notCanonical: string[] = [];
  for (const dir of readdirSync(GOLDEN)) {
    if (dir.endsWith('.md')) continue;
    const apiName = dir.charAt(0).toUpperCase() + dir.slice(1);
    const api = (messages.ALL_APIS as readonly Codec[]).find((a) => a.name === apiName);
    assert.ok(api, `no codec for golden dir ${dir}`);
    for (const file of readdirSync(join(GOLDEN, dir))) {
      const m = /^v(\d+)_(request|response)/.exec(file);
      if (!m) continue;
      const version = Number(m[1]);
      const kind = m[2] === 'request' ? 'Request' : 'Response';
      if (version > api.maxVersion) continue;
      let bytes = Buffer.from((JSON.parse(readFileSync(join(GOLDEN, dir, file), 'utf8')) as { data: number[] }).data);
      // KafkaJS keeps the header's tag buffer (one 0x00 byte) with the body of flexible versions.
      const headerTags = kind === 'Request' ? requestHeaderVersion(api.key, version) === 2 : responseHeaderVersion(api.key, version) === 1;
      if (headerTags) {
        assert.equal(bytes[0], 0, `${dir}/${file}: expected the header's empty tag buffer`);
        bytes = bytes.subarray(1);
      }
      const r = new Reader(bytes);
      const value = (kind === 'Request' ? api.decodeRequest : api.decodeResponse)(r, version);
      // A few captures predate a field their version now carries (named *_missing_*); all else must decode cleanly.
      if (file.includes('missing')) continue;
      assert.equal(r.error, null, `${dir}/${file}: ${r.error}`);
      assert.equal(r.remaining, 0, `${dir}/${file}: ${r.remaining} trailing bytes`);
      decoded++;
      const w = new Writer();
      (kind === 'Request' ? api.encodeRequest : api.encodeResponse)(w, value as never, version);
      if (!w.toBuffer().equals(bytes)) notCanonical.push(`${dir}/${file}`);
    }
  }
  assert.ok(decoded >= 150, `decoded ${decoded} golden files`);
  // Re-encoding is byte-exact unless the capture used a non-canonical form; list them so a change is visible.
  assert.deepEqual(notCanonical, [], `not byte-exact on re-encode: ${notCanonical.join(', ')}`);
});

test('a Writer used again after finish() leaves the chunks it handed out alone', () => {
  const w = new Writer(8);
  w.int32(1).string('first');
  const first = w.finish();
  const firstBytes = Buffer.concat(first as Buffer[]);
  w.int32(2).string('second, longer than the first scratch').raw(Buffer.alloc(5000, 7));
  const second = Buffer.concat(w.finish() as Buffer[]);
  assert.deepEqual(Buffer.concat(first as Buffer[]), firstBytes, 'first chunks unchanged');
  const r = new Reader(second);
  assert.equal(r.int32(), 2);
  assert.equal(r.string(), 'second, longer than the first scratch');
  assert.deepEqual(r.raw(5000), Buffer.alloc(5000, 7));
  assert.equal(r.remaining, 0);
  assert.deepEqual(w.finish(), [], 'nothing written: no chunks');
  assert.equal(w.int8(3).toBuffer().readInt8(0), 3);
});
