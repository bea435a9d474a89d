/**
 * `strand cluster up`: a local cluster of N combined nodes (broker + Raft controller), each a
 * `strand broker` child process, until Ctrl-C. `strand cluster status`: nodes, the controller
 * and the metadata quorum, partition leaders and ISR.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ApiKey } from '../../protocol/messages/index.js';
import type { DescribeQuorumResponsePartitionData } from '../../protocol/messages/describe-quorum.js';
import { LocalCluster, requestOnce } from '../../testing/cluster.js';
import { CliError, COMMON_HELP, int, keyValues, parse, printJson, table, usage, withAdmin } from '../common.js';

export const CLUSTER_HELP = `Usage: strand cluster up [--nodes N] [--data-dir DIR] [--base-port PORT] [--override KEY=VALUE ...]
       strand cluster status [--bootstrap-controller HOST:PORT[,...]] [options]

cluster up starts a local cluster of N combined nodes (process.roles=broker,controller: each a
broker and a voter of the Raft metadata quorum) as child processes, waits until every node is up
and registered, prints the bootstrap servers, and runs until Ctrl-C (or SIGTERM), which stops
the nodes cleanly. Starting again with the same --data-dir reuses the data.
  --nodes N               number of nodes, ids 1..N (default 3)
  --data-dir DIR          configs, data and logs of the nodes (default ./strand-cluster):
                          DIR/node-<id>.properties, DIR/node-<id>/ (log.dirs), DIR/node-<id>.log
  --base-port PORT        node i's client listener is PORT+i-1 and its controller listener
                          PORT+100+i-1, all on 127.0.0.1 (default 19092)
  --override KEY=VALUE    a broker config for every node (repeatable), e.g.
                          --override broker.session.timeout.ms=3000
  --quiet                 do not echo the nodes' output (it is in DIR/node-<id>.log)
Each node gets default.replication.factor=min(3,N), min.insync.replicas=min(2,N),
offsets.topic.replication.factor and transaction.state.log.replication.factor=min(3,N),
transaction.state.log.min.isr=min(2,N), and Kafka's defaults for the rest.

cluster status shows the cluster id, each node (host, port, controller, fenced: a voter of the
quorum that Metadata does not list), the metadata quorum (leader, epoch, high watermark, each
voter's lag) when a controller listener answers DescribeQuorum, the counts of topics, partitions
and groups, and every partition's leader, replicas and ISR (internal topics only when
under-replicated or offline).
  --bootstrap-controller HOST:PORT[,...]  controller listeners to ask DescribeQuorum (Kafka's
                          kafka-metadata-quorum flag); default: ask the bootstrap servers
  --data-dir DIR          a cluster started by 'strand cluster up': its bootstrap servers and
                          controller listeners come from DIR/cluster.json

${COMMON_HELP}

Examples:
  strand cluster up --nodes 3 --data-dir /tmp/strand-cluster
  strand cluster status --data-dir /tmp/strand-cluster
  strand cluster status --bootstrap-server 127.0.0.1:19092 --bootstrap-controller 127.0.0.1:19192`;

const UP_OPTIONS = {
  nodes: { type: 'string' },
  'data-dir': { type: 'string' },
  'base-port': { type: 'string' },
  override: { type: 'string', multiple: true },
  quiet: { type: 'boolean' },
} as const;

const STATUS_OPTIONS = {
  'bootstrap-controller': { type: 'string' },
  'data-dir': { type: 'string' },
} as const;

/** DIR/cluster.json: what `cluster up` started there, so a restart matches and `status` finds it. */
interface ClusterFile {
  nodes: number;
  basePort: number;
  bootstrapServers: string;
  controllers: string;
}

export async function clusterCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(CLUSTER_HELP);
    return 0;
  }
  if (sub === 'up') return clusterUp(rest);
  if (sub !== undefined && sub !== 'status' && !sub.startsWith('-')) throw usage(`unknown cluster command '${sub}' (up or status)`, 'cluster');
  return clusterStatus(sub === 'status' ? rest : argv);
}

async function clusterUp(argv: string[]): Promise<number> {
  const p = parse(argv, UP_OPTIONS, CLUSTER_HELP);
  if (p === null) return 0;
  const v = p.values;
  if (p.positionals.length > 0) throw usage(`unexpected argument '${p.positionals[0]}'`, 'cluster');
  const nodes = int(v.nodes, '--nodes', { min: 1 }) ?? 3;
  if (nodes > 99) throw new CliError('--nodes must be at most 99', null, 2);
  const basePort = int(v['base-port'], '--base-port', { min: 1 }) ?? 19092;
  if (basePort + 100 + nodes - 1 > 65535) throw new CliError(`--base-port ${basePort} puts the controller listeners beyond port 65535`, null, 2);
  const dataDir = resolve(v['data-dir'] ?? 'strand-cluster');
  const overrides = keyValues(v.override, '--override');
  const infoFile = join(dataDir, 'cluster.json');
  if (existsSync(infoFile)) {
    const prev = JSON.parse(readFileSync(infoFile, 'utf8')) as ClusterFile;
    if (prev.nodes !== nodes || prev.basePort !== basePort) {
      throw new CliError(`${dataDir} holds a cluster of ${prev.nodes} node(s) on base port ${prev.basePort}, not ${nodes} on ${basePort}`, `start it with --nodes ${prev.nodes} --base-port ${prev.basePort}, or use another --data-dir`, 2);
    }
  }
  mkdirSync(dataDir, { recursive: true });
  console.log(`Starting ${nodes} node(s) in ${dataDir} ...`);
  let stopping = false;
  const cluster = await LocalCluster.start({
    nodes,
    dataDir,
    basePort,
    network: 'loopback',
    fastTimings: false,
    detached: true,
    overrides,
    onOutput: v.quiet ? undefined : (id, line) => process.stdout.write(`[node-${id}] ${line}\n`),
    onExit: (id, code, signal) => {
      if (!stopping) console.error(`strand: node ${id} exited ${signal !== null ? `by ${signal}` : `with code ${code}`} (its output: ${join(dataDir, `node-${id}.log`)})`);
    },
    timeoutMs: 120000,
  });
  const info: ClusterFile = {
    nodes,
    basePort,
    bootstrapServers: cluster.bootstrap,
    controllers: cluster.nodes.map((n) => `${n.host}:${n.controllerPort}`).join(','),
  };
  writeFileSync(infoFile, JSON.stringify(info, null, 2) + '\n');
  console.log(`\nA Strand cluster of ${nodes} node(s) is up (data in ${dataDir}):`);
  console.log(table(['NODE', 'CLIENT LISTENER', 'CONTROLLER LISTENER', 'CONFIG'], cluster.nodes.map((n) => [n.id, `${n.host}:${n.port}`, `${n.host}:${n.controllerPort}`, n.configFile])));
  console.log(`\nBootstrap servers: ${cluster.bootstrap}`);
  console.log(`Status:            strand cluster status --data-dir ${dataDir}`);
  console.log('Ctrl-C stops the cluster.');
  await new Promise<void>((resolveStop) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveStop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  stopping = true;
  console.log('Stopping the cluster ...');
  const codes = await cluster.stop();
  const bad = Object.entries(codes).filter(([, c]) => c !== 0 && c !== null);
  for (const [id, c] of bad) console.error(`strand: node ${id} exited with code ${c}`);
  console.log(`Stopped. The data stays in ${dataDir}; 'strand cluster up --data-dir ${dataDir}${nodes !== 3 ? ` --nodes ${nodes}` : ''}${basePort !== 19092 ? ` --base-port ${basePort}` : ''}' starts it again.`);
  return bad.length === 0 ? 0 : 1;
}

interface QuorumView {
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  voters: Array<{ id: number; logEndOffset: number; lag: number; lastFetchMsAgo: number | null }>;
  observers: number[];
}

/** DescribeQuorum from the first address that answers it; null if none does. */
async function describeQuorum(addresses: string[]): Promise<QuorumView | null> {
  for (const a of addresses) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(a);
    if (m === null) throw new CliError(`--bootstrap-controller expects HOST:PORT, got '${a}'`, null, 2);
    const host = m[1]!.replace(/^\[|\]$/g, '');
    try {
      const r = await requestOnce<{ errorCode: number; topics: Array<{ partitions: DescribeQuorumResponsePartitionData[] }> }>(host, Number(m[2]), ApiKey.DescribeQuorum, 1, {
        topics: [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }],
      }, 3000);
      const q = r.topics[0]?.partitions[0];
      if (r.errorCode !== 0 || q === undefined || q.errorCode !== 0) continue;
      const now = Date.now();
      return {
        leaderId: q.leaderId,
        leaderEpoch: q.leaderEpoch,
        highWatermark: q.highWatermark,
        voters: q.currentVoters.map((x) => ({ id: x.replicaId, logEndOffset: x.logEndOffset, lag: Math.max(0, q.highWatermark - x.logEndOffset), lastFetchMsAgo: x.lastFetchTimestamp > 0 ? Math.max(0, now - x.lastFetchTimestamp) : null })),
        observers: q.observers.map((x) => x.replicaId),
      };
    } catch {
      // Not a controller listener, or down: try the next.
    }
  }
  return null;
}

async function clusterStatus(argv: string[]): Promise<number> {
  const p = parse(argv, STATUS_OPTIONS, CLUSTER_HELP);
  if (p === null) return 0;
  const v = { ...p.values };
  let controllers = v['bootstrap-controller'];
  if (v['data-dir'] !== undefined) {
    const file = join(resolve(v['data-dir']), 'cluster.json');
    if (!existsSync(file)) throw new CliError(`no cluster.json in ${v['data-dir']}`, "start the cluster with 'strand cluster up --data-dir DIR' first", 2);
    const info = JSON.parse(readFileSync(file, 'utf8')) as ClusterFile;
    v['bootstrap-server'] ??= info.bootstrapServers;
    controllers ??= info.controllers;
  }
  return withAdmin(v, async (admin) => {
    const c = await admin.describeCluster();
    const topics = await admin.listTopics({ includeInternal: true });
    const described = topics.length > 0 ? await admin.describeTopics(topics) : [];
    // A cluster in the middle of a failover may not answer ListGroups yet: show the rest anyway.
    let groupsError: string | null = null;
    const groups = await admin.listGroups().catch((e: Error) => {
      groupsError = e.message;
      return [];
    });
    const bootstrap = (v['bootstrap-server'] ?? process.env['STRAND_BOOTSTRAP_SERVER'] ?? '127.0.0.1:9092').split(',');
    const quorum = await describeQuorum((controllers ?? bootstrap.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== ''));
    const partitions = described.flatMap((t) =>
      t.partitions.map((x) => ({
        topic: t.name,
        internal: t.isInternal,
        partition: x.partition,
        leader: x.leader,
        leaderEpoch: x.leaderEpoch,
        replicas: x.replicas,
        isr: x.isr,
        offline: x.leader < 0,
        underReplicated: x.isr.length < x.replicas.length,
      })),
    );
    const registered = new Set(c.brokers.map((b) => b.nodeId));
    const nodes = [
      ...c.brokers.map((b) => ({ id: b.nodeId, host: b.host, port: b.port, rack: b.rack, fenced: false })),
      // A voter Metadata does not list is fenced (or has never registered).
      ...(quorum?.voters.filter((x) => !registered.has(x.id)).map((x) => ({ id: x.id, host: null, port: null, rack: null, fenced: true })) ?? []),
    ].sort((a, b) => a.id - b.id);
    const status = {
      clusterId: c.clusterId,
      controller: c.controllerId,
      brokers: c.brokers.sort((a, b) => a.nodeId - b.nodeId),
      nodes,
      quorum,
      topics: described.filter((t) => !t.isInternal).length,
      internalTopics: described.filter((t) => t.isInternal).length,
      partitionCount: partitions.length,
      offlinePartitions: partitions.filter((x) => x.offline).map((x) => `${x.topic}-${x.partition}`),
      underReplicatedPartitions: partitions.filter((x) => x.underReplicated).map((x) => `${x.topic}-${x.partition}`),
      partitions,
      groups: groupsError === null ? groups.length : null,
      groupsError,
      groupsByState: groups.reduce<Record<string, number>>((m, g) => ((m[g.state] = (m[g.state] ?? 0) + 1), m), {}),
    };
    if (v.json) {
      printJson(status);
      return 0;
    }
    console.log(`Cluster: ${status.clusterId ?? '-'}  Controller: ${status.controller}  Brokers: ${c.brokers.length}${nodes.some((n) => n.fenced) ? `  Fenced: ${nodes.filter((n) => n.fenced).length}` : ''}`);
    const voters = new Set(quorum?.voters.map((x) => x.id) ?? []);
    console.log(table(['ID', 'HOST', 'PORT', 'RACK', 'STATUS'], nodes.map((b) => [b.id, b.host, b.port, b.rack, [b.id === status.controller ? 'controller' : '', b.id === quorum?.leaderId ? 'quorum leader' : voters.has(b.id) ? 'voter' : '', b.fenced ? 'fenced' : ''].filter((s) => s !== '').join(', ')])));
    if (quorum !== null) {
      console.log(`\nMetadata quorum: leader ${quorum.leaderId}, epoch ${quorum.leaderEpoch}, high watermark ${quorum.highWatermark}`);
      console.log(table(['VOTER', 'LOG END', 'LAG', 'LAST FETCH MS AGO'], quorum.voters.map((x) => [x.id, x.logEndOffset, x.lag, x.id === quorum.leaderId ? null : x.lastFetchMsAgo])));
    }
    console.log(`\nTopics: ${status.topics} (+${status.internalTopics} internal)  Partitions: ${partitions.length}  Offline: ${status.offlinePartitions.length}  Under-replicated: ${status.underReplicatedPartitions.length}`);
    if (groupsError !== null) console.log(`Groups: unknown (${groupsError})`);
    else console.log(`Groups: ${status.groups}${Object.keys(status.groupsByState).length > 0 ? ` (${Object.entries(status.groupsByState).map(([s, n]) => `${n} ${s}`).join(', ')})` : ''}`);
    const shown = partitions.filter((x) => !x.internal || x.offline || x.underReplicated);
    if (shown.length > 0) {
      console.log('');
      console.log(table(['TOPIC', 'PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR', 'STATE'], shown.map((x) => [x.topic, x.partition, x.leader, x.leaderEpoch, x.replicas.join(','), x.isr.join(','), x.offline ? 'offline' : x.underReplicated ? 'under-replicated' : 'ok'])));
    }
    if (status.offlinePartitions.length > 0) console.log(`Offline partitions: ${status.offlinePartitions.join(', ')}`);
    return 0;
  });
}
