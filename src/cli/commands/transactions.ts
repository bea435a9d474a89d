/**
 * `strand transactions list|describe|describe-producers|find-hanging|abort`, in the spirit of
 * kafka-transactions.sh, through Strand's admin client (ListTransactions, DescribeTransactions,
 * DescribeProducers — KIP-664 — and WriteTxnMarkers for abort).
 *
 * find-hanging: a transaction is open in a partition while the partition's producer state has a
 * current transaction start offset. It is reported as hanging when
 *  - the coordinator does not know it: no transactional id has that producer id, or the id's
 *    transaction does not include the partition (it completed, or belongs to another epoch) —
 *    re-checked with a second DescribeProducers, so a transaction whose marker was being
 *    written during the first look is not reported; or
 *  - it has been open longer than --max-transaction-timeout minutes (since the producer's last
 *    write to the partition): no transaction may run longer than transaction.max.timeout.ms
 *    (15 minutes by default), so the coordinator should already have aborted it.
 * Kafka's tool reports only transactions that are both old and unknown to the coordinator;
 * Strand reports either, with the reason.
 */
import type { Admin, PartitionProducers, ProducerStateDescription, TransactionDescription } from '../../client/admin.js';
import { KafkaError } from '../../client/errors.js';
import { COMMON_HELP, CliError, int, parse, printJson, table, topicPartitions, usage, withAdmin } from '../common.js';

export const TRANSACTIONS_HELP = `Usage: strand transactions <list|describe|describe-producers|find-hanging|abort> [options]

Transactions and the producers writing to partitions (like kafka-transactions.sh).

  strand transactions list [--state STATE ...] [--producer-id ID ...] [--duration-filter MS]
  strand transactions describe TRANSACTIONAL-ID [TRANSACTIONAL-ID ...]
  strand transactions describe-producers --topic TOPIC[:P,P...] [--topic ...]
  strand transactions find-hanging [--topic TOPIC[:P,P...] ...] [--max-transaction-timeout MINUTES]
  strand transactions abort --topic TOPIC --partition N (--start-offset OFFSET |
                            --producer-id ID --producer-epoch E [--coordinator-epoch C])

list shows every transactional id the coordinators know, with its producer id and state (Empty,
Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence).
describe shows one id's producer id and epoch, state, timeout, when its current (or last)
transaction started and the partitions it includes. describe-producers shows, per partition,
the producers the partition knows: epoch, last sequence, last write, the coordinator epoch of the
last marker and the first offset of the producer's open transaction.

find-hanging looks at every partition (or those given) for open transactions that are hanging:
open longer than --max-transaction-timeout, or unknown to the transaction coordinator (no
transactional id has that producer, or its transaction does not include the partition). A
hanging transaction holds back the partition's last stable offset, so read_committed consumers
stop there.

abort writes an ABORT marker for one partition's open transaction (WriteTxnMarkers, as Kafka's
abort): the transaction that starts at --start-offset (see find-hanging), or the one of the given
producer. Abort only hanging transactions: aborting one its coordinator still runs loses that
transaction's records in the partition.

Options:
      --state STATE             list: only ids in this state (repeatable)
      --producer-id ID          list: only ids with this producer id (repeatable);
                                abort: the producer whose transaction to abort
      --duration-filter MS      list: only transactions running longer than MS milliseconds
      --transactional-id ID     describe: the id (repeatable; or give ids as arguments)
  -t, --topic TOPIC[:P,P]       describe-producers, find-hanging: a topic, optionally only some
                                partitions (repeatable; find-hanging default: every topic)
      --max-transaction-timeout MINUTES
                                find-hanging: report transactions open longer than this
                                (default 15, Kafka's transaction.max.timeout.ms; decimals allowed)
  -p, --partition N             abort: the partition (or give --topic TOPIC:N)
      --start-offset OFFSET     abort: the transaction starting at this offset
      --producer-epoch E        abort: the producer's epoch (with --producer-id)
      --coordinator-epoch C     abort: the coordinator epoch of its last marker (default 0)
${COMMON_HELP}

Examples:
  strand transactions list --state Ongoing
  strand transactions describe payments-tx-1
  strand transactions describe-producers --topic orders:0
  strand transactions find-hanging --max-transaction-timeout 5
  strand transactions abort --topic orders --partition 0 --start-offset 1200`;

const OPTIONS = {
  state: { type: 'string', multiple: true },
  'producer-id': { type: 'string', multiple: true },
  'duration-filter': { type: 'string' },
  'transactional-id': { type: 'string', multiple: true },
  topic: { type: 'string', short: 't', multiple: true },
  'max-transaction-timeout': { type: 'string' },
  partition: { type: 'string', short: 'p' },
  'start-offset': { type: 'string' },
  'producer-epoch': { type: 'string' },
  'coordinator-epoch': { type: 'string' },
} as const;

/** Which subcommands take each flag (the others refuse it, so a misplaced flag is not silently ignored). */
const FLAG_SCOPE: Record<string, string[]> = {
  state: ['list'],
  'producer-id': ['list', 'abort'],
  'duration-filter': ['list'],
  'transactional-id': ['describe'],
  topic: ['describe-producers', 'find-hanging', 'abort'],
  'max-transaction-timeout': ['find-hanging'],
  partition: ['abort'],
  'start-offset': ['abort'],
  'producer-epoch': ['abort'],
  'coordinator-epoch': ['abort'],
};

const SUBCOMMANDS = ['list', 'describe', 'describe-producers', 'find-hanging', 'abort'];
const DEFAULT_MAX_TIMEOUT_MINUTES = 15;

export async function transactionsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(TRANSACTIONS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, OPTIONS, TRANSACTIONS_HELP);
  if (p === null) return 0;
  const v = p.values;
  if (!SUBCOMMANDS.includes(sub)) throw usage(`unknown transactions command '${sub}'`, 'transactions');
  for (const [flag, subs] of Object.entries(FLAG_SCOPE)) {
    if ((v as Record<string, unknown>)[flag] !== undefined && !subs.includes(sub)) throw usage(`--${flag} is not an option of 'transactions ${sub}' (only of ${subs.join(', ')})`, 'transactions');
  }
  if (p.positionals.length > 0 && sub !== 'describe') throw usage(`unexpected argument '${p.positionals[0]}'`, 'transactions');
  switch (sub) {
    case 'list': {
      const producerIds = (v['producer-id'] ?? []).map((x) => int(x, '--producer-id', { min: 0 })!);
      const durationMs = int(v['duration-filter'], '--duration-filter', { min: 0 });
      await withAdmin(v, async (admin) => {
        const list = await admin.listTransactions({ states: v.state, producerIds, durationMs });
        if (v.json) printJson(list);
        else if (list.length === 0) console.log('No transactions.');
        else console.log(table(['TRANSACTIONAL-ID', 'COORDINATOR', 'PRODUCER-ID', 'STATE'], list.map((t) => [t.transactionalId, t.coordinatorId, t.producerId, t.state])));
      });
      return 0;
    }
    case 'describe': {
      const ids = [...(v['transactional-id'] ?? []), ...p.positionals];
      if (ids.length === 0) throw usage('transactions describe needs a TRANSACTIONAL-ID', 'transactions');
      await withAdmin(v, async (admin) => {
        let ds: TransactionDescription[];
        try {
          ds = await admin.describeTransactions(ids);
        } catch (e) {
          if (e instanceof KafkaError && e.code === 'TRANSACTIONAL_ID_NOT_FOUND') {
            throw new CliError(e.message, "the coordinator does not know this transactional id (never used, or expired after transactional.id.expiration.ms): 'strand transactions list' shows the known ids");
          }
          throw e;
        }
        const now = Date.now();
        if (v.json) {
          printJson(ds);
          return;
        }
        console.log(
          table(
            ['TRANSACTIONAL-ID', 'COORDINATOR', 'PRODUCER-ID', 'EPOCH', 'STATE', 'TIMEOUT-MS', 'START-TIME', 'DURATION-MS', 'PARTITIONS'],
            ds.map((d) => [
              d.transactionalId,
              d.coordinatorId,
              d.producerId,
              d.producerEpoch,
              d.state,
              d.transactionTimeoutMs,
              d.transactionStartTimeMs === null ? null : new Date(d.transactionStartTimeMs).toISOString(),
              d.transactionStartTimeMs === null ? null : Math.max(0, now - d.transactionStartTimeMs),
              d.partitions.map((x) => `${x.topic}-${x.partition}`).join(',') || null,
            ]),
          ),
        );
      });
      return 0;
    }
    case 'describe-producers': {
      const specs = (v.topic ?? []).map(topicPartitions);
      if (specs.length === 0) throw usage('transactions describe-producers needs --topic TOPIC[:P,P...]', 'transactions');
      await withAdmin(v, async (admin) => {
        const result = await admin.describeProducers(await resolvePartitions(admin, specs));
        if (v.json) {
          printJson(result);
          return;
        }
        const rows = result.flatMap((pp) => pp.activeProducers.map((a) => [pp.topic, pp.partition, a.producerId, a.producerEpoch, a.coordinatorEpoch, a.lastSequence, timestampText(a.lastTimestamp), a.currentTransactionStartOffset]));
        if (rows.length === 0) console.log('No active producers.');
        else console.log(table(['TOPIC', 'PARTITION', 'PRODUCER-ID', 'EPOCH', 'COORDINATOR-EPOCH', 'LAST-SEQUENCE', 'LAST-TIMESTAMP', 'TXN-START-OFFSET'], rows));
      });
      return 0;
    }
    case 'find-hanging': {
      const minutes = minutesArg(v['max-transaction-timeout']);
      const specs = (v.topic ?? []).map(topicPartitions);
      await withAdmin(v, async (admin) => {
        const partitions = specs.length > 0 ? await resolvePartitions(admin, specs) : await everyPartition(admin);
        const hanging = await findHanging(admin, partitions, minutes * 60000, Date.now);
        if (v.json) {
          printJson(hanging);
          return;
        }
        if (hanging.length === 0) {
          console.log(`No hanging transactions in ${partitions.length} partition${partitions.length === 1 ? '' : 's'}.`);
          return;
        }
        console.log(
          table(
            ['TOPIC', 'PARTITION', 'PRODUCER-ID', 'EPOCH', 'COORDINATOR-EPOCH', 'START-OFFSET', 'LAST-TIMESTAMP', 'DURATION-MIN', 'TRANSACTIONAL-ID', 'REASON'],
            hanging.map((h) => [h.topic, h.partition, h.producerId, h.producerEpoch, h.coordinatorEpoch, h.startOffset, timestampText(h.lastTimestamp), Math.floor(h.durationMs / 60000), h.transactionalId, h.reason]),
          ),
        );
      });
      return 0;
    }
    case 'abort':
      return abort(v);
    default:
      throw usage(`unknown transactions command '${sub}'`, 'transactions');
  }
}

interface AbortValues {
  'bootstrap-server'?: string;
  json?: boolean;
  topic?: string[];
  partition?: string;
  'start-offset'?: string;
  'producer-id'?: string[];
  'producer-epoch'?: string;
  'coordinator-epoch'?: string;
}

async function abort(v: AbortValues): Promise<number> {
  if (v.topic === undefined || v.topic.length !== 1) throw usage('transactions abort needs one --topic TOPIC', 'transactions');
  const spec = topicPartitions(v.topic[0]!);
  if (spec.partitions !== undefined && spec.partitions.length !== 1) throw usage('transactions abort takes one partition', 'transactions');
  if (spec.partitions !== undefined && v.partition !== undefined) throw usage('give the partition either as --topic TOPIC:N or as --partition N', 'transactions');
  const partition = spec.partitions?.[0] ?? int(v.partition, '--partition', { min: 0 });
  if (partition === undefined) throw usage('transactions abort needs --partition N (or --topic TOPIC:N)', 'transactions');
  const startOffset = int(v['start-offset'], '--start-offset', { min: 0 });
  const ids = (v['producer-id'] ?? []).map((x) => int(x, '--producer-id', { min: 0 })!);
  const epoch = int(v['producer-epoch'], '--producer-epoch', { min: 0 });
  const coordinatorEpoch = int(v['coordinator-epoch'], '--coordinator-epoch', { min: 0 });
  const byProducer = ids.length > 0 || epoch !== undefined || coordinatorEpoch !== undefined;
  if ((startOffset !== undefined) === byProducer) throw usage('transactions abort needs either --start-offset OFFSET or --producer-id ID --producer-epoch E', 'transactions');
  if (byProducer && (ids.length !== 1 || epoch === undefined)) throw usage('transactions abort needs one --producer-id ID and --producer-epoch E', 'transactions');
  const topic = spec.topic;
  return withAdmin(v, async (admin) => {
    const [t] = await admin.describeTopics([topic]);
    if (!t!.partitions.some((x) => x.partition === partition)) throw new CliError(`topic ${topic} has no partition ${partition}`, `it has ${t!.partitions.length} partitions`);
    let target: { producerId: number; producerEpoch: number; coordinatorEpoch: number; startOffset: number | null };
    if (startOffset !== undefined) {
      const [pp] = await admin.describeProducers([{ topic, partition }]);
      const open = pp!.activeProducers.find((a) => a.currentTransactionStartOffset === startOffset);
      if (open === undefined) {
        throw new CliError(`no open transaction starts at offset ${startOffset} in ${topic}-${partition}`, `'strand transactions describe-producers --topic ${topic}:${partition}' shows the open transactions (TXN-START-OFFSET)`);
      }
      target = { producerId: open.producerId, producerEpoch: open.producerEpoch, coordinatorEpoch: open.coordinatorEpoch ?? 0, startOffset };
    } else {
      target = { producerId: ids[0]!, producerEpoch: epoch!, coordinatorEpoch: coordinatorEpoch ?? 0, startOffset: null };
    }
    await admin.abortTransaction({ topic, partition, ...target });
    if (v.json) printJson({ topic, partition, ...target, aborted: true });
    else console.log(`Aborted the transaction of producer ${target.producerId} (epoch ${target.producerEpoch}) in ${topic}-${partition}${target.startOffset === null ? '' : ` that started at offset ${target.startOffset}`}.`);
    return 0;
  });
}

function minutesArg(value: string | undefined): number {
  if (value === undefined) return DEFAULT_MAX_TIMEOUT_MINUTES;
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new CliError(`--max-transaction-timeout expects minutes (a number ≥ 0), got '${value}'`, null, 2);
  return n;
}

function timestampText(ms: number): string | null {
  return ms >= 0 ? new Date(ms).toISOString() : null;
}

/** The partitions named by `--topic TOPIC[:P,P]` specs, checked against the topics' partition counts. */
async function resolvePartitions(admin: Admin, specs: Array<{ topic: string; partitions: number[] | undefined }>): Promise<Array<{ topic: string; partition: number }>> {
  const out: Array<{ topic: string; partition: number }> = [];
  const described = await admin.describeTopics([...new Set(specs.map((s) => s.topic))]);
  for (const s of specs) {
    const all = described.find((d) => d.name === s.topic)!.partitions.map((x) => x.partition);
    for (const pt of s.partitions ?? all) {
      if (!all.includes(pt)) throw new CliError(`topic ${s.topic} has no partition ${pt}`, `it has ${all.length} partitions`);
      if (!out.some((o) => o.topic === s.topic && o.partition === pt)) out.push({ topic: s.topic, partition: pt });
    }
  }
  return out;
}

/** Every partition of every topic, internal ones included (transactional offset commits live in __consumer_offsets). */
async function everyPartition(admin: Admin): Promise<Array<{ topic: string; partition: number }>> {
  const names = await admin.listTopics({ includeInternal: true });
  if (names.length === 0) return [];
  return (await admin.describeTopics(names)).flatMap((d) => d.partitions.map((x) => ({ topic: d.name, partition: x.partition })));
}

export interface HangingTransaction {
  topic: string;
  partition: number;
  producerId: number;
  producerEpoch: number;
  coordinatorEpoch: number | null;
  /** First offset of the open transaction in the partition. */
  startOffset: number;
  lastTimestamp: number;
  /** Time since the producer's last write to the partition. */
  durationMs: number;
  /** The transactional id the coordinator has for the producer id, null when none. */
  transactionalId: string | null;
  reason: string;
}

interface OpenTxn {
  topic: string;
  partition: number;
  state: ProducerStateDescription;
}

function openTransactions(pps: PartitionProducers[]): OpenTxn[] {
  return pps.flatMap((pp) => pp.activeProducers.filter((a) => a.currentTransactionStartOffset !== null).map((state) => ({ topic: pp.topic, partition: pp.partition, state })));
}

/** The open transactions in `partitions` that are hanging (see the header comment), with why. */
export async function findHanging(admin: Admin, partitions: Array<{ topic: string; partition: number }>, maxTimeoutMs: number, now: () => number): Promise<HangingTransaction[]> {
  if (partitions.length === 0) return [];
  const open = openTransactions(await admin.describeProducers(partitions));
  if (open.length === 0) return [];
  const producerIds = [...new Set(open.map((o) => o.state.producerId))];
  const tidOf = new Map((await admin.listTransactions({ producerIds })).map((l) => [l.producerId, l.transactionalId]));
  const descriptions = new Map<string, TransactionDescription | null>();
  for (const tid of new Set(tidOf.values())) {
    try {
      descriptions.set(tid, (await admin.describeTransactions([tid]))[0]!);
    } catch (e) {
      if (!(e instanceof KafkaError && e.code === 'TRANSACTIONAL_ID_NOT_FOUND')) throw e;
      descriptions.set(tid, null); // expired between the list and the describe
    }
  }
  const found: Array<HangingTransaction & { unknown: boolean }> = [];
  const at = now();
  for (const o of open) {
    const s = o.state;
    const tid = tidOf.get(s.producerId) ?? null;
    const d = tid === null ? null : (descriptions.get(tid) ?? null);
    let reason: string | null = null;
    let unknown = false;
    if (d === null) {
      reason = `no transactional id at the coordinator has producer id ${s.producerId}`;
      unknown = true;
    } else if (!d.partitions.some((x) => x.topic === o.topic && x.partition === o.partition)) {
      reason = `the coordinator's transaction of ${d.transactionalId} (${d.state}, epoch ${d.producerEpoch}) does not include this partition`;
      unknown = true;
    } else if (at - s.lastTimestamp > maxTimeoutMs) {
      reason = `open longer than the max transaction timeout (${formatMinutes(maxTimeoutMs)} min)`;
    }
    if (reason === null) continue;
    found.push({
      topic: o.topic,
      partition: o.partition,
      producerId: s.producerId,
      producerEpoch: s.producerEpoch,
      coordinatorEpoch: s.coordinatorEpoch,
      startOffset: s.currentTransactionStartOffset!,
      lastTimestamp: s.lastTimestamp,
      durationMs: Math.max(0, at - s.lastTimestamp),
      transactionalId: tid,
      reason,
      unknown,
    });
  }
  // A transaction unknown to the coordinator may have just completed (markers are written before
  // the coordinator records the completion): keep it only if it is still open in a second look.
  const recheck = found.filter((f) => f.unknown);
  let stillOpen = new Set<string>();
  if (recheck.length > 0) {
    const again = openTransactions(await admin.describeProducers(dedupe(recheck.map((f) => ({ topic: f.topic, partition: f.partition })))));
    stillOpen = new Set(again.map((o) => openKey(o.topic, o.partition, o.state.producerId, o.state.currentTransactionStartOffset!)));
  }
  return found
    .filter((f) => !f.unknown || stillOpen.has(openKey(f.topic, f.partition, f.producerId, f.startOffset)))
    .map(({ unknown: _unknown, ...h }) => h)
    .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.producerId - b.producerId);
}

const openKey = (topic: string, partition: number, producerId: number, startOffset: number): string => `${topic}\u0000${partition}\u0000${producerId}\u0000${startOffset}`;

function dedupe(tps: Array<{ topic: string; partition: number }>): Array<{ topic: string; partition: number }> {
  const seen = new Set<string>();
  return tps.filter((tp) => {
    const k = `${tp.topic}\u0000${tp.partition}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function formatMinutes(ms: number): string {
  const m = ms / 60000;
  return Number.isInteger(m) ? String(m) : m.toFixed(2);
}
