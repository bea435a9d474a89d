/**
 * `strand consume TOPIC`: prints records as text, a kcat-style format template, or JSON lines,
 * through Strand's consumer — without a group (assigned partitions, nothing committed) or as a
 * member of `--group` (committed offsets, commits on exit).
 *
 * Without --follow it stops at the end offsets it saw when it started (like `kcat -e`); with
 * --follow it keeps waiting for new records until Ctrl-C or --max-messages.
 */
import type { ConsumerMessage } from '../../client/consumer.js';
import { COMMON_HELP, CliError, encodeBytes, encodingArg, int, kafkaFor, out, parse, timestampArg, usage, withAdmin, type Encoding } from '../common.js';
import { checkTopic } from './produce.js';

export const CONSUME_HELP = `Usage: strand consume TOPIC [options]

Prints the records of a topic, one per line (the value, by default). Without --follow it stops at
the end of the partitions as they were when it started; with --follow it waits for new records.

Where to start (without a group: the beginning, unless one of these says otherwise):
      --from-beginning          the earliest offset (with --group: when the group has no committed offset)
      --from-end                the end: only records produced from now on
  -o, --offset N                offset N (needs --partition); a negative N means N records before the end
      --timestamp T             the first record at or after T (ISO-8601 like 2024-05-01T12:00:00Z, or epoch ms)
  -g, --group GROUP             consume as a member of GROUP: start at its committed offsets, commit on exit
                                (otherwise the end, or the beginning with --from-beginning)

What and how much:
  -p, --partition N             only partition N (repeatable)
  -n, --max-messages N          exit after N records
      --follow                  keep waiting for new records (Ctrl-C to stop)
      --timeout-ms MS           with --follow: exit after MS without a record

Output:
  -f, --format FMT              a template like kcat's -f: %t topic, %p partition, %o offset, %k key,
                                %s value, %h headers (k=v,k=v), %T timestamp (ms), %K key length,
                                %S value length, %% a percent sign, \\n newline, \\t tab
      --json                    one JSON object per line: topic, partition, offset, timestamp, key, value, headers
  -e, --encoding ENC            utf8 (default), base64 or hex for keys, values and header values (binary-safe)
      --print-key               the default output shows KEY<tab>VALUE
${COMMON_HELP.replace(/\n\s+--json[^\n]*/, '')}

Examples:
  strand consume orders --from-beginning --max-messages 10
  strand consume orders -f '%p/%o %k=%s [%h]\\n'
  strand consume orders --group billing --follow
  strand consume orders --timestamp 2024-05-01T00:00:00Z --json`;

const OPTIONS = {
  topic: { type: 'string', short: 't' },
  'from-beginning': { type: 'boolean' },
  'from-end': { type: 'boolean' },
  offset: { type: 'string', short: 'o' },
  timestamp: { type: 'string' },
  group: { type: 'string', short: 'g' },
  partition: { type: 'string', short: 'p', multiple: true },
  'max-messages': { type: 'string', short: 'n' },
  follow: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  format: { type: 'string', short: 'f' },
  encoding: { type: 'string', short: 'e' },
  'print-key': { type: 'boolean' },
} as const;

/** Compiles a kcat-style template into a function of a message. */
export function compileFormat(fmt: string, enc: Encoding): (m: ConsumerMessage) => string {
  const parts: Array<string | ((m: ConsumerMessage) => string)> = [];
  let lit = '';
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c === '\\' && i + 1 < fmt.length) {
      const n = fmt[++i]!;
      lit += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n === '0' ? '\0' : n === '\\' ? '\\' : '\\' + n;
      continue;
    }
    if (c !== '%' || i + 1 >= fmt.length) {
      lit += c;
      continue;
    }
    const n = fmt[++i]!;
    let f: ((m: ConsumerMessage) => string) | null = null;
    switch (n) {
      case 't': f = (m) => m.topic; break;
      case 'p': f = (m) => String(m.partition); break;
      case 'o': f = (m) => String(m.offset); break;
      case 'T': f = (m) => String(m.timestamp); break;
      case 'k': f = (m) => encodeBytes(m.rawKey, enc) ?? ''; break;
      case 's': f = (m) => encodeBytes(m.rawValue, enc) ?? ''; break;
      case 'K': f = (m) => String(m.rawKey?.length ?? -1); break;
      case 'S': f = (m) => String(m.rawValue?.length ?? -1); break;
      case 'h': f = (m) => m.headers.map((h) => `${h.key}=${encodeBytes(h.value, enc) ?? ''}`).join(','); break;
      case '%': lit += '%'; continue;
      default: throw new CliError(`--format: unknown token %${n}`, 'tokens: %t %p %o %T %k %s %K %S %h %%', 2);
    }
    if (lit !== '') parts.push(lit);
    lit = '';
    parts.push(f);
  }
  if (lit !== '') parts.push(lit);
  return (m) => {
    let s = '';
    for (const p of parts) s += typeof p === 'string' ? p : p(m);
    return s;
  };
}

export function messageJson(m: ConsumerMessage, enc: Encoding): Record<string, unknown> {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    timestamp: m.timestamp,
    key: encodeBytes(m.rawKey, enc),
    value: encodeBytes(m.rawValue, enc),
    headers: Object.fromEntries(m.headers.map((h) => [h.key, encodeBytes(h.value, enc)])),
  };
}

export async function consumeCommand(argv: string[]): Promise<number> {
  const p = parse(argv, OPTIONS, CONSUME_HELP);
  if (p === null) return 0;
  const v = p.values;
  const topic = v.topic ?? p.positionals[0];
  if (topic === undefined || p.positionals.length > (v.topic ? 0 : 1)) throw usage('consume needs one TOPIC', 'consume');
  const enc = encodingArg(v.encoding);
  const maxMessages = int(v['max-messages'], '--max-messages', { min: 1 });
  const timeoutMs = int(v['timeout-ms'], '--timeout-ms', { min: 1 });
  const offset = int(v.offset, '--offset');
  const timestamp = v.timestamp !== undefined ? timestampArg(v.timestamp, '--timestamp') : undefined;
  const only = (v.partition ?? []).map((x) => int(x, '--partition', { min: 0 })!);
  const starts = [v['from-beginning'], v['from-end'], offset !== undefined, timestamp !== undefined].filter(Boolean).length;
  if (starts > 1) throw usage('give at most one of --from-beginning, --from-end, --offset, --timestamp', 'consume');
  if (offset !== undefined && only.length === 0) throw usage('--offset needs --partition', 'consume');
  if (v.group !== undefined && (offset !== undefined || timestamp !== undefined || only.length > 0)) {
    throw new CliError('--group cannot be combined with --offset, --timestamp or --partition', "move a group's position with 'strand groups reset-offsets', or consume without --group", 2);
  }
  const render = v.json
    ? (m: ConsumerMessage) => JSON.stringify(messageJson(m, enc)) + '\n'
    : v.format !== undefined
      ? compileFormat(v.format, enc)
      : v['print-key']
        ? (m: ConsumerMessage) => `${encodeBytes(m.rawKey, enc) ?? ''}\t${encodeBytes(m.rawValue, enc) ?? ''}\n`
        : (m: ConsumerMessage) => (encodeBytes(m.rawValue, enc) ?? '') + '\n';

  const count = await checkTopic(v, topic, only.length > 0 ? Math.max(...only) : undefined);
  const partitions = only.length > 0 ? [...new Set(only)] : Array.from({ length: count }, (_, i) => i);

  // Where each partition starts and (without --follow) where it ends.
  const startAt = new Map<number, number>();
  const endAt = new Map<number, number>();
  await withAdmin(v, async (admin) => {
    const [earliest, latest] = await Promise.all([admin.listOffsets(topic, 'earliest', partitions), admin.listOffsets(topic, 'latest', partitions)]);
    for (const e of latest) endAt.set(e.partition, e.offset);
    const lo = new Map(earliest.map((e) => [e.partition, e.offset]));
    if (v.group !== undefined) {
      const committed = await admin.fetchOffsets(v.group, [topic]);
      for (const pt of partitions) {
        const c = committed.find((x) => x.partition === pt)?.offset ?? -1;
        startAt.set(pt, c >= 0 ? c : v['from-beginning'] ? lo.get(pt)! : endAt.get(pt)!);
      }
    } else if (timestamp !== undefined) {
      for (const o of await admin.listOffsets(topic, { timestamp }, partitions)) startAt.set(o.partition, o.offset >= 0 ? o.offset : endAt.get(o.partition)!);
    } else {
      for (const pt of partitions) {
        const end = endAt.get(pt)!;
        const begin = lo.get(pt)!;
        startAt.set(pt, offset !== undefined ? (offset >= 0 ? offset : Math.max(begin, end + offset)) : v['from-end'] ? end : begin);
      }
    }
  });
  if (offset !== undefined && offset >= 0) {
    for (const pt of partitions) {
      const end = endAt.get(pt)!;
      if (offset > end) throw new CliError(`offset ${offset} is past the end of ${topic}-${pt} (${end})`, "'strand topics describe' shows each partition's earliest and latest offsets");
    }
  }

  const kafka = kafkaFor(v);
  // With a group, commits are the command's own (exactly what was printed, even when
  // --max-messages cuts a batch): every 5 s and on exit.
  const consumer =
    v.group !== undefined
      ? kafka.consumer({ groupId: v.group, autoOffsetReset: v['from-beginning'] ? 'earliest' : 'latest', isolationLevel: 'read_uncommitted', maxWaitMs: 200, commit: 'manual', commitOnRevoke: false })
      : kafka.consumer({ isolationLevel: 'read_uncommitted', maxWaitMs: 200 });
  if (v.group !== undefined) consumer.subscribe(topic);
  else consumer.assign(partitions.map((pt) => ({ topic, partition: pt, offset: startAt.get(pt)! })));

  // Next offset per partition (one past the last record printed), to know when every partition
  // reached its end and what to commit.
  const next = new Map(startAt);
  const dirty = new Set<number>();
  const finished = (): boolean => !v.follow && partitions.every((pt) => next.get(pt)! >= endAt.get(pt)!);
  // On exit every assigned partition's position is committed (as Kafka's consumer does), so the
  // group's lag covers partitions it has not read from yet.
  const commit = async (all = false): Promise<void> => {
    if (v.group === undefined || (dirty.size === 0 && !all)) return;
    const assigned = new Set(consumer.assignment().map((a) => a.partition));
    const offsets = [...(all ? assigned : dirty)].filter((pt) => assigned.has(pt) && next.has(pt)).map((pt) => ({ topic, partition: pt, offset: next.get(pt)! }));
    dirty.clear();
    if (offsets.length > 0) await consumer.commitOffsets(offsets);
  };
  let received = 0;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  let failure: unknown = null;
  let lastRecord = Date.now();
  const onSignal = (): void => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.stdout.on('error', () => stop()); // a closed pipe (| head) ends consumption quietly
  let ticker: NodeJS.Timeout | undefined;
  let committer: NodeJS.Timeout | undefined;
  try {
    if (finished()) return 0;
    await consumer.run({
      eachBatch: async ({ batch }) => {
        let text = '';
        for (const m of batch.messages) {
          if (maxMessages !== undefined && received >= maxMessages) break;
          text += render(m as ConsumerMessage);
          received++;
          next.set(m.partition, m.offset + 1);
          dirty.add(m.partition);
        }
        lastRecord = Date.now();
        if (text !== '') await out(text);
        if ((maxMessages !== undefined && received >= maxMessages) || finished()) stop();
      },
    });
    // Control records (transaction markers) occupy offsets no message shows: without --follow,
    // also stop once nothing has arrived for a while.
    const idleMs = v.follow ? timeoutMs : (timeoutMs ?? 1500);
    ticker = setInterval(() => {
      if (finished() || (idleMs !== undefined && Date.now() - lastRecord > idleMs)) stop();
    }, 100);
    if (v.group !== undefined) committer = setInterval(() => void commit().catch(() => {}), 5000);
    consumer.done().then(stop, (e: unknown) => {
      failure = e;
      stop();
    });
    await stopped;
    if (failure !== null) throw failure;
    await commit(true);
  } finally {
    clearInterval(ticker);
    clearInterval(committer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await consumer.close().catch(() => {});
  }
  if (process.stderr.isTTY && !v.follow) process.stderr.write(`${received} record${received === 1 ? '' : 's'}\n`);
  return 0;
}
