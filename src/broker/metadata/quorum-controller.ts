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
 * EndQuorumEpoch, Fetch, FetchSnapshot on the controller listener); a new leader registers
 * itself with a RegisterController record; every voter applies committed records to its image;
 * every `metadata.log.max.record.bytes.between.snapshots` bytes of committed records, a voter
 * snapshots its image and deletes the log below; DescribeQuorum answers the leader's view.
 * Brokers do not yet register with or fetch from the quorum (docs/CLUSTER.md says what is next).
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../../protocol/errors.js';
import { ApiKey, type DescribeQuorumRequest, type DescribeQuorumResponse, type DescribeQuorumResponseReplicaState } from '../../protocol/messages/index.js';
import { ZERO_UUID } from '../../protocol/reader.js';
import { METADATA_PARTITION, METADATA_TOPIC } from '../../raft/kafka-messages.js';
import { RaftManager } from '../../raft/raft-manager.js';
import type { ControllerApi } from '../../raft/tcp-transport.js';
import type { LogEntry, OffsetAndEpoch, SnapshotId } from '../../raft/types.js';
import { ConfigError, type BrokerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { MetadataImage, type MetadataRecord } from './image.js';

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

  private constructor(
    readonly nodeId: number,
    private readonly snapshotBytes: number,
    private readonly logger: Logger,
  ) {}

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
    const node = new QuorumControllerNode(nodeId, config.number('metadata.log.max.record.bytes.between.snapshots'), logger);
    const advertised = voters.find((v) => v.id === nodeId)!;
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
      extraApis: [node.describeQuorumApi()],
      listener: {
        handleCommit: (offset, entry) => node.applyCommitted(offset, entry),
        handleLoadSnapshot: (id, data) => {
          node.state = decodeSnapshot(id, data);
          node.bytesSinceSnapshot = 0;
          logger.info('loaded metadata snapshot', { endOffset: id.endOffset, epoch: id.epoch });
        },
        handleLeaderChange: (leaderId, epoch) => {
          if (leaderId === nodeId) setImmediate(() => node.registerAsLeader(epoch, advertised.host, advertised.port));
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

  private registerAsLeader(epoch: number, host: string, port: number): void {
    const client = this.raft?.client;
    if (client === undefined || !client.isLeader() || client.currentEpoch !== epoch) return;
    this.propose([{ type: 'RegisterController', controllerId: this.nodeId, host, port, leaderEpoch: epoch }]);
  }

  private applyCommitted(offset: number, entry: LogEntry): void {
    if (!entry.control) {
      const records = JSON.parse(entry.value.toString('utf8')) as QuorumRecord[];
      for (const r of records) applyRecord(this.state, r, offset);
      this.bytesSinceSnapshot += entry.value.length;
    }
    this.state.nextOffset = offset + 1;
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

  /** Resigns leadership if held, and stops. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.raft?.close();
    this.logger.info('controller stopped', { nodeId: this.nodeId });
  }
}
