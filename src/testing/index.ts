/**
 * `strand/testing`: a real Strand broker inside the test process, for tests of any Kafka client
 * (Strand's, KafkaJS, @platformatic/kafka, ...) with no JVM and no Docker.
 *
 *   const strand = await startStrand({ topics: [{ name: 'orders', partitions: 3 }] });
 *   // ... clients connect to strand.bootstrap ('127.0.0.1:<port>')
 *   await strand.stop();
 *
 * The broker listens on 127.0.0.1 on an ephemeral port and keeps its data in a fresh temporary
 * directory, removed on stop. Defaults suited to tests: no initial rebalance delay for consumer
 * groups, a small __consumer_offsets, acks=all answered without fsync (the data directory is
 * thrown away anyway). Any broker config can be overridden with `config`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../broker/broker.js';
import { BrokerConfig } from '../broker/config.js';
import { createLogger, silentLogger, type Level } from '../broker/logger.js';
import type { SecurityProtocol } from '../broker/config.js';
import { newCredential, type ScramMechanism } from '../protocol/scram.js';
import { credentialRecord } from '../broker/security/credentials.js';

export interface TestTopic {
  name: string;
  /** Default 1. */
  partitions?: number;
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  configs?: Record<string, string>;
}

export interface StartStrandOptions {
  /** Topics created before startStrand resolves. */
  topics?: Array<TestTopic | string>;
  /** Broker configs (Kafka names), e.g. { 'auto.create.topics.enable': 'false' }. */
  config?: Record<string, string | number | boolean>;
  /** Data directory to use (kept on stop); default a temporary one, removed on stop. */
  dataDir?: string;
  /** Broker log level; default silent. */
  logLevel?: Level;
  /** Port to listen on; default 0 (ephemeral). */
  port?: number;
  /**
   * Secured listeners opened beside the PLAINTEXT one (which stays, for test setup), each on an
   * ephemeral port: `['SASL_SSL']`. TLS needs the key store in `config`
   * (`ssl.keystore.location`, ...); SASL uses `sasl.enabled.mechanisms` from `config`.
   */
  securityProtocols?: SecurityProtocol[];
  /** SCRAM users created before startStrand resolves (both mechanisms unless given). */
  users?: Array<{ name: string; password: string; mechanisms?: ScramMechanism[] }>;
}

export interface StrandTestBroker {
  /** `127.0.0.1:<port>`, for a client's bootstrap list. */
  readonly bootstrap: string;
  readonly brokers: string[];
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** The broker itself (for tests that look inside). */
  readonly broker: Broker;
  /** `127.0.0.1:<port>` of the listener with this security protocol (PLAINTEXT is `bootstrap`). */
  bootstrapFor(protocol: SecurityProtocol): string;
  /** Adds or replaces a SCRAM user (salted and hashed into the metadata log, as AlterUserScramCredentials does). */
  addUser(name: string, password: string, mechanisms?: ScramMechanism[]): Promise<void>;
  /** Creates topics (existing ones are an error). */
  createTopics(topics: Array<TestTopic | string>): Promise<void>;
  /** Shuts the broker down cleanly and removes its temporary data directory. */
  stop(): Promise<void>;
}

const TEST_DEFAULTS: Record<string, string> = {
  'group.initial.rebalance.delay.ms': '0',
  'offsets.topic.num.partitions': '4',
  'strand.acks.all.fsync': 'false',
};

export async function startStrand(opts: StartStrandOptions = {}): Promise<StrandTestBroker> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'strand-inproc-'));
  const props = new Map<string, string>(Object.entries(TEST_DEFAULTS));
  for (const [k, v] of Object.entries(opts.config ?? {})) props.set(k, String(v));
  const extra = (opts.securityProtocols ?? []).filter((p) => p !== 'PLAINTEXT');
  props.set('listeners', [`PLAINTEXT://127.0.0.1:${opts.port ?? 0}`, ...extra.map((p) => `${p}://127.0.0.1:0`)].join(','));
  props.set('log.dirs', dataDir);
  const logger = opts.logLevel ? createLogger({ level: opts.logLevel, component: 'strand' }) : silentLogger;
  let broker: Broker;
  try {
    broker = await Broker.start(new BrokerConfig(props), logger);
  } catch (e) {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const { host, port } = broker.addresses[0]!;
  const bootstrap = `${host}:${port}`;
  let stopped: Promise<void> | null = null;

  // Through the controller, not the wire: test setup works whatever the listeners and ACLs are.
  const createTopics = async (topics: Array<TestTopic | string>): Promise<void> => {
    if (topics.length === 0) return;
    const results = await broker.controller.createTopics(
      topics.map((t) => {
        const tt = typeof t === 'string' ? { name: t } : t;
        return { name: tt.name, numPartitions: tt.partitions ?? 1, replicationFactor: -1, assignments: [], configs: Object.entries(tt.configs ?? {}) };
      }),
      false,
    );
    const failed = results.filter((t) => t.errorCode !== 0);
    if (failed.length > 0) throw new Error(`createTopics failed: ${failed.map((t) => `${t.name}: error ${t.errorCode} ${t.errorMessage ?? ''}`).join('; ')}`);
  };

  const addUser = async (name: string, password: string, mechanisms: ScramMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512']): Promise<void> => {
    const records = await Promise.all(mechanisms.map(async (m) => credentialRecord(name, m, await newCredential(m, password))));
    await broker.controller.run(() => ({ records, result: undefined }));
  };

  const handle: StrandTestBroker = {
    bootstrap,
    brokers: [bootstrap],
    port,
    host,
    dataDir,
    broker,
    bootstrapFor(protocol: SecurityProtocol): string {
      const l = broker.listeners.find((x) => x.securityProtocol === protocol);
      if (l === undefined) throw new Error(`no ${protocol} listener: start with securityProtocols: ['${protocol}']`);
      return `${l.advertised.host}:${l.advertised.port}`;
    },
    addUser,
    createTopics,
    stop() {
      stopped ??= (async () => {
        await broker.shutdown();
        if (ownDir) rmSync(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  try {
    for (const u of opts.users ?? []) await addUser(u.name, u.password, u.mechanisms);
    await createTopics(opts.topics ?? []);
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

export { startBroker, type BrokerProcess, type StartOptions } from './broker-process.js';
export { startCluster, LocalCluster, netnsUnavailable, waitUntil, clusterNodeProperties, TEST_TIMINGS, type StartClusterOptions, type ClusterNode, type ClusterNetwork, type PartitionState } from './cluster.js';
