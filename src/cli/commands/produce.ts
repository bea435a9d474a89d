/**
 * `strand produce TOPIC`: one record per input line (stdin or --file), like
 * kafka-console-producer.sh and `kcat -P`, through Strand's producer.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseCompressionName, type CompressionName } from '../../protocol/compression.js';
import type { Acks, ProducerRecord } from '../../client/producer.js';
import { COMMON_HELP, CliError, decodeText, encodingArg, formatRate, int, kafkaFor, keyValues, parse, printJson, usage, withAdmin } from '../common.js';

export const PRODUCE_HELP = `Usage: strand produce TOPIC [options] < lines

Writes one record per line of stdin (or --file). Each line is the value, or KEY<sep>VALUE with
--key-separator. Large inputs show a progress line with records/s on stderr.

Options:
  -f, --file FILE               read lines from FILE instead of stdin
  -K, --key-separator SEP       split each line at the first SEP into key and value (no SEP: null key)
  -H, --header KEY=VALUE        add a header to every record (repeatable)
  -p, --partition N             write to partition N (default: by key with murmur2, like the Java client)
  -z, --compression CODEC       none, gzip, snappy, lz4, zstd (default none)
      --acks ACKS               0, 1, all / -1 (default all)
      --linger-ms MS            how long a batch waits for more records (default 5)
  -e, --encoding ENC            utf8 (default), base64 or hex: keys and values are decoded from it (binary-safe)
      --null-value STR          a value equal to STR is sent as null (a tombstone)
  -q, --quiet                   no progress or summary on stderr
${COMMON_HELP}

Examples:
  printf 'k1:hello\\nk2:world\\n' | strand produce greetings -K:
  strand produce orders --file orders.jsonl -z zstd -H source=import
  strand produce blobs -e base64 < values.b64`;

const OPTIONS = {
  topic: { type: 'string', short: 't' },
  file: { type: 'string', short: 'f' },
  'key-separator': { type: 'string', short: 'K' },
  header: { type: 'string', short: 'H', multiple: true },
  partition: { type: 'string', short: 'p' },
  compression: { type: 'string', short: 'z' },
  acks: { type: 'string' },
  'linger-ms': { type: 'string' },
  encoding: { type: 'string', short: 'e' },
  'null-value': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

export function acksArg(v: string | undefined): Acks {
  if (v === undefined || v === 'all' || v === '-1') return -1;
  if (v === '0') return 0;
  if (v === '1') return 1;
  throw new CliError(`--acks expects 0, 1 or all, got '${v}'`, null, 2);
}

export function compressionArg(v: string | undefined): CompressionName {
  if (v === undefined) return 'none';
  if (parseCompressionName(v) === undefined) throw new CliError(`--compression expects none, gzip, snappy, lz4 or zstd, got '${v}'`, null, 2);
  return v as CompressionName;
}

/** Records per sendBatch call and how many calls may be unacknowledged at once. */
const CHUNK = 1000;
const IN_FLIGHT = 16;

export async function produceCommand(argv: string[]): Promise<number> {
  const p = parse(argv, OPTIONS, PRODUCE_HELP);
  if (p === null) return 0;
  const v = p.values;
  const topic = v.topic ?? p.positionals[0];
  if (topic === undefined || p.positionals.length > (v.topic ? 0 : 1)) throw usage('produce needs one TOPIC', 'produce');
  const partition = int(v.partition, '--partition', { min: 0 });
  const encoding = encodingArg(v.encoding);
  const sep = v['key-separator'];
  if (sep === '') throw usage('--key-separator must not be empty', 'produce');
  const headers = Object.entries(keyValues(v.header, '--header'));
  const nullValue = v['null-value'];
  const producer = kafkaFor(v).producer({
    acks: acksArg(v.acks),
    compression: compressionArg(v.compression),
    lingerMs: int(v['linger-ms'], '--linger-ms', { min: 0 }) ?? 5,
    idempotent: false,
    allowAutoTopicCreation: false,
  });
  const input = v.file !== undefined ? createReadStream(v.file) : process.stdin;
  if (v.file !== undefined) await new Promise<void>((resolve, reject) => (input.once('open', () => resolve()), input.once('error', reject)));
  input.pause();

  const started = Date.now();
  let sent = 0;
  let bytes = 0;
  let progressShown = false;
  let lastProgress = started;
  const progress = (final: boolean): void => {
    const now = Date.now();
    const secs = Math.max(0.001, (now - started) / 1000);
    const line = `${final ? 'produced' : 'producing:'} ${sent} records, ${(bytes / 1048576).toFixed(1)} MiB in ${secs.toFixed(1)} s (${formatRate(sent / secs)} records/s)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${final ? '\n' : ''}`);
    else process.stderr.write(line + '\n');
  };
  const pending: Array<Promise<unknown>> = [];
  let chunk: ProducerRecord<Buffer | null, Buffer | null>[] = [];
  const flushChunk = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const c = chunk;
    chunk = [];
    const sending = producer.sendBatch(c);
    sending.catch(() => {}); // awaited below; never unhandled
    pending.push(sending);
    if (pending.length >= IN_FLIGHT) await pending.shift();
  };
  try {
    // The topic must exist: say so clearly instead of letting the producer retry until its timeout.
    await checkTopic(v, topic, partition);
    await producer.connect();
    // Created only now: readline drops lines (and its close) emitted before iteration starts.
    const lines = createInterface({ input, crlfDelay: Infinity });
    for await (const line of lines) {
      let key: Buffer | null = null;
      let text = line;
      if (sep !== undefined) {
        const at = line.indexOf(sep);
        if (at >= 0) {
          key = decodeText(line.slice(0, at), encoding);
          text = line.slice(at + sep.length);
        }
      }
      const value = nullValue !== undefined && text === nullValue ? null : decodeText(text, encoding);
      bytes += (key?.length ?? 0) + (value?.length ?? 0);
      chunk.push({ topic, key, value, partition, headers: headers.length > 0 ? headers : undefined });
      sent++;
      if (chunk.length >= CHUNK) await flushChunk();
      if (!v.quiet && !v.json && Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        progressShown = true;
        progress(false);
      }
    }
    await flushChunk();
    await Promise.all(pending);
    await producer.flush();
  } finally {
    await producer.close().catch(() => {});
  }
  if (v.json) printJson({ topic, records: sent, bytes, seconds: (Date.now() - started) / 1000 });
  else if (progressShown) progress(true);
  return 0;
}

/** Fails with UNKNOWN_TOPIC_OR_PARTITION (and a hint) unless `topic` (and `partition`) exist; returns the partition count. */
export async function checkTopic(v: { 'bootstrap-server'?: string }, topic: string, partition?: number): Promise<number> {
  const [d] = await withAdmin(v, (admin) => admin.describeTopics([topic]));
  const n = d!.partitions.length;
  if (partition !== undefined && partition >= n) throw new CliError(`topic ${topic} has ${n} partition${n === 1 ? '' : 's'} (0..${n - 1}), there is no partition ${partition}`);
  return n;
}
