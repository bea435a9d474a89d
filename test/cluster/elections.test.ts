/**
 * AlterPartition (api 56) on the active controller's listener, ElectLeaders (43) and partition
 * reassignment (45, 46) through the admin client, on three combined nodes (real processes) that
 * replicate their partitions (the leaders send their own AlterPartition requests too): stale
 * epochs are refused with Kafka's errors and a good change commits; a restarted preferred
 * replica gets leadership back by a preferred election once it is in sync; a reassignment to a
 * dead broker stays in progress until cancelled, one to live brokers completes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Admin } from '../../src/client/admin.js';
import { Kafka } from '../../src/client/kafka.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { requestOnce, startCluster, waitUntil, type LocalCluster, type PartitionState } from '../../src/testing/cluster.js';

let cluster: LocalCluster;
let admin: Admin;

before(async () => {
  cluster = await startCluster({ nodes: 3 });
  await cluster.waitUntilUp(3);
  admin = new Kafka({ brokers: cluster.bootstrap.split(','), clientId: 'elections-test' }).admin();
  await admin.connect();
});

after(async () => {
  await admin?.close();
  await cluster?.stop();
});

const ids = [1, 2, 3];

interface AlterAnswer {
  errorCode: number;
  topics: Array<{ partitions: Array<{ errorCode: number; leaderId: number; leaderEpoch: number; isr: number[]; partitionEpoch: number }> }>;
}

/** AlterPartition v2 to whichever node is the active controller (NOT_CONTROLLER from the others). */
async function alterPartition(topicId: string, partition: number, leaderId: number, leaderEpoch: number, partitionEpoch: number, newIsr: number[]): Promise<{ errorCode: number; leaderId: number; leaderEpoch: number; isr: number[]; partitionEpoch: number }> {
  return waitUntil('an AlterPartition answer from the active controller', async () => {
    for (const n of cluster.reachableNodes()) {
      const r = await requestOnce<AlterAnswer>(n.host, n.controllerPort, ApiKey.AlterPartition, 2, {
        brokerId: leaderId,
        brokerEpoch: -1,
        topics: [{ topicName: '', topicId, partitions: [{ partitionIndex: partition, leaderEpoch, newIsr, newIsrWithEpochs: [], leaderRecoveryState: 0, partitionEpoch }] }],
      }).catch(() => null);
      if (r === null || r.errorCode === ErrorCode.NOT_CONTROLLER) continue;
      assert.equal(r.errorCode, ErrorCode.NONE);
      return r.topics[0]!.partitions[0]!;
    }
    return null;
  }, 20000);
}

/**
 * AlterPartition as the leader sends it, with the partition epoch the controller has: Metadata
 * does not carry partition epochs, so the probe walks up from `from` past INVALID_UPDATE_VERSION.
 */
async function alterAtCurrentEpoch(topicId: string, partition: number, leaderId: number, leaderEpoch: number, newIsr: number[], from = 0) {
  for (let epoch = from; epoch < from + 30; epoch++) {
    const r = await alterPartition(topicId, partition, leaderId, leaderEpoch, epoch, newIsr);
    if (r.errorCode !== ErrorCode.INVALID_UPDATE_VERSION) return r;
  }
  throw new Error('no partition epoch accepted');
}

/** Restarts a node and waits until the controller has unfenced its new registration. */
async function restartAndWaitUnfenced(id: number): Promise<void> {
  const count = (): number => (cluster.node(id).output().match(/unfenced by the controller/g) ?? []).length;
  const before = count();
  await cluster.restart(id);
  await waitUntil(`node ${id} to be unfenced after its restart`, () => (count() > before ? true : null), 30000, 50);
}

/** Every node running (a failed test may have left one killed). */
async function allRunning(): Promise<void> {
  for (const n of cluster.nodes) if (!cluster.isRunning(n.id)) await restartAndWaitUnfenced(n.id);
}

async function topicId(name: string): Promise<string> {
  return (await cluster.metadata([name])).topics[0]!.topicId;
}

/** The partition as node `node`'s Metadata answers it. */
async function stateOn(node: number, topic: string, partition: number): Promise<PartitionState | null> {
  const md = await cluster.metadata([topic], node);
  const p = md.topics[0]?.partitions.find((x) => x.partitionIndex === partition);
  return p === undefined ? null : { topic, partition, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes, isr: p.isrNodes };
}

test('AlterPartition: stale leader and partition epochs, a non-leader, a foreign or fenced replica are refused; a change at the current epochs commits', async () => {
  await allRunning();
  await cluster.createTopic('el-alter', { partitions: 1, replicationFactor: 3 });
  const id = await topicId('el-alter');
  const s = (await cluster.partition('el-alter', 0))!;
  const others = s.replicas.filter((b) => b !== s.leader);
  // The leader epoch is checked first, then who asks, then the partition epoch.
  assert.equal((await alterPartition(id, 0, s.leader, s.leaderEpoch + 1, 0, [s.leader])).errorCode, ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal((await alterPartition(id, 0, others[0]!, s.leaderEpoch, 0, [s.leader])).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal((await alterPartition(id, 0, s.leader, s.leaderEpoch, 100000, [s.leader])).errorCode, ErrorCode.INVALID_UPDATE_VERSION);
  const shrunk = await alterAtCurrentEpoch(id, 0, s.leader, s.leaderEpoch, [s.leader, others[0]!]);
  assert.equal(shrunk.errorCode, ErrorCode.NONE);
  assert.deepEqual(shrunk.isr, [s.leader, others[0]!]);
  assert.equal(shrunk.leaderEpoch, s.leaderEpoch, 'an ISR change keeps the leader epoch');
  // The same partition epoch again is stale.
  assert.equal((await alterPartition(id, 0, s.leader, s.leaderEpoch, shrunk.partitionEpoch - 1, [s.leader])).errorCode, ErrorCode.INVALID_UPDATE_VERSION);
  // A replica that is not one of the partition's: INVALID_REQUEST (checked at the current epoch).
  const foreign = await alterAtCurrentEpoch(id, 0, s.leader, s.leaderEpoch, [s.leader, 99], shrunk.partitionEpoch);
  assert.equal(foreign.errorCode, ErrorCode.INVALID_REQUEST);
  // The leader brings the caught-up replica back (it would itself too); every node sees the full ISR.
  const expanded = await alterAtCurrentEpoch(id, 0, s.leader, s.leaderEpoch, [s.leader, ...others], shrunk.partitionEpoch);
  assert.equal(expanded.errorCode, ErrorCode.NONE);
  assert(expanded.partitionEpoch > shrunk.partitionEpoch);
  for (const n of ids) await waitUntil(`node ${n} to see the full ISR`, async () => ((await stateOn(n, 'el-alter', 0))?.isr.length === 3 ? true : null), 10000);
  // A fenced replica is not eligible: kill one, wait until it is fenced, and try to add it back.
  const victim = others[1]!;
  await cluster.kill(victim);
  const after = await waitUntil(`broker ${victim} out of the ISR`, async () => {
    const p = await cluster.partition('el-alter', 0);
    return p !== null && !p.isr.includes(victim) ? p : null;
  }, 20000);
  await waitUntil(`broker ${victim} to be fenced`, async () => ((await cluster.metadata([], after.leader)).brokers.some((b) => b.nodeId === victim) ? null : true), 20000);
  const ineligible = await alterAtCurrentEpoch(id, 0, after.leader, after.leaderEpoch, [...after.isr, victim], expanded.partitionEpoch);
  assert.equal(ineligible.errorCode, ErrorCode.INELIGIBLE_REPLICA);
  await restartAndWaitUnfenced(victim);
});

test('ElectLeaders: the preferred replica, back and in sync after a restart, gets leadership back', async () => {
  await allRunning();
  await cluster.createTopic('el-preferred', { partitions: 1, replicationFactor: 3 });
  const s = (await cluster.partition('el-preferred', 0))!;
  const preferred = s.replicas[0]!;
  assert.equal(s.leader, preferred);
  const none = await admin.electLeaders('preferred', [{ topic: 'el-preferred', partition: 0 }]);
  assert.equal(none[0]!.errorCode, ErrorCode.ELECTION_NOT_NEEDED);
  await cluster.kill(preferred);
  const moved = await cluster.leaderOf('el-preferred', 0, { not: preferred, timeoutMs: 20000 });
  await waitUntil(`broker ${preferred} out of the ISR`, async () => ((await cluster.partition('el-preferred', 0))?.isr.includes(preferred) === false ? true : null), 20000);
  const unavailable = await admin.electLeaders('preferred', [{ topic: 'el-preferred', partition: 0 }]);
  assert.equal(unavailable[0]!.errorCode, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE);
  const movedEpoch = (await cluster.partition('el-preferred', 0))!.leaderEpoch;
  await restartAndWaitUnfenced(preferred);
  // The leader adds the restarted replica back to the ISR once it has caught up.
  await waitUntil(`broker ${preferred} back in the ISR`, async () => ((await cluster.partition('el-preferred', 0))?.isr.includes(preferred) ? true : null), 30000);
  assert.equal((await cluster.partition('el-preferred', 0))!.leader, moved, 'no election without asking (auto rebalance checks every 300 s)');
  const elected = await admin.electLeaders('preferred', [{ topic: 'el-preferred', partition: 0 }]);
  assert.equal(elected[0]!.errorCode, ErrorCode.NONE, elected[0]!.errorMessage ?? '');
  const back = await waitUntil('the preferred replica to lead', async () => {
    const p = await cluster.partition('el-preferred', 0);
    return p !== null && p.leader === preferred ? p : null;
  }, 10000);
  assert(back.leaderEpoch > movedEpoch);
});

test('reassignment: one to a dead broker stays in progress and is cancelled; one to live brokers completes', async () => {
  await allRunning();
  await cluster.createTopic('el-reassign', { partitions: 1, replicationFactor: 1 });
  const s = (await cluster.partition('el-reassign', 0))!;
  const original = s.replicas[0]!;
  const [a, b] = ids.filter((x) => x !== original);
  // b is dead: it cannot catch up, so the reassignment cannot complete.
  await cluster.kill(b!);
  await admin.alterPartitionReassignments([{ topic: 'el-reassign', partition: 0, replicas: [a!, b!] }]);
  const listed = await waitUntil('the reassignment to be listed', async () => (await admin.listPartitionReassignments()).find((r) => r.topic === 'el-reassign') ?? null, 10000);
  assert.deepEqual(listed.replicas, [a, b, original]);
  assert.deepEqual(listed.addingReplicas, [a, b]);
  assert.deepEqual(listed.removingReplicas, [original]);
  assert.deepEqual((await admin.listPartitionReassignments([{ topic: 'el-reassign', partition: 0 }])).length, 1);
  await admin.alterPartitionReassignments([{ topic: 'el-reassign', partition: 0, replicas: null }]);
  await waitUntil('the cancelled reassignment to be gone', async () => ((await admin.listPartitionReassignments()).some((r) => r.topic === 'el-reassign') ? null : true), 10000);
  // Nodes apply the cancellation asynchronously: the one asked may not have it yet.
  await waitUntil('the original replica set back in Metadata', async () => ((await cluster.partition('el-reassign', 0))?.replicas.join() === String(original) ? true : null), 10000);
  await assert.rejects(admin.alterPartitionReassignments([{ topic: 'el-reassign', partition: 0, replicas: null }]), /NO_REASSIGNMENT_IN_PROGRESS/);
  await restartAndWaitUnfenced(b!);
  // To the two others: they fetch from the leader, join the ISR, and the original replica leaves.
  await admin.alterPartitionReassignments([{ topic: 'el-reassign', partition: 0, replicas: [a!, b!] }]);
  const done = await waitUntil('the reassignment to complete', async () => {
    const p = await cluster.partition('el-reassign', 0);
    return p !== null && p.replicas.join() === [a, b].join() && p.isr.length === 2 ? p : null;
  }, 30000);
  assert.equal(done.leader, a, 'leadership moved to the first target replica');
  assert.deepEqual(await admin.listPartitionReassignments([{ topic: 'el-reassign', partition: 0 }]), []);
});
