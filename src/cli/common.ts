/**
 * What every client-side `strand` command shares: argument parsing (node:util parseArgs, strict,
 * `--help` and `--bootstrap-server` everywhere), a client for the cluster (Strand's own client,
 * nothing else), human tables or `--json`, and errors that name the Kafka error and say what to do.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { Kafka, type KafkaOptions } from '../client/kafka.js';
import { parseProperties } from '../broker/config.js';
import type { Admin } from '../client/admin.js';
import { StrandError } from '../client/errors.js';

export const DEFAULT_BOOTSTRAP = '127.0.0.1:9092';

/** An error the user can fix: printed as `strand: <message>` (plus a hint), exit code `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint: string | null = null,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error (bad flag combination, missing argument): exit code 2. */
export function usage(message: string, command: string): CliError {
  return new CliError(message, `run 'strand ${command} --help' for the options`, 2);
}

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS = {
  'bootstrap-server': { type: 'string', short: 'b' },
  'command-config': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export const COMMON_HELP = `Common options:
  -b, --bootstrap-server HOST:PORT[,...]  brokers to connect to (default ${DEFAULT_BOOTSTRAP}, or $STRAND_BOOTSTRAP_SERVER)
      --command-config FILE                client security settings, Kafka properties (or $STRAND_COMMAND_CONFIG):
                                           security.protocol, ssl.truststore.location, ssl.keystore.location,
                                           ssl.key.password, sasl.mechanism, sasl.jaas.config (docs/SECURITY.md)
      --json                               machine-readable output
  -h, --help                               show this help`;

export interface Parsed<O extends Options> {
  values: { [K in keyof (O & typeof COMMON_OPTIONS)]?: (O & typeof COMMON_OPTIONS)[K] extends { type: 'boolean'; multiple: true } ? boolean[] : (O & typeof COMMON_OPTIONS)[K] extends { type: 'string'; multiple: true } ? string[] : (O & typeof COMMON_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string };
  positionals: string[];
}

/** Parses `argv`; returns null after printing `help` when --help was given. */
export function parse<O extends Options>(argv: string[], options: O, help: string): Parsed<O> | null {
  const all: Options = { ...COMMON_OPTIONS, ...options };
  // parseArgs takes `--shift-by -5` as two flags: join a negative number to its string option.
  const takesValue = new Set(Object.entries(all).flatMap(([name, o]) => (o.type === 'string' ? [`--${name}`, ...(o.short ? [`-${o.short}`] : [])] : [])));
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (takesValue.has(a) && next !== undefined && /^-\d/.test(next)) {
      args.push(`${a.startsWith('--') ? a + '=' : a}${next}`);
      i++;
    } else args.push(a);
  }
  const { values, positionals } = parseArgs({ args, options: all, allowPositionals: true, strict: true });
  if ((values as Record<string, unknown>)['help']) {
    console.log(help);
    return null;
  }
  return { values: values as unknown as Parsed<O>['values'], positionals };
}

export function bootstrapOf(values: { 'bootstrap-server'?: string }): string[] {
  const s = values['bootstrap-server'] ?? process.env['STRAND_BOOTSTRAP_SERVER'] ?? DEFAULT_BOOTSTRAP;
  const list = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const b of list) if (!/^(\[[^\]]+\]|[^:]+):\d+$/.test(b)) throw new CliError(`--bootstrap-server expects HOST:PORT, got '${b}'`, null, 2);
  return list;
}

type ClientValues = { 'bootstrap-server'?: string; 'command-config'?: string };

/**
 * TLS and SASL settings from a Kafka-style client properties file (`--command-config`, as Kafka's
 * tools take it): `security.protocol`; PEM files for `ssl.truststore.location` and
 * `ssl.keystore.location` (key and certificate chain), `ssl.key.password`,
 * `ssl.endpoint.identification.algorithm=` (empty: no host name check); `sasl.mechanism` with
 * `sasl.jaas.config` (`... username="u" password="p";`) or `sasl.username` / `sasl.password`.
 */
export function securityFromProperties(text: string, source: string): Pick<KafkaOptions, 'ssl' | 'sasl'> {
  const props = parseProperties(text);
  const protocol = props.get('security.protocol') ?? 'PLAINTEXT';
  if (!['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(protocol)) throw new CliError(`${source}: security.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got '${protocol}'`, null, 2);
  const out: Pick<KafkaOptions, 'ssl' | 'sasl'> = {};
  const read = (key: string): string => {
    try {
      return readFileSync(props.get(key)!, 'utf8');
    } catch (e) {
      throw new CliError(`${source}: cannot read ${key} ${props.get(key)}: ${(e as Error).message}`, null, 2);
    }
  };
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const tls: Exclude<KafkaOptions['ssl'], boolean | undefined> = {};
    if (props.has('ssl.truststore.location')) tls.ca = read('ssl.truststore.location');
    if (props.has('ssl.keystore.location')) {
      const pem = read('ssl.keystore.location');
      tls.key = pem;
      tls.cert = pem;
    }
    if (props.has('ssl.key.password')) tls.passphrase = props.get('ssl.key.password')!;
    if (props.get('ssl.endpoint.identification.algorithm') === '') tls.checkServerIdentity = () => undefined;
    out.ssl = tls;
  }
  if (protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') {
    const mechanism = props.get('sasl.mechanism') ?? 'PLAIN';
    if (mechanism !== 'PLAIN' && mechanism !== 'SCRAM-SHA-256' && mechanism !== 'SCRAM-SHA-512') throw new CliError(`${source}: sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got '${mechanism}'`, null, 2);
    const jaas = props.get('sasl.jaas.config') ?? '';
    const quoted = (name: string): string | undefined => new RegExp(`${name}\\s*=\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(jaas)?.[1]?.replace(/\\(.)/g, '$1');
    const username = props.get('sasl.username') ?? quoted('username');
    const password = props.get('sasl.password') ?? quoted('password');
    if (username === undefined || password === undefined) throw new CliError(`${source}: SASL needs sasl.jaas.config with username="..." password="..." (or sasl.username and sasl.password)`, null, 2);
    out.sasl = { mechanism, username, password };
  }
  return out;
}

/** The TLS and SASL settings of `--command-config` (or $STRAND_COMMAND_CONFIG); none without it. */
export function securityFor(values: ClientValues): Pick<KafkaOptions, 'ssl' | 'sasl'> {
  const file = values['command-config'] ?? process.env['STRAND_COMMAND_CONFIG'];
  if (file === undefined || file === '') return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read --command-config ${file}: ${(e as Error).message}`, null, 2);
  }
  return securityFromProperties(text, file);
}

/** A Kafka client for a command: short retries so an unreachable cluster fails in seconds, not minutes. */
export function kafkaFor(values: ClientValues): Kafka {
  const security = securityFor(values);
  return new Kafka({ brokers: bootstrapOf(values), clientId: 'strand-cli', connectTimeoutMs: 5000, retry: { retries: 3, initialRetryTimeMs: 100, maxRetryTimeMs: 1000 }, ...security });
}

/** Runs `fn` with a connected admin client, closing it afterwards. */
export async function withAdmin<T>(values: ClientValues, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaFor(values).admin();
  try {
    await admin.connect();
    return await fn(admin);
  } finally {
    await admin.close().catch(() => {});
  }
}

export function int(value: string | undefined, flag: string, opts: { min?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new CliError(`${flag} expects an integer, got '${value}'`, null, 2);
  const n = Number(value);
  if (opts.min !== undefined && n < opts.min) throw new CliError(`${flag} must be at least ${opts.min}, got ${n}`, null, 2);
  return n;
}

/** `k=v` pairs (repeatable flags) into a record. */
export function keyValues(list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CliError(`${flag} expects KEY=VALUE, got '${kv}'`, null, 2);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** A timestamp flag: ISO-8601 (2024-05-01T12:00:00Z, 2024-05-01) or epoch milliseconds. */
export function timestampArg(value: string, flag: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new CliError(`${flag} expects an ISO-8601 date-time (2024-05-01T12:00:00Z) or epoch milliseconds, got '${value}'`, null, 2);
  return t;
}

/** `topic` or `topic:0,1,2` (kafka-consumer-groups' syntax). */
export function topicPartitions(spec: string): { topic: string; partitions: number[] | undefined } {
  const colon = spec.lastIndexOf(':');
  if (colon <= 0) return { topic: spec, partitions: undefined };
  const parts = spec.slice(colon + 1).split(',').map((p) => int(p, `partition list of '${spec}'`, { min: 0 })!);
  return { topic: spec.slice(0, colon), partitions: parts };
}

// ------------------------------------------------------------------------------------- output

export type Cell = string | number | boolean | null | undefined;

/** An aligned text table; numbers are right-aligned. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.some((r) => typeof r[i] === 'number') && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 && !numeric[i] ? c : numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)].join('\n');
}

export function printJson(v: unknown): void {
  console.log(JSON.stringify(v, null, 2));
}

// ------------------------------------------------------------------------------------- errors

/** What to do about a Kafka error, by its name. */
const HINTS: Record<string, string> = {
  UNKNOWN_TOPIC_OR_PARTITION: "the topic or partition does not exist: check the name with 'strand topics list'",
  TOPIC_ALREADY_EXISTS: "pick another name, or pass --if-not-exists; 'strand topics describe' shows the existing topic",
  INVALID_PARTITIONS: 'the partition count must be at least 1 (and, when adding partitions, more than the current count)',
  INVALID_REPLICATION_FACTOR: 'a single-broker cluster needs --replication-factor 1 (or leave it out for the broker default)',
  INVALID_CONFIG: "check the config name and value (Kafka's topic config names: retention.ms, cleanup.policy, ...)",
  INVALID_TOPIC_EXCEPTION: 'topic names use letters, digits, ".", "_" and "-", at most 249 characters',
  POLICY_VIOLATION: 'the broker refused the request by policy',
  GROUP_ID_NOT_FOUND: "the group does not exist: 'strand groups list' shows the groups",
  NON_EMPTY_GROUP: "the group still has active members: stop its consumers (or wait for their session timeout) and retry",
  GROUP_SUBSCRIBED_TO_TOPIC: 'the group is consuming that topic: stop its consumers first',
  COORDINATOR_NOT_AVAILABLE: 'the group coordinator is starting or moving: retry in a moment',
  COORDINATOR_LOAD_IN_PROGRESS: 'the group coordinator is loading: retry in a moment',
  NOT_COORDINATOR: 'the group coordinator moved: retry',
  OFFSET_OUT_OF_RANGE: "the offset is outside the partition's log: 'strand topics describe' shows the earliest and latest offsets",
  MESSAGE_TOO_LARGE: 'the record is bigger than the topic allows (max.message.bytes): raise it with topics alter-config',
  RECORD_LIST_TOO_LARGE: 'the batch is bigger than the topic allows (max.message.bytes)',
  UNSUPPORTED_VERSION: 'the broker does not support this operation',
  UNSUPPORTED_COMPRESSION_TYPE: 'use one of none, gzip, snappy, lz4, zstd',
  NETWORK_EXCEPTION: 'is a broker running there? pass --bootstrap-server HOST:PORT (or set STRAND_BOOTSTRAP_SERVER)',
  REQUEST_TIMEOUT: 'the broker did not answer in time: check that it is running and reachable',
  BUFFER_FULL: 'the producer could not keep up: retry with fewer records at once',
  DELIVERY_TIMEOUT: 'records were not acknowledged in time: check the broker',
  LEADER_NOT_AVAILABLE: 'the partition has no leader right now: retry in a moment',
  NOT_LEADER_OR_FOLLOWER: 'the partition leader moved: retry',
  KAFKA_STORAGE_ERROR: "the broker's disk failed for that partition: check the broker's log",
  TOPIC_AUTHORIZATION_FAILED: 'the principal is not allowed to use this topic',
  GROUP_AUTHORIZATION_FAILED: 'the principal is not allowed to use this group',
  CLUSTER_AUTHORIZATION_FAILED: 'the principal is not allowed to do this on the cluster',
};

/** Turns any error into the lines printed to stderr and an exit code; null for a bug (print the stack). */
export function describeError(e: unknown): { message: string; hint: string | null; exitCode: number } | null {
  if (e instanceof CliError) return { message: e.message, hint: e.hint, exitCode: e.exitCode };
  if (e instanceof StrandError) {
    const msg = e.message.startsWith(e.code) ? e.message : `${e.code}: ${e.message}`;
    return { message: msg, hint: HINTS[e.code] ?? (e.retriable ? 'the error is retriable: try again' : null), exitCode: 1 };
  }
  const errno = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) {
    const hint = errno === 'ECONNREFUSED' ? HINTS['NETWORK_EXCEPTION']! : errno === 'ENOENT' ? 'check the file name' : null;
    return { message: (e as Error).message, hint, exitCode: 1 };
  }
  return null;
}

// -------------------------------------------------------------------------------- byte encodings

export type Encoding = 'utf8' | 'base64' | 'hex';

export function encodingArg(value: string | undefined): Encoding {
  const v = value ?? 'utf8';
  if (v === 'utf8' || v === 'base64' || v === 'hex') return v;
  if (v === 'text' || v === 'utf-8') return 'utf8';
  throw new CliError(`--encoding expects utf8, base64 or hex, got '${v}'`, null, 2);
}

export function decodeText(s: string, enc: Encoding): Buffer {
  if (enc === 'utf8') return Buffer.from(s, 'utf8');
  // Node decodes leniently: refuse what is not valid in the chosen encoding.
  const ok = enc === 'hex' ? /^(?:[0-9a-fA-F]{2})*$/.test(s) : /^[A-Za-z0-9+/_-]*={0,2}$/.test(s) && s.replace(/=+$/, '').length % 4 !== 1;
  if (!ok) throw new CliError(`not valid ${enc}: '${s.length > 40 ? s.slice(0, 40) + '...' : s}'`, 'with --encoding, the key and the value of each line must be encoded that way');
  return Buffer.from(s, enc);
}

export function encodeBytes(b: Buffer | null, enc: Encoding): string | null {
  return b === null ? null : b.toString(enc);
}

/** Writes to stdout, waiting when its buffer is full. */
export async function out(s: string): Promise<void> {
  if (!process.stdout.write(s)) await new Promise<void>((r) => process.stdout.once('drain', r));
}

export function formatRate(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}
