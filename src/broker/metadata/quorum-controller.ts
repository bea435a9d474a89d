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
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type BrokerRegistrationRequest,
  type BrokerRegistrationResponse,
  type EnvelopeRequest,
  type EnvelopeResponse,
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
import { createTopicSpec } from '../handlers/create-topics.js';
import { topicConfigEntries } from '../handlers/describe-configs.js';
import type { Logger } from '../logger.js';
import { Controller, type ControllerOperation, type CreateTopicSpec, type MetadataListener } from './controller.js';
import { MetadataImage, type BrokerEndpoint, type MetadataRecord } from './image.js';
import { ElectionType, imbalancedPartitions, reconcileAll } from './partition-changes.js';

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
  for (const b of image.brokers.values()) {
    out.push({ type: 'RegisterBroker', brokerId: b.brokerId, host: b.host, port: b.port, rack: b.rack, incarnationId: b.incarnationId, listeners: b.listeners.map((l) => ({ ...l })), fenced: b.fenced, epoch: b.epoch });
  }
  for (const [name, value] of image.brokerConfigs) out.push({ type: 'Config', resourceType: 'broker', resourceName: '', name, value });
  for (const t of image.topicsByName.values()) {
    out.push({ type: 'Topic', name: t.name, topicId: t.topicId });
    for (const p of t.partitions) {
      out.push({
        type: 'Partition',
        topicId: p.topicId,
        partition: p.partition,
        replicas: [...p.replicas],
        isr: [...p.isr],
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        ...(p.addingReplicas.length > 0 ? { addingReplicas: [...p.addingReplicas] } : {}),
        ...(p.removingReplicas.length > 0 ? { removingReplicas: [...p.removingReplicas] } : {}),
      });
    }
    for (const [name, value] of t.configs) out.push({ type: 'Config', resourceType: 'topic', resourceName: t.name, name, value });
  }
  if (image.nextProducerId > 0) out.push({ type: 'ProducerIds', brokerId: -1, nextProducerId: image.nextProducerId });
  const sec = image.security;
  for (const [name, byMechanism] of sec.scram) {
    for (const [mechanism, c] of byMechanism) {
      out.push({ type: 'UserScramCredential', name, mechanism, salt: c.salt.toString('base64'), iterations: c.iterations, storedKey: c.storedKey.toString('base64'), serverKey: c.serverKey.toString('base64') });
    }
  }
  for (const [id, binding] of sec.acls) out.push({ type: 'Acl', id, ...binding });
  for (const q of sec.quotas.values()) for (const [key, value] of q.values) out.push({ type: 'ClientQuota', entity: q.entity, key, value });
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

/** A write forwarded by a broker that is not the active controller (the body of an Envelope on the controller listener). */
export interface ForwardedWrite {
  strand: 'MetadataWrite';
  brokerId: number;
  /** The offset of the forwarding broker's image: the records were computed from it. */
  imageOffset: number;
  records: MetadataRecord[];
}

/** The answer: committed at `offset` (-1: no records, and the image was current), or not written because the active controller's image is newer (`stale`, its offset). */
export type ForwardedWriteResult = { committed: true; offset: number } | { committed: false; stale: true; offset: number };

/** The active controller's view of broker sessions (Kafka's BrokerHeartbeatManager): the last heartbeat of each broker. */
class BrokerSessions {
  private readonly lastContact = new Map<number, number>();

  touch(brokerId: number, now = Date.now()): void {
    this.lastContact.set(brokerId, now);
  }

  /** Unfenced brokers of `image` not heard from for `sessionTimeoutMs` (a broker never heard from counts from `since`). */
  expired(image: MetadataImage, sessionTimeoutMs: number, since: number, now = Date.now()): Array<{ brokerId: number; epoch: number }> {
    const out: Array<{ brokerId: number; epoch: number }> = [];
    for (const b of image.brokers.values()) {
      if (b.fenced) continue;
      const last = this.lastContact.get(b.brokerId) ?? since;
      if (now - last > sessionTimeoutMs) out.push({ brokerId: b.brokerId, epoch: b.epoch });
    }
    return out;
  }
}

/** The controller a quorum node runs while it is the active one: its image is the committed image, `run` proposes to the quorum. */
class ActiveQuorumController extends Controller {
  constructor(
    private readonly node: QuorumControllerNode,
    config: BrokerConfig,
    logger: Logger,
  ) {
    super(config, node.nodeId, logger);
  }
  get image(): MetadataImage {
    return this.node.image;
  }
  onChange(listener: MetadataListener): void {
    this.node.onChange(listener);
  }
  run<T>(op: ControllerOperation<T>): Promise<T> {
    return this.node.runActive(op);
  }
}

const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];
/** Kafka's SecurityProtocol ids: PLAINTEXT 0, SSL 1, SASL_PLAINTEXT 2, SASL_SSL 3. */
export function securityProtocolId(name: string): number {
  const i = SECURITY_PROTOCOLS.indexOf(name);
  return i < 0 ? 0 : i;
}

export class QuorumControllerNode {
  private state: QuorumState = { image: MetadataImage.EMPTY, controllers: new Map(), nextOffset: 0 };
  private bytesSinceSnapshot = 0;
  private snapshotPending = false;
  private raft: RaftManager | null = null;
  private stopped = false;
  /** The epoch this node leads while it is the active controller, and since when. */
  private active: { epoch: number; sinceMs: number } | null = null;
  /** The operations over the committed image (they run only while active). */
  readonly ops: Controller;
  /** Operations of the active controller run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Proposed operations waiting for their commit, by the offset of their entry. */
  private readonly pending = new Map<number, PendingWrite>();
  private readonly listeners: Array<{ listener: MetadataListener; started: boolean }> = [];
  /** Image listeners run in order on this chain; `notified` is the log offset they have seen up to (exclusive). */
  private notifying: Promise<void> = Promise.resolve();
  private notifiedImage: MetadataImage = MetadataImage.EMPTY;
  private published: MetadataImage = MetadataImage.EMPTY;
  private notified = 0;
  private readonly appliedWaiters: Array<{ offset: number; resolve: () => void }> = [];
  private readonly imageWaiters: Array<{ offset: number; resolve: () => void }> = [];
  private readonly sessions = new BrokerSessions();
  private sessionTimer: NodeJS.Timeout | null = null;
  private rebalanceTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly nodeId: number,
    private readonly config: BrokerConfig,
    private readonly snapshotBytes: number,
    private readonly logger: Logger,
    private readonly advertised: { host: string; port: number },
  ) {
    this.ops = new ActiveQuorumController(this, config, logger);
  }

  /** The Controller, when this node is the active controller. */
  get activeController(): Controller | null {
    return this.active === null ? null : this.ops;
  }

  /** Whether this node is the active controller (the quorum leader, with everything before its epoch applied). */
  get isActive(): boolean {
    return this.active !== null && !this.stopped;
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
  /** The quorum leader this node knows of (-1 when none), and its epoch. */
  get leader(): { id: number; epoch: number } {
    const c = this.raft?.client;
    return c === undefined ? { id: -1, epoch: -1 } : { id: c.currentLeaderId, epoch: c.currentEpoch };
  }
  /** The offset after the last applied entry. */
  get appliedOffset(): number {
    return this.state.nextOffset;
  }

  /** The offset after the last entry the image listeners have seen (what a broker reports as its metadata offset: its logs are open up to there). */
  get publishedOffset(): number {
    return this.notified;
  }
  /** The controller listener's bound port. */
  get port(): number {
    return this.raft!.port;
  }

  /** The latest image the listeners have seen (what a broker answers from: its partition logs are open). */
  get publishedImage(): MetadataImage {
    return this.published;
  }

  /**
   * Image listeners: called after every committed change (and snapshot load), in order. A
   * listener added with `fromEmpty` is first called with the image published so far against the
   * empty image (so it sees everything, whenever it is added).
   */
  onChange(listener: MetadataListener, fromEmpty = false): void {
    // Listeners run in the order they were added; one added fromEmpty starts (in the notification
    // order) with everything published so far, and only then receives changes.
    const entry = { listener, started: !fromEmpty };
    this.listeners.push(entry);
    if (!fromEmpty) return;
    this.notifying = this.notifying.then(async () => {
      try {
        await listener(this.published, MetadataImage.EMPTY);
      } catch (e) {
        this.logger.error('a metadata listener failed', { error: e });
      }
      entry.started = true;
    });
  }

  /** Resolves once the entry at `offset` is applied and the image listeners have seen it. */
  whenApplied(offset: number): Promise<void> {
    if (this.notified > offset) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ offset, resolve }));
  }

  /** Resolves once the published image's offset is at least `offset`. */
  whenImageAt(offset: number): Promise<void> {
    if (this.published.offset >= offset) return Promise.resolve();
    return new Promise((resolve) => this.imageWaiters.push({ offset, resolve }));
  }

  static async start(config: BrokerConfig, logger: Logger): Promise<QuorumControllerNode> {
    const voters = config.quorumVoters;
    if (voters === null) throw new ConfigError('a controller node needs controller.quorum.voters');
    const nodeId = config.nodeId;
    // A node without the controller role follows the metadata log as a Raft observer: it fetches
    // from the leader, never votes or stands, and needs no controller listener of its own.
    const observer = !config.processRoles.includes('controller');
    const isVoter = voters.some((v) => v.id === nodeId);
    if (observer && isVoter) throw new ConfigError(`node.id ${nodeId} is one of controller.quorum.voters, but process.roles=${config.string('process.roles')} has no controller role`);
    if (!observer && !isVoter) throw new ConfigError(`node.id ${nodeId} is not one of controller.quorum.voters (a node that is not a voter runs with process.roles=broker)`);
    let listener: { name: string; host: string; port: number };
    if (observer) {
      // Answers come back on the observer's own connections; this listener only serves DescribeQuorum.
      listener = { name: 'observer', host: '127.0.0.1', port: 0 };
    } else {
      const names = config.raw('controller.listener.names');
      if (names === null) throw new ConfigError('a controller node needs controller.listener.names');
      const found = config.listeners.find((l) => names.split(',').includes(l.name));
      if (found === undefined) throw new ConfigError(`no listener in listeners=${config.string('listeners')} is named in controller.listener.names=${names}`);
      listener = found;
    }

    const dir = join(config.dataDir, `${METADATA_TOPIC}-${METADATA_PARTITION}`);
    fs.mkdirSync(dir, { recursive: true });
    const advertised = voters.find((v) => v.id === nodeId) ?? { host: '', port: 0 };
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
      extraApis: [node.describeQuorumApi(), node.brokerRegistrationApi(), node.brokerHeartbeatApi(), node.alterPartitionApi(), node.envelopeApi(), node.createTopicsApi()],
      listener: {
        handleCommit: (offset, entry) => node.applyCommitted(offset, entry),
        handleLoadSnapshot: (id, data) => {
          node.state = decodeSnapshot(id, data);
          node.bytesSinceSnapshot = 0;
          node.notifyApplied();
          logger.info('loaded metadata snapshot', { endOffset: id.endOffset, epoch: id.epoch });
        },
        handleLeaderChange: (leaderId, epoch) => {
          if (node.active !== null && (leaderId !== nodeId || epoch !== node.active.epoch)) node.deactivate();
        },
      },
    });
    logger.info(observer ? 'metadata observer started' : 'controller started', { nodeId, voters: voters.map((v) => `${v.id}@${v.host}:${v.port}`).join(','), listener: `${listener.name}://${listener.host}:${node.raft.port}`, dir });
    return node;
  }

  /** Proposes one operation's records; null when this node is not the quorum leader. */
  propose(records: readonly QuorumRecord[]): OffsetAndEpoch | null {
    if (this.stopped || this.raft === null) return null;
    return this.raft.propose([Buffer.from(JSON.stringify(records))]);
  }

  /**
   * Runs `op` on the active controller: alone, over the committed image; its records are proposed
   * as one entry and the promise resolves once that entry is committed, applied and seen by the
   * image listeners. Rejects with NotControllerError when this node is not (or stops being) active.
   */
  runActive<T>(op: ControllerOperation<T>): Promise<T> {
    return this.runActiveAt(op).then((r) => r.result);
  }

  /** runActive, also giving the offset the records were committed at (-1 when there were none). */
  private runActiveAt<T>(op: ControllerOperation<T>): Promise<{ result: T; offset: number }> {
    const next = this.queue.then(async () => {
      if (this.active === null || this.stopped) throw new NotControllerError();
      const { records, result } = op(this.state.image);
      let offset = -1;
      if (records.length > 0) {
        offset = await this.write(records);
        await this.whenApplied(offset);
      }
      return { result, offset };
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Runs after this leader's LeaderChange entry is applied: the image holds everything committed before its epoch. */
  private activate(epoch: number): void {
    const client = this.raft?.client;
    if (this.stopped || client === undefined || !client.isLeader() || client.currentEpoch !== epoch || this.active !== null) return;
    this.active = { epoch, sinceMs: Date.now() };
    this.logger.info('active controller', { nodeId: this.nodeId, epoch });
    this.propose([{ type: 'RegisterController', controllerId: this.nodeId, host: this.advertised.host, port: this.advertised.port, leaderEpoch: epoch }]);
    // Broker sessions: every broker gets a full session from now (Kafka's controller does the same on failover).
    const interval = Math.max(50, Math.min(this.config.number('broker.heartbeat.interval.ms'), Math.floor(this.config.number('broker.session.timeout.ms') / 4)));
    this.sessionTimer = setInterval(() => this.checkSessions(), interval);
    this.sessionTimer.unref();
    if (this.config.bool('auto.leader.rebalance.enable')) {
      this.rebalanceTimer = setInterval(() => this.rebalanceLeaders(), this.config.number('leader.imbalance.check.interval.seconds') * 1000);
      this.rebalanceTimer.unref();
    }
  }

  /** auto.leader.rebalance.enable: preferred elections for brokers leading too few of their preferred partitions. */
  private rebalanceLeaders(): void {
    if (this.active === null) return;
    const due = imbalancedPartitions(this.state.image, this.config.number('leader.imbalance.per.broker.percentage'));
    if (due.length === 0) return;
    this.logger.info('leader imbalance: electing preferred leaders', { partitions: due.length });
    this.ops.electLeaders(ElectionType.PREFERRED, due).catch((e: unknown) => {
      if (!(e instanceof NotControllerError)) this.logger.error('preferred leader election failed', { error: e });
    });
  }

  private deactivate(): void {
    if (this.active !== null) this.logger.info('no longer the active controller', { nodeId: this.nodeId, epoch: this.active.epoch });
    this.active = null;
    if (this.sessionTimer !== null) clearInterval(this.sessionTimer);
    if (this.rebalanceTimer !== null) clearInterval(this.rebalanceTimer);
    this.sessionTimer = null;
    this.rebalanceTimer = null;
    for (const p of this.pending.values()) p.reject(new NotControllerError('leadership moved before the operation committed'));
    this.pending.clear();
  }

  /** Fences the brokers whose session expired. */
  private checkSessions(): void {
    const active = this.active;
    if (active === null) return;
    const expired = this.sessions.expired(this.state.image, this.config.number('broker.session.timeout.ms'), active.sinceMs);
    if (expired.length === 0) return;
    this.logger.warn('broker session expired: fencing', { brokers: expired.map((b) => b.brokerId).join(',') });
    this.ops.fenceBrokers(expired).catch((e: unknown) => {
      if (!(e instanceof NotControllerError)) this.logger.error('fencing failed', { error: e });
    });
  }

  /** The active controller's writer: propose one entry, resolve with its offset when it commits. */
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
    this.notifyApplied();
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

  /** Tells the image listeners (in order, one change at a time) and then the whenApplied waiters. */
  private notifyApplied(): void {
    const image = this.state.image;
    const through = this.state.nextOffset;
    this.notifying = this.notifying.then(async () => {
      const previous = this.notifiedImage;
      if (image !== previous) {
        this.notifiedImage = image;
        for (const l of this.listeners) {
          if (!l.started) continue;
          try {
            await l.listener(image, previous);
          } catch (e) {
            this.logger.error('a metadata listener failed', { error: e });
          }
        }
      }
      this.published = image;
      this.notified = Math.max(this.notified, through);
      for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
        const w = this.appliedWaiters[i]!;
        if (w.offset < this.notified) {
          this.appliedWaiters.splice(i, 1);
          w.resolve();
        }
      }
      for (let i = this.imageWaiters.length - 1; i >= 0; i--) {
        const w = this.imageWaiters[i]!;
        if (w.offset <= image.offset) {
          this.imageWaiters.splice(i, 1);
          w.resolve();
        }
      }
    });
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

  /**
   * BrokerRegistration (key 62, v0–4): a RegisterBroker record with every listener (the first is
   * the inter-broker endpoint), fenced until its heartbeat says it has caught up; the broker epoch
   * is the record's offset. A retry with the same incarnation id gets the same epoch; a new
   * incarnation (a restart) replaces the registration and, being fenced, moves its leaderships.
   */
  handleBrokerRegistration(request: BrokerRegistrationRequest): Promise<BrokerRegistrationResponse> {
    const answer = (errorCode: number, brokerEpoch = -1): BrokerRegistrationResponse => ({ throttleTimeMs: 0, errorCode, brokerEpoch });
    const clusterId = this.config.raw('cluster.id');
    if (clusterId !== null && request.clusterId !== clusterId) return Promise.resolve(answer(ErrorCode.INCONSISTENT_CLUSTER_ID));
    const first = request.listeners[0];
    if (request.brokerId < 0 || first === undefined) return Promise.resolve(answer(ErrorCode.INVALID_REQUEST));
    if (this.active === null) return Promise.resolve(answer(ErrorCode.NOT_CONTROLLER));
    const listeners: BrokerEndpoint[] = request.listeners.map((l) => ({ name: l.name, host: l.host, port: l.port, securityProtocol: SECURITY_PROTOCOLS[l.securityProtocol] ?? 'PLAINTEXT' }));
    return this.ops
      .run((image) => {
        const cur = image.brokers.get(request.brokerId);
        if (cur !== undefined && cur.incarnationId === request.incarnationId) return { records: [], result: undefined };
        const r: MetadataRecord = { type: 'RegisterBroker', brokerId: request.brokerId, host: first.host, port: first.port, rack: request.rack, incarnationId: request.incarnationId, listeners, fenced: true };
        const changes = cur === undefined || cur.fenced ? [] : reconcileAll(image.apply(r, image.offset + 1), this.config.bool('unclean.leader.election.enable'), new Set([request.brokerId]));
        this.logger.info('registering broker', { brokerId: request.brokerId, endpoint: `${first.host}:${first.port}`, partitionChanges: changes.length });
        return { records: [r, ...changes], result: undefined };
      })
      .then(
        () => {
          this.sessions.touch(request.brokerId);
          return answer(ErrorCode.NONE, this.state.image.brokers.get(request.brokerId)?.epoch ?? -1);
        },
        (e: unknown) => {
          if (e instanceof NotControllerError) return answer(ErrorCode.NOT_CONTROLLER);
          throw e;
        },
      );
  }

  private brokerRegistrationApi(): ControllerApi {
    return { apiKey: ApiKey.BrokerRegistration, minVersion: 0, maxVersion: 4, handle: (body) => this.handleBrokerRegistration(body as BrokerRegistrationRequest) };
  }

  /**
   * BrokerHeartbeat (key 63, v0–1): keeps the broker's session; unfences it once its metadata
   * offset has reached its registration (and it does not want to stay fenced); `wantShutDown`
   * is a controlled shutdown: the broker is fenced — its leaderships move and it leaves every
   * ISR — and told it may stop (`shouldShutDown`) once that is committed.
   */
  async handleBrokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    const answer = (errorCode: number, isFenced = true, shouldShutDown = false, isCaughtUp = false): BrokerHeartbeatResponse => ({ throttleTimeMs: 0, errorCode, isCaughtUp, isFenced, shouldShutDown });
    if (this.active === null) return answer(ErrorCode.NOT_CONTROLLER);
    const b = this.state.image.brokers.get(request.brokerId);
    if (b === undefined) return answer(ErrorCode.BROKER_ID_NOT_REGISTERED);
    if (b.epoch !== request.brokerEpoch) return answer(ErrorCode.STALE_BROKER_EPOCH);
    const caughtUp = request.currentMetadataOffset >= b.epoch;
    try {
      if (request.wantShutDown) {
        await this.ops.fenceBrokers([{ brokerId: b.brokerId, epoch: b.epoch }]);
        // Not touched: a broker that shut down must not keep a session.
        return answer(ErrorCode.NONE, true, true, caughtUp);
      }
      this.sessions.touch(request.brokerId);
      if (b.fenced && !request.wantFence && caughtUp) await this.ops.unfenceBroker(b.brokerId, b.epoch);
      const now = this.state.image.brokers.get(request.brokerId);
      return answer(ErrorCode.NONE, now?.fenced ?? true, false, caughtUp);
    } catch (e) {
      if (e instanceof NotControllerError) return answer(ErrorCode.NOT_CONTROLLER);
      throw e;
    }
  }

  private brokerHeartbeatApi(): ControllerApi {
    return { apiKey: ApiKey.BrokerHeartbeat, minVersion: 0, maxVersion: 1, handle: (body) => this.handleBrokerHeartbeat(body as BrokerHeartbeatRequest) };
  }

  /** AlterPartition (key 56, v0–3) from a partition leader: each partition checked and changed (Controller.alterPartition). */
  async handleAlterPartition(request: AlterPartitionRequest, version: number): Promise<AlterPartitionResponse> {
    const response: AlterPartitionResponse = { throttleTimeMs: 0, errorCode: ErrorCode.NONE, topics: [] };
    if (this.active === null) return { ...response, errorCode: ErrorCode.NOT_CONTROLLER };
    try {
      for (const t of request.topics) {
        const topic = version >= 2 ? this.state.image.topicsById.get(t.topicId) : this.state.image.topic(t.topicName);
        const partitions = [];
        for (const p of t.partitions) {
          const newIsr = version >= 3 ? p.newIsrWithEpochs.map((b) => b.brokerId) : p.newIsr;
          const r = topic === undefined
            ? { errorCode: version >= 2 ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partition: null }
            : await this.ops.alterPartition({ topicId: topic.topicId, partition: p.partitionIndex, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr }, request.brokerId, request.brokerEpoch);
          const ok = r.errorCode === ErrorCode.NONE && r.partition !== null;
          partitions.push({
            partitionIndex: p.partitionIndex,
            errorCode: r.errorCode,
            leaderId: ok ? r.partition!.leader : -1,
            leaderEpoch: ok ? r.partition!.leaderEpoch : -1,
            isr: ok ? [...r.partition!.isr] : [],
            leaderRecoveryState: 0,
            partitionEpoch: ok ? r.partition!.partitionEpoch : -1,
          });
        }
        response.topics.push({ topicName: t.topicName, topicId: t.topicId, partitions });
      }
    } catch (e) {
      if (e instanceof NotControllerError) return { ...response, errorCode: ErrorCode.NOT_CONTROLLER, topics: [] };
      throw e;
    }
    return response;
  }

  private alterPartitionApi(): ControllerApi {
    return { apiKey: ApiKey.AlterPartition, minVersion: 0, maxVersion: 3, handle: (body, version) => this.handleAlterPartition(body as AlterPartitionRequest, version) };
  }

  /**
   * A forwarded metadata write (cluster-controller.ts): the records a broker computed from its
   * image at `imageOffset` are committed only if the active controller's image has nothing newer
   * (an optimistic check: the operation saw the same image the active controller has), else the
   * broker is told to catch up and run the operation again. With no records it only checks that
   * the broker's image is current (an operation that changed nothing, e.g. an error answer, must
   * not have been decided on a stale image). `offset` is -1 when nothing was written.
   */
  handleForwardedWrite(w: ForwardedWrite): Promise<ForwardedWriteResult> {
    return this.runActiveAt((image): { records: MetadataRecord[]; result: number } => {
      if (image.offset > w.imageOffset) return { records: [], result: image.offset };
      return { records: w.records, result: -1 };
    }).then(({ result, offset }): ForwardedWriteResult => (result >= 0 ? { committed: false, stale: true, offset: result } : { committed: true, offset }));
  }

  /** Envelope (key 58) on the controller listener carries Strand's forwarded metadata writes (JSON ForwardedWrite). */
  private envelopeApi(): ControllerApi {
    return {
      apiKey: ApiKey.Envelope,
      minVersion: 0,
      maxVersion: 0,
      handle: async (body): Promise<EnvelopeResponse> => {
        const request = body as EnvelopeRequest;
        let w: ForwardedWrite;
        try {
          w = JSON.parse(request.requestData.toString('utf8')) as ForwardedWrite;
        } catch {
          return { responseData: null, errorCode: ErrorCode.INVALID_REQUEST };
        }
        if (w.strand !== 'MetadataWrite' || !Array.isArray(w.records) || typeof w.imageOffset !== 'number') return { responseData: null, errorCode: ErrorCode.INVALID_REQUEST };
        try {
          const r = await this.handleForwardedWrite(w);
          return { responseData: Buffer.from(JSON.stringify(r)), errorCode: ErrorCode.NONE };
        } catch (e) {
          if (e instanceof NotControllerError) return { responseData: null, errorCode: ErrorCode.NOT_CONTROLLER };
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
          .map(createTopicSpec);
        const active = this.active === null ? undefined : this.ops;
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
