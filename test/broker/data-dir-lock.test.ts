/**
 * One broker per data directory (data-dir-lock.ts): a second broker on a directory in use refuses
 * to start, names the holder's pid, and touches nothing; the lock goes with its holder, after a
 * clean stop and after kill -9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLock, DataDirLockedError } from '../../src/broker/data-dir-lock.js';
import { freePort, startBroker, STRAND_BIN } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { ApiKey } from '../../src/protocol/messages/index.js';

for (const abstract of [true, false]) {
  const kind = abstract ? 'abstract socket (Linux)' : 'socket file (other platforms)';
  test(`lock by ${kind}: a second holder is refused with the first's pid; release lets it in`, { skip: abstract && process.platform !== 'linux' && 'Linux only' }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-lock-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const first = await DataDirLock.acquire(dir, { abstract });
    await assert.rejects(DataDirLock.acquire(dir, { abstract }), (e: unknown) => e instanceof DataDirLockedError && e.holderPid === String(process.pid));
    first.release();
    const second = await DataDirLock.acquire(dir, { abstract });
    second.release();
    assert.equal(existsSync(join(dir, '.lock')), false, 'no socket file is left behind');
  });
}

test('lock by socket file: one left by a process killed with -9 is taken over', { skip: process.platform === 'win32' && 'Unix sockets' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { createServer } from 'node:net'; createServer().listen(${JSON.stringify(join(dir, '.lock'))}, () => console.log('listening'));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));
  assert.ok(statSync(join(dir, '.lock')).isSocket(), 'the dead process left its socket file');
  const lock = await DataDirLock.acquire(dir, { abstract: false });
  lock.release();
});

test('a second broker process on a data directory in use exits with the holder named and leaves the directory alone; after kill -9 a restart takes it', { timeout: 60000 }, async (t) => {
  let first = await startBroker();
  const dataDir = first.dataDir;
  t.after(async () => {
    await first.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const before = readdirSync(first.dataDir).sort();
  const second = spawn(process.execPath, [STRAND_BIN, 'broker', '--port', String(await freePort()), '--data-dir', first.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  second.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
  assert.notEqual(code, 0);
  assert.match(stderr, new RegExp(`^strand: data directory .* is in use by another Strand broker \\(pid ${first.child.pid}\\)`, 'm'));
  assert.doesNotMatch(stderr, /fatal|    at /, 'one line, no stack trace');
  assert.doesNotMatch(stderr, /recovering|log manager started/, 'the second broker read nothing');
  assert.deepEqual(readdirSync(first.dataDir).sort(), before);
  // The first broker still serves.
  const c = await ProtocolConnection.connect('127.0.0.1', first.port);
  const md = await c.send(ApiKey.Metadata, 12, { topics: [], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  assert.equal(md.brokers.length, 1);
  c.close();
  // kill -9 releases the lock with the process: a restart on the same directory starts.
  await first.kill();
  first = await startBroker({ dataDir: first.dataDir });
  assert.match(first.output(), /the last shutdown was not clean/);
});
