/**
 * Shared by the consumer-group interop tests (groups-*.test.ts): reading the group coordinator's
 * rebalance log lines out of a broker's output, checking that an assignment partitions a topic,
 * and running group members as child processes (a KafkaJS consumer, a confluent-kafka-python
 * consumer) that report what they are assigned and what they read as JSON lines on stdout.
 *
 * Members are told apart by client id: Strand (like Kafka) makes a member id
 * `<group.instance.id or client.id>-<uuid>`, so `memberIdOf(name)` finds a member in the log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { SYSTEM_PYTHON, requireTool } from './helpers.js';

/** The package root (dist/test/interop → ../../..), where `require('kafkajs')` resolves. */
export const REPO_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

export interface CoordinatorEvent {
  message: string;
  fields: Record<string, string>;
  line: string;
}

/** The `[strand.group-coordinator]` lines about `groupId`, in order, with their key=value fields. */
export function coordinatorEvents(output: string, groupId: string): CoordinatorEvent[] {
  const events: CoordinatorEvent[] = [];
  for (const line of output.split('\n')) {
    const at = line.indexOf('[strand.group-coordinator] ');
    if (at < 0) continue;
    const rest = line.slice(at + '[strand.group-coordinator] '.length);
    const re = / ([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)/g;
    const first = rest.search(/ [\w.]+=/);
    const message = first < 0 ? rest : rest.slice(0, first);
    const fields: Record<string, string> = {};
    for (const m of rest.slice(message.length).matchAll(re)) fields[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    if (fields['group'] === groupId) events.push({ message, fields, line });
  }
  return events;
}

export interface StableGeneration {
  generation: number;
  leader: string;
  /** member id → partitions of the topic it was assigned (sorted). */
  assignment: Map<string, number[]>;
  line: string;
}

/** Every "group is stable" line of the group: the generation and who got which partitions of `topic`. */
export function stableGenerations(output: string, groupId: string, topic: string): StableGeneration[] {
  return coordinatorEvents(output, groupId)
    .filter((e) => e.message === 'group is stable')
    .map((e) => {
      const assignment = new Map<string, number[]>();
      for (const part of (e.fields['assignment'] ?? '').split('; ')) {
        if (part === '') continue;
        const eq = part.indexOf('=');
        const member = part.slice(0, eq);
        const partitions: number[] = [];
        for (const m of part.slice(eq + 1).matchAll(/([^\s[]+)\[([\d ]*)\]/g)) {
          if (m[1] === topic) partitions.push(...m[2]!.split(' ').filter((x) => x !== '').map(Number));
        }
        assignment.set(member, partitions.sort((a, b) => a - b));
      }
      return { generation: Number(e.fields['generation']), leader: e.fields['leader'] ?? '', assignment, line: e.line };
    });
}

/** Asserts that the assignments are disjoint and together own partitions 0..n-1. */
export function assertPartitioned(assignment: ReadonlyMap<string, readonly number[]>, n: number, what = 'assignment'): void {
  const all = [...assignment.values()].flat().sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: n }, (_, i) => i), `${what}: partitions must be owned exactly once: ${JSON.stringify([...assignment])}`);
}

/** The member id in `ids` that was made for client (or instance) id `name`. */
export function memberIdOf(ids: Iterable<string>, name: string): string | undefined {
  for (const id of ids) if (id.startsWith(`${name}-`)) return id;
  return undefined;
}

/** A child process that prints one JSON object per line. */
export class JsonLinesProcess {
  readonly events: Array<Record<string, any>> = [];
  private stderr = '';
  private stdout = '';
  private partial = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    timeoutMs: number,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop() ?? '';
      for (const p of parts) {
        if (p.trim() === '') continue;
        try {
          this.events.push(JSON.parse(p) as Record<string, any>);
        } catch {
          this.events.push({ e: 'unparsed', line: p });
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    this.exited = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        clearTimeout(this.timer);
        resolve({ code, signal });
      }),
    );
  }

  of(e: string): Array<Record<string, any>> {
    return this.events.filter((x) => x['e'] === e);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (the member closes cleanly), and wait for the exit. */
  async terminate(): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    await this.exited;
  }

  describe(): string {
    return `--- ${this.name} stdout ---\n${this.stdout.slice(-4000)}\n--- ${this.name} stderr ---\n${this.stderr.slice(-4000)}`;
  }
}

/**
 * A KafkaJS group member in its own node process (so it can be SIGKILLed). Client id CLIENT_ID;
 * it commits each record's offset + 1 after reading it, except records whose value starts with
 * "nocommit" (read, printed, never committed). Prints {e:'join', memberId, p} on every
 * assignment and {e:'msg', p, o, v} per record (after its commit).
 */
const KAFKAJS_MEMBER = `
const { Kafka, logLevel } = require('kafkajs');
const env = process.env;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const kafka = new Kafka({ clientId: env.CLIENT_ID, brokers: [env.BOOTSTRAP], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100 } });
const consumer = kafka.consumer({ groupId: env.GROUP, sessionTimeout: Number(env.SESSION_MS), rebalanceTimeout: 10000, heartbeatInterval: 300, maxWaitTimeInMs: 100 });
consumer.on(consumer.events.GROUP_JOIN, (e) => out({ e: 'join', memberId: e.payload.memberId, p: (e.payload.memberAssignment[env.TOPIC] || []).slice().sort((a, b) => a - b) }));
(async () => {
  await consumer.connect();
  await consumer.subscribe({ topics: [env.TOPIC], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const v = message.value.toString();
      if (!v.startsWith('nocommit')) await consumer.commitOffsets([{ topic: env.TOPIC, partition, offset: String(Number(message.offset) + 1) }]);
      out({ e: 'msg', p: partition, o: Number(message.offset), v });
    },
  });
  out({ e: 'running' });
})().catch((e) => { out({ e: 'error', error: String(e && e.stack || e) }); process.exit(1); });
`;

export function spawnKafkaJsMember(name: string, env: { BOOTSTRAP: string; TOPIC: string; GROUP: string; SESSION_MS: number }, timeoutMs = 120000): JsonLinesProcess {
  requireTool('kafkajs');
  const child = spawn(process.execPath, ['-e', KAFKAJS_MEMBER], {
    cwd: REPO_ROOT,
    env: { ...process.env, CLIENT_ID: name, BOOTSTRAP: env.BOOTSTRAP, TOPIC: env.TOPIC, GROUP: env.GROUP, SESSION_MS: String(env.SESSION_MS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new JsonLinesProcess(name, child, timeoutMs);
}

/**
 * A confluent-kafka-python (librdkafka) group member in its own process, client id NAME.
 * Reads with consume(), commits synchronously after each batch (with NOCOMMIT, not batches of
 * records whose value starts with "nocommit"), prints {e:'assign'|'revoke', p} from its rebalance callbacks (incremental
 * under cooperative-sticky), {e:'msgs', r:[[p, o, v]...], committed} per batch, {e:'error', ...}
 * for errors (a fenced static member gets a fatal one and exits). SIGTERM closes it cleanly.
 */
const RDKAFKA_MEMBER = `
import os, sys, json, signal
from confluent_kafka import Consumer, KafkaError, KafkaException
env = os.environ
def out(**kw): print(json.dumps(kw), flush=True)
stop = [False]
def on_term(*a): stop[0] = True
signal.signal(signal.SIGTERM, on_term)
conf = {'bootstrap.servers': env['BOOTSTRAP'], 'group.id': env['GROUP'], 'client.id': env['NAME'], 'auto.offset.reset': 'earliest',
        'enable.auto.commit': False, 'session.timeout.ms': int(env['SESSION_MS']), 'heartbeat.interval.ms': 300,
        'partition.assignment.strategy': env.get('STRATEGY', 'range'), 'fetch.wait.max.ms': 100,
        'error_cb': lambda err: on_error(err)}
fatal = [False]
def on_error(err):
    # librdkafka reports a fatal error (e.g. a fenced static member) as _FATAL, with fatal() false.
    is_fatal = err.fatal() or err.code() == KafkaError._FATAL
    fatal[0] = fatal[0] or is_fatal
    out(e='error', code=err.code(), name=err.name(), fatal=is_fatal, str=err.str())
if env.get('INSTANCE'): conf['group.instance.id'] = env['INSTANCE']
NOCOMMIT = env.get('NOCOMMIT') == '1'
c = Consumer(conf)
def on_assign(c, ps): out(e='assign', p=sorted(p.partition for p in ps))
def on_revoke(c, ps): out(e='revoke', p=sorted(p.partition for p in ps))
c.subscribe([env['TOPIC']], on_assign=on_assign, on_revoke=on_revoke)
out(e='started')
while not stop[0] and not fatal[0]:
    got = []
    commit = False
    for m in c.consume(num_messages=100, timeout=0.2):
        if m.error():
            on_error(m.error())
            continue
        v = m.value().decode()
        got.append([m.partition(), m.offset(), v])
        commit = commit or not (NOCOMMIT and v.startswith('nocommit'))
    if got:
        ok = False
        if commit:
            try:
                c.commit(asynchronous=False); ok = True
            except KafkaException as ex:
                out(e='commit-error', str=str(ex))
        out(e='msgs', r=got, committed=ok)
try:
    c.close()
except Exception as ex:
    out(e='close-error', str=str(ex))
out(e='closed')
`;

export interface RdkafkaMemberEnv {
  BOOTSTRAP: string;
  TOPIC: string;
  GROUP: string;
  SESSION_MS: number;
  STRATEGY?: 'range' | 'roundrobin' | 'cooperative-sticky';
  INSTANCE?: string;
  NOCOMMIT?: boolean;
}

export function spawnRdkafkaMember(name: string, env: RdkafkaMemberEnv, timeoutMs = 120000): JsonLinesProcess {
  requireTool('confluent-kafka');
  const vars: Record<string, string> = { NAME: name, BOOTSTRAP: env.BOOTSTRAP, TOPIC: env.TOPIC, GROUP: env.GROUP, SESSION_MS: String(env.SESSION_MS) };
  if (env.STRATEGY !== undefined) vars['STRATEGY'] = env.STRATEGY;
  if (env.INSTANCE !== undefined) vars['INSTANCE'] = env.INSTANCE;
  if (env.NOCOMMIT === true) vars['NOCOMMIT'] = '1';
  const child = spawn(SYSTEM_PYTHON, ['-c', RDKAFKA_MEMBER], {
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new JsonLinesProcess(name, child, timeoutMs);
}

/** Records a python member read: [partition, offset, value] per record, in order. */
export function rdkafkaRecords(p: JsonLinesProcess): Array<[number, number, string]> {
  return p.of('msgs').flatMap((x) => x['r'] as Array<[number, number, string]>);
}

/** What a librdkafka member owns now: assigns minus revokes, replayed in order. */
export function rdkafkaOwned(p: JsonLinesProcess): number[] {
  const owned = new Set<number>();
  for (const x of p.events) {
    if (x['e'] === 'assign') for (const q of x['p'] as number[]) owned.add(q);
    if (x['e'] === 'revoke') for (const q of x['p'] as number[]) owned.delete(q);
  }
  return [...owned].sort((a, b) => a - b);
}
