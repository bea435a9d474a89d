/**
 * kcat (librdkafka 2.0.2) against a real broker process: metadata (text and JSON), produce with keys
 * and headers, the four compression codecs, offset selection (-o), offsets for timestamps (-Q) and
 * partition selection (-p). Every test checks the data that comes back, not just exit codes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { stopCleanly, fetchAll, kcat, kcatOk, skipUnless, uniqueTopic } from './helpers.js';

let broker: BrokerProcess;
const B = (): string => broker.bootstrap;
const PARTITIONS = 3;

before(async () => {
  broker = await startBroker({ overrides: { 'num.partitions': PARTITIONS } });
});

after(() => stopCleanly(broker));

const opts = { ...skipUnless('kcat'), timeout: 60000 };

/** Produces newline-separated lines to one partition; extra kcat args (-K, -H, -z) as given. */
async function produce(topic: string, partition: number, lines: string[], extra: string[] = []): Promise<void> {
  await kcatOk(B(), ['-P', '-t', topic, '-p', String(partition), ...extra], { input: lines.map((l) => l + '\n').join('') });
}

/** Consumes one partition (or all with partition -1) from `offset` to its end and returns the formatted lines. */
async function consume(topic: string, partition: number, offset: string, format: string): Promise<string[]> {
  const args = ['-C', '-t', topic, '-e', '-q', '-o', offset, '-f', format];
  if (partition >= 0) args.push('-p', String(partition));
  const out = await kcatOk(B(), args);
  return out.split('\n').filter((l) => l !== '');
}

test('kcat -L and -L -J show this broker and the topic with its partitions', opts, async () => {
  const topic = uniqueTopic('kcat-meta');
  await produce(topic, 0, ['x']);

  const text = await kcatOk(B(), ['-L']);
  assert.match(text, new RegExp(`broker 1 at 127\\.0\\.0\\.1:${broker.port}`));
  assert.match(text, new RegExp(`topic "${topic}" with ${PARTITIONS} partitions:`));
  for (let p = 0; p < PARTITIONS; p++) assert.match(text, new RegExp(`partition ${p}, leader 1, replicas: 1, isrs: 1`));

  const json = JSON.parse(await kcatOk(B(), ['-L', '-J'])) as {
    controllerid: number;
    brokers: Array<{ id: number; name: string }>;
    topics: Array<{ topic: string; error?: string; partitions: Array<{ partition: number; leader: number; replicas: Array<{ id: number }>; isrs: Array<{ id: number }> }> }>;
  };
  assert.deepEqual(json.brokers, [{ id: 1, name: `127.0.0.1:${broker.port}` }]);
  assert.equal(json.controllerid, 1);
  const t = json.topics.find((x) => x.topic === topic);
  assert.ok(t, `topic ${topic} missing from ${JSON.stringify(json.topics.map((x) => x.topic))}`);
  assert.equal(t.error, undefined);
  assert.deepEqual(
    t.partitions.map((p) => p.partition).sort((a, b) => a - b),
    Array.from({ length: PARTITIONS }, (_, i) => i),
  );
  for (const p of t.partitions) {
    assert.equal(p.leader, 1);
    assert.deepEqual(p.replicas, [{ id: 1 }]);
    assert.deepEqual(p.isrs, [{ id: 1 }]);
  }
});

test('kcat produce with keys (-K:) and headers (-H) round-trips exactly', opts, async () => {
  const topic = uniqueTopic('kcat-keys');
  const before = Date.now();
  await produce(topic, 0, ['k1:hello', 'k2:world, with a comma', ':no key', 'k3:'], ['-K:', '-H', 'trace=abc', '-H', 'h2=v2']);
  await produce(topic, 0, ['plain'], []);
  const lines = await consume(topic, 0, 'beginning', '%k|%s|%h|%p|%o|%T\n');
  const after = Date.now();
  assert.deepEqual(
    lines.map((l) => l.slice(0, l.lastIndexOf('|'))),
    [
      'k1|hello|trace=abc,h2=v2|0|0',
      'k2|world, with a comma|trace=abc,h2=v2|0|1',
      '|no key|trace=abc,h2=v2|0|2',
      'k3||trace=abc,h2=v2|0|3',
      '|plain||0|4',
    ],
  );
  // CreateTime from the producer, so within the time the test ran (same host clock).
  for (const l of lines) {
    const ts = Number(l.slice(l.lastIndexOf('|') + 1));
    assert.ok(ts >= before - 1000 && ts <= after + 1000, `timestamp ${ts} not within [${before}, ${after}]`);
  }
  // Our own Fetch sees the same keys, values and headers (and no key at all where kcat sent none).
  const { records } = await fetchAll(broker.port, topic, 0);
  assert.deepEqual(
    records.map((r) => [r.offset, r.key, r.value, r.headers]),
    [
      [0, 'k1', 'hello', [['trace', 'abc'], ['h2', 'v2']]],
      [1, 'k2', 'world, with a comma', [['trace', 'abc'], ['h2', 'v2']]],
      [2, '', 'no key', [['trace', 'abc'], ['h2', 'v2']]],
      [3, 'k3', '', [['trace', 'abc'], ['h2', 'v2']]],
      [4, null, 'plain', []],
    ],
  );
});

const CODECS = [
  ['gzip', 1],
  ['snappy', 2],
  ['lz4', 3],
  ['zstd', 4],
] as const;

/**
 * librdkafka 2.0.2 compresses only when the broker's ApiVersions enable the codec's feature
 * (rdkafka_feature.c, rd_kafka_compression2feature): gzip and snappy need feature MsgVer1
 * (Produce 2..2 and Fetch 2..2 advertised), lz4 needs feature LZ4 (FindCoordinator 0..0 advertised),
 * zstd needs ZSTD (Produce 7, Fetch 10). Otherwise it logs "Broker does not support compression type
 * X: not compressing batch" and silently sends the batch uncompressed.
 */
for (const [codec, id] of CODECS) {
  const N = 500;
  // Compressible values, so librdkafka never falls back to sending them uncompressed for size.
  const values = Array.from({ length: N }, (_, i) => `${codec}-record-${String(i).padStart(5, '0')}-${'x'.repeat(40)}`);
  const topic = uniqueTopic(`kcat-${codec}`);
  let produced: Promise<void> | undefined;
  const produceOnce = (): Promise<void> => (produced ??= produce(topic, 0, values, ['-z', codec]));

  test(`kcat -z ${codec}: ${N} records round-trip`, opts, async () => {
    await produceOnce();
    const lines = await consume(topic, 0, 'beginning', '%o %s\n');
    assert.deepEqual(lines, values.map((v, i) => `${i} ${v}`));
    const { records, highWatermark } = await fetchAll(broker.port, topic, 0);
    assert.equal(highWatermark, N);
    assert.deepEqual(records.map((r) => r.value), values);
  });

  test(`kcat -z ${codec}: batches are stored ${codec}-compressed`, opts, async () => {
    await produceOnce();
    const { batches } = await fetchAll(broker.port, topic, 0);
    assert.ok(batches.length >= 1);
    const codecs = batches.map((b) => b.header.attributes & 7);
    assert.deepEqual(codecs, codecs.map(() => id), `batch codecs ${codecs.join(',')}, expected all ${id} (${codec})`);
  });
}

test('kcat -o: absolute, relative from end, beginning, and end', opts, async () => {
  const topic = uniqueTopic('kcat-offsets');
  const values = Array.from({ length: 10 }, (_, i) => `o${i}`);
  await produce(topic, 0, values);
  const fmt = '%o:%s\n';
  const expect = (from: number): string[] => values.slice(from).map((v, i) => `${from + i}:${v}`);
  assert.deepEqual(await consume(topic, 0, 'beginning', fmt), expect(0));
  assert.deepEqual(await consume(topic, 0, '3', fmt), expect(3));
  assert.deepEqual(await consume(topic, 0, '-2', fmt), expect(8));
  assert.deepEqual(await consume(topic, 0, '9', fmt), expect(9));
  assert.deepEqual(await consume(topic, 0, 'end', fmt), []);
  assert.deepEqual(await consume(topic, 0, '10', fmt), []);
});

test('kcat -Q: offsets for timestamps, and -1/-2 (latest/earliest)', opts, async () => {
  const topic = uniqueTopic('kcat-times');
  await produce(topic, 0, ['a0', 'a1', 'a2', 'a3', 'a4']);
  await new Promise((r) => setTimeout(r, 100)); // a clear gap between the two batches' CreateTimes
  await produce(topic, 0, ['b5', 'b6', 'b7', 'b8', 'b9']);
  const ts = (await consume(topic, 0, 'beginning', '%T\n')).map(Number);
  assert.equal(ts.length, 10);
  assert.ok(ts[5]! > ts[4]!, `no timestamp gap: ${ts.join(',')}`);

  /** Kafka's rule: the first offset whose timestamp is >= the query, else -1. */
  const expected = (q: number): number => ts.findIndex((t) => t >= q);
  const queries = [0, ts[0]!, ts[4]!, ts[4]! + 1, ts[5]!, ts[9]!, ts[9]! + 1, ts[9]! + 3600_000];
  for (const q of queries) {
    const out = await kcatOk(B(), ['-Q', '-t', `${topic}:0:${q}`]);
    assert.equal(out.trim(), `${topic} [0] offset ${expected(q)}`, `timestamp ${q} (record timestamps ${ts.join(',')})`);
  }
  assert.equal((await kcatOk(B(), ['-Q', '-t', `${topic}:0:-1`])).trim(), `${topic} [0] offset 10`);
  assert.equal((await kcatOk(B(), ['-Q', '-t', `${topic}:0:-2`])).trim(), `${topic} [0] offset 0`);
});

test('kcat -p: produce to and consume from chosen partitions of a 3-partition topic', opts, async () => {
  const topic = uniqueTopic('kcat-parts');
  const perPartition = [['p0-a'], ['p1-a', 'p1-b', 'p1-c'], ['p2-a', 'p2-b']];
  for (let p = 0; p < PARTITIONS; p++) await produce(topic, p, perPartition[p]!);
  for (let p = 0; p < PARTITIONS; p++) {
    assert.deepEqual(await consume(topic, p, 'beginning', '%p|%o|%s\n'), perPartition[p]!.map((v, o) => `${p}|${o}|${v}`));
    const q = await kcatOk(B(), ['-Q', '-t', `${topic}:${p}:-1`]);
    assert.equal(q.trim(), `${topic} [${p}] offset ${perPartition[p]!.length}`);
  }
  // All partitions at once: same records, whatever the interleaving.
  const all = await consume(topic, -1, 'beginning', '%p|%o|%s\n');
  assert.deepEqual(all.sort(), perPartition.flatMap((vs, p) => vs.map((v, o) => `${p}|${o}|${v}`)).sort());
  // A partition that does not exist is refused by the client (metadata says there are 3).
  const bad = await kcat(B(), ['-P', '-t', topic, '-p', '7'], { input: 'nope\n', timeoutMs: 20000 });
  assert.notEqual(bad.code, 0, 'producing to partition 7 of a 3-partition topic should fail');
});
