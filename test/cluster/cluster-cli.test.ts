/**
 * `strand cluster up` and `strand cluster status` as a user runs them (the README's three-node
 * cluster): up prints the bootstrap servers once the three nodes are registered; status shows
 * the three nodes, the quorum leader and a topic's leaders and ISR; SIGINT stops the nodes
 * cleanly; up on the same directory starts the same cluster on its data; another node count on
 * that directory is refused. Also: --help and shell completion name the same flags.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLUSTER_HELP } from '../../src/cli/commands/cluster.js';
import { COMPLETIONS } from '../../src/cli/commands/completion.js';
import { freePortBlock, STRAND_BIN } from '../../src/testing/broker-process.js';
import { waitUntil } from '../../src/testing/cluster.js';
import { run } from '../interop/helpers.js';

function clusterUp(args: string[]) {
  const child = spawn(process.execPath, [STRAND_BIN, 'cluster', 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

const strand = (args: string[]) => run(process.execPath, [STRAND_BIN, ...args], { timeoutMs: 30000 });

test('strand cluster --help and completion name the same flags', () => {
  for (const flag of COMPLETIONS['cluster']!.flags.split(' ')) assert.ok(CLUSTER_HELP.includes(flag), `${flag} is in cluster --help`);
  for (const flag of CLUSTER_HELP.match(/--[a-z-]+/g)!) assert.ok(COMPLETIONS['cluster']!.flags.split(' ').includes(flag), `${flag} is completed`);
  assert.deepEqual(COMPLETIONS['cluster']!.subs, ['up', 'status']);
});

test('strand cluster up --nodes 3: bootstrap servers, status, clean Ctrl-C, restart on the same data', { timeout: 180000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-cluster-cli-'));
  const base = await freePortBlock([0, 1, 2, 100, 101, 102]);
  const bootstrap = [0, 1, 2].map((i) => `127.0.0.1:${base + i}`).join(',');
  let up = clusterUp(['--nodes', '3', '--data-dir', dir, '--base-port', String(base), '--quiet']);
  t.after(() => {
    up.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitUntil('cluster up to print the bootstrap servers', () => {
    if (up.child.exitCode !== null) throw new Error(`cluster up exited ${up.child.exitCode}:\n${up.output()}`);
    return up.output().includes(`Bootstrap servers: ${bootstrap}`) ? true : null;
  }, 90000, 100);
  const props = readFileSync(join(dir, 'node-2.properties'), 'utf8');
  assert.match(props, /^process\.roles=broker,controller$/m);
  assert.match(props, /^node\.id=2$/m);
  assert.match(props, new RegExp(`^controller\\.quorum\\.voters=1@127\\.0\\.0\\.1:${base + 100},2@127\\.0\\.0\\.1:${base + 101},3@127\\.0\\.0\\.1:${base + 102}$`, 'm'));
  assert.match(props, /^default\.replication\.factor=3$/m);
  assert.match(props, /^min\.insync\.replicas=2$/m);

  const created = await strand(['topics', 'create', 'orders', '--partitions', '3', '-b', bootstrap]);
  assert.equal(created.code, 0, created.stderr);
  const status = await waitUntil('status to show the topic fully replicated', async () => {
    const r = await strand(['cluster', 'status', '--data-dir', dir, '--json']);
    if (r.code !== 0) throw new Error(r.stderr);
    const s = JSON.parse(r.stdout);
    const orders = s.partitions.filter((p: { topic: string }) => p.topic === 'orders');
    return orders.length === 3 && orders.every((p: { isr: number[]; leader: number }) => p.isr.length === 3 && p.leader > 0) ? s : null;
  }, 30000, 250);
  assert.deepEqual(status.nodes.map((n: { id: number; fenced: boolean }) => [n.id, n.fenced]), [[1, false], [2, false], [3, false]]);
  assert.ok([1, 2, 3].includes(status.quorum.leaderId), JSON.stringify(status.quorum));
  assert.deepEqual(status.quorum.voters.map((v: { id: number }) => v.id).sort(), [1, 2, 3]);
  const text = await strand(['cluster', 'status', '--data-dir', dir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Metadata quorum: leader [123], epoch \d+/);
  assert.match(text.stdout, /orders\s+0\s+[123]\s+\d+\s+[123],[123],[123]\s+[123],[123],[123]\s+ok/);

  up.child.kill('SIGINT');
  assert.equal(await up.exited, 0, up.output());
  assert.match(up.output(), /Stopped\. The data stays in/);
  for (const id of [1, 2, 3]) assert.match(readFileSync(join(dir, `node-${id}.log`), 'utf8'), /exited with code 0/);

  const wrong = await strand(['cluster', 'up', '--nodes', '2', '--data-dir', dir, '--base-port', String(base)]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /holds a cluster of 3 node\(s\)/);

  up = clusterUp(['--nodes', '3', '--data-dir', dir, '--base-port', String(base), '--quiet']);
  await waitUntil('the restarted cluster', () => (up.output().includes('Bootstrap servers:') ? true : up.child.exitCode !== null ? Promise.reject(new Error(up.output())) : null), 90000, 100);
  const listed = await strand(['topics', 'list', '-b', bootstrap]);
  assert.match(listed.stdout, /^orders\s+3\s+no$/m, 'the topic survived the restart');
  up.child.kill('SIGTERM');
  assert.equal(await up.exited, 0, up.output());
});
