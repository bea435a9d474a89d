/**
 * KafkaJS 2.2.4 consumer groups against a broker process (issue 3 acceptance):
 * - A group of 3 members (two in this process, one in a child process) on a 4-partition topic:
 *   assignments disjoint and covering (from DescribeGroups and the coordinator's "group is
 *   stable" log lines), every record read exactly once by its partition's owner; a member that
 *   disconnects hands its partitions over (the log names it as having left) and the others go on
 *   from its committed offsets; a member SIGKILLed with read-but-uncommitted records is removed
 *   when its session times out (the log says so) and the survivor re-reads exactly from the
 *   committed offsets — no record skipped, the only re-deliveries those never committed.
 * - Commit → disconnect → a new member of the group resumes exactly at the committed offset.
 * - Replay by reset: admin.resetOffsets({earliest: true}) and admin.setOffsets() on an empty group,
 *   read back with admin.fetchOffsets(), make the group re-read from there; KafkaJS refuses to
 *   reset a group with members.
 * The waits are on conditions (log lines, DescribeGroups, committed offsets), never on time.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, AssignerProtocol, type Consumer, type Admin } from 'kafkajs';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { skipUnless, uniqueTopic, eventually } from './helpers.js';
import { assertPartitioned, coordinatorEvents, memberIdOf, spawnKafkaJsMember, stableGenerations, type JsonLinesProcess } from './groups-support.js';

const SESSION_MS = 3000;
let broker: BrokerProcess;

before(async () => {
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0, 'group.min.session.timeout.ms': 1000 } });
});

after(async () => {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
});

const kafkaFor = (clientId: string): Kafka => new Kafka({ clientId, brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100 } });

interface Delivery {
  member: string;
  p: number;
  o: number;
  v: string;
}

/** An in-process KafkaJS member (auto-commit after each batch) that records what it reads. */
async function startMember(name: string, topic: string, groupId: string, deliveries: Delivery[], joins: Map<string, { memberId: string; p: number[] }>): Promise<Consumer> {
  const c = kafkaFor(name).consumer({ groupId, sessionTimeout: SESSION_MS, rebalanceTimeout: 10000, heartbeatInterval: 300, maxWaitTimeInMs: 100 });
  c.on(c.events.GROUP_JOIN, (e) => {
    joins.set(name, { memberId: e.payload.memberId, p: ((e.payload.memberAssignment as Record<string, number[]>)[topic] ?? []).slice().sort((a, b) => a - b) });
  });
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  await c.run({
    eachMessage: async ({ partition, message }) => {
      deliveries.push({ member: name, p: partition, o: Number(message.offset), v: message.value!.toString() });
    },
  });
  return c;
}

/** DescribeGroups through KafkaJS: state and member id → partitions of `topic`. */
async function describe(admin: Admin, groupId: string, topic: string): Promise<{ state: string; assignment: Map<string, number[]> }> {
  const g = (await admin.describeGroups([groupId])).groups[0]!;
  const assignment = new Map<string, number[]>();
  for (const m of g.members) {
    const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
    assignment.set(m.memberId, ((a?.assignment ?? {})[topic] ?? []).slice().sort((x, y) => x - y));
  }
  return { state: g.state, assignment };
}

/** Waits until DescribeGroups shows a Stable group of exactly `members` (client ids) that partition the topic and each member has been told its share. */
async function stableWith(admin: Admin, groupId: string, topic: string, members: string[], told: () => Map<string, { memberId: string; p: number[] }>): Promise<Map<string, number[]>> {
  return eventually(
    `group ${groupId} stable with ${members.join(', ')}`,
    async () => {
      const d = await describe(admin, groupId, topic);
      if (d.state !== 'Stable' || d.assignment.size !== members.length) return undefined;
      const byName = new Map<string, number[]>();
      for (const name of members) {
        const id = memberIdOf(d.assignment.keys(), name);
        if (id === undefined) return undefined;
        const t = told().get(name);
        if (t === undefined || t.memberId !== id || t.p.join() !== d.assignment.get(id)!.join()) return undefined;
        byName.set(name, d.assignment.get(id)!);
      }
      assertPartitioned(byName, 4, 'DescribeGroups');
      return byName;
    },
    30000,
  );
}

async function committed(admin: Admin, groupId: string, topic: string): Promise<number[]> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return t!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
}

async function highWatermarks(admin: Admin, topic: string): Promise<number[]> {
  return (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map((p) => Number(p.high));
}

/** Waits until the group's committed offset is the high watermark on every partition. */
async function allCommitted(admin: Admin, groupId: string, topic: string): Promise<number[]> {
  return eventually(
    'every partition committed up to its high watermark',
    async () => {
      const [c, hw] = [await committed(admin, groupId, topic), await highWatermarks(admin, topic)];
      return c.join() === hw.join() ? hw : undefined;
    },
    30000,
  );
}

test('KafkaJS group of 3 on 4 partitions: each record once, disjoint full assignments; a leaving member and a SIGKILLed one hand over from the committed offsets', { ...skipUnless('kafkajs'), timeout: 120000 }, async () => {
  const topic = uniqueTopic('grp-kjs3');
  const groupId = `g-${topic}`;
  const admin = kafkaFor('kjs-admin').admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  const producer = kafkaFor('kjs-producer').producer();
  await producer.connect();
  const produce = async (prefix: string, n: number): Promise<void> => {
    await producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ value: `${prefix}-${i}`, partition: i % 4 })) });
  };
  const deliveries: Delivery[] = [];
  const joins = new Map<string, { memberId: string; p: number[] }>();
  const local = new Map<string, Consumer>();
  let child: JsonLinesProcess | null = null;
  // The child's reads and assignments, merged into the same views.
  const allDeliveries = (): Delivery[] => [...deliveries, ...(child?.of('msg') ?? []).map((x) => ({ member: 'kjs-c', p: x['p'] as number, o: x['o'] as number, v: x['v'] as string }))];
  const told = (): Map<string, { memberId: string; p: number[] }> => {
    const m = new Map(joins);
    const j = child?.of('join').at(-1);
    if (j !== undefined) m.set('kjs-c', { memberId: j['memberId'] as string, p: j['p'] as number[] });
    return m;
  };
  try {
    local.set('kjs-a', await startMember('kjs-a', topic, groupId, deliveries, joins));
    local.set('kjs-b', await startMember('kjs-b', topic, groupId, deliveries, joins));
    child = spawnKafkaJsMember('kjs-c', { BOOTSTRAP: broker.bootstrap, TOPIC: topic, GROUP: groupId, SESSION_MS });

    // --- 3 members: every partition owned by exactly one, every record read once, by its owner.
    const three = await stableWith(admin, groupId, topic, ['kjs-a', 'kjs-b', 'kjs-c'], told);
    for (const [name, ps] of three) assert.ok(ps.length >= 1, `${name} owns no partition: ${JSON.stringify([...three])}`);
    const lastStable = stableGenerations(broker.output(), groupId, topic).at(-1)!;
    assert.equal(lastStable.assignment.size, 3, lastStable.line);
    assertPartitioned(lastStable.assignment, 4, 'log');
    await produce('a', 100);
    await eventually('phase a read', () => (allDeliveries().filter((d) => d.v.startsWith('a-')).length >= 100 ? true : undefined), 30000);
    const hwA = await allCommitted(admin, groupId, topic);
    assert.deepEqual(hwA, [25, 25, 25, 25]);
    const readA = allDeliveries().filter((d) => d.v.startsWith('a-'));
    assert.equal(readA.length, 100, 'phase a: each record exactly once');
    for (const d of readA) assert.ok(three.get(d.member)!.includes(d.p), `${d.member} read partition ${d.p} it does not own`);

    // --- kjs-b disconnects: it leaves (LeaveGroup), the other two take its partitions from its committed offsets.
    const bId = joins.get('kjs-b')!.memberId;
    const bPartitions = three.get('kjs-b')!;
    await local.get('kjs-b')!.disconnect();
    local.delete('kjs-b');
    const two = await stableWith(admin, groupId, topic, ['kjs-a', 'kjs-c'], told);
    const left = coordinatorEvents(broker.output(), groupId).filter((e) => e.message === 'member left the group');
    assert.deepEqual(left.map((e) => e.fields['memberId']), [bId]);
    assert.ok(coordinatorEvents(broker.output(), groupId).some((e) => e.message === 'preparing to rebalance group' && e.fields['reason'] === `member ${bId} left`));
    const afterLeave = stableGenerations(broker.output(), groupId, topic).at(-1)!;
    assert.ok(afterLeave.generation > lastStable.generation && !afterLeave.assignment.has(bId), afterLeave.line);
    assertPartitioned(afterLeave.assignment, 4, 'log after leave');
    const mark = allDeliveries().length;
    await produce('b', 100);
    await eventually('phase b read', () => (allDeliveries().filter((d) => d.v.startsWith('b-')).length >= 100 ? true : undefined), 30000);
    const hwB = await allCommitted(admin, groupId, topic);
    assert.deepEqual(hwB, [50, 50, 50, 50]);
    const readB = allDeliveries().filter((d) => d.v.startsWith('b-'));
    assert.equal(readB.length, 100, 'phase b: each record exactly once');
    for (const d of readB) assert.ok(two.get(d.member)!.includes(d.p), `${d.member} read partition ${d.p} it does not own`);
    for (const p of bPartitions) {
      const first = allDeliveries().slice(mark).find((d) => d.p === p)!;
      assert.equal(first.o, 25, `partition ${p} (kjs-b's) continued at its committed offset`);
    }

    // --- kjs-c reads records it never commits, then is SIGKILLed: after its session timeout kjs-a owns all and re-reads exactly those.
    await produce('c1', 40);
    const hwC1 = await allCommitted(admin, groupId, topic);
    assert.deepEqual(hwC1, [60, 60, 60, 60]);
    const cPartitions = two.get('kjs-c')!;
    await produce('nocommit', 40);
    await eventually('the uncommitted records read', () => (allDeliveries().filter((d) => d.v.startsWith('nocommit-')).length >= 40 ? true : undefined), 30000);
    const cId = told().get('kjs-c')!.memberId;
    // Everything produced so far has been read: whatever kjs-a reads from here on is a hand-over or new.
    const markKill = deliveries.length;
    await child.kill();
    const failed = await eventually(
      'the killed member removed by its session timeout',
      () => coordinatorEvents(broker.output(), groupId).find((e) => e.message === 'member failed, removing it from the group' && e.fields['memberId'] === cId),
      SESSION_MS + 20000,
    );
    assert.equal(failed.fields['why'], `session timeout (${SESSION_MS} ms) expired`);
    const one = await stableWith(admin, groupId, topic, ['kjs-a'], told);
    assert.deepEqual(one.get('kjs-a'), [0, 1, 2, 3]);
    await eventually('kjs-a re-read the uncommitted records', () => (deliveries.slice(markKill).filter((d) => d.v.startsWith('nocommit-')).length >= cPartitions.length * 10 ? true : undefined), 30000);
    for (const p of cPartitions) {
      const first = deliveries.slice(markKill).find((d) => d.p === p)!;
      assert.equal(first.o, hwC1[p], `partition ${p} (kjs-c's) resumed at its committed offset`);
    }
    await produce('d', 40);
    await allCommitted(admin, groupId, topic);
    await eventually('phase d read', () => (deliveries.filter((d) => d.v.startsWith('d-')).length >= 40 ? true : undefined), 30000);

    // No record skipped; the only records read twice are kjs-c's uncommitted ones.
    const hw = await highWatermarks(admin, topic);
    assert.deepEqual(hw, [80, 80, 80, 80]);
    const times = new Map<string, number>();
    for (const d of allDeliveries()) times.set(`${d.p}:${d.o}`, (times.get(`${d.p}:${d.o}`) ?? 0) + 1);
    for (let p = 0; p < 4; p++) {
      for (let o = 0; o < 80; o++) {
        const n = times.get(`${p}:${o}`) ?? 0;
        const uncommitted = cPartitions.includes(p) && o >= 60 && o < 70;
        assert.equal(n, uncommitted ? 2 : 1, `${p}:${o} read ${n} times${uncommitted ? ' (read by kjs-c, never committed: once more by kjs-a)' : ''}`);
      }
    }
    // Generations only grow.
    const gens = stableGenerations(broker.output(), groupId, topic).map((s) => s.generation);
    assert.deepEqual(gens, [...gens].sort((a, b) => a - b));
    assert.equal(new Set(gens).size, gens.length);
  } finally {
    await child?.kill();
    for (const c of local.values()) await c.disconnect().catch(() => {});
    await producer.disconnect();
    await admin.disconnect();
  }
});

/** Runs one member of `groupId` until it has read `count` records and committed them all, then disconnects. */
async function readAsGroup(admin: Admin, groupId: string, topic: string, count: number, name: string): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  const c = await startMember(name, topic, groupId, deliveries, new Map());
  try {
    await eventually(`${name} read ${count} records`, () => (deliveries.length >= count ? true : undefined), 30000);
    await allCommitted(admin, groupId, topic);
  } finally {
    await c.disconnect();
  }
  assert.equal(deliveries.length, count, `${name} read more than expected: ${JSON.stringify(deliveries)}`);
  return deliveries;
}

const firstOffsets = (ds: Delivery[], partitions: number): number[] => Array.from({ length: partitions }, (_, p) => ds.find((d) => d.p === p)?.o ?? -1);

test('KafkaJS: commit with metadata → disconnect → a new member of the group resumes exactly at the committed offset', { ...skipUnless('kafkajs'), timeout: 60000 }, async () => {
  const topic = uniqueTopic('grp-kjs-resume');
  const groupId = `g-${topic}`;
  const kafka = kafkaFor('kjs-resume');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ value: `r-${i}` })) });
  await producer.disconnect();
  try {
    const first = kafka.consumer({ groupId, sessionTimeout: SESSION_MS, heartbeatInterval: 300, maxWaitTimeInMs: 100 });
    const seen: number[] = [];
    await first.connect();
    await first.subscribe({ topics: [topic], fromBeginning: true });
    await first.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        seen.push(Number(message.offset));
        if (message.offset === '6') await first.commitOffsets([{ topic, partition: 0, offset: '7', metadata: 'kjs-meta' } as never]);
      },
    });
    await eventually('offset 7 committed', async () => ((await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions[0]!.offset === '7' ? true : undefined), 30000);
    await first.disconnect();
    assert.ok(seen.length >= 7, `first member read ${JSON.stringify(seen)}`);
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(t!.partitions, [{ partition: 0, offset: '7', metadata: 'kjs-meta' }]);
    assert.equal((await admin.describeGroups([groupId])).groups[0]!.state, 'Empty');
    const second = await readAsGroup(admin, groupId, topic, 13, 'kjs-resume-2');
    assert.deepEqual(
      second.map((d) => d.o),
      Array.from({ length: 13 }, (_, i) => 7 + i),
    );
  } finally {
    await admin.disconnect();
  }
});

test('KafkaJS replay: resetOffsets(earliest) and setOffsets (to offsets, to a timestamp) on an empty group make it re-read from there; refused while the group has members', { ...skipUnless('kafkajs'), timeout: 90000 }, async () => {
  const topic = uniqueTopic('grp-kjs-reset');
  const groupId = `g-${topic}`;
  const kafka = kafkaFor('kjs-reset');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  const t0 = Date.now() - 120000;
  // 5 records per partition at t0, 5 more per partition at t0 + 60 s.
  for (const [k, ts] of [[0, t0], [1, t0 + 60000]] as const) {
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `r${k}-${i}`, partition: i % 2, timestamp: String(ts) })) });
  }
  await producer.disconnect();
  try {
    // The group reads everything; while it has a member, KafkaJS refuses to reset it.
    const deliveries: Delivery[] = [];
    const running = await startMember('kjs-reset-1', topic, groupId, deliveries, new Map());
    try {
      await eventually('20 records read', () => (deliveries.length >= 20 ? true : undefined), 30000);
      assert.deepEqual(await allCommitted(admin, groupId, topic), [10, 10]);
      await assert.rejects(admin.resetOffsets({ groupId, topic, earliest: true }), /must have no running instances, current state: Stable/);
      assert.deepEqual(await committed(admin, groupId, topic), [10, 10]);
    } finally {
      await running.disconnect();
    }
    assert.equal((await admin.describeGroups([groupId])).groups[0]!.state, 'Empty');

    // Reset to earliest: the next member (fromBeginning: false would start at the end) re-reads all.
    await admin.resetOffsets({ groupId, topic, earliest: true });
    const afterReset = await committed(admin, groupId, topic);
    assert.deepEqual(afterReset, [-2, -2], 'KafkaJS commits EARLIEST (-2); the consumer resolves it');
    const replay = await readAsGroup(admin, groupId, topic, 20, 'kjs-reset-2');
    assert.deepEqual(firstOffsets(replay, 2), [0, 0]);
    assert.equal(new Set(replay.map((d) => `${d.p}:${d.o}`)).size, 20);

    // setOffsets (each KafkaJS reset joins the group once and waits out one 5 s fetch, so one call
    // does both): partition 0 to the first record at or after t0 + 60 s, partition 1 to offset 7.
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 60000);
    assert.deepEqual(byTime.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset)), [5, 5]);
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: byTime[0]!.offset }, { partition: 1, offset: '7' }] });
    assert.deepEqual(await committed(admin, groupId, topic), [5, 7]);
    const fromThere = await readAsGroup(admin, groupId, topic, 8, 'kjs-reset-3');
    assert.deepEqual(firstOffsets(fromThere, 2), [5, 7]);
    assert.deepEqual(fromThere.filter((d) => d.p === 0).map((d) => d.v), ['r1-0', 'r1-2', 'r1-4', 'r1-6', 'r1-8']);
    assert.deepEqual(fromThere.filter((d) => d.p === 1).map((d) => d.o), [7, 8, 9]);
  } finally {
    await admin.disconnect();
  }
});
