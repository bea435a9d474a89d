/**
 * Produce, Fetch and ListOffsets semantics against a real broker process, with the generated
 * codecs as the client: validation errors with Kafka's codes, LogAppendTime, KIP-74, limits,
 * topic ids, leader epochs, old versions, and offsets by timestamp exact to the record.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { decodeRecordBatches, encodeRecordBatch, readBatchHeader, recordTimestamp, type BatchInput } from '../../src/protocol/records.js';
import { recordsInMemory } from '../../src/protocol/writer.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

let broker: BrokerProcess;
let c: ProtocolConnection;
const ZERO = m.defaultFetchRequestFetchTopic().topicId;

before(async () => {
  broker = await startBroker();
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
});

after(async () => {
  c.close();
  assert.equal(await broker.stop(), 0);
  assert.doesNotMatch(broker.output(), / ERROR /);
  broker.cleanup();
});

async function createTopic(name: string, configs: Record<string, string> = {}, partitions = 1): Promise<string> {
  const r = await c.send(m.ApiKey.CreateTopics, 7, {
    ...m.defaultCreateTopicsRequest(),
    timeoutMs: 5000,
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
  });
  assert.equal(r.topics[0].errorCode, 0, r.topics[0].errorMessage ?? '');
  return r.topics[0].topicId;
}

async function produce(topic: string, records: Buffer, version = 9, acks = -1): Promise<m.ProduceResponsePartitionProduceResponse> {
  const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, version, { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return r.responses[0]!.partitionResponses[0]!;
}

const batch = (values: string[], opts: Partial<BatchInput> = {}): Buffer =>
  encodeRecordBatch({ records: values.map((v, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(v) })), ...opts });

async function fetch(topic: string, offset: number, opts: { version?: number; maxBytes?: number; partitionMaxBytes?: number; topicId?: string; leaderEpoch?: number } = {}): Promise<m.FetchResponsePartitionData> {
  const r = await c.send<m.FetchResponse>(m.ApiKey.Fetch, opts.version ?? 11, {
    ...m.defaultFetchRequest(),
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: opts.maxBytes ?? 1 << 20,
    topics: [{ topic, topicId: opts.topicId ?? ZERO, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: offset, partitionMaxBytes: opts.partitionMaxBytes ?? 1 << 20, currentLeaderEpoch: opts.leaderEpoch ?? -1 }] }],
  });
  assert.equal(r.errorCode, 0);
  return r.responses[0]!.partitions[0]!;
}

async function listOffset(topic: string, timestamp: number, version = 7): Promise<m.ListOffsetsResponseListOffsetsPartitionResponse> {
  const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, version, { replicaId: -1, isolationLevel: 0, timeoutMs: 0, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }] });
  return r.topics[0]!.partitions[0]!;
}

test('a corrupt CRC is CORRUPT_MESSAGE, nothing is appended, and v8+ says why', { timeout: 20000 }, async () => {
  await createTopic('crc');
  const b = batch(['a', 'b']);
  b[b.length - 1] ^= 0xff;
  const r = await produce('crc', b);
  assert.equal(r.errorCode, ErrorCode.CORRUPT_MESSAGE);
  assert.ok(r.errorMessage !== null && r.errorMessage.length > 0);
  assert.equal((await listOffset('crc', -1)).offset, 0);
});

test('a batch over max.message.bytes is MESSAGE_TOO_LARGE', { timeout: 20000 }, async () => {
  await createTopic('small', { 'max.message.bytes': '200' });
  assert.equal((await produce('small', batch(['x'.repeat(500)]))).errorCode, ErrorCode.MESSAGE_TOO_LARGE);
  assert.equal((await produce('small', batch(['fits']))).errorCode, ErrorCode.NONE);
});

test('a record count that disagrees with the last offset delta is INVALID_RECORD', { timeout: 20000 }, async () => {
  await createTopic('count');
  const b = batch(['a', 'b', 'c']);
  b.writeInt32BE(5, 57); // recordsCount; the CRC is recomputed below so only the count is wrong
  const { crc32c } = await import('@node-rs/crc32');
  b.writeUInt32BE(crc32c(b.subarray(21)), 17);
  assert.equal((await produce('count', b)).errorCode, ErrorCode.INVALID_RECORD);
});

test('acks outside 0, 1, -1 is INVALID_REQUIRED_ACKS; unknown topics are UNKNOWN_TOPIC_OR_PARTITION', { timeout: 20000 }, async () => {
  await createTopic('acks');
  assert.equal((await produce('acks', batch(['a']), 9, 2)).errorCode, ErrorCode.INVALID_REQUIRED_ACKS);
  assert.equal((await produce('no-such-topic', batch(['a']))).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
});

test('old message formats and old versions get Kafka\'s answers', { timeout: 20000 }, async () => {
  await createTopic('old');
  // A magic-1 message set: offset, size, crc, magic 1, attributes, timestamp, key -1, value "v".
  const msg = Buffer.alloc(8 + 4 + 4 + 1 + 1 + 8 + 4 + 4 + 1);
  msg.writeInt32BE(msg.length - 12, 8);
  msg[16] = 1;
  msg.writeInt32BE(-1, 26);
  msg.writeInt32BE(1, 30);
  msg[34] = 0x76;
  const r2 = await produce('old', msg, 2);
  assert.equal(r2.errorCode, ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT);
  assert.equal((await produce('old', batch(['z'], { compression: 4 }), 6)).errorCode, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
  assert.equal((await produce('old', batch(['z'], { compression: 4 }), 7)).errorCode, ErrorCode.NONE);
  // A v3 fetch would need down-conversion: UNSUPPORTED_VERSION, as Kafka without down-conversion.
  const f = await fetch('old', 0, { version: 3 });
  assert.equal(f.errorCode, ErrorCode.UNSUPPORTED_VERSION);
  assert.equal((await fetch('old', 1, { version: 3 })).errorCode, ErrorCode.NONE); // nothing to convert past the end
});

test('LogAppendTime rewrites the timestamp and the CRC, and produce answers the append time', { timeout: 20000 }, async () => {
  await createTopic('lat', { 'message.timestamp.type': 'LogAppendTime' });
  const before = Date.now();
  const r = await produce('lat', batch(['a', 'b'], { baseTimestamp: 1000 }));
  assert.equal(r.errorCode, 0);
  assert.ok(r.logAppendTimeMs >= before && r.logAppendTimeMs <= Date.now());
  const f = await fetch('lat', 0);
  const [b] = decodeRecordBatches(recordsInMemory(f.records)!); // CRC checked by the decoder
  assert.equal(b!.header.attributes & 0x08, 0x08);
  assert.equal(b!.header.maxTimestamp, r.logAppendTimeMs);
  assert.equal(recordTimestamp(b!.header, b!.records[0]!), r.logAppendTimeMs);
});

test('fetch limits: partition_max_bytes and max_bytes, but always the first batch (KIP-74)', { timeout: 20000 }, async () => {
  await createTopic('kip74');
  for (let i = 0; i < 5; i++) assert.equal((await produce('kip74', batch([`${i}`.repeat(3000)]))).errorCode, 0);
  const one = await fetch('kip74', 0, { partitionMaxBytes: 10 });
  const batches = decodeRecordBatches(recordsInMemory(one.records)!);
  assert.equal(batches.length, 1, 'one whole batch even though it exceeds the limit');
  const two = recordsInMemory((await fetch('kip74', 0, { partitionMaxBytes: 7000 })).records)!;
  assert.ok(two.length <= 7000);
  assert.equal(decodeRecordBatches(two).length, 2);
  const all = decodeRecordBatches(recordsInMemory((await fetch('kip74', 2)).records)!);
  assert.equal(all[0]!.header.baseOffset, 2);
  assert.equal(all.length, 3);
  const out = await fetch('kip74', 99);
  assert.equal(out.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
  assert.equal(out.highWatermark, 5);
});

test('a long poll answers when data arrives, not at max_wait_ms', { timeout: 20000 }, async () => {
  await createTopic('poll');
  const c2 = await ProtocolConnection.connect('127.0.0.1', broker.port);
  const started = Date.now();
  const waiting = c2.send<m.FetchResponse>(m.ApiKey.Fetch, 11, {
    ...m.defaultFetchRequest(),
    maxWaitMs: 10000,
    minBytes: 1,
    maxBytes: 1 << 20,
    topics: [{ topic: 'poll', topicId: ZERO, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
  });
  await new Promise((r) => setTimeout(r, 200));
  await produce('poll', batch(['wake up']));
  const r = await waiting;
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 5000, `answered after ${elapsed} ms`);
  assert.ok(recordsInMemory(r.responses[0]!.partitions[0]!.records)!.includes(Buffer.from('wake up')));
  c2.close();
});

test('Fetch v13 names topics by id; an unknown id is UNKNOWN_TOPIC_ID; a future leader epoch is UNKNOWN_LEADER_EPOCH', { timeout: 20000 }, async () => {
  const id = await createTopic('byid');
  await produce('byid', batch(['by id']));
  const f = await fetch('', 0, { version: 13, topicId: id });
  assert.equal(f.errorCode, 0);
  assert.ok(recordsInMemory(f.records)!.includes(Buffer.from('by id')));
  assert.equal((await fetch('', 0, { version: 13, topicId: 'AAAAAAAAAAAAAAAAAAAAAQ' })).errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
  assert.equal((await fetch('byid', 0, { leaderEpoch: 5 })).errorCode, ErrorCode.UNKNOWN_LEADER_EPOCH);
  const md = await c.send<m.MetadataResponse>(m.ApiKey.Metadata, 12, { ...m.defaultMetadataRequest(), topics: [{ topicId: id, name: null }] });
  assert.equal(md.topics[0]!.name, 'byid');
  assert.equal(md.topics[0]!.partitions[0]!.leaderEpoch, 0);
});

test('ListOffsets: earliest, latest, max timestamp, and by timestamp exact to the record in compressed batches', { timeout: 20000 }, async () => {
  await createTopic('times');
  const base = 1_700_000_000_000;
  // Two compressed batches with increasing record timestamps, and one record out of order.
  for (const [first, codec] of [[0, 1], [10, 4]] as const) {
    const b = encodeRecordBatch({
      compression: codec,
      records: Array.from({ length: 10 }, (_, i) => ({ key: null, value: Buffer.from(`r${first + i}`), timestamp: base + (first + i) * 100 + (first + i === 13 ? 5000 : 0) })),
    });
    assert.equal((await produce('times', b)).errorCode, 0);
  }
  assert.equal((await listOffset('times', -2)).offset, 0);
  assert.equal((await listOffset('times', -1)).offset, 20);
  const exact = await listOffset('times', base + 450);
  assert.deepEqual([exact.offset, exact.timestamp], [5, base + 500]);
  const second = await listOffset('times', base + 1050);
  assert.deepEqual([second.offset, second.timestamp], [11, base + 1100]);
  const max = await listOffset('times', -3);
  assert.deepEqual([max.offset, max.timestamp], [13, base + 1300 + 5000]);
  const none = await listOffset('times', base + 10_000_000);
  assert.deepEqual([none.offset, none.timestamp], [-1, -1]);
  const v0 = await listOffset('times', -1, 0);
  assert.deepEqual(v0.oldStyleOffsets, [20]);
  // The header of what we stored still says the producer's codec: never recompressed.
  const f = recordsInMemory((await fetch('times', 10)).records)!;
  assert.equal(readBatchHeader(f).attributes & 0x07, 4);
});
