/**
 * confluent-kafka-python 1.7.0 (librdkafka 2.0.2) consumer groups against a broker process, each
 * member its own python process (issue 3 acceptance):
 * - An eager (range) group of 3 on a 4-partition topic: disjoint assignments owning every
 *   partition (DescribeGroups, the members' on_assign/on_revoke, the coordinator's log), each
 *   record read once by its owner; a member closing cleanly (LeaveGroup) and a member SIGKILLed
 *   with read-but-uncommitted records both hand their partitions over, the killed one after its
 *   session timeout, and the group goes on from the committed offsets with no record skipped.
 * - cooperative-sticky: a member joining costs the existing member only the partitions it hands
 *   over (on_revoke is incremental, never everything; every "group is stable" line keeps its
 *   partitions), and a member leaving gives its partitions to the other without any revoke.
 * - Static membership (group.instance.id): a static member that restarts within its session
 *   timeout gets its partitions back with no rebalance (the coordinator logs the rejoin at the
 *   same generation, and nothing else happens to the group); a second process with the same
 *   instance id fences the first (FENCED_INSTANCE_ID, fatal in librdkafka).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, AssignerProtocol, type Admin } from 'kafkajs';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { skipUnless, uniqueTopic, eventually } from './helpers.js';
import {
  assertPartitioned,
  coordinatorEvents,
  memberIdOf,
  rdkafkaOwned,
  rdkafkaRecords,
  spawnRdkafkaMember,
  stableGenerations,
  type JsonLinesProcess,
  type RdkafkaMemberEnv,
} from './groups-support.js';

const SESSION_MS = 3000;
let broker: BrokerProcess;
let admin: Admin;
let kafka: Kafka;

before(async () => {
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0, 'group.min.session.timeout.ms': 1000 } });
  kafka = new Kafka({ clientId: 'rdk-admin', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  await admin.disconnect();
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
});

async function createTopic(prefix: string, partitions: number): Promise<string> {
  const topic = uniqueTopic(prefix);
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  return topic;
}

async function produce(topic: string, prefix: string, n: number, partitions = 4): Promise<void> {
  const p = kafka.producer();
  await p.connect();
  await p.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ value: `${prefix}-${i}`, partition: i % partitions })) });
  await p.disconnect();
}

async function describe(groupId: string, topic: string): Promise<{ state: string; assignment: Map<string, number[]> }> {
  const g = (await admin.describeGroups([groupId])).groups[0]!;
  const assignment = new Map<string, number[]>();
  for (const m of g.members) {
    const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
    assignment.set(m.memberId, ((a?.assignment ?? {})[topic] ?? []).slice().sort((x, y) => x - y));
  }
  return { state: g.state, assignment };
}

/** Waits for a Stable group of exactly these members (by client / instance id) that partition the topic, each member's callbacks agreeing. */
async function stableWith(groupId: string, topic: string, members: ReadonlyMap<string, JsonLinesProcess>, partitions = 4): Promise<Map<string, number[]>> {
  return eventually(
    `group ${groupId} stable with ${[...members.keys()].join(', ')}`,
    async () => {
      const d = await describe(groupId, topic);
      if (d.state !== 'Stable' || d.assignment.size !== members.size) return undefined;
      const byName = new Map<string, number[]>();
      for (const [name, proc] of members) {
        const id = memberIdOf(d.assignment.keys(), name);
        if (id === undefined || rdkafkaOwned(proc).join() !== d.assignment.get(id)!.join()) return undefined;
        byName.set(name, d.assignment.get(id)!);
      }
      assertPartitioned(byName, partitions, 'DescribeGroups');
      return byName;
    },
    30000,
  );
}

async function committed(groupId: string, topic: string): Promise<number[]> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return t!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
}

async function allCommitted(groupId: string, topic: string): Promise<number[]> {
  return eventually(
    'every partition committed up to its high watermark',
    async () => {
      const c = await committed(groupId, topic);
      const hw = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map((p) => Number(p.high));
      return c.join() === hw.join() ? hw : undefined;
    },
    30000,
  );
}

const env = (topic: string, groupId: string, extra: Partial<RdkafkaMemberEnv> = {}): RdkafkaMemberEnv => ({ BOOTSTRAP: broker.bootstrap, TOPIC: topic, GROUP: groupId, SESSION_MS, ...extra });

interface Read {
  member: string;
  p: number;
  o: number;
  v: string;
}
const readsOf = (procs: Iterable<JsonLinesProcess>): Read[] => [...procs].flatMap((proc) => rdkafkaRecords(proc).map(([p, o, v]) => ({ member: proc.name, p, o, v })));

test('librdkafka group of 3 (range) on 4 partitions: each record once, disjoint full assignments; a closing member and a SIGKILLed one hand over from the committed offsets', { ...skipUnless('confluent-kafka', 'kafkajs'), timeout: 120000 }, async () => {
  const topic = await createTopic('grp-rdk3', 4);
  const groupId = `g-${topic}`;
  const procs = new Map<string, JsonLinesProcess>();
  const everyone: JsonLinesProcess[] = [];
  try {
    for (const name of ['rdk-a', 'rdk-b', 'rdk-c']) {
      const p = spawnRdkafkaMember(name, env(topic, groupId, { NOCOMMIT: name === 'rdk-c' }));
      procs.set(name, p);
      everyone.push(p);
    }
    const three = await stableWith(groupId, topic, procs);
    const gen3 = stableGenerations(broker.output(), groupId, topic).at(-1)!;
    assert.equal(gen3.assignment.size, 3, gen3.line);
    assertPartitioned(gen3.assignment, 4, 'log');
    await produce(topic, 'a', 100);
    await allCommitted(groupId, topic);
    await eventually('phase a read', () => (readsOf(everyone).length >= 100 ? true : undefined), 30000);
    const readA = readsOf(everyone);
    assert.equal(readA.length, 100, 'each record exactly once');
    for (const d of readA) assert.ok(three.get(d.member)!.includes(d.p), `${d.member} read partition ${d.p} it does not own`);

    // rdk-b closes (LeaveGroup): the others take its partitions from offset 25.
    const bId = memberIdOf(gen3.assignment.keys(), 'rdk-b')!;
    await procs.get('rdk-b')!.terminate();
    procs.delete('rdk-b');
    const two = await stableWith(groupId, topic, procs);
    assert.deepEqual(
      coordinatorEvents(broker.output(), groupId).filter((e) => e.message === 'member left the group').map((e) => e.fields['memberId']),
      [bId],
    );
    const markB = readsOf(everyone).length;
    await produce(topic, 'b', 100);
    assert.deepEqual(await allCommitted(groupId, topic), [50, 50, 50, 50]);
    await eventually('phase b read', () => (readsOf(everyone).length >= markB + 100 ? true : undefined), 30000);
    const readB = readsOf(everyone).filter((d) => d.v.startsWith('b-'));
    assert.equal(readB.length, 100, 'each record exactly once');
    for (const d of readB) assert.ok(two.get(d.member)!.includes(d.p), `${d.member} read partition ${d.p} it does not own`);

    // rdk-c reads records it does not commit, then is SIGKILLed.
    const cPartitions = two.get('rdk-c')!;
    const cId = memberIdOf((await describe(groupId, topic)).assignment.keys(), 'rdk-c')!;
    await produce(topic, 'nocommit', 40);
    await eventually('the uncommitted records read', () => (readsOf(everyone).filter((d) => d.v.startsWith('nocommit-')).length >= 40 ? true : undefined), 30000);
    await procs.get('rdk-c')!.kill();
    procs.delete('rdk-c');
    const failed = await eventually(
      'the killed member removed by its session timeout',
      () => coordinatorEvents(broker.output(), groupId).find((e) => e.message === 'member failed, removing it from the group' && e.fields['memberId'] === cId),
      SESSION_MS + 20000,
    );
    assert.equal(failed.fields['why'], `session timeout (${SESSION_MS} ms) expired`);
    const one = await stableWith(groupId, topic, procs);
    assert.deepEqual(one.get('rdk-a'), [0, 1, 2, 3]);
    await produce(topic, 'd', 40);
    assert.deepEqual(await allCommitted(groupId, topic), [70, 70, 70, 70]);
    const times = new Map<string, number>();
    for (const d of readsOf(everyone)) times.set(`${d.p}:${d.o}`, (times.get(`${d.p}:${d.o}`) ?? 0) + 1);
    for (let p = 0; p < 4; p++) {
      for (let o = 0; o < 70; o++) {
        const n = times.get(`${p}:${o}`) ?? 0;
        const uncommitted = cPartitions.includes(p) && o >= 50 && o < 60;
        assert.equal(n, uncommitted ? 2 : 1, `${p}:${o} read ${n} times${uncommitted ? ' (read by rdk-c, never committed: once more by rdk-a)' : ''}`);
      }
    }
    // rdk-a picked up rdk-c's partitions exactly at the committed offset 50.
    const aReads = readsOf([everyone[0]!]);
    for (const p of cPartitions) assert.equal(aReads.find((d) => d.p === p)!.o, 50, `partition ${p} resumed at its committed offset`);
    const gens = stableGenerations(broker.output(), groupId, topic).map((s) => s.generation);
    assert.deepEqual(gens, [...gens].sort((a, b) => a - b));
  } finally {
    for (const p of everyone) await p.kill();
  }
});

test('librdkafka cooperative-sticky: a joining member takes partitions incrementally (the existing member keeps its own); a leaving one hands over with no revoke', { ...skipUnless('confluent-kafka', 'kafkajs'), timeout: 120000 }, async () => {
  const topic = await createTopic('grp-coop', 4);
  const groupId = `g-${topic}`;
  const everyone: JsonLinesProcess[] = [];
  try {
    const a = spawnRdkafkaMember('coop-a', env(topic, groupId, { STRATEGY: 'cooperative-sticky' }));
    everyone.push(a);
    await stableWith(groupId, topic, new Map([['coop-a', a]]));
    assert.deepEqual(a.events.filter((x) => x['e'] === 'assign' || x['e'] === 'revoke'), [{ e: 'assign', p: [0, 1, 2, 3] }]);
    await produce(topic, 'a', 40);
    await allCommitted(groupId, topic);
    const before = stableGenerations(broker.output(), groupId, topic).length;
    const aId = memberIdOf(stableGenerations(broker.output(), groupId, topic).at(-1)!.assignment.keys(), 'coop-a')!;

    const b = spawnRdkafkaMember('coop-b', env(topic, groupId, { STRATEGY: 'cooperative-sticky' }));
    everyone.push(b);
    const two = await stableWith(groupId, topic, new Map([['coop-a', a], ['coop-b', b]]));
    assert.equal(two.get('coop-a')!.length, 2);
    assert.equal(two.get('coop-b')!.length, 2);
    // coop-a only ever lost what coop-b got: one incremental revoke, never all of its partitions.
    const aCallbacks = a.events.filter((x) => x['e'] === 'assign' || x['e'] === 'revoke').slice(1);
    const revoked = aCallbacks.filter((x) => x['e'] === 'revoke').flatMap((x) => x['p'] as number[]);
    assert.deepEqual(revoked.sort(), two.get('coop-b'), `coop-a callbacks: ${JSON.stringify(aCallbacks)}`);
    assert.ok(aCallbacks.every((x) => (x['p'] as number[]).length < 4), JSON.stringify(aCallbacks));
    // The coordinator's view: two rebalances (the second hands the revoked partitions to coop-b), coop-a never without its kept partitions.
    const after = stableGenerations(broker.output(), groupId, topic).slice(before);
    assert.ok(after.length >= 2, `expected the cooperative two-step rebalance:\n${after.map((s) => s.line).join('\n')}`);
    for (const s of after) assert.deepEqual(s.assignment.get(aId), two.get('coop-a'), `coop-a keeps its partitions in every generation: ${s.line}`);
    assert.deepEqual(after[0]!.assignment.get(memberIdOf(after[0]!.assignment.keys(), 'coop-b')!), [], 'first step: the moving partitions are unowned');
    assertPartitioned(after.at(-1)!.assignment, 4, 'log');

    await produce(topic, 'b', 40);
    assert.deepEqual(await allCommitted(groupId, topic), [20, 20, 20, 20]);
    await eventually('phase b read', () => (readsOf(everyone).length >= 80 ? true : undefined), 30000);
    const reads = readsOf(everyone);
    assert.equal(new Set(reads.map((d) => `${d.p}:${d.o}`)).size, 80);
    assert.equal(reads.length, 80, 'each record exactly once');

    // coop-b closes: coop-a is assigned its partitions, revoking nothing.
    const callbacksBefore = a.events.length;
    await b.terminate();
    await stableWith(groupId, topic, new Map([['coop-a', a]]));
    const late = a.events.slice(callbacksBefore).filter((x) => x['e'] === 'assign' || x['e'] === 'revoke');
    assert.deepEqual(late, [{ e: 'assign', p: two.get('coop-b') }]);
  } finally {
    for (const p of everyone) await p.kill();
  }
});

// cooperative-sticky: the restarted member's subscription no longer lists owned partitions, so its
// metadata differs from the stored one; like Kafka, only a change of the group's protocol rebalances.
for (const strategy of ['range', 'cooperative-sticky'] as const) {
test(`librdkafka static membership (${strategy}): a restart within the session timeout rejoins with no rebalance; a duplicate instance id fences the old process`, { ...skipUnless('confluent-kafka', 'kafkajs'), timeout: 120000 }, async () => {
  const topic = await createTopic('grp-static', 4);
  const groupId = `g-${topic}`;
  const everyone: JsonLinesProcess[] = [];
  const staticEnv = (instance: string) => env(topic, groupId, { INSTANCE: instance, SESSION_MS: 10000, STRATEGY: strategy });
  try {
    const s1 = spawnRdkafkaMember('static-1', staticEnv('inst-1'));
    const s2 = spawnRdkafkaMember('static-2', staticEnv('inst-2'));
    everyone.push(s1, s2);
    const assigned = await stableWith(groupId, topic, new Map([['inst-1', s1], ['inst-2', s2]]));
    const stable = stableGenerations(broker.output(), groupId, topic).at(-1)!;
    const mark = coordinatorEvents(broker.output(), groupId).length;
    // (Depending on who joined first, inst-2 may have revoked during the group's formation: count from here.)
    const s2Mark = s2.events.length;
    await produce(topic, 'a', 40);
    assert.deepEqual(await allCommitted(groupId, topic), [10, 10, 10, 10]);

    // inst-1 restarts: a static member's close sends no LeaveGroup, and its rejoin is answered from the stored assignment.
    await s1.terminate();
    const s1b = spawnRdkafkaMember('static-1b', staticEnv('inst-1'));
    everyone.push(s1b);
    await eventually('the restarted static member assigned', () => (rdkafkaOwned(s1b).length > 0 ? true : undefined), 30000);
    assert.deepEqual(rdkafkaOwned(s1b), assigned.get('inst-1'));
    const rejoin = coordinatorEvents(broker.output(), groupId).slice(mark);
    assert.deepEqual(
      rejoin.map((e) => e.message),
      ['static member rejoined: new member id, same assignment, no rebalance'],
      `the restart must not rebalance:\n${rejoin.map((e) => e.line).join('\n')}`,
    );
    assert.equal(rejoin[0]!.fields['groupInstanceId'], 'inst-1');
    assert.equal(Number(rejoin[0]!.fields['generation']), stable.generation);
    const newId = rejoin[0]!.fields['memberId']!;
    assert.equal(rejoin[0]!.fields['oldMemberId'], memberIdOf(stable.assignment.keys(), 'inst-1'));
    const d = await describe(groupId, topic);
    assert.equal(d.state, 'Stable');
    assert.deepEqual(d.assignment.get(newId), assigned.get('inst-1'));
    // inst-2 kept its partitions throughout; the restarted member goes on from the committed offsets.
    assert.deepEqual(s2.events.slice(s2Mark).filter((x) => x['e'] === 'revoke' || x['e'] === 'assign'), []);
    await produce(topic, 'b', 40);
    assert.deepEqual(await allCommitted(groupId, topic), [20, 20, 20, 20]);
    const s1bReads = readsOf([s1b]);
    for (const p of assigned.get('inst-1')!) assert.equal(s1bReads.find((r) => r.p === p)?.o, 10, `partition ${p} resumed at its committed offset`);
    assert.ok(s1bReads.every((r) => r.v.startsWith('b-')), 'the restarted member re-read nothing');

    // A second process with instance id inst-1 takes over; the running one is fenced.
    const mark2 = coordinatorEvents(broker.output(), groupId).length;
    const s1c = spawnRdkafkaMember('static-1c', staticEnv('inst-1'));
    everyone.push(s1c);
    await eventually('the old inst-1 fenced', () => s1b.events.find((x) => x['e'] === 'error' && x['fatal'] === true), 30000).catch((e: Error) => {
      throw new Error(`${e.message}\n${s1b.describe()}\n${s1c.describe()}\n${coordinatorEvents(broker.output(), groupId).slice(mark2).map((x) => x.line).join('\n')}`);
    });
    const fenced = s1b.events.find((x) => x['e'] === 'error' && x['fatal'] === true)!;
    assert.match(String(fenced['str']), /fenced/i, JSON.stringify(fenced));
    await eventually('the fenced process exits', () => (s1b.running ? undefined : true), 30000);
    await eventually('the new inst-1 assigned', () => (rdkafkaOwned(s1c).length > 0 ? true : undefined), 30000);
    assert.deepEqual(rdkafkaOwned(s1c), assigned.get('inst-1'));
    const takeover = coordinatorEvents(broker.output(), groupId).slice(mark2);
    assert.deepEqual(takeover.map((e) => e.message), ['static member rejoined: new member id, same assignment, no rebalance'], takeover.map((e) => e.line).join('\n'));
    assert.equal(takeover[0]!.fields['oldMemberId'], newId);
    assert.equal(Number(takeover[0]!.fields['generation']), stable.generation);
  } finally {
    for (const p of everyone) await p.kill();
  }
});
}
