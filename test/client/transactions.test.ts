/**
 * Strand's transactional producer and read_committed consumer against an in-process broker:
 * commit, abort, commit again (read_committed sees exactly the committed records in order,
 * read_uncommitted all), offsets sent in a transaction visible only after its commit, fencing by
 * a second producer with the same transactional id, abortable errors, the state rules, and the
 * exactly-once loop (runExactlyOnce) with a failing batch retried in a new transaction.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { Kafka } from '../../src/client/kafka.js';
import type { Consumer } from '../../src/client/consumer.js';
import { StrandError } from '../../src/client/errors.js';
import { runExactlyOnce } from '../../src/client/exactly-once.js';
import { stringSerde } from '../../src/client/serializers.js';
import * as m from '../../src/protocol/messages/index.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { eventually, uniqueName } from './helpers.js';

let broker: StrandTestBroker;
let kafka: Kafka;

before(async () => {
  broker = await startStrand({ config: { 'transaction.state.log.num.partitions': 3, 'transaction.abort.timed.out.transaction.cleanup.interval.ms': 100 } });
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'txn-test' });
});
after(async () => {
  await broker?.stop();
});

/**
 * Records of a topic's partitions from offset 0 as "partition:value", read with `isolationLevel`
 * until `expected` have arrived, plus a short while to catch any extra.
 */
async function readAll(topic: string, partitions: number, isolationLevel: 'read_committed' | 'read_uncommitted', expected: number): Promise<string[]> {
  const c = kafka.consumer<Buffer | null, string | null>({ valueDeserializer: stringSerde, isolationLevel, maxWaitMs: 50 });
  c.assign(Array.from({ length: partitions }, (_, p) => ({ topic, partition: p, offset: 0 })));
  const out: string[] = [];
  await c.run({
    eachBatch: ({ batch }) => {
      for (const m of batch.messages) out.push(`${m.partition}:${m.value}`);
    },
  });
  try {
    await eventually(`${expected} records of ${topic} (${isolationLevel})`, () => (out.length >= expected ? true : undefined), 20000, 20);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await c.close();
  }
  return out;
}

/** ListOffsets latest of partition 0: the high watermark (isolation 0) or the last stable offset (1). */
async function latest(topic: string, isolationLevel: 0 | 1): Promise<number> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, 2, {
      replicaId: -1,
      isolationLevel,
      timeoutMs: 0,
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }],
    });
    return r.topics[0]!.partitions[0]!.offset;
  } finally {
    c.close();
  }
}

/** Values per partition in offset order. */
function byPartition(records: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of records) {
    const [p, v] = [r.slice(0, r.indexOf(':')), r.slice(r.indexOf(':') + 1)];
    m.set(p, [...(m.get(p) ?? []), v]);
  }
  return m;
}

test('commit, abort, commit: read_committed sees exactly the committed records in order, read_uncommitted all of them', { timeout: 60000 }, async () => {
  const topic = uniqueName('txn');
  await broker.createTopics([{ name: topic, partitions: 2 }]);
  const producer = kafka.producer<string, string>({ transactionalId: uniqueName('tid'), keySerializer: stringSerde, valueSerializer: stringSerde });
  await producer.initTransactions();
  assert.equal(producer.idempotent, true);
  for (const [round, commit] of [[0, true], [1, false], [2, true]] as const) {
    const txn = await producer.transaction();
    await txn.sendBatch(Array.from({ length: 3 }, (_, i) => ({ topic, partition: i % 2, value: `${round}-${i}` })));
    await txn.send({ topic, partition: 1, value: `${round}-single` });
    if (commit) await txn.commit();
    else await txn.abort();
    assert.equal(txn.state, commit ? 'committed' : 'aborted');
    assert.equal(txn.isActive, false);
  }
  await producer.close();
  const committed = byPartition(await readAll(topic, 2, 'read_committed', 8));
  assert.deepEqual(committed.get('0'), ['0-0', '0-2', '2-0', '2-2']);
  assert.deepEqual(committed.get('1'), ['0-1', '0-single', '2-1', '2-single']);
  const all = byPartition(await readAll(topic, 2, 'read_uncommitted', 12));
  assert.deepEqual(all.get('0'), ['0-0', '0-2', '1-0', '1-2', '2-0', '2-2']);
  assert.deepEqual(all.get('1'), ['0-1', '0-single', '1-1', '1-single', '2-1', '2-single']);
});

test('records are refused outside a transaction and after it ended; one transaction at a time', { timeout: 30000 }, async () => {
  const topic = uniqueName('txn-rules');
  await broker.createTopics([{ name: topic, partitions: 1 }]);
  assert.throws(() => kafka.producer({ transactionalId: 'x', acks: 1 }), (e: StrandError) => e.code === 'INVALID_CONFIG');
  assert.throws(() => kafka.producer({ transactionalId: 'x', idempotent: false }), (e: StrandError) => e.code === 'INVALID_CONFIG');
  await assert.rejects(kafka.producer().transaction(), (e: StrandError) => e.code === 'INVALID_CONFIG');
  const producer = kafka.producer({ transactionalId: uniqueName('tid') });
  await assert.rejects(producer.send({ topic, value: 'outside' }), (e: StrandError) => e.code === 'ILLEGAL_STATE');
  const txn = await producer.transaction();
  await assert.rejects(producer.transaction(), (e: StrandError) => e.code === 'ILLEGAL_STATE');
  // The producer's own send joins the open transaction.
  await producer.send({ topic, value: 'inside' });
  await txn.commit();
  await assert.rejects(txn.send({ topic, value: 'late' }), (e: StrandError) => e.code === 'ILLEGAL_STATE');
  await assert.rejects(txn.commit(), (e: StrandError) => e.code === 'ILLEGAL_STATE');
  await assert.rejects(txn.abort(), (e: StrandError) => e.code === 'ILLEGAL_STATE');
  // An empty transaction commits without reaching the coordinator.
  await (await producer.transaction()).commit();
  await producer.close();
  assert.deepEqual(await readAll(topic, 1, 'read_committed', 1), ['0:inside']);
});

test('sendOffsets: offsets committed in a transaction are visible to the group only after the commit, and never after an abort', { timeout: 30000 }, async () => {
  const topic = uniqueName('txn-offsets');
  const groupId = uniqueName('g');
  await broker.createTopics([{ name: topic, partitions: 2 }]);
  const admin = kafka.admin();
  const producer = kafka.producer({ transactionalId: uniqueName('tid') });
  const offsetsOf = async (): Promise<Record<string, number>> => Object.fromEntries((await admin.fetchOffsets(groupId)).map((o) => [`${o.topic}-${o.partition}`, o.offset]));

  const aborted = await producer.transaction();
  await aborted.sendOffsets({ consumerGroupId: groupId, offsets: [{ topic, partition: 0, offset: 5 }] });
  await aborted.abort();
  assert.deepEqual(await offsetsOf(), {});

  const txn = await producer.transaction();
  await txn.send({ topic, partition: 1, value: 'out' });
  await txn.sendOffsets({ consumerGroupId: groupId, offsets: [{ topic, partition: 0, offset: 7 }, { topic, partition: 1, offset: 3 }] });
  assert.deepEqual(await offsetsOf(), {}, 'pending until the commit');
  await txn.commit();
  await eventually('offsets after the commit', async () => {
    const o = await offsetsOf();
    return o[`${topic}-0`] === 7 && o[`${topic}-1`] === 3 ? o : undefined;
  });
  await producer.close();
  await admin.close();
});

test('a second producer with the same transactional id fences the first: its open transaction is aborted and it fails with PRODUCER_FENCED', { timeout: 30000 }, async () => {
  const topic = uniqueName('txn-fence');
  const tid = uniqueName('tid');
  await broker.createTopics([{ name: topic, partitions: 1 }]);
  const first = kafka.producer({ transactionalId: tid });
  const zombieTxn = await first.transaction();
  await zombieTxn.send({ topic, value: 'zombie-1' });

  // The coordinator aborts the open transaction first, answering CONCURRENT_TRANSACTIONS meanwhile: retried.
  const retries: string[] = [];
  const onRetry = (m: unknown): void => void retries.push(`${(m as { what: string }).what} ${(m as { error: StrandError }).error.code}`);
  diagnosticsChannel.subscribe('strand:client:retry', onRetry);
  const second = kafka.producer({ transactionalId: tid });
  await second.initTransactions().finally(() => diagnosticsChannel.unsubscribe('strand:client:retry', onRetry));
  assert.ok(retries.includes('InitProducerId CONCURRENT_TRANSACTIONS'), retries.join(', '));

  // The zombie's next request is refused with a fencing error and the producer is done for.
  const fenced = (e: StrandError): boolean => e.code === 'PRODUCER_FENCED' || e.code === 'INVALID_PRODUCER_EPOCH';
  await assert.rejects(zombieTxn.send({ topic, value: 'zombie-2' }), fenced);
  await assert.rejects(zombieTxn.commit(), fenced);
  assert.ok(first.fatalError !== null && fenced(first.fatalError as StrandError));
  assert.match(first.fatalError.message, new RegExp(`transactional id ${tid}.*took over.*close this producer`));
  await assert.rejects(zombieTxn.abort(), fenced);
  await assert.rejects(first.transaction(), fenced);
  await first.close();

  const txn = await second.transaction();
  await txn.send({ topic, value: 'survivor' });
  await txn.commit();
  await second.close();
  assert.deepEqual(await readAll(topic, 1, 'read_committed', 1), ['0:survivor']);
  assert.deepEqual(await readAll(topic, 1, 'read_uncommitted', 2), ['0:zombie-1', '0:survivor'], 'the zombie\'s record is in the log, aborted');
});

test('a batch the broker refuses makes the transaction abortable: sends and commit are refused, abort works, and the next transaction commits (epoch bumped)', { timeout: 30000 }, async () => {
  const topic = uniqueName('txn-abortable');
  await broker.createTopics([{ name: topic, partitions: 1, configs: { 'max.message.bytes': '300' } }]);
  const producer = kafka.producer({ transactionalId: uniqueName('tid'), lingerMs: 0 });
  const txn = await producer.transaction();
  await txn.send({ topic, value: 'aborted-1' });
  await assert.rejects(txn.send({ topic, value: 'x'.repeat(1000) }), (e: StrandError) => e.code === 'MESSAGE_TOO_LARGE');
  assert.equal(txn.state, 'abortable');
  await assert.rejects(txn.send({ topic, value: 'more' }), (e: StrandError) => e.code === 'TRANSACTION_ABORTABLE');
  await assert.rejects(txn.sendOffsets({ consumerGroupId: 'g', offsets: [{ topic, partition: 0, offset: 1 }] }), (e: StrandError) => e.code === 'TRANSACTION_ABORTABLE');
  await assert.rejects(txn.commit(), (e: StrandError) => e.code === 'TRANSACTION_ABORTABLE' && /MESSAGE_TOO_LARGE/.test(e.message));
  await txn.abort();
  assert.equal(producer.fatalError, null);
  // The refused batch took sequence numbers the broker never saw: without an epoch bump the
  // next batch to the partition would be OUT_OF_ORDER_SEQUENCE_NUMBER.
  const next = await producer.transaction();
  await next.send({ topic, value: 'committed-1' });
  await next.commit();
  await producer.close();
  assert.deepEqual(await readAll(topic, 1, 'read_committed', 1), ['0:committed-1']);
});

test('sendOffsets with a consumer carries its generation and member id (KIP-447): a stale member cannot commit, its transaction becomes abortable', { timeout: 60000 }, async () => {
  const topic = uniqueName('txn-447');
  const groupId = uniqueName('g447');
  await broker.createTopics([{ name: topic, partitions: 2 }]);
  const opts = { groupId, commit: 'manual', commitOnRevoke: false, heartbeatIntervalMs: 100, fromBeginning: true } as const;
  const a = kafka.consumer(opts);
  a.subscribe(topic);
  await a.run({ eachMessage: () => {} });
  const stale = a.groupMetadata();
  assert.ok(stale.generationId >= 0 && stale.memberId !== '', JSON.stringify(stale));
  const b = kafka.consumer(opts);
  b.subscribe(topic);
  await b.run({ eachMessage: () => {} });
  await eventually('a rebalance', () => (a.groupMetadata().generationId > stale.generationId && b.assignment().length === 1 && a.assignment().length === 1 ? true : undefined), 20000);

  const producer = kafka.producer({ transactionalId: uniqueName('tid') });
  const zombie = await producer.transaction();
  await assert.rejects(zombie.sendOffsets({ consumer: { groupMetadata: () => stale }, offsets: [{ topic, partition: 0, offset: 1 }] }), (e: StrandError) => e.code === 'ILLEGAL_GENERATION');
  assert.equal(zombie.state, 'abortable');
  await zombie.abort();

  const owned = a.assignment()[0]!;
  const txn = await producer.transaction();
  await txn.sendOffsets({ consumer: a, offsets: [{ ...owned, offset: 3 }] });
  await txn.commit();
  const admin = kafka.admin();
  // EndTxn is answered once the decision is durable; the markers (which make the offsets visible) follow.
  const committed = await eventually('the committed offsets', async () => {
    const o = await admin.fetchOffsets(groupId);
    return o.length > 0 ? o : undefined;
  });
  await admin.close();
  assert.deepEqual(committed.map((o) => [o.topic, o.partition, o.offset]), [[topic, owned.partition, 3]]);
  await producer.close();
  await Promise.all([a.close(), b.close()]);
});

test('a transaction left open beyond transactionTimeoutMs is aborted by the coordinator, which fences the producer', { timeout: 30000 }, async () => {
  const topic = uniqueName('txn-timeout');
  await broker.createTopics([{ name: topic, partitions: 1 }]);
  const producer = kafka.producer({ transactionalId: uniqueName('tid'), transactionTimeoutMs: 500 });
  const txn = await producer.transaction();
  await txn.send({ topic, value: 'too late' });
  assert.ok((await latest(topic, 1)) < (await latest(topic, 0)), 'the open transaction holds the LSO back');
  await eventually('the coordinator to abort the transaction', async () => ((await latest(topic, 1)) === (await latest(topic, 0)) ? true : undefined), 10000);
  await assert.rejects(txn.commit(), (e: StrandError) => e.code === 'PRODUCER_FENCED' || e.code === 'INVALID_PRODUCER_EPOCH');
  assert.ok(producer.fatalError !== null);
  await producer.close();
  assert.deepEqual(await readAll(topic, 1, 'read_uncommitted', 1), ['0:too late']);
  assert.deepEqual(await readAll(topic, 1, 'read_committed', 0), []);
});

test('close() aborts an open transaction at once (read_committed readers do not wait for the transaction timeout)', { timeout: 30000 }, async () => {
  const topic = uniqueName('txn-close');
  await broker.createTopics([{ name: topic, partitions: 1 }]);
  const producer = kafka.producer({ transactionalId: uniqueName('tid'), transactionTimeoutMs: 60000 });
  const txn = await producer.transaction();
  await txn.send({ topic, value: 'never committed' });
  const pending = txn.send({ topic, value: 'still buffered' }).catch((e: StrandError) => e.code); // sent before the abort or dropped by it
  await producer.close();
  const outcome = await pending;
  assert.ok(typeof outcome === 'object' || outcome === 'TRANSACTION_ABORTED', String(outcome));
  assert.equal(txn.state, 'aborted');
  await eventually('the abort markers', async () => ((await latest(topic, 1)) === (await latest(topic, 0)) ? true : undefined), 5000);
  assert.deepEqual(await readAll(topic, 1, 'read_committed', 0), []);
});

test('runExactlyOnce: each batch is transformed and committed with its input offsets; a failing batch is aborted and handled again', { timeout: 60000 }, async () => {
  const input = uniqueName('eos-in');
  const output = uniqueName('eos-out');
  const groupId = uniqueName('eos-g');
  await broker.createTopics([{ name: input, partitions: 3 }, { name: output, partitions: 3 }]);
  const n = 3000;
  const p = kafka.producer({});
  await p.sendBatch(Array.from({ length: n }, (_, i) => ({ topic: input, partition: i % 3, key: String(i), value: String(i) })));
  await p.close();

  const consumer: Consumer<string | null, string | null> = kafka.consumer({ groupId, fromBeginning: true, commit: 'manual', commitOnRevoke: false, keyDeserializer: stringSerde, valueDeserializer: stringSerde, maxPartitionBytes: 4096 });
  const producer = kafka.producer<string | null, string | null>({ transactionalId: uniqueName('eos-tid'), keySerializer: stringSerde, valueSerializer: stringSerde });
  let failed = 0;
  let handled = 0;
  consumer.subscribe(input);
  await runExactlyOnce({
    consumer,
    producer,
    initialBackoffMs: 10,
    handler: async ({ batch, transaction, attempt }) => {
      await transaction.sendBatch(batch.messages.map((m) => ({ topic: output, key: m.key, value: `out-${m.value}` })));
      if (failed < 3 && attempt === 0 && batch.messages.some((m) => Number(m.value) % 500 === 7)) {
        failed++;
        throw new Error('transform failed');
      }
      handled += batch.messages.length;
    },
  });
  await eventually('all input handled', () => (handled >= n ? true : undefined), 40000, 20);
  await consumer.close();
  await producer.close();
  assert.equal(failed, 3);
  const out = await readAll(output, 3, 'read_committed', n);
  const values = out.map((r) => r.slice(r.indexOf(':') + 1)).sort();
  assert.deepEqual(values, Array.from({ length: n }, (_, i) => `out-${i}`).sort());
  const raw = await readAll(output, 3, 'read_uncommitted', n + 1);
  assert.ok(raw.length > n, 'the aborted attempts left records that read_committed skips');
  const admin = kafka.admin();
  const committed = await admin.fetchOffsets(groupId);
  await admin.close();
  assert.deepEqual(committed.map((o) => o.offset), [n / 3, n / 3, n / 3]);
  await assert.rejects(
    runExactlyOnce({ consumer: kafka.consumer({ groupId }), producer, handler: () => {} }),
    (e: StrandError) => e.code === 'INVALID_CONFIG',
  );
});

for (const assignor of ['range', 'cooperative-sticky'] as const) {
test(`runExactlyOnce with two members and a rebalance (${assignor}) in the middle: every input record's output exactly once`, { timeout: 90000 }, async () => {
  const input = uniqueName('eos2-in');
  const output = uniqueName('eos2-out');
  const groupId = uniqueName('eos2-g');
  await broker.createTopics([{ name: input, partitions: 4 }, { name: output, partitions: 2 }]);
  const n = 20000;
  const p = kafka.producer({ batchBytes: 4096 });
  await p.sendBatch(Array.from({ length: n }, (_, i) => ({ topic: input, key: String(i), value: String(i) })));
  await p.close();

  let handled = 0;
  // Member a slows down once b is on its way, so that the rebalance lands mid-stream even on a
  // loaded machine: it waits for b's start past a quarter of the input, then takes 100 ms a batch
  // until b has its partitions.
  let bStarting = false;
  let bJoined = false;
  const start = async (name: string): Promise<{ consumer: Consumer<string | null, string | null>; close(): Promise<void> }> => {
    const consumer: Consumer<string | null, string | null> = kafka.consumer({ groupId, assignors: [assignor], fromBeginning: true, commit: 'manual', commitOnRevoke: false, heartbeatIntervalMs: 100, keyDeserializer: stringSerde, valueDeserializer: stringSerde });
    const producer = kafka.producer<string | null, string | null>({ transactionalId: `${groupId}-${name}`, keySerializer: stringSerde, valueSerializer: stringSerde });
    consumer.subscribe(input);
    await runExactlyOnce({
      consumer,
      producer,
      initialBackoffMs: 10,
      handler: async ({ batch, transaction }) => {
        await transaction.sendBatch(batch.messages.map((m) => ({ topic: output, key: m.key, value: m.value })));
        handled += batch.messages.length;
        if (name === 'a' && !bJoined && handled > n / 4) {
          while (!bStarting) await new Promise((r) => setTimeout(r, 5));
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    });
    return { consumer, close: async () => { await consumer.close(); await producer.close(); } };
  };
  const a = await start('a');
  let b: Awaited<ReturnType<typeof start>> | null = null;
  try {
    await eventually('a to make progress', () => (handled > n / 5 ? true : undefined), 30000, 5);
    bStarting = true;
    b = await start('b');
    const bMember = b;
    await eventually('b to get partitions', () => (bMember.consumer.assignment().length > 0 ? true : undefined), 30000, 10);
    bJoined = true;
    assert.ok(handled < n, `the rebalance came before the end of the input (${handled} of ${n} handled)`);
    const admin = kafka.admin();
    await eventually('every input offset committed', async () => {
      const o = await admin.fetchOffsets(groupId);
      return o.reduce((sum, x) => sum + x.offset, 0) === n ? true : undefined;
    }, 60000, 100).finally(() => admin.close());
  } finally {
    await Promise.all([a.close(), b?.close()]);
  }
  const out = await readAll(output, 2, 'read_committed', n);
  const values = out.map((r) => Number(r.slice(r.indexOf(':') + 1)));
  const seen = new Uint8Array(n);
  for (const v of values) seen[v]!++;
  assert.equal(values.length, n, `${values.length} output records for ${n} inputs`);
  assert.ok(seen.every((x) => x === 1), 'each input exactly once in the output');
});
}

test('runExactlyOnce stops when its producer is fenced by a newer instance: done() rejects with the fencing error, nothing of the zombie is committed', { timeout: 60000 }, async () => {
  const input = uniqueName('eos3-in');
  const output = uniqueName('eos3-out');
  const groupId = uniqueName('eos3-g');
  const tid = uniqueName('eos3-tid');
  await broker.createTopics([{ name: input, partitions: 1 }, { name: output, partitions: 1 }]);
  const consumer: Consumer<string | null, string | null> = kafka.consumer({ groupId, fromBeginning: true, commit: 'manual', commitOnRevoke: false, onFailure: 'skip', keyDeserializer: stringSerde, valueDeserializer: stringSerde });
  const producer = kafka.producer<string | null, string | null>({ transactionalId: tid, keySerializer: stringSerde, valueSerializer: stringSerde });
  consumer.subscribe(input);
  let handled = 0;
  await runExactlyOnce({
    consumer,
    producer,
    handler: async ({ batch, transaction }) => {
      await transaction.sendBatch(batch.messages.map((m) => ({ topic: output, value: `out-${m.value}` })));
      handled += batch.messages.length;
    },
  });
  const input1 = kafka.producer();
  await input1.send({ topic: input, value: 'first' });
  await eventually('the first record handled', () => (handled === 1 ? true : undefined));
  // A newer instance takes the transactional id over.
  const newer = kafka.producer({ transactionalId: tid });
  await newer.initTransactions();
  await input1.send({ topic: input, value: 'second' });
  await input1.close();
  await assert.rejects(consumer.done(), (e: StrandError) => e.code === 'PRODUCER_FENCED' || e.code === 'INVALID_PRODUCER_EPOCH');
  await consumer.close();
  await producer.close();
  await newer.close();
  assert.deepEqual(await readAll(output, 1, 'read_committed', 1), ['0:out-first']);
  const admin = kafka.admin();
  const offsets = await admin.fetchOffsets(groupId);
  await admin.close();
  assert.deepEqual(offsets.map((o) => o.offset), [1], 'the zombie did not commit (or skip past) the second record');
});
