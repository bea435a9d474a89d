/**
 * `strand groups list|describe|reset-offsets|delete-offsets|delete`, in the spirit of
 * kafka-consumer-groups.sh, through Strand's admin client.
 */
import type { Admin, GroupDescription } from '../../client/admin.js';
import { COMMON_HELP, CliError, int, parse, printJson, table, timestampArg, topicPartitions, usage, withAdmin } from '../common.js';

export const GROUPS_HELP = `Usage: strand groups <list|describe|reset-offsets|delete-offsets|delete> [options]

Consumer groups: who consumes what, how far behind, and moving their committed offsets.

  strand groups list [--state STATE]
  strand groups describe GROUP [GROUP ...] [--members]
  strand groups reset-offsets GROUP (--topic TOPIC[:P,P...] ... | --all-topics) TARGET [--execute]
  strand groups delete-offsets GROUP --topic TOPIC[:P,P...]
  strand groups delete GROUP [GROUP ...]

describe shows, per partition: the committed offset (CURRENT-OFFSET), the log end offset, the lag
(end − committed) and the member that owns it; --members lists the members and their assignment.

reset-offsets targets (one of):
      --to-earliest             the first offset still in the log
      --to-latest               the end of the log (skip everything not yet consumed)
      --to-offset N             offset N (clamped to the log's range)
      --to-datetime T           the first record at or after T (ISO-8601, e.g. 2024-05-01T12:00:00Z, or epoch ms)
      --shift-by N              the committed offset plus N (negative: back; clamped to the log's range)
reset-offsets is a dry run unless --execute: it prints the plan and changes nothing. Like Kafka,
it refuses while the group has active members (stop the consumers first).

Options:
      --topic TOPIC[:P,P]       a topic, optionally only some partitions (repeatable)
      --all-topics              reset-offsets: every topic the group has committed offsets for
      --execute                 reset-offsets: apply the plan
      --dry-run                 reset-offsets: only print the plan (the default)
      --members                 describe: list members and their assignments
      --state STATE             list: only groups in STATE (Stable, Empty, PreparingRebalance, ...)
${COMMON_HELP}

Examples:
  strand groups describe billing
  strand groups reset-offsets billing --topic orders --to-datetime 2024-05-01T00:00:00Z
  strand groups reset-offsets billing --topic orders --shift-by -100 --execute
  strand groups delete billing`;

const OPTIONS = {
  group: { type: 'string', short: 'g' },
  topic: { type: 'string', short: 't', multiple: true },
  'all-topics': { type: 'boolean' },
  'to-earliest': { type: 'boolean' },
  'to-latest': { type: 'boolean' },
  'to-offset': { type: 'string' },
  'to-datetime': { type: 'string' },
  'shift-by': { type: 'string' },
  execute: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  members: { type: 'boolean' },
  state: { type: 'string' },
} as const;

/** States in which a group has no active members (Kafka allows offset resets only then). */
const INACTIVE = new Set(['Empty', 'Dead']);

export async function groupsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(GROUPS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, OPTIONS, GROUPS_HELP);
  if (p === null) return 0;
  const v = p.values;
  const groups = [...(v.group !== undefined ? [v.group] : []), ...p.positionals];
  const one = (): string => {
    if (groups.length !== 1) throw usage(`groups ${sub} needs one GROUP`, 'groups');
    return groups[0]!;
  };
  switch (sub) {
    case 'list':
      await withAdmin(v, async (admin) => {
        const list = (await admin.listGroups()).filter((g) => v.state === undefined || g.state.toLowerCase() === v.state.toLowerCase());
        if (v.json) printJson(list.map((g) => ({ group: g.groupId, state: g.state, protocolType: g.protocolType })));
        else if (list.length === 0) console.log('No groups.');
        else console.log(table(['GROUP', 'STATE', 'PROTOCOL-TYPE'], list.map((g) => [g.groupId, g.state, g.protocolType || '-'])));
      });
      return 0;
    case 'describe': {
      if (groups.length === 0) throw usage('groups describe needs a GROUP', 'groups');
      await withAdmin(v, async (admin) => {
        const all = [];
        for (const g of groups) all.push(await describeGroup(admin, g));
        if (v.json) {
          printJson(all);
          return;
        }
        console.log(all.map((d) => renderDescription(d, v.members ?? false)).join('\n\n'));
      });
      return 0;
    }
    case 'reset-offsets':
      return resetOffsets(one(), v);
    case 'delete-offsets': {
      const group = one();
      const topics = (v.topic ?? []).map(topicPartitions);
      if (topics.length === 0) throw usage('groups delete-offsets needs --topic TOPIC[:P,P...]', 'groups');
      await withAdmin(v, async (admin) => {
        for (const t of topics) await admin.deleteGroupOffsets(group, t.topic, t.partitions);
        if (v.json) printJson({ group, deleted: topics });
        else console.log(`Deleted committed offsets of group ${group} for ${topics.map((t) => (t.partitions ? `${t.topic}:${t.partitions.join(',')}` : t.topic)).join(', ')}.`);
      });
      return 0;
    }
    case 'delete': {
      if (groups.length === 0) throw usage('groups delete needs a GROUP', 'groups');
      await withAdmin(v, async (admin) => {
        await admin.deleteGroups(groups);
        if (v.json) printJson({ deleted: groups });
        else console.log(`Deleted group${groups.length === 1 ? '' : 's'} ${groups.join(', ')}.`);
      });
      return 0;
    }
    default:
      throw usage(`unknown groups command '${sub}'`, 'groups');
  }
}

export interface GroupView {
  group: string;
  state: string;
  protocolType: string;
  protocol: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; clientId: string; host: string; assignment: Array<{ topic: string; partitions: number[] }> }>;
  partitions: Array<{ topic: string; partition: number; committed: number | null; logEnd: number; lag: number | null; memberId: string | null; clientId: string | null; host: string | null }>;
  totalLag: number;
}

export async function describeGroup(admin: Admin, group: string): Promise<GroupView> {
  const [d] = (await admin.describeGroups([group])) as [GroupDescription];
  const committed = await admin.fetchOffsets(group);
  const topics = new Set([...committed.map((c) => c.topic), ...d.members.flatMap((m) => m.assignment.map((a) => a.topic))]);
  if (d.state === 'Dead' && topics.size === 0) throw new CliError(`group ${group} does not exist`, "'strand groups list' shows the groups");
  const owner = new Map<string, GroupDescription['members'][number]>();
  for (const m of d.members) for (const a of m.assignment) for (const pt of a.partitions) owner.set(`${a.topic}:${pt}`, m);
  const partitions: GroupView['partitions'] = [];
  for (const topic of [...topics].sort()) {
    let ends;
    try {
      ends = await admin.listOffsets(topic, 'latest');
    } catch {
      ends = null; // the topic was deleted: its committed offsets remain
    }
    const parts = ends ?? committed.filter((c) => c.topic === topic).map((c) => ({ partition: c.partition, offset: -1 }));
    for (const e of parts) {
      const c = committed.find((x) => x.topic === topic && x.partition === e.partition);
      const m = owner.get(`${topic}:${e.partition}`);
      const has = c !== undefined && c.offset >= 0;
      partitions.push({
        topic,
        partition: e.partition,
        committed: has ? c.offset : null,
        logEnd: e.offset,
        lag: has && e.offset >= 0 ? Math.max(0, e.offset - c.offset) : null,
        memberId: m?.memberId ?? null,
        clientId: m?.clientId ?? null,
        host: m?.clientHost ?? null,
      });
    }
  }
  return {
    group,
    state: d.state,
    protocolType: d.protocolType,
    protocol: d.protocol,
    members: d.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, host: m.clientHost, assignment: m.assignment })),
    partitions,
    totalLag: partitions.reduce((n, x) => n + (x.lag ?? 0), 0),
  };
}

function renderDescription(d: GroupView, members: boolean): string {
  const lines = [`Group: ${d.group}  State: ${d.state}  Members: ${d.members.length}  Protocol: ${d.protocol || '-'}  Total lag: ${d.totalLag}`];
  if (d.partitions.length === 0) lines.push('(no committed offsets and no assigned partitions)');
  else
    lines.push(
      table(
        ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'],
        d.partitions.map((x) => [x.topic, x.partition, x.committed, x.logEnd, x.lag, x.memberId, x.host, x.clientId]),
      ),
    );
  if (members) {
    lines.push('');
    lines.push(
      d.members.length === 0
        ? 'No active members.'
        : table(
            ['CONSUMER-ID', 'INSTANCE-ID', 'HOST', 'CLIENT-ID', 'ASSIGNMENT'],
            d.members.map((m) => [m.memberId, m.groupInstanceId, m.host, m.clientId, m.assignment.map((a) => `${a.topic}:${a.partitions.join(',')}`).join(' ') || '-']),
          ),
    );
  }
  return lines.join('\n');
}

interface ResetValues {
  'bootstrap-server'?: string;
  json?: boolean;
  topic?: string[];
  'all-topics'?: boolean;
  'to-earliest'?: boolean;
  'to-latest'?: boolean;
  'to-offset'?: string;
  'to-datetime'?: string;
  'shift-by'?: string;
  execute?: boolean;
  'dry-run'?: boolean;
}

async function resetOffsets(group: string, v: ResetValues): Promise<number> {
  const targets = [v['to-earliest'], v['to-latest'], v['to-offset'] !== undefined, v['to-datetime'] !== undefined, v['shift-by'] !== undefined].filter(Boolean).length;
  if (targets !== 1) throw usage('reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime T, --shift-by N', 'groups');
  if ((v.topic === undefined || v.topic.length === 0) === !v['all-topics']) throw usage('reset-offsets needs --topic TOPIC (repeatable) or --all-topics', 'groups');
  if (v.execute && v['dry-run']) throw usage('--execute and --dry-run contradict each other', 'groups');
  const toOffset = int(v['to-offset'], '--to-offset', { min: 0 });
  const shiftBy = int(v['shift-by'], '--shift-by');
  const at = v['to-datetime'] !== undefined ? timestampArg(v['to-datetime'], '--to-datetime') : undefined;
  return withAdmin(v, async (admin) => {
    const [d] = await admin.describeGroups([group]);
    if (!INACTIVE.has(d!.state)) {
      throw new CliError(
        `group ${group} has ${d!.members.length} active member${d!.members.length === 1 ? '' : 's'} (state ${d!.state}): offsets can only be reset while the group is inactive`,
        `stop the group's consumers (or wait for their session timeout), then run this again; 'strand groups describe ${group} --members' shows who is connected`,
      );
    }
    const committed = await admin.fetchOffsets(group);
    const specs = v['all-topics'] ? [...new Set(committed.map((c) => c.topic))].map((topic) => ({ topic, partitions: undefined as number[] | undefined })) : v.topic!.map(topicPartitions);
    if (specs.length === 0) throw new CliError(`group ${group} has no committed offsets`, 'name the topics with --topic');
    const plan: Array<{ topic: string; partition: number; current: number | null; target: number }> = [];
    for (const s of specs) {
      const [earliest, latest] = await Promise.all([admin.listOffsets(s.topic, 'earliest'), admin.listOffsets(s.topic, 'latest')]);
      const parts = s.partitions ?? latest.map((l) => l.partition);
      for (const pt of parts) if (!latest.some((l) => l.partition === pt)) throw new CliError(`topic ${s.topic} has no partition ${pt}`, `it has ${latest.length} partitions`);
      const byTime = at !== undefined ? await admin.listOffsets(s.topic, { timestamp: at }, parts) : [];
      for (const pt of parts) {
        const lo = earliest.find((e) => e.partition === pt)!.offset;
        const hi = latest.find((e) => e.partition === pt)!.offset;
        const c = committed.find((x) => x.topic === s.topic && x.partition === pt);
        const current = c !== undefined && c.offset >= 0 ? c.offset : null;
        let target: number;
        if (v['to-earliest']) target = lo;
        else if (v['to-latest']) target = hi;
        else if (toOffset !== undefined) target = toOffset;
        else if (at !== undefined) {
          const o = byTime.find((x) => x.partition === pt)?.offset ?? -1;
          target = o >= 0 ? o : hi;
        } else target = (current ?? lo) + shiftBy!;
        plan.push({ topic: s.topic, partition: pt, current, target: Math.min(hi, Math.max(lo, target)) });
      }
    }
    if (v.execute) {
      for (const topic of new Set(plan.map((x) => x.topic))) {
        await admin.resetOffsets(group, topic, { offsets: plan.filter((x) => x.topic === topic).map((x) => ({ partition: x.partition, offset: x.target })) });
      }
    }
    if (v.json) printJson({ group, executed: v.execute ?? false, plan: plan.map((x) => ({ topic: x.topic, partition: x.partition, currentOffset: x.current, newOffset: x.target })) });
    else {
      console.log(table(['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'], plan.map((x) => [x.topic, x.partition, x.current, x.target])));
      console.log(v.execute ? `\nReset the offsets of group ${group}.` : '\nDry run: nothing changed. Run again with --execute to apply this plan.');
    }
    return 0;
  });
}
