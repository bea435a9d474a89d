/**
 * A local Strand cluster of real processes: N combined nodes (`process.roles=broker,controller`,
 * each a voter of the Raft metadata quorum and a broker), each one `strand broker --config
 * <file>` child process. Used by `strand cluster up` and by the end-to-end fault tests:
 *
 *   const cluster = await startCluster({ nodes: 3, network: 'netns' });
 *   await cluster.createTopic('orders', { partitions: 3, replicationFactor: 3 });
 *   const leader = await cluster.leaderOf('orders', 0);
 *   await cluster.kill(leader);            // kill -9
 *   await cluster.restart(leader);
 *   cluster.isolate(2); cluster.heal(2);   // a network partition (network: 'netns')
 *   await cluster.stop();
 *
 * Networks:
 *  - `loopback`: every node on 127.0.0.1, client listener and controller listener on their own
 *    ports (base port P: node i listens on P+i-1 and its controller on P+100+i-1; free ports
 *    without one). Kill and restart work; a network partition cannot be made.
 *  - `netns`: each node in its own Linux network namespace on a private bridge (src/testing/
 *    netns.ts), at 10.A.B.(10+i), client listener :9092, controller listener :9093; the test and
 *    its clients reach the nodes from the root namespace. `isolate(id)` / `heal(id)` cut and
 *    restore all of one node's links. Needs root; `netnsUnavailable()` says why not.
 *
 * The data directory holds `cluster.id` (the cluster id every node is configured with) and, per
 * node, `node-<id>.properties` (its config), `node-<id>/` (its log.dirs) and `node-<id>.log` (its
 * output). A temporary directory is removed by stop(); a given
 * one is kept, and starting again on it reuses the data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../protocol/errors.js';
import { ApiKey } from '../protocol/messages/index.js';
import type { MetadataResponse, MetadataResponsePartition } from '../protocol/messages/metadata.js';
import type { DescribeQuorumResponsePartitionData } from '../protocol/messages/describe-quorum.js';
import { freePort, STRAND_BIN } from './broker-process.js';
import { NetnsNetwork, netnsUnavailable } from './netns.js';
import { ProtocolConnection } from './protocol-client.js';

export { netnsUnavailable } from './netns.js';

export type ClusterNetwork = 'loopback' | 'netns';

export interface StartClusterOptions {
  /** Number of nodes, ids 1..N (default 3). */
  nodes?: number;
  /** Data directory (kept on stop, reused on start); default a temporary one, removed on stop. */
  dataDir?: string;
  /** Default `loopback`. */
  network?: ClusterNetwork;
  /** `loopback` only: node i's client listener is basePort+i-1, its controller listener basePort+100+i-1. Default: free ports. */
  basePort?: number;
  /** Configs for every node, over the cluster's own (see `clusterNodeProperties`). */
  overrides?: Record<string, string | number | boolean>;
  /** Use timings suited to tests (fast elections, heartbeats and ISR changes; see TEST_TIMINGS). Default true. */
  fastTimings?: boolean;
  /** Called with each line a node prints. */
  onOutput?: (nodeId: number, line: string) => void;
  /**
   * Start each node in its own process group, so that a Ctrl-C at a terminal (SIGINT to the
   * foreground group) reaches only this process, which then stops the nodes cleanly. Default false.
   */
  detached?: boolean;
  /** Called when a node's process exits (killed, stopped, or on its own). */
  onExit?: (nodeId: number, code: number | null, signal: NodeJS.Signals | null) => void;
  /** How long to wait for the cluster to be up (default 60 s). */
  timeoutMs?: number;
  /**
   * Wait until Metadata on every node lists this many brokers (default: all N). 1 accepts nodes
   * that each see only themselves.
   */
  expectBrokers?: number;
}

/**
 * Faster than Kafka's defaults, for tests: elections in about a second, a dead broker fenced in
 * 3 s, a lagging follower out of the ISR in 3 s; no initial rebalance delay; small internal topics.
 */
export const TEST_TIMINGS: Record<string, string> = {
  'controller.quorum.election.timeout.ms': '500',
  'controller.quorum.fetch.timeout.ms': '1000',
  'controller.quorum.request.timeout.ms': '1000',
  'controller.quorum.append.linger.ms': '5',
  'broker.heartbeat.interval.ms': '500',
  'broker.session.timeout.ms': '3000',
  'replica.lag.time.max.ms': '3000',
  'group.initial.rebalance.delay.ms': '0',
  'offsets.topic.num.partitions': '4',
  'transaction.state.log.num.partitions': '4',
  'strand.acks.all.fsync': 'false',
};

export interface NodeAddress {
  id: number;
  host: string;
  /** The client (PLAINTEXT) listener. */
  port: number;
  /** The CONTROLLER listener (Raft, BrokerRegistration, DescribeQuorum). */
  controllerPort: number;
}

/**
 * The server.properties of one combined node of a local cluster of `nodes.length` nodes: Kafka's
 * keys, with replication defaults that a cluster of this size can satisfy.
 */
export function clusterNodeProperties(self: NodeAddress, nodes: NodeAddress[], logDir: string, clusterId: string): Record<string, string> {
  const n = nodes.length;
  const hostPort = (h: string, p: number): string => `${h.includes(':') ? `[${h}]` : h}:${p}`;
  return {
    'process.roles': 'broker,controller',
    'node.id': String(self.id),
    // One id for the whole cluster, as `kafka-storage format --cluster-id` gives every node.
    'cluster.id': clusterId,
    listeners: `PLAINTEXT://${hostPort(self.host, self.port)},CONTROLLER://${hostPort(self.host, self.controllerPort)}`,
    'advertised.listeners': `PLAINTEXT://${hostPort(self.host, self.port)}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.quorum.voters': nodes.map((x) => `${x.id}@${hostPort(x.host, x.controllerPort)}`).join(','),
    'log.dirs': logDir,
    'default.replication.factor': String(Math.min(3, n)),
    'min.insync.replicas': String(Math.min(2, n)),
    'offsets.topic.replication.factor': String(Math.min(3, n)),
    'transaction.state.log.replication.factor': String(Math.min(3, n)),
    'transaction.state.log.min.isr': String(Math.min(2, n)),
  };
}

export function propertiesText(props: Record<string, string>, header: string): string {
  return `# ${header}\n${Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

/** Polls `probe` until it returns a value other than null/undefined; throws after timeoutMs. */
export async function waitUntil<T>(what: string, probe: () => Promise<T | null | undefined> | T | null | undefined, timeoutMs = 30000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null && v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** One request on a fresh connection, bounded in time (an isolated node never answers, never resets). */
export async function requestOnce<T = any>(host: string, port: number, apiKey: number, version: number, body: unknown, timeoutMs = 3000): Promise<T> {
  let conn: ProtocolConnection | null = null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
  });
  const attempt = (async () => {
    const c = await ProtocolConnection.connect(host, port, 'strand-cluster');
    conn = c;
    return c.send<T>(apiKey, version, body);
  })();
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    attempt.then(
      () => (conn as ProtocolConnection | null)?.close(),
      () => (conn as ProtocolConnection | null)?.close(),
    );
  }
}

/** Whether something accepts TCP connections at host:port within timeoutMs. */
export function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface ClusterNode extends NodeAddress {
  readonly bootstrap: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** The namespace it runs in (`network: 'netns'`), else null. */
  readonly namespace: string | null;
  /** The running process, or null when stopped or killed. */
  readonly child: ChildProcess | null;
  /** Everything it printed since the cluster started (all its lifetimes), last 4 MB. */
  output(): string;
}

interface NodeState extends ClusterNode {
  child: ChildProcess | null;
  exited: Promise<number | null> | null;
  out: string;
  log: WriteStream;
}

export interface PartitionState {
  topic: string;
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
}

const OUTPUT_CAP = 4 << 20;

export class LocalCluster {
  private readonly state: NodeState[];
  private stopped: Promise<Record<number, number | null>> | null = null;

  private constructor(
    /** The `cluster.id` every node is configured with (a node joining the cluster needs it too). */
    readonly clusterId: string,
    readonly dataDir: string,
    private readonly ownDir: boolean,
    readonly network: ClusterNetwork,
    private readonly netns: NetnsNetwork | null,
    nodes: NodeState[],
    private readonly onOutput: ((nodeId: number, line: string) => void) | undefined,
    private readonly onExit: ((nodeId: number, code: number | null, signal: NodeJS.Signals | null) => void) | undefined,
    private readonly detached: boolean,
  ) {
    this.state = nodes;
    // Nodes must not outlive the process that started them, even when it exits without stop().
    process.once('exit', () => {
      for (const n of this.state) n.child?.kill('SIGKILL');
    });
  }

  get nodes(): readonly ClusterNode[] {
    return this.state;
  }

  /** Every node's client listener, comma-separated: a bootstrap list for any client. */
  get bootstrap(): string {
    return this.state.map((n) => n.bootstrap).join(',');
  }

  node(id: number): ClusterNode {
    return this.get(id);
  }

  private get(id: number): NodeState {
    const n = this.state.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id} in this cluster (nodes ${this.state.map((x) => x.id).join(', ')})`);
    return n;
  }

  /** Running and not isolated: the nodes a client in the root namespace can talk to. */
  reachableNodes(): ClusterNode[] {
    return this.state.filter((n) => n.child !== null && !this.isIsolated(n.id));
  }

  isRunning(id: number): boolean {
    return this.get(id).child !== null;
  }

  isIsolated(id: number): boolean {
    return this.netns?.isIsolated(id) ?? false;
  }

  static async start(opts: StartClusterOptions = {}): Promise<LocalCluster> {
    const count = opts.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1 || count > 99) throw new Error(`a local cluster has 1 to 99 nodes, not ${count}`);
    const network = opts.network ?? 'loopback';
    if (network === 'netns' && opts.basePort !== undefined) throw new Error('basePort applies to the loopback network only');
    const ids = Array.from({ length: count }, (_, i) => i + 1);
    const ownDir = opts.dataDir === undefined;
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'strand-cluster-'));
    mkdirSync(dataDir, { recursive: true });
    let netns: NetnsNetwork | null = null;
    const addresses: NodeAddress[] = [];
    if (network === 'netns') {
      const reason = netnsUnavailable();
      if (reason !== null) throw new Error(`network 'netns': ${reason}`);
      netns = NetnsNetwork.create(ids);
      for (const id of ids) addresses.push({ id, host: netns.address(id), port: 9092, controllerPort: 9093 });
    } else {
      for (const id of ids) {
        const port = opts.basePort !== undefined ? opts.basePort + id - 1 : await freePort();
        const controllerPort = opts.basePort !== undefined ? opts.basePort + 100 + id - 1 : await freePort();
        if (port > 65535 || controllerPort > 65535) throw new Error(`base port ${opts.basePort} puts node ${id} beyond port 65535`);
        addresses.push({ id, host: '127.0.0.1', port, controllerPort });
      }
    }
    // The cluster id is chosen once per data directory and kept in DIR/cluster.id.
    const idFile = join(dataDir, 'cluster.id');
    const clusterId = existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : randomBytes(16).toString('base64url');
    if (!existsSync(idFile)) writeFileSync(idFile, `${clusterId}\n`);
    const states: NodeState[] = addresses.map((a) => {
      const dir = join(dataDir, `node-${a.id}`);
      const configFile = join(dataDir, `node-${a.id}.properties`);
      const props = { ...clusterNodeProperties(a, addresses, dir, clusterId), ...(opts.fastTimings === false ? {} : TEST_TIMINGS) };
      for (const [k, v] of Object.entries(opts.overrides ?? {})) props[k] = String(v);
      writeFileSync(configFile, propertiesText(props, `node ${a.id} of a local Strand cluster of ${count} (written by strand cluster up / startCluster)`));
      const st: NodeState = {
        ...a,
        bootstrap: `${a.host}:${a.port}`,
        dataDir: dir,
        configFile,
        namespace: netns?.namespace(a.id) ?? null,
        child: null,
        exited: null,
        out: '',
        log: createWriteStream(join(dataDir, `node-${a.id}.log`), { flags: 'a' }),
        output() {
          return st.out;
        },
      };
      return st;
    });
    const cluster = new LocalCluster(clusterId, dataDir, ownDir, network, netns, states, opts.onOutput, opts.onExit, opts.detached ?? false);
    try {
      for (const n of states) cluster.spawnNode(n);
      await cluster.waitUntilUp(opts.expectBrokers ?? count, opts.timeoutMs ?? 60000);
    } catch (e) {
      const outputs = states.map((n) => `--- node ${n.id} ---\n${n.out.slice(-3000)}`).join('\n');
      await cluster.stop().catch(() => {});
      throw new Error(`${(e as Error).message}\n${outputs}`);
    }
    return cluster;
  }

  private spawnNode(n: NodeState): void {
    if (n.child !== null) throw new Error(`node ${n.id} is already running`);
    const nodeArgs = (process.env['STRAND_BROKER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    const cmd = [...(this.netns?.execPrefix(n.id) ?? []), process.execPath, ...nodeArgs, STRAND_BIN, 'broker', '--config', n.configFile];
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: this.detached });
    n.child = child;
    let partial = '';
    const onData = (d: Buffer): void => {
      const text = d.toString();
      n.out += text;
      if (n.out.length > OUTPUT_CAP) n.out = n.out.slice(n.out.length - OUTPUT_CAP / 2);
      n.log.write(text);
      if (this.onOutput !== undefined) {
        const parts = (partial + text).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.onOutput(n.id, line);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    n.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (n.child === child) n.child = null;
        const line = `[cluster] node ${n.id} exited ${signal !== null ? `by ${signal}` : `with code ${code}`}\n`;
        n.out += line;
        n.log.write(line);
        this.onExit?.(n.id, code, signal);
        resolve(code);
      });
    });
  }

  /** Waits until every running node answers Metadata listing at least `brokers` brokers. */
  async waitUntilUp(brokers = this.state.length, timeoutMs = 60000): Promise<void> {
    await waitUntil(`every running node to list ${brokers} broker(s) in Metadata`, async () => {
      for (const n of this.state) {
        if (n.child === null) {
          if (n.exited !== null) throw new Error(`node ${n.id} exited while the cluster was starting`);
          continue;
        }
        const md = await this.metadataFrom(n, []).catch(() => null);
        if (md === null || md.brokers.length < brokers) return null;
      }
      return true;
    }, timeoutMs, 200);
  }

  /** Starts a stopped or killed node again on the same data and config. */
  async restart(id: number, opts: { waitForBrokers?: number; timeoutMs?: number } = {}): Promise<void> {
    const n = this.get(id);
    this.spawnNode(n);
    const brokers = opts.waitForBrokers ?? 1;
    await waitUntil(`node ${id} to answer Metadata after a restart`, async () => {
      if (n.child === null) throw new Error(`node ${id} exited while restarting:\n${n.out.slice(-3000)}`);
      const md = await this.metadataFrom(n, []).catch(() => null);
      return md !== null && md.brokers.length >= brokers ? true : null;
    }, opts.timeoutMs ?? 60000, 100);
  }

  /** kill -9 of a node; resolves once the process is gone. */
  async kill(id: number): Promise<void> {
    const n = this.get(id);
    const child = n.child;
    if (child === null) return;
    child.kill('SIGKILL');
    await n.exited;
  }

  /** SIGTERM (a clean shutdown); resolves with the exit code. SIGKILL after timeoutMs. */
  async stopNode(id: number, timeoutMs = 30000): Promise<number | null> {
    const n = this.get(id);
    const child = n.child;
    if (child === null) return null;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await n.exited;
    } finally {
      clearTimeout(t);
    }
  }

  /** Cuts every link of node `id` (to the other nodes and to the clients). `network: 'netns'` only. */
  isolate(id: number): void {
    this.get(id);
    if (this.netns === null) throw new Error("isolate() needs network: 'netns'");
    this.netns.isolate(id);
  }

  heal(id: number): void {
    this.get(id);
    if (this.netns === null) throw new Error("heal() needs network: 'netns'");
    this.netns.heal(id);
  }

  /**
   * Whether node `from` can open a TCP connection to node `to`'s controller listener, tried from
   * inside `from`'s namespace (`network: 'netns'` only; `from` need not be running).
   */
  canReach(from: number, to: number, timeoutMs = 1000): Promise<boolean> {
    if (this.netns === null) throw new Error("canReach() needs network: 'netns'");
    const target = this.get(to);
    const script = `const s=require('net').connect({host:${JSON.stringify(target.host)},port:${target.controllerPort}});const t=setTimeout(()=>process.exit(1),${timeoutMs});s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));`;
    const cmd = [...this.netns.execPrefix(this.get(from).id), process.execPath, '-e', script];
    return new Promise((resolve) => {
      const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
      child.once('exit', (code) => resolve(code === 0));
      child.once('error', () => resolve(false));
    });
  }

  private metadataFrom(n: NodeAddress, topics: string[] | null, timeoutMs = 3000): Promise<MetadataResponse> {
    return requestOnce<MetadataResponse>(n.host, n.port, ApiKey.Metadata, 12, {
      topics: topics === null ? null : topics.map((name) => ({ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name })),
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    }, timeoutMs);
  }

  /** Metadata (v12, all topics unless named) from node `from`, or from the first reachable node that answers. */
  async metadata(topics: string[] | null = null, from?: number): Promise<MetadataResponse> {
    const candidates = from !== undefined ? [this.get(from)] : this.reachableNodes();
    let last: unknown = new Error('no reachable node');
    for (const n of candidates) {
      try {
        return await this.metadataFrom(n, topics);
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }

  /**
   * A partition's state as the reachable nodes see it: the answer with the highest leader epoch
   * (a node may not have applied the latest change yet). Null if no reachable node knows it.
   */
  async partition(topic: string, partition: number): Promise<PartitionState | null> {
    let best: PartitionState | null = null;
    for (const n of this.reachableNodes()) {
      const md = await this.metadataFrom(n, [topic]).catch(() => null);
      const p: MetadataResponsePartition | undefined = md?.topics.find((t) => t.name === topic && t.errorCode === 0)?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined || p.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) continue;
      if (best === null || p.leaderEpoch > best.leaderEpoch) best = { topic, partition, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes, isr: p.isrNodes };
    }
    return best;
  }

  /** The leader of a partition (waits until there is one, other than `not` if given). */
  async leaderOf(topic: string, partition: number, opts: { not?: number; timeoutMs?: number } = {}): Promise<number> {
    return waitUntil(`a leader of ${topic}-${partition}${opts.not !== undefined ? ` other than ${opts.not}` : ''}`, async () => {
      const p = await this.partition(topic, partition);
      return p !== null && p.leader >= 0 && p.leader !== opts.not ? p.leader : null;
    }, opts.timeoutMs ?? 30000, 50);
  }

  /** DescribeQuorum (v1) on node `id`'s controller listener; null if it does not answer. */
  async describeQuorum(id: number): Promise<DescribeQuorumResponsePartitionData | null> {
    const n = this.get(id);
    try {
      const r = await requestOnce<{ errorCode: number; topics: Array<{ partitions: DescribeQuorumResponsePartitionData[] }> }>(n.host, n.controllerPort, ApiKey.DescribeQuorum, 1, {
        topics: [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }],
      });
      const p = r.topics[0]?.partitions[0];
      return r.errorCode === 0 && p !== undefined && p.errorCode === 0 ? p : null;
    } catch {
      return null;
    }
  }

  /** The quorum leader (the active controller) and its epoch, from the reachable nodes; highest epoch wins. */
  async quorumLeader(): Promise<{ leaderId: number; leaderEpoch: number } | null> {
    let best: { leaderId: number; leaderEpoch: number } | null = null;
    for (const n of this.reachableNodes()) {
      const q = await this.describeQuorum(n.id);
      if (q !== null && q.leaderId >= 0 && (best === null || q.leaderEpoch > best.leaderEpoch)) best = { leaderId: q.leaderId, leaderEpoch: q.leaderEpoch };
    }
    return best;
  }

  /** Waits for a quorum leader (other than `not` if given) and returns its id. */
  async controllerLeader(opts: { not?: number; timeoutMs?: number } = {}): Promise<number> {
    return waitUntil(`a quorum leader${opts.not !== undefined ? ` other than ${opts.not}` : ''}`, async () => {
      const q = await this.quorumLeader();
      return q !== null && q.leaderId !== opts.not ? q.leaderId : null;
    }, opts.timeoutMs ?? 30000, 50);
  }

  /**
   * Creates a topic through any reachable node (retrying while the cluster settles) and waits
   * until every partition has a leader and a full ISR.
   */
  async createTopic(name: string, opts: { partitions?: number; replicationFactor?: number; configs?: Record<string, string>; timeoutMs?: number } = {}): Promise<PartitionState[]> {
    const partitions = opts.partitions ?? 1;
    const timeoutMs = opts.timeoutMs ?? 30000;
    const body = {
      topics: [{ name, numPartitions: partitions, replicationFactor: opts.replicationFactor ?? -1, assignments: [], configs: Object.entries(opts.configs ?? {}).map(([k, v]) => ({ name: k, value: v })) }],
      timeoutMs: 10000,
      validateOnly: false,
    };
    // TOPIC_ALREADY_EXISTS counts as created: an earlier attempt that timed out may have committed.
    let existed = false;
    await waitUntil(`topic ${name} to be created`, async () => {
      for (const n of this.reachableNodes()) {
        const r = await requestOnce<{ topics: Array<{ errorCode: number; errorMessage: string | null }> }>(n.host, n.port, ApiKey.CreateTopics, 7, body, 12000).catch(() => null);
        const code = r?.topics[0]?.errorCode;
        existed ||= code === ErrorCode.TOPIC_ALREADY_EXISTS;
        if (code === ErrorCode.NONE || code === ErrorCode.TOPIC_ALREADY_EXISTS) return true;
        if (code === ErrorCode.INVALID_REPLICATION_FACTOR || code === ErrorCode.INVALID_CONFIG || code === ErrorCode.INVALID_PARTITIONS || code === ErrorCode.INVALID_TOPIC_EXCEPTION) {
          throw new Error(`CreateTopics ${name}: error ${code} ${r?.topics[0]?.errorMessage ?? ''}`);
        }
      }
      return null;
    }, timeoutMs, 200);
    return this.waitForTopic(name, partitions, timeoutMs).catch(async (e: Error) => {
      // Someone else's topic of that name (a client's auto-creation, say) has its own partition count.
      let count = 0;
      while ((await this.partition(name, count)) !== null) count++;
      if (existed && count !== partitions) throw new Error(`CreateTopics ${name} answered TOPIC_ALREADY_EXISTS: another creation won, with ${count} partition(s), not ${partitions}`);
      throw e;
    });
  }

  /** Waits until every partition of a topic has a leader and an ISR equal to its replicas. */
  async waitForTopic(name: string, partitions: number, timeoutMs = 30000): Promise<PartitionState[]> {
    return waitUntil(`every partition of ${name} to have a leader and a full ISR`, async () => {
      const out: PartitionState[] = [];
      for (let p = 0; p < partitions; p++) {
        const s = await this.partition(name, p);
        if (s === null || s.leader < 0 || s.isr.length !== s.replicas.length) return null;
        out.push(s);
      }
      return out;
    }, timeoutMs, 100);
  }

  /**
   * Stops every node cleanly (SIGTERM, SIGKILL after timeoutMs), heals and removes the network,
   * and removes a temporary data directory. Resolves with each node's exit code.
   */
  stop(timeoutMs = 30000): Promise<Record<number, number | null>> {
    this.stopped ??= (async () => {
      if (this.netns !== null) for (const n of this.state) if (this.netns.isIsolated(n.id)) this.netns.heal(n.id);
      const codes: Record<number, number | null> = {};
      await Promise.all(this.state.map(async (n) => (codes[n.id] = n.child === null ? null : await this.stopNode(n.id, timeoutMs))));
      this.netns?.destroy();
      await Promise.all(this.state.map((n) => new Promise<void>((resolve) => n.log.end(resolve))));
      if (this.ownDir) rmSync(this.dataDir, { recursive: true, force: true });
      return codes;
    })();
    return this.stopped;
  }

  /** kill -9 of every node and removal of the network (and of a temporary directory): for test cleanup after a failure. */
  async destroy(): Promise<void> {
    for (const n of this.state) n.child?.kill('SIGKILL');
    await Promise.all(this.state.map((n) => (n.child !== null ? n.exited : null)));
    await this.stop(1000);
  }
}

export function startCluster(opts: StartClusterOptions = {}): Promise<LocalCluster> {
  return LocalCluster.start(opts);
}
