/**
 * The controller: the only writer of the metadata log, as the broker sees it.
 *
 * An operation validates against the current image, produces MetadataRecords, commits them, then
 * they are applied to the image and listeners are told (the replica manager creates and deletes
 * partition logs from that). Operations run one at a time, so no two can validate against the
 * same image and both commit (KRaft's QuorumController has the same single-writer shape).
 *
 * `Controller` is what the broker and its handlers use (`broker.controller`): the operations
 * (createTopics, alterPartition, electLeaders, ...) written once over three primitives — `image`,
 * `onChange` and `run`. Two implementations provide them:
 * - `LocalController` (below): a single node; records go to the local metadata log (fsynced).
 * - `ClusterController` (cluster-controller.ts): a broker in a Raft metadata quorum; the image is
 *   the quorum's committed image and `run` executes on the active controller (in this process
 *   when it is the active one, otherwise forwarded to it; see there).
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode } from '../../protocol/errors.js';
import { BrokerConfig, ConfigError, validateTopicConfigs } from '../config.js';
import type { Logger } from '../logger.js';
import { MetadataImage, type BrokerEndpoint, type MetadataRecord, type PartitionImage } from './image.js';
import { alterPartition, applied, electLeader, NO_LEADER, placeReplicas, reassignPartition, reconcileAll, type PartitionRecord } from './partition-changes.js';

/**
 * Where the controller's records go: the local metadata log (metadata-log.ts) on a single node,
 * or the Raft quorum on a controller node (quorum-controller.ts). `append` resolves with the first
 * record's offset once the records are durable (fsynced, or committed by the quorum).
 */
export interface MetadataLogWriter {
  append(records: readonly MetadataRecord[]): Promise<number>;
}

export const TOPIC_NAME_MAX_LENGTH = 249;
const LEGAL_TOPIC = /^[a-zA-Z0-9._-]+$/;

/** Kafka's topic name rule: 1–249 of [a-zA-Z0-9._-], and not "." or "..". Returns why not, or null. */
export function invalidTopicName(name: string): string | null {
  if (name.length === 0) return 'Topic name is empty';
  if (name === '.' || name === '..') return `Topic name cannot be "${name}"`;
  if (name.length > TOPIC_NAME_MAX_LENGTH) return `Topic name is longer than ${TOPIC_NAME_MAX_LENGTH} characters`;
  if (!LEGAL_TOPIC.test(name)) return `Topic name "${name}" is illegal: only ASCII alphanumerics, '.', '_' and '-' are allowed`;
  return null;
}

/** A new random topic id; never the all-zero id and never Kafka's reserved METADATA_TOPIC_ID (1). */
export function newTopicId(): string {
  for (;;) {
    const b = randomBytes(16);
    const id = b.toString('base64url');
    if (!b.every((x) => x === 0) && !(b.subarray(0, 15).every((x) => x === 0) && b[15] === 1)) return id;
  }
}

export interface CreateTopicSpec {
  name: string;
  /** -1 for the broker default. */
  numPartitions: number;
  /** -1 for the broker default. */
  replicationFactor: number;
  /** Explicit replica lists per partition index (then numPartitions and replicationFactor are -1). */
  assignments: Array<{ partitionIndex: number; brokerIds: number[] }>;
  configs: Array<[string, string | null]>;
}

export interface CreateTopicResult {
  name: string;
  topicId: string;
  errorCode: number;
  errorMessage: string | null;
  numPartitions: number;
  replicationFactor: number;
  /** The topic's validated config overrides (also for validate-only), for the v5+ answer. */
  configs: ReadonlyMap<string, string>;
}

export interface DeleteTopicTarget {
  /** Exactly one of name and topicId is set. */
  name: string | null;
  topicId: string | null;
}

export interface DeleteTopicResult {
  name: string | null;
  topicId: string | null;
  errorCode: number;
  errorMessage: string | null;
}

export interface CreatePartitionsSpec {
  name: string;
  /** The new total partition count. */
  count: number;
  /** Replica lists of the new partitions only, or null for automatic placement. */
  assignments: number[][] | null;
}

export interface TopicConfigChange {
  topic: string;
  /**
   * The topic's complete new set of overrides, computed from its current ones (so an incremental
   * change sees the committed state). May throw ConfigError, answered with INVALID_CONFIG.
   */
  apply(current: ReadonlyMap<string, string>): Map<string, string | null>;
}

export interface AdminResult {
  errorCode: number;
  errorMessage: string | null;
}

/** The largest partition count of one topic (a bound on what one request can make the broker open). */
export const MAX_PARTITIONS = 100000;

/** Why a manual replica list is unusable, or null. */
function invalidReplicaList(brokerIds: readonly number[], image: MetadataImage): string | null {
  if (brokerIds.length === 0) return 'The manual partition assignment includes an empty replica list.';
  const seen = new Set<number>();
  for (const b of brokerIds) {
    if (seen.has(b)) return `The manual partition assignment includes the broker ${b} more than once.`;
    seen.add(b);
    if (!image.brokers.has(b)) return `The manual partition assignment includes broker ${b}, but no such broker is registered.`;
  }
  if (!brokerIds.some((b) => image.isUnfenced(b))) return `All brokers specified in the manual partition assignment (${brokerIds.join(', ')}) are fenced.`;
  return null;
}

/** A new partition's record: the ISR is its unfenced replicas, the first of them leads (Kafka's). */
function newPartition(image: MetadataImage, topicId: string, partition: number, replicas: number[]): PartitionRecord {
  const isr = replicas.filter((b) => image.isUnfenced(b));
  return { type: 'Partition', topicId, partition, replicas, isr, leader: isr[0] ?? NO_LEADER, leaderEpoch: 0, partitionEpoch: 0 };
}

export interface AlterPartitionRequest {
  topicId: string;
  partition: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: number[];
}

export interface AlterPartitionResult {
  errorCode: number;
  /** The committed state (also on FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION: the current one, null when unknown). */
  partition: PartitionImage | null;
}

export interface ElectLeadersResult {
  topic: string;
  partition: number;
  errorCode: number;
  errorMessage: string | null;
}

export interface ReassignmentTarget {
  topic: string;
  partition: number;
  /** The target replicas, or null to cancel the reassignment in progress. */
  replicas: number[] | null;
}

export interface OngoingReassignment {
  topic: string;
  partition: number;
  replicas: readonly number[];
  addingReplicas: readonly number[];
  removingReplicas: readonly number[];
}

export type MetadataListener = (image: MetadataImage, previous: MetadataImage) => Promise<void>;

/** An operation: it sees the latest image and returns the records to commit with its result. */
export type ControllerOperation<T> = (image: MetadataImage) => { records: MetadataRecord[]; result: T };

export abstract class Controller {
  constructor(
    readonly config: BrokerConfig,
    readonly nodeId: number,
    protected readonly logger: Logger,
  ) {}

  /** The latest committed (and applied) image. */
  abstract get image(): MetadataImage;

  /** `listener` is called after every committed change, in order, with the new and the previous image. */
  abstract onChange(listener: MetadataListener): void;

  /**
   * Runs `op` alone on the controller: it sees the latest image; its records are committed and
   * applied (here too: listeners have run) before the promise resolves and before the next
   * operation starts.
   */
  abstract run<T>(op: ControllerOperation<T>): Promise<T>;

  /**
   * `run`, with log lines that are written only once the records are committed: a forwarded
   * operation may be decided on a stale image and run again (cluster-controller.ts), and a line
   * saying a topic was created must not name a topic id that never existed. The lines of the
   * last run of `op` are the ones written.
   */
  protected execute<T>(op: (image: MetadataImage, log: (message: string, fields: Record<string, unknown>) => void) => { records: MetadataRecord[]; result: T }): Promise<T> {
    let lines: Array<[string, Record<string, unknown>]> = [];
    return this.run((image) => {
      lines = [];
      return op(image, (message, fields) => lines.push([message, fields]));
    }).then((result) => {
      for (const [message, fields] of lines) this.logger.info(message, fields);
      return result;
    });
  }

  /** Registers this broker's endpoints if the image does not already have them as they are (single node). */
  registerBroker(host: string, port: number, listeners: readonly BrokerEndpoint[] = []): Promise<void> {
    return this.run((image) => {
      const cur = image.brokers.get(this.nodeId);
      const same = cur !== undefined && cur.host === host && cur.port === port && !cur.fenced && JSON.stringify(cur.listeners) === JSON.stringify(listeners);
      if (same) return { records: [], result: undefined };
      return {
        records: [{ type: 'RegisterBroker', brokerId: this.nodeId, host, port, rack: null, incarnationId: newTopicId(), listeners: listeners.map((l) => ({ ...l })) }],
        result: undefined,
      };
    });
  }

  /**
   * AlterPartition (Kafka's api 56): the leader of a partition changes its ISR. Checked against
   * the image (partition-changes.ts alterPartition); resolves with the committed state.
   */
  alterPartition(req: AlterPartitionRequest, brokerId = this.nodeId, brokerEpoch = -1): Promise<AlterPartitionResult> {
    return this.run((image) => {
      const r = alterPartition(image, { ...req, brokerId, brokerEpoch });
      if (r.errorCode !== ErrorCode.NONE) {
        const current = image.topicsById.get(req.topicId)?.partitions[req.partition] ?? null;
        return { records: [], result: { errorCode: r.errorCode, partition: current } };
      }
      return { records: r.record === null ? [] : [r.record], result: { errorCode: ErrorCode.NONE, partition: r.partition } };
    });
  }

  /**
   * Fences brokers (a missed session, a controlled shutdown): a FenceBroker record each, and every
   * partition they are in re-elected (partition-changes.ts reconcilePartition). Returns the
   * number of partition records.
   */
  fenceBrokers(brokers: ReadonlyArray<{ brokerId: number; epoch: number }>): Promise<number> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      let next = image;
      for (const b of brokers) {
        const cur = next.brokers.get(b.brokerId);
        if (cur === undefined || cur.epoch !== b.epoch || cur.fenced) continue;
        const r: MetadataRecord = { type: 'FenceBroker', brokerId: b.brokerId, epoch: b.epoch };
        records.push(r);
        next = next.apply(r, next.offset);
      }
      if (records.length === 0) return { records, result: 0 };
      const changes = reconcileAll(next, this.config.bool('unclean.leader.election.enable'), new Set(brokers.map((b) => b.brokerId)));
      log('fenced brokers', { brokers: brokers.map((b) => b.brokerId).join(','), partitionChanges: changes.length });
      return { records: [...records, ...changes], result: changes.length };
    });
  }

  /** Unfences a broker (a heartbeat after it caught up) and gives leaderless partitions it can lead a leader. */
  unfenceBroker(brokerId: number, epoch: number): Promise<void> {
    return this.execute((image, log) => {
      const cur = image.brokers.get(brokerId);
      if (cur === undefined || cur.epoch !== epoch || !cur.fenced) return { records: [], result: undefined };
      const r: MetadataRecord = { type: 'UnfenceBroker', brokerId, epoch };
      const changes = reconcileAll(image.apply(r, image.offset), this.config.bool('unclean.leader.election.enable'), new Set([brokerId]));
      log('unfenced broker', { brokerId, partitionChanges: changes.length });
      return { records: [r, ...changes], result: undefined };
    });
  }

  /** ElectLeaders (api 43): `partitions` null means every partition (Kafka's "all"). */
  electLeaders(type: number, partitions: ReadonlyArray<{ topic: string; partition: number }> | null): Promise<ElectLeadersResult[]> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      const results: ElectLeadersResult[] = [];
      const targets = partitions ?? [...image.topicsByName.values()].flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition })));
      for (const { topic, partition } of targets) {
        const p = image.topic(topic)?.partitions[partition];
        if (p === undefined) {
          results.push({ topic, partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'This server does not host this topic-partition.' });
          continue;
        }
        const r = electLeader(image, p, type);
        if (r.record !== null) records.push(r.record);
        // "All partitions" answers only the partitions that got a new leader (as Kafka).
        if (partitions !== null || r.errorCode === ErrorCode.NONE) results.push({ topic, partition, errorCode: r.errorCode, errorMessage: r.errorMessage });
      }
      if (records.length > 0) log('elected leaders', { type, elected: records.length });
      return { records, result: results };
    });
  }

  /** AlterPartitionReassignments (api 45). */
  alterPartitionReassignments(targets: readonly ReassignmentTarget[]): Promise<AdminResult[]> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      const changed = new Map<string, PartitionImage>();
      const results = targets.map((t): AdminResult => {
        const topic = image.topic(t.topic);
        const key = `${t.topic}\u0000${t.partition}`;
        const p = changed.get(key) ?? topic?.partitions[t.partition];
        if (topic === undefined || p === undefined) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'This server does not host this topic-partition.' };
        const r = reassignPartition(image, p, t.replicas);
        if (r.errorCode !== ErrorCode.NONE) return { errorCode: r.errorCode, errorMessage: r.errorMessage };
        for (const rec of r.records) {
          records.push(rec);
          changed.set(key, applied(changed.get(key) ?? p, rec));
        }
        return { errorCode: ErrorCode.NONE, errorMessage: null };
      });
      if (records.length > 0) log('started partition reassignments', { partitions: records.length });
      return { records, result: results };
    });
  }

  /** ListPartitionReassignments (api 46): `partitions` null lists every reassignment in progress. */
  listPartitionReassignments(partitions: ReadonlyArray<{ topic: string; partition: number }> | null): OngoingReassignment[] {
    const image = this.image;
    const out: OngoingReassignment[] = [];
    const add = (topic: string, p: PartitionImage): void => {
      if (p.addingReplicas.length > 0 || p.removingReplicas.length > 0) out.push({ topic, partition: p.partition, replicas: p.replicas, addingReplicas: p.addingReplicas, removingReplicas: p.removingReplicas });
    };
    if (partitions === null) {
      for (const t of image.topicsByName.values()) for (const p of t.partitions) add(t.name, p);
    } else {
      for (const { topic, partition } of partitions) {
        const p = image.topic(topic)?.partitions[partition];
        if (p !== undefined) add(topic, p);
      }
    }
    return out;
  }

  /**
   * Hands this broker the next block of `size` producer ids, committed to the metadata log before
   * it is used, so no id is ever given out twice, across restarts too (Kafka's AllocateProducerIds).
   */
  allocateProducerIds(size: number): Promise<{ first: number; size: number }> {
    return this.run((image) => {
      const first = image.nextProducerId;
      return { records: [{ type: 'ProducerIds', brokerId: this.nodeId, nextProducerId: first + size }], result: { first, size } };
    });
  }

  /** CreateTopics (also used for auto-creation). `validateOnly` checks and commits nothing. */
  createTopics(specs: CreateTopicSpec[], validateOnly: boolean): Promise<CreateTopicResult[]> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      const seen = new Set<string>();
      // Names this operation creates, so 'a.b' and 'a_b' in one request collide too.
      const creating: string[] = [];
      const results = specs.map((spec): CreateTopicResult => {
        const fail = (errorCode: number, errorMessage: string): CreateTopicResult => ({
          name: spec.name,
          topicId: '',
          errorCode,
          errorMessage,
          numPartitions: -1,
          replicationFactor: -1,
          configs: new Map(),
        });
        if (seen.has(spec.name)) return fail(ErrorCode.INVALID_REQUEST, 'Duplicate topic name.');
        seen.add(spec.name);
        const bad = invalidTopicName(spec.name);
        if (bad !== null) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, bad);
        if (image.topic(spec.name) !== undefined) return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${spec.name}' already exists.`);
        const collides = [...image.topicsByName.keys(), ...creating].find((t) => t.replace(/\./g, '_') === spec.name.replace(/\./g, '_'));
        if (collides !== undefined) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, `Topic '${spec.name}' collides with existing topic: ${collides}`);
        let assignment: number[][];
        if (spec.assignments.length > 0) {
          // KRaft's order: the two counts must be -1 next to a manual assignment, replication factor first.
          if (spec.replicationFactor !== -1) {
            return fail(ErrorCode.INVALID_REQUEST, 'A manual partition assignment was specified, but replication factor was not set to -1.');
          }
          if (spec.numPartitions !== -1) {
            return fail(ErrorCode.INVALID_REQUEST, 'A manual partition assignment was specified, but numPartitions was not set to -1.');
          }
          const byIndex = new Map<number, number[]>();
          for (const a of spec.assignments) {
            if (byIndex.has(a.partitionIndex)) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Found multiple manual partition assignments for partition ${a.partitionIndex}`);
            const bad = invalidReplicaList(a.brokerIds, image);
            if (bad !== null) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, bad);
            byIndex.set(a.partitionIndex, a.brokerIds);
          }
          for (let i = 0; i < byIndex.size; i++) {
            if (!byIndex.has(i)) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'partitions should be a consecutive 0-based integer sequence');
          }
          assignment = Array.from({ length: byIndex.size }, (_, i) => [...byIndex.get(i)!]);
        } else {
          if (spec.numPartitions === 0 || spec.numPartitions < -1) return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions was set to an invalid non-positive value.');
          if (spec.replicationFactor === 0 || spec.replicationFactor < -1) {
            return fail(ErrorCode.INVALID_REPLICATION_FACTOR, 'Replication factor must be larger than 0, or -1 to use the default value.');
          }
          const partitions = spec.numPartitions === -1 ? this.config.number('num.partitions') : spec.numPartitions;
          const rf = spec.replicationFactor === -1 ? this.config.number('default.replication.factor') : spec.replicationFactor;
          if (partitions > MAX_PARTITIONS) return fail(ErrorCode.INVALID_PARTITIONS, `Number of partitions is larger than ${MAX_PARTITIONS}.`);
          const brokers = image.unfencedBrokerIds();
          if (rf > brokers.length) {
            return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${brokers.length} broker(s) are registered.`);
          }
          // Successive topics start at successive brokers, so their leaders spread.
          assignment = placeReplicas(brokers, image.topicsByName.size + creating.length, 0, partitions, rf);
        }
        let configs: Map<string, string>;
        try {
          configs = validateTopicConfigs(spec.configs);
        } catch (e) {
          if (e instanceof ConfigError) return fail(ErrorCode.INVALID_CONFIG, e.message);
          throw e;
        }
        const topicId = newTopicId();
        creating.push(spec.name);
        if (!validateOnly) {
          records.push({ type: 'Topic', name: spec.name, topicId });
          for (const [name, value] of configs) records.push({ type: 'Config', resourceType: 'topic', resourceName: spec.name, name, value });
          assignment.forEach((replicas, partition) => records.push(newPartition(image, topicId, partition, replicas)));
          log('created topic', { topic: spec.name, topicId, partitions: assignment.length, replicationFactor: assignment[0]!.length });
        }
        return {
          name: spec.name,
          topicId: validateOnly ? '' : topicId,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          numPartitions: assignment.length,
          replicationFactor: assignment[0]!.length,
          configs,
        };
      });
      return { records, result: results };
    });
  }

  /**
   * DeleteTopics: one RemoveTopic record per topic found, committed together. The replica
   * manager deletes the logs when the topics leave the image; a later create of the same name
   * gets a new topic id and a new, empty log.
   */
  deleteTopics(targets: DeleteTopicTarget[]): Promise<DeleteTopicResult[]> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      const removed = new Set<string>();
      const results = targets.map((t): DeleteTopicResult => {
        const topic = t.name !== null ? image.topic(t.name) : image.topicsById.get(t.topicId!);
        if (topic === undefined) {
          return t.name !== null
            ? { name: t.name, topicId: null, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'This server does not host this topic-partition.' }
            : { name: null, topicId: t.topicId, errorCode: ErrorCode.UNKNOWN_TOPIC_ID, errorMessage: 'This server does not host this topic ID.' };
        }
        if (!removed.has(topic.topicId)) {
          removed.add(topic.topicId);
          records.push({ type: 'RemoveTopic', topicId: topic.topicId });
          log('deleted topic', { topic: topic.name, topicId: topic.topicId, partitions: topic.partitions.length });
        }
        return { name: topic.name, topicId: topic.topicId, errorCode: ErrorCode.NONE, errorMessage: null };
      });
      return { records, result: results };
    });
  }

  /** CreatePartitions: grows topics to `count` partitions; `validateOnly` checks and commits nothing. */
  createPartitions(specs: CreatePartitionsSpec[], validateOnly: boolean): Promise<AdminResult[]> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      const results = specs.map((spec): AdminResult => {
        const fail = (errorCode: number, errorMessage: string): AdminResult => ({ errorCode, errorMessage });
        const topic = image.topic(spec.name);
        if (topic === undefined) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Topic ${spec.name} not found.`);
        const current = topic.partitions.length;
        if (spec.count < current) return fail(ErrorCode.INVALID_PARTITIONS, `The topic ${spec.name} currently has ${current} partition(s); ${spec.count} would not be an increase.`);
        if (spec.count === current) return fail(ErrorCode.INVALID_PARTITIONS, `Topic already has ${current} partition(s).`);
        if (spec.count > MAX_PARTITIONS) return fail(ErrorCode.INVALID_PARTITIONS, `Number of partitions is larger than ${MAX_PARTITIONS}.`);
        const added = spec.count - current;
        const rf = topic.partitions[0]?.replicas.length ?? 1;
        let assignment: number[][];
        if (spec.assignments !== null) {
          if (spec.assignments.length !== added) {
            return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Attempted to add ${added} additional partition(s), but only ${spec.assignments.length} assignment(s) were specified.`);
          }
          for (const replicas of spec.assignments) {
            const bad = invalidReplicaList(replicas, image);
            if (bad !== null) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, bad);
            if (replicas.length !== rf) {
              return fail(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                `The manual partition assignment includes a partition with ${replicas.length} replica(s), but this is not consistent with previous partitions, which have ${rf} replica(s).`,
              );
            }
          }
          assignment = spec.assignments.map((r) => [...r]);
        } else {
          const brokers = image.unfencedBrokerIds();
          if (rf > brokers.length) {
            return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${brokers.length} broker(s) are registered.`);
          }
          assignment = placeReplicas(brokers, 0, current, added, rf);
        }
        if (!validateOnly) {
          assignment.forEach((replicas, i) => records.push(newPartition(image, topic.topicId, current + i, replicas)));
          log('added partitions', { topic: spec.name, from: current, to: spec.count });
        }
        return { errorCode: ErrorCode.NONE, errorMessage: null };
      });
      return { records, result: results };
    });
  }

  /**
   * Topic config changes (AlterConfigs replaces the set, IncrementalAlterConfigs edits it): each
   * change computes the new overrides from the committed ones; the difference becomes Config
   * records (value null removes an override). The replica manager applies them to live logs.
   */
  alterTopicConfigs(changes: TopicConfigChange[], validateOnly: boolean): Promise<AdminResult[]> {
    return this.execute((image, log) => {
      const records: MetadataRecord[] = [];
      // Two changes to one topic in one call: the second sees the first.
      const working = new Map<string, ReadonlyMap<string, string>>();
      const results = changes.map((change): AdminResult => {
        const bad = invalidTopicName(change.topic);
        if (bad !== null) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: bad };
        const topic = image.topic(change.topic);
        if (topic === undefined) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `The topic '${change.topic}' does not exist.` };
        const current = working.get(topic.name) ?? topic.configs;
        let next: Map<string, string>;
        try {
          next = validateTopicConfigs(change.apply(current));
        } catch (e) {
          if (e instanceof ConfigError) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: e.message };
          throw e;
        }
        if (!validateOnly) {
          working.set(topic.name, next);
          for (const name of current.keys()) {
            if (!next.has(name)) records.push({ type: 'Config', resourceType: 'topic', resourceName: topic.name, name, value: null });
          }
          for (const [name, value] of next) {
            if (current.get(name) !== value) records.push({ type: 'Config', resourceType: 'topic', resourceName: topic.name, name, value });
          }
        }
        return { errorCode: ErrorCode.NONE, errorMessage: null };
      });
      if (records.length > 0) log('altered topic configs', { changes: records.length });
      return { records, result: results };
    });
  }
}

/** The single node's controller: records go to the local metadata log, fsynced, then are applied. */
export class LocalController extends Controller {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: MetadataListener[] = [];

  constructor(
    private image_: MetadataImage,
    private readonly log: MetadataLogWriter,
    config: BrokerConfig,
    nodeId: number,
    logger: Logger,
  ) {
    super(config, nodeId, logger);
  }

  get image(): MetadataImage {
    return this.image_;
  }

  onChange(listener: MetadataListener): void {
    this.listeners.push(listener);
  }

  run<T>(op: ControllerOperation<T>): Promise<T> {
    const next = this.queue.then(async () => {
      const { records, result } = op(this.image_);
      if (records.length > 0) await this.commit(records);
      return result;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async commit(records: MetadataRecord[]): Promise<void> {
    const first = await this.log.append(records);
    const previous = this.image_;
    let image = previous;
    records.forEach((r, i) => (image = image.apply(r, first + i)));
    this.image_ = image;
    for (const l of this.listeners) await l(image, previous);
  }
}
