/**
 * The consumer against an in-process broker: group membership and rebalances without duplicates,
 * retry then dead-letter, seek / rewind, pause / resume, the async iterator, commit strategies,
 * manual assignment, and the assignors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka } from '../../src/client/kafka.js';
import type { Consumer, ConsumerMessage } from '../../src/client/consumer.js';
import { DLT_HEADERS } from '../../src/client/consumer.js';
import { cooperativeStickyAssignor, rangeAssignor, roundRobinAssignor } from '../../src/client/assignors.js';
import { stringSerde } from '../../src/client/serializers.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { eventually, uniqueName } from './helpers.js';

let broker: StrandTestBroker;
let kafka: Kafka;

before(async () => {
  broker = await startStrand();
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'consumer-test' });
});
after(async () => {
  await broker?.stop();
});

async function produce(topic: string, n: number, partitions?: number, valueOf = (i: number) => String(i)): Promise<void> {
  const p = kafka.producer({ lingerMs: 5, batchBytes: 256 * 1024 });
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) sends.push(p.send({ topic, key: `k${i}`, value: valueOf(i), ...(partitions ? { partition: i % partitions } : {}) }));
  await Promise.all(sends);
  await p.close();
}

test('assignors: range and round-robin split partitions like the Java client', () => {
  const members = [
    { memberId: 'b', topics: ['t', 'u'], userData: null },
    { memberId: 'a', topics: ['t', 'u'], userData: null },
  ];
  const counts = new Map([['t', 3], ['u', 3]]);
  const range = rangeAssignor.assign(members, counts);
  assert.deepEqual(Object.fromEntries(range.get('a')!), { t: [0, 1], u: [0, 1] });
  assert.deepEqual(Object.fromEntries(range.get('b')!), { t: [2], u: [2] });
  const rr = roundRobinAssignor.assign(members, counts);
  assert.deepEqual(Object.fromEntries(rr.get('a')!), { t: [0, 2], u: [1] });
  assert.deepEqual(Object.fromEntries(rr.get('b')!), { t: [1], u: [0, 2] });
});

test('three members on a 6-partition topic process 100,000 records exactly once while members join and leave', { timeout: 180000 }, async () => {
  const topic = uniqueName('group');
  const groupId = uniqueName('g');
  const total = 100000;
  await broker.createTopics([{ name: topic, partitions: 6 }]);
  await produce(topic, total, 6);
  const seen = new Uint8Array(total);
  let processed = 0;
  let duplicates = 0;
  const perMember = new Map<string, number>();
  const start = (name: string): Consumer<Buffer | null, string | null> => {
    const c = kafka.consumer<Buffer | null, string | null>({ groupId, fromBeginning: true, commit: 'batch', heartbeatIntervalMs: 100, sessionTimeoutMs: 10000, rebalanceTimeoutMs: 20000, valueDeserializer: stringSerde, maxPartitionBytes: 64 * 1024 });
    c.subscribe(topic);
    c.on('commitError', (e) => console.error(`${name} commit failed: ${(e as Error).message}`));
    void c.run({
      eachMessage: async ({ message }) => {
        const i = Number(message.value);
        if (seen[i]) duplicates++;
        seen[i] = 1;
        processed++;
        perMember.set(name, (perMember.get(name) ?? 0) + 1);
        if (processed % 500 === 0) await new Promise((r) => setImmediate(r));
      },
    });
    return c;
  };
  const a = start('a');
  await eventually('a to start', () => (processed > 5000 ? true : undefined), 30000, 5);
  const b = start('b');
  await eventually('b to get partitions', () => (b.assignment().length > 0 && processed > 30000 ? true : undefined), 30000, 5);
  const c = start('c');
  await eventually('c to get partitions', () => (c.assignment().length > 0 && processed > 50000 ? true : undefined), 30000, 5);
  await a.close();
  await eventually('all records', () => (processed >= total ? true : undefined), 60000, 20);
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all([b.close(), c.close()]);
  assert.equal(duplicates, 0, `duplicates: ${duplicates}; per member ${JSON.stringify([...perMember])}`);
  assert.equal(processed, total);
  assert.ok(seen.every((x) => x === 1));
  assert.ok([...perMember.values()].filter((n) => n > 0).length >= 2, JSON.stringify([...perMember]));
  const admin = kafka.admin();
  const lag = await admin.groupLag(groupId, [topic]);
  await admin.close();
  assert.ok(lag.every((l) => l.lag === 0), JSON.stringify(lag));
});

test('a handler that throws for chosen records retries, then dead-letters exactly those with source headers; the rest arrive in order', { timeout: 60000 }, async () => {
  const topic = uniqueName('poison');
  await broker.createTopics([{ name: topic, partitions: 2 }]);
  const n = 200;
  await produce(topic, n, 2);
  const poison = (i: number): boolean => i % 17 === 3;
  const attempts = new Map<number, number>();
  const handled: Array<{ p: number; i: number }> = [];
  const consumer = kafka.consumer<Buffer | null, string | null>({
    groupId: uniqueName('dlq'),
    fromBeginning: true,
    valueDeserializer: stringSerde,
    retry: { retries: 2, initialBackoffMs: 1, maxBackoffMs: 5 },
    onFailure: 'deadLetter',
  });
  consumer.subscribe(topic);
  await consumer.run({
    eachMessage: async ({ message }) => {
      const i = Number(message.value);
      attempts.set(i, (attempts.get(i) ?? 0) + 1);
      if (poison(i)) throw new Error(`poison ${i}`);
      handled.push({ p: message.partition, i });
    },
  });
  const expectedPoison = Array.from({ length: n }, (_, i) => i).filter(poison);
  await eventually('all handled', () => (handled.length === n - expectedPoison.length ? true : undefined), 30000);
  await consumer.close();
  for (const i of expectedPoison) assert.equal(attempts.get(i), 3, `record ${i} tried 1 + 2 times`);
  for (const p of [0, 1]) {
    const mine = handled.filter((h) => h.p === p).map((h) => h.i);
    assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `partition ${p} in order`);
  }
  // The dead-letter topic holds exactly the poison records, with where they came from.
  const dlt: ConsumerMessage<Buffer | null, string | null>[] = [];
  const reader = kafka.consumer<Buffer | null, string | null>({ valueDeserializer: stringSerde, autoOffsetReset: 'earliest' });
  reader.assign([{ topic: `${topic}.DLT`, partition: 0, offset: 0 }]);
  await reader.run({ eachMessage: async ({ message }) => void dlt.push(message) });
  await eventually('dead letters', () => (dlt.length >= expectedPoison.length ? true : undefined), 15000);
  await reader.close();
  assert.deepEqual(dlt.map((m) => Number(m.value)).sort((x, y) => x - y), expectedPoison);
  for (const m of dlt) {
    const h = Object.fromEntries(m.headers.map((x) => [x.key, x.value?.toString()]));
    const i = Number(m.value);
    assert.equal(h[DLT_HEADERS.topic], topic);
    assert.equal(h[DLT_HEADERS.partition], String(i % 2));
    assert.equal(h[DLT_HEADERS.offset], String(Math.floor(i / 2)));
    assert.equal(h[DLT_HEADERS.error], `poison ${i}`);
    assert.equal(h[DLT_HEADERS.attempts], '3');
    assert.equal(m.rawKey?.toString(), `k${i}`);
  }
});

test('onFailure skip moves past a poison record; fail stops the consumer with the error', { timeout: 60000 }, async () => {
  const topic = uniqueName('skip');
  await broker.createTopics([{ name: topic }]);
  await produce(topic, 10);
  const got: number[] = [];
  const skipper = kafka.consumer<Buffer | null, string | null>({ groupId: uniqueName('skip'), fromBeginning: true, valueDeserializer: stringSerde, onFailure: 'skip' });
  skipper.subscribe(topic);
  await skipper.run({
    eachMessage: ({ message }) => {
      if (message.value === '4') throw new Error('bad');
      got.push(Number(message.value));
    },
  });
  await eventually('9 handled', () => (got.length === 9 ? true : undefined));
  await skipper.close();
  assert.deepEqual(got, [0, 1, 2, 3, 5, 6, 7, 8, 9]);

  const failGroup = uniqueName('fail');
  const failing = kafka.consumer<Buffer | null, string | null>({ groupId: failGroup, fromBeginning: true, valueDeserializer: stringSerde });
  failing.subscribe(topic);
  await failing.run({
    eachMessage: ({ message }) => {
      if (message.value === '2') throw new Error('stop here');
    },
  });
  await assert.rejects(failing.done(), /stop here/);
  await failing.close();
  // The handled records (0 and 1) were committed; the failed one was not.
  const admin = kafka.admin();
  const offsets = await admin.fetchOffsets(failGroup, [topic]);
  await admin.close();
  assert.equal(offsets[0]!.offset, 2);
});

test('seek re-delivers from an offset and from a timestamp; pause and resume', { timeout: 60000 }, async () => {
  const topic = uniqueName('seek');
  await broker.createTopics([{ name: topic }]);
  const base = Date.now() - 60000;
  const p = kafka.producer();
  for (let i = 0; i < 20; i++) await p.send({ topic, value: String(i), timestamp: base + i * 1000 });
  await p.close();
  const got: number[] = [];
  const c = kafka.consumer<Buffer | null, string | null>({ groupId: uniqueName('seek'), fromBeginning: true, valueDeserializer: stringSerde, maxWaitMs: 100 });
  c.subscribe(topic);
  let seeked = false;
  await c.run({
    eachMessage: ({ message }) => {
      got.push(Number(message.value));
      if (message.value === '9' && !seeked) {
        seeked = true;
        c.seek({ topic, partition: 0, offset: 5 });
      }
    },
  });
  await eventually('rewound and finished', () => (got.length === 25 ? true : undefined));
  assert.deepEqual(got, [...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 15 }, (_, i) => i + 5)]);

  c.seek({ topic, partition: 0, timestamp: base + 16500 });
  await eventually('timestamp seek', () => (got.length === 28 ? true : undefined));
  assert.deepEqual(got.slice(25), [17, 18, 19]);

  c.pause([{ topic }]);
  assert.deepEqual(c.paused(), [{ topic, partition: 0 }]);
  const p2 = kafka.producer();
  await p2.send({ topic, value: '20' });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(got.length, 28, 'nothing delivered while paused');
  c.resume([{ topic }]);
  await eventually('resumed', () => (got.length === 29 ? true : undefined));
  assert.equal(got[28], 20);
  await p2.close();
  await c.close();
});

test('async iterator, eachBatch, manual commit and at-most-once commit-before', { timeout: 60000 }, async () => {
  const topic = uniqueName('iter');
  await broker.createTopics([{ name: topic }]);
  await produce(topic, 50);
  const groupId = uniqueName('iter');
  const it = kafka.consumer<Buffer | null, string | null>({ groupId, fromBeginning: true, valueDeserializer: stringSerde, commit: 'manual' });
  it.subscribe(topic);
  const values: number[] = [];
  for await (const m of it) {
    values.push(Number(m.value));
    if (values.length === 20) await it.commit();
    if (values.length === 30) break; // closes, committing what was handled (30)
  }
  assert.deepEqual(values, Array.from({ length: 30 }, (_, i) => i));
  const admin = kafka.admin();
  assert.equal((await admin.fetchOffsets(groupId, [topic]))[0]!.offset, 30);

  const batches: number[][] = [];
  const eb = kafka.consumer<Buffer | null, string | null>({ groupId, valueDeserializer: stringSerde, commit: 'batch' });
  eb.subscribe(topic);
  await eb.run({ eachBatch: async ({ batch }) => void batches.push(batch.messages.map((m) => Number(m.value))) });
  await eventually('rest in batches', () => (batches.flat().length === 20 ? true : undefined));
  await eb.close();
  assert.deepEqual(batches.flat(), Array.from({ length: 20 }, (_, i) => i + 30));
  assert.equal((await admin.fetchOffsets(groupId, [topic]))[0]!.offset, 50);

  // At-most-once: the offset is committed before the batch is handled, so a crash loses it.
  const amo = uniqueName('amo');
  const crash = kafka.consumer({ groupId: amo, fromBeginning: true, commit: 'before' });
  crash.subscribe(topic);
  await crash.run({
    eachMessage: () => {
      throw new Error('crash');
    },
  });
  await assert.rejects(crash.done(), /crash/);
  await crash.close();
  assert.equal((await admin.fetchOffsets(amo, [topic]))[0]!.offset, 50);
  await admin.close();
});

test('assign() without a group reads given partitions from given offsets', { timeout: 30000 }, async () => {
  const topic = uniqueName('assign');
  await broker.createTopics([{ name: topic, partitions: 2 }]);
  await produce(topic, 20, 2);
  const got: string[] = [];
  const c = kafka.consumer<Buffer | null, string | null>({ valueDeserializer: stringSerde });
  c.assign([{ topic, partition: 1, offset: 5 }]);
  await c.run({ eachMessage: ({ message }) => void got.push(`${message.partition}@${message.offset}=${message.value}`) });
  await eventually('5 records', () => (got.length === 5 ? true : undefined));
  await c.close();
  assert.deepEqual(got, ['1@5=11', '1@6=13', '1@7=15', '1@8=17', '1@9=19']);
});

test('cooperative-sticky assignor: balanced, keeps what members own, holds back partitions that change owner', () => {
  const counts = new Map([['t', 6]]);
  const owned = (ps: number[]) => [{ topic: 't', partitions: ps }];
  // A owned everything; B joins: A keeps 3, the 3 that move are held back for the second phase.
  const phase1 = cooperativeStickyAssignor.assign(
    [
      { memberId: 'a', topics: ['t'], userData: null, ownedPartitions: owned([0, 1, 2, 3, 4, 5]), generation: 1 },
      { memberId: 'b', topics: ['t'], userData: null, ownedPartitions: [], generation: -1 },
    ],
    counts,
  );
  const a1 = phase1.get('a')!.get('t')!;
  assert.equal(a1.length, 3);
  assert.equal(phase1.get('b')!.get('t'), undefined, 'nothing for b while a still owns them');
  // Second phase: a owns 3, nobody owns the rest: b gets them.
  const phase2 = cooperativeStickyAssignor.assign(
    [
      { memberId: 'a', topics: ['t'], userData: null, ownedPartitions: owned(a1), generation: 2 },
      { memberId: 'b', topics: ['t'], userData: null, ownedPartitions: [], generation: -1 },
    ],
    counts,
  );
  assert.deepEqual(phase2.get('a')!.get('t'), a1);
  assert.deepEqual(phase2.get('b')!.get('t'), [0, 1, 2, 3, 4, 5].filter((p) => !a1.includes(p)));
  // A stale claim (lower generation) loses to the current owner; userData carries Java's generation.
  const stale = cooperativeStickyAssignor.assign(
    [
      { memberId: 'a', topics: ['t'], userData: cooperativeStickyAssignor.subscriptionUserData!(5), ownedPartitions: owned([0, 1, 2]) },
      { memberId: 'b', topics: ['t'], userData: cooperativeStickyAssignor.subscriptionUserData!(3), ownedPartitions: owned([2, 3, 4, 5]) },
    ],
    counts,
  );
  assert.deepEqual(stale.get('a')!.get('t'), [0, 1, 2]);
  assert.deepEqual(stale.get('b')!.get('t'), [3, 4, 5]);
});

test('cooperative-sticky: members that join do not make existing members revoke the partitions they keep', { timeout: 90000 }, async (t) => {
  const topic = uniqueName('coop');
  const groupId = uniqueName('coop');
  const total = 6000;
  await broker.createTopics([{ name: topic, partitions: 6 }]);
  await produce(topic, total, 6);
  const owned = new Map<string, Set<number>>();
  const events: string[] = [];
  const problems: string[] = [];
  const seen = new Uint8Array(total);
  let processed = 0;
  let duplicates = 0;
  const checkExclusive = (): void => {
    const all = [...owned.values()].flatMap((s) => [...s]);
    if (new Set(all).size !== all.length) problems.push(`a partition owned twice: ${JSON.stringify([...owned].map(([m, s]) => [m, [...s]]))}`);
  };
  const start = (name: string): Consumer<Buffer | null, string | null> => {
    const c = kafka.consumer<Buffer | null, string | null>({ groupId, assignors: ['cooperative-sticky'], fromBeginning: true, commit: 'batch', heartbeatIntervalMs: 100, sessionTimeoutMs: 10000, rebalanceTimeoutMs: 20000, valueDeserializer: stringSerde, maxPartitionBytes: 4096 });
    owned.set(name, new Set());
    c.on('assigned', (tps: Array<{ topic: string; partition: number }>) => {
      events.push(`${name}+${tps.map((t) => t.partition).join(',')}`);
      for (const t of tps) {
        if (owned.get(name)!.has(t.partition)) problems.push(`${name} assigned ${t.partition} it already owns`);
        owned.get(name)!.add(t.partition);
      }
      checkExclusive();
    });
    c.on('revoked', (tps: Array<{ topic: string; partition: number }>) => {
      events.push(`${name}-${tps.map((t) => t.partition).join(',')}`);
      for (const t of tps) if (!owned.get(name)!.delete(t.partition)) problems.push(`${name} revoked ${t.partition} it did not own`);
      // Whatever is revoked must end up elsewhere: check below against the final assignment.
    });
    c.subscribe(topic);
    void c.run({
      eachMessage: async ({ message }) => {
        const i = Number(message.value);
        if (seen[i]) duplicates++;
        seen[i] = 1;
        processed++;
        if (processed % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      },
    });
    return c;
  };
  const sizes = (): number[] => [...owned.values()].map((s) => s.size).sort();
  const started: Array<Consumer<Buffer | null, string | null>> = [];
  // A failed wait must not leave members running (they would keep the file's test run alive).
  t.after(() => Promise.all(started.map((m) => m.close().catch(() => {}))));
  const a = start('a');
  started.push(a);
  await eventually('a owns all 6', () => (owned.get('a')!.size === 6 ? true : undefined), 20000);
  const b = start('b');
  started.push(b);
  await eventually('a and b own 3 each', () => (JSON.stringify(sizes()) === '[3,3]' ? true : undefined), 20000);
  const aAfterB = new Set(owned.get('a'));
  const c = start('c');
  started.push(c);
  await eventually('2 each', () => (JSON.stringify(sizes()) === '[2,2,2]' ? true : undefined), 20000);
  await eventually(`all records (${events.join(' ')})`, () => (processed >= total ? true : undefined), 30000);
  await Promise.all([a.close(), b.close(), c.close()]);
  t.diagnostic(`events: ${events.join(' ')}`);
  assert.deepEqual(problems, [], events.join(' '));
  // a gave up exactly 3 partitions when b joined and 1 when c joined; b gave up 1; nobody else.
  const revokedOf = (m: string): number[] => events.filter((e) => e.startsWith(`${m}-`)).flatMap((e) => e.slice(2).split(',').map(Number));
  assert.equal(revokedOf('a').length, 4, events.join(' '));
  assert.equal(revokedOf('b').length, 1, events.join(' '));
  assert.equal(revokedOf('c').length, 0, events.join(' '));
  // The partitions a kept after b joined: at most one of them moved to c, the others were never revoked.
  assert.ok([...aAfterB].filter((p) => revokedOf('a').includes(p)).length <= 1, events.join(' '));
  assert.equal(duplicates, 0);
  assert.equal(processed, total);
});
