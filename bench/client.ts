/**
 * Client benchmark: produce and consume N records of S bytes through Strand's client and through
 * KafkaJS, each against the same Strand broker process in the same run; prints a markdown table.
 *
 *   node dist/bench/client.js [--records 1000000] [--size 100] [--clients strand,kafkajs]
 *
 * Each client gets its own topic (1 partition, so order and totals are checked simply). Producing
 * is acks=-1 with the client's batching (Strand: lingerMs 5, batchBytes 512 KiB; KafkaJS: arrays
 * of 1000 messages per send, 8 sends in flight); consuming reads from the beginning until N
 * records have been seen (Strand: assign(), no group; KafkaJS: a consumer group, which it needs).
 * The broker runs with strand.acks.all.fsync=false so the numbers are the clients', not the disk's.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Kafka } from '../src/client/kafka.js';
import { startBroker } from '../src/testing/broker-process.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '100' },
    clients: { type: 'string', default: 'strand,kafkajs' },
  },
});
const N = Number(values.records);
const SIZE = Number(values.size);
const clients = values.clients!.split(',');

interface Row {
  client: string;
  op: 'produce' | 'consume';
  ms: number;
}

const rows: Row[] = [];
const payload = Buffer.alloc(SIZE, 0x61);

async function strandProduce(bootstrap: string, topic: string): Promise<void> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'bench-strand' });
  const producer = kafka.producer({ lingerMs: 5, batchBytes: 512 * 1024, maxRequestBytes: 4 * 1024 * 1024, bufferBytes: 64 * 1024 * 1024 });
  await producer.connect();
  await producer.send({ topic, value: payload }); // metadata warm-up, not timed... counted below
  const t0 = performance.now();
  const window = 50000;
  let pending: Promise<unknown>[] = [];
  for (let i = 1; i < N; i++) {
    pending.push(producer.send({ topic, value: payload }));
    if (pending.length === window) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  rows.push({ client: 'strand', op: 'produce', ms: performance.now() - t0 });
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
  rows.push({ client: 'strand', op: 'consume', ms: performance.now() - t0 });
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
  rows.push({ client: 'kafkajs 2.2.4', op: 'produce', ms: performance.now() - t0 });
  await producer.disconnect();
}

async function kafkajsConsume(bootstrap: string, topic: string): Promise<void> {
  const { Kafka: KJS, logLevel } = createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs');
  const kafka = new KJS({ clientId: 'bench-kafkajs', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-${process.pid}`, maxBytesPerPartition: 8 * 1024 * 1024, maxBytes: 32 * 1024 * 1024, maxWaitTimeInMs: 100 });
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
  rows.push({ client: 'kafkajs 2.2.4', op: 'consume', ms: performance.now() - t0 });
  await consumer.disconnect();
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const broker = await startBroker({ overrides: { 'strand.acks.all.fsync': 'false', 'auto.create.topics.enable': 'false' } });
  try {
    const kafka = new Kafka({ brokers: [broker.bootstrap] });
    const admin = kafka.admin();
    for (const c of clients) await admin.createTopics([{ name: `bench-${c}`, partitions: 1 }]);
    await admin.close();
    for (const c of clients) {
      const topic = `bench-${c}`;
      if (c === 'strand') {
        await strandProduce(broker.bootstrap, topic);
        await strandConsume(broker.bootstrap, topic);
      } else if (c === 'kafkajs') {
        await kafkajsProduce(broker.bootstrap, topic);
        await kafkajsConsume(broker.bootstrap, topic);
      } else throw new Error(`unknown client ${c}`);
    }
  } finally {
    await broker.stop();
    broker.cleanup();
  }
  console.log(`\nClients, ${fmt(N)} records of ${SIZE} B, one partition, acks=-1 (broker fsync off), same broker process\n`);
  console.log('| client | operation | records/s | MB/s | time (s) |');
  console.log('| --- | --- | ---: | ---: | ---: |');
  for (const r of rows) {
    const rps = (N / r.ms) * 1000;
    console.log(`| ${r.client} | ${r.op} | ${fmt(rps)} | ${((rps * SIZE) / 1e6).toFixed(1)} | ${(r.ms / 1000).toFixed(2)} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
