/**
 * The broker process: storage, the metadata log and controller, the replica manager, and the
 * listeners, started and stopped in order.
 *
 * Start (single node, no `controller.quorum.voters`): read (or create) `meta.properties` with the
 * cluster id; open the log manager (which knows whether the last shutdown was clean); replay the
 * local metadata log into the image; open the logs of every partition in it; listen; register
 * this broker's advertised endpoints.
 * Start (a node of a cluster: `controller.quorum.voters`): the same storage, but the metadata is
 * the Raft quorum's — the node runs a QuorumControllerNode (a voter on the controller listener
 * with `process.roles=broker,controller`, an observer with `process.roles=broker`) and a
 * ClusterController over its committed image (cluster-controller.ts); the broker binds its
 * other listeners, then registers and heartbeats in the background (BrokerLifecycle). Once the
 * controller has unfenced it (it caught up with the metadata log) it serves the connections
 * (which wait until then, as Kafka enables request processing only after the initial catch-up),
 * orphan partition logs are deleted and the coordinators load.
 * Stop (SIGTERM / SIGINT): in a cluster first a controlled shutdown (the controller moves this
 * broker's leaderships, bounded by `broker.session.timeout.ms`); stop accepting, let in-flight
 * requests finish (long polls answer at once), close connections, leave the quorum (resigning
 * if leader), close the metadata log and every partition log (fsync, trim indexes), and mark the
 * shutdown clean last.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LogManager } from '../storage/log-manager.js';
import { BrokerConfig } from './config.js';
import { Connection, MAX_PENDING_RESPONSE_BYTES } from './connection.js';
import { HANDLERS } from './handlers/index.js';
import type { ApiHandler } from './handlers/handler.js';
import type { Logger } from './logger.js';
import { LocalController, type Controller } from './metadata/controller.js';
import { MetadataImage, type BrokerEndpoint } from './metadata/image.js';
import { MetadataLog } from './metadata/metadata-log.js';
import { QuorumControllerNode } from './metadata/quorum-controller.js';
import { BrokerLifecycle, ClusterController, ControllerChannel } from './metadata/cluster-controller.js';
import { ReplicaManager } from './replica-manager.js';
import { BrokerMetrics, metricsSourceOf, startMetricsServer, type MetricsServer } from './metrics.js';
import type { GroupCoordinator } from '../coordinator/group-coordinator.js';
import { OFFSETS_TOPIC } from '../coordinator/group-records.js';
import { setUpGroupCoordination, type GroupCoordination } from './group-coordinator-setup.js';
import { setUpExactlyOnce, type ExactlyOnce } from './transaction-coordinator-setup.js';
import { loadSendfile } from './sendfile.js';
import { loadNativeAddon } from '../native/addon.js';
import { DataDirLock } from './data-dir-lock.js';
import { ANONYMOUS, mapDistinguishedName, parsePrincipalMappingRules, peerDistinguishedName, tlsServerOptions } from './security/tls.js';
import type { SecurityProtocol } from './config.js';
import { Authorizer } from './security/authorizer.js';
import { QuotaManager } from './security/quotas.js';

export interface BrokerAddress {
  host: string;
  port: number;
}

/** A bound listener: its name, protocol, bound address and the address advertised for it. */
export interface BoundListener {
  name: string;
  securityProtocol: SecurityProtocol;
  bound: BrokerAddress;
  advertised: BrokerAddress;
}

async function loadOrCreateMetaProperties(dataDir: string, nodeId: number, configured: string | null, logger: Logger): Promise<{ clusterId: string; formatted: boolean }> {
  const path = join(dataDir, 'meta.properties');
  let text: string | null = null;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text !== null) {
    const props = new Map(text.split('\n').filter((l) => l.includes('=') && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    const clusterId = props.get('cluster.id');
    const stored = Number(props.get('node.id'));
    if (clusterId === undefined) throw new Error(`${path} has no cluster.id`);
    if (stored !== nodeId) throw new Error(`${path} belongs to node.id ${stored}, but this broker is node.id ${nodeId}`);
    if (configured !== null && configured !== clusterId) throw new Error(`${path} has cluster.id ${clusterId}, but cluster.id=${configured} is configured`);
    return { clusterId, formatted: false };
  }
  const clusterId = configured ?? randomBytes(16).toString('base64url');
  await writeFile(path, `#\n#${new Date().toISOString()}\nversion=1\ncluster.id=${clusterId}\nnode.id=${nodeId}\n`);
  logger.info('formatted data directory', { dataDir, clusterId, nodeId });
  return { clusterId, formatted: true };
}

/** Elects and resigns the coordinators' partitions as an image says (coordinator-leadership.ts). */
function followLeadership(groups: GroupCoordination, exactlyOnce: ExactlyOnce): (image: MetadataImage) => void {
  return (image) => {
    groups.leadership.sync(image);
    exactlyOnce.leadership.sync(image);
  };
}

export class Broker {
  readonly handlers: readonly ApiHandler<any, any>[] = HANDLERS;
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 0;
  private stopping: Promise<void> | null = null;
  /** This broker's hold on its data directory (data-dir-lock.ts), released after the logs close. */
  private dataDirLock: DataDirLock | null = null;
  /** In a cluster, until the broker has caught up with the metadata log (unfenced): new connections wait for it. */
  private catchingUp: Promise<void> | null = null;
  private readonly waitingSockets = new Set<Socket>();
  private addresses_: BrokerAddress[] = [];
  private listeners_: BoundListener[] = [];
  private readonly connectionsPerIp = new Map<string, number>();
  /** Request, traffic and log metrics (metrics.ts); served over HTTP with `metricsPort`. */
  readonly metrics = new BrokerMetrics();
  private metricsServer: MetricsServer | null = null;

  private constructor(
    readonly config: BrokerConfig,
    readonly logger: Logger,
    readonly clusterId: string,
    readonly logManager: LogManager,
    /** The local metadata log (single node), or null in a cluster. */
    readonly metadataLog: MetadataLog | null,
    readonly controller: Controller,
    readonly replicaManager: ReplicaManager,
    /** The group coordinator and the leadership of `__consumer_offsets` it follows. */
    readonly groupCoordination: GroupCoordination,
    /** Producer ids, the transaction coordinator and its marker writer (issue 5). */
    readonly exactlyOnce: ExactlyOnce,
    /** ACL checks (security/authorizer.ts); allows everything unless authorizer.class.name is set. */
    readonly authorizer: Authorizer,
  ) {
    this.quotas = new QuotaManager(config);
  }

  /** Client quota rates (security/quotas.ts). */
  readonly quotas: QuotaManager;
  /** In a cluster: this node's voter of the metadata quorum, and the broker's registration and heartbeats. */
  quorum: QuorumControllerNode | null = null;
  lifecycle: BrokerLifecycle | null = null;
  private channel: ControllerChannel | null = null;

  /** The active controller's node id (Metadata's controller_id): this node on a single node; -1 when a cluster has none. */
  get controllerId(): number {
    if (this.quorum === null) return this.nodeId;
    return this.quorum.leader.id;
  }

  get groupCoordinator(): GroupCoordinator {
    return this.groupCoordination.coordinator;
  }

  get nodeId(): number {
    return this.config.nodeId;
  }

  get image(): MetadataImage {
    return this.controller.image;
  }

  /** The bound listener addresses (with the real port when 0 was configured). */
  get addresses(): readonly BrokerAddress[] {
    return this.addresses_;
  }

  /** Every bound listener with its advertised address (Metadata answers the client's own listener). */
  get listeners(): readonly BoundListener[] {
    return this.listeners_;
  }

  /** The address advertised for `listener` (the first listener's when unknown). */
  advertisedFor(listener: string): BrokerAddress {
    return (this.listeners_.find((l) => l.name === listener) ?? this.listeners_[0]!).advertised;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** The port of the metrics HTTP server, or null when it is off. */
  get metricsPort(): number | null {
    return this.metricsServer?.port ?? null;
  }

  static async start(config: BrokerConfig, logger: Logger, opts: { metricsPort?: number; metricsHost?: string } = {}): Promise<Broker> {
    await mkdir(config.dataDir, { recursive: true });
    // Before anything reads or recovers the directory: another broker may be writing it.
    const lock = await DataDirLock.acquire(config.dataDir);
    try {
      const broker = await Broker.startLocked(config, logger, opts);
      broker.dataDirLock = lock;
      return broker;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  private static async startLocked(config: BrokerConfig, logger: Logger, opts: { metricsPort?: number; metricsHost?: string }): Promise<Broker> {
    const dataDir = config.dataDir;
    const authorizer = new Authorizer(config);
    parsePrincipalMappingRules(config.string('ssl.principal.mapping.rules'));
    const { clusterId, formatted } = await loadOrCreateMetaProperties(dataDir, config.nodeId, config.raw('cluster.id'), logger);
    for (const k of config.unknownKeys) logger.warn('ignoring unknown broker config', { name: k });
    const logManager = new LogManager(dataDir, {
      logger: logger.child('storage'),
      retentionCheckIntervalMs: config.number('log.retention.check.interval.ms'),
      highWatermarkCheckpointIntervalMs: config.number('replica.high.watermark.checkpoint.interval.ms'),
      cleaner: {
        enabled: config.bool('log.cleaner.enable'),
        backoffMs: config.number('log.cleaner.backoff.ms'),
        dedupeBufferSize: config.number('log.cleaner.dedupe.buffer.size'),
        ioMaxBytesPerSecond: config.number('log.cleaner.io.max.bytes.per.second'),
      },
    });
    const { cleanShutdown } = await logManager.startup();
    if (!cleanShutdown && !formatted) logger.warn('the last shutdown was not clean: recovering log tails', { dataDir });
    const replicaManager = new ReplicaManager(logManager, config, config.nodeId, logger.child('replica'));
    if (config.quorumVoters !== null) {
      return Broker.startInCluster(config, logger, opts, clusterId, logManager, replicaManager, authorizer);
    }
    const metadataLog = await MetadataLog.open(dataDir, cleanShutdown, logger.child('metadata'));
    const image = await metadataLog.replay();
    const controller = new LocalController(image, metadataLog, config, config.nodeId, logger.child('controller'));
    await replicaManager.deleteOrphanLogs(image);
    await replicaManager.applyImage(image, MetadataImage.EMPTY);
    controller.onChange((next, previous) => replicaManager.applyImage(next, previous));
    const groups = setUpGroupCoordination(config, controller, replicaManager, logger.child('group-coordinator'));
    const exactlyOnce = setUpExactlyOnce(config, controller, replicaManager, groups.coordinator, logger.child('transaction-coordinator'));
    // The coordinators follow the leadership of their partitions (after the replica manager has opened the logs).
    const follow = followLeadership(groups, exactlyOnce);
    controller.onChange(async (next) => follow(next));
    follow(image);
    const broker = new Broker(config, logger, clusterId, logManager, metadataLog, controller, replicaManager, groups, exactlyOnce, authorizer);
    replicaManager.metrics = broker.metrics;
    replicaManager.alterPartition = (req) => controller.alterPartition(req);
    await broker.listen();
    // Other brokers reach this one on inter.broker.listener.name (default: the first listener).
    const endpoints = broker.registeredEndpoints();
    await controller.registerBroker(endpoints[0]!.host, endpoints[0]!.port, endpoints);
    // A single broker creates __consumer_offsets at start (a cluster node on the first
    // FindCoordinator for a group, once the other nodes have registered). Group requests
    // meanwhile get COORDINATOR_LOAD_IN_PROGRESS (clients retry).
    if (!(await groups.createTopic())) throw new Error(`cannot create ${OFFSETS_TOPIC}`);
    // The partitions led here are loaded before the broker reports itself started.
    await groups.leadership.settled();
    await exactlyOnce.leadership.settled();
    await broker.startMetrics(opts);
    logger.info('broker started', {
      nodeId: config.nodeId,
      clusterId,
      listeners: broker.addresses.map((a) => `${a.host}:${a.port}`).join(','),
      dataDir,
      topics: image.topicsByName.size,
    });
    return broker;
  }

  /** Every advertised listener as registered in the metadata: the inter-broker one (inter.broker.listener.name, default the first) first. */
  private registeredEndpoints(): BrokerEndpoint[] {
    const inter = this.config.raw('inter.broker.listener.name') ?? this.listeners_[0]!.name;
    const all = this.listeners_.map((l) => ({ name: l.name, host: l.advertised.host, port: l.advertised.port, securityProtocol: l.securityProtocol }));
    return [...all.filter((l) => l.name === inter), ...all.filter((l) => l.name !== inter)];
  }

  private async startMetrics(opts: { metricsPort?: number; metricsHost?: string }): Promise<void> {
    if (opts.metricsPort === undefined) return;
    this.metricsServer = await startMetricsServer(this.metrics, metricsSourceOf(this, () => this.stopping === null), opts.metricsPort, opts.metricsHost ?? '127.0.0.1');
    this.logger.info('metrics endpoint listening', { url: `http://${opts.metricsHost ?? '127.0.0.1'}:${this.metricsServer.port}/metrics` });
  }

  /** A combined node of a cluster (see the file comment). */
  private static async startInCluster(
    config: BrokerConfig,
    logger: Logger,
    opts: { metricsPort?: number; metricsHost?: string },
    clusterId: string,
    logManager: LogManager,
    replicaManager: ReplicaManager,
    authorizer: Authorizer,
  ): Promise<Broker> {
    let node: QuorumControllerNode;
    try {
      node = await QuorumControllerNode.start(config, logger.child('controller'));
    } catch (e) {
      await logManager.shutdown();
      throw e;
    }
    const channel = new ControllerChannel(node, config.quorumVoters!, config.number('controller.quorum.request.timeout.ms'), logger.child('controller-channel'));
    const controller = new ClusterController(node, channel, config, logger.child('controller'));
    node.onChange((next, previous) => replicaManager.applyImage(next, previous), true);
    const groups = setUpGroupCoordination(config, controller, replicaManager, logger.child('group-coordinator'));
    const exactlyOnce = setUpExactlyOnce(config, controller, replicaManager, groups.coordinator, logger.child('transaction-coordinator'));
    const broker = new Broker(config, logger, clusterId, logManager, null, controller, replicaManager, groups, exactlyOnce, authorizer);
    broker.quorum = node;
    broker.channel = channel;
    replicaManager.metrics = broker.metrics;
    replicaManager.alterPartition = (req) => controller.alterPartition(req);
    try {
      await broker.listen();
    } catch (e) {
      channel.close();
      await node.shutdown();
      await logManager.shutdown();
      throw e;
    }
    const lifecycle = new BrokerLifecycle(node, channel, controller, config, clusterId, broker.registeredEndpoints(), logger.child('lifecycle'));
    broker.lifecycle = lifecycle;
    replicaManager.leaderLeaseValid = () => lifecycle.leaseValid(Date.now());
    broker.catchingUp = lifecycle.whenUnfenced().then(async () => {
      await node.whenApplied(lifecycle.brokerEpoch);
      broker.catchingUp = null;
      logger.info('caught up with the metadata log: serving clients', { brokerEpoch: lifecycle.brokerEpoch, topics: broker.image.topicsByName.size });
    });
    lifecycle.start();
    void lifecycle.whenUnfenced().then(async () => {
      if (broker.stopping !== null) return;
      try {
        // Unfenced means the published image has reached this broker's registration, so it holds
        // every topic created before it (heartbeats report the published offset).
        await node.whenApplied(lifecycle.brokerEpoch);
        // Only now is the image caught up: a partition directory it does not know is an orphan.
        await replicaManager.deleteOrphanLogs(broker.image);
        // From now on the coordinators follow the leadership of their partitions (a partition
        // whose log the replica manager has not opened yet loads on the next change).
        const follow = followLeadership(groups, exactlyOnce);
        controller.onChange(async (next) => follow(next));
        follow(broker.image);
      } catch (e) {
        logger.warn('coordinators not loaded on this node', { error: e instanceof Error ? e.message : String(e) });
      }
    });
    await broker.startMetrics(opts);
    logger.info('broker started', {
      nodeId: config.nodeId,
      clusterId,
      listeners: broker.addresses.map((a) => `${a.host}:${a.port}`).join(','),
      dataDir: config.dataDir,
      controllerListenerPort: node.port,
      voters: config.quorumVoters!.map((v) => `${v.id}@${v.host}:${v.port}`).join(','),
    });
    return broker;
  }

  private async listen(): Promise<void> {
    const zeroCopy = this.config.bool('strand.network.sendfile') ? loadSendfile() : { sendfile: null, reason: 'strand.network.sendfile=false' };
    const native = loadNativeAddon();
    if (native.addon === null) {
      // One line for both consequences: the reason is the same.
      this.logger.info('fetch responses are copied through user space; storage reads go through the thread pool, also when the page cache holds them', { reason: native.reason });
    } else if (zeroCopy.sendfile === null) {
      this.logger.info('fetch responses are copied through user space', { reason: zeroCopy.reason });
    }
    const limits = {
      maxRequestBytes: this.config.number('socket.request.max.bytes'),
      maxPendingResponseBytes: MAX_PENDING_RESPONSE_BYTES,
      sendfile: zeroCopy.sendfile,
    };
    const protocols = this.config.securityProtocolMap;
    const advertised = this.config.advertisedListeners;
    const networkLogger = this.logger.child('network');
    const rules = parsePrincipalMappingRules(this.config.string('ssl.principal.mapping.rules'));
    // In a cluster the controller listeners belong to the quorum (QuorumControllerNode).
    const controllerNames = this.config.quorumVoters === null ? [] : (this.config.raw('controller.listener.names') ?? '').split(',');
    for (const l of this.config.listeners) {
      if (controllerNames.includes(l.name)) continue;
      const securityProtocol = protocols.get(l.name)!;
      const tls = securityProtocol === 'SSL' || securityProtocol === 'SASL_SSL';
      const accept = (socket: Socket, principal: string): void => {
        if (this.catchingUp !== null) {
          // A cluster broker serves once it has caught up with the metadata log (Kafka enables
          // request processing only then): until then its connections wait, unread.
          socket.pause();
          this.waitingSockets.add(socket);
          void this.catchingUp.then(() => {
            this.waitingSockets.delete(socket);
            if (socket.destroyed || this.stopping !== null) return;
            accept(socket, principal);
            socket.resume();
          });
          return;
        }
        if (!this.admit(socket, l.name)) return;
        const id = `${l.name}-${this.nextConnectionId++}`;
        const conn = new Connection(id, socket, this, networkLogger, limits, { name: l.name, securityProtocol }, principal);
        this.connections.add(conn);
      };
      let server: Server;
      if (tls) {
        const tlsServer = createTlsServer({ ...tlsServerOptions(this.config, l.name), noDelay: true, allowHalfOpen: true }, (socket: TLSSocket) => {
          // ssl.client.auth=requested lets a client without a certificate in, not one with a bad one.
          if (!socket.authorized && socket.getPeerCertificate() !== null && Object.keys(socket.getPeerCertificate()).length > 0) {
            this.metrics.authenticationFailures++;
            networkLogger.info('closing connection: client certificate not trusted', { listener: l.name, remote: socket.remoteAddress, reason: String(socket.authorizationError) });
            socket.destroy();
            return;
          }
          const dn = peerDistinguishedName(socket);
          const user = dn === null ? null : mapDistinguishedName(dn, rules);
          if (dn !== null && user === null) {
            this.metrics.authenticationFailures++;
            networkLogger.info('closing connection: no ssl.principal.mapping.rules rule matches the client certificate', { listener: l.name, remote: socket.remoteAddress, dn });
            socket.destroy();
            return;
          }
          accept(socket, user === null ? ANONYMOUS : `User:${user}`);
        });
        tlsServer.on('tlsClientError', (e, socket) => networkLogger.info('TLS handshake failed', { listener: l.name, remote: socket.remoteAddress, error: e.message }));
        server = tlsServer;
      } else {
        server = createServer({ noDelay: true, allowHalfOpen: true }, (socket: Socket) => accept(socket, ANONYMOUS));
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (e) => this.logger.error('listener error', { listener: l.name, error: e }));
      const addr = server.address();
      if (addr === null || typeof addr === 'string') throw new Error('listener has no address');
      this.addresses_.push({ host: l.host, port: addr.port });
      const adv = advertised.find((a) => a.name === l.name) ?? (l.host === '' || l.host === '0.0.0.0' || l.host === '::' ? { ...l, host: '127.0.0.1' } : l);
      this.listeners_.push({ name: l.name, securityProtocol, bound: { host: l.host, port: addr.port }, advertised: { host: adv.host, port: adv.port === 0 ? addr.port : adv.port } });
      this.servers.push(server);
    }
  }

  /** `max.connections` and `max.connections.per.ip`: a connection over either limit is closed at once. */
  private admit(socket: Socket, listener: string): boolean {
    const ip = socket.remoteAddress ?? '';
    const fromIp = this.connectionsPerIp.get(ip) ?? 0;
    const over = this.connections.size >= this.config.number('max.connections') ? 'max.connections' : fromIp >= this.config.number('max.connections.per.ip') ? 'max.connections.per.ip' : null;
    if (over !== null) {
      this.logger.child('network').warn(`closing connection: ${over} reached`, { listener, remote: ip, open: this.connections.size, fromIp });
      socket.destroy();
      return false;
    }
    this.connectionsPerIp.set(ip, fromIp + 1);
    socket.once('close', () => {
      const n = (this.connectionsPerIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.connectionsPerIp.delete(ip);
      else this.connectionsPerIp.set(ip, n);
    });
    return true;
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
  }

  /** Clean shutdown; safe to call more than once. */
  shutdown(): Promise<void> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    this.logger.info('shutting down');
    // Controlled shutdown: leaderships move while this broker still answers (clients are redirected).
    if (this.lifecycle !== null) await this.lifecycle.controlledShutdown(this.config.number('broker.session.timeout.ms'));
    for (const s of this.servers) s.close();
    for (const s of this.waitingSockets) s.destroy();
    this.waitingSockets.clear();
    this.groupCoordinator.shutdown(); // answers waiting JoinGroup/SyncGroup, stops its timers
    this.exactlyOnce.shutdown(); // stops the timeout task and marker retries
    await this.replicaManager.shutdown(); // stops the replica fetchers and the ISR task; answers waiting acks=all produces
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, 15000).unref());
    await Promise.race([Promise.all([...this.connections].map((c) => c.shutdown())), deadline]);
    for (const c of this.connections) c.destroy('broker shut down', {}, 'debug');
    this.channel?.close();
    await this.quorum?.shutdown();
    await this.metadataLog?.close();
    await this.logManager.shutdown();
    await this.metricsServer?.close();
    this.dataDirLock?.release();
    this.logger.info('shutdown complete: logs flushed and closed, marked clean');
  }
}
