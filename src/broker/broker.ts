/**
 * The broker process: storage, the metadata log and controller, the replica manager, and the
 * listeners, started and stopped in order.
 *
 * Start: read (or create) `meta.properties` with the cluster id; open the log manager (which
 * knows whether the last shutdown was clean); replay the metadata log into the image; open the
 * logs of every partition in it; listen; register this broker's advertised endpoint.
 * Stop (SIGTERM / SIGINT): stop accepting, let in-flight requests finish (long polls answer at
 * once), close connections, close the metadata log and every partition log (fsync, trim
 * indexes), and mark the shutdown clean last.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LogManager } from '../storage/log-manager.js';
import { BrokerConfig } from './config.js';
import { Connection, MAX_PENDING_RESPONSE_BYTES } from './connection.js';
import { HANDLERS } from './handlers/index.js';
import type { ApiHandler } from './handlers/handler.js';
import type { Logger } from './logger.js';
import { Controller } from './metadata/controller.js';
import { MetadataImage } from './metadata/image.js';
import { MetadataLog } from './metadata/metadata-log.js';
import { ReplicaManager } from './replica-manager.js';
import { BrokerMetrics, metricsSourceOf, startMetricsServer, type MetricsServer } from './metrics.js';
import type { GroupCoordinator } from '../coordinator/group-coordinator.js';
import { loadGroupCoordinator, newGroupCoordinator } from './group-coordinator-setup.js';
import { loadExactlyOnceIfPresent, setUpExactlyOnce, type ExactlyOnce } from './transaction-coordinator-setup.js';
import { loadSendfile } from './sendfile.js';

export interface BrokerAddress {
  host: string;
  port: number;
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

export class Broker {
  readonly handlers: readonly ApiHandler<any, any>[] = HANDLERS;
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 0;
  private stopping: Promise<void> | null = null;
  private addresses_: BrokerAddress[] = [];
  /** Request, traffic and log metrics (metrics.ts); served over HTTP with `metricsPort`. */
  readonly metrics = new BrokerMetrics();
  private metricsServer: MetricsServer | null = null;

  private constructor(
    readonly config: BrokerConfig,
    readonly logger: Logger,
    readonly clusterId: string,
    readonly logManager: LogManager,
    readonly metadataLog: MetadataLog,
    readonly controller: Controller,
    readonly replicaManager: ReplicaManager,
    readonly groupCoordinator: GroupCoordinator,
    /** Producer ids, the transaction coordinator and its marker writer (issue 5). */
    readonly exactlyOnce: ExactlyOnce,
  ) {}

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

  get connectionCount(): number {
    return this.connections.size;
  }

  /** The port of the metrics HTTP server, or null when it is off. */
  get metricsPort(): number | null {
    return this.metricsServer?.port ?? null;
  }

  static async start(config: BrokerConfig, logger: Logger, opts: { metricsPort?: number; metricsHost?: string } = {}): Promise<Broker> {
    const dataDir = config.dataDir;
    await mkdir(dataDir, { recursive: true });
    const { clusterId, formatted } = await loadOrCreateMetaProperties(dataDir, config.nodeId, config.raw('cluster.id'), logger);
    for (const k of config.unknownKeys) logger.warn('ignoring unknown broker config', { name: k });
    const logManager = new LogManager(dataDir, {
      logger: logger.child('storage'),
      retentionCheckIntervalMs: config.number('log.retention.check.interval.ms'),
      cleaner: {
        enabled: config.bool('log.cleaner.enable'),
        backoffMs: config.number('log.cleaner.backoff.ms'),
        dedupeBufferSize: config.number('log.cleaner.dedupe.buffer.size'),
        ioMaxBytesPerSecond: config.number('log.cleaner.io.max.bytes.per.second'),
      },
    });
    const { cleanShutdown } = await logManager.startup();
    if (!cleanShutdown && !formatted) logger.warn('the last shutdown was not clean: recovering log tails', { dataDir });
    const metadataLog = await MetadataLog.open(dataDir, cleanShutdown, logger.child('metadata'));
    const image = await metadataLog.replay();
    const controller = new Controller(image, metadataLog, config, config.nodeId, logger.child('controller'));
    const replicaManager = new ReplicaManager(logManager, config, config.nodeId, logger.child('replica'));
    await replicaManager.deleteOrphanLogs(image);
    await replicaManager.applyImage(image, MetadataImage.EMPTY);
    controller.onChange((next, previous) => replicaManager.applyImage(next, previous));
    const groupCoordinator = newGroupCoordinator(config, controller, logger.child('group-coordinator'));
    const exactlyOnce = setUpExactlyOnce(config, controller, replicaManager, groupCoordinator, logger.child('transaction-coordinator'));
    const broker = new Broker(config, logger, clusterId, logManager, metadataLog, controller, replicaManager, groupCoordinator, exactlyOnce);
    replicaManager.metrics = broker.metrics;
    await broker.listen();
    const adv = config.advertisedListeners[0]!;
    const bound = broker.addresses[0]!;
    await controller.registerBroker(adv.host, adv.port === 0 ? bound.port : adv.port);
    // Group requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE (clients retry).
    await loadGroupCoordinator(groupCoordinator, config, controller, replicaManager, logger.child('group-coordinator'));
    // After the group coordinator: resumed commits write markers to __consumer_offsets too.
    await loadExactlyOnceIfPresent(exactlyOnce, controller);
    if (opts.metricsPort !== undefined) {
      broker.metricsServer = await startMetricsServer(broker.metrics, metricsSourceOf(broker, () => broker.stopping === null), opts.metricsPort, opts.metricsHost ?? '127.0.0.1');
      logger.info('metrics endpoint listening', { url: `http://${opts.metricsHost ?? '127.0.0.1'}:${broker.metricsServer.port}/metrics` });
    }
    logger.info('broker started', {
      nodeId: config.nodeId,
      clusterId,
      listeners: broker.addresses.map((a) => `${a.host}:${a.port}`).join(','),
      dataDir,
      topics: image.topicsByName.size,
    });
    return broker;
  }

  private async listen(): Promise<void> {
    const zeroCopy = this.config.bool('strand.network.sendfile') ? loadSendfile() : { sendfile: null, reason: 'strand.network.sendfile=false' };
    if (zeroCopy.sendfile === null) this.logger.info('fetch responses are copied through user space', { reason: zeroCopy.reason });
    const limits = {
      maxRequestBytes: this.config.number('socket.request.max.bytes'),
      maxPendingResponseBytes: MAX_PENDING_RESPONSE_BYTES,
      sendfile: zeroCopy.sendfile,
    };
    for (const l of this.config.listeners) {
      const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket: Socket) => {
        const id = `${l.name}-${this.nextConnectionId++}`;
        const conn = new Connection(id, socket, this, this.logger.child('network'), limits);
        this.connections.add(conn);
      });
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
      this.servers.push(server);
    }
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
    for (const s of this.servers) s.close();
    this.groupCoordinator.shutdown(); // answers waiting JoinGroup/SyncGroup, stops its timers
    this.exactlyOnce.shutdown(); // stops the timeout task and marker retries
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, 15000).unref());
    await Promise.race([Promise.all([...this.connections].map((c) => c.shutdown())), deadline]);
    for (const c of this.connections) c.destroy('broker shut down', {}, 'debug');
    await this.metadataLog.close();
    await this.logManager.shutdown();
    await this.metricsServer?.close();
    this.logger.info('shutdown complete: logs flushed and closed, marked clean');
  }
}
