/**
 * The broker's controller in a cluster (`controller.quorum.voters` set, `process.roles=broker,controller`):
 * the metadata image is the Raft quorum's committed image, and operations run on the active
 * controller.
 *
 * - `ClusterController` (the broker's `Controller`): `image` is the image this node has applied
 *   and handed to its listeners (the replica manager) — so a handler never sees a partition
 *   before its log is open. `run(op)`:
 *   - on the active controller, the operation runs there directly (QuorumControllerNode.runActive);
 *   - elsewhere it is **forwarded**: the operation runs here against this node's image at offset
 *     X, and its records are sent to the active controller in an Envelope (api 58) on the
 *     controller listener. The active controller commits them only if its own image is not newer
 *     than X — then the operation saw exactly the image the controller has, as if it had run
 *     there — and otherwise answers with its offset: this node waits until its image reaches it
 *     and runs the operation again. So every controller operation (topics, partitions, configs,
 *     ACLs, SCRAM users, quotas, producer id blocks, elections, reassignments) works from every
 *     node, with the same validation, and no operation needs a wire format of its own. An
 *     operation that commits nothing (an error answer, say) is confirmed the same way, with no
 *     records, so it is never decided on a stale image. It
 *     resolves once this node has applied the committed records (read-your-writes on the node
 *     that answers the client). While no controller answers it retries (backing off) for
 *     `request.timeout.ms`, so clients do not see NOT_CONTROLLER during an election.
 *   - `alterPartition` goes as Kafka's AlterPartition (api 56) to the active controller.
 * - `BrokerLifecycle` (Kafka's BrokerLifecycleManager): registers the broker (BrokerRegistration,
 *   api 62, every listener, the inter-broker one first) until it succeeds, then heartbeats
 *   (BrokerHeartbeat, api 63) every `broker.heartbeat.interval.ms` with its applied metadata
 *   offset; the controller unfences it once it has caught up with its registration. A heartbeat
 *   answered STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED registers again. `controlledShutdown`
 *   heartbeats with `wantShutDown` until the controller has moved its leaderships away.
 * - `ControllerChannel`: requests to the active controller — this process when it is active,
 *   otherwise a connection to the quorum leader's controller listener (`controller.quorum.voters`).
 */
import { randomBytes } from 'node:crypto';
import { Connection } from '../../client/connection.js';
import { ErrorCode, errorName } from '../../protocol/errors.js';
import {
  AlterPartitionApi,
  BrokerHeartbeatApi,
  BrokerRegistrationApi,
  EnvelopeApi,
  type AlterPartitionResponse,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type BrokerRegistrationRequest,
  type BrokerRegistrationResponse,
} from '../../protocol/messages/index.js';
import type { ApiDef } from '../../client/connection.js';
import type { VoterEndpoint } from '../../raft/tcp-transport.js';
import type { BrokerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { Controller, type AlterPartitionRequest, type AlterPartitionResult, type ControllerOperation, type MetadataListener } from './controller.js';
import type { BrokerEndpoint, MetadataImage, MetadataRecord } from './image.js';
import { NotControllerError, securityProtocolId, type ForwardedWrite, type ForwardedWriteResult, type QuorumControllerNode } from './quorum-controller.js';

/** How long a forwarded operation keeps trying to reach an active controller (Kafka's request.timeout.ms default). */
export const FORWARD_TIMEOUT_MS = 30000;

/** Extra time a forwarded write or AlterPartition may take (the controller answers after the commit is applied). */
const COMMIT_WAIT_MS = 15000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Requests to the active controller's listener (the quorum leader), one connection per voter. */
export class ControllerChannel {
  private readonly connections = new Map<number, Promise<Connection>>();
  private closed = false;

  constructor(
    private readonly node: QuorumControllerNode,
    private readonly voters: readonly VoterEndpoint[],
    private readonly requestTimeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Sends to the quorum leader; throws NotControllerError when no leader is known or it cannot be
   * reached. `extraTimeoutMs` is added to `controller.quorum.request.timeout.ms` for requests that
   * wait for a commit (the controller answers them after applying the records).
   */
  async send<Req, Res>(api: ApiDef<Req, Res>, body: Req, version: number, extraTimeoutMs = 0): Promise<Res> {
    const leader = this.node.leader.id;
    const voter = this.voters.find((v) => v.id === leader);
    if (this.closed || voter === undefined) throw new NotControllerError('no quorum leader is known');
    let conn: Connection;
    try {
      let pending = this.connections.get(leader);
      if (pending === undefined) {
        pending = Connection.connect({ host: voter.host, port: voter.port, clientId: `broker-${this.node.nodeId}`, nodeId: leader, connectTimeoutMs: this.requestTimeoutMs, requestTimeoutMs: this.requestTimeoutMs });
        this.connections.set(leader, pending);
        pending.catch(() => this.connections.delete(leader));
      }
      conn = await pending;
      if (conn.closed) {
        this.connections.delete(leader);
        throw new Error('connection closed');
      }
    } catch (e) {
      throw new NotControllerError(`controller ${leader} at ${voter.host}:${voter.port} cannot be reached: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
      return await conn.request(api, body, { version, extraTimeoutMs });
    } catch (e) {
      this.connections.delete(leader);
      conn.close();
      this.logger.debug('controller request failed', { controller: leader, api: api.name, error: e instanceof Error ? e.message : String(e) });
      throw new NotControllerError(`controller ${leader} did not answer ${api.name}`);
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.connections.values()) c.then((conn) => conn.close(), () => undefined);
    this.connections.clear();
  }
}

/** A broker's controller in a cluster: see the file comment. */
export class ClusterController extends Controller {
  /** Set by the lifecycle once registered: AlterPartition carries it. */
  brokerEpoch = -1;

  constructor(
    private readonly node: QuorumControllerNode,
    private readonly channel: ControllerChannel,
    config: BrokerConfig,
    logger: Logger,
    /** How long an operation keeps retrying without an active controller. */
    private readonly timeoutMs: number = FORWARD_TIMEOUT_MS,
  ) {
    super(config, node.nodeId, logger);
  }

  get image(): MetadataImage {
    return this.node.publishedImage;
  }

  onChange(listener: MetadataListener): void {
    this.node.onChange(listener);
  }

  async run<T>(op: ControllerOperation<T>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    let backoff = 20;
    let lastError: Error = new NotControllerError();
    for (;;) {
      if (this.node.isActive) {
        try {
          return await this.node.runActive(op);
        } catch (e) {
          if (!(e instanceof NotControllerError)) throw e;
          lastError = e;
        }
      } else {
        const image = this.node.publishedImage;
        const { records, result } = op(image);
        try {
          // Also with no records: the controller confirms the image the answer was decided on is current.
          const r = await this.forward(image.offset, records);
          if (r.committed) {
            if (r.offset >= 0) await this.waitUntil(() => this.node.whenApplied(r.offset), deadline);
            return result;
          }
          // The active controller has newer records: catch up and run the operation again.
          await this.waitUntil(() => this.node.whenImageAt(r.offset), deadline);
          if (Date.now() <= deadline) continue;
        } catch (e) {
          if (!(e instanceof NotControllerError)) throw e;
          lastError = e;
        }
      }
      if (Date.now() > deadline) throw new NotControllerError(`no active controller completed the operation within ${this.timeoutMs} ms (${lastError.message})`);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 500);
    }
  }

  private async forward(imageOffset: number, records: MetadataRecord[]): Promise<ForwardedWriteResult> {
    const write: ForwardedWrite = { strand: 'MetadataWrite', brokerId: this.nodeId, imageOffset, records };
    const r = await this.channel.send(EnvelopeApi, { requestData: Buffer.from(JSON.stringify(write)), requestPrincipal: null, clientHostAddress: Buffer.alloc(0) }, 0, COMMIT_WAIT_MS);
    if (r.errorCode === ErrorCode.NOT_CONTROLLER) throw new NotControllerError();
    if (r.errorCode !== ErrorCode.NONE || r.responseData === null) throw new Error(`the active controller refused a forwarded metadata write (error ${r.errorCode})`);
    return JSON.parse(r.responseData.toString('utf8')) as ForwardedWriteResult;
  }

  /** Waits for `what` but no later than `deadline`. */
  private async waitUntil(what: () => Promise<void>, deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([what(), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
  }

  /** AlterPartition: on the active controller directly, otherwise as Kafka's AlterPartition (api 56, v2) to it. */
  override async alterPartition(req: AlterPartitionRequest): Promise<AlterPartitionResult> {
    const deadline = Date.now() + this.timeoutMs;
    let backoff = 20;
    for (;;) {
      if (this.node.isActive) {
        try {
          return await this.node.ops.alterPartition(req, this.nodeId, this.brokerEpoch);
        } catch (e) {
          if (!(e instanceof NotControllerError)) throw e;
        }
      } else {
        let r: AlterPartitionResponse | null = null;
        try {
          r = await this.channel.send(
            AlterPartitionApi,
            {
              brokerId: this.nodeId,
              brokerEpoch: this.brokerEpoch,
              topics: [{ topicName: '', topicId: req.topicId, partitions: [{ partitionIndex: req.partition, leaderEpoch: req.leaderEpoch, newIsr: [...req.newIsr], newIsrWithEpochs: [], leaderRecoveryState: 0, partitionEpoch: req.partitionEpoch }] }],
            },
            2,
            COMMIT_WAIT_MS,
          );
        } catch (e) {
          if (!(e instanceof NotControllerError)) throw e;
        }
        const p = r?.topics[0]?.partitions[0];
        if (r !== null && r.errorCode !== ErrorCode.NOT_CONTROLLER) {
          const errorCode = r.errorCode !== ErrorCode.NONE ? r.errorCode : (p?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR);
          if (errorCode !== ErrorCode.NONE) return { errorCode, partition: this.image.topicsById.get(req.topicId)?.partitions[req.partition] ?? null };
          // Answer with the committed state as this node's image has it (replicas included).
          const epoch = p!.partitionEpoch;
          const applied = (): boolean => (this.image.topicsById.get(req.topicId)?.partitions[req.partition]?.partitionEpoch ?? -1) >= epoch;
          while (!applied() && Date.now() < deadline) await sleep(5);
          return { errorCode: ErrorCode.NONE, partition: this.image.topicsById.get(req.topicId)?.partitions[req.partition] ?? null };
        }
      }
      if (Date.now() > deadline) return { errorCode: ErrorCode.NOT_CONTROLLER, partition: null };
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 500);
    }
  }
}

export type LifecycleState = 'registering' | 'fenced' | 'unfenced' | 'shutting-down' | 'stopped';

/** Registration and heartbeats of this broker (see the file comment). */
export class BrokerLifecycle {
  private state_: LifecycleState = 'registering';
  private epoch = -1;
  private readonly incarnationId = randomBytes(16).toString('base64url');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private unfencedWaiters: Array<() => void> = [];
  private stopped = false;
  /** When the last heartbeat the controller answered unfenced was sent (Date.now()); -1 before any. */
  private lastAcknowledgedMs = -1;
  private lastRefusal: number = ErrorCode.NONE;

  constructor(
    private readonly node: QuorumControllerNode,
    private readonly channel: ControllerChannel,
    private readonly controller: ClusterController,
    private readonly config: BrokerConfig,
    private readonly clusterId: string,
    /** Every advertised listener, the inter-broker one first. */
    private readonly listeners: readonly BrokerEndpoint[],
    private readonly logger: Logger,
  ) {}

  get state(): LifecycleState {
    return this.state_;
  }

  get brokerEpoch(): number {
    return this.epoch;
  }

  /**
   * Whether this broker may act as a partition leader now: it is unfenced and the controller
   * answered one of its heartbeats within `broker.session.timeout.ms`. Past that, the controller
   * has fenced it and moved its leaderships (or will), whatever this broker's image still says —
   * a node cut off by a network partition learns it only when it can reach the quorum again, and
   * until then must not take writes as the partition's leader (NOT_LEADER_OR_FOLLOWER, which
   * clients retry after refreshing metadata).
   */
  leaseValid(nowMs: number): boolean {
    if (this.state_ !== 'unfenced' && this.state_ !== 'shutting-down') return false;
    return this.lastAcknowledgedMs >= 0 && nowMs - this.lastAcknowledgedMs < this.config.number('broker.session.timeout.ms');
  }

  /** Starts registering, then heartbeating, in the background. */
  start(): void {
    this.schedule(0);
  }

  /** Resolves once the controller has unfenced this broker. */
  whenUnfenced(): Promise<void> {
    if (this.state_ === 'unfenced') return Promise.resolve();
    return new Promise((resolve) => this.unfencedWaiters.push(resolve));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.tick().finally(() => (this.running = null));
    }, delayMs);
  }

  private async tick(): Promise<void> {
    const interval = this.config.number('broker.heartbeat.interval.ms');
    try {
      if (this.state_ === 'registering') {
        const ok = await this.register();
        this.schedule(ok ? 0 : Math.min(interval, 500));
        return;
      }
      await this.heartbeat(false);
    } catch (e) {
      this.logger.warn('broker lifecycle request failed', { error: e instanceof Error ? e.message : String(e) });
    }
    this.schedule(this.state_ === 'fenced' ? Math.min(interval, 200) : interval);
  }

  private async send<Req, Res>(api: ApiDef<Req, Res>, body: Req, version: number, local: (b: Req) => Promise<Res>): Promise<Res> {
    return this.node.isActive ? local(body) : this.channel.send(api, body, version);
  }

  private async register(): Promise<boolean> {
    const request: BrokerRegistrationRequest = {
      brokerId: this.node.nodeId,
      clusterId: this.clusterId,
      incarnationId: this.incarnationId,
      listeners: this.listeners.map((l) => ({ name: l.name, host: l.host, port: l.port, securityProtocol: securityProtocolId(l.securityProtocol) })),
      features: [],
      rack: null,
      isMigratingZkBroker: false,
      logDirs: [],
      previousBrokerEpoch: this.epoch,
    };
    let r: BrokerRegistrationResponse;
    try {
      r = await this.send(BrokerRegistrationApi, request, 2, (b) => this.node.handleBrokerRegistration(b));
    } catch (e) {
      if (e instanceof NotControllerError) return false;
      throw e;
    }
    if (r.errorCode !== ErrorCode.NONE) {
      // Said once per distinct refusal, not on every retry.
      if (r.errorCode !== ErrorCode.NOT_CONTROLLER && r.errorCode !== this.lastRefusal) {
        if (r.errorCode === ErrorCode.INCONSISTENT_CLUSTER_ID) this.logger.error('broker registration refused: the controller belongs to another cluster (check cluster.id and meta.properties); retrying', { clusterId: this.clusterId });
        else this.logger.warn('broker registration refused; retrying', { error: errorName(r.errorCode) });
      }
      this.lastRefusal = r.errorCode;
      return false;
    }
    this.epoch = r.brokerEpoch;
    this.controller.brokerEpoch = r.brokerEpoch;
    this.state_ = 'fenced';
    this.logger.info('registered with the controller', { brokerEpoch: r.brokerEpoch });
    return true;
  }

  private async heartbeat(wantShutDown: boolean): Promise<BrokerHeartbeatResponse | null> {
    const request: BrokerHeartbeatRequest = {
      brokerId: this.node.nodeId,
      brokerEpoch: this.epoch,
      // What the broker has applied *and* acted on (partition logs opened): the controller
      // unfences it only once that reaches its registration.
      currentMetadataOffset: this.node.publishedOffset - 1,
      wantFence: false,
      wantShutDown,
      offlineLogDirs: [],
    };
    let r: BrokerHeartbeatResponse;
    const sentMs = Date.now();
    try {
      r = await this.send(BrokerHeartbeatApi, request, 0, (b) => this.node.handleBrokerHeartbeat(b));
    } catch (e) {
      if (e instanceof NotControllerError) return null;
      throw e;
    }
    if (r.errorCode === ErrorCode.STALE_BROKER_EPOCH || r.errorCode === ErrorCode.BROKER_ID_NOT_REGISTERED) {
      this.logger.warn('the controller no longer knows this registration: registering again', { errorCode: r.errorCode, brokerEpoch: this.epoch });
      if (this.state_ !== 'shutting-down') this.state_ = 'registering';
      return null;
    }
    if (r.errorCode !== ErrorCode.NONE) return null;
    if (!r.isFenced) this.lastAcknowledgedMs = sentMs;
    if (this.state_ === 'shutting-down') return r;
    if (r.isFenced && this.state_ === 'unfenced') {
      this.logger.warn('fenced by the controller');
      this.state_ = 'fenced';
    } else if (!r.isFenced && this.state_ === 'fenced') {
      this.logger.info('unfenced by the controller', { brokerEpoch: this.epoch });
      this.state_ = 'unfenced';
      for (const w of this.unfencedWaiters.splice(0)) w();
    }
    return r;
  }

  /**
   * Controlled shutdown: heartbeats with `wantShutDown` until the controller answers
   * `shouldShutDown` (it fenced this broker: its leaderships moved, it left every ISR), for at
   * most `timeoutMs`. Then stops heartbeating. Resolves whether or not it succeeded.
   */
  async controlledShutdown(timeoutMs: number): Promise<boolean> {
    const registered = this.state_ === 'fenced' || this.state_ === 'unfenced';
    this.state_ = 'shutting-down';
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    let done = false;
    if (registered) {
      const deadline = Date.now() + timeoutMs;
      while (!done && Date.now() < deadline) {
        try {
          const r = await this.heartbeat(true);
          done = r !== null && r.shouldShutDown;
        } catch (e) {
          this.logger.debug('controlled shutdown heartbeat failed', { error: e instanceof Error ? e.message : String(e) });
        }
        if (!done) await sleep(100);
      }
      if (done) this.logger.info('controlled shutdown: the controller moved this broker\'s leaderships');
      else this.logger.warn('controlled shutdown: the controller did not confirm in time; stopping anyway', { timeoutMs });
    }
    this.state_ = 'stopped';
    return done;
  }

  stop(): void {
    this.stopped = true;
    this.state_ = 'stopped';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
