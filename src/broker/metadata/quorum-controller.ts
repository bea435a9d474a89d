/**
 * A controller-only node of a metadata quorum (`process.roles=controller` with
 * `controller.quorum.voters`): a voter of the Raft quorum (src/raft) whose replicated log is the
 * metadata log, applied to a MetadataImage as it commits.
 *
 * The metadata log's entries: one entry is one controller operation, a JSON array of metadata
 * records (the same MetadataRecord as the single-node log, plus RegisterController), so an
 * operation commits or vanishes whole. The control entry LeaderChange starts each epoch.
 *
 * What runs today: the quorum elects a leader over TCP (Kafka's Vote, BeginQuorumEpoch,
 * EndQuorumEpoch, Fetch, FetchSnapshot on the controller listener); every voter applies committed
 * records to its image; every `metadata.log.max.record.bytes.between.snapshots` bytes of
 * committed records, a voter snapshots its image and deletes the log below.
 *
 * The active controller: once a new leader has applied its own LeaderChange entry (so everything
 * committed before its epoch is in its image) it registers itself with a RegisterController record
 * and runs the same Controller as a single node (controller.ts) over that image, with the quorum as
 * its MetadataLogWriter: an operation's records are proposed and the operation completes when
 * they commit. It answers BrokerRegistration and CreateTopics on the controller listener; other
 * voters answer NOT_CONTROLLER. Losing leadership fails the operations in flight with
 * NOT_CONTROLLER (their records may still commit under the next leader, as in Kafka, and the
 * next active controller starts from the committed image). DescribeQuorum answers the leader's view.
 * Brokers do not yet register by themselves or fetch the log (docs/CLUSTER.md says what is next).
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../../protocol/errors.js';
import {
  ApiKey,
  type BrokerRegistrationRequest,
  type BrokerRegistrationResponse,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type CreateTopicsResponseCreatableTopicResult,
  type DescribeQuorumRequest, type DescribeQuorumResponse, type DescribeQuorumResponseReplicaState,
} from '../../protocol/messages/index.js';
import { ZERO_UUID } from '../../protocol/reader.js';
import { METADATA_PARTITION, METADATA_TOPIC } from '../../raft/kafka-messages.js';
import type { LeaderChangeMessage } from '../../raft/raft-client.js';
import { RaftManager } from '../../raft/raft-manager.js';
import type { ControllerApi } from '../../raft/tcp-transport.js';
import type { LogEntry, OffsetAndEpoch, SnapshotId } from '../../raft/types.js';
import { ConfigError, type BrokerConfig } from '../config.js';
import { topicConfigEntries } from '../handlers/describe-configs.js';
import type { Logger } from '../logger.js';
import { Controller, type CreateTopicSpec, type MetadataLogWriter } from './controller.js';
import { MetadataImage, type MetadataRecord } from './image.js';

/** This node is not (or no longer) the active controller: answered as NOT_CONTROLLER. */
export class NotControllerError extends Error {
  readonly code = 'NOT_CONTROLLER';
  constructor(message = 'this controller is not the active controller') {
    super(message);
    this.name = 'NotControllerError';
  }
}

interface PendingWrite {
  epoch: number;
  resolve: (offset: number) => void;
  reject: (e: Error) => void;
}

/** A controller announcing itself when it becomes the quorum leader (Kafka's RegisterControllerRecord). */
export interface RegisterControllerRecord {
  type: 'RegisterController';
  controllerId: number;
  host: string;
  port: number;
  /** The epoch it leads. */
  leaderEpoch: number;
}

export type QuorumRecord = MetadataRecord | RegisterControllerRecord;

export interface ControllerRegistration {
  readonly controllerId: number;
  readonly host: string;
  readonly port: number;
  readonly leaderEpoch: number;
}

/** What a voter has applied: the image, the registered controllers, the next offset to apply. */
export interface QuorumState {
  image: MetadataImage;
  controllers: Map<number, ControllerRegistration>;
  nextOffset: number;
}

/** The records that rebuild `image` from nothing (the body of a snapshot). */
export function imageRecords(image: MetadataImage): MetadataRecord[] {
  const out: MetadataRecord[] = [];
  for (const b of image.brokers.values()) out.push({ type: 'RegisterBroker', brokerId: b.brokerId, host: b.host, port: b.port, rack: b.rack, incarnationId: '' });
  for (const [name, value] of image.brokerConfigs) out.push({ type: 'Config', resourceType: 'broker', resourceName: '', name, value });
  for (const t of image.topicsByName.values()) {
    out.push({ type: 'Topic', name: t.name, topicId: t.topicId });
    for (const p of t.partitions) {
      out.push({ type: 'Partition', topicId: p.topicId, partition: p.partition, replicas: [...p.replicas], isr: [...p.isr], leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch });
    }
    for (const [name, value] of t.configs) out.push({ type: 'Config', resourceType: 'topic', resourceName: t.name, name, value });
  }
  if (image.nextProducerId > 0) out.push({ type: 'ProducerIds', brokerId: -1, nextProducerId: image.nextProducerId });
  return out;
}

/** A snapshot: `{"version":0,"endOffset":N,"records":[...]}`, the image's records plus the controllers. */
export function encodeSnapshot(state: QuorumState): Buffer {
  const records: QuorumRecord[] = [...imageRecords(state.image), ...[...state.controllers.values()].map((c): RegisterControllerRecord => ({ type: 'RegisterController', ...c }))];
  return Buffer.from(JSON.stringify({ version: 0, endOffset: state.nextOffset, records }));
}

export function decodeSnapshot(id: SnapshotId, data: Buffer): QuorumState {
  const s = JSON.parse(data.toString('utf8')) as { version: number; endOffset: number; records: QuorumRecord[] };
  if (s.version !== 0 || s.endOffset !== id.endOffset || !Array.isArray(s.records)) throw new Error(`snapshot ${id.endOffset}-${id.epoch} is not a metadata snapshot`);
  const state: QuorumState = { image: MetadataImage.EMPTY, controllers: new Map(), nextOffset: id.endOffset };
  for (const r of s.records) applyRecord(state, r, id.endOffset - 1);
  state.nextOffset = id.endOffset;
  return state;
}

function applyRecord(state: QuorumState, r: QuorumRecord, offset: number): void {
  if (r.type === 'RegisterController') {
    state.controllers.set(r.controllerId, { controllerId: r.controllerId, host: r.host, port: r.port, leaderEpoch: r.leaderEpoch });
  } else {
    state.image = state.image.apply(r, offset);
  }
}

function replicaState(r: { replicaId: number; logEndOffset: number; lastFetchTimestamp: number }): DescribeQuorumResponseReplicaState {
  return { replicaId: r.replicaId, replicaDirectoryId: ZERO_UUID, logEndOffset: r.logEndOffset, lastFetchTimestamp: r.lastFetchTimestamp, lastCaughtUpTimestamp: -1 };
}

export class QuorumControllerNode {
  private state: QuorumState = { image: MetadataImage.EMPTY, controllers: new Map(), nextOffset: 0 };
  private bytesSinceSnapshot = 0;
  private snapshotPending = false;
  private raft: RaftManager | null = null;
  private stopped = false;
  /** The Controller while this node is the active controller, with the epoch it leads. */
  private active: { controller: Controller; epoch: number } | null = null;
  /** Proposed operations waiting for their commit, by the offset of their entry. */
  private readonly pending = new Map<number, PendingWrite>();

  private constructor(
    readonly nodeId: number,
    private readonly config: BrokerConfig,
    private readonly snapshotBytes: number,
    private readonly logger: Logger,
    private readonly advertised: { host: string; port: number },
  ) {}

  /** The Controller, when this node is the active controller. */
  get activeController(): Controller | null {
    return this.active?.controller ?? null;
  }

  get image(): MetadataImage {
    return this.state.image;
  }
  get controllers(): ReadonlyMap<number, ControllerRegistration> {
    return this.state.controllers;
  }
  /** Whether this node leads the quorum (the active controller). */
  get isLeader(): boolean {
    return !this.stopped && this.raft !== null && this.raft.client.isLeader();
  }
  /** The controller listener's bound port. */
  get port(): number {
    return this.raft!.port;
  }

  static async start(config: BrokerConfig, logger: Logger): Promise<QuorumControllerNode> {
    const voters = config.quorumVoters;
    if (voters === null) throw new ConfigError('a controller node needs controller.quorum.voters');
    const nodeId = config.nodeId;
    if (!voters.some((v) => v.id === nodeId)) throw new ConfigError(`node.id ${nodeId} is not one of controller.quorum.voters (observers are not supported yet)`);
    const names = config.raw('controller.listener.names');
    if (names === null) throw new ConfigError('a controller node needs controller.listener.names');
    const listener = config.listeners.find((l) => names.split(',').includes(l.name));
    if (listener === undefined) throw new ConfigError(`no listener in listeners=${config.string('listeners')} is named in controller.listener.names=${names}`);

    const dir = join(config.dataDir, `${METADATA_TOPIC}-${METADATA_PARTITION}`);
    fs.mkdirSync(dir, { recursive: true });
    const advertised = voters.find((v) => v.id === nodeId)!;
    const node = new QuorumControllerNode(nodeId, config, config.number('metadata.log.max.record.bytes.between.snapshots'), logger, advertised);
    node.raft = await RaftManager.start({
      nodeId,
      voters,
      dir,
      listenHost: listener.host,
      listenPort: listener.port,
      clusterId: config.raw('cluster.id') ?? '',
      timing: {
        electionTimeoutMs: config.number('controller.quorum.election.timeout.ms'),
        fetchTimeoutMs: config.number('controller.quorum.fetch.timeout.ms'),
        requestTimeoutMs: config.number('controller.quorum.request.timeout.ms'),
        retryBackoffMs: config.number('controller.quorum.retry.backoff.ms'),
        appendLingerMs: config.number('controller.quorum.append.linger.ms'),
      },
      logger: logger.child('raft'),
      extraApis: [node.describeQuorumApi(), node.brokerRegistrationApi(), node.createTopicsApi()],
      listener: {
        handleCommit: (offset, entry) => node.applyCommitted(offset, entry),
        handleLoadSnapshot: (id, data) => {
          node.state = decodeSnapshot(id, data);
          node.bytesSinceSnapshot = 0;
          logger.info('loaded metadata snapshot', { endOffset: id.endOffset, epoch: id.epoch });
        },
        handleLeaderChange: (leaderId, epoch) => {
          if (node.active !== null && (leaderId !== nodeId || epoch !== node.active.epoch)) node.deactivate();
        },
      },
    });
    logger.info('controller started', { nodeId, voters: voters.map((v) => `${v.id}@${v.host}:${v.port}`).join(','), listener: `${listener.name}://${listener.host}:${node.raft.port}`, dir });
    return node;
  }

  /** Proposes one operation's records; null when this node is not the quorum leader. */
  propose(records: readonly QuorumRecord[]): OffsetAndEpoch | null {
    if (this.stopped || this.raft === null) return null;
    return this.raft.propose([Buffer.from(JSON.stringify(records))]);
  }

  /** Runs after this leader's LeaderChange entry is applied: the image holds everything committed before its epoch. */
  private activate(epoch: number): void {
    const client = this.raft?.client;
    if (this.stopped || client === undefined || !client.isLeader() || client.currentEpoch !== epoch || this.active !== null) return;
    const writer: MetadataLogWriter = { append: (records) => this.write(records) };
    this.active = { controller: new Controller(this.state.image, writer, this.config, this.nodeId, this.logger), epoch };
    this.logger.info('active controller', { nodeId: this.nodeId, epoch });
    this.propose([{ type: 'RegisterController', controllerId: this.nodeId, host: this.advertised.host, port: this.advertised.port, leaderEpoch: epoch }]);
  }

  private deactivate(): void {
    this.active = null;
    for (const p of this.pending.values()) p.reject(new NotControllerError('leadership moved before the operation committed'));
    this.pending.clear();
  }

  /** The active controller's MetadataLogWriter: propose one entry, resolve when it commits. */
  private write(records: readonly MetadataRecord[]): Promise<number> {
    const at = this.active === null ? null : this.propose(records);
    if (at === null) return Promise.reject(new NotControllerError());
    return new Promise((resolve, reject) => this.pending.set(at.offset, { epoch: at.epoch, resolve, reject }));
  }

  private applyCommitted(offset: number, entry: LogEntry): void {
    if (entry.control) {
      const change = JSON.parse(entry.value.toString('utf8')) as LeaderChangeMessage;
      // Not from inside the commit callback: proposing re-enters the Raft client.
      if (change.leaderId === this.nodeId) setImmediate(() => this.activate(entry.epoch));
    } else {
      const records = JSON.parse(entry.value.toString('utf8')) as QuorumRecord[];
      for (const r of records) applyRecord(this.state, r, offset);
      this.bytesSinceSnapshot += entry.value.length;
    }
    this.state.nextOffset = offset + 1;
    const waiting = this.pending.get(offset);
    if (waiting !== undefined) {
      this.pending.delete(offset);
      if (entry.epoch === waiting.epoch) waiting.resolve(offset);
      else waiting.reject(new NotControllerError('the operation was lost in a leader change'));
    }
    if (this.bytesSinceSnapshot >= this.snapshotBytes && !this.snapshotPending) {
      // Not from inside the commit callback: the Raft client counts this entry as applied when it returns.
      this.snapshotPending = true;
      setImmediate(() => this.snapshot());
    }
  }

  private snapshot(): void {
    this.snapshotPending = false;
    if (this.stopped || this.raft === null) return;
    const id = this.raft.createSnapshot(this.state.nextOffset, encodeSnapshot(this.state));
    this.bytesSinceSnapshot = 0;
    this.logger.info('wrote metadata snapshot', { endOffset: id.endOffset, epoch: id.epoch });
  }

  private describeQuorumApi(): ControllerApi {
    return {
      apiKey: ApiKey.DescribeQuorum,
      minVersion: 0,
      maxVersion: 1,
      handle: (body) => {
        const request = body as DescribeQuorumRequest;
        const client = this.raft!.client;
        const response: DescribeQuorumResponse = { errorCode: ErrorCode.NONE, errorMessage: null, topics: [], nodes: [] };
        for (const t of request.topics) {
          response.topics.push({
            topicName: t.topicName,
            partitions: t.partitions.map((p) => {
              const base = { partitionIndex: p.partitionIndex, errorMessage: null, leaderId: client.currentLeaderId, leaderEpoch: client.currentEpoch, highWatermark: -1, currentVoters: [], observers: [] };
              if (t.topicName !== METADATA_TOPIC || p.partitionIndex !== METADATA_PARTITION) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
              const q = client.describeQuorum();
              if (q === null) return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
              return {
                ...base,
                errorCode: ErrorCode.NONE,
                highWatermark: q.highWatermark,
                currentVoters: q.voters.map(replicaState),
                observers: q.observers.map(replicaState),
              };
            }),
          });
        }
        return response;
      },
    };
  }

  /** BrokerRegistration (key 62, v0–4): a broker's endpoint, as a RegisterBroker record; the broker epoch is the metadata offset after it. */
  private brokerRegistrationApi(): ControllerApi {
    return {
      apiKey: ApiKey.BrokerRegistration,
      minVersion: 0,
      maxVersion: 4,
      handle: async (body): Promise<BrokerRegistrationResponse> => {
        const request = body as BrokerRegistrationRequest;
        const answer = (errorCode: number, brokerEpoch = -1): BrokerRegistrationResponse => ({ throttleTimeMs: 0, errorCode, brokerEpoch });
        const clusterId = this.config.raw('cluster.id');
        if (clusterId !== null && request.clusterId !== clusterId) return answer(ErrorCode.INCONSISTENT_CLUSTER_ID);
        const listener = request.listeners[0];
        if (request.brokerId < 0 || listener === undefined) return answer(ErrorCode.INVALID_REQUEST);
        const active = this.active?.controller;
        if (active === undefined) return answer(ErrorCode.NOT_CONTROLLER);
        try {
          await active.run(() => ({
            records: [{ type: 'RegisterBroker', brokerId: request.brokerId, host: listener.host, port: listener.port, rack: request.rack, incarnationId: request.incarnationId }],
            result: undefined,
          }));
          return answer(ErrorCode.NONE, active.image.offset);
        } catch (e) {
          if (e instanceof NotControllerError) return answer(ErrorCode.NOT_CONTROLLER);
          throw e;
        }
      },
    };
  }

  /** CreateTopics (key 19, v0–7) on the active controller, as the broker handler answers it (handlers/create-topics.ts). */
  private createTopicsApi(): ControllerApi {
    return {
      apiKey: ApiKey.CreateTopics,
      minVersion: 0,
      maxVersion: 7,
      handle: async (body, version): Promise<CreateTopicsResponse> => {
        const request = body as CreateTopicsRequest;
        const fail = (name: string, errorCode: number, errorMessage: string | null): CreateTopicsResponseCreatableTopicResult => ({
          name,
          topicId: ZERO_UUID,
          errorCode,
          errorMessage,
          topicConfigErrorCode: ErrorCode.NONE,
          numPartitions: -1,
          replicationFactor: -1,
          configs: [],
        });
        const counts = new Map<string, number>();
        for (const t of request.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
        const duplicates = [...counts].filter(([, n]) => n > 1).map(([name]) => fail(name, ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'));
        const specs: CreateTopicSpec[] = request.topics
          .filter((t) => counts.get(t.name) === 1)
          .map((t) => ({
            name: t.name,
            numPartitions: t.numPartitions,
            replicationFactor: t.replicationFactor,
            assignments: t.assignments.map((a) => ({ partitionIndex: a.partitionIndex, brokerIds: [...a.brokerIds] })),
            configs: t.configs.map((c): [string, string | null] => [c.name, c.value]),
          }));
        const active = this.active?.controller;
        const notController = (): CreateTopicsResponse => ({ throttleTimeMs: 0, topics: [...specs.map((t) => fail(t.name, ErrorCode.NOT_CONTROLLER, 'This node is not the active controller.')), ...duplicates] });
        if (active === undefined) return notController();
        let created;
        try {
          created = specs.length > 0 ? await active.createTopics(specs, version >= 1 && request.validateOnly) : [];
        } catch (e) {
          if (e instanceof NotControllerError) return notController();
          throw e;
        }
        const topics = created.map(
          (r): CreateTopicsResponseCreatableTopicResult =>
            r.errorCode !== ErrorCode.NONE
              ? fail(r.name, r.errorCode, r.errorMessage)
              : {
                  name: r.name,
                  topicId: r.topicId !== '' ? r.topicId : ZERO_UUID,
                  errorCode: ErrorCode.NONE,
                  errorMessage: null,
                  topicConfigErrorCode: ErrorCode.NONE,
                  numPartitions: r.numPartitions,
                  replicationFactor: r.replicationFactor,
                  configs: topicConfigEntries(r.configs, this.config).map((e) => ({ name: e.name, value: e.value, readOnly: e.readOnly, configSource: e.source, isSensitive: false })),
                },
        );
        return { throttleTimeMs: 0, topics: [...topics, ...duplicates] };
      },
    };
  }

  /** Resigns leadership if held, and stops. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.deactivate();
    await this.raft?.close();
    this.logger.info('controller stopped', { nodeId: this.nodeId });
  }
}
