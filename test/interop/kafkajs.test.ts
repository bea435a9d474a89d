/**
 * KafkaJS 2.2.4 (from node_modules) against a real broker process. KafkaJS uses
 * min(its max, the broker's max) for every api and throws if an api it needs is not advertised.
 *
 * - admin: createTopics (with a config), fetchTopicMetadata, fetchTopicOffsets,
 *   fetchTopicOffsetsByTimestamp, createPartitions, describeConfigs, deleteTopics.
 * - producer: gzip with keys and headers, acks=-1; what it wrote is read back with our own Fetch
 *   and decodeRecordBatches (so the batch is proven to be gzip on the wire and on disk), and with
 *   kcat when it is installed.
 * - consumer: KafkaJS's Consumer (always in a group) reads back what the producer wrote.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, CompressionTypes, Partitioners, logLevel, type logCreator } from 'kafkajs';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { stopCleanly, fetchAll, hasTool, kcatOk, skipUnless, uniqueTopic } from './helpers.js';

let broker: BrokerProcess;
let kafka: Kafka;
const logs: string[] = [];

/** KafkaJS logs go to a buffer that failing assertions print, not to the test output. */
const bufferLogs: logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log;
  logs.push(`${logLevel[level]} [${namespace}] ${message} ${JSON.stringify(extra)}`);
};
const recentLogs = (): string => `--- kafkajs log ---\n${logs.slice(-30).join('\n')}`;

before(async () => {
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0 } });
  kafka = new Kafka({
    clientId: 'strand-interop',
    brokers: [broker.bootstrap],
    logLevel: logLevel.WARN,
    logCreator: bufferLogs,
    retry: { retries: 3, initialRetryTime: 100 },
  });
});

after(() => stopCleanly(broker));

const opts = { ...skipUnless('kafkajs'), timeout: 60000 };

test('admin: createTopics, fetchTopicMetadata, createPartitions, describeConfigs, deleteTopics', opts, async () => {
  const topic = uniqueTopic('kjs-admin');
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '777777' }] }],
      waitForLeaders: true,
    });
    assert.equal(created, true, recentLogs());
    // A second create of the same topic answers TOPIC_ALREADY_EXISTS, which KafkaJS turns into false.
    assert.equal(await admin.createTopics({ topics: [{ topic }] }), false);
    assert.ok((await admin.listTopics()).includes(topic));

    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(md.topics.length, 1);
    assert.equal(md.topics[0]!.name, topic);
    assert.deepEqual(
      md.topics[0]!.partitions.map((p) => [p.partitionId, p.leader, p.replicas, p.isr, p.partitionErrorCode]).sort(),
      [
        [0, 1, [1], [1], 0],
        [1, 1, [1], [1], 0],
      ],
    );

    const described = await admin.describeConfigs({
      resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
      includeSynonyms: false,
    });
    const res = described.resources[0]!;
    assert.equal(res.errorCode, 0);
    const entries = Object.fromEntries(res.configEntries.map((e) => [e.configName, e]));
    assert.deepEqual(Object.keys(entries).sort(), ['cleanup.policy', 'retention.ms']);
    assert.equal(entries['retention.ms']!.configValue, '777777');
    assert.equal(entries['retention.ms']!.isDefault, false);
    assert.equal(entries['cleanup.policy']!.configValue, 'delete');
    assert.equal(entries['cleanup.policy']!.isDefault, true);

    assert.equal(await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] }), undefined);
    const md2 = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.deepEqual(md2.topics[0]!.partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);

    await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    assert.ok(!(await admin.listTopics()).includes(topic), 'topic still listed after deleteTopics');
  } finally {
    await admin.disconnect();
  }
});

test('producer: gzip with keys and headers, acks=-1; stored as gzip batches with the same records; admin offsets', opts, async () => {
  const topic = uniqueTopic('kjs-gzip');
  const N = 100;
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
  await admin.connect();
  await producer.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const messages = Array.from({ length: N }, (_, i) => ({
      key: i % 10 === 9 ? null : `key-${i}`,
      value: `kafkajs-value-${i}-${'z'.repeat(30)}`,
      headers: { seq: String(i), origin: 'kafkajs' },
      partition: 0,
      timestamp: String(1700000000000 + i),
    }));
    const first = await producer.send({ topic, compression: CompressionTypes.GZIP, acks: -1, messages: messages.slice(0, 60) });
    const second = await producer.send({ topic, compression: CompressionTypes.GZIP, acks: -1, messages: messages.slice(60) });
    assert.deepEqual(first.map((r) => [r.topicName, r.partition, r.errorCode, r.baseOffset]), [[topic, 0, 0, '0']]);
    assert.deepEqual(second.map((r) => [r.topicName, r.partition, r.errorCode, r.baseOffset]), [[topic, 0, 0, '60']]);

    const { batches, records, highWatermark } = await fetchAll(broker.port, topic, 0);
    assert.equal(highWatermark, N);
    assert.deepEqual(
      batches.map((b) => [b.header.baseOffset, b.header.recordsCount, b.header.attributes & 7]),
      [
        [0, 60, 1],
        [60, 40, 1],
      ],
      'two gzip batches',
    );
    assert.deepEqual(
      records.map((r) => ({ offset: r.offset, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })),
      messages.map((m, i) => ({ offset: i, key: m.key, value: m.value, headers: [['seq', String(i)], ['origin', 'kafkajs']], timestamp: Number(m.timestamp) })),
    );

    if (hasTool('kcat')) {
      const out = await kcatOk(broker.bootstrap, ['-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o|%k|%s|%h\n']);
      assert.deepEqual(
        out.split('\n').filter((l) => l !== ''),
        messages.map((m, i) => `${i}|${m.key ?? ''}|${m.value}|seq=${i},origin=kafkajs`),
      );
    }

    const offsets = await admin.fetchTopicOffsets(topic);
    assert.deepEqual(offsets, [{ partition: 0, offset: String(N), high: String(N), low: '0' }]);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 1700000000000 + 42);
    assert.deepEqual(byTime, [{ partition: 0, offset: '42' }]);
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
});

test('consumer (group) reads what the producer wrote', opts, async () => {
  const topic = uniqueTopic('kjs-consume');
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }] });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `g-${topic}`, retry: { retries: 0, restartOnFailure: async () => false } });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no messages after 15 s\n${recentLogs()}`)), 15000);
      consumer.on(consumer.events.CRASH, (e) => {
        clearTimeout(timer);
        reject(new Error(`consumer crashed: ${e.payload.error.message}`));
      });
      consumer
        .run({
          eachMessage: async ({ message }) => {
            got.push(message.value?.toString() ?? '');
            if (got.length === 2) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((e: Error) => {
          clearTimeout(timer);
          reject(e);
        });
    });
    assert.deepEqual(got, ['a', 'b']);
  } finally {
    await consumer.disconnect().catch(() => {});
  }
});
