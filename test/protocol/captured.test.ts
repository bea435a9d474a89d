/**
 * Request bytes captured from real clients (librdkafka 2.0.2 through kcat and confluent-kafka,
 * kafka-python 2.0.2; see test/fixtures/captured/README.md) decode with the generated codecs,
 * consume every byte, and re-encode byte for byte; their record batches decode and validate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_BY_KEY, encodeRequestHeader, type ProduceRequest } from '../../src/protocol/messages/index.js';
import { readRequestHeader, requestHeaderVersion } from '../../src/protocol/apis.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer, recordsInMemory } from '../../src/protocol/writer.js';
import { decodeRecordBatches } from '../../src/protocol/records.js';
import { validateProduceRecords } from '../../src/protocol/validate.js';

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'captured');

test('captured request frames from librdkafka and kafka-python decode and re-encode exactly', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.bin'));
  assert.ok(files.length >= 25, `only ${files.length} captures`);
  const codecs = new Set<number>();
  for (const file of files) {
    const frame = readFileSync(join(DIR, file));
    const r = new Reader(frame);
    const header = readRequestHeader(r);
    const api = API_BY_KEY.get(header.requestApiKey)!;
    assert.ok(api, `${file}: api key ${header.requestApiKey}`);
    assert.match(file, new RegExp(`--${api.name}-v${header.requestApiVersion}\\b`));
    const body = api.decodeRequest(r, header.requestApiVersion);
    assert.equal(r.error, null, `${file}: ${r.error}`);
    assert.equal(r.remaining, 0, `${file}: ${r.remaining} bytes left over`);
    const w = new Writer();
    encodeRequestHeader(w, header, requestHeaderVersion(header.requestApiKey, header.requestApiVersion));
    (api.encodeRequest as (w: Writer, v: unknown, version: number) => void)(w, body, header.requestApiVersion);
    assert.deepEqual(w.toBuffer(), frame, `${file}: re-encoding differs`);
    if (api.name === 'Produce') {
      for (const t of (body as ProduceRequest).topicData) {
        for (const p of t.partitionData) {
          const records = recordsInMemory(p.records)!;
          const v = validateProduceRecords(records, { maxMessageBytes: 1 << 20 });
          assert.ok(v.ok, `${file}: ${v.ok ? '' : v.message}`);
          for (const b of decodeRecordBatches(records)) {
            codecs.add(b.header.attributes & 7);
            assert.ok(b.records.length > 0);
          }
        }
      }
    }
  }
  // kcat -z none|gzip|snappy|lz4|zstd and kafka-python gzip: every codec really on the wire.
  for (const c of [0, 1, 2, 3, 4]) assert.ok(codecs.has(c), `no captured batch with codec ${c}: ${[...codecs]}`);
});
