/**
 * `strand cluster status`: brokers, controller, topics, partitions and groups at a glance.
 */
import { COMMON_HELP, parse, printJson, table, usage, withAdmin } from '../common.js';

export const CLUSTER_HELP = `Usage: strand cluster status [options]

Shows the cluster id, the controller, every broker, and how many topics, partitions and
consumer groups there are (with any partition that has no leader).

${COMMON_HELP}

Example:
  strand cluster status --bootstrap-server 127.0.0.1:9092`;

export async function clusterCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(CLUSTER_HELP);
    return 0;
  }
  if (sub !== undefined && sub !== 'status' && !sub.startsWith('-')) throw usage(`unknown cluster command '${sub}'`, 'cluster');
  const p = parse(sub === 'status' ? rest : argv, {}, CLUSTER_HELP);
  if (p === null) return 0;
  const v = p.values;
  return withAdmin(v, async (admin) => {
    const c = await admin.describeCluster();
    const topics = await admin.listTopics({ includeInternal: true });
    const described = topics.length > 0 ? await admin.describeTopics(topics) : [];
    const groups = await admin.listGroups();
    const partitions = described.reduce((n, t) => n + t.partitions.length, 0);
    const offline = described.flatMap((t) => t.partitions.filter((x) => x.leader < 0).map((x) => `${t.name}-${x.partition}`));
    const underReplicated = described.flatMap((t) => t.partitions.filter((x) => x.isr.length < x.replicas.length).map((x) => `${t.name}-${x.partition}`));
    const status = {
      clusterId: c.clusterId,
      controller: c.controllerId,
      brokers: c.brokers.sort((a, b) => a.nodeId - b.nodeId),
      topics: described.filter((t) => !t.isInternal).length,
      internalTopics: described.filter((t) => t.isInternal).length,
      partitions,
      offlinePartitions: offline,
      underReplicatedPartitions: underReplicated,
      groups: groups.length,
      groupsByState: groups.reduce<Record<string, number>>((m, g) => ((m[g.state] = (m[g.state] ?? 0) + 1), m), {}),
    };
    if (v.json) {
      printJson(status);
      return 0;
    }
    console.log(`Cluster: ${status.clusterId ?? '-'}  Controller: ${status.controller}  Brokers: ${status.brokers.length}`);
    console.log(table(['ID', 'HOST', 'PORT', 'RACK', 'ROLE'], status.brokers.map((b) => [b.nodeId, b.host, b.port, b.rack, b.nodeId === status.controller ? 'controller' : ''])));
    console.log(`\nTopics: ${status.topics} (+${status.internalTopics} internal)  Partitions: ${partitions}  Offline: ${offline.length}  Under-replicated: ${underReplicated.length}`);
    console.log(`Groups: ${status.groups}${Object.keys(status.groupsByState).length > 0 ? ` (${Object.entries(status.groupsByState).map(([s, n]) => `${n} ${s}`).join(', ')})` : ''}`);
    if (offline.length > 0) console.log(`Offline partitions: ${offline.join(', ')}`);
    return 0;
  });
}
