/**
 * Partition leadership and ISR decisions, as pure functions of the metadata image (Kafka's
 * PartitionChangeBuilder and the election parts of ReplicationControlManager).
 *
 * Every function takes an image and returns the Partition records to commit; none has state or
 * I/O, so the rules are tested directly on images (test/cluster/partition-changes.test.ts).
 *
 * The rules:
 * - A leader change bumps `leaderEpoch` and `partitionEpoch`; any other change (ISR, replicas,
 *   reassignment state) bumps `partitionEpoch` only. No change, no record.
 * - A fenced broker leaves every ISR, except that the ISR never becomes empty: the last member
 *   stays (the partition is then offline, leader -1) so that it — and only it, unless unclean
 *   election is allowed — becomes leader again when it comes back.
 * - The leader is kept while it is unfenced and in the ISR; otherwise the first replica (in
 *   replica order: the preferred replica first) that is in the ISR and unfenced; otherwise, when
 *   the topic's `unclean.leader.election.enable` is true, the first unfenced replica (the ISR
 *   becomes just it); otherwise -1.
 */
import { ErrorCode } from '../../protocol/errors.js';
import type { MetadataImage, MetadataRecord, PartitionImage, TopicImage } from './image.js';

export type PartitionRecord = Extract<MetadataRecord, { type: 'Partition' }>;

export const NO_LEADER = -1;

/** What may change in a partition; fields left out keep their value. */
export interface PartitionChange {
  replicas?: readonly number[];
  isr?: readonly number[];
  leader?: number;
  addingReplicas?: readonly number[];
  removingReplicas?: readonly number[];
}

const sameList = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** The Partition record of `p` after `change`, with its epochs bumped; null when nothing changes. */
export function changePartition(p: PartitionImage, change: PartitionChange): PartitionRecord | null {
  const replicas = change.replicas ?? p.replicas;
  const isr = change.isr ?? p.isr;
  const leader = change.leader ?? p.leader;
  const adding = change.addingReplicas ?? p.addingReplicas;
  const removing = change.removingReplicas ?? p.removingReplicas;
  const leaderChanged = leader !== p.leader;
  if (!leaderChanged && sameList(replicas, p.replicas) && sameList(isr, p.isr) && sameList(adding, p.addingReplicas) && sameList(removing, p.removingReplicas)) return null;
  return partitionRecord(p, {
    replicas: [...replicas],
    isr: [...isr],
    leader,
    leaderEpoch: leaderChanged ? p.leaderEpoch + 1 : p.leaderEpoch,
    partitionEpoch: p.partitionEpoch + 1,
    addingReplicas: [...adding],
    removingReplicas: [...removing],
  });
}

function partitionRecord(
  p: PartitionImage,
  v: { replicas: number[]; isr: number[]; leader: number; leaderEpoch: number; partitionEpoch: number; addingReplicas: number[]; removingReplicas: number[] },
): PartitionRecord {
  const r: PartitionRecord = { type: 'Partition', topicId: p.topicId, partition: p.partition, replicas: v.replicas, isr: v.isr, leader: v.leader, leaderEpoch: v.leaderEpoch, partitionEpoch: v.partitionEpoch };
  if (v.addingReplicas.length > 0) r.addingReplicas = v.addingReplicas;
  if (v.removingReplicas.length > 0) r.removingReplicas = v.removingReplicas;
  return r;
}

/** The partition as the image would hold it after `r` (to chain decisions within one operation). */
export function applied(p: PartitionImage, r: PartitionRecord | null): PartitionImage {
  if (r === null) return p;
  return { ...p, replicas: r.replicas, isr: r.isr, leader: r.leader, leaderEpoch: r.leaderEpoch, partitionEpoch: r.partitionEpoch, addingReplicas: r.addingReplicas ?? [], removingReplicas: r.removingReplicas ?? [] };
}

/** The topic's `unclean.leader.election.enable`: its override, else the dynamic broker default, else the static one. */
export function uncleanElectionEnabled(image: MetadataImage, topic: TopicImage, staticDefault: boolean): boolean {
  const v = topic.configs.get('unclean.leader.election.enable') ?? image.brokerConfigs.get('unclean.leader.election.enable');
  return v === undefined ? staticDefault : v === 'true';
}

/**
 * The partition made consistent with which brokers are fenced in `image`: fenced brokers leave the
 * ISR (never emptying it), and the leader is re-elected when it is fenced, out of the ISR or absent.
 */
export function reconcilePartition(image: MetadataImage, p: PartitionImage, unclean: boolean): PartitionRecord | null {
  const live = (b: number): boolean => image.isUnfenced(b);
  let isr = p.isr.filter(live);
  if (isr.length === 0) isr = [...p.isr];
  let leader = p.leader;
  if (leader === NO_LEADER || !live(leader) || !isr.includes(leader)) {
    leader = p.replicas.find((b) => isr.includes(b) && live(b)) ?? NO_LEADER;
    if (leader === NO_LEADER && unclean) {
      const any = p.replicas.find(live);
      if (any !== undefined) {
        leader = any;
        isr = [any];
      }
    }
  }
  return changePartition(p, { isr, leader });
}

/**
 * Every partition of the image reconciled (after brokers were fenced or unfenced in `image`).
 * `only` limits it to partitions naming one of these brokers or without a leader.
 */
export function reconcileAll(image: MetadataImage, staticUnclean: boolean, only?: ReadonlySet<number>): PartitionRecord[] {
  const out: PartitionRecord[] = [];
  for (const t of image.topicsByName.values()) {
    const unclean = uncleanElectionEnabled(image, t, staticUnclean);
    for (const p of t.partitions) {
      if (only !== undefined && p.leader !== NO_LEADER && !p.replicas.some((b) => only.has(b))) continue;
      const r = reconcilePartition(image, p, unclean);
      if (r !== null) out.push(r);
    }
  }
  return out;
}

export interface AlterPartitionRequestData {
  /** The leader asking; -1 when not known (then not checked). */
  brokerId: number;
  /** The asking broker's epoch; -1 when not checked. */
  brokerEpoch: number;
  topicId: string;
  partition: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: readonly number[];
}

/**
 * AlterPartition on the image (Kafka's ReplicationControlManager.alterPartition): the checks, in
 * Kafka's order, then the ISR change — which may complete a reassignment in progress.
 */
export function alterPartition(image: MetadataImage, req: AlterPartitionRequestData): { errorCode: number; record: PartitionRecord | null; partition: PartitionImage | null } {
  const fail = (errorCode: number, partition: PartitionImage | null = null): { errorCode: number; record: null; partition: PartitionImage | null } => ({ errorCode, record: null, partition });
  const topic = image.topicsById.get(req.topicId);
  if (topic === undefined) return fail(ErrorCode.UNKNOWN_TOPIC_ID);
  const p = topic.partitions[req.partition];
  if (p === undefined) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  if (req.brokerId >= 0 && req.brokerEpoch >= 0) {
    const b = image.brokers.get(req.brokerId);
    if (b === undefined || b.epoch !== req.brokerEpoch) return fail(ErrorCode.STALE_BROKER_EPOCH);
  }
  if (req.leaderEpoch !== p.leaderEpoch) return fail(ErrorCode.FENCED_LEADER_EPOCH);
  if (req.brokerId >= 0 && req.brokerId !== p.leader) return fail(ErrorCode.INVALID_REQUEST);
  if (req.partitionEpoch !== p.partitionEpoch) return fail(ErrorCode.INVALID_UPDATE_VERSION);
  const newIsr = [...new Set(req.newIsr)];
  if (newIsr.length !== req.newIsr.length || !newIsr.includes(p.leader)) return fail(ErrorCode.INVALID_REQUEST);
  for (const b of newIsr) {
    if (!p.replicas.includes(b)) return fail(ErrorCode.INVALID_REQUEST);
    if (!image.isUnfenced(b)) return fail(ErrorCode.INELIGIBLE_REPLICA);
  }
  let next = applied(p, changePartition(p, { isr: newIsr }));
  next = applied(next, completeReassignment(image, next));
  const record = next === p ? null : partitionRecord(p, { ...next, replicas: [...next.replicas], isr: [...next.isr], addingReplicas: [...next.addingReplicas], removingReplicas: [...next.removingReplicas] });
  return { errorCode: ErrorCode.NONE, record, partition: next };
}

/** The record ending `p`'s reassignment when every adding replica is in the ISR; null otherwise. */
export function completeReassignment(image: MetadataImage, p: PartitionImage): PartitionRecord | null {
  if (p.addingReplicas.length === 0 && p.removingReplicas.length === 0) return null;
  if (!p.addingReplicas.every((b) => p.isr.includes(b))) return null;
  const target = p.replicas.filter((b) => !p.removingReplicas.includes(b));
  let isr = p.isr.filter((b) => target.includes(b));
  if (isr.length === 0) isr = [...p.isr];
  let leader = p.leader;
  if (!target.includes(leader) || !isr.includes(leader)) leader = target.find((b) => isr.includes(b) && image.isUnfenced(b)) ?? NO_LEADER;
  return changePartition(p, { replicas: target, isr, leader, addingReplicas: [], removingReplicas: [] });
}

/**
 * Starts (or, with `target` null, cancels) a reassignment (Kafka's AlterPartitionReassignments):
 * while it runs the replicas are the target followed by the replicas being removed; it completes
 * (completeReassignment) once the added replicas are in the ISR.
 */
export function reassignPartition(image: MetadataImage, p: PartitionImage, target: readonly number[] | null): { errorCode: number; errorMessage: string | null; records: PartitionRecord[] } {
  const ok = (records: Array<PartitionRecord | null>) => ({ errorCode: ErrorCode.NONE, errorMessage: null, records: records.filter((r): r is PartitionRecord => r !== null) });
  const original = p.replicas.filter((b) => !p.addingReplicas.includes(b));
  if (target === null) {
    if (p.addingReplicas.length === 0 && p.removingReplicas.length === 0) return { errorCode: ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, errorMessage: 'No reassignment is in progress for this partition.', records: [] };
    let isr = p.isr.filter((b) => original.includes(b));
    if (isr.length === 0) isr = [...p.isr];
    let leader = p.leader;
    if (!original.includes(leader)) leader = original.find((b) => isr.includes(b) && image.isUnfenced(b)) ?? NO_LEADER;
    return ok([changePartition(p, { replicas: original, isr, leader, addingReplicas: [], removingReplicas: [] })]);
  }
  if (target.length === 0) return { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: 'The replica list is empty.', records: [] };
  if (new Set(target).size !== target.length) return { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: 'The replica list names a broker more than once.', records: [] };
  const unknown = target.find((b) => !image.brokers.has(b));
  if (unknown !== undefined) return { errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: `The replica list names broker ${unknown}, which is not registered.`, records: [] };
  // A new target replaces one in progress: start from the original replicas.
  const adding = target.filter((b) => !original.includes(b));
  const removing = original.filter((b) => !target.includes(b));
  const replicas = [...target, ...removing];
  const isr = p.isr.filter((b) => replicas.includes(b));
  const started = changePartition(p, { replicas, isr: isr.length === 0 ? p.isr : isr, addingReplicas: adding, removingReplicas: removing });
  const next = applied(p, started);
  const final = applied(next, completeReassignment(image, next));
  return ok([final === p ? null : mergeRecords(p, final)]);
}

/** One record taking `p` to `next` (its epochs already counted). */
function mergeRecords(p: PartitionImage, next: PartitionImage): PartitionRecord {
  return partitionRecord(p, { replicas: [...next.replicas], isr: [...next.isr], leader: next.leader, leaderEpoch: next.leaderEpoch, partitionEpoch: next.partitionEpoch, addingReplicas: [...next.addingReplicas], removingReplicas: [...next.removingReplicas] });
}

export const ElectionType = { PREFERRED: 0, UNCLEAN: 1 } as const;

/**
 * ElectLeaders for one partition (Kafka's semantics): PREFERRED makes the first replica leader
 * when it is in the ISR and unfenced (PREFERRED_LEADER_NOT_AVAILABLE otherwise, ELECTION_NOT_NEEDED
 * when it already leads); UNCLEAN elects only for a partition without a leader — from the ISR if
 * possible, else any unfenced replica (ELIGIBLE_LEADERS_NOT_AVAILABLE when none).
 */
export function electLeader(image: MetadataImage, p: PartitionImage, type: number): { errorCode: number; errorMessage: string | null; record: PartitionRecord | null } {
  if (type === ElectionType.PREFERRED) {
    const preferred = p.replicas[0]!;
    if (p.leader === preferred) return { errorCode: ErrorCode.ELECTION_NOT_NEEDED, errorMessage: 'Leader election not needed for topic partition.', record: null };
    if (!p.isr.includes(preferred) || !image.isUnfenced(preferred)) {
      return { errorCode: ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, errorMessage: `Failed to elect leader for partition: the preferred replica ${preferred} is not in the ISR or not alive.`, record: null };
    }
    return { errorCode: ErrorCode.NONE, errorMessage: null, record: changePartition(p, { leader: preferred }) };
  }
  if (type === ElectionType.UNCLEAN) {
    if (p.leader !== NO_LEADER && image.isUnfenced(p.leader)) return { errorCode: ErrorCode.ELECTION_NOT_NEEDED, errorMessage: 'Leader election not needed for topic partition.', record: null };
    const r = reconcilePartition(image, p, true);
    const next = applied(p, r);
    if (next.leader === NO_LEADER) return { errorCode: ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, errorMessage: 'No replica of the partition is alive.', record: null };
    return { errorCode: ErrorCode.NONE, errorMessage: null, record: r };
  }
  return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unknown election type ${type}.`, record: null };
}

/**
 * Round-robin placement of partitions [first, first + count) over `brokers` (sorted), `rf`
 * replicas each, starting at broker index `start` so that the leaders of successive topics spread.
 */
export function placeReplicas(brokers: readonly number[], start: number, first: number, count: number, rf: number): number[][] {
  return Array.from({ length: count }, (_, i) => Array.from({ length: rf }, (_, r) => brokers[(start + first + i + r) % brokers.length]!));
}

/**
 * `auto.leader.rebalance.enable`: the partitions to give back to their preferred replica (Kafka's
 * leader imbalance check). For each broker, of the partitions it is the preferred replica of, the
 * share it does not lead; when that share is above `percentage` %, every such partition whose
 * preferred replica is unfenced and in the ISR (so a preferred election would succeed).
 */
export function imbalancedPartitions(image: MetadataImage, percentage: number): Array<{ topic: string; partition: number }> {
  const preferredOf = new Map<number, { total: number; notLed: Array<{ topic: string; partition: number; eligible: boolean }> }>();
  for (const t of image.topicsByName.values()) {
    for (const p of t.partitions) {
      const preferred = p.replicas[0];
      if (preferred === undefined) continue;
      let s = preferredOf.get(preferred);
      if (s === undefined) preferredOf.set(preferred, (s = { total: 0, notLed: [] }));
      s.total++;
      if (p.leader !== preferred) s.notLed.push({ topic: t.name, partition: p.partition, eligible: p.isr.includes(preferred) && image.isUnfenced(preferred) });
    }
  }
  const out: Array<{ topic: string; partition: number }> = [];
  for (const s of preferredOf.values()) {
    if (s.total === 0 || (s.notLed.length * 100) / s.total <= percentage) continue;
    for (const x of s.notLed) if (x.eligible) out.push({ topic: x.topic, partition: x.partition });
  }
  return out;
}
