/**
 * The console's JSON API without a browser: input validation with Kafka's error names, the
 * write protections (method, content type, origin, confirmation), the message browser's byte
 * handling, group offset resets, and `strand console` as a process against a broker.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka } from '../../src/client/kafka.js';
import type { Admin } from '../../src/client/admin.js';
import { startConsole, type ConsoleServer } from '../../src/console/server.js';
import { showBytes, MAX_SHOWN_VALUE_BYTES } from '../../src/console/api.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { freePort, STRAND_BIN, waitForPort } from '../../src/testing/broker-process.js';

let broker: StrandTestBroker;
let server: ConsoleServer;
let kafka: Kafka;
let admin: Admin;
const T = { timeout: 60000 };

before(async () => {
  broker = await startStrand({ config: { 'auto.create.topics.enable': 'false' } });
  server = await startConsole({ brokers: [broker.bootstrap], port: 0, sampleIntervalMs: 200 });
  kafka = new Kafka({ brokers: [broker.bootstrap] });
  admin = kafka.admin();
});
after(async () => {
  await admin?.close();
  await server?.close();
  await broker?.stop();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(new URL(path, server.url), {
    method,
    headers: { ...(body !== undefined || method !== 'GET' ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

test('topics: create, describe, alter configs, add partitions, delete (with confirmation); errors carry the Kafka error name', T, async () => {
  assert.deepEqual((await call('POST', '/api/topics', { name: 'api-a', partitions: 2, configs: { 'retention.ms': '60000' } })).json, { created: 'api-a' });
  const dup = await call('POST', '/api/topics', { name: 'api-a' });
  assert.equal(dup.status, 409);
  assert.equal(dup.json.error.code, 'TOPIC_ALREADY_EXISTS');
  assert.equal((await call('POST', '/api/topics', { name: 'a b' })).json.error.code, 'INVALID_TOPIC_EXCEPTION');
  assert.equal((await call('POST', '/api/topics', { name: 'api-x', partitions: 0 })).json.error.code, 'INVALID_REQUEST');
  assert.equal((await call('POST', '/api/topics', { name: 'api-x', partitions: 'many' })).json.error.code, 'INVALID_REQUEST');
  assert.equal((await call('POST', '/api/topics', { name: 'api-x', configs: { 'retention.ms': 'soon' } })).json.error.code, 'INVALID_CONFIG');
  assert.equal((await call('POST', '/api/topics', '{not json')).json.error.code, 'INVALID_REQUEST');
  assert.equal((await call('POST', '/api/topics', [1, 2])).json.error.code, 'INVALID_REQUEST');

  const t = (await call('GET', '/api/topics/api-a')).json;
  assert.equal(t.partitions.length, 2);
  assert.deepEqual(t.partitions[0], { partition: 0, leader: broker.broker.nodeId, leaderEpoch: 0, replicas: [1], isr: [1], startOffset: 0, endOffset: 0, records: 0, sizeBytes: 0, cleaner: null });
  assert.equal(t.compacted, false);
  assert.equal(t.configs.find((c: { name: string }) => c.name === 'retention.ms').value, '60000');
  const missing = await call('GET', '/api/topics/api-none');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'UNKNOWN_TOPIC_OR_PARTITION');

  assert.equal((await call('POST', '/api/topics/api-a/configs', { set: { 'cleanup.policy': 'compact' }, delete: ['retention.ms'] })).status, 200);
  const after = (await call('GET', '/api/topics/api-a')).json;
  assert.equal(after.configs.find((c: { name: string }) => c.name === 'cleanup.policy').source, 'topic');
  assert.equal(after.configs.find((c: { name: string }) => c.name === 'retention.ms').source, 'default');
  // A compacted topic shows the log cleaner's view of each partition (DescribeLogCleaner).
  assert.equal(after.compacted, true);
  assert.equal(after.partitions[0].cleaner.dirtyRatio, 0);
  assert.equal(after.partitions[0].cleaner.lastRunEndMs, null);
  assert.equal((await call('POST', '/api/topics/api-a/configs', {})).json.error.code, 'INVALID_REQUEST');

  assert.equal((await call('POST', '/api/topics/api-a/partitions', { count: 4 })).status, 200);
  assert.equal((await call('GET', '/api/topics/api-a')).json.partitions.length, 4);
  assert.equal((await call('POST', '/api/topics/api-a/partitions', { count: 3 })).json.error.code, 'INVALID_PARTITIONS');

  const unconfirmed = await call('DELETE', '/api/topics/api-a');
  assert.equal(unconfirmed.json.error.code, 'INVALID_REQUEST');
  assert.match(unconfirmed.json.error.message, /confirm=api-a/);
  assert.equal((await call('DELETE', '/api/topics/api-a?confirm=api-b')).status, 400);
  assert.ok((await admin.listTopics()).includes('api-a'), 'nothing deleted without the confirmation');
  assert.deepEqual((await call('DELETE', '/api/topics/api-a?confirm=api-a')).json, { deleted: 'api-a' });
  assert.equal((await call('GET', '/api/topics')).json.topics.some((x: { name: string }) => x.name === 'api-a'), false);
});

test('writes need POST/DELETE with JSON from the same origin; unknown routes and bad paths are clean errors', T, async () => {
  const form = await fetch(new URL('/api/topics', server.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=evil' });
  assert.equal(form.status, 415);
  const cross = await call('POST', '/api/topics', { name: 'evil' }, { origin: 'http://evil.example' });
  assert.equal(cross.status, 403);
  assert.equal((await call('PUT', '/api/topics', { name: 'evil' })).status, 405);
  assert.ok(!(await admin.listTopics()).includes('evil'));
  assert.equal((await call('GET', '/api/nothing')).status, 404);
  assert.equal((await call('GET', '/api/topics/%E0%A4%A/messages')).json.error.code, 'INVALID_REQUEST');
  const page = await fetch(new URL('/app/../../api.ts', server.url));
  assert.equal(page.status, 404);
  const index = await fetch(server.url);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-security-policy') ?? '', /script-src 'self' 'sha256-/);
  for (const v of ['/vendor/preact.js', '/vendor/preact-hooks.js', '/vendor/htm.js', '/vendor/uplot.js', '/vendor/uplot.css', '/app/main.js', '/app/style.css']) {
    assert.equal((await fetch(new URL(v, server.url))).status, 200, v);
  }
  const big = await fetch(new URL('/api/topics', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(2 << 20) }) }).catch((e: Error) => e);
  assert.ok(big instanceof Error || big.status === 413, 'an oversized body is refused');
});

test('the message browser: offsets, timestamps, the end, binary-safe bytes, JSON detection', T, async () => {
  await admin.createTopics([{ name: 'api-msgs', partitions: 1 }]);
  const producer = kafka.producer();
  const base = Date.now() - 100000;
  await producer.sendBatch([
    { topic: 'api-msgs', partition: 0, key: 'k0', value: '{"a":1}', timestamp: base, headers: { h: 'v' } },
    { topic: 'api-msgs', partition: 0, key: null, value: Buffer.from([0xff, 0x00, 0xfe]), timestamp: base + 1000 },
    { topic: 'api-msgs', partition: 0, key: 'k2', value: null, timestamp: base + 2000 },
    { topic: 'api-msgs', partition: 0, key: 'k3', value: 'plain text', timestamp: base + 3000 },
  ]);
  await producer.close();
  const all = (await call('GET', '/api/topics/api-msgs/messages?partition=0')).json;
  assert.equal(all.endOffset, 4);
  assert.deepEqual(all.records.map((r: { offset: number }) => r.offset), [0, 1, 2, 3]);
  assert.deepEqual(all.records[0].value, { text: '{"a":1}', encoding: 'utf8', size: 7, json: true, truncated: false });
  assert.deepEqual(all.records[0].headers, [{ key: 'h', value: { text: 'v', encoding: 'utf8', size: 1, json: false, truncated: false } }]);
  assert.deepEqual(all.records[1].value, { text: Buffer.from([0xff, 0x00, 0xfe]).toString('base64'), encoding: 'base64', size: 3, json: false, truncated: false });
  assert.equal(all.records[1].key.text, null);
  assert.equal(all.records[2].value.text, null);
  assert.equal(all.records[0].timestamp, base);

  const fromTs = (await call('GET', `/api/topics/api-msgs/messages?partition=0&timestamp=${base + 1500}`)).json;
  assert.deepEqual(fromTs.records.map((r: { offset: number }) => r.offset), [2, 3]);
  const last = (await call('GET', '/api/topics/api-msgs/messages?partition=0&from=end&limit=1')).json;
  assert.deepEqual(last.records.map((r: { offset: number }) => r.offset), [3]);
  const limited = (await call('GET', '/api/topics/api-msgs/messages?partition=0&offset=1&limit=2')).json;
  assert.deepEqual([limited.records.map((r: { offset: number }) => r.offset), limited.next], [[1, 2], 3]);
  const atEnd = (await call('GET', '/api/topics/api-msgs/messages?partition=0&offset=4')).json;
  assert.deepEqual([atEnd.records, atEnd.next], [[], 4]);
  const past = (await call('GET', '/api/topics/api-msgs/messages?partition=0&offset=99')).json;
  assert.deepEqual([past.from, past.records], [4, []], 'an offset past the end is clamped to the end');
  assert.equal((await call('GET', '/api/topics/api-msgs/messages?partition=0&limit=100000')).json.error.code, 'INVALID_REQUEST');
  assert.equal((await call('GET', '/api/topics/api-msgs/messages?partition=-1')).json.error.code, 'INVALID_REQUEST');
  const noPartition = await call('GET', '/api/topics/api-msgs/messages?partition=7');
  assert.deepEqual([noPartition.status, noPartition.json.error.code], [404, 'UNKNOWN_TOPIC_OR_PARTITION']);
  assert.equal((await call('GET', '/api/topics/api-none/messages?partition=0')).json.error.code, 'UNKNOWN_TOPIC_OR_PARTITION');
  assert.equal((await call('GET', '/api/topics/api-msgs/messages?partition=0&timestamp=yesterday')).json.error.code, 'INVALID_REQUEST');

  const cut = showBytes(Buffer.alloc(MAX_SHOWN_VALUE_BYTES + 10, 0x61));
  assert.deepEqual([cut.truncated, cut.size, cut.text?.length], [true, MAX_SHOWN_VALUE_BYTES + 10, MAX_SHOWN_VALUE_BYTES]);
});

test('groups: lag per partition, and offsets reset only for an empty group with confirmation', T, async () => {
  await admin.createTopics([{ name: 'api-grp', partitions: 2 }]);
  const producer = kafka.producer();
  await producer.sendBatch(Array.from({ length: 10 }, (_, i) => ({ topic: 'api-grp', partition: i % 2, value: `v${i}` })));
  await producer.close();
  const consumer = kafka.consumer({ groupId: 'api-g', fromBeginning: true, commit: 'message' });
  consumer.subscribe('api-grp');
  let seen = 0;
  let all: () => void = () => {};
  const done = new Promise<void>((r) => (all = r));
  await consumer.run({
    eachMessage: () => {
      if (++seen === 10) all();
    },
  });
  try {
    await done;
    const g = (await call('GET', '/api/groups/api-g')).json;
    assert.equal(g.members.length, 1);
    assert.equal(g.state, 'Stable');
    const busy = await call('POST', '/api/groups/api-g/reset-offsets', { topic: 'api-grp', to: 'earliest', confirm: 'api-g' });
    assert.equal(busy.status, 409);
    assert.equal(busy.json.error.code, 'NON_EMPTY_GROUP');
  } finally {
    await consumer.close();
  }
  const g = (await call('GET', '/api/groups/api-g')).json;
  assert.equal(g.state, 'Empty');
  assert.deepEqual(g.offsets.map((o: { partition: number; committed: number; lag: number }) => [o.partition, o.committed, o.lag]), [
    [0, 5, 0],
    [1, 5, 0],
  ]);
  assert.equal((await call('POST', '/api/groups/api-g/reset-offsets', { topic: 'api-grp', to: 'earliest' })).json.error.code, 'INVALID_REQUEST');
  assert.equal((await call('POST', '/api/groups/api-g/reset-offsets', { topic: 'api-grp', to: 'sideways', confirm: 'api-g' })).json.error.code, 'INVALID_REQUEST');
  assert.deepEqual((await call('POST', '/api/groups/api-g/reset-offsets', { topic: 'api-grp', to: 'offset', offset: 3, confirm: 'api-g' })).json.offsets, [
    { partition: 0, offset: 3 },
    { partition: 1, offset: 3 },
  ]);
  assert.equal((await call('GET', '/api/groups/api-g')).json.totalLag, 4);
  await call('POST', '/api/groups/api-g/reset-offsets', { topic: 'api-grp', to: 'earliest', confirm: 'api-g' });
  assert.equal((await call('GET', '/api/groups/api-g')).json.totalLag, 10);
  const list = (await call('GET', '/api/groups')).json.groups;
  assert.deepEqual(list.find((x: { groupId: string }) => x.groupId === 'api-g'), { groupId: 'api-g', state: 'Empty', protocolType: 'consumer', members: 0, topics: ['api-grp'], lag: 10 });
  const none = await call('GET', '/api/groups/no-such-group');
  assert.equal(none.status, 404);
  assert.equal(none.json.error.code, 'GROUP_ID_NOT_FOUND');
});

test('the cluster answer and the traffic sampler', T, async () => {
  const c = (await call('GET', '/api/cluster')).json;
  assert.equal(c.brokers.length, 1);
  assert.equal(c.brokers[0].isController, true);
  assert.ok(c.brokers[0].logDirs[0].path.length > 0);
  assert.ok(c.brokers[0].apis.some((a: { name: string }) => a.name === 'DescribeLogDirs'));
  await admin.createTopics([{ name: 'api-traffic', partitions: 1 }]);
  const producer = kafka.producer();
  const deadline = Date.now() + 30000;
  try {
    for (;;) {
      await producer.sendBatch(Array.from({ length: 20 }, () => ({ topic: 'api-traffic', value: 'x'.repeat(100) })));
      const m = (await call('GET', '/api/metrics')).json as { points: Array<{ recordsIn: number; bytesIn: number }> };
      if (m.points.some((p) => p.recordsIn > 0 && p.bytesIn > 0)) break;
      assert.ok(Date.now() < deadline, 'the sampler never saw records and bytes coming in');
      await new Promise((r) => setTimeout(r, 100)); // pacing the producer
    }
  } finally {
    await producer.close();
  }
});

test('strand console serves the console for a cluster, and --help documents it', T, async () => {
  const port = await freePort();
  const child = spawn(process.execPath, [STRAND_BIN, 'console', '--bootstrap-server', broker.bootstrap, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitForPort(port, 15000, '127.0.0.1', child);
    const res = await fetch(`http://127.0.0.1:${port}/api/cluster`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { brokers: Array<{ port: number }> }).brokers[0]!.port, broker.port);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out);
  assert.match(out, new RegExp(`strand console: http://127\\.0\\.0\\.1:${port}/`));
  const help = spawn(process.execPath, [STRAND_BIN, 'console', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  help.stdout.on('data', (d: Buffer) => (text += d.toString()));
  assert.equal(await new Promise((r) => help.on('exit', r)), 0);
  assert.match(text, /Usage: strand console/);
  assert.match(text, /--port PORT/);
});

test('strand broker refuses a bad --console-port, and stops (exit 1) when the console cannot listen', T, async () => {
  const run = (args: string[]): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [STRAND_BIN, 'broker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  const bad = await run(['--console-port', 'abc']);
  assert.equal(bad.code, 2);
  assert.match(bad.out, /--console-port must be a port number, got 'abc'/);
  // The console's port is taken (by this test's console server): the broker says so and stops cleanly.
  const dir = mkdtempSync(join(tmpdir(), 'strand-console-'));
  try {
    const taken = await run(['--port', String(await freePort()), '--data-dir', dir, '--console-port', String(server.port)]);
    assert.equal(taken.code, 1, taken.out);
    assert.match(taken.out, /web console failed to start.*EADDRINUSE/);
    assert.match(taken.out, /shutdown complete/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
