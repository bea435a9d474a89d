/**
 * Runs a real broker process (`bin/strand broker`) for tests and benchmarks: a free port, a
 * temporary data directory, and a wait until it accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const STRAND_BIN = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'bin', 'strand');

/**
 * A loopback port free now, for a process to bind a moment later. Chosen at random below the
 * kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range), so the ports the
 * kernel hands out meanwhile — to `listen(0)` and to outgoing connections of other tests — can
 * never take it; a random pick among ~20,000 makes a clash between two callers unlikely.
 * Elsewhere, or if no pick is free, the kernel chooses (port 0).
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  if (low !== null && low > FREE_PORT_FLOOR + 1000) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = FREE_PORT_FLOOR + Math.floor(Math.random() * (low - FREE_PORT_FLOOR));
      if ((await bindAndRelease(port)) !== null) return port;
    }
  }
  const port = await bindAndRelease(0);
  if (port === null) throw new Error('no free port');
  return port;
}

const FREE_PORT_FLOOR = 10000;

/**
 * A base port B with B + every offset free now (e.g. a cluster's client ports B..B+2 and
 * controller ports B+100..B+102), chosen as freePort chooses: at random, with the whole block
 * below the kernel's ephemeral range where there is one.
 */
export async function freePortBlock(offsets: readonly number[]): Promise<number> {
  const span = Math.max(...offsets);
  const high = (ephemeralLow() ?? 65536) - span;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = FREE_PORT_FLOOR + Math.floor(Math.random() * (high - FREE_PORT_FLOOR));
    if ((await Promise.all(offsets.map((d) => bindAndRelease(base + d)))).every((p) => p !== null)) return base;
  }
  throw new Error('no free block of ports');
}

function ephemeralLow(): number | null {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : null;
  } catch {
    return null;
  }
}

/** Binds `port` on 127.0.0.1 (0: any) and releases it; the port bound, or null if it was taken. */
function bindAndRelease(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(null));
    s.listen(port, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : null));
    });
  });
}

export async function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1', child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`broker exited with code ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface BrokerProcess {
  readonly port: number;
  readonly bootstrap: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the broker printed (stderr + stdout). */
  output(): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Remove the data directory (after stop/kill). */
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  overrides?: Record<string, string | number | boolean>;
  args?: string[];
  timeoutMs?: number;
}

export async function startBroker(opts: StartOptions = {}): Promise<BrokerProcess> {
  const port = opts.port ?? (await freePort());
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'strand-test-'));
  // STRAND_BROKER_NODE_ARGS passes flags to the broker's node (e.g. --cpu-prof) for profiling.
  const nodeArgs = (process.env['STRAND_BROKER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const args = [...nodeArgs, STRAND_BIN, 'broker', '--port', String(port), '--data-dir', dataDir, ...(opts.args ?? [])];
  for (const [k, v] of Object.entries(opts.overrides ?? {})) args.push('--override', `${k}=${v}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitForPort(port, opts.timeoutMs ?? 15000, '127.0.0.1', child);
    // Listening comes before the broker has finished starting (registration, internal topics).
    const deadline = Date.now() + (opts.timeoutMs ?? 15000);
    while (!/broker started/.test(out)) {
      if (child.exitCode !== null) throw new Error(`broker exited with code ${child.exitCode} while starting`);
      if (Date.now() > deadline) throw new Error('broker did not finish starting');
      await new Promise((r) => setTimeout(r, 10));
    }
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n--- broker output ---\n${out}`);
  }
  return {
    port,
    bootstrap: `127.0.0.1:${port}`,
    dataDir,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    cleanup() {
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
