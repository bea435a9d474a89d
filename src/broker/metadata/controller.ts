/**
 * The controller: the only writer of the metadata log.
 *
 * An operation validates against the current image, produces MetadataRecords, appends them to
 * the metadata log (fsynced), then applies them to the image and tells listeners (the replica
 * manager creates and deletes partition logs from that). Operations run one at a time, so no
 * two can validate against the same image and both commit (KRaft's QuorumController has the same
 * single-writer shape; the cluster issue replaces the local log with the Raft quorum).
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode } from '../../protocol/errors.js';
import { BrokerConfig, ConfigError, validateTopicConfigs } from '../config.js';
import type { Logger } from '../logger.js';
import { MetadataImage, type MetadataRecord } from './image.js';

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
  return null;
}

/** Round-robin placement of partitions [first, first + count) over `brokers` (sorted), `rf` replicas each. */
function placeReplicas(brokers: readonly number[], first: number, count: number, rf: number): number[][] {
  return Array.from({ length: count }, (_, i) => Array.from({ length: rf }, (_, r) => brokers[(first + i + r) % brokers.length]!));
}

export type MetadataListener = (image: MetadataImage, previous: MetadataImage) => Promise<void>;

export class Controller {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: MetadataListener[] = [];

  constructor(
    private image_: MetadataImage,
    private readonly log: MetadataLogWriter,
    readonly config: BrokerConfig,
    readonly nodeId: number,
    private readonly logger: Logger,
  ) {}

  get image(): MetadataImage {
    return this.image_;
  }

  onChange(listener: MetadataListener): void {
    this.listeners.push(listener);
  }

  /**
   * Runs `op` alone: it sees the latest image and returns the records to commit with its result.
   * The records are appended and applied before the next operation starts.
   */
  run<T>(op: (image: MetadataImage) => { records: MetadataRecord[]; result: T }): Promise<T> {
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

  /** Registers this broker's endpoint if the image does not already have it as is. */
  registerBroker(host: string, port: number): Promise<void> {
    return this.run((image) => {
      const cur = image.brokers.get(this.nodeId);
      if (cur !== undefined && cur.host === host && cur.port === port) return { records: [], result: undefined };
      return {
        records: [{ type: 'RegisterBroker', brokerId: this.nodeId, host, port, rack: null, incarnationId: newTopicId() }],
        result: undefined,
      };
    });
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
    return this.run((image) => {
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
          const brokers = [...image.brokers.keys()].sort((a, b) => a - b);
          if (rf > brokers.length) {
            return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${brokers.length} broker(s) are registered.`);
          }
          assignment = placeReplicas(brokers, 0, partitions, rf);
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
          assignment.forEach((replicas, partition) =>
            records.push({ type: 'Partition', topicId, partition, replicas, isr: replicas, leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 }),
          );
          this.logger.info('creating topic', { topic: spec.name, topicId, partitions: assignment.length, replicationFactor: assignment[0]!.length });
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
    return this.run((image) => {
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
          this.logger.info('deleting topic', { topic: topic.name, topicId: topic.topicId, partitions: topic.partitions.length });
        }
        return { name: topic.name, topicId: topic.topicId, errorCode: ErrorCode.NONE, errorMessage: null };
      });
      return { records, result: results };
    });
  }

  /** CreatePartitions: grows topics to `count` partitions; `validateOnly` checks and commits nothing. */
  createPartitions(specs: CreatePartitionsSpec[], validateOnly: boolean): Promise<AdminResult[]> {
    return this.run((image) => {
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
          const brokers = [...image.brokers.keys()].sort((a, b) => a - b);
          if (rf > brokers.length) {
            return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${brokers.length} broker(s) are registered.`);
          }
          assignment = placeReplicas(brokers, current, added, rf);
        }
        if (!validateOnly) {
          assignment.forEach((replicas, i) =>
            records.push({ type: 'Partition', topicId: topic.topicId, partition: current + i, replicas, isr: replicas, leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 }),
          );
          this.logger.info('adding partitions', { topic: spec.name, from: current, to: spec.count });
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
    return this.run((image) => {
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
      if (records.length > 0) this.logger.info('altering topic configs', { changes: records.length });
      return { records, result: results };
    });
  }
}
