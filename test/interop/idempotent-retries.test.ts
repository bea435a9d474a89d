/**
 * Issue 5's acceptance point "an idempotent producer whose responses are dropped retries, and the
 * log holds each record exactly once", with a real fault-injecting proxy (fault-proxy.ts) between
 * the producer and a broker process.
 *
 * The broker advertises the proxy's address, so every connection the client makes (bootstrap,
 * leader, coordinator) goes through it. The proxy lets the broker write a Produce batch and then
 * loses the response (closing the connection), or holds it past the client's request timeout;
 * the producer retries the same batch (same producer id, epoch and sequence), the broker answers
 * the duplicate with the original offsets and does not write it again. Afterwards the partition
 * is read straight from the broker (not through the proxy) and must hold each of the N records
 * exactly once, in the order they were sent. The proxy's counters make sure faults did happen.
 *
 * Producers: librdkafka 2.0.2 through confluent-kafka-python (`enable.idempotence=True`), and
 * Strand's own producer (idempotent by default).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { Kafka } from '../../src/client/kafka.js';
import type { ProducerOptions } from '../../src/client/producer.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { FaultProxy, type ProduceFault } from './fault-proxy.js';
import { describeRun, fetchAll, python, skipUnless, stopCleanly, uniqueTopic } from './helpers.js';

const N = 2000;
let broker: BrokerProcess;
let proxy: FaultProxy;

before(async () => {
  proxy = await FaultProxy.start({ plan: () => 'forward' });
  broker = await startBroker({ overrides: { 'advertised.listeners': `PLAINTEXT://127.0.0.1:${proxy.port}`, 'strand.acks.all.fsync': false } });
  proxy.setTarget('127.0.0.1', broker.port);
});

after(async () => {
  await proxy.close();
  await stopCleanly(broker);
});

async function createTopic(name: string): Promise<void> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const r = await c.send<m.CreateTopicsResponse>(m.ApiKey.CreateTopics, 7, { ...m.defaultCreateTopicsRequest(), timeoutMs: 5000, topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }] });
    assert.equal(r.topics[0]!.errorCode, 0, r.topics[0]!.errorMessage ?? '');
  } finally {
    c.close();
  }
}

const values = (): string[] => Array.from({ length: N }, (_, i) => `m-${String(i).padStart(5, '0')}`);

/** Drops (or delays) every `every`-th Produce response, `max` times in all, so the run always finishes. */
function every(everyN: number, max: number, fault: ProduceFault): (n: number) => ProduceFault {
  let done = 0;
  return (n) => {
    if (n % everyN !== 2 || done >= max) return 'forward';
    done++;
    return fault;
  };
}

/** The partition read from the broker directly: exactly the N values, in order, each from an idempotent batch. */
async function assertExactlyOnce(topic: string): Promise<void> {
  const { records, batches } = await fetchAll(broker.port, topic, 0);
  const got = records.map((r) => r.value);
  const expected = values();
  if (got.length !== expected.length) {
    const seen = new Map<string | null, number>();
    for (const v of got) seen.set(v, (seen.get(v) ?? 0) + 1);
    const dups = [...seen].filter(([, n]) => n > 1).slice(0, 5);
    const missing = expected.filter((v) => !seen.has(v)).slice(0, 5);
    assert.fail(`the log holds ${got.length} records, not ${N}; duplicated: ${JSON.stringify(dups)}; missing: ${JSON.stringify(missing)}`);
  }
  assert.deepEqual(got, expected, 'each record exactly once, in order');
  assert.ok(batches.every((b) => b.header.producerId >= 0 && b.header.baseSequence >= 0), 'every batch carries a producer id and a sequence');
  assert.equal(new Set(batches.map((b) => b.header.producerId)).size, 1, 'one producer id throughout');
}

const CONFLUENT_IDEMPOTENT = String.raw`
import os, json
from confluent_kafka import Producer
n = int(os.environ['N']); topic = os.environ['TOPIC']
conf = {'bootstrap.servers': os.environ['BOOTSTRAP'], 'enable.idempotence': True, 'linger.ms': 2,
        'batch.num.messages': 40, 'message.timeout.ms': 60000, 'retry.backoff.ms': 20,
        'reconnect.backoff.ms': 20, 'reconnect.backoff.max.ms': 200}
extra = os.environ.get('EXTRA')
if extra:
    conf.update(json.loads(extra))
errors = []
delivered = [0]
p = Producer(conf, error_cb=lambda e: None)
def cb(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        delivered[0] += 1
for i in range(n):
    while True:
        try:
            p.produce(topic, value=('m-%05d' % i).encode(), partition=0, on_delivery=cb)
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
left = p.flush(90)
print(json.dumps({'delivered': delivered[0], 'errors': errors[:10], 'left': left}))
`;

async function runConfluent(topic: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await python('confluent-kafka', CONFLUENT_IDEMPOTENT, proxy.bootstrap, { env: { TOPIC: topic, N: String(N), EXTRA: JSON.stringify(extra) }, timeoutMs: 120000 });
  assert.equal(r.code, 0, describeRun('confluent-kafka idempotent producer', r));
  const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { delivered: number; errors: string[]; left: number };
  assert.deepEqual(result, { delivered: N, errors: [], left: 0 }, describeRun('confluent-kafka idempotent producer', r));
}

test('librdkafka (confluent-kafka-python, enable.idempotence): Produce responses lost with the connection; the log holds each record exactly once, in order', { ...skipUnless('confluent-kafka'), timeout: 150000 }, async () => {
  const topic = uniqueTopic('idem-drop-rdkafka');
  await createTopic(topic);
  proxy.reset(every(6, 6, 'drop'));
  await runConfluent(topic);
  assert.ok(proxy.stats.dropped >= 3, `faults injected: ${JSON.stringify(proxy.stats)}`);
  assert.ok(proxy.stats.connections > proxy.stats.dropped, `the producer reconnected after each drop: ${JSON.stringify(proxy.stats)}`);
  await assertExactlyOnce(topic);
});

test('librdkafka: Produce responses held past socket.timeout.ms; the log holds each record exactly once, in order', { ...skipUnless('confluent-kafka'), timeout: 150000 }, async () => {
  const topic = uniqueTopic('idem-delay-rdkafka');
  await createTopic(topic);
  proxy.reset(every(6, 4, 'delay'), 2500);
  await runConfluent(topic, { 'socket.timeout.ms': 1000 });
  assert.ok(proxy.stats.delayed >= 3, `faults injected: ${JSON.stringify(proxy.stats)}`);
  assert.ok(proxy.stats.abandoned >= 1, `the producer gave up on held responses: ${JSON.stringify(proxy.stats)}`);
  await assertExactlyOnce(topic);
});

async function runStrand(topic: string, requestTimeoutMs: number, opts: ProducerOptions = {}): Promise<void> {
  const kafka = new Kafka({ brokers: [proxy.bootstrap], clientId: 'idem-proxy', requestTimeoutMs, retry: { retries: 30, initialRetryTimeMs: 20, maxRetryTimeMs: 200 } });
  const producer = kafka.producer({ lingerMs: 1, batchBytes: 1024, retryBackoffMs: 20, retryBackoffMaxMs: 200, deliveryTimeoutMs: 60000, ...opts });
  try {
    await producer.connect();
    assert.equal(producer.idempotent, true, 'the producer is idempotent against Strand');
    const sends: Array<Promise<unknown>> = [];
    for (const value of values()) sends.push(producer.send({ topic, partition: 0, value }));
    const results = await Promise.allSettled(sends);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(failed.slice(0, 3).map((r) => String((r as PromiseRejectedResult).reason)), [], `${failed.length} of ${N} records failed`);
    const offsets = results.map((r) => (r as PromiseFulfilledResult<{ offset: number }>).value.offset);
    assert.deepEqual(offsets, values().map((_, i) => i), 'each record acknowledged with its offset in the log');
  } finally {
    await producer.close();
  }
}

test("Strand's producer, one batch in flight per partition: Produce responses lost with the connection; the log holds each record exactly once, in order", { timeout: 120000 }, async () => {
  const topic = uniqueTopic('idem-drop-strand-1');
  await createTopic(topic);
  proxy.reset(every(6, 6, 'drop'));
  await runStrand(topic, 30000, { maxInFlightPerPartition: 1 });
  assert.ok(proxy.stats.dropped >= 3, `faults injected: ${JSON.stringify(proxy.stats)}`);
  await assertExactlyOnce(topic);
});

// Found with this proxy: with several batches of a partition in flight, a lost connection fails
// them all; the producer puts each back in its partition's queue in sequence order (it once put
// each at the head, re-sending them newest first, which the broker refuses with
// OUT_OF_ORDER_SEQUENCE_NUMBER), and retries OUT_OF_ORDER_SEQUENCE_NUMBER while an earlier batch
// of the partition is unresolved, as Kafka's Java producer does.
test("Strand's producer, five batches in flight per partition (the default): Produce responses lost with the connection; the log holds each record exactly once, in order", { timeout: 120000 }, async () => {
  const topic = uniqueTopic('idem-drop-strand-5');
  await createTopic(topic);
  proxy.reset(every(6, 6, 'drop'));
  await runStrand(topic, 30000);
  assert.ok(proxy.stats.dropped >= 3, `faults injected: ${JSON.stringify(proxy.stats)}`);
  await assertExactlyOnce(topic);
});

test("Strand's producer, one batch in flight per partition: Produce responses held past its request timeout; the log holds each record exactly once, in order", { timeout: 120000 }, async () => {
  const topic = uniqueTopic('idem-delay-strand');
  await createTopic(topic);
  proxy.reset(every(6, 4, 'delay'), 2500);
  // A Produce request times out after requestTimeoutMs + ackTimeoutMs (1.5 s), before the held response (2.5 s).
  await runStrand(topic, 1000, { maxInFlightPerPartition: 1, ackTimeoutMs: 500 });
  assert.ok(proxy.stats.delayed >= 3, `faults injected: ${JSON.stringify(proxy.stats)}`);
  assert.ok(proxy.stats.abandoned >= 1, `the producer gave up on held responses: ${JSON.stringify(proxy.stats)}`);
  await assertExactlyOnce(topic);
});
