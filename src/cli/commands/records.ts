/**
 * `strand records delete TOPIC`: moves partitions' log start offsets forward (DeleteRecords, like
 * kafka-delete-records.sh), through Strand's admin client.
 */
import { COMMON_HELP, CliError, int, parse, printJson, table, usage, withAdmin } from '../common.js';

export const RECORDS_HELP = `Usage: strand records delete TOPIC --before OFFSET [--partition N ...]

Deletes the records before OFFSET in each partition (all partitions, or those given): the
partition's earliest offset becomes OFFSET. --before end deletes everything written so far.

Options:
      --before OFFSET|end       delete records with an offset below this
  -p, --partition N             only partition N (repeatable; default: every partition)
${COMMON_HELP}

Examples:
  strand records delete orders --before 1000 --partition 0
  strand records delete orders --before end`;

const OPTIONS = {
  topic: { type: 'string', short: 't' },
  before: { type: 'string' },
  offset: { type: 'string' },
  partition: { type: 'string', short: 'p', multiple: true },
} as const;

export async function recordsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(RECORDS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'delete') throw usage(`unknown records command '${sub}'`, 'records');
  const p = parse(rest, OPTIONS, RECORDS_HELP);
  if (p === null) return 0;
  const v = p.values;
  const topic = v.topic ?? p.positionals[0];
  if (topic === undefined) throw usage('records delete needs a TOPIC', 'records');
  const before = v.before ?? v.offset;
  if (before === undefined) throw usage('records delete needs --before OFFSET (or --before end)', 'records');
  const offset = before === 'end' ? -1 : int(before, '--before', { min: 0 })!;
  return withAdmin(v, async (admin) => {
    const [d] = await admin.describeTopics([topic]);
    const all = d!.partitions.map((x) => x.partition);
    const parts = v.partition !== undefined ? v.partition.map((x) => int(x, '--partition', { min: 0 })!) : all;
    for (const pt of parts) if (!all.includes(pt)) throw new CliError(`topic ${topic} has no partition ${pt}`, `it has ${all.length} partitions`);
    if (offset >= 0) {
      const ends = await admin.listOffsets(topic, 'latest', parts);
      for (const e of ends) if (offset > e.offset) throw new CliError(`offset ${offset} is past the end of ${topic}-${e.partition} (${e.offset})`, 'use --before end to delete everything');
    }
    const result = await admin.deleteRecords(topic, parts.map((partition) => ({ partition, offset })));
    if (v.json) printJson({ topic, partitions: result });
    else console.log(table(['PARTITION', 'LOW-WATERMARK'], result.map((r) => [r.partition, r.lowWatermark])));
    return 0;
  });
}
