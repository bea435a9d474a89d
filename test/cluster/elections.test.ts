/**
 * AlterPartition (api 56) on the active controller's listener, ElectLeaders (43) and partition
 * reassignment (45, 46) through the admin client, on three combined nodes (real processes).
 * The partition leaders' own ISR changes are sent here by the test, as a leader would send them:
 * stale epochs are refused with Kafka's errors, a good change commits and reaches every node.
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

async function topicId(name: string): Promise<string> {
  return (await cluster.metadata([name])).topics[0]!.topicId;
}

/** The partition as node `node`'s Metadata answers it. */
async function stateOn(node: number, topic: string, partition: number): Promise<PartitionState | null> {
  const md = await cluster.metadata([topic], node);
  const p = md.topics[0]?.partitions.find((x) => x.partitionIndex === partition);
  return p === undefined ? null : { topic, partition, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes, isr: p.isrNodes };
}

test('AlterPartition: stale leader and partition epochs are refused, a shrink and an expand commit and reach every node', async () => {
  await cluster.createTopic('el-alter', { partitions: 1, replicationFactor: 3 });
  const id = await topicId('el-alter');
  const s = (await cluster.partition('el-alter', 0))!;
  const others = s.replicas.filter((b) => b !== s.leader);
  // The partition epoch starts at 0 for a new partition.
  const stale = await alterPartition(id, 0, s.leader, s.leaderEpoch + 1, 0, [s.leader]);
  assert.equal(stale.errorCode, ErrorCode.FENCED_LEADER_EPOCH);
  const badVersion = await alterPartition(id, 0, s.leader, s.leaderEpoch, 7, [s.leader]);
  assert.equal(badVersion.errorCode, ErrorCode.INVALID_UPDATE_VERSION);
  const notLeader = await alterPartition(id, 0, others[0]!, s.leaderEpoch, 0, [s.leader]);
  assert.equal(notLeader.errorCode, ErrorCode.INVALID_REQUEST);
  const shrunk = await alterPartition(id, 0, s.leader, s.leaderEpoch, 0, [s.leader, others[0]!]);
  assert.equal(shrunk.errorCode, ErrorCode.NONE);
  assert.deepEqual(shrunk.isr, [s.leader, others[0]!]);
  assert.equal(shrunk.partitionEpoch, 1);
  assert.equal(shrunk.leaderEpoch, s.leaderEpoch);
  for (const n of ids) await waitUntil(`node ${n} to see the shrunk ISR`, async () => ((await stateOn(n, 'el-alter', 0))?.isr.length === 2 ? true : null), 10000);
  const again = await alterPartition(id, 0, s.leader, s.leaderEpoch, 0, [s.leader]);
  assert.equal(again.errorCode, ErrorCode.INVALID_UPDATE_VERSION, 'the same partition epoch twice');
  const expanded = await alterPartition(id, 0, s.leader, s.leaderEpoch, 1, [s.leader, ...others]);
  assert.equal(expanded.errorCode, ErrorCode.NONE);
  assert.equal(expanded.partitionEpoch, 2);
});

test('ElectLeaders: preferred election moves leadership back to the first replica once it is in the ISR', async () => {
  await cluster.createTopic('el-preferred', { partitions: 1, replicationFactor: 3 });
  const id = await topicId('el-preferred');
  const s = (await cluster.partition('el-preferred', 0))!;
  const preferred = s.replicas[0]!;
  assert.equal(s.leader, preferred);
  // Preferred replica already leads.
  const none = await admin.electLeaders('preferred', [{ topic: 'el-preferred', partition: 0 }]);
  assert.equal(none[0]!.errorCode, ErrorCode.ELECTION_NOT_NEEDED);
  // Its leader leaves the ISR... (a shrink by the leader keeps it leader; a leader moves by a fence)
  await cluster.kill(preferred);
  const moved = await cluster.leaderOf('el-preferred', 0, { not: preferred, timeoutMs: 20000 });
  const count = (): number => (cluster.node(preferred).output().match(/unfenced by the controller/g) ?? []).length;
  const before = count();
  await cluster.restart(preferred);
  await waitUntil(`node ${preferred} unfenced`, () => (count() > before ? true : null), 30000, 50);
  const afterRestart = (await cluster.partition('el-preferred', 0))!;
  assert.equal(afterRestart.leader, moved);
  assert(!afterRestart.isr.includes(preferred), 'a restarted replica is not in the ISR until the leader adds it');
  const unavailable = await admin.electLeaders('preferred', [{ topic: 'el-preferred', partition: 0 }]);
  assert.equal(unavailable[0]!.errorCode, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE);
  // The leader adds it back (as it would once the replica caught up).
  const added = await alterAtCurrentEpoch(id, 0, moved, afterRestart.leaderEpoch, [...afterRestart.isr, preferred]);
  assert.equal(added.errorCode, ErrorCode.NONE);
  assert.equal(added.leaderEpoch, afterRestart.leaderEpoch, 'an ISR change keeps the leader epoch');
  await waitUntil('every node to see the full ISR', async () => {
    for (const n of ids) if ((await stateOn(n, 'el-preferred', 0))?.isr.length !== 3) return null;
    return true;
  }, 10000);
  const elected = await admin.electLeaders('preferred', [{ topic: 'el-preferred', partition: 0 }]);
  assert.equal(elected[0]!.errorCode, ErrorCode.NONE);
  const back = await waitUntil('the preferred replica to lead', async () => {
    const p = await cluster.partition('el-preferred', 0);
    return p !== null && p.leader === preferred ? p : null;
  }, 10000);
  assert(back.leaderEpoch > afterRestart.leaderEpoch);
});

test('a reassignment adds the target replicas, lists as in progress, and completes when they join the ISR', async () => {
  await cluster.createTopic('el-reassign', { partitions: 1, replicationFactor: 1 });
  const id = await topicId('el-reassign');
  const s = (await cluster.partition('el-reassign', 0))!;
  const original = s.replicas[0]!;
  const target = ids.filter((b) => b !== original);
  await admin.alterPartitionReassignments([{ topic: 'el-reassign', partition: 0, replicas: target }]);
  const listed = await waitUntil('the reassignment to be listed', async () => {
    const l = await admin.listPartitionReassignments();
    return l.find((r) => r.topic === 'el-reassign') ?? null;
  }, 10000);
  assert.deepEqual(listed.replicas, [...target, original]);
  assert.deepEqual(listed.addingReplicas, target);
  assert.deepEqual(listed.removingReplicas, [original]);
  // The leader (still the original replica) adds the new replicas to the ISR once they caught up.
  const r = await alterAtCurrentEpoch(id, 0, original, s.leaderEpoch, [original, ...target]);
  assert.equal(r.errorCode, ErrorCode.NONE);
  // Complete: the original replica is gone, leadership moved to the first target replica.
  assert.deepEqual(r.isr, target);
  assert.equal(r.leaderId, target[0]);
  await waitUntil('the reassignment to complete on every node', async () => {
    for (const n of ids) {
      const p = await stateOn(n, 'el-reassign', 0);
      if (p === null || p.replicas.join() !== target.join() || p.leader !== target[0]) return null;
    }
    return true;
  }, 10000);
  assert.deepEqual(await admin.listPartitionReassignments([{ topic: 'el-reassign', partition: 0 }]), []);
  // Cancelling when none is in progress.
  await assert.rejects(admin.alterPartitionReassignments([{ topic: 'el-reassign', partition: 0, replicas: null }]), /NO_REASSIGNMENT_IN_PROGRESS/);
});
