/**
 * kill -9 during log cleaning, then restart: the log must read exactly as before the pass or
 * exactly as after it, never a mix. A child process (cleaner-crash-child.ts) cleans a copy of one
 * prepared log and is killed (a) at every named fault point of the pass and its swap, or a seeded
 * sample of them, and (b) at random times while a throttled pass runs. After each kill the log is
 * opened as after a crash (recovery completes or discards the swap), compared with both
 * references, and a second pass must then reach exactly the cleaned reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PartitionLog } from '../../src/storage/log.js';
import { DEFAULT_CLEANER_CONFIG, LogCleaner } from '../../src/storage/log-cleaner.js';
import { withTempDir } from './batch-helper.js';
import { crashTestConfig, keyedBatch, prng, readAll, type KV, type ReadRecord } from './cleaner-support.js';

const CHILD = fileURLToPath(new URL('./cleaner-crash-child.js', import.meta.url));
const T0 = 1_700_000_000_000;
/** The child's clock: past the horizons the preparation stamped, so the pass also drops tombstones. */
const NOW = T0 + 60_001;

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(dir: string, killAt: number, opts: { ioBytesPerSec?: number; killAfterStartMs?: number } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(killAt), String(NOW), String(opts.ioBytesPerSec ?? 0)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (opts.killAfterStartMs !== undefined && stdout.includes('cleaning\n')) {
        const ms = opts.killAfterStartMs;
        opts.killAfterStartMs = undefined;
        setTimeout(() => child.kill('SIGKILL'), ms);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

async function prepare(dir: string, seed: number): Promise<void> {
  const rnd = prng(seed);
  let now = T0;
  const clock = (): number => now;
  const log = await PartitionLog.open(dir, 't', 0, crashTestConfig(), { cleanShutdown: true, clock });
  const append = async (count: number): Promise<void> => {
    for (let b = 0; b < count; b++) {
      const recs: KV[] = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => ({
        key: `k${Math.floor(rnd() * 150)}`,
        value: rnd() < 0.15 ? null : 'v'.repeat(20 + Math.floor(rnd() * 100)) + b,
      }));
      await log.append(keyedBatch(recs, { timestamp: now, compression: Math.floor(rnd() * 5) as 0 | 1 | 2 | 3 | 4 }), 0);
    }
  };
  await append(300);
  // A first pass stamps delete horizons, so the child's pass rewrites stamped batches too.
  await new LogCleaner({ config: { ...DEFAULT_CLEANER_CONFIG }, logs: () => [log], clock }).clean(log, { force: true });
  now += 1000;
  await append(400);
  await log.close();
}

async function readLog(dir: string, cleanShutdown: boolean): Promise<ReadRecord[]> {
  const log = await PartitionLog.open(dir, 't', 0, crashTestConfig(), { cleanShutdown, clock: () => NOW });
  try {
    return await readAll(log);
  } finally {
    await log.close();
  }
}

function copyDir(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
}

test('kill -9 at every fault point of a pass: the restarted log reads as before or as cleaned', { timeout: 240_000 }, async (t) => {
  await withTempDir(async (root) => {
    const pristine = join(root, 'pristine');
    fs.mkdirSync(pristine);
    await prepare(pristine, 11);
    const before = await readLog(pristine, true);

    const ref = join(root, 'ref');
    copyDir(pristine, ref);
    const full = await runChild(ref, -1);
    assert.equal(full.code, 0, full.stderr);
    const points = Number(/done (\d+)/.exec(full.stdout)![1]);
    assert.ok(points > 10, `only ${points} fault points`);
    const after = await readLog(ref, true);
    assert.ok(after.length < before.length / 2, `the pass must change the log: ${before.length} → ${after.length}`);

    const rnd = prng(99);
    const all = Array.from({ length: points }, (_, i) => i + 1);
    const chosen = points <= 48 ? all : [1, 2, 3, points - 1, points, ...all.filter(() => rnd() < 43 / points)];
    const outcomes = { before: 0, after: 0 };
    for (const killAt of [...new Set(chosen)].sort((a, b) => a - b)) {
      const dir = join(root, `kill-${killAt}`);
      copyDir(pristine, dir);
      const r = await runChild(dir, killAt);
      assert.equal(r.signal, 'SIGKILL', `kill point ${killAt}: ${r.stderr}`);
      const got = await readLog(dir, false);
      const same = (x: ReadRecord[]): boolean => JSON.stringify(x) === JSON.stringify(got);
      assert.ok(same(before) || same(after), `kill point ${killAt} of ${points}: a mix of old and new (${got.length} records; before ${before.length}, after ${after.length})`);
      outcomes[same(after) ? 'after' : 'before']++;
      const stray = fs.readdirSync(dir).filter((n) => n.endsWith('.cleaned') || n.endsWith('.swap') || n === 'cleaner-swap');
      assert.deepEqual(stray, [], `kill point ${killAt}`);
      // Cleaning again finishes the job, to exactly the reference.
      const again = await runChild(dir, -1);
      if (same(before)) assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await readLog(dir, true), after, `kill point ${killAt}: the pass after recovery`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(outcomes.before > 0 && outcomes.after > 0, JSON.stringify(outcomes));
    t.diagnostic(`${points} fault points, ${chosen.length} killed: ${JSON.stringify(outcomes)}`);
  });
});

test('kill -9 at random times during a throttled pass: the restarted log reads as before or as cleaned', { timeout: 240_000 }, async (t) => {
  await withTempDir(async (root) => {
    const pristine = join(root, 'pristine');
    fs.mkdirSync(pristine);
    await prepare(pristine, 12);
    const before = await readLog(pristine, true);
    const ref = join(root, 'ref');
    copyDir(pristine, ref);
    assert.equal((await runChild(ref, -1)).code, 0);
    const after = await readLog(ref, true);
    const rnd = prng(7);
    const outcomes = { before: 0, after: 0, finished: 0 };
    for (let trial = 0; trial < 10; trial++) {
      const dir = join(root, `trial-${trial}`);
      copyDir(pristine, dir);
      const delay = Math.floor(rnd() * 400);
      // ~600 KB read and written at 1 MB/s: the pass takes long enough to be hit anywhere.
      const r = await runChild(dir, -1, { ioBytesPerSec: 1024 * 1024, killAfterStartMs: delay });
      const got = await readLog(dir, false);
      const same = (x: ReadRecord[]): boolean => JSON.stringify(x) === JSON.stringify(got);
      assert.ok(same(before) || same(after), `trial ${trial}, killed ${delay} ms into the pass (${r.signal ?? r.code}): a mix`);
      if (r.code === 0) outcomes.finished++;
      else outcomes[same(after) ? 'after' : 'before']++;
      fs.rmSync(dir, { recursive: true, force: true });
    }
    t.diagnostic(JSON.stringify(outcomes));
    assert.ok(outcomes.before > 0, 'some kills must land inside the pass');
  });
});
