/**
 * The cluster harness (src/testing/cluster.ts): three combined nodes as real processes, on
 * loopback and on Linux network namespaces. They form one cluster (every node lists the three
 * brokers, one quorum leader); kill -9 and restart of a node; isolate() cuts exactly one node's
 * links, in both directions, and heal() restores them; stop() shuts every node down cleanly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netnsUnavailable, startCluster, waitUntil } from '../../src/testing/cluster.js';

const netns = netnsUnavailable();

test('harness on loopback: three nodes form a cluster; kill -9 and restart a node; clean stop', { timeout: 120000 }, async (t) => {
  const cluster = await startCluster({ nodes: 3 });
  t.after(() => cluster.destroy());
  const md = await cluster.metadata();
  assert.deepEqual(md.brokers.map((b) => b.nodeId).sort(), [1, 2, 3]);
  assert.deepEqual(md.brokers.map((b) => `${b.host}:${b.port}`).sort(), cluster.nodes.map((n) => n.bootstrap).sort());
  const leader = await cluster.controllerLeader();
  assert.ok([1, 2, 3].includes(leader));

  const victim = leader === 1 ? 2 : 1;
  await cluster.kill(victim);
  assert.equal(cluster.isRunning(victim), false);
  assert.match(cluster.node(victim).output(), /node \d exited by SIGKILL/);
  await cluster.restart(victim, { waitForBrokers: 3 });
  assert.equal(cluster.isRunning(victim), true);

  const codes = await cluster.stop();
  assert.deepEqual(codes, { 1: 0, 2: 0, 3: 0 }, cluster.nodes.map((n) => `--- node ${n.id} ---\n${n.output().slice(-2000)}`).join('\n'));
});

test('harness on network namespaces: isolate() cuts one node off both ways, heal() restores it', { skip: netns ?? undefined, timeout: 120000 }, async (t) => {
  const cluster = await startCluster({ nodes: 3, network: 'netns' });
  t.after(() => cluster.destroy());
  assert.deepEqual(cluster.nodes.map((n) => n.port), [9092, 9092, 9092]);
  assert.equal(new Set(cluster.nodes.map((n) => n.host)).size, 3);
  assert.equal(await cluster.canReach(1, 3), true);
  assert.equal(await cluster.canReach(3, 2), true);

  cluster.isolate(3);
  assert.equal(cluster.isIsolated(3), true);
  assert.deepEqual(cluster.reachableNodes().map((n) => n.id), [1, 2]);
  assert.equal(await cluster.canReach(1, 3), false, 'node 1 cannot reach the isolated node');
  assert.equal(await cluster.canReach(3, 1), false, 'the isolated node cannot reach node 1');
  assert.equal(await cluster.canReach(1, 2), true, 'the others still reach each other');
  // The majority side keeps (or elects) a quorum leader.
  assert.notEqual(await cluster.controllerLeader({ not: 3 }), 3);

  cluster.heal(3);
  // Links come back within about a second (ARP entries that failed meanwhile are resolved again).
  await waitUntil('node 1 to reach node 3 again', async () => ((await cluster.canReach(1, 3)) ? true : null), 10000);
  await waitUntil('node 3 to reach node 2 again', async () => ((await cluster.canReach(3, 2)) ? true : null), 10000);
  // Back in the cluster: node 3 answers Metadata with all three brokers again.
  await waitUntil('node 3 to list three brokers', async () => ((await cluster.metadata([], 3)).brokers.length === 3 ? true : null), 30000);

  const codes = await cluster.stop();
  assert.deepEqual(codes, { 1: 0, 2: 0, 3: 0 });
});
