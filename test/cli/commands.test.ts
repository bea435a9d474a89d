/**
 * The client-side `strand` commands as a user runs them: the real bin/strand against a broker
 * process, checking tables, --json and the effects (topics, records, committed offsets).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { STRAND_BIN, freePort, startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { run } from '../interop/helpers.js';

let broker: BrokerProcess;
let metricsPort: number;

before(async () => {
  metricsPort = await freePort();
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': 0, 'strand.acks.all.fsync': false }, args: ['--metrics-port', String(metricsPort)] });
});

after(async () => {
  await broker.stop();
  broker.cleanup();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `strand ARGS --bootstrap-server <broker>` with `input` on stdin. */
async function strand(args: string[], input = '', opts: { bootstrap?: boolean } = {}): Promise<Run> {
  const full = opts.bootstrap === false ? args : [...args, '--bootstrap-server', broker.bootstrap];
  const r = await run(process.execPath, [STRAND_BIN, ...full], { input, env: { STRAND_BOOTSTRAP_SERVER: '' }, timeoutMs: 20000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

async function ok(args: string[], input = ''): Promise<string> {
  const r = await strand(args, input);
  assert.equal(r.status, 0, `strand ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

test('--help everywhere, and every command is listed in strand --help', async () => {
  const top = await strand(['--help'], '', { bootstrap: false });
  for (const c of ['broker', 'topics', 'produce', 'consume', 'groups', 'records', 'cluster', 'perf', 'completion']) assert.match(top.stdout, new RegExp(`\\n  ${c} `));
  for (const c of [['topics'], ['produce'], ['consume'], ['groups'], ['records'], ['cluster'], ['perf'], ['completion']]) {
    const r = await strand([...c, '--help'], '', { bootstrap: false });
    assert.equal(r.status, 0, c.join(' '));
    assert.match(r.stdout, /Usage: strand/);
  }
  const bash = await strand(['completion', 'bash'], '', { bootstrap: false });
  assert.match(bash.stdout, /complete -F _strand strand/);
  assert.match(bash.stdout, /reset-offsets/);
});

test('topics: create, list, describe, alter-config, add-partitions, delete; errors name the Kafka error', async () => {
  assert.match(await ok(['topics', 'create', 'cli-orders', '--partitions', '2', '--config', 'retention.ms=86400000']), /Created topic cli-orders with 2 partitions/);
  const dup = await strand(['topics', 'create', 'cli-orders']);
  assert.equal(dup.status, 1);
  assert.match(dup.stderr, /TOPIC_ALREADY_EXISTS/);
  assert.match(dup.stderr, /hint: .*--if-not-exists/);
  assert.equal((await strand(['topics', 'create', 'cli-orders', '--if-not-exists'])).status, 0);
  assert.match(await ok(['topics', 'list']), /cli-orders\s+2\s+no/);
  const listed = JSON.parse(await ok(['topics', 'list', '--json'])) as Array<{ name: string; partitions: number }>;
  assert.deepEqual(listed.find((t) => t.name === 'cli-orders')?.partitions, 2);
  const described = await ok(['topics', 'describe', 'cli-orders']);
  assert.match(described, /retention\.ms\s+86400000\s+topic/);
  assert.match(described, /PARTITION\s+LEADER\s+REPLICAS\s+ISR\s+EARLIEST\s+LATEST/);
  await ok(['topics', 'alter-config', 'cli-orders', '--set', 'retention.ms=3600000', '--set', 'cleanup.policy=compact']);
  await ok(['topics', 'alter-config', 'cli-orders', '--delete', 'cleanup.policy']);
  const d = JSON.parse(await ok(['topics', 'describe', 'cli-orders', '--json'])) as Array<{ configs: Array<{ name: string; value: string }>; partitions: unknown[] }>;
  assert.deepEqual(d[0]!.configs.map((c) => `${c.name}=${c.value}`), ['retention.ms=3600000']);
  assert.match(await ok(['topics', 'add-partitions', 'cli-orders', '--count', '4']), /now has 4 partitions/);
  const shrink = await strand(['topics', 'add-partitions', 'cli-orders', '--count', '3']);
  assert.equal(shrink.status, 1);
  assert.match(shrink.stderr, /already has 4 partitions/);
  await ok(['topics', 'delete', 'cli-orders']);
  const gone = await strand(['topics', 'describe', 'cli-orders']);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /UNKNOWN_TOPIC_OR_PARTITION/);
  const usage = await strand(['topics', 'create']);
  assert.equal(usage.status, 2);
});

test('topics elect-leaders, reassign and list-reassignments on a single broker', async () => {
  await ok(['topics', 'create', 'cli-elect', '--partitions', '2']);
  // The only replica already leads: nothing to elect.
  assert.match(await ok(['topics', 'elect-leaders', 'cli-elect']), /cli-elect\s+0\s+ELECTION_NOT_NEEDED/);
  const json = JSON.parse(await ok(['topics', 'elect-leaders', 'cli-elect', '--partition', '1', '--json'])) as Array<{ partition: number; error: string | null }>;
  assert.deepEqual(json.map((r) => [r.partition, r.error]), [[1, 'ELECTION_NOT_NEEDED']]);
  // Every partition: only those that got a new leader are listed.
  assert.match(await ok(['topics', 'elect-leaders']), /No partition needed a new leader/);
  assert.match(await ok(['topics', 'list-reassignments']), /No reassignment in progress/);
  // To the replica it has: completes at once.
  assert.match(await ok(['topics', 'reassign', 'cli-elect', '--partition', '0', '--replicas', '1']), /Reassigning cli-elect-0 to replicas 1/);
  assert.deepEqual(JSON.parse(await ok(['topics', 'list-reassignments', 'cli-elect', '--json'])), []);
  const unknown = await strand(['topics', 'reassign', 'cli-elect', '--partition', '0', '--replicas', '7']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /INVALID_REPLICA_ASSIGNMENT/);
  const none = await strand(['topics', 'reassign', 'cli-elect', '--partition', '0', '--cancel']);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /NO_REASSIGNMENT_IN_PROGRESS/);
  assert.equal((await strand(['topics', 'reassign', 'cli-elect', '--partition', '0'])).status, 2);
  await ok(['topics', 'delete', 'cli-elect']);
});

test('produce 100 lines with keys and headers, consume them back with a format and as JSON', async () => {
  await ok(['topics', 'create', 'cli-lines', '--partitions', '3']);
  const lines = Array.from({ length: 100 }, (_, i) => `key${i % 7}:value ${i}`);
  await ok(['produce', 'cli-lines', '--key-separator', ':', '--header', 'source=cli', '--compression', 'zstd'], lines.join('\n') + '\n');
  const out = await ok(['consume', 'cli-lines', '--format', '%k=%s|%h|%p|%o|%T\\n']);
  const got = out.trimEnd().split('\n');
  assert.equal(got.length, 100);
  const parsed = got.map((l) => l.split('|'));
  assert.deepEqual(parsed.map((p) => p[0]).sort(), lines.map((l) => l.replace(':', '=')).sort());
  for (const p of parsed) {
    assert.equal(p[1], 'source=cli');
    assert.ok(Number(p[4]) > Date.now() - 600000);
  }
  // Same key, same partition; per partition, offsets 0..n-1 in order.
  const byKey = new Map<string, Set<string>>();
  for (const p of parsed) byKey.set(p[0]!.split('=')[0]!, (byKey.get(p[0]!.split('=')[0]!) ?? new Set()).add(p[2]!));
  for (const s of byKey.values()) assert.equal(s.size, 1);
  const json = (await ok(['consume', 'cli-lines', '--json', '--partition', '0', '--max-messages', '2'])).trimEnd().split('\n').map((l) => JSON.parse(l) as { partition: number; offset: number; headers: Record<string, string> });
  assert.deepEqual(json.map((m) => [m.partition, m.offset]), [[0, 0], [0, 1]]);
  assert.deepEqual(json[0]!.headers, { source: 'cli' });
  assert.equal((await ok(['consume', 'cli-lines', '--partition', '1', '--offset', '-3'])).trimEnd().split('\n').length, 3);
  assert.equal(await ok(['consume', 'cli-lines', '--timestamp', new Date(Date.now() + 3600000).toISOString()]), '');
});

test('produce and consume are binary-safe with --encoding base64 / hex', async () => {
  await ok(['topics', 'create', 'cli-bytes', '--partitions', '1']);
  const values = [Buffer.from([0, 1, 2, 255, 10, 13]), Buffer.from('line\nbreak'), Buffer.alloc(0)];
  await ok(['produce', 'cli-bytes', '--encoding', 'base64'], values.map((b) => b.toString('base64')).join('\n') + '\n');
  const hex = (await ok(['consume', 'cli-bytes', '--encoding', 'hex'])).split('\n').slice(0, 3);
  assert.deepEqual(hex, values.map((b) => b.toString('hex')));
  const bad = await strand(['produce', 'cli-bytes', '--encoding', 'hex'], 'zz\n');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /not valid hex/);
});

test('groups: describe shows lag after a consumer commits; reset-offsets dry run changes nothing, --execute does', async () => {
  await ok(['topics', 'create', 'cli-grp', '--partitions', '2']);
  await ok(['produce', 'cli-grp', '--partition', '0'], Array.from({ length: 60 }, (_, i) => `a${i}`).join('\n') + '\n');
  await ok(['produce', 'cli-grp', '--partition', '1'], Array.from({ length: 40 }, (_, i) => `b${i}`).join('\n') + '\n');
  // A group member that reads 30 records and commits exactly those.
  const read = await ok(['consume', 'cli-grp', '--group', 'cli-g', '--from-beginning', '--max-messages', '30']);
  assert.equal(read.trimEnd().split('\n').length, 30);
  const d = JSON.parse(await ok(['groups', 'describe', 'cli-g', '--json'])) as Array<{ state: string; totalLag: number; partitions: Array<{ partition: number; committed: number | null; logEnd: number; lag: number | null }> }>;
  assert.equal(d[0]!.state, 'Empty');
  assert.equal(d[0]!.totalLag, 70);
  const committed = d[0]!.partitions.reduce((n, p) => n + (p.committed ?? 0), 0);
  assert.equal(committed, 30);
  const table = await ok(['groups', 'describe', 'cli-g']);
  assert.match(table, /TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG/);
  assert.match(table, /Total lag: 70/);
  assert.match(await ok(['groups', 'list']), /cli-g\s+Empty\s+consumer/);

  const before = JSON.stringify(JSON.parse(await ok(['groups', 'describe', 'cli-g', '--json']))[0].partitions);
  const dry = await ok(['groups', 'reset-offsets', 'cli-g', '--topic', 'cli-grp', '--to-earliest']);
  assert.match(dry, /CURRENT-OFFSET\s+NEW-OFFSET/);
  assert.match(dry, /Dry run: nothing changed/);
  assert.equal(JSON.stringify(JSON.parse(await ok(['groups', 'describe', 'cli-g', '--json']))[0].partitions), before);

  const plan = JSON.parse(await ok(['groups', 'reset-offsets', 'cli-g', '--topic', 'cli-grp:0', '--to-offset', '10', '--execute', '--json'])) as { executed: boolean; plan: Array<{ partition: number; newOffset: number }> };
  assert.equal(plan.executed, true);
  assert.deepEqual(plan.plan.map((p) => [p.partition, p.newOffset]), [[0, 10]]);
  await ok(['groups', 'reset-offsets', 'cli-g', '--topic', 'cli-grp:1', '--to-latest', '--execute']);
  await ok(['groups', 'reset-offsets', 'cli-g', '--topic', 'cli-grp:0', '--shift-by', '-5', '--execute']);
  const after = JSON.parse(await ok(['groups', 'describe', 'cli-g', '--json'])) as Array<{ partitions: Array<{ partition: number; committed: number; lag: number }> }>;
  assert.deepEqual(after[0]!.partitions.map((p) => [p.partition, p.committed, p.lag]), [[0, 5, 55], [1, 40, 0]]);
  // Replay: the group resumes at the reset offset.
  assert.equal((await ok(['consume', 'cli-grp', '--group', 'cli-g', '--max-messages', '1'])).trim(), 'a5');

  // Refused while the group has active members.
  const member = spawn(process.execPath, [STRAND_BIN, 'consume', 'cli-grp', '--group', 'cli-g', '--follow', '--bootstrap-server', broker.bootstrap], { stdio: 'ignore' });
  try {
    let active = false;
    for (let i = 0; i < 100 && !active; i++) {
      const g = JSON.parse(await ok(['groups', 'describe', 'cli-g', '--json'])) as Array<{ state: string }>;
      active = g[0]!.state === 'Stable';
      if (!active) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(active, 'the member joined');
    const refused = await strand(['groups', 'reset-offsets', 'cli-g', '--topic', 'cli-grp', '--to-earliest', '--execute']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /1 active member \(state Stable\)/);
    assert.match(refused.stderr, /stop the group's consumers/);
    const del = await strand(['groups', 'delete', 'cli-g']);
    assert.match(del.stderr, /NON_EMPTY_GROUP/);
  } finally {
    member.kill('SIGTERM');
    await new Promise((r) => member.once('exit', r));
  }
  await ok(['groups', 'delete-offsets', 'cli-g', '--topic', 'cli-grp']);
  await ok(['groups', 'delete', 'cli-g']);
  assert.doesNotMatch(await ok(['groups', 'list']), /cli-g\b/);
});

test('records delete, cluster status, perf produce and perf consume', async () => {
  await ok(['topics', 'create', 'cli-perf', '--partitions', '2']);
  const perf = JSON.parse(await ok(['perf', 'produce', 'cli-perf', '--num-records', '2000', '--record-size', '50', '--json'])) as Record<string, number>;
  assert.equal(perf['records'], 2000);
  for (const k of ['recordsPerSec', 'mbPerSec', 'p50Ms', 'p99Ms', 'p999Ms']) assert.ok(typeof perf[k] === 'number' && perf[k]! >= 0, k);
  const text = await ok(['perf', 'produce', 'cli-perf', '--num-records', '100', '--throughput', '1000']);
  assert.match(text, /100 records sent, [\d.]+ records\/sec \([\d.]+ MB\/sec\).* ms 50th, .* ms 99th, .* ms 99.9th/);
  const pc = JSON.parse(await ok(['perf', 'consume', 'cli-perf', '--json'])) as { records: number; recordsPerSec: number };
  assert.equal(pc.records, 2100);
  const del = JSON.parse(await ok(['records', 'delete', 'cli-perf', '--partition', '0', '--before', 'end', '--json'])) as { partitions: Array<{ partition: number; lowWatermark: number }> };
  const desc = JSON.parse(await ok(['topics', 'describe', 'cli-perf', '--json'])) as Array<{ partitions: Array<{ partition: number; earliest: number; latest: number }> }>;
  assert.equal(desc[0]!.partitions[0]!.earliest, del.partitions[0]!.lowWatermark);
  assert.equal(desc[0]!.partitions[0]!.earliest, desc[0]!.partitions[0]!.latest);
  const status = JSON.parse(await ok(['cluster', 'status', '--json'])) as { nodes: Array<{ port: number }>; controller: number; topics: number };
  assert.equal(status.nodes[0]!.port, broker.port);
  assert.ok(status.topics >= 1);
  assert.match(await ok(['cluster', 'status']), /Controller: \d+\s+Brokers: 1/);
});

test('an unreachable cluster fails fast with a hint', async () => {
  const port = await freePort();
  const r = await strand(['topics', 'list', '--bootstrap-server', `127.0.0.1:${port}`], '', { bootstrap: false });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /NETWORK_EXCEPTION|ECONNREFUSED/);
  assert.match(r.stderr, /hint: is a broker running there\?/);
});

/** Parses Prometheus text exposition: samples by name+labels, and TYPE per family. */
function parseExposition(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a valid exposition line: ${line}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return { samples, types };
}

test('the metrics endpoint serves valid exposition text whose counters move with traffic; /health and /ready', async () => {
  const scrape = async () => {
    const r = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
    return parseExposition(await r.text());
  };
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/ready`)).status, 200);
  await ok(['topics', 'create', 'cli-metrics', '--partitions', '1']);
  const a = await scrape();
  await ok(['produce', 'cli-metrics'], Array.from({ length: 50 }, (_, i) => `m${i}`).join('\n') + '\n');
  await ok(['consume', 'cli-metrics', '--group', 'cli-mg', '--from-beginning', '--max-messages', '20']);
  const b = await scrape();
  assert.equal(b.types.get('strand_requests_total'), 'counter');
  assert.equal(b.types.get('strand_request_duration_seconds'), 'histogram');
  assert.ok(b.samples.get('strand_requests_total{api="Produce"}')! > (a.samples.get('strand_requests_total{api="Produce"}') ?? 0));
  assert.ok(b.samples.get('strand_request_duration_seconds_count{api="Fetch"}')! >= 1);
  assert.equal(b.samples.get('strand_request_duration_seconds_bucket{api="Fetch",le="+Inf"}'), b.samples.get('strand_request_duration_seconds_count{api="Fetch"}'));
  assert.equal(b.samples.get('strand_records_in_total{topic="cli-metrics"}'), 50);
  assert.ok(b.samples.get('strand_bytes_in_total{topic="cli-metrics"}')! > 50 * 2);
  assert.ok(b.samples.get('strand_bytes_out_total{topic="cli-metrics"}')! > 0);
  assert.ok(b.samples.get('strand_records_out_total{topic="cli-metrics"}')! >= 20);
  assert.ok(b.samples.get('strand_log_size_bytes{topic="cli-metrics",partition="0"}')! > 0);
  assert.equal(b.samples.get('strand_log_end_offset{topic="cli-metrics",partition="0"}'), 50);
  assert.equal(b.samples.get('strand_consumer_group_lag{group="cli-mg",topic="cli-metrics",partition="0"}'), 30);
  assert.ok(b.samples.has('strand_connections'));
  // One replica per partition on a single broker: nothing under-replicated, nothing offline.
  assert.equal(b.types.get('strand_under_replicated_partitions'), 'gauge');
  assert.equal(b.samples.get('strand_under_replicated_partitions'), 0);
  assert.equal(b.samples.get('strand_offline_partitions'), 0);
});
