/**
 * The cluster's metadata plane on three combined nodes (real `strand broker` processes, each a
 * voter of the Raft metadata quorum and a broker): every broker registers and is listed by every
 * node with its client listener; admin operations work from any node (forwarded to the active
 * controller); a killed broker is fenced after `broker.session.timeout.ms` and its leaderships
 * move, and comes back unfenced after a restart; the active controller's death elects another
 * and admin operations keep working; a clean stop (SIGTERM) is a controlled shutdown that moves
 * leaderships before the process exits; a fourth, broker-only node joins as a Raft observer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { freePort, STRAND_BIN } from '../../src/testing/broker-process.js';
import { propertiesText, requestOnce, startCluster, TEST_TIMINGS, waitUntil, type LocalCluster } from '../../src/testing/cluster.js';

let cluster: LocalCluster;

before(async () => {
  cluster = await startCluster({ nodes: 3, overrides: { 'auto.create.topics.enable': 'false' } });
});

after(async () => {
  await cluster?.stop();
});

const ids = [1, 2, 3];

async function createTopicOn(nodeId: number, name: string, partitions: number, replicationFactor: number): Promise<{ errorCode: number; errorMessage: string | null }> {
  const n = cluster.node(nodeId);
  const r = await requestOnce<{ topics: Array<{ errorCode: number; errorMessage: string | null }> }>(n.host, n.port, ApiKey.CreateTopics, 7, {
    topics: [{ name, numPartitions: partitions, replicationFactor, assignments: [], configs: [] }],
    timeoutMs: 10000,
    validateOnly: false,
  }, 35000);
  return r.topics[0]!;
}

/** Restarts a node and waits until the controller has unfenced its new registration. */
async function restartAndWaitUnfenced(id: number): Promise<void> {
  const count = (): number => (cluster.node(id).output().match(/unfenced by the controller/g) ?? []).length;
  const before = count();
  await cluster.restart(id);
  await waitUntil(`node ${id} to be unfenced after its restart`, () => (count() > before ? true : null), 30000, 50);
}

async function brokersOn(nodeId: number): Promise<number[]> {
  const md = await cluster.metadata([], nodeId);
  return md.brokers.map((b) => b.nodeId).sort();
}

test('every node lists all three brokers, each with its own client listener, and the active controller', async () => {
  await cluster.waitUntilUp(3);
  const leader = await cluster.controllerLeader();
  for (const id of ids) {
    const md = await cluster.metadata([], id);
    assert.deepEqual(md.brokers.map((b) => b.nodeId).sort(), ids, `node ${id}`);
    for (const b of md.brokers) {
      const n = cluster.node(b.nodeId);
      assert.equal(b.port, n.port, `node ${id} gives broker ${b.nodeId}'s client port`);
      assert.equal(b.host, n.host);
    }
    assert.equal(md.controllerId, leader, `node ${id} names the active controller`);
    const dc = await requestOnce<{ errorCode: number; controllerId: number; brokers: Array<{ brokerId: number }> }>(cluster.node(id).host, cluster.node(id).port, ApiKey.DescribeCluster, 1, {
      includeClusterAuthorizedOperations: false,
      endpointType: 1,
    });
    assert.equal(dc.errorCode, ErrorCode.NONE);
    assert.deepEqual(dc.brokers.map((b) => b.brokerId).sort(), ids);
  }
});

test('CreateTopics with replication factor 3 from a node that is not the controller; too many replicas is INVALID_REPLICATION_FACTOR', async () => {
  const leader = await cluster.controllerLeader();
  const other = ids.find((i) => i !== leader)!;
  const r = await createTopicOn(other, 'meta-rf3', 3, 3);
  assert.equal(r.errorCode, ErrorCode.NONE, r.errorMessage ?? '');
  // Answered after the forwarding node applied it: its own Metadata has the topic at once.
  const md = await cluster.metadata(['meta-rf3'], other);
  const t = md.topics[0]!;
  assert.equal(t.errorCode, ErrorCode.NONE);
  assert.equal(t.partitions.length, 3);
  const leaders = new Set<number>();
  for (const p of t.partitions) {
    assert.deepEqual([...p.replicaNodes].sort(), ids);
    assert.deepEqual([...p.isrNodes].sort(), ids);
    assert.equal(p.leaderId, p.replicaNodes[0]);
    leaders.add(p.leaderId);
  }
  assert.equal(leaders.size, 3, 'the leaders of the three partitions are spread over the three brokers');
  for (const id of ids) await waitUntil(`node ${id} to see meta-rf3`, async () => ((await cluster.metadata(['meta-rf3'], id)).topics[0]!.errorCode === ErrorCode.NONE ? true : null), 10000);
  const again = await createTopicOn(ids.find((i) => i !== other)!, 'meta-rf3', 1, 1);
  assert.equal(again.errorCode, ErrorCode.TOPIC_ALREADY_EXISTS);
  const tooMany = await createTopicOn(other, 'meta-rf4', 1, 4);
  assert.equal(tooMany.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
});

test('one topic created at once from every node with different partition counts: exactly one creation wins everywhere, and only it is logged', async () => {
  const rounds = 4;
  const createdLines = (name: string): string[] => ids.flatMap((id) => cluster.node(id).output().split('\n').filter((l) => l.includes(' created topic ') && l.includes(` topic=${name} `)));
  for (let round = 0; round < rounds; round++) {
    const name = `meta-race-${round}`;
    // Node i asks for i partitions: which creation won shows in the topic's partition count.
    const answers = await Promise.all(ids.map((id) => createTopicOn(id, name, id, 3)));
    const won = answers.flatMap((a, i) => (a.errorCode === ErrorCode.NONE ? [ids[i]!] : []));
    assert.equal(won.length, 1, `round ${round}: exactly one creation succeeds: ${JSON.stringify(answers)}`);
    for (const a of answers) if (a.errorCode !== ErrorCode.NONE) assert.equal(a.errorCode, ErrorCode.TOPIC_ALREADY_EXISTS, JSON.stringify(a));
    for (const id of ids) {
      const count = await waitUntil(`node ${id} to see ${name}`, async () => {
        const t = (await cluster.metadata([name], id)).topics[0];
        return t?.errorCode === ErrorCode.NONE ? t.partitions.length : null;
      }, 10000);
      assert.equal(count, won[0], `node ${id} has the winner's partition count`);
    }
    // A creation decided on a stale image and run again is not logged as a topic that was created.
    const lines = createdLines(name);
    assert.equal(lines.length, 1, `one "created topic" line for ${name}:\n${lines.join('\n')}`);
    assert.match(lines[0]!, new RegExp(` partitions=${won[0]} `));
  }
});

test('a topic config changed on one node is visible on every node', async () => {
  const r = await createTopicOn(1, 'meta-configs', 1, 3);
  assert.equal(r.errorCode, ErrorCode.NONE, r.errorMessage ?? '');
  const n3 = cluster.node(3);
  const altered = await requestOnce<{ responses: Array<{ errorCode: number; errorMessage: string | null }> }>(n3.host, n3.port, ApiKey.IncrementalAlterConfigs, 1, {
    resources: [{ resourceType: 2, resourceName: 'meta-configs', configs: [{ name: 'retention.ms', configOperation: 0, value: '123456' }] }],
    validateOnly: false,
  }, 35000);
  assert.equal(altered.responses[0]!.errorCode, ErrorCode.NONE, altered.responses[0]!.errorMessage ?? '');
  for (const id of ids) {
    const n = cluster.node(id);
    await waitUntil(`node ${id} to show retention.ms=123456`, async () => {
      const d = await requestOnce<{ results: Array<{ errorCode: number; configs: Array<{ name: string; value: string | null }> }> }>(n.host, n.port, ApiKey.DescribeConfigs, 4, {
        resources: [{ resourceType: 2, resourceName: 'meta-configs', configurationKeys: ['retention.ms'] }],
        includeSynonyms: false,
        includeDocumentation: false,
      });
      return d.results[0]?.configs.find((c) => c.name === 'retention.ms')?.value === '123456' ? true : null;
    }, 10000);
  }
});

test('kill -9 of a broker: fenced after the session timeout, its leaderships move, Metadata drops it; a restart unfences it', async () => {
  const controller = await cluster.controllerLeader();
  const victim = ids.find((i) => i !== controller)!;
  const before = await cluster.metadata(['meta-rf3']);
  const led = before.topics[0]!.partitions.filter((p) => p.leaderId === victim).map((p) => p.partitionIndex);
  assert(led.length > 0, `broker ${victim} leads a partition of meta-rf3`);
  const killedAt = Date.now();
  await cluster.kill(victim);
  const survivor = ids.find((i) => i !== victim)!;
  await waitUntil(`broker ${victim} to leave Metadata`, async () => (!(await brokersOn(survivor)).includes(victim) ? true : null), 20000, 100);
  const fencedAfter = Date.now() - killedAt;
  // broker.session.timeout.ms is 3000 in the test timings.
  assert(fencedAfter >= 2500, `fenced after ${fencedAfter} ms, before the session timeout`);
  const md = await cluster.metadata(['meta-rf3'], survivor);
  for (const p of md.topics[0]!.partitions) {
    assert.notEqual(p.leaderId, victim, `partition ${p.partitionIndex} has a new leader`);
    assert(p.leaderId >= 0);
    assert(!p.isrNodes.includes(victim), `broker ${victim} left the ISR of partition ${p.partitionIndex}`);
    if (led.includes(p.partitionIndex)) assert(p.leaderEpoch > before.topics[0]!.partitions[p.partitionIndex]!.leaderEpoch);
  }
  await restartAndWaitUnfenced(victim);
  for (const id of ids) await waitUntil(`node ${id} to list broker ${victim} again`, async () => ((await brokersOn(id)).includes(victim) ? true : null), 20000);
});

test('kill -9 of the active controller: another one is elected and admin operations work from every node', async () => {
  const old = await cluster.controllerLeader();
  await cluster.kill(old);
  const next = await cluster.controllerLeader({ not: old, timeoutMs: 20000 });
  assert.notEqual(next, old);
  const alive = ids.filter((i) => i !== old);
  for (const id of alive) {
    const r = await createTopicOn(id, `meta-after-failover-${id}`, 2, 2);
    assert.equal(r.errorCode, ErrorCode.NONE, `node ${id}: ${r.errorMessage ?? ''}`);
  }
  for (const id of alive) await waitUntil(`node ${id} to name controller ${next}`, async () => ((await cluster.metadata([], id)).controllerId === next ? true : null), 10000);
  await restartAndWaitUnfenced(old);
  for (const id of ids) await waitUntil(`node ${id} to list all three brokers`, async () => ((await brokersOn(id)).length === 3 ? true : null), 20000);
});

test('a clean stop is a controlled shutdown: leaderships move before the broker exits', async () => {
  await waitUntil('every node in Metadata', async () => ((await brokersOn(1)).length === 3 ? true : null), 20000);
  const r = await createTopicOn(1, 'meta-controlled', 3, 3);
  assert.equal(r.errorCode, ErrorCode.NONE, r.errorMessage ?? '');
  await cluster.waitForTopic('meta-controlled', 3);
  const md = await cluster.metadata(['meta-controlled']);
  const victim = md.topics[0]!.partitions[0]!.leaderId;
  const code = await cluster.stopNode(victim);
  assert.equal(code, 0);
  // The controller confirmed before the process exited (not a session timeout afterwards).
  assert.match(cluster.node(victim).output(), /controlled shutdown: the controller moved this broker's leaderships/);
  const survivor = ids.find((i) => i !== victim)!;
  const after = await waitUntil('the leaderships to have moved', async () => {
    const m = await cluster.metadata(['meta-controlled'], survivor);
    const ps = m.topics[0]!.partitions;
    return ps.every((p) => p.leaderId !== victim && p.leaderId >= 0 && !p.isrNodes.includes(victim)) ? m : null;
  }, 10000, 50);
  assert(!after.brokers.some((b) => b.nodeId === victim), 'the stopped broker is fenced');
  await restartAndWaitUnfenced(victim);
});

test('a broker-only node (process.roles=broker) follows the metadata log as an observer: registers, forwards admin operations, is fenced when it stops', async (t) => {
  const port = await freePort();
  const clusterId = (await cluster.metadata([], 1)).clusterId!;
  const dir = mkdtempSync(join(tmpdir(), 'strand-observer-'));
  const configFile = join(dir, 'server.properties');
  writeFileSync(
    configFile,
    propertiesText(
      {
        'process.roles': 'broker',
        'node.id': '4',
        'cluster.id': clusterId,
        'controller.quorum.voters': ids.map((i) => `${i}@${cluster.node(i).host}:${cluster.node(i).controllerPort}`).join(','),
        listeners: `PLAINTEXT://127.0.0.1:${port}`,
        'log.dirs': join(dir, 'data'),
        ...TEST_TIMINGS,
      },
      'a broker-only node',
    ),
  );
  const child = spawn(process.execPath, [STRAND_BIN, 'broker', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    await waitUntil('the observer to be unfenced', () => (/unfenced by the controller/.test(out) ? true : null), 30000, 50);
    for (const id of ids) await waitUntil(`node ${id} to list broker 4`, async () => ((await brokersOn(id)).includes(4) ? true : null), 10000);
    // It answers Metadata from the quorum's image: all four brokers (once it has applied its own unfencing).
    const md = await waitUntil('the observer to list all four brokers', async () => {
      const m = await requestOnce<{ brokers: Array<{ nodeId: number }>; controllerId: number }>('127.0.0.1', port, ApiKey.Metadata, 12, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
      return m.brokers.length === 4 ? m : null;
    }, 10000);
    assert.deepEqual(md.brokers.map((b) => b.nodeId).sort(), [1, 2, 3, 4]);
    assert(ids.includes(md.controllerId), `the controller is a voter, not ${md.controllerId}`);
    // Admin operations from it are forwarded to the active controller.
    const created = await requestOnce<{ topics: Array<{ errorCode: number; errorMessage: string | null }> }>('127.0.0.1', port, ApiKey.CreateTopics, 7, {
      topics: [{ name: 'meta-from-observer', numPartitions: 4, replicationFactor: 2, assignments: [], configs: [] }],
      timeoutMs: 10000,
      validateOnly: false,
    }, 35000);
    assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE, created.topics[0]!.errorMessage ?? '');
    // CreateTopics answers once the controller has committed the topic; node 1 applies it from the
    // metadata log a moment later (as in Kafka, metadata reaches brokers asynchronously).
    const topic = await waitUntil('node 1 to show meta-from-observer with its 4 partitions', async () => {
      const t = (await cluster.metadata(['meta-from-observer'], 1)).topics[0];
      return t !== undefined && t.errorCode === ErrorCode.NONE && t.partitions.length === 4 ? t : null;
    }, 10000);
    assert(topic.partitions.some((p) => p.replicaNodes.includes(4)), 'replicas are placed on the observer broker too');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(out, /controlled shutdown: the controller moved this broker's leaderships/);
    await waitUntil('broker 4 to leave Metadata', async () => (!(await brokersOn(1)).includes(4) ? true : null), 10000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- observer output ---\n${out.slice(-4000)}`);
  }
});
