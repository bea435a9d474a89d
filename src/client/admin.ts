/**
 * Admin: topics, partitions, configs, records, offsets, consumer groups, transactions and the
 * cluster.
 *
 * Every call returns plain data or throws a typed error: a `KafkaError` for a broker error code
 * (per topic, group or partition, the first one wins; the message names the resource), with
 * retriable errors retried by the cluster's retry policy. Topic admin goes to the controller,
 * offsets, record deletion and producer states to each partition's leader, group calls to the
 * group's coordinator, transaction descriptions to the transactional id's coordinator, and
 * transaction listings to every broker.
 */
import { ErrorCode } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import {
  AlterPartitionReassignmentsApi,
  ElectLeadersApi,
  ListPartitionReassignmentsApi,
  CreatePartitionsApi,
  CreateTopicsApi,
  DeleteGroupsApi,
  DeleteRecordsApi,
  DeleteTopicsApi,
  DescribeClusterApi,
  DescribeConfigsApi,
  DescribeGroupsApi,
  DescribeProducersApi,
  DescribeTransactionsApi,
  DescribeLogDirsApi,
  API_BY_KEY,
  IncrementalAlterConfigsApi,
  ListGroupsApi,
  ListOffsetsApi,
  ListTransactionsApi,
  WriteTxnMarkersApi,
  OffsetCommitApi,
  OffsetDeleteApi,
  OffsetFetchApi,
  decodeConsumerProtocolAssignment,
  type OffsetFetchResponse,
} from '../protocol/messages/index.js';
import { ZERO_UUID } from '../protocol/reader.js';
import type { Cluster, TopicInfo } from './cluster.js';
import type { Connection } from './connection.js';
import { KafkaError, StrandError } from './errors.js';
import { describeLogCleaner, type LogCleanerDescription } from './log-cleaner.js';
import { AdminSecurity } from './admin-security.js';

export interface NewTopic {
  name: string;
  /** Default -1: the broker's num.partitions. */
  partitions?: number;
  /** Default -1: the broker's default.replication.factor. */
  replicationFactor?: number;
  configs?: Record<string, string>;
}

/** A partition's election outcome (ElectLeaders): errorCode 0 when it got a new leader. */
export interface ElectionResult {
  topic: string;
  partition: number;
  errorCode: number;
  errorMessage: string | null;
}

/** A reassignment in progress (ListPartitionReassignments). */
export interface PartitionReassignment {
  topic: string;
  partition: number;
  replicas: number[];
  addingReplicas: number[];
  removingReplicas: number[];
}

export interface TopicDescription {
  name: string;
  topicId: string;
  isInternal: boolean;
  partitions: Array<{ partition: number; leader: number; leaderEpoch: number; replicas: number[]; isr: number[] }>;
}

export type ResourceType = 'topic' | 'broker';
const RESOURCE_CODE: Record<ResourceType, number> = { topic: 2, broker: 4 };

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  isSensitive: boolean;
  /** Kafka's ConfigSource code (1 dynamic topic, 4 static broker, 5 default, ...). */
  source: number;
}

export interface ConfigResourceResult {
  type: ResourceType;
  name: string;
  configs: ConfigEntry[];
}

export interface AlterConfigsSpec {
  type: ResourceType;
  name: string;
  /** Values to set. */
  set?: Record<string, string>;
  /** Names to reset to their default. */
  delete?: string[];
}

/** Which offset to look up: the first, the next to be written, or the first at/after a timestamp. */
export type OffsetSpec = 'earliest' | 'latest' | { timestamp: number };

export interface PartitionOffset {
  partition: number;
  offset: number;
  timestamp: number;
}

/** One log directory of one broker (DescribeLogDirs). */
export interface LogDirDescription {
  broker: number;
  /** The directory's absolute path on the broker. */
  logDir: string;
  /** Bytes of the volume it is on, and bytes usable there (-1 when the broker does not say). */
  totalBytes: number;
  usableBytes: number;
  partitions: Array<{ topic: string; partition: number; sizeBytes: number; offsetLag: number; isFuture: boolean }>;
}

/** What one broker answers for: its api key ranges (ApiVersions) and the version the client uses. */
export interface BrokerApiVersions {
  broker: number;
  host: string;
  port: number;
  apis: Array<{ apiKey: number; name: string; minVersion: number; maxVersion: number; clientVersion: number | null }>;
}

export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  assignment: Array<{ topic: string; partitions: number[] }>;
}

export interface GroupDescription {
  groupId: string;
  state: string;
  protocolType: string;
  protocol: string;
  members: GroupMemberDescription[];
}

export interface GroupOffset {
  topic: string;
  partition: number;
  /** Committed offset (-1 when none). */
  offset: number;
  metadata: string | null;
}

export interface PartitionLag extends GroupOffset {
  /** The partition's end offset (high watermark). */
  end: number;
  /** end − committed (end − earliest when nothing is committed). */
  lag: number;
}

/** A transactional id as its coordinator lists it (ListTransactions). */
export interface TransactionListing {
  transactionalId: string;
  producerId: number;
  /** Kafka's state name: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence. */
  state: string;
  /** The broker that coordinates it. */
  coordinatorId: number;
}

export interface ListTransactionsOptions {
  /** Only ids in one of these states (Kafka's names, exact). */
  states?: string[];
  /** Only ids whose current producer id is one of these. */
  producerIds?: number[];
  /** Only transactions running longer than this (ListTransactions v1, KIP-994). */
  durationMs?: number;
}

/** One transactional id's state at its coordinator (DescribeTransactions). */
export interface TransactionDescription {
  transactionalId: string;
  coordinatorId: number;
  state: string;
  producerId: number;
  producerEpoch: number;
  transactionTimeoutMs: number;
  /** Start of the current (or last) transaction; null when none has started since the producer was initialised. */
  transactionStartTimeMs: number | null;
  /** Partitions of the open (or ending) transaction; empty once it is complete. */
  partitions: Array<{ topic: string; partition: number }>;
}

/** A producer as a partition knows it (DescribeProducers). */
export interface ProducerStateDescription {
  producerId: number;
  producerEpoch: number;
  /** Sequence of the last record written (-1 when unknown). */
  lastSequence: number;
  /** Timestamp of its last batch (-1 when unknown). */
  lastTimestamp: number;
  /** Coordinator epoch of the last transaction marker; null when none was written. */
  coordinatorEpoch: number | null;
  /** First offset of the producer's open transaction in this partition; null when none is open. */
  currentTransactionStartOffset: number | null;
}

export interface PartitionProducers {
  topic: string;
  partition: number;
  /** The broker that answered (the partition's leader). */
  leader: number;
  activeProducers: ProducerStateDescription[];
}

/** A partition's open transaction to abort (Admin.abortTransaction): as DescribeProducers shows it. */
export interface AbortTransactionSpec {
  topic: string;
  partition: number;
  producerId: number;
  producerEpoch: number;
  /** The coordinator epoch of the producer's last marker in the partition (default 0). */
  coordinatorEpoch?: number;
}

function timestampOf(spec: OffsetSpec): number {
  return spec === 'earliest' ? -2 : spec === 'latest' ? -1 : spec.timestamp;
}

export class Admin {
  private closed = false;

  /** SCRAM users, ACLs and client quotas (admin-security.ts). */
  readonly security: AdminSecurity;

  constructor(
    readonly cluster: Cluster,
    private readonly ownsCluster = false,
  ) {
    this.security = new AdminSecurity(() => this.cluster.withRetry('controller', () => this.controller()));
  }

  async connect(): Promise<void> {
    await this.cluster.withRetry('connect', () => this.cluster.anyConnection());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsCluster) await this.cluster.close();
  }

  private async controller(): Promise<Connection> {
    if (this.cluster.controllerId < 0) await this.cluster.refreshMetadata();
    const id = this.cluster.controllerId;
    return id >= 0 ? this.cluster.connection(id) : this.cluster.anyConnection();
  }

  // ------------------------------------------------------------------------------------ topics

  /** Creates topics; throws TOPIC_ALREADY_EXISTS etc. unless `ignoreExisting`. */
  async createTopics(topics: NewTopic[], opts: { validateOnly?: boolean; timeoutMs?: number; ignoreExisting?: boolean } = {}): Promise<void> {
    const resp = await this.cluster.withRetry('CreateTopics', async () => {
      const conn = await this.controller();
      return conn.request(CreateTopicsApi, {
        topics: topics.map((t) => ({
          name: t.name,
          numPartitions: t.partitions ?? -1,
          replicationFactor: t.replicationFactor ?? -1,
          assignments: [],
          configs: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
        timeoutMs: opts.timeoutMs ?? 30000,
        validateOnly: opts.validateOnly ?? false,
      });
    });
    for (const r of resp.topics) {
      if (r.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS && opts.ignoreExisting) continue;
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `create topic ${r.name}`, r.errorMessage);
    }
    await this.cluster.refreshMetadata(topics.map((t) => t.name)).catch(() => {});
  }

  /** Names of all topics (internal ones only with `includeInternal`). */
  async listTopics(opts: { includeInternal?: boolean } = {}): Promise<string[]> {
    const resp = await this.cluster.fetchMetadata(null, false);
    return resp.topics
      .filter((t) => t.errorCode === 0 && t.name !== null && (opts.includeInternal || !t.isInternal))
      .map((t) => t.name!)
      .sort();
  }

  async describeTopics(names: string[]): Promise<TopicDescription[]> {
    const resp = await this.cluster.fetchMetadata(names, false);
    this.cluster.applyMetadata(resp);
    return names.map((n) => {
      const t = resp.topics.find((x) => x.name === n);
      if (t === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, n);
      if (t.errorCode !== 0) throw new KafkaError(t.errorCode, `describe topic ${n}`);
      return {
        name: n,
        topicId: t.topicId,
        isInternal: t.isInternal,
        partitions: t.partitions
          .map((p) => ({ partition: p.partitionIndex, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes, isr: p.isrNodes }))
          .sort((a, b) => a.partition - b.partition),
      };
    });
  }

  async deleteTopics(names: string[], opts: { timeoutMs?: number } = {}): Promise<void> {
    const resp = await this.cluster.withRetry('DeleteTopics', async () => {
      const conn = await this.controller();
      return conn.request(DeleteTopicsApi, { topics: names.map((name) => ({ name, topicId: ZERO_UUID })), topicNames: names, timeoutMs: opts.timeoutMs ?? 30000 });
    });
    for (const r of resp.responses) if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `delete topic ${r.name}`, r.errorMessage);
    for (const n of names) this.cluster.topics.delete(n);
  }

  /** Grows topics to `count` partitions in total. */
  async createPartitions(specs: Array<{ topic: string; count: number }>, opts: { validateOnly?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const resp = await this.cluster.withRetry('CreatePartitions', async () => {
      const conn = await this.controller();
      return conn.request(CreatePartitionsApi, {
        topics: specs.map((s) => ({ name: s.topic, count: s.count, assignments: null })),
        timeoutMs: opts.timeoutMs ?? 30000,
        validateOnly: opts.validateOnly ?? false,
      });
    });
    for (const r of resp.results) if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `create partitions of ${r.name}`, r.errorMessage);
    await this.cluster.refreshMetadata(specs.map((s) => s.topic)).catch(() => {});
  }

  /**
   * ElectLeaders: `preferred` moves leadership back to each partition's first replica; `unclean`
   * elects a leader for partitions that have none, possibly losing records. `partitions` omitted:
   * every partition (then only the partitions that got a new leader are returned). Per-partition
   * errors (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ...) are returned, not thrown.
   */
  async electLeaders(type: 'preferred' | 'unclean', partitions?: Array<{ topic: string; partition: number }>, opts: { timeoutMs?: number } = {}): Promise<ElectionResult[]> {
    const byTopic = new Map<string, number[]>();
    for (const p of partitions ?? []) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    const resp = await this.cluster.withRetry('ElectLeaders', async () => {
      const conn = await this.controller();
      return conn.request(ElectLeadersApi, {
        electionType: type === 'preferred' ? 0 : 1,
        topicPartitions: partitions === undefined ? null : [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })),
        timeoutMs: opts.timeoutMs ?? 30000,
      });
    });
    if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, 'elect leaders');
    await this.cluster.refreshMetadata().catch(() => {});
    return resp.replicaElectionResults.flatMap((t) => t.partitionResult.map((p) => ({ topic: t.topic, partition: p.partitionId, errorCode: p.errorCode, errorMessage: p.errorMessage })));
  }

  /** AlterPartitionReassignments: `replicas` the target list, or null to cancel a reassignment in progress. Throws on any partition's error. */
  async alterPartitionReassignments(specs: Array<{ topic: string; partition: number; replicas: number[] | null }>, opts: { timeoutMs?: number } = {}): Promise<void> {
    const byTopic = new Map<string, Array<{ partitionIndex: number; replicas: number[] | null }>>();
    for (const s of specs) byTopic.set(s.topic, [...(byTopic.get(s.topic) ?? []), { partitionIndex: s.partition, replicas: s.replicas }]);
    const resp = await this.cluster.withRetry('AlterPartitionReassignments', async () => {
      const conn = await this.controller();
      return conn.request(AlterPartitionReassignmentsApi, { timeoutMs: opts.timeoutMs ?? 30000, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) });
    });
    if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, 'alter partition reassignments', resp.errorMessage);
    for (const t of resp.responses) for (const p of t.partitions) if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `reassign ${t.name}-${p.partitionIndex}`, p.errorMessage);
  }

  /** ListPartitionReassignments: the reassignments in progress (of the given partitions, or all). */
  async listPartitionReassignments(partitions?: Array<{ topic: string; partition: number }>): Promise<PartitionReassignment[]> {
    const byTopic = new Map<string, number[]>();
    for (const p of partitions ?? []) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    const resp = await this.cluster.withRetry('ListPartitionReassignments', async () => {
      const conn = await this.controller();
      return conn.request(ListPartitionReassignmentsApi, { timeoutMs: 30000, topics: partitions === undefined ? null : [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) });
    });
    if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, 'list partition reassignments', resp.errorMessage);
    return resp.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, replicas: p.replicas, addingReplicas: p.addingReplicas, removingReplicas: p.removingReplicas })));
  }

  // ----------------------------------------------------------------------------------- configs

  async describeConfigs(resources: Array<{ type: ResourceType; name: string; keys?: string[] }>): Promise<ConfigResourceResult[]> {
    const resp = await this.cluster.withRetry('DescribeConfigs', async () => {
      const conn = await this.cluster.anyConnection();
      return conn.request(DescribeConfigsApi, {
        resources: resources.map((r) => ({ resourceType: RESOURCE_CODE[r.type], resourceName: r.name, configurationKeys: r.keys ?? null })),
        includeSynonyms: false,
        includeDocumentation: false,
      });
    });
    return resp.results.map((r) => {
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `describe configs of ${r.resourceName}`, r.errorMessage);
      return {
        type: r.resourceType === 4 ? 'broker' : 'topic',
        name: r.resourceName,
        configs: r.configs.map((c) => ({ name: c.name, value: c.value, readOnly: c.readOnly, isDefault: c.isDefault || c.configSource === 5, isSensitive: c.isSensitive, source: c.configSource })),
      };
    });
  }

  /** Changes configs incrementally (IncrementalAlterConfigs): `set` values, `delete` overrides. */
  async alterConfigs(specs: AlterConfigsSpec[], opts: { validateOnly?: boolean } = {}): Promise<void> {
    const resp = await this.cluster.withRetry('IncrementalAlterConfigs', async () => {
      const conn = await this.cluster.anyConnection();
      return conn.request(IncrementalAlterConfigsApi, {
        resources: specs.map((s) => ({
          resourceType: RESOURCE_CODE[s.type],
          resourceName: s.name,
          configs: [
            ...Object.entries(s.set ?? {}).map(([name, value]) => ({ name, configOperation: 0, value })),
            ...(s.delete ?? []).map((name) => ({ name, configOperation: 1, value: null })),
          ],
        })),
        validateOnly: opts.validateOnly ?? false,
      });
    });
    for (const r of resp.responses) if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `alter configs of ${r.resourceName}`, r.errorMessage);
  }

  // ----------------------------------------------------------------------------------- cluster

  async describeCluster(): Promise<{ clusterId: string | null; controllerId: number; brokers: Array<{ nodeId: number; host: string; port: number; rack: string | null }> }> {
    const conn = await this.cluster.withRetry('connect', () => this.cluster.anyConnection());
    if (conn.supports(DescribeClusterApi.key)) {
      const r = await this.cluster.withRetry('DescribeCluster', async () => (await this.cluster.anyConnection()).request(DescribeClusterApi, { includeClusterAuthorizedOperations: false, endpointType: 1 }));
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, 'DescribeCluster', r.errorMessage);
      return { clusterId: r.clusterId, controllerId: r.controllerId, brokers: r.brokers.map((b) => ({ nodeId: b.brokerId, host: b.host, port: b.port, rack: b.rack })) };
    }
    const m = await this.cluster.fetchMetadata([], false);
    return { clusterId: m.clusterId, controllerId: m.controllerId, brokers: m.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })) };
  }

  /**
   * Log directories of every broker (or of `brokers`), with the size on disk of the partitions
   * each hosts (all of them, or those of `topics`). Throws UNSUPPORTED_VERSION when a broker does
   * not answer DescribeLogDirs.
   */
  async describeLogDirs(opts: { topics?: string[]; brokers?: number[] } = {}): Promise<LogDirDescription[]> {
    await this.cluster.refreshMetadata(opts.topics ?? []);
    let request: Array<{ topic: string; partitions: number[] }> | null = null;
    if (opts.topics !== undefined) {
      request = [];
      for (const t of opts.topics) request.push({ topic: t, partitions: (await this.cluster.topic(t)).partitions.map((p) => p.partition) });
    }
    const out: LogDirDescription[] = [];
    for (const nodeId of opts.brokers ?? [...this.cluster.brokers.keys()].sort((a, b) => a - b)) {
      const r = await this.cluster.withRetry('DescribeLogDirs', async () => (await this.cluster.connection(nodeId)).request(DescribeLogDirsApi, { topics: request }));
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `DescribeLogDirs of broker ${nodeId}`);
      for (const d of r.results) {
        if (d.errorCode !== 0) throw new KafkaError(d.errorCode, `log dir ${d.logDir} of broker ${nodeId}`);
        out.push({
          broker: nodeId,
          logDir: d.logDir,
          totalBytes: d.totalBytes,
          usableBytes: d.usableBytes,
          partitions: d.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, sizeBytes: p.partitionSize, offsetLag: p.offsetLag, isFuture: p.isFutureKey }))),
        });
      }
    }
    return out;
  }

  /** The api versions every broker offers (from the ApiVersions exchange of the client's connection to it). */
  async apiVersions(): Promise<BrokerApiVersions[]> {
    await this.cluster.refreshMetadata();
    const out: BrokerApiVersions[] = [];
    for (const [nodeId, b] of [...this.cluster.brokers].sort((x, y) => x[0] - y[0])) {
      const conn = await this.cluster.withRetry('connect', () => this.cluster.connection(nodeId));
      const apis = [...conn.brokerVersions]
        .sort((x, y) => x[0] - y[0])
        .map(([apiKey, r]) => ({ apiKey, name: API_BY_KEY.get(apiKey)?.name ?? `Unknown(${apiKey})`, minVersion: r.min, maxVersion: r.max, clientVersion: conn.supports(apiKey) ? conn.versionFor(apiKey) : null }));
      out.push({ broker: nodeId, host: b.host, port: b.port, apis });
    }
    return out;
  }

  // ----------------------------------------------------------------------------------- records

  private async byLeader<T extends { partition: number }>(topic: string, items: T[]): Promise<Map<number, T[]>> {
    const info = await this.cluster.topic(topic);
    const out = new Map<number, T[]>();
    for (const it of items) {
      const leader = info.partitions[it.partition]?.leader;
      if (leader === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}-${it.partition}`);
      let l = out.get(leader);
      if (l === undefined) out.set(leader, (l = []));
      l.push(it);
    }
    return out;
  }

  /** Offsets of every partition of `topic` (or of `partitions`) for `spec`. */
  async listOffsets(topic: string, spec: OffsetSpec = 'latest', partitions?: number[]): Promise<PartitionOffset[]> {
    return this.cluster.withRetry(`ListOffsets ${topic}`, async () => {
      const info: TopicInfo = await this.cluster.topic(topic);
      const parts = (partitions ?? info.partitions.map((p) => p.partition)).map((partition) => ({ partition }));
      const out: PartitionOffset[] = [];
      for (const [leader, ps] of await this.byLeader(topic, parts)) {
        const conn = await this.cluster.connection(leader);
        const resp = await conn.request(ListOffsetsApi, {
          replicaId: -1,
          isolationLevel: 0,
          timeoutMs: 30000,
          topics: [{ name: topic, partitions: ps.map((p) => ({ partitionIndex: p.partition, currentLeaderEpoch: -1, timestamp: timestampOf(spec), maxNumOffsets: 1 })) }],
        });
        for (const t of resp.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `ListOffsets ${topic}-${p.partitionIndex}`);
            out.push({ partition: p.partitionIndex, offset: p.offset, timestamp: p.timestamp });
          }
        }
      }
      return out.sort((a, b) => a.partition - b.partition);
    });
  }

  /** Deletes records before `offset` (-1: the high watermark) in each partition; resolves with the new low watermarks. */
  async deleteRecords(topic: string, partitions: Array<{ partition: number; offset: number }>, opts: { timeoutMs?: number } = {}): Promise<Array<{ partition: number; lowWatermark: number }>> {
    return this.cluster.withRetry(`DeleteRecords ${topic}`, async () => {
      const out: Array<{ partition: number; lowWatermark: number }> = [];
      for (const [leader, ps] of await this.byLeader(topic, partitions)) {
        const conn = await this.cluster.connection(leader);
        const resp = await conn.request(DeleteRecordsApi, {
          topics: [{ name: topic, partitions: ps.map((p) => ({ partitionIndex: p.partition, offset: p.offset })) }],
          timeoutMs: opts.timeoutMs ?? 30000,
        });
        for (const t of resp.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `DeleteRecords ${topic}-${p.partitionIndex}`);
            out.push({ partition: p.partitionIndex, lowWatermark: p.lowWatermark });
          }
        }
      }
      return out.sort((a, b) => a.partition - b.partition);
    });
  }

  /**
   * The log cleaner per compacted partition (dirty ratio, checkpoint, last pass) and per broker:
   * Strand's DescribeLogCleaner extension (see log-cleaner.ts); `topics` undefined means every
   * compacted topic. A broker without the extension (Kafka) answers UNSUPPORTED_VERSION.
   */
  async describeLogCleaner(topics?: string[]): Promise<LogCleanerDescription> {
    return describeLogCleaner(this.cluster, topics);
  }

  // ------------------------------------------------------------------------------------ groups

  private async coordinatorConn(groupId: string): Promise<Connection> {
    return this.cluster.connection(await this.cluster.coordinator(groupId));
  }

  private groupCall<T>(what: string, groupId: string, fn: (c: Connection) => Promise<T>): Promise<T> {
    return this.cluster.withRetry(what, async () => {
      try {
        return await fn(await this.coordinatorConn(groupId));
      } catch (e) {
        if (e instanceof StrandError && e.needsMetadataRefresh) this.cluster.forgetCoordinator(groupId);
        throw e;
      }
    });
  }

  async listGroups(): Promise<GroupListing[]> {
    await this.cluster.refreshMetadata();
    const out: GroupListing[] = [];
    // A copy: a concurrent metadata refresh clears and refills the map while this loop awaits,
    // and iterating the live map would then visit the same broker again.
    for (const nodeId of [...this.cluster.brokers.keys()]) {
      const r = await this.cluster.withRetry('ListGroups', async () => (await this.cluster.connection(nodeId)).request(ListGroupsApi, { statesFilter: [], typesFilter: [] }));
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, 'ListGroups');
      for (const g of r.groups) out.push({ groupId: g.groupId, protocolType: g.protocolType, state: g.groupState });
    }
    return out.sort((a, b) => a.groupId.localeCompare(b.groupId));
  }

  async describeGroups(groupIds: string[]): Promise<GroupDescription[]> {
    const out: GroupDescription[] = [];
    for (const groupId of groupIds) {
      const r = await this.groupCall('DescribeGroups', groupId, (c) => c.request(DescribeGroupsApi, { groups: [groupId], includeAuthorizedOperations: false }));
      const g = r.groups[0];
      if (g === undefined) throw new StrandError('CORRUPT_RESPONSE', `no group ${groupId} in DescribeGroups response`);
      if (g.errorCode !== 0) throw new KafkaError(g.errorCode, `describe group ${groupId}`);
      out.push({
        groupId,
        state: g.groupState,
        protocolType: g.protocolType,
        protocol: g.protocolData,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          assignment: decodeAssignment(g.protocolType, m.memberAssignment),
        })),
      });
    }
    return out;
  }

  async deleteGroups(groupIds: string[]): Promise<void> {
    for (const groupId of groupIds) {
      const r = await this.groupCall('DeleteGroups', groupId, (c) => c.request(DeleteGroupsApi, { groupsNames: [groupId] }));
      for (const g of r.results) if (g.errorCode !== 0) throw new KafkaError(g.errorCode, `delete group ${g.groupId}`);
    }
  }

  /** Committed offsets of a group (all topics, or `topics`). */
  async fetchOffsets(groupId: string, topics?: string[]): Promise<GroupOffset[]> {
    let req: Array<{ name: string; partitionIndexes: number[] }> | null = null;
    if (topics !== undefined) {
      req = [];
      for (const t of topics) req.push({ name: t, partitionIndexes: (await this.cluster.topic(t)).partitions.map((p) => p.partition) });
    }
    const r = await this.groupCall<OffsetFetchResponse>('OffsetFetch', groupId, (c) => c.request(OffsetFetchApi, { groupId, topics: req, groups: [], requireStable: false }));
    if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `fetch offsets of ${groupId}`);
    const out: GroupOffset[] = [];
    for (const t of r.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `fetch offset of ${groupId} ${t.name}-${p.partitionIndex}`);
        out.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, metadata: p.metadata });
      }
    }
    return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  }

  /** Committed offset, end offset and lag per partition of the group's topics (or `topics`). */
  async groupLag(groupId: string, topics?: string[]): Promise<PartitionLag[]> {
    const committed = await this.fetchOffsets(groupId, topics);
    const names = topics ?? [...new Set(committed.map((c) => c.topic))];
    const out: PartitionLag[] = [];
    for (const topic of names) {
      const ends = await this.listOffsets(topic, 'latest');
      const starts = await this.listOffsets(topic, 'earliest');
      for (const e of ends) {
        const c = committed.find((x) => x.topic === topic && x.partition === e.partition);
        const offset = c?.offset ?? -1;
        const from = offset >= 0 ? offset : (starts.find((s) => s.partition === e.partition)?.offset ?? 0);
        out.push({ topic, partition: e.partition, offset, metadata: c?.metadata ?? null, end: e.offset, lag: Math.max(0, e.offset - from) });
      }
    }
    return out;
  }

  /**
   * Sets a group's committed offsets for `topic` (the group must have no active members):
   * to 'earliest', 'latest', a timestamp, or explicit offsets per partition.
   */
  async resetOffsets(groupId: string, topic: string, to: OffsetSpec | { offsets: Array<{ partition: number; offset: number }> }): Promise<GroupOffset[]> {
    const targets = typeof to === 'object' && 'offsets' in to ? to.offsets : (await this.listOffsets(topic, to)).map((p) => ({ partition: p.partition, offset: p.offset }));
    const r = await this.groupCall('OffsetCommit', groupId, (c) =>
      c.request(OffsetCommitApi, {
        groupId,
        generationIdOrMemberEpoch: -1,
        memberId: '',
        groupInstanceId: null,
        retentionTimeMs: -1,
        topics: [{ name: topic, partitions: targets.map((t) => ({ partitionIndex: t.partition, committedOffset: t.offset, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: null })) }],
      }),
    );
    for (const t of r.topics) for (const p of t.partitions) if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `reset offset of ${groupId} ${t.name}-${p.partitionIndex}`);
    return targets.map((t) => ({ topic, partition: t.partition, offset: t.offset, metadata: null }));
  }

  /** Deletes a group's committed offsets for `topic` (OffsetDelete; the group must not be subscribed to it). */
  async deleteGroupOffsets(groupId: string, topic: string, partitions?: number[]): Promise<void> {
    const ps = partitions ?? (await this.cluster.topic(topic)).partitions.map((p) => p.partition);
    const r = await this.groupCall('OffsetDelete', groupId, (c) => c.request(OffsetDeleteApi, { groupId, topics: [{ name: topic, partitions: ps.map((partitionIndex) => ({ partitionIndex })) }] }));
    if (r.errorCode !== 0) throw new KafkaError(r.errorCode, `delete offsets of ${groupId}`);
    for (const t of r.topics) for (const p of t.partitions) if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `delete offset of ${groupId} ${t.name}-${p.partitionIndex}`);
  }

  // ------------------------------------------------------------------------------ transactions

  private txnCall<T>(what: string, transactionalId: string, fn: (c: Connection, coordinatorId: number) => Promise<T>): Promise<T> {
    return this.cluster.withRetry(what, async () => {
      const id = await this.cluster.coordinator(transactionalId, 1);
      try {
        return await fn(await this.cluster.connection(id), id);
      } catch (e) {
        if (e instanceof StrandError && e.needsMetadataRefresh) this.cluster.forgetCoordinator(transactionalId, 1);
        throw e;
      }
    });
  }

  /** Transactional ids known to the coordinators, optionally filtered (ListTransactions to every broker). */
  async listTransactions(opts: ListTransactionsOptions = {}): Promise<TransactionListing[]> {
    await this.cluster.refreshMetadata();
    const durationFilter = opts.durationMs ?? -1;
    const out = new Map<string, TransactionListing>();
    for (const nodeId of this.cluster.brokers.keys()) {
      const r = await this.cluster.withRetry('ListTransactions', async () => {
        const conn = await this.cluster.connection(nodeId);
        if (durationFilter >= 0 && !conn.supports(ListTransactionsApi.key, 1)) throw new StrandError('UNSUPPORTED_VERSION', `broker ${nodeId} cannot filter transactions by duration (ListTransactions v1)`);
        const resp = await conn.request(ListTransactionsApi, { stateFilters: opts.states ?? [], producerIdFilters: opts.producerIds ?? [], durationFilter });
        if (resp.errorCode !== 0) throw new KafkaError(resp.errorCode, `ListTransactions on broker ${nodeId}`);
        return resp;
      });
      for (const t of r.transactionStates) out.set(t.transactionalId, { transactionalId: t.transactionalId, producerId: t.producerId, state: t.transactionState, coordinatorId: nodeId });
    }
    return [...out.values()].sort((a, b) => (a.transactionalId < b.transactionalId ? -1 : a.transactionalId > b.transactionalId ? 1 : 0));
  }

  /** Each transactional id's state at its coordinator; an unknown id throws TRANSACTIONAL_ID_NOT_FOUND. */
  async describeTransactions(transactionalIds: string[]): Promise<TransactionDescription[]> {
    const out: TransactionDescription[] = [];
    for (const tid of transactionalIds) {
      out.push(
        await this.txnCall(`DescribeTransactions ${tid}`, tid, async (c, coordinatorId) => {
          const r = await c.request(DescribeTransactionsApi, { transactionalIds: [tid] });
          const t = r.transactionStates.find((x) => x.transactionalId === tid);
          if (t === undefined) throw new StrandError('CORRUPT_RESPONSE', `no transactional id ${tid} in DescribeTransactions response`);
          if (t.errorCode !== 0) throw new KafkaError(t.errorCode, `describe transaction ${tid}`);
          return {
            transactionalId: tid,
            coordinatorId,
            state: t.transactionState,
            producerId: t.producerId,
            producerEpoch: t.producerEpoch,
            transactionTimeoutMs: t.transactionTimeoutMs,
            transactionStartTimeMs: t.transactionStartTimeMs >= 0 ? t.transactionStartTimeMs : null,
            partitions: t.topics.flatMap((x) => x.partitions.map((partition) => ({ topic: x.topic, partition }))).sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition),
          };
        }),
      );
    }
    return out;
  }

  /**
   * Writes an ABORT marker for a partition's open transaction (WriteTxnMarkers to the partition's
   * leader), as Kafka's Admin.abortTransaction: for a hanging transaction its coordinator will
   * never end. Aborting one the coordinator still runs loses its records in this partition.
   */
  async abortTransaction(spec: AbortTransactionSpec): Promise<void> {
    const what = `abort transaction of producer ${spec.producerId} in ${spec.topic}-${spec.partition}`;
    await this.cluster.topic(spec.topic);
    await this.cluster.withRetry(what, async () => {
      const leader = this.cluster.leaderOf(spec.topic, spec.partition);
      if (leader < 0) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${spec.topic}-${spec.partition}`);
      const conn = await this.cluster.connection(leader);
      const r = await conn.request(WriteTxnMarkersApi, {
        markers: [
          {
            producerId: spec.producerId,
            producerEpoch: spec.producerEpoch,
            transactionResult: false,
            coordinatorEpoch: spec.coordinatorEpoch ?? 0,
            topics: [{ name: spec.topic, partitionIndexes: [spec.partition] }],
          },
        ],
      });
      const p = r.markers[0]?.topics[0]?.partitions[0];
      if (p === undefined) throw new StrandError('CORRUPT_RESPONSE', `no result for ${spec.topic}-${spec.partition} in the WriteTxnMarkers response`);
      if (p.errorCode !== 0) throw new KafkaError(p.errorCode, what);
    });
  }

  /** The active producers of each partition, from its leader (DescribeProducers). */
  async describeProducers(partitions: Array<{ topic: string; partition: number }>): Promise<PartitionProducers[]> {
    // Topics are looked up first (with their own retries); only the requests are retried here.
    for (const topic of new Set(partitions.map((tp) => tp.topic))) {
      const info = await this.cluster.topic(topic);
      for (const tp of partitions) {
        if (tp.topic === topic && !info.partitions.some((p) => p.partition === tp.partition)) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic}-${tp.partition}`);
      }
    }
    return this.cluster.withRetry('DescribeProducers', async () => {
      const byLeader = new Map<number, Array<{ topic: string; partition: number }>>();
      for (const tp of partitions) {
        const leader = this.cluster.leaderOf(tp.topic, tp.partition);
        if (leader < 0) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `${tp.topic}-${tp.partition}`);
        let l = byLeader.get(leader);
        if (l === undefined) byLeader.set(leader, (l = []));
        l.push(tp);
      }
      const out: PartitionProducers[] = [];
      for (const [leader, tps] of byLeader) {
        const topics = new Map<string, number[]>();
        for (const tp of tps) topics.set(tp.topic, [...(topics.get(tp.topic) ?? []), tp.partition]);
        const conn = await this.cluster.connection(leader);
        const r = await conn.request(DescribeProducersApi, { topics: [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes })) });
        for (const t of r.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw new KafkaError(p.errorCode, `DescribeProducers ${t.name}-${p.partitionIndex}`, p.errorMessage);
            out.push({
              topic: t.name,
              partition: p.partitionIndex,
              leader,
              activeProducers: p.activeProducers.map((a) => ({
                producerId: a.producerId,
                producerEpoch: a.producerEpoch,
                lastSequence: a.lastSequence,
                lastTimestamp: a.lastTimestamp,
                coordinatorEpoch: a.coordinatorEpoch >= 0 ? a.coordinatorEpoch : null,
                currentTransactionStartOffset: a.currentTxnStartOffset >= 0 ? a.currentTxnStartOffset : null,
              })),
            });
          }
        }
      }
      return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    });
  }
}

/** Decodes a consumer group member's assignment (ConsumerProtocolAssignment with its version prefix). */
export function decodeAssignment(protocolType: string, bytes: Buffer): Array<{ topic: string; partitions: number[] }> {
  if (protocolType !== 'consumer' || bytes.length < 2) return [];
  const r = new Reader(bytes);
  const version = r.int16();
  const a = decodeConsumerProtocolAssignment(r, version);
  return r.ok ? a.assignedPartitions.map((p) => ({ topic: p.topic, partitions: p.partitions })) : [];
}
