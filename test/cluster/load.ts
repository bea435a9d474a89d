/**
 * Runs the librdkafka load of the cluster fault tests (test/cluster/load/*.py with
 * /usr/bin/python3 and confluent_kafka) and collects what the scripts print.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SYSTEM_PYTHON } from '../interop/helpers.js';
import type { Acked, Stored } from './checker.js';

/** test/cluster/load/ in the source tree (the tests run from dist/test/cluster/). */
export const LOAD_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'test', 'cluster', 'load');

export interface LoadLine {
  p?: number;
  o?: number;
  v?: string;
  t?: number;
  err?: string;
  m?: string;
  event?: string;
  [k: string]: unknown;
}

export class ScriptProcess {
  readonly lines: LoadLine[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';
  private partial = '';
  private readonly waiters = new Set<() => void>();

  constructor(script: string, env: Record<string, string>, readonly name: string) {
    this.child = spawn(SYSTEM_PYTHON, [join(LOAD_DIR, script)], {
      env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop() ?? '';
      for (const l of parts) {
        if (l.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(l) as LoadLine);
        } catch {
          this.stderr += `(unparsed stdout) ${l}\n`;
        }
      }
      for (const w of this.waiters) w();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      if (this.stderr.length > 1 << 20) this.stderr = this.stderr.slice(-(1 << 19));
    });
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => {
      for (const w of this.waiters) w();
      resolve({ code, signal });
    }));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  errors(): string {
    return this.stderr;
  }

  /** Resolves when `pred` holds over the lines so far; rejects after timeoutMs or if the script exits first. */
  waitFor(what: string, pred: (lines: LoadLine[]) => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred(this.lines)) done(null);
        else if (!this.running) done(new Error(`${this.name} exited before ${what}\n--- stderr ---\n${this.stderr.slice(-3000)}\n--- last lines ---\n${this.tail()}`));
      };
      const t = setTimeout(() => done(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\n--- last lines ---\n${this.tail()}\n--- stderr ---\n${this.stderr.slice(-2000)}`)), timeoutMs);
      const done = (e: Error | null): void => {
        clearTimeout(t);
        this.waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  tail(n = 10): string {
    return this.lines.slice(-n).map((l) => JSON.stringify(l)).join('\n');
  }

  /** SIGTERM, then waits for the summary line (SIGKILL after timeoutMs). */
  async stop(timeoutMs = 90000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

export class LoadProducer extends ScriptProcess {
  constructor(bootstrap: string, topic: string, partitions: number, rate: number) {
    super('producer.py', { BOOTSTRAP: bootstrap, TOPIC: topic, PARTITIONS: String(partitions), RATE: String(rate) }, 'producer');
  }

  acked(): Acked[] {
    return this.lines.filter((l) => l.o !== undefined && l.err === undefined).map((l) => ({ p: l.p!, o: l.o!, v: l.v! }));
  }

  ackTimes(): Array<{ p: number; o: number; t: number }> {
    return this.lines.filter((l) => l.o !== undefined && l.err === undefined).map((l) => ({ p: l.p!, o: l.o!, t: l.t! }));
  }

  failed(): LoadLine[] {
    return this.lines.filter((l) => l.err !== undefined && l.event === undefined);
  }

  ackedCount(partition?: number): number {
    let n = 0;
    for (const l of this.lines) if (l.o !== undefined && l.err === undefined && (partition === undefined || l.p === partition)) n++;
    return n;
  }

  /** Waits for `count` more acknowledgements (of `partition` if given) than there are now. */
  waitForMoreAcks(count: number, timeoutMs: number, partition?: number): Promise<void> {
    const target = this.ackedCount(partition) + count;
    return this.waitFor(`${count} more acknowledged records${partition !== undefined ? ` of partition ${partition}` : ''}`, () => this.ackedCount(partition) >= target, timeoutMs);
  }
}

export class GroupConsumer extends ScriptProcess {
  constructor(bootstrap: string, topic: string, group: string, member: string) {
    super('consumer.py', { BOOTSTRAP: bootstrap, TOPIC: topic, GROUP: group, MEMBER: member, MODE: 'group' }, `consumer ${member}`);
  }

  records(): Stored[] {
    return this.lines.filter((l) => l.o !== undefined).map((l) => ({ p: l.p!, o: l.o!, v: l.v! }));
  }
}

/** Reads every partition of `topic` to its high watermark with a fresh librdkafka consumer. */
export async function dumpTopic(bootstrap: string, topic: string, timeoutMs = 60000): Promise<{ records: Stored[]; end: Record<string, number> }> {
  const d = new ScriptProcess('consumer.py', { BOOTSTRAP: bootstrap, TOPIC: topic, MODE: 'dump', TIMEOUT_S: String(Math.floor(timeoutMs / 1000)) }, 'dump');
  const t = setTimeout(() => d.kill(), timeoutMs + 10000);
  const { code } = await d.exited;
  clearTimeout(t);
  const done = d.lines.find((l) => l.event === 'done');
  if (code !== 0 || done === undefined) throw new Error(`dump of ${topic} failed (exit ${code})\n--- stderr ---\n${d.errors().slice(-3000)}\n--- last lines ---\n${d.tail()}`);
  return { records: d.lines.filter((l) => l.o !== undefined).map((l) => ({ p: l.p!, o: l.o!, v: l.v! })), end: done['end'] as Record<string, number> };
}
