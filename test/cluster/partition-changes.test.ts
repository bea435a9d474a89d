/**
 * The controller's leadership and ISR rules as pure functions over images
 * (src/broker/metadata/partition-changes.ts): fencing, unfencing, unclean election, AlterPartition
 * checks, preferred and unclean ElectLeaders, reassignments, placement — and the same through
 * the single-node LocalController (AlterPartition commits locally).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BrokerConfig } from '../../src/broker/config.js';
import { createLogger } from '../../src/broker/logger.js';
import { LocalController } from '../../src/broker/metadata/controller.js';
import { MetadataImage, type MetadataRecord, type PartitionImage } from '../../src/broker/metadata/image.js';
import { MetadataLog } from '../../src/broker/metadata/metadata-log.js';
import {
  alterPartition,
  applied,
  changePartition,
  electLeader,
  ElectionType,
  imbalancedPartitions,
  placeReplicas,
  reassignPartition,
  reconcileAll,
  reconcilePartition,
} from '../../src/broker/metadata/partition-changes.js';
import { ErrorCode } from '../../src/protocol/errors.js';

const TOPIC_ID = 'AAAAAAAAAAAAAAAAAAAAAg';

function imageOf(records: MetadataRecord[]): MetadataImage {
  let image = MetadataImage.EMPTY;
  records.forEach((r, i) => (image = image.apply(r, i)));
  return image;
}

function register(id: number, fenced = false): MetadataRecord {
  return { type: 'RegisterBroker', brokerId: id, host: '127.0.0.1', port: 9090 + id, rack: null, incarnationId: `i${id}`, fenced };
}

function partition(p: number, replicas: number[], isr: number[], leader: number, extra: Partial<Extract<MetadataRecord, { type: 'Partition' }>> = {}): MetadataRecord {
  return { type: 'Partition', topicId: TOPIC_ID, partition: p, replicas, isr, leader, leaderEpoch: 5, partitionEpoch: 10, ...extra };
}

function cluster(partitions: MetadataRecord[], brokers: MetadataRecord[] = [register(1), register(2), register(3)], configs: MetadataRecord[] = []): MetadataImage {
  return imageOf([...brokers, { type: 'Topic', name: 't', topicId: TOPIC_ID }, ...configs, ...partitions]);
}

/** The image with broker `id` fenced (its registration's epoch is its record offset). */
function fence(image: MetadataImage, id: number): MetadataImage {
  return image.apply({ type: 'FenceBroker', brokerId: id, epoch: image.brokers.get(id)!.epoch }, image.offset + 1);
}
function unfence(image: MetadataImage, id: number): MetadataImage {
  return image.apply({ type: 'UnfenceBroker', brokerId: id, epoch: image.brokers.get(id)!.epoch }, image.offset + 1);
}

const p0 = (image: MetadataImage): PartitionImage => image.topic('t')!.partitions[0]!;

test('changes bump the epochs as Kafka: a leader change both, an ISR change the partition epoch only, no change no record', () => {
  const image = cluster([partition(0, [1, 2, 3], [1, 2, 3], 1)]);
  const isrOnly = changePartition(p0(image), { isr: [1, 2] })!;
  assert.equal(isrOnly.leaderEpoch, 5);
  assert.equal(isrOnly.partitionEpoch, 11);
  const leader = changePartition(p0(image), { leader: 2 })!;
  assert.equal(leader.leaderEpoch, 6);
  assert.equal(leader.partitionEpoch, 11);
  assert.equal(changePartition(p0(image), { isr: [1, 2, 3], leader: 1 }), null);
});

test('a fenced leader is replaced by the first live ISR replica in replica order, and leaves the ISR', () => {
  const image = fence(cluster([partition(0, [1, 2, 3], [1, 2, 3], 1), partition(1, [2, 3, 1], [2, 3, 1], 2)]), 1);
  const records = reconcileAll(image, false);
  assert.equal(records.length, 2);
  const [r0, r1] = records;
  assert.deepEqual([r0!.leader, r0!.isr, r0!.leaderEpoch, r0!.partitionEpoch], [2, [2, 3], 6, 11]);
  // Partition 1's leader (2) stays; only the ISR shrinks.
  assert.deepEqual([r1!.leader, r1!.isr, r1!.leaderEpoch, r1!.partitionEpoch], [2, [2, 3], 5, 11]);
});

test('the last ISR member is kept when fenced: the partition goes offline, and comes back with that broker only', () => {
  let image = cluster([partition(0, [1, 2, 3], [1], 1)]);
  image = fence(image, 1);
  const offline = reconcilePartition(image, p0(image), false)!;
  assert.equal(offline.leader, -1);
  assert.deepEqual(offline.isr, [1]);
  assert.equal(offline.leaderEpoch, 6);
  image = image.apply(offline, image.offset + 1);
  // Another replica is alive but out of sync: no clean leader.
  assert.equal(reconcilePartition(image, p0(image), false), null);
  image = unfence(image, 1);
  const back = reconcilePartition(image, p0(image), false)!;
  assert.equal(back.leader, 1);
  assert.equal(back.leaderEpoch, 7);
});

test('unclean.leader.election.enable elects an out-of-sync live replica, from the topic config or the static default', () => {
  let image = cluster([partition(0, [1, 2, 3], [1], 1)], undefined, [{ type: 'Config', resourceType: 'topic', resourceName: 't', name: 'unclean.leader.election.enable', value: 'true' }]);
  image = fence(image, 1);
  const [r] = reconcileAll(image, false);
  assert.equal(r!.leader, 2);
  assert.deepEqual(r!.isr, [2]);
  const plain = fence(cluster([partition(0, [1, 2, 3], [1], 1)]), 1);
  assert.equal(reconcileAll(plain, false)[0]!.leader, -1);
  assert.equal(reconcileAll(plain, true)[0]!.leader, 2);
});

test('AlterPartition: stale epochs, a non-leader, a fenced or foreign replica are refused with Kafka\'s errors; a good change commits', () => {
  const image = fence(cluster([partition(0, [1, 2, 3], [1, 2], 1)]), 3);
  const base = { brokerId: 1, brokerEpoch: -1, topicId: TOPIC_ID, partition: 0, leaderEpoch: 5, partitionEpoch: 10 };
  assert.equal(alterPartition(image, { ...base, leaderEpoch: 4, newIsr: [1] }).errorCode, ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(alterPartition(image, { ...base, partitionEpoch: 9, newIsr: [1] }).errorCode, ErrorCode.INVALID_UPDATE_VERSION);
  assert.equal(alterPartition(image, { ...base, brokerId: 2, newIsr: [1] }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(alterPartition(image, { ...base, newIsr: [1, 3] }).errorCode, ErrorCode.INELIGIBLE_REPLICA);
  assert.equal(alterPartition(image, { ...base, newIsr: [1, 4] }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(alterPartition(image, { ...base, newIsr: [2] }).errorCode, ErrorCode.INVALID_REQUEST, 'the ISR must contain the leader');
  assert.equal(alterPartition(image, { ...base, topicId: 'AAAAAAAAAAAAAAAAAAAAAw', newIsr: [1] }).errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
  assert.equal(alterPartition(image, { ...base, brokerEpoch: 99, newIsr: [1] }).errorCode, ErrorCode.STALE_BROKER_EPOCH);
  const ok = alterPartition(image, { ...base, newIsr: [1] });
  assert.equal(ok.errorCode, ErrorCode.NONE);
  assert.deepEqual(ok.partition!.isr, [1]);
  assert.equal(ok.partition!.partitionEpoch, 11);
  assert.equal(ok.partition!.leaderEpoch, 5);
});

test('ElectLeaders: preferred makes the first replica leader when it is in the ISR; unclean only for leaderless partitions', () => {
  const image = cluster([partition(0, [1, 2, 3], [1, 2, 3], 2), partition(1, [3, 1, 2], [1, 2], 1), partition(2, [1, 2, 3], [1, 2, 3], 1)]);
  const t = image.topic('t')!;
  const preferred = electLeader(image, t.partitions[0]!, ElectionType.PREFERRED);
  assert.equal(preferred.errorCode, ErrorCode.NONE);
  assert.equal(preferred.record!.leader, 1);
  assert.equal(preferred.record!.leaderEpoch, 6);
  assert.equal(electLeader(image, t.partitions[1]!, ElectionType.PREFERRED).errorCode, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE);
  assert.equal(electLeader(image, t.partitions[2]!, ElectionType.PREFERRED).errorCode, ErrorCode.ELECTION_NOT_NEEDED);
  assert.equal(electLeader(image, t.partitions[0]!, ElectionType.UNCLEAN).errorCode, ErrorCode.ELECTION_NOT_NEEDED);
  let offline = fence(cluster([partition(0, [1, 2, 3], [1], 1)]), 1);
  offline = offline.apply(reconcilePartition(offline, p0(offline), false)!, offline.offset + 1);
  const unclean = electLeader(offline, p0(offline), ElectionType.UNCLEAN);
  assert.equal(unclean.errorCode, ErrorCode.NONE);
  assert.equal(unclean.record!.leader, 2);
  const none = fence(fence(offline, 2), 3);
  assert.equal(electLeader(none, p0(none), ElectionType.UNCLEAN).errorCode, ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE);
});

test('a reassignment adds the target replicas, completes when they are in the ISR, and moves leadership off removed replicas', () => {
  const image = cluster([partition(0, [1, 2], [1, 2], 1)], [register(1), register(2), register(3), register(4)]);
  const started = reassignPartition(image, p0(image), [3, 4]);
  assert.equal(started.errorCode, ErrorCode.NONE);
  const r = started.records[0]!;
  assert.deepEqual(r.replicas, [3, 4, 1, 2]);
  assert.deepEqual(r.addingReplicas, [3, 4]);
  assert.deepEqual(r.removingReplicas, [1, 2]);
  assert.equal(r.leader, 1);
  let next = image.apply(r, image.offset + 1);
  // The leader adds 3 to the ISR: not complete yet.
  const first = alterPartition(next, { brokerId: 1, brokerEpoch: -1, topicId: TOPIC_ID, partition: 0, leaderEpoch: p0(next).leaderEpoch, partitionEpoch: p0(next).partitionEpoch, newIsr: [1, 2, 3] });
  assert.deepEqual(first.partition!.replicas, [3, 4, 1, 2]);
  next = next.apply(first.record!, next.offset + 1);
  const done = alterPartition(next, { brokerId: 1, brokerEpoch: -1, topicId: TOPIC_ID, partition: 0, leaderEpoch: p0(next).leaderEpoch, partitionEpoch: p0(next).partitionEpoch, newIsr: [1, 2, 3, 4] });
  assert.equal(done.errorCode, ErrorCode.NONE);
  assert.deepEqual(done.partition!.replicas, [3, 4]);
  assert.deepEqual(done.partition!.isr, [3, 4]);
  assert.equal(done.partition!.leader, 3);
  assert.equal(done.partition!.leaderEpoch, 6);
  assert.deepEqual(done.partition!.addingReplicas, []);
  // Cancelling one in progress goes back to the original replicas.
  const cancelled = reassignPartition(image.apply(r, image.offset + 1), applied(p0(image), r), null);
  assert.deepEqual(cancelled.records[0]!.replicas, [1, 2]);
  assert.equal(reassignPartition(image, p0(image), null).errorCode, ErrorCode.NO_REASSIGNMENT_IN_PROGRESS);
  assert.equal(reassignPartition(image, p0(image), [1, 9]).errorCode, ErrorCode.INVALID_REPLICA_ASSIGNMENT);
  // A target already in the ISR completes at once.
  const shrink = reassignPartition(image, p0(image), [2]);
  assert.deepEqual(shrink.records[0]!.replicas, [2]);
  assert.equal(shrink.records[0]!.leader, 2);
});

test('placement: round-robin from a start offset, so successive topics lead on successive brokers', () => {
  assert.deepEqual(placeReplicas([1, 2, 3], 0, 0, 3, 2), [[1, 2], [2, 3], [3, 1]]);
  assert.deepEqual(placeReplicas([1, 2, 3], 1, 0, 1, 3), [[2, 3, 1]]);
  assert.deepEqual(placeReplicas([1, 2, 3], 0, 2, 2, 1), [[3], [1]]);
});

test('auto leader rebalance: a broker leading too few of its preferred partitions gets back those it is in sync for', () => {
  // Broker 1 prefers four partitions and leads one; of the other three it is in the ISR of two.
  const image = cluster([
    partition(0, [1, 2, 3], [1, 2, 3], 1),
    partition(1, [1, 2, 3], [1, 2, 3], 2),
    partition(2, [1, 3, 2], [1, 2, 3], 3),
    partition(3, [1, 2, 3], [2, 3], 2),
    partition(4, [2, 3, 1], [1, 2, 3], 2),
  ]);
  assert.deepEqual(imbalancedPartitions(image, 10).map((p) => p.partition), [1, 2]);
  // 3 of 4 not led = 75 %: nothing to do at 80 %.
  assert.deepEqual(imbalancedPartitions(image, 80), []);
  // A fenced preferred replica is not elected.
  assert.deepEqual(imbalancedPartitions(fence(image, 1), 10), []);
});

test('the single-node controller commits AlterPartition locally and refuses stale epochs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-alter-'));
  const log = await MetadataLog.open(dir, true, createLogger({ level: 'warn' }));
  t.after(async () => {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = new BrokerConfig(new Map([['node.id', '1']]));
  const controller = new LocalController(MetadataImage.EMPTY, log, config, 1, createLogger({ level: 'warn' }));
  await controller.registerBroker('127.0.0.1', 9092);
  const [created] = await controller.createTopics([{ name: 'x', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], false);
  assert.equal(created!.errorCode, ErrorCode.NONE);
  const p = controller.image.topic('x')!.partitions[0]!;
  const stale = await controller.alterPartition({ topicId: p.topicId, partition: 0, leaderEpoch: p.leaderEpoch + 1, partitionEpoch: p.partitionEpoch, newIsr: [1] });
  assert.equal(stale.errorCode, ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(stale.partition!.leaderEpoch, p.leaderEpoch);
  const same = await controller.alterPartition({ topicId: p.topicId, partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [1] });
  assert.equal(same.errorCode, ErrorCode.NONE);
  assert.equal(same.partition!.partitionEpoch, p.partitionEpoch, 'an unchanged ISR commits nothing');
  const elected = await controller.electLeaders(ElectionType.PREFERRED, [{ topic: 'x', partition: 0 }, { topic: 'nope', partition: 0 }]);
  assert.deepEqual(elected.map((e) => e.errorCode), [ErrorCode.ELECTION_NOT_NEEDED, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
});
