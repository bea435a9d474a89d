/**
 * The admin apis against a real broker process: CreateTopics, DeleteTopics, CreatePartitions,
 * DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, DeleteRecords, DescribeCluster.
 * Every check reads the state back (Metadata, DescribeConfigs, Produce/Fetch, ListOffsets), not
 * just the error code of the call.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKey, defaultFetchRequest, defaultFetchRequestFetchPartition } from '../../src/protocol/messages/index.js';
import { ZERO_UUID } from '../../src/protocol/reader.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/protocol/records.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

const E = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  TOPIC_DELETION_DISABLED: 73,
  UNKNOWN_TOPIC_ID: 100,
  MISMATCHED_ENDPOINT_TYPE: 114,
  UNSUPPORTED_ENDPOINT_TYPE: 115,
} as const;
const SOURCE = { DYNAMIC_TOPIC_CONFIG: 1, STATIC_BROKER_CONFIG: 4, DEFAULT_CONFIG: 5 } as const;
const TOPIC = 2;
const BROKER = 4;
const T = { timeout: 60000 };

let broker: BrokerProcess;
let c: ProtocolConnection;

before(async () => {
  broker = await startBroker({ overrides: { 'auto.create.topics.enable': 'false', 'num.partitions': 2, 'log.retention.hours': 100 } });
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
});

after(async () => {
  c?.close();
  if (broker) {
    const code = await broker.stop();
    broker.cleanup();
    assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-2000)}`);
  }
});

// ------------------------------------------------------------------------------------ helpers

interface NewTopic {
  name: string;
  numPartitions?: number;
  replicationFactor?: number;
  assignments?: Array<{ partitionIndex: number; brokerIds: number[] }>;
  configs?: Array<{ name: string; value: string | null }>;
}

function createTopics(topics: NewTopic[], version = 7, validateOnly = false): Promise<any> {
  return c.send(ApiKey.CreateTopics, version, {
    topics: topics.map((t) => ({ numPartitions: 1, replicationFactor: 1, assignments: [], configs: [], ...t })),
    timeoutMs: 10000,
    validateOnly,
  });
}

async function createTopic(t: NewTopic): Promise<any> {
  const r = await createTopics([t]);
  assert.equal(r.topics[0].errorCode, E.NONE, r.topics[0].errorMessage);
  return r.topics[0];
}

async function metadata(name: string): Promise<any> {
  const r = await c.send(ApiKey.Metadata, 12, { topics: [{ topicId: ZERO_UUID, name }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  return r.topics[0];
}

async function produce(topic: string, partition: number, values: string[]): Promise<any> {
  const records = encodeRecordBatch({ records: values.map((v) => ({ key: null, value: Buffer.from(v) })) });
  const r = await c.send(ApiKey.Produce, 7, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] });
  return r.responses[0].partitionResponses[0];
}

async function fetch(topic: string, partition: number, offset: number): Promise<{ p: any; values: string[]; offsets: number[] }> {
  const r = await c.send(ApiKey.Fetch, 11, {
    ...defaultFetchRequest(),
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    topics: [{ topic, topicId: ZERO_UUID, partitions: [{ ...defaultFetchRequestFetchPartition(), partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }],
  });
  const p = r.responses[0].partitions[0];
  const values: string[] = [];
  const offsets: number[] = [];
  if (p.records !== null && p.records.length > 0) {
    for (const b of decodeRecordBatches(p.records)) {
      for (const rec of b.records) {
        const o = b.header.baseOffset + rec.offsetDelta;
        if (o < offset) continue;
        offsets.push(o);
        values.push(rec.value?.toString() ?? '');
      }
    }
  }
  return { p, values, offsets };
}

async function listOffset(topic: string, partition: number, timestamp: number): Promise<any> {
  const r = await c.send(ApiKey.ListOffsets, 5, { replicaId: -1, isolationLevel: 0, timeoutMs: 0, topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }] });
  return r.topics[0].partitions[0];
}

function describeConfigs(resources: Array<{ resourceType: number; resourceName: string; configurationKeys?: string[] | null }>, version = 4, opts = { includeSynonyms: true, includeDocumentation: true }): Promise<any> {
  return c.send(ApiKey.DescribeConfigs, version, { resources: resources.map((r) => ({ configurationKeys: null, ...r })), ...opts });
}

async function topicConfigs(topic: string): Promise<Map<string, any>> {
  const r = await describeConfigs([{ resourceType: TOPIC, resourceName: topic }]);
  assert.equal(r.results[0].errorCode, E.NONE, r.results[0].errorMessage);
  return new Map(r.results[0].configs.map((e: any) => [e.name, e]));
}

function alterConfigs(resources: Array<{ resourceType: number; resourceName: string; configs: Array<{ name: string; value: string | null }> }>, version = 2, validateOnly = false): Promise<any> {
  return c.send(ApiKey.AlterConfigs, version, { resources, validateOnly });
}

function incrementalAlter(resourceName: string, configs: Array<{ name: string; configOperation: number; value: string | null }>, validateOnly = false, resourceType = TOPIC): Promise<any> {
  return c.send(ApiKey.IncrementalAlterConfigs, 1, { resources: [{ resourceType, resourceName, configs }], validateOnly });
}

// ------------------------------------------------------------------------------------ tests

test('ApiVersions advertises the admin apis with their version ranges', T, async () => {
  const r = await c.send(ApiKey.ApiVersions, 3, { clientSoftwareName: 'strand-test', clientSoftwareVersion: '0' });
  const byKey = new Map(r.apiKeys.map((k: any) => [k.apiKey, [k.minVersion, k.maxVersion]]));
  assert.deepEqual(byKey.get(19), [0, 7]);
  assert.deepEqual(byKey.get(20), [0, 6]);
  assert.deepEqual(byKey.get(21), [0, 2]);
  assert.deepEqual(byKey.get(32), [0, 4]);
  assert.deepEqual(byKey.get(33), [0, 2]);
  assert.deepEqual(byKey.get(37), [0, 3]);
  assert.deepEqual(byKey.get(44), [0, 1]);
  assert.deepEqual(byKey.get(60), [0, 1]);
});

test('CreateTopics v7 creates the topic with its id, partitions and configs echoed', T, async () => {
  const t = await createTopic({ name: 'ct-a', numPartitions: 3, replicationFactor: 1, configs: [{ name: 'retention.ms', value: '12345' }] });
  assert.notEqual(t.topicId, ZERO_UUID);
  assert.equal(t.numPartitions, 3);
  assert.equal(t.replicationFactor, 1);
  const cfg = new Map(t.configs.map((e: any) => [e.name, e]));
  assert.deepEqual(cfg.get('retention.ms'), { name: 'retention.ms', value: '12345', readOnly: false, configSource: SOURCE.DYNAMIC_TOPIC_CONFIG, isSensitive: false });
  assert.equal((cfg.get('cleanup.policy') as any).value, 'delete');
  assert.equal((cfg.get('cleanup.policy') as any).configSource, SOURCE.DEFAULT_CONFIG);
  const md = await metadata('ct-a');
  assert.equal(md.errorCode, E.NONE);
  assert.equal(md.topicId, t.topicId);
  assert.deepEqual(md.partitions.map((p: any) => p.partitionIndex), [0, 1, 2]);
  // Each partition is immediately usable.
  for (const p of [0, 1, 2]) assert.equal((await produce('ct-a', p, [`v${p}`])).errorCode, E.NONE);
  assert.deepEqual((await fetch('ct-a', 2, 0)).values, ['v2']);
});

test('CreateTopics -1/-1 takes the broker defaults; manual assignments are honoured', T, async () => {
  const r = await createTopics([{ name: 'ct-defaults', numPartitions: -1, replicationFactor: -1 }], 4);
  assert.equal(r.topics[0].errorCode, E.NONE);
  assert.equal((await metadata('ct-defaults')).partitions.length, 2); // num.partitions=2 override
  const m = await createTopics([{ name: 'ct-manual', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 1, brokerIds: [1] }, { partitionIndex: 0, brokerIds: [1] }] }]);
  assert.equal(m.topics[0].errorCode, E.NONE, m.topics[0].errorMessage);
  assert.equal(m.topics[0].numPartitions, 2);
  const md = await metadata('ct-manual');
  assert.deepEqual(md.partitions.map((p: any) => [p.partitionIndex, p.leaderId, p.replicaNodes]), [[0, 1, [1]], [1, 1, [1]]]);
});

test('CreateTopics validate_only checks everything and creates nothing', T, async () => {
  for (const v of [1, 5, 7]) {
    const r = await createTopics([{ name: `ct-validate-${v}`, numPartitions: 4, configs: [{ name: 'segment.bytes', value: '1048576' }] }], v, true);
    assert.equal(r.topics[0].errorCode, E.NONE);
    if (v >= 5) {
      assert.equal(r.topics[0].numPartitions, 4);
      assert.equal(r.topics[0].configs.find((e: any) => e.name === 'segment.bytes').value, '1048576');
    }
    if (v >= 7) assert.equal(r.topics[0].topicId, ZERO_UUID);
    assert.equal((await metadata(`ct-validate-${v}`)).errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  }
  const bad = await createTopics([{ name: 'ct-validate-bad', configs: [{ name: 'retention.ms', value: 'soon' }] }], 7, true);
  assert.equal(bad.topics[0].errorCode, E.INVALID_CONFIG);
});

test('CreateTopics answers Kafka errors per topic, with messages', T, async () => {
  await createTopic({ name: 'ct-exists' });
  await createTopic({ name: 'ct.collide' });
  const r = await createTopics([
    { name: 'bad name!' },
    { name: 'ct-exists' },
    { name: 'ct_collide' },
    { name: 'ct-zero-parts', numPartitions: 0 },
    { name: 'ct-rf0', replicationFactor: 0 },
    { name: 'ct-rf2', replicationFactor: 2 },
    { name: 'ct-unknown-broker', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [7] }] },
    { name: 'ct-gap', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }, { partitionIndex: 2, brokerIds: [1] }] },
    { name: 'ct-twice-broker', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1, 1] }] },
    { name: 'ct-both', numPartitions: 2, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }] },
    { name: 'ct-unknown-config', configs: [{ name: 'no.such.config', value: '1' }] },
    { name: 'ct-bad-value', configs: [{ name: 'cleanup.policy', value: 'shred' }] },
    { name: 'ct-dup' },
    { name: 'ct-dup' },
  ]);
  const got = new Map<string, any>(r.topics.map((t: any) => [t.name, t]));
  const expect: Array<[string, number]> = [
    ['bad name!', E.INVALID_TOPIC_EXCEPTION],
    ['ct-exists', E.TOPIC_ALREADY_EXISTS],
    ['ct_collide', E.INVALID_TOPIC_EXCEPTION],
    ['ct-zero-parts', E.INVALID_PARTITIONS],
    ['ct-rf0', E.INVALID_REPLICATION_FACTOR],
    ['ct-rf2', E.INVALID_REPLICATION_FACTOR],
    ['ct-unknown-broker', E.INVALID_REPLICA_ASSIGNMENT],
    ['ct-gap', E.INVALID_REPLICA_ASSIGNMENT],
    ['ct-twice-broker', E.INVALID_REPLICA_ASSIGNMENT],
    ['ct-both', E.INVALID_REQUEST],
    ['ct-unknown-config', E.INVALID_CONFIG],
    ['ct-bad-value', E.INVALID_CONFIG],
    ['ct-dup', E.INVALID_REQUEST],
  ];
  assert.equal(r.topics.length, expect.length, 'a duplicated name is answered once');
  for (const [name, code] of expect) {
    const t = got.get(name);
    assert.ok(t, `no answer for ${name}`);
    assert.equal(t.errorCode, code, `${name}: ${t.errorMessage}`);
    assert.ok(typeof t.errorMessage === 'string' && t.errorMessage.length > 0, `${name} has a message`);
    assert.equal(t.numPartitions, -1);
    assert.equal(t.replicationFactor, -1);
    assert.deepEqual(t.configs, []);
    assert.equal(t.topicId, ZERO_UUID);
  }
  assert.match(got.get('ct-unknown-config').errorMessage, /no\.such\.config/);
  assert.match(got.get('ct-rf2').errorMessage, /only 1 broker/);
  for (const [name] of expect) if (name !== 'ct-exists') assert.notEqual((await metadata(name)).errorCode, E.NONE, `${name} was not created`);
  // Two names that collide within one request: the first is created, the second refused.
  const pair = await createTopics([{ name: 'ct-x.y' }, { name: 'ct-x_y' }]);
  assert.deepEqual(pair.topics.map((t: any) => [t.name, t.errorCode]), [['ct-x.y', E.NONE], ['ct-x_y', E.INVALID_TOPIC_EXCEPTION]]);
  // v0 has no message field; the code is still right.
  const v0 = await createTopics([{ name: 'ct-exists' }], 0);
  assert.equal(v0.topics[0].errorCode, E.TOPIC_ALREADY_EXISTS);
});

test('CreateTopics allows internal names such as __transaction_state', T, async () => {
  // (__consumer_offsets itself is created by the group coordinator at startup.)
  const t = await createTopic({ name: '__transaction_state', numPartitions: 1, configs: [{ name: 'cleanup.policy', value: 'compact' }] });
  assert.notEqual(t.topicId, ZERO_UUID);
  const md = await metadata('__transaction_state');
  assert.equal(md.isInternal, true);
  assert.equal((await metadata('__consumer_offsets')).isInternal, true);
});

test('DescribeConfigs v4 shows sources, synonyms, types and documentation', T, async () => {
  await createTopic({ name: 'dc-a', configs: [{ name: 'segment.bytes', value: '2097152' }] });
  const cfg = await topicConfigs('dc-a');
  const seg = cfg.get('segment.bytes');
  assert.equal(seg.value, '2097152');
  assert.equal(seg.configSource, SOURCE.DYNAMIC_TOPIC_CONFIG);
  assert.equal(seg.readOnly, false);
  assert.equal(seg.isSensitive, false);
  assert.equal(seg.configType, 3); // int
  assert.ok(seg.documentation && seg.documentation.length > 0);
  assert.deepEqual(seg.synonyms.map((s: any) => [s.name, s.value, s.source]), [
    ['segment.bytes', '2097152', SOURCE.DYNAMIC_TOPIC_CONFIG],
    ['log.segment.bytes', '1073741824', SOURCE.DEFAULT_CONFIG],
  ]);
  // log.retention.hours=100 on the broker: retention.ms comes from it, scaled to ms.
  const ret = cfg.get('retention.ms');
  assert.equal(ret.value, String(100 * 3600000));
  assert.equal(ret.configSource, SOURCE.STATIC_BROKER_CONFIG);
  assert.equal(ret.configType, 5); // long
  assert.deepEqual(ret.synonyms.map((s: any) => [s.name, s.value, s.source]), [
    ['log.retention.hours', '100', SOURCE.STATIC_BROKER_CONFIG],
    ['log.retention.ms', String(7 * 86400000), SOURCE.DEFAULT_CONFIG],
  ]);
  const cleanup = cfg.get('cleanup.policy');
  assert.equal(cleanup.value, 'delete');
  assert.equal(cleanup.configSource, SOURCE.DEFAULT_CONFIG);
  assert.equal(cleanup.configType, 7); // list

  // Selected keys only; no synonyms or documentation unless asked.
  const some = await describeConfigs([{ resourceType: TOPIC, resourceName: 'dc-a', configurationKeys: ['segment.bytes', 'no.such.key'] }], 4, { includeSynonyms: false, includeDocumentation: false });
  assert.deepEqual(some.results[0].configs.map((e: any) => e.name), ['segment.bytes']);
  assert.deepEqual(some.results[0].configs[0].synonyms, []);
  assert.equal(some.results[0].configs[0].documentation, null);
});

test('DescribeConfigs v0 and v1 answer in their own shapes', T, async () => {
  await createTopic({ name: 'dc-v0', configs: [{ name: 'max.message.bytes', value: '5000' }] });
  const v0 = await describeConfigs([{ resourceType: TOPIC, resourceName: 'dc-v0' }], 0, { includeSynonyms: false, includeDocumentation: false });
  const e0 = new Map<string, any>(v0.results[0].configs.map((e: any) => [e.name, e]));
  assert.equal(e0.get('max.message.bytes').value, '5000');
  assert.equal(e0.get('max.message.bytes').isDefault, false);
  assert.equal(e0.get('cleanup.policy').isDefault, true);
  assert.equal(e0.get('retention.ms').isDefault, false); // the broker sets log.retention.hours
  const v1 = await describeConfigs([{ resourceType: TOPIC, resourceName: 'dc-v0', configurationKeys: ['max.message.bytes'] }], 1, { includeSynonyms: true, includeDocumentation: false });
  const e1 = v1.results[0].configs[0];
  assert.equal(e1.configSource, SOURCE.DYNAMIC_TOPIC_CONFIG);
  assert.deepEqual(e1.synonyms.map((s: any) => s.name), ['max.message.bytes', 'message.max.bytes']);
});

test('DescribeConfigs: broker resources, unknown topics and resource types', T, async () => {
  const r = await describeConfigs([
    { resourceType: BROKER, resourceName: '1' },
    { resourceType: BROKER, resourceName: '' },
    { resourceType: BROKER, resourceName: '99' },
    { resourceType: BROKER, resourceName: 'one' },
    { resourceType: TOPIC, resourceName: 'dc-nope' },
    { resourceType: TOPIC, resourceName: 'bad/name' },
    { resourceType: 8, resourceName: '1' },
  ]);
  const [b1, bDefault, b99, bName, unknownTopic, badTopic, logger] = r.results;
  assert.equal(b1.errorCode, E.NONE);
  const bc = new Map<string, any>(b1.configs.map((e: any) => [e.name, e]));
  assert.equal(bc.get('num.partitions').value, '2');
  assert.equal(bc.get('num.partitions').configSource, SOURCE.STATIC_BROKER_CONFIG);
  assert.deepEqual(bc.get('num.partitions').synonyms.map((s: any) => [s.value, s.source]), [['2', SOURCE.STATIC_BROKER_CONFIG], ['1', SOURCE.DEFAULT_CONFIG]]);
  assert.equal(bc.get('delete.topic.enable').value, 'true');
  assert.equal(bc.get('delete.topic.enable').configSource, SOURCE.DEFAULT_CONFIG);
  assert.equal(bc.get('node.id').readOnly, true);
  assert.equal(bc.get('log.retention.hours').value, '100');
  assert.equal(bDefault.errorCode, E.NONE);
  assert.deepEqual(bDefault.configs, []);
  assert.equal(b99.errorCode, E.INVALID_REQUEST);
  assert.match(b99.errorMessage, /Unexpected broker id/);
  assert.equal(bName.errorCode, E.INVALID_REQUEST);
  assert.equal(unknownTopic.errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  assert.deepEqual(unknownTopic.configs, []);
  assert.equal(badTopic.errorCode, E.INVALID_TOPIC_EXCEPTION);
  assert.equal(logger.errorCode, E.INVALID_REQUEST);
});

test('AlterConfigs replaces the override set, validates, and applies to the live partition', T, async () => {
  await createTopic({ name: 'ac-a', configs: [{ name: 'cleanup.policy', value: 'compact,delete' }] });
  // Live effect: max.message.bytes=200 refuses a larger batch.
  let r = await alterConfigs([{ resourceType: TOPIC, resourceName: 'ac-a', configs: [{ name: 'max.message.bytes', value: '200' }, { name: 'retention.ms', value: '60000' }] }]);
  assert.equal(r.responses[0].errorCode, E.NONE, r.responses[0].errorMessage);
  let cfg = await topicConfigs('ac-a');
  assert.equal(cfg.get('max.message.bytes').value, '200');
  assert.equal(cfg.get('retention.ms').value, '60000');
  assert.equal(cfg.get('retention.ms').configSource, SOURCE.DYNAMIC_TOPIC_CONFIG);
  assert.equal(cfg.get('cleanup.policy').value, 'delete', 'an override not listed is removed');
  assert.equal(cfg.get('cleanup.policy').configSource, SOURCE.DEFAULT_CONFIG);
  const big = await produce('ac-a', 0, ['x'.repeat(500)]);
  assert.equal(big.errorCode, E.MESSAGE_TOO_LARGE);
  assert.equal((await produce('ac-a', 0, ['small'])).errorCode, E.NONE);

  // validate_only changes nothing; a bad value changes nothing.
  r = await alterConfigs([{ resourceType: TOPIC, resourceName: 'ac-a', configs: [] }], 1, true);
  assert.equal(r.responses[0].errorCode, E.NONE);
  r = await alterConfigs([{ resourceType: TOPIC, resourceName: 'ac-a', configs: [{ name: 'retention.ms', value: 'forever' }] }], 0);
  assert.equal(r.responses[0].errorCode, E.INVALID_CONFIG);
  assert.match(r.responses[0].errorMessage, /retention\.ms/);
  r = await alterConfigs([{ resourceType: TOPIC, resourceName: 'ac-a', configs: [{ name: 'retention.mss', value: '1' }] }]);
  assert.equal(r.responses[0].errorCode, E.INVALID_CONFIG);
  cfg = await topicConfigs('ac-a');
  assert.equal(cfg.get('max.message.bytes').value, '200');
  assert.equal(cfg.get('retention.ms').value, '60000');

  // Clearing the set restores the defaults, and the live partition takes the big batch again.
  r = await alterConfigs([{ resourceType: TOPIC, resourceName: 'ac-a', configs: [] }]);
  assert.equal(r.responses[0].errorCode, E.NONE);
  cfg = await topicConfigs('ac-a');
  assert.equal(cfg.get('max.message.bytes').configSource, SOURCE.DEFAULT_CONFIG);
  assert.equal((await produce('ac-a', 0, ['x'.repeat(500)])).errorCode, E.NONE);

  // Other resources.
  r = await alterConfigs([
    { resourceType: TOPIC, resourceName: 'ac-nope', configs: [] },
    { resourceType: BROKER, resourceName: '1', configs: [{ name: 'num.partitions', value: '3' }] },
    { resourceType: BROKER, resourceName: '7', configs: [{ name: 'num.partitions', value: '3' }] },
    { resourceType: 8, resourceName: '1', configs: [] },
    { resourceType: TOPIC, resourceName: 'ac-a', configs: [] },
    { resourceType: TOPIC, resourceName: 'ac-a', configs: [] },
  ]);
  assert.deepEqual(r.responses.map((x: any) => [x.resourceType, x.resourceName, x.errorCode]), [
    [TOPIC, 'ac-nope', E.UNKNOWN_TOPIC_OR_PARTITION],
    [BROKER, '1', E.INVALID_REQUEST],
    [BROKER, '7', E.INVALID_REQUEST],
    [8, '1', E.INVALID_REQUEST],
    [TOPIC, 'ac-a', E.INVALID_REQUEST],
  ]);
  assert.match(r.responses[1].errorMessage, /server\.properties/);
});

test('IncrementalAlterConfigs: SET, DELETE, APPEND, SUBTRACT and their errors', T, async () => {
  await createTopic({ name: 'iac-a', configs: [{ name: 'segment.ms', value: '3600000' }] });
  let r = await incrementalAlter('iac-a', [
    { name: 'retention.ms', configOperation: 0, value: '1000' },
    { name: 'cleanup.policy', configOperation: 2, value: 'compact' },
  ]);
  assert.equal(r.responses[0].errorCode, E.NONE, r.responses[0].errorMessage);
  let cfg = await topicConfigs('iac-a');
  assert.equal(cfg.get('retention.ms').value, '1000');
  assert.equal(cfg.get('cleanup.policy').value, 'delete,compact');
  assert.equal(cfg.get('segment.ms').value, '3600000', 'untouched overrides stay');

  r = await incrementalAlter('iac-a', [
    { name: 'cleanup.policy', configOperation: 3, value: 'delete' },
    { name: 'retention.ms', configOperation: 1, value: null },
  ]);
  assert.equal(r.responses[0].errorCode, E.NONE);
  cfg = await topicConfigs('iac-a');
  assert.equal(cfg.get('cleanup.policy').value, 'compact');
  assert.equal(cfg.get('retention.ms').configSource, SOURCE.STATIC_BROKER_CONFIG);

  // Errors leave everything as it was.
  const errors: Array<[string, any[], number]> = [
    ['append to a non-list', [{ name: 'retention.ms', configOperation: 2, value: '5' }], E.INVALID_CONFIG],
    ['bad value', [{ name: 'segment.ms', configOperation: 0, value: '-5' }], E.INVALID_CONFIG],
    ['unknown name', [{ name: 'segment.mss', configOperation: 0, value: '5' }], E.INVALID_CONFIG],
    ['duplicate key', [{ name: 'segment.ms', configOperation: 0, value: '5' }, { name: 'segment.ms', configOperation: 1, value: null }], E.INVALID_REQUEST],
    ['unknown op', [{ name: 'segment.ms', configOperation: 9, value: '5' }], E.INVALID_REQUEST],
  ];
  for (const [what, ops, code] of errors) {
    r = await incrementalAlter('iac-a', ops);
    assert.equal(r.responses[0].errorCode, code, `${what}: ${r.responses[0].errorMessage}`);
  }
  r = await incrementalAlter('iac-a', [{ name: 'segment.ms', configOperation: 1, value: null }], true);
  assert.equal(r.responses[0].errorCode, E.NONE);
  cfg = await topicConfigs('iac-a');
  assert.equal(cfg.get('segment.ms').value, '3600000');
  assert.equal(cfg.get('cleanup.policy').value, 'compact');

  assert.equal((await incrementalAlter('iac-nope', [])).responses[0].errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal((await incrementalAlter('1', [{ name: 'num.partitions', configOperation: 0, value: '4' }], false, BROKER)).responses[0].errorCode, E.INVALID_REQUEST);
});

test('CreatePartitions adds partitions that can be produced to and fetched from', T, async () => {
  await createTopic({ name: 'cp-a', numPartitions: 1 });
  let r = await c.send(ApiKey.CreatePartitions, 3, { topics: [{ name: 'cp-a', count: 3, assignments: null }], timeoutMs: 5000, validateOnly: false });
  assert.deepEqual(r.results, [{ name: 'cp-a', errorCode: E.NONE, errorMessage: null }]);
  let md = await metadata('cp-a');
  assert.deepEqual(md.partitions.map((p: any) => [p.partitionIndex, p.leaderId]), [[0, 1], [1, 1], [2, 1]]);
  assert.equal((await produce('cp-a', 2, ['in-new-partition'])).errorCode, E.NONE);
  assert.deepEqual((await fetch('cp-a', 2, 0)).values, ['in-new-partition']);

  // With assignments (v0), then the errors.
  r = await c.send(ApiKey.CreatePartitions, 0, { topics: [{ name: 'cp-a', count: 4, assignments: [{ brokerIds: [1] }] }], timeoutMs: 5000, validateOnly: false });
  assert.equal(r.results[0].errorCode, E.NONE);
  assert.equal((await metadata('cp-a')).partitions.length, 4);
  r = await c.send(ApiKey.CreatePartitions, 1, {
    topics: [
      { name: 'cp-a', count: 2, assignments: null },
      { name: 'cp-nope', count: 2, assignments: null },
    ],
    timeoutMs: 5000,
    validateOnly: false,
  });
  assert.equal(r.results[0].errorCode, E.INVALID_PARTITIONS);
  assert.equal(r.results[0].errorMessage, 'The topic cp-a currently has 4 partition(s); 2 would not be an increase.');
  assert.equal(r.results[1].errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  r = await c.send(ApiKey.CreatePartitions, 2, { topics: [{ name: 'cp-a', count: 4, assignments: null }], timeoutMs: 5000, validateOnly: false });
  assert.equal(r.results[0].errorCode, E.INVALID_PARTITIONS);
  assert.equal(r.results[0].errorMessage, 'Topic already has 4 partition(s).');
  for (const assignments of [[{ brokerIds: [1] }], [{ brokerIds: [9] }, { brokerIds: [1] }], [{ brokerIds: [] }, { brokerIds: [1] }], [{ brokerIds: [1, 1] }, { brokerIds: [1] }]]) {
    r = await c.send(ApiKey.CreatePartitions, 3, { topics: [{ name: 'cp-a', count: 6, assignments }], timeoutMs: 5000, validateOnly: false });
    assert.equal(r.results[0].errorCode, E.INVALID_REPLICA_ASSIGNMENT, JSON.stringify(assignments));
    assert.ok(r.results[0].errorMessage);
  }
  // validate_only answers success and changes nothing.
  r = await c.send(ApiKey.CreatePartitions, 3, { topics: [{ name: 'cp-a', count: 10, assignments: null }], timeoutMs: 5000, validateOnly: true });
  assert.equal(r.results[0].errorCode, E.NONE);
  md = await metadata('cp-a');
  assert.equal(md.partitions.length, 4);
  // The new partitions' old data is still there.
  assert.deepEqual((await fetch('cp-a', 2, 0)).values, ['in-new-partition']);
});

test('DeleteTopics deletes; re-creating the name gives a new id and an empty log', T, async () => {
  const first = await createTopic({ name: 'dt-a', numPartitions: 2 });
  assert.equal((await produce('dt-a', 0, ['old-1', 'old-2'])).errorCode, E.NONE);
  assert.equal((await produce('dt-a', 1, ['old-3'])).errorCode, E.NONE);
  assert.ok(existsSync(join(broker.dataDir, 'dt-a-0')));
  let r = await c.send(ApiKey.DeleteTopics, 1, { topicNames: ['dt-a', 'dt-nope'], topics: [], timeoutMs: 5000 });
  const byName = new Map<string, any>(r.responses.map((x: any) => [x.name, x]));
  assert.equal(byName.get('dt-a').errorCode, E.NONE);
  assert.equal(byName.get('dt-nope').errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal((await metadata('dt-a')).errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(existsSync(join(broker.dataDir, 'dt-a-0')), false, 'the partition directory is gone');
  assert.equal((await produce('dt-a', 0, ['late'])).errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);

  const second = await createTopic({ name: 'dt-a', numPartitions: 2 });
  assert.notEqual(second.topicId, first.topicId);
  for (const p of [0, 1]) {
    const f = await fetch('dt-a', p, 0);
    assert.equal(f.p.errorCode, E.NONE);
    assert.equal(f.p.highWatermark, 0);
    assert.deepEqual(f.values, []);
    assert.equal((await listOffset('dt-a', p, -1)).offset, 0);
  }
  assert.equal((await produce('dt-a', 0, ['new-1'])).baseOffset, 0);
  assert.deepEqual((await fetch('dt-a', 0, 0)).values, ['new-1']);

  // v6 by id: unknown id, both name and id, and the real id.
  r = await c.send(ApiKey.DeleteTopics, 6, {
    topics: [
      { name: null, topicId: first.topicId },
      { name: 'dt-a', topicId: second.topicId },
      { name: null, topicId: second.topicId },
    ],
    topicNames: [],
    timeoutMs: 5000,
  });
  assert.deepEqual(r.responses.map((x: any) => [x.name, x.topicId, x.errorCode]), [
    [null, first.topicId, E.UNKNOWN_TOPIC_ID],
    ['dt-a', second.topicId, E.INVALID_REQUEST],
    ['dt-a', second.topicId, E.NONE],
  ]);
  assert.equal((await metadata('dt-a')).errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
});

test('DeleteRecords moves the log start offset; below it is out of range', T, async () => {
  await createTopic({ name: 'dr-a', numPartitions: 1 });
  for (let i = 0; i < 5; i++) assert.equal((await produce('dr-a', 0, [`r${i}`])).baseOffset, i);
  const del = (partitions: Array<{ partitionIndex: number; offset: number }>, version = 2, name = 'dr-a'): Promise<any> =>
    c.send(ApiKey.DeleteRecords, version, { topics: [{ name, partitions }], timeoutMs: 5000 });
  let r = await del([{ partitionIndex: 0, offset: 3 }]);
  assert.deepEqual(r.topics[0].partitions, [{ partitionIndex: 0, lowWatermark: 3, errorCode: E.NONE }]);
  assert.equal((await listOffset('dr-a', 0, -2)).offset, 3);
  assert.equal((await fetch('dr-a', 0, 0)).p.errorCode, E.OFFSET_OUT_OF_RANGE);
  const f = await fetch('dr-a', 0, 3);
  assert.equal(f.p.errorCode, E.NONE);
  assert.equal(f.p.logStartOffset, 3);
  assert.deepEqual(f.values, ['r3', 'r4']);

  r = await del([
    { partitionIndex: 0, offset: 6 },
    { partitionIndex: 0, offset: -5 },
    { partitionIndex: 7, offset: 0 },
  ], 0);
  assert.deepEqual(r.topics[0].partitions.map((p: any) => [p.partitionIndex, p.errorCode, p.lowWatermark]), [
    [0, E.OFFSET_OUT_OF_RANGE, -1],
    [0, E.OFFSET_OUT_OF_RANGE, -1],
    [7, E.UNKNOWN_TOPIC_OR_PARTITION, -1],
  ]);
  // An offset below the start changes nothing; -1 means the high watermark.
  r = await del([{ partitionIndex: 0, offset: 1 }], 1);
  assert.equal(r.topics[0].partitions[0].lowWatermark, 3);
  r = await del([{ partitionIndex: 0, offset: -1 }]);
  assert.deepEqual(r.topics[0].partitions[0], { partitionIndex: 0, lowWatermark: 5, errorCode: E.NONE });
  assert.equal((await listOffset('dr-a', 0, -2)).offset, 5);
  assert.deepEqual((await fetch('dr-a', 0, 5)).values, []);
  assert.equal((await produce('dr-a', 0, ['r5'])).baseOffset, 5);
  assert.deepEqual((await fetch('dr-a', 0, 5)).values, ['r5']);

  assert.equal((await del([{ partitionIndex: 0, offset: 0 }], 2, 'dr-nope')).topics[0].partitions[0].errorCode, E.UNKNOWN_TOPIC_OR_PARTITION);
  await createTopic({ name: 'dr-compact', configs: [{ name: 'cleanup.policy', value: 'compact' }] });
  assert.equal((await del([{ partitionIndex: 0, offset: 0 }], 2, 'dr-compact')).topics[0].partitions[0].errorCode, E.POLICY_VIOLATION);
});

test('DescribeCluster v0 and v1', T, async () => {
  const md = await c.send(ApiKey.Metadata, 12, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
  for (const v of [0, 1]) {
    const r = await c.send(ApiKey.DescribeCluster, v, { includeClusterAuthorizedOperations: false, endpointType: 1 });
    assert.equal(r.errorCode, E.NONE);
    assert.equal(r.clusterId, md.clusterId);
    assert.equal(r.controllerId, 1);
    assert.deepEqual(r.brokers, [{ brokerId: 1, host: '127.0.0.1', port: broker.port, rack: null }]);
    assert.equal(r.clusterAuthorizedOperations, -2147483648);
    if (v === 1) assert.equal(r.endpointType, 1);
  }
  const ops = await c.send(ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: true, endpointType: 1 });
  assert.ok(ops.clusterAuthorizedOperations > 0 && (ops.clusterAuthorizedOperations & (1 << 8)) !== 0, 'DESCRIBE is allowed');
  const controllers = await c.send(ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 2 });
  assert.equal(controllers.errorCode, E.MISMATCHED_ENDPOINT_TYPE);
  assert.deepEqual(controllers.brokers, []);
  const unknown = await c.send(ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 5 });
  assert.equal(unknown.errorCode, E.UNSUPPORTED_ENDPOINT_TYPE);
  assert.equal(unknown.errorMessage, 'Unsupported endpoint type 5');
});

test('DeleteTopics with delete.topic.enable=false answers TOPIC_DELETION_DISABLED and keeps the topic', T, async () => {
  const b = await startBroker({ overrides: { 'delete.topic.enable': 'false' } });
  const c2 = await ProtocolConnection.connect('127.0.0.1', b.port);
  try {
    const created = await c2.send(ApiKey.CreateTopics, 7, { topics: [{ name: 'keep', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    assert.equal(created.topics[0].errorCode, E.NONE);
    const v6 = await c2.send(ApiKey.DeleteTopics, 6, { topics: [{ name: 'keep', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    assert.equal(v6.responses[0].errorCode, E.TOPIC_DELETION_DISABLED);
    const v1 = await c2.send(ApiKey.DeleteTopics, 1, { topicNames: ['keep'], topics: [], timeoutMs: 5000 });
    assert.equal(v1.responses[0].errorCode, E.INVALID_REQUEST);
    const md = await c2.send(ApiKey.Metadata, 12, { topics: [{ topicId: ZERO_UUID, name: 'keep' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    assert.equal(md.topics[0].errorCode, E.NONE);
    assert.equal(md.topics[0].topicId, created.topics[0].topicId);
  } finally {
    c2.close();
    await b.stop();
    b.cleanup();
  }
});
