/**
 * Client benchmark: produce and consume records through Strand's client, KafkaJS 2.2.4 and
 * @platformatic/kafka, each against the same Strand broker process in the same run; prints one
 * markdown table (records/s and MB/s, produce and consume, per client and case).
 *
 *   node dist/bench/client.js [--cases 1000000x100,100000x1024] [--clients strand,kafkajs,platformatic]
 *   node dist/bench/client.js --records 1000000 --size 100 --clients strand     (one case)
 *
 * Each client and case gets its own topic (1 partition, so order and totals are checked simply).
 * Producing is acks=-1 with each client's bulk API: Strand `sendBatch` of ~1 MiB of records (up to
 * 10,000), 16 calls in flight, lingerMs 5, batchBytes 512 KiB; KafkaJS and @platformatic/kafka
 * `send` of 1000 messages, 8 in flight. Consuming reads from the beginning until N records have
 * been seen (Strand: assign(), no group; KafkaJS: a consumer group, which it needs;
 * @platformatic/kafka: a group stream in 'earliest' mode). The broker runs with
 * strand.acks.all.fsync=false so the numbers are the clients', not the disk's, and
 * group.initial.rebalance.delay.ms=0 so the group consumers do not wait 3 s to join. Broker and
 * clients share the machine's cores.
 *
 * @platformatic/kafka declares Node >= 22.22; on Node 20 it needs `Promise.withResolvers`, which
 * this file polyfills before loading it (the only missing API, /work/shared/CLIENTS.md §0.5).
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Kafka } from '../src/client/kafka.js';
import { startBroker } from '../src/testing/broker-process.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string' },
    size: { type: 'string' },
    cases: { type: 'string', default: '1000000x100,100000x1024' },
    clients: { type: 'string', default: 'strand,kafkajs,platformatic' },
  },
});
const cases: Array<[number, number]> =
  values.records !== undefined || values.size !== undefined
    ? [[Number(values.records ?? 1000000), Number(values.size ?? 100)]]
    : values.cases!.split(',').map((c) => c.split('x').map(Number) as [number, number]);
const clients = values.clients!.split(',');

interface Row {
  client: string;
  records: number;
  size: number;
  op: 'produce' | 'consume';
  ms: number;
}

const rows: Row[] = [];
// The case being run (module state keeps the per-client functions short).
let N = 0;
let SIZE = 0;
let payload = Buffer.alloc(0);

async function strandProduce(bootstrap: string, topic: string): Promise<void> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'bench-strand' });
  const producer = kafka.producer({ lingerMs: 5, batchBytes: 512 * 1024, maxRequestBytes: 4 * 1024 * 1024, bufferBytes: 64 * 1024 * 1024 });
  await producer.connect();
  await producer.send({ topic, value: payload }); // metadata warm-up, not timed; counted in N
  const per = Math.max(1, Math.min(10000, Math.floor((1024 * 1024) / SIZE)));
  const records = Array.from({ length: per }, () => ({ topic, value: payload }));
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let sent = 1; sent < N; ) {
    const count = Math.min(per, N - sent);
    pending.push(producer.sendBatch(count === per ? records : records.slice(0, count)));
    sent += count;
    if (pending.length >= 16) await pending.shift();
  }
  await Promise.all(pending);
  rows.push({ client: 'strand', records: N, size: SIZE, op: 'produce', ms: performance.now() - t0 });
  await producer.close();
}

async function strandConsume(bootstrap: string, topic: string): Promise<void> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'bench-strand' });
  const consumer = kafka.consumer({ maxPartitionBytes: 8 * 1024 * 1024, maxBytes: 32 * 1024 * 1024, maxWaitMs: 100 });
  consumer.assign([{ topic, partition: 0, offset: 0 }]);
  let seen = 0;
  let bytes = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const t0 = performance.now();
  await consumer.run({
    eachBatch: ({ batch }) => {
      for (const m of batch.messages) bytes += m.value?.length ?? 0;
      seen += batch.messages.length;
      if (seen >= N) resolve();
    },
  });
  await done;
  rows.push({ client: 'strand', records: N, size: SIZE, op: 'consume', ms: performance.now() - t0 });
  if (bytes !== N * SIZE) throw new Error(`strand consumed ${bytes} bytes, expected ${N * SIZE}`);
  await consumer.close();
}

async function kafkajsProduce(bootstrap: string, topic: string): Promise<void> {
  const { Kafka: KJS, logLevel } = createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs');
  const kafka = new KJS({ clientId: 'bench-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  const per = 1000;
  const messages = Array.from({ length: per }, () => ({ value: payload }));
  const t0 = performance.now();
  let sent = 0;
  const inFlight = new Set<Promise<unknown>>();
  while (sent < N) {
    const count = Math.min(per, N - sent);
    const p = producer.send({ topic, acks: -1, messages: count === per ? messages : messages.slice(0, count) });
    sent += count;
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  rows.push({ client: 'kafkajs 2.2.4', records: N, size: SIZE, op: 'produce', ms: performance.now() - t0 });
  await producer.disconnect();
}

async function kafkajsConsume(bootstrap: string, topic: string): Promise<void> {
  const { Kafka: KJS, logLevel } = createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs');
  const kafka = new KJS({ clientId: 'bench-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-${process.pid}-${topic}`, maxBytesPerPartition: 8 * 1024 * 1024, maxBytes: 32 * 1024 * 1024, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const t0 = performance.now();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      seen += batch.messages.length;
      if (seen >= N) resolve();
    },
  });
  await done;
  rows.push({ client: 'kafkajs 2.2.4', records: N, size: SIZE, op: 'consume', ms: performance.now() - t0 });
  await consumer.disconnect();
}

// -------------------------------------------------------------------------- @platformatic/kafka

type Platformatic = typeof import('@platformatic/kafka');
let platformaticModule: Platformatic | null = null;
let platformaticVersion = '';

async function loadPlatformatic(): Promise<Platformatic> {
  if (platformaticModule) return platformaticModule;
  const P = Promise as unknown as { withResolvers?: () => unknown };
  P.withResolvers ??= function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
  platformaticModule = await import('@platformatic/kafka');
  const entry = createRequire(import.meta.url).resolve('@platformatic/kafka');
  platformaticVersion = (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version;
  return platformaticModule;
}

async function platformaticProduce(bootstrap: string, topic: string): Promise<void> {
  const { Producer, ProduceAcks } = await loadPlatformatic();
  const producer = new Producer({ clientId: 'bench-platformatic', bootstrapBrokers: [bootstrap], acks: ProduceAcks.ALL, idempotent: false });
  const per = 1000;
  const messages = Array.from({ length: per }, () => ({ topic, value: payload }));
  await producer.send({ messages: [{ topic, value: payload }] }); // metadata warm-up, not timed
  const t0 = performance.now();
  let sent = 1;
  const inFlight = new Set<Promise<unknown>>();
  while (sent < N) {
    const count = Math.min(per, N - sent);
    const p = producer.send({ messages: count === per ? messages : messages.slice(0, count) });
    sent += count;
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  rows.push({ client: `@platformatic/kafka ${platformaticVersion}`, records: N, size: SIZE, op: 'produce', ms: performance.now() - t0 });
  await producer.close();
}

async function platformaticConsume(bootstrap: string, topic: string): Promise<void> {
  const { Consumer, MessagesStreamModes } = await loadPlatformatic();
  const consumer = new Consumer({ clientId: 'bench-platformatic', groupId: `bench-${process.pid}-${topic}`, bootstrapBrokers: [bootstrap] });
  let seen = 0;
  let bytes = 0;
  const t0 = performance.now();
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false, maxBytes: 32 * 1024 * 1024, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTime: 100 });
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (m: { value: Buffer | null }) => {
      bytes += m.value?.length ?? 0;
      if (++seen >= N) resolve();
    });
    stream.on('error', reject);
  });
  rows.push({ client: `@platformatic/kafka ${platformaticVersion}`, records: N, size: SIZE, op: 'consume', ms: performance.now() - t0 });
  if (bytes < N * SIZE) throw new Error(`@platformatic/kafka consumed ${bytes} bytes, expected ${N * SIZE}`);
  await stream.close();
  await consumer.close(true);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  // No initial rebalance delay: the group consumers' numbers would otherwise include 3 s of waiting.
  const broker = await startBroker({ overrides: { 'strand.acks.all.fsync': 'false', 'auto.create.topics.enable': 'false', 'group.initial.rebalance.delay.ms': '0' } });
  try {
    const kafka = new Kafka({ brokers: [broker.bootstrap] });
    const admin = kafka.admin();
    for (const [n, size] of cases) for (const c of clients) await admin.createTopics([{ name: `bench-${c}-${n}x${size}`, partitions: 1 }]);
    await admin.close();
    for (const [n, size] of cases) {
      N = n;
      SIZE = size;
      payload = Buffer.alloc(SIZE, 0x61);
      for (const c of clients) {
        const topic = `bench-${c}-${n}x${size}`;
        if (c === 'strand') {
          await strandProduce(broker.bootstrap, topic);
          await strandConsume(broker.bootstrap, topic);
        } else if (c === 'kafkajs') {
          await kafkajsProduce(broker.bootstrap, topic);
          await kafkajsConsume(broker.bootstrap, topic);
        } else if (c === 'platformatic') {
          await platformaticProduce(broker.bootstrap, topic);
          await platformaticConsume(broker.bootstrap, topic);
        } else throw new Error(`unknown client ${c}`);
      }
    }
  } finally {
    await broker.stop();
    broker.cleanup();
  }
  console.log(`\nClients, one partition, acks=-1 (broker fsync off), same broker process, Node ${process.version}, ${availableParallelism()} cores shared by broker and client\n`);
  console.log('| records × size | client | produce records/s | produce MB/s | consume records/s | consume MB/s |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  const seenKeys = new Set<string>();
  for (const r of rows) {
    const k = `${r.records}x${r.size}|${r.client}`;
    if (seenKeys.has(k)) continue;
    seenKeys.add(k);
    const cells = (op: 'produce' | 'consume'): string => {
      const row = rows.find((x) => x.records === r.records && x.size === r.size && x.client === r.client && x.op === op);
      if (row === undefined) return '— | —';
      const rps = (row.records / row.ms) * 1000;
      return `${fmt(rps)} | ${((rps * row.size) / 1e6).toFixed(1)}`;
    };
    console.log(`| ${fmt(r.records)} × ${r.size} B | ${r.client} | ${cells('produce')} | ${cells('consume')} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
