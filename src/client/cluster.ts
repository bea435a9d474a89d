/**
 * The client's view of the cluster: bootstrap, brokers, topic metadata (leaders per partition),
 * group coordinators, and one connection per (broker, lane).
 *
 * Lanes keep requests that wait on the broker side from delaying unrelated ones: Kafka answers a
 * connection in request order, so a long-poll Fetch or a JoinGroup waiting for a rebalance would
 * hold back every Produce response pipelined behind it. Producers use lane 'produce', consumers
 * 'fetch' and 'group', admin and metadata 'default'.
 *
 * Metadata is cached and refreshed on demand (an error with `needsMetadataRefresh`), when older
 * than `metadataMaxAgeMs`, or when a topic is not known yet. Concurrent refreshes coalesce into
 * one request for the union of the topics asked about.
 */
import { ZERO_UUID } from '../protocol/reader.js';
import { ErrorCode } from '../protocol/errors.js';
import { FindCoordinatorApi, MetadataApi, type MetadataResponse } from '../protocol/messages/index.js';
import { Connection, type ConnectionOptions, type SaslOptions } from './connection.js';
import { ConnectionError, KafkaError, StrandError } from './errors.js';
import { nullLogger, type ClientLogger } from './logger.js';
import { channels } from './connection.js';

export interface RetryOptions {
  /** Attempts after the first (default 5). */
  retries?: number;
  /** First backoff (default 100 ms); doubles per attempt, with ±20 % jitter. */
  initialRetryTimeMs?: number;
  /** Largest backoff (default 1000 ms). */
  maxRetryTimeMs?: number;
}

export interface ClusterOptions {
  /** Bootstrap addresses, `host:port`. */
  brokers: string[];
  clientId?: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Metadata older than this is refreshed before use (default 300000, Kafka's metadata.max.age.ms). */
  metadataMaxAgeMs?: number;
  /** Ask the broker to create unknown topics on Metadata (default false). */
  allowAutoTopicCreation?: boolean;
  retry?: RetryOptions;
  logger?: ClientLogger;
  /** TLS to every broker: true, or node:tls options (ca, cert, key, rejectUnauthorized, ...). */
  ssl?: ConnectionOptions['ssl'];
  /** SASL login on every connection: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512', username, password }. */
  sasl?: SaslOptions;
}

export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionInfo {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  errorCode: number;
}

export interface TopicInfo {
  name: string;
  topicId: string;
  isInternal: boolean;
  partitions: PartitionInfo[];
}

export type Lane = 'default' | 'produce' | 'fetch' | 'group';

export function parseBroker(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address.trim().replace(/^[A-Za-z_]+:\/\//, ''));
  if (!m) throw new StrandError('INVALID_CONFIG', `broker address "${address}" is not host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Backoff before attempt `attempt` (1-based): exponential, capped, ±20 % jitter. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(0, Math.round(base * (0.8 + Math.random() * 0.4)));
}

export class Cluster {
  readonly clientId: string;
  readonly logger: ClientLogger;
  readonly requestTimeoutMs: number;
  private readonly bootstrap: Array<{ host: string; port: number }>;
  private readonly connectTimeoutMs: number;
  private readonly metadataMaxAgeMs: number;
  private readonly allowAutoTopicCreation: boolean;
  readonly retryOptions: Required<RetryOptions>;
  readonly brokers = new Map<number, BrokerInfo>();
  readonly topics = new Map<string, TopicInfo>();
  clusterId: string | null = null;
  controllerId = -1;
  private metadataAt = 0;
  /** Topics this client uses; a refresh asks for all of them. */
  private readonly interest = new Set<string>();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private readonly connections = new Map<string, Promise<Connection>>();
  private bootstrapConn: Promise<Connection> | null = null;
  private readonly coordinators = new Map<string, number>();
  private closed = false;

  constructor(opts: ClusterOptions) {
    if (opts.brokers.length === 0) throw new StrandError('INVALID_CONFIG', 'no bootstrap brokers');
    this.bootstrap = opts.brokers.map(parseBroker);
    this.clientId = opts.clientId ?? 'strand';
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30000;
    this.metadataMaxAgeMs = opts.metadataMaxAgeMs ?? 300000;
    this.allowAutoTopicCreation = opts.allowAutoTopicCreation ?? false;
    this.retryOptions = { retries: 5, initialRetryTimeMs: 100, maxRetryTimeMs: 1000, ...opts.retry };
    this.logger = opts.logger ?? nullLogger;
    this.security = { ssl: opts.ssl, sasl: opts.sasl };
  }

  private readonly security: Pick<ClusterOptions, 'ssl' | 'sasl'>;

  private open(host: string, port: number, nodeId: number): Promise<Connection> {
    return Connection.connect({
      host,
      port,
      nodeId,
      clientId: this.clientId,
      connectTimeoutMs: this.connectTimeoutMs,
      requestTimeoutMs: this.requestTimeoutMs,
      logger: this.logger,
      ...(this.security.ssl !== undefined ? { ssl: this.security.ssl } : {}),
      ...(this.security.sasl !== undefined ? { sasl: this.security.sasl } : {}),
    });
  }

  private checkOpen(): void {
    if (this.closed) throw new StrandError('CLIENT_CLOSED', 'the client is closed');
  }

  /** A connection to any broker: the bootstrap connection, reopened (trying each address) if it closed. */
  async anyConnection(): Promise<Connection> {
    this.checkOpen();
    if (this.bootstrapConn) {
      const c = await this.bootstrapConn.catch(() => null);
      if (c && !c.closed) return c;
    }
    this.bootstrapConn = (async () => {
      let last: unknown;
      const candidates = [...this.bootstrap, ...[...this.brokers.values()].map((b) => ({ host: b.host, port: b.port }))];
      const start = Math.floor(Math.random() * this.bootstrap.length);
      for (let i = 0; i < candidates.length; i++) {
        const b = candidates[(start + i) % candidates.length]!;
        try {
          return await this.open(b.host, b.port, -1);
        } catch (e) {
          last = e;
        }
      }
      throw last instanceof Error ? last : new ConnectionError('no broker reachable');
    })();
    return this.bootstrapConn;
  }

  /** The connection to broker `nodeId` on `lane`, opened on first use and after it closed. */
  async connection(nodeId: number, lane: Lane = 'default'): Promise<Connection> {
    this.checkOpen();
    const key = `${nodeId}/${lane}`;
    const existing = this.connections.get(key);
    if (existing) {
      const c = await existing.catch(() => null);
      if (c && !c.closed) return c;
      if (this.connections.get(key) !== existing) return this.connection(nodeId, lane);
    }
    let broker = this.brokers.get(nodeId);
    if (broker === undefined) {
      await this.refreshMetadata();
      broker = this.brokers.get(nodeId);
      if (broker === undefined) throw new StrandError('BROKER_NOT_AVAILABLE', `broker ${nodeId} is not in the cluster metadata`, { retriable: true, needsMetadataRefresh: true });
    }
    const p = this.open(broker.host, broker.port, nodeId);
    this.connections.set(key, p);
    p.catch(() => {
      if (this.connections.get(key) === p) this.connections.delete(key);
    });
    return p;
  }

  /** Adds topics to the set every metadata refresh asks for. */
  track(topics: Iterable<string>): void {
    for (const t of topics) this.interest.add(t);
  }

  /** Refreshes metadata for the tracked topics (plus `topics`); concurrent calls share one request. */
  async refreshMetadata(topics: Iterable<string> = []): Promise<void> {
    this.track(topics);
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          const resp = await this.fetchMetadata([...this.interest]);
          this.applyMetadata(resp, true);
        } while (this.refreshAgain);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** One Metadata request (topics null = all topics), retried over connections. */
  async fetchMetadata(topics: string[] | null, allowAutoTopicCreation = this.allowAutoTopicCreation): Promise<MetadataResponse> {
    return this.withRetry('Metadata', async () => {
      const conn = await this.anyConnection();
      return conn.request(MetadataApi, {
        topics: topics === null ? null : topics.map((name) => ({ topicId: ZERO_UUID, name })),
        allowAutoTopicCreation,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      });
    });
  }

  /** Folds a Metadata response into the cache. */
  applyMetadata(resp: MetadataResponse, complete = false): void {
    if (complete) this.brokers.clear();
    for (const b of resp.brokers) this.brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack });
    this.clusterId = resp.clusterId;
    this.controllerId = resp.controllerId;
    for (const t of resp.topics) {
      if (t.name === null) continue;
      if (t.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION || t.errorCode === ErrorCode.INVALID_TOPIC_EXCEPTION) {
        this.topics.delete(t.name);
        continue;
      }
      if (t.errorCode !== 0 && t.partitions.length === 0) continue; // LEADER_NOT_AVAILABLE while being created
      this.topics.set(t.name, {
        name: t.name,
        topicId: t.topicId,
        isInternal: t.isInternal,
        partitions: t.partitions
          .map((p) => ({ partition: p.partitionIndex, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes, isr: p.isrNodes, errorCode: p.errorCode }))
          .sort((a, b) => a.partition - b.partition),
      });
    }
    this.metadataAt = Date.now();
  }

  /** Metadata of `topic`, refreshing when unknown or stale; UNKNOWN_TOPIC_OR_PARTITION if it does not exist. */
  async topic(name: string): Promise<TopicInfo> {
    this.interest.add(name);
    let t = this.topics.get(name);
    if (t !== undefined && Date.now() - this.metadataAt < this.metadataMaxAgeMs) return t;
    return this.withRetry(`Metadata for ${name}`, async () => {
      await this.refreshMetadata([name]);
      t = this.topics.get(name);
      if (t === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name);
      return t;
    });
  }

  /** Leader node of a partition from the cache (-1 when unknown). */
  leaderOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.partitions[partition]?.leader ?? -1;
  }

  /** Node id of the coordinator of a group (keyType 0) or transactional id (1). */
  async coordinator(key: string, keyType = 0): Promise<number> {
    const cacheKey = `${keyType}:${key}`;
    const cached = this.coordinators.get(cacheKey);
    if (cached !== undefined) return cached;
    return this.withRetry(`FindCoordinator ${key}`, async () => {
      const conn = await this.anyConnection();
      const resp = await conn.request(FindCoordinatorApi, { key, keyType, coordinatorKeys: [key] });
      const c = resp.coordinators.length > 0 ? resp.coordinators[0]! : resp;
      if (c.errorCode !== 0) throw new KafkaError(c.errorCode, `FindCoordinator ${key}`, c.errorMessage);
      if (!this.brokers.has(c.nodeId)) this.brokers.set(c.nodeId, { nodeId: c.nodeId, host: c.host, port: c.port, rack: null });
      this.coordinators.set(cacheKey, c.nodeId);
      return c.nodeId;
    });
  }

  forgetCoordinator(key: string, keyType = 0): void {
    this.coordinators.delete(`${keyType}:${key}`);
  }

  /**
   * Runs `fn` until it succeeds, a non-retriable error, or the retries run out; refreshes
   * metadata between attempts when the error says it is stale.
   */
  async withRetry<T>(what: string, fn: (attempt: number) => Promise<T>, retry: Partial<RetryOptions> = {}): Promise<T> {
    const o = { ...this.retryOptions, ...retry };
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (e) {
        if (this.closed || !(e instanceof StrandError) || !e.retriable || attempt >= o.retries) throw e;
        const waitMs = backoffMs(attempt + 1, o.initialRetryTimeMs, o.maxRetryTimeMs);
        this.logger.debug('retrying', { what, attempt: attempt + 1, error: e.code, waitMs });
        if (channels.retry.hasSubscribers) channels.retry.publish({ what, attempt: attempt + 1, error: e });
        await sleep(waitMs);
        if (e.needsMetadataRefresh && !what.startsWith('Metadata')) {
          this.coordinators.clear();
          await this.refreshMetadata().catch(() => {});
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    if (this.bootstrapConn) all.push(this.bootstrapConn);
    this.connections.clear();
    this.bootstrapConn = null;
    for (const p of all) {
      const c = await p.catch(() => null);
      c?.close();
    }
  }
}
