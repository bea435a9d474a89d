/**
 * `strand topics create|list|describe|alter-config|add-partitions|delete|cleaner|elect-leaders|reassign|list-reassignments`
 * (kafka-topics.sh, kafka-configs.sh for topics, kafka-leader-election.sh and
 * kafka-reassign-partitions.sh), through Strand's admin client. The log cleaner's state (dirty
 * ratio, last pass) comes from Strand's DescribeLogCleaner extension api; against a broker without
 * it `describe` leaves those columns out and `cleaner` says why.
 */
import type { Admin } from '../../client/admin.js';
import { KafkaError, StrandError } from '../../client/errors.js';
import { ErrorCode, errorName } from '../../protocol/errors.js';
import type { LogCleanerDescription, PartitionCleanerState } from '../../client/log-cleaner.js';
import { COMMON_HELP, CliError, int, keyValues, parse, printJson, table, usage, withAdmin } from '../common.js';

export const TOPICS_HELP = `Usage: strand topics <create|list|describe|alter-config|add-partitions|delete|cleaner|elect-leaders|reassign|list-reassignments> [options]

Manage topics.

  strand topics create NAME [--partitions N] [--replication-factor N] [--config KEY=VALUE ...] [--if-not-exists]
  strand topics list [--internal]
  strand topics describe [NAME ...] [--all-configs]
  strand topics alter-config NAME [--set KEY=VALUE ...] [--delete KEY ...]
  strand topics add-partitions NAME --count TOTAL
  strand topics delete NAME [NAME ...] [--if-exists]
  strand topics cleaner [NAME ...]
  strand topics elect-leaders [NAME ...] [--partition N ...] [--unclean]
  strand topics reassign NAME --partition N (--replicas ID,ID,... | --cancel)
  strand topics list-reassignments [NAME ...]

describe shows, for compacted topics, each partition's DIRTY-RATIO and LAST-CLEANED (the end of
the cleaner's last pass over it since the broker started). cleaner shows the log cleaner in full:
per partition the dirty ratio (dirty bytes / cleanable bytes, as Kafka's LogCleanerManager
computes it), clean and dirty bytes, first dirty offset, cleaner checkpoint, last pass and records
it removed; per broker passes, bytes and the last pass. Without NAME: every compacted topic,
internal ones included. These come from DescribeLogCleaner, a Strand extension api (Kafka has
them only as JMX metrics).

elect-leaders (ElectLeaders) moves leadership back to each partition's preferred replica (the first
of its replicas) when it is in sync; with --unclean it gives a leader to partitions that have none
from any live replica, which may lose records. Without NAME: every partition. reassign
(AlterPartitionReassignments) moves a partition to new replicas: they are added, catch up, join
the ISR, then the replicas not in the list are removed (--cancel goes back). list-reassignments
shows the reassignments in progress.

Options:
      --partitions N            partitions of a new topic (default: the broker's num.partitions)
      --replication-factor N    replicas per partition (default: the broker's default.replication.factor)
      --config KEY=VALUE        a topic config of a new topic (repeatable), e.g. retention.ms=86400000
      --if-not-exists           create: succeed if the topic exists already
      --internal                list: include internal topics (__consumer_offsets, ...)
      --all-configs             describe: show every config, not only those set on the topic
      --set KEY=VALUE           alter-config: set a config (repeatable)
      --delete KEY              alter-config: remove a topic override, back to the default (repeatable)
      --count TOTAL             add-partitions: the new total number of partitions
      --if-exists               delete: succeed if a topic does not exist
      --partition N             elect-leaders, reassign: the partition (elect-leaders: repeatable; default all)
      --unclean                 elect-leaders: unclean election of leaderless partitions
      --replicas ID,ID,...      reassign: the target replicas, the preferred leader first
      --cancel                  reassign: cancel the reassignment in progress
${COMMON_HELP}

Examples:
  strand topics create orders --partitions 6 --config retention.ms=86400000
  strand topics describe orders
  strand topics alter-config orders --set retention.ms=3600000 --delete cleanup.policy
  strand topics add-partitions orders --count 12
  strand topics list --json
  strand topics cleaner users --json
  strand topics elect-leaders orders
  strand topics reassign orders --partition 0 --replicas 2,3,1`;

const OPTIONS = {
  topic: { type: 'string', short: 't' },
  partitions: { type: 'string', short: 'p' },
  'replication-factor': { type: 'string', short: 'r' },
  config: { type: 'string', multiple: true },
  'if-not-exists': { type: 'boolean' },
  'if-exists': { type: 'boolean' },
  internal: { type: 'boolean' },
  'all-configs': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  delete: { type: 'string', multiple: true },
  count: { type: 'string' },
  partition: { type: 'string', multiple: true },
  unclean: { type: 'boolean' },
  replicas: { type: 'string' },
  cancel: { type: 'boolean' },
} as const;

/** Config sources Kafka reports (DescribeConfigs configSource). */
const SOURCES: Record<number, string> = { 1: 'topic', 2: 'broker (dynamic)', 3: 'broker default (dynamic)', 4: 'broker', 5: 'default', 6: 'broker logger' };

export async function topicsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(TOPICS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, OPTIONS, TOPICS_HELP);
  if (p === null) return 0;
  const { values: v } = p;
  const names = [...(v.topic !== undefined ? [v.topic] : []), ...p.positionals];
  const one = (): string => {
    if (names.length !== 1) throw usage(`topics ${sub} needs one topic name`, 'topics');
    return names[0]!;
  };
  switch (sub) {
    case 'create': {
      const name = one();
      const partitions = int(v.partitions, '--partitions', { min: 1 });
      const replicationFactor = int(v['replication-factor'], '--replication-factor', { min: 1 });
      const configs = keyValues(v.config, '--config');
      await withAdmin(v, async (admin) => {
        const existed = v['if-not-exists'] ? (await admin.listTopics({ includeInternal: true })).includes(name) : false;
        await admin.createTopics([{ name, partitions, replicationFactor, configs }], { ignoreExisting: v['if-not-exists'] ?? false });
        // In a cluster the broker asked next may not have applied the new topic yet: wait for it.
        const deadline = Date.now() + 10000;
        let d: Awaited<ReturnType<typeof admin.describeTopics>>[number] | undefined;
        for (;;) {
          try {
            [d] = await admin.describeTopics([name]);
            break;
          } catch (e) {
            if (!(e instanceof KafkaError && e.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) || Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        if (v.json) printJson({ name, created: !existed, topicId: d!.topicId, partitions: d!.partitions.length });
        else console.log(existed ? `Topic ${name} already exists (${d!.partitions.length} partitions).` : `Created topic ${name} with ${d!.partitions.length} partition${d!.partitions.length === 1 ? '' : 's'}.`);
      });
      return 0;
    }
    case 'list': {
      await withAdmin(v, async (admin) => {
        const list = await admin.listTopics({ includeInternal: v.internal ?? false });
        const described = list.length > 0 ? await admin.describeTopics(list) : [];
        if (v.json) printJson(described.map((d) => ({ name: d.name, topicId: d.topicId, internal: d.isInternal, partitions: d.partitions.length })));
        else if (described.length === 0) console.log('No topics.');
        else console.log(table(['TOPIC', 'PARTITIONS', 'INTERNAL'], described.map((d) => [d.name, d.partitions.length, d.isInternal ? 'yes' : 'no'])));
      });
      return 0;
    }
    case 'describe': {
      await withAdmin(v, async (admin) => {
        const list = names.length > 0 ? names : await admin.listTopics({ includeInternal: v.internal ?? false });
        const out = [];
        const described = list.length > 0 ? await admin.describeTopics(list) : [];
        const cleaner = described.length > 0 ? await cleanerOrNull(admin, list) : null;
        for (const d of described) out.push(await describeOne(admin, d.name, d, v['all-configs'] ?? false, cleaner));
        if (v.json) {
          printJson(out);
          return;
        }
        const blocks = out.map((t) => {
          const head = `Topic: ${t.name}  TopicId: ${t.topicId}  Partitions: ${t.partitions.length}  Internal: ${t.internal ? 'yes' : 'no'}`;
          const configs = t.configs.length === 0 ? 'Configs: (none set on the topic)' : `Configs:\n${table(['NAME', 'VALUE', 'SOURCE'], t.configs.map((c) => [c.name, c.value, c.source]))
            .split('\n')
            .map((l) => '  ' + l)
            .join('\n')}`;
          const compacted = t.cleanupPolicy?.includes('compact') === true && t.partitions.some((x) => x.cleaner !== undefined);
          const parts = table(
            ['PARTITION', 'LEADER', 'REPLICAS', 'ISR', 'EARLIEST', 'LATEST', 'RECORDS', ...(compacted ? ['DIRTY-RATIO', 'LAST-CLEANED'] : [])],
            t.partitions.map((x) => [
              x.partition,
              x.leader,
              x.replicas.join(','),
              x.isr.join(','),
              x.earliest,
              x.latest,
              x.latest - x.earliest,
              ...(compacted ? [ratio(x.cleaner?.dirtyRatio), lastCleaned(x.cleaner)] : []),
            ]),
          );
          return `${head}\n${configs}\n${parts}`;
        });
        console.log(blocks.length === 0 ? 'No topics.' : blocks.join('\n\n'));
      });
      return 0;
    }
    case 'alter-config': {
      const name = one();
      const set = keyValues(v.set, '--set');
      const del = v.delete ?? [];
      if (Object.keys(set).length === 0 && del.length === 0) throw usage('topics alter-config needs --set KEY=VALUE or --delete KEY', 'topics');
      await withAdmin(v, async (admin) => {
        await admin.alterConfigs([{ type: 'topic', name, set, delete: del }]);
        if (v.json) printJson({ name, set, deleted: del });
        else console.log(`Updated configs of ${name}: ${[...Object.entries(set).map(([k, x]) => `${k}=${x}`), ...del.map((k) => `${k} (reset to default)`)].join(', ')}.`);
      });
      return 0;
    }
    case 'add-partitions': {
      const name = one();
      const count = int(v.count ?? v.partitions, '--count', { min: 1 });
      if (count === undefined) throw usage('topics add-partitions needs --count TOTAL (the new total number of partitions)', 'topics');
      await withAdmin(v, async (admin) => {
        const [before] = await admin.describeTopics([name]);
        if (count <= before!.partitions.length) throw new CliError(`${name} already has ${before!.partitions.length} partitions`, `--count is the new total and must be more than ${before!.partitions.length}; partitions cannot be removed`);
        await admin.createPartitions([{ topic: name, count }]);
        if (v.json) printJson({ name, previous: before!.partitions.length, partitions: count });
        else console.log(`Topic ${name} now has ${count} partitions (was ${before!.partitions.length}).`);
      });
      return 0;
    }
    case 'delete': {
      if (names.length === 0) throw usage('topics delete needs at least one topic name', 'topics');
      await withAdmin(v, async (admin) => {
        let targets = names;
        if (v['if-exists']) {
          const existing = new Set(await admin.listTopics({ includeInternal: true }));
          targets = names.filter((n) => existing.has(n));
        }
        if (targets.length > 0) await admin.deleteTopics(targets);
        if (v.json) printJson({ deleted: targets });
        else console.log(targets.length === 0 ? 'Nothing to delete.' : `Deleted topic${targets.length === 1 ? '' : 's'} ${targets.join(', ')}.`);
      });
      return 0;
    }
    case 'elect-leaders': {
      const partitionNumbers = (v.partition ?? []).map((x) => int(x, '--partition', { min: 0 })!);
      if (partitionNumbers.length > 0 && names.length === 0) throw usage('topics elect-leaders --partition needs a topic name', 'topics');
      await withAdmin(v, async (admin) => {
        let targets: Array<{ topic: string; partition: number }> | undefined;
        if (names.length > 0) {
          targets = [];
          for (const d of await admin.describeTopics(names)) {
            const ps = partitionNumbers.length > 0 ? partitionNumbers : d.partitions.map((x) => x.partition);
            for (const partition of ps) targets.push({ topic: d.name, partition });
          }
        }
        const results = await admin.electLeaders(v.unclean ? 'unclean' : 'preferred', targets);
        if (v.json) {
          printJson(results.map((r) => ({ ...r, error: r.errorCode === 0 ? null : errorName(r.errorCode) })));
          return;
        }
        if (results.length === 0) console.log('No partition needed a new leader.');
        else console.log(table(['TOPIC', 'PARTITION', 'RESULT'], results.map((r) => [r.topic, r.partition, r.errorCode === 0 ? 'elected' : `${errorName(r.errorCode)}${r.errorMessage ? `: ${r.errorMessage}` : ''}`])));
      });
      return 0;
    }
    case 'reassign': {
      const name = one();
      const parts = (v.partition ?? []).map((x) => int(x, '--partition', { min: 0 })!);
      if (parts.length !== 1) throw usage('topics reassign needs one --partition N', 'topics');
      if ((v.replicas === undefined) === (v.cancel !== true)) throw usage('topics reassign needs --replicas ID,ID,... or --cancel', 'topics');
      const replicas = v.cancel ? null : v.replicas!.split(',').map((x) => int(x.trim(), '--replicas', { min: 0 })!);
      await withAdmin(v, async (admin) => {
        await admin.alterPartitionReassignments([{ topic: name, partition: parts[0]!, replicas }]);
        if (v.json) printJson({ topic: name, partition: parts[0], replicas });
        else console.log(replicas === null ? `Cancelled the reassignment of ${name}-${parts[0]}.` : `Reassigning ${name}-${parts[0]} to replicas ${replicas.join(',')}; 'strand topics list-reassignments' shows progress.`);
      });
      return 0;
    }
    case 'list-reassignments': {
      await withAdmin(v, async (admin) => {
        let targets: Array<{ topic: string; partition: number }> | undefined;
        if (names.length > 0) targets = (await admin.describeTopics(names)).flatMap((d) => d.partitions.map((x) => ({ topic: d.name, partition: x.partition })));
        const list = await admin.listPartitionReassignments(targets);
        if (v.json) printJson(list);
        else if (list.length === 0) console.log('No reassignment in progress.');
        else console.log(table(['TOPIC', 'PARTITION', 'REPLICAS', 'ADDING', 'REMOVING'], list.map((r) => [r.topic, r.partition, r.replicas.join(','), r.addingReplicas.join(','), r.removingReplicas.join(',')])));
      });
      return 0;
    }
    case 'cleaner': {
      await withAdmin(v, async (admin) => {
        const d = await admin.describeLogCleaner(names.length > 0 ? names : undefined);
        if (v.json) {
          printJson(d);
          return;
        }
        const rows = d.topics.flatMap((t) =>
          t.partitions.map((x) => [
            t.name,
            x.partition,
            t.cleanupPolicy,
            ratio(x.dirtyRatio),
            x.cleanBytes,
            x.dirtyBytes,
            x.firstDirtyOffset,
            x.cleanerCheckpoint < 0 ? '-' : x.cleanerCheckpoint,
            lastCleaned(x),
            x.lastRun === null ? '-' : x.lastRun.recordsRemoved,
            x.lastError ?? '',
          ]),
        );
        console.log(
          rows.length === 0
            ? 'No compacted topics.'
            : table(['TOPIC', 'PARTITION', 'POLICY', 'DIRTY-RATIO', 'CLEAN-BYTES', 'DIRTY-BYTES', 'FIRST-DIRTY', 'CHECKPOINT', 'LAST-CLEANED', 'REMOVED', 'ERROR'], rows),
        );
        for (const b of d.brokers) {
          const last = b.lastRun === null ? 'no pass since start' : `last pass ${b.lastRun.topic}-${b.lastRun.partition} at ${new Date(b.lastRun.endMs).toISOString()} (${b.lastRun.endMs - b.lastRun.startMs} ms, ${(b.lastRun.throughputBytesPerSec / 1048576).toFixed(1)} MB/s)`;
          console.log(`Broker ${b.nodeId}: cleaner ${b.enabled ? 'enabled' : 'disabled'}, ${b.passes} passes, ${b.totalBytesRead} bytes read, ${b.totalBytesWritten} written, max dirty ratio ${ratio(b.maxDirtyRatio)}; ${last}.`);
        }
      });
      return 0;
    }
    default:
      throw usage(`unknown topics command '${sub}'`, 'topics');
  }
}

const ratio = (r: number | undefined): string => (r === undefined ? '-' : r.toFixed(3));
const lastCleaned = (c: PartitionCleanerState | undefined): string => (c?.lastRun ? new Date(c.lastRun.endMs).toISOString() : '-');

/** The cleaner's view of `topics`, or null from a broker without the DescribeLogCleaner extension (Kafka). */
async function cleanerOrNull(admin: Admin, topics: string[]): Promise<LogCleanerDescription | null> {
  try {
    return await admin.describeLogCleaner(topics);
  } catch (e) {
    if (e instanceof StrandError && e.code === 'UNSUPPORTED_VERSION') return null;
    throw e;
  }
}

async function describeOne(admin: Admin, name: string, d: Awaited<ReturnType<Admin['describeTopics']>>[number], allConfigs: boolean, cleaner: LogCleanerDescription | null) {
  const [earliest, latest, configs] = await Promise.all([admin.listOffsets(name, 'earliest'), admin.listOffsets(name, 'latest'), admin.describeConfigs([{ type: 'topic', name }])]);
  const cleanerTopic = cleaner?.topics.find((t) => t.name === name);
  const compacted = cleanerTopic?.cleanupPolicy.includes('compact') === true;
  return {
    name,
    topicId: d.topicId,
    internal: d.isInternal,
    cleanupPolicy: configs[0]!.configs.find((c) => c.name === 'cleanup.policy')?.value ?? null,
    partitions: d.partitions.map((x) => ({
      partition: x.partition,
      leader: x.leader,
      replicas: x.replicas,
      isr: x.isr,
      earliest: earliest.find((o) => o.partition === x.partition)?.offset ?? -1,
      latest: latest.find((o) => o.partition === x.partition)?.offset ?? -1,
      ...(compacted ? { cleaner: cleanerTopic!.partitions.find((p) => p.partition === x.partition) } : {}),
    })),
    configs: configs[0]!.configs
      .filter((c) => allConfigs || c.source === 1)
      .map((c) => ({ name: c.name, value: c.isSensitive ? '(sensitive)' : c.value, source: SOURCES[c.source] ?? String(c.source) }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
}
