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
import type { MetadataLog } from './metadata-log.js';

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
}

export type MetadataListener = (image: MetadataImage, previous: MetadataImage) => Promise<void>;

export class Controller {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: MetadataListener[] = [];

  constructor(
    private image_: MetadataImage,
    private readonly log: MetadataLog,
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

  /** CreateTopics (also used for auto-creation). `validateOnly` checks and commits nothing. */
  createTopics(specs: CreateTopicSpec[], validateOnly: boolean): Promise<CreateTopicResult[]> {
    return this.run((image) => {
      const records: MetadataRecord[] = [];
      const seen = new Set<string>();
      const results = specs.map((spec): CreateTopicResult => {
        const fail = (errorCode: number, errorMessage: string): CreateTopicResult => ({
          name: spec.name,
          topicId: '',
          errorCode,
          errorMessage,
          numPartitions: -1,
          replicationFactor: -1,
        });
        if (seen.has(spec.name)) return fail(ErrorCode.INVALID_REQUEST, `Topic ${spec.name} appears more than once in the request`);
        seen.add(spec.name);
        const bad = invalidTopicName(spec.name);
        if (bad !== null) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, bad);
        if (image.topic(spec.name) !== undefined) return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${spec.name}' already exists.`);
        const collides = [...image.topicsByName.keys()].find((t) => t.replace(/\./g, '_') === spec.name.replace(/\./g, '_'));
        if (collides !== undefined) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, `Topic '${spec.name}' collides with existing topic: ${collides}`);
        let assignment: number[][];
        if (spec.assignments.length > 0) {
          if (spec.numPartitions !== -1 || spec.replicationFactor !== -1) {
            return fail(ErrorCode.INVALID_REQUEST, 'Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.');
          }
          const sorted = [...spec.assignments].sort((a, b) => a.partitionIndex - b.partitionIndex);
          if (sorted.some((a, i) => a.partitionIndex !== i)) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'Partitions must be numbered 0..n-1 without gaps');
          for (const a of sorted) {
            if (a.brokerIds.length === 0) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Partition ${a.partitionIndex} has no replicas`);
            if (new Set(a.brokerIds).size !== a.brokerIds.length) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Partition ${a.partitionIndex} lists a broker twice`);
            const unknown = a.brokerIds.find((b) => !image.brokers.has(b));
            if (unknown !== undefined) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Broker ${unknown} does not exist`);
          }
          assignment = sorted.map((a) => a.brokerIds);
        } else {
          const partitions = spec.numPartitions === -1 ? this.config.number('num.partitions') : spec.numPartitions;
          const rf = spec.replicationFactor === -1 ? this.config.number('default.replication.factor') : spec.replicationFactor;
          if (partitions <= 0) return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
          if (partitions > 100000) return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions is larger than 100000.');
          if (rf <= 0) return fail(ErrorCode.INVALID_REPLICATION_FACTOR, 'Replication factor must be larger than 0.');
          const brokers = [...image.brokers.keys()].sort((a, b) => a - b);
          if (rf > brokers.length) {
            return fail(ErrorCode.INVALID_REPLICATION_FACTOR, `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${brokers.length} broker(s) are registered.`);
          }
          assignment = Array.from({ length: partitions }, (_, p) => Array.from({ length: rf }, (_, r) => brokers[(p + r) % brokers.length]!));
        }
        let configs: Map<string, string>;
        try {
          configs = validateTopicConfigs(spec.configs);
        } catch (e) {
          if (e instanceof ConfigError) return fail(ErrorCode.INVALID_CONFIG, e.message);
          throw e;
        }
        const topicId = newTopicId();
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
        };
      });
      return { records, result: results };
    });
  }
}
