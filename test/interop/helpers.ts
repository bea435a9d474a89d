/**
 * Shared plumbing for the interop tests: which real clients are installed, skipping (or, under CI,
 * failing) when one is missing, and running a client as a subprocess with a timeout.
 *
 * The real clients are Debian's `kcat` (librdkafka 2.0.2), `python3-confluent-kafka` 1.7.0 and
 * `python3-kafka` 2.0.2, plus KafkaJS from node_modules. The Debian Python modules are only visible
 * to /usr/bin/python3 (a pyenv `python3` first on PATH cannot import them), so that path is fixed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as m from '../../src/protocol/messages/index.js';
import { compressionOf, decodeRecordBatches, type RecordBatch } from '../../src/protocol/records.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { recordsInMemory } from '../../src/protocol/writer.js';
import assert from 'node:assert/strict';
import type { BrokerProcess } from '../../src/testing/broker-process.js';

export type Tool = 'kcat' | 'confluent-kafka' | 'kafka-python' | 'kafkajs';

/** The interpreter that sees Debian's dist-packages. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

const INSTALL_HINT: Record<Tool, string> = {
  kcat: 'kcat not installed (apt-get install kcat)',
  'confluent-kafka': `confluent_kafka not importable by ${SYSTEM_PYTHON} (apt-get install python3-confluent-kafka)`,
  'kafka-python': `kafka (kafka-python) not importable by ${SYSTEM_PYTHON} (apt-get install python3-kafka)`,
  kafkajs: 'kafkajs not installed (npm ci)',
};

const availability = new Map<Tool, boolean>();

function probe(tool: Tool): boolean {
  const quiet = { stdio: 'ignore' as const, timeout: 20000 };
  switch (tool) {
    case 'kcat':
      return spawnSync('kcat', ['-V'], quiet).status === 0;
    case 'confluent-kafka':
      return spawnSync(SYSTEM_PYTHON, ['-c', 'import confluent_kafka'], quiet).status === 0;
    case 'kafka-python':
      return spawnSync(SYSTEM_PYTHON, ['-c', 'import kafka'], quiet).status === 0;
    case 'kafkajs':
      try {
        createRequire(import.meta.url).resolve('kafkajs');
        return true;
      } catch {
        return false;
      }
  }
}

export function hasTool(tool: Tool): boolean {
  let ok = availability.get(tool);
  if (ok === undefined) {
    ok = probe(tool);
    availability.set(tool, ok);
  }
  return ok;
}

/** Under CI every client is installed by .ci/run, so a missing one is a failure, not a skip. */
export const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/**
 * Test options that skip when `tool` is missing: `test(name, { ...skipUnless('kcat'), timeout }, fn)`.
 * Under CI nothing is skipped; the test then fails in requireTool() with the same reason.
 */
export function skipUnless(...tools: Tool[]): { skip?: string } {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0 || IN_CI) return {};
  return { skip: missing.map((t) => INSTALL_HINT[t]).join('; ') };
}

/** Throws (fails the test) with the install hint when `tool` is missing. */
export function requireTool(tool: Tool): void {
  if (!hasTool(tool)) throw new Error(`${INSTALL_HINT[tool]}${IN_CI ? ' — CI must install every interop client' : ''}`);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
}

/** Runs a command to completion (or SIGKILL after timeoutMs), capturing stdout and stderr. Never rejects for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, durationMs: Date.now() - started });
    });
    child.stdin.on('error', () => {}); // the child may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** A one-line description of a finished command, for assertion messages. */
export function describeRun(what: string, r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exited ${r.code}`;
  return `${what} ${how} after ${r.durationMs} ms\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-3000)}`;
}

/** Runs kcat with `-b bootstrap` prepended; fails the test if kcat is missing. */
export function kcat(bootstrap: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  requireTool('kcat');
  return run('kcat', ['-b', bootstrap, ...args], { timeoutMs: 30000, ...opts });
}

/** Runs kcat and throws (with its output) unless it exits 0. */
export async function kcatOk(bootstrap: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await kcat(bootstrap, args, opts);
  if (r.code !== 0) throw new Error(describeRun(`kcat ${args.join(' ')}`, r));
  return r.stdout;
}

/**
 * Runs a Python script with /usr/bin/python3. The bootstrap address is passed as $BOOTSTRAP (plus any
 * `env`); `tool` is the module the script needs, checked first.
 */
export function python(tool: 'confluent-kafka' | 'kafka-python', script: string, bootstrap: string, opts: RunOptions = {}): Promise<RunResult> {
  requireTool(tool);
  return run(SYSTEM_PYTHON, ['-c', script], {
    timeoutMs: 60000,
    ...opts,
    env: { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', BOOTSTRAP: bootstrap, ...opts.env },
  });
}

/**
 * Runs a Python script whose last stdout line is a JSON document, and returns it parsed. Throws with
 * the script's output unless it exits 0.
 */
export async function pythonJson<T = any>(tool: 'confluent-kafka' | 'kafka-python', script: string, bootstrap: string, opts: RunOptions = {}): Promise<T> {
  const r = await python(tool, script, bootstrap, opts);
  if (r.code !== 0) throw new Error(describeRun(`python (${tool})`, r));
  const lines = r.stdout.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(describeRun(`python (${tool}) printed no JSON result`, r));
  }
}

/** A topic name unique to this process and call, so tests never see each other's data. */
let topicCounter = 0;
export function uniqueTopic(prefix: string): string {
  return `${prefix}-${process.pid}-${++topicCounter}`;
}

/** Polls `check` until it returns a value other than undefined, or throws after timeoutMs. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface FetchedRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Array<[string, string | null]>;
  /** Compression codec of the batch it came in (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). */
  codec: number;
}

/**
 * Reads a partition from `fromOffset` to its high watermark with our own Fetch (v11, by topic name)
 * and decodes the batches with decodeRecordBatches (CRCs verified): an independent check of what
 * a client stored, including the codec each batch was written with.
 */
export async function fetchAll(port: number, topic: string, partition: number, fromOffset = 0): Promise<{ batches: RecordBatch[]; records: FetchedRecord[]; highWatermark: number }> {
  const c = await ProtocolConnection.connect('127.0.0.1', port, 'strand-interop');
  try {
    const batches: RecordBatch[] = [];
    const records: FetchedRecord[] = [];
    let next = fromOffset;
    let highWatermark = -1;
    for (let round = 0; round < 10000; round++) {
      const resp = await c.send<m.FetchResponse>(m.ApiKey.Fetch, 11, {
        ...m.defaultFetchRequest(),
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 4 << 20,
        topics: [{ topic, topicId: m.defaultFetchRequestFetchTopic().topicId, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition, fetchOffset: next, partitionMaxBytes: 4 << 20 }] }],
      });
      if (resp.errorCode !== 0) throw new Error(`Fetch ${topic}-${partition}@${next}: top-level error ${resp.errorCode}`);
      const p = resp.responses[0]?.partitions[0];
      if (p === undefined) throw new Error(`Fetch ${topic}-${partition}@${next}: no partition in the response`);
      if (p.errorCode !== 0) throw new Error(`Fetch ${topic}-${partition}@${next}: error ${p.errorCode}`);
      highWatermark = p.highWatermark;
      const got = decodeRecordBatches(recordsInMemory(p.records) ?? Buffer.alloc(0));
      for (const b of got) {
        batches.push(b);
        for (const r of b.records) {
          const offset = b.header.baseOffset + r.offsetDelta;
          if (offset < next) continue; // the batch started before the fetch offset
          records.push({
            offset,
            timestamp: b.header.baseTimestamp + r.timestampDelta,
            key: r.key === null ? null : r.key.toString('utf8'),
            value: r.value === null ? null : r.value.toString('utf8'),
            headers: r.headers.map((h) => [h.key, h.value === null ? null : h.value.toString('utf8')]),
            codec: compressionOf(b.header.attributes),
          });
        }
        next = Math.max(next, b.header.baseOffset + b.header.lastOffsetDelta + 1);
      }
      if (next >= highWatermark) break;
      if (got.length === 0) throw new Error(`Fetch ${topic}-${partition}@${next} returned no complete batch below the high watermark ${highWatermark}`);
    }
    return { batches, records, highWatermark };
  } finally {
    c.close();
  }
}

export interface StreamingProcess {
  /** Resolves when the process exits. */
  readonly exited: Promise<RunResult>;
  /** Resolves once `count` stdout lines matched `pattern` (counting from the start). */
  waitForLines(pattern: RegExp, count: number, timeoutMs: number): Promise<void>;
  lines(): string[];
  kill(): void;
}

/** Starts a Python script (like python()) and exposes its stdout line by line while it runs. */
export function spawnPython(tool: 'confluent-kafka' | 'kafka-python', script: string, bootstrap: string, opts: RunOptions = {}): StreamingProcess {
  requireTool(tool);
  const started = Date.now();
  const child = spawn(SYSTEM_PYTHON, ['-c', script], {
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', BOOTSTRAP: bootstrap, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  let closed = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 120000);
  const exited = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      closed = true;
      if (partial !== '') lines.push(partial);
      for (const w of waiters) w();
      resolve({ code, signal, stdout, stderr, timedOut, durationMs: Date.now() - started });
    });
  });
  return {
    exited,
    lines: () => lines,
    kill: () => child.kill('SIGKILL'),
    waitForLines(pattern, count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (lines.filter((l) => pattern.test(l)).length >= count) done(null);
          else if (closed) done(new Error(`process exited before ${count} lines matched ${pattern}\n--- stderr ---\n${stderr.slice(-3000)}`));
        };
        const t = setTimeout(() => done(new Error(`fewer than ${count} lines matched ${pattern} after ${timeoutMs} ms\n--- stderr ---\n${stderr.slice(-3000)}`)), timeoutMs);
        const done = (e: Error | null): void => {
          clearTimeout(t);
          waiters.delete(check);
          if (e) reject(e);
          else resolve();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** The broker's ERROR lines (a client doing ordinary things must never cause one). */
export function brokerErrors(output: string): string[] {
  return output.split('\n').filter((l) => / ERROR /.test(l));
}

/**
 * Stops a test's broker and checks it went cleanly: exit code 0 and no ERROR line in its log
 * (WARN lines are printed, since bad input from a test is expected to produce some).
 */
export async function stopCleanly(broker: BrokerProcess): Promise<void> {
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker did not shut down cleanly:\n${broker.output().slice(-3000)}`);
  const warnings = broker.output().split('\n').filter((l) => / WARN /.test(l));
  if (warnings.length > 0) console.log(`broker warnings:\n${warnings.slice(0, 20).join('\n')}`);
  assert.deepEqual(brokerErrors(broker.output()), []);
}
