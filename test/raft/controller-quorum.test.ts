/**
 * Three controller-only `strand broker` processes (process.roles=controller) form the metadata
 * quorum over TCP: they elect a leader, which registers itself in the replicated metadata log and,
 * as the active controller, registers a broker (unfenced by its heartbeat) and creates a topic; kill -9 of the leader makes
 * the other two elect a new one in a later epoch that commits its own registration and knows the
 * topic; the killed node restarts and catches up; after a clean stop every node's log holds the
 * same committed records.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { FileRaftLog } from '../../src/raft/file-store.js';
import { freePort, STRAND_BIN } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

interface Node {
  id: number;
  port: number;
  dir: string;
  child: ChildProcess | null;
  out: string;
}

interface Quorum {
  errorCode: number;
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  currentVoters: Array<{ replicaId: number; logEndOffset: number }>;
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function request(port: number, apiKey: number, version: number, body: unknown): Promise<any> {
  const conn = await ProtocolConnection.connect('127.0.0.1', port, 'quorum-test');
  try {
    return await conn.send(apiKey, version, body);
  } finally {
    conn.close();
  }
}

/** DescribeQuorum on a node's controller listener; null when it is down. */
async function describeQuorum(port: number): Promise<Quorum | null> {
  let conn: ProtocolConnection;
  try {
    conn = await ProtocolConnection.connect('127.0.0.1', port, 'quorum-test');
  } catch {
    return null;
  }
  try {
    const r = await conn.send<{ topics: Array<{ partitions: Quorum[] }> }>(ApiKey.DescribeQuorum, 1, { topics: [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }] });
    return r.topics[0]!.partitions[0]!;
  } catch {
    return null;
  } finally {
    conn.close();
  }
}

test('three controller processes: election, kill -9 of the leader, re-election, catch-up, identical logs', { timeout: 120000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'strand-quorum-'));
  const nodes: Node[] = [];
  for (const id of [1, 2, 3]) nodes.push({ id, port: await freePort(), dir: join(root, `node-${id}`), child: null, out: '' });
  const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.port}`).join(',');
  t.after(() => {
    for (const n of nodes) n.child?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  const start = (n: Node): void => {
    const overrides = {
      'process.roles': 'controller',
      'node.id': n.id,
      'controller.quorum.voters': voters,
      listeners: `CONTROLLER://127.0.0.1:${n.port}`,
      'controller.listener.names': 'CONTROLLER',
      'log.dirs': n.dir,
      'controller.quorum.election.timeout.ms': 300,
      'controller.quorum.fetch.timeout.ms': 600,
      'controller.quorum.request.timeout.ms': 500,
      'controller.quorum.append.linger.ms': 5,
    };
    const args = [STRAND_BIN, 'broker', ...Object.entries(overrides).flatMap(([k, v]) => ['--override', `${k}=${v}`])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (n.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (n.out += d.toString()));
    n.child = child;
  };
  const stop = async (n: Node, signal: NodeJS.Signals): Promise<number | null> => {
    const child = n.child!;
    n.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  };
  /** The leader's DescribeQuorum once every node in `among` is caught up to a high watermark of at least `minHw`. */
  const settled = (among: Node[], minEpoch: number, minHw: number) =>
    waitFor(`a leader of epoch >= ${minEpoch} with ${among.map((n) => n.id).join(',')} caught up past ${minHw}`, async () => {
      for (const n of among) {
        const q = await describeQuorum(n.port);
        if (q === null || q.errorCode !== 0 || q.leaderEpoch < minEpoch || q.highWatermark < minHw) continue;
        const ids = new Set(among.map((m) => m.id));
        if (q.currentVoters.filter((v) => ids.has(v.replicaId)).every((v) => v.logEndOffset >= q.highWatermark)) return q;
      }
      return null;
    });

  for (const n of nodes) start(n);
  // LeaderChange and the leader's RegisterController: two committed entries at least.
  await settled(nodes, 1, 2);

  /** Sends to whichever node is the active controller (a slow machine may move leadership). */
  const toActive = (what: string, apiKey: number, version: number, body: unknown, errorOf: (r: any) => number) =>
    waitFor(what, async () => {
      for (const n of nodes) {
        if (n.child === null) continue;
        const r = await request(n.port, apiKey, version, body).catch(() => null);
        if (r !== null && errorOf(r) !== ErrorCode.NOT_CONTROLLER) return r;
      }
      return null;
    });

  // Real metadata through the active controller: a broker registration and a topic.
  const registered = await toActive('a broker registration', ApiKey.BrokerRegistration, 0, {
    brokerId: 101,
    clusterId: '',
    incarnationId: 'AAAAAAAAAAAAAAAAAAAAAQ',
    listeners: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092, securityProtocol: 0 }],
    features: [],
    rack: null,
    isMigratingZkBroker: false,
    logDirs: [],
    previousBrokerEpoch: -1,
  }, (r) => r.errorCode);
  assert.equal(registered.errorCode, 0);
  // A broker registers fenced; its heartbeat (caught up with its registration) unfences it.
  const heartbeat = await toActive('a broker heartbeat', ApiKey.BrokerHeartbeat, 0, {
    brokerId: 101,
    brokerEpoch: registered.brokerEpoch,
    currentMetadataOffset: registered.brokerEpoch,
    wantFence: false,
    wantShutDown: false,
    offlineLogDirs: [],
  }, (r) => r.errorCode);
  assert.equal(heartbeat.errorCode, 0);
  assert.equal(heartbeat.isFenced, false);
  const createOrders = { topics: [{ name: 'orders', numPartitions: 4, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false };
  const topicError = (r: any): number => r.topics[0].errorCode;
  assert.equal(topicError(await toActive('the topic', ApiKey.CreateTopics, 7, createOrders, topicError)), 0);

  const first = await settled(nodes, 1, 4);
  const leader = nodes.find((n) => n.id === first.leaderId)!;

  const killedAt = Date.now();
  await stop(leader, 'SIGKILL');
  const survivors = nodes.filter((n) => n !== leader);
  const second = await settled(survivors, first.leaderEpoch + 1, first.highWatermark + 2);
  console.log(`new leader ${second.leaderId} in epoch ${second.leaderEpoch} (was ${first.leaderId} in ${first.leaderEpoch}) ${Date.now() - killedAt} ms after kill -9`);
  assert.notEqual(second.leaderId, leader.id);

  // The new active controller has the topic committed under the old one.
  assert.equal(topicError(await toActive('the new active controller', ApiKey.CreateTopics, 7, createOrders, topicError)), ErrorCode.TOPIC_ALREADY_EXISTS);

  start(leader);
  const third = await settled(nodes, second.leaderEpoch, second.highWatermark);

  for (const n of nodes) assert.equal(await stop(n, 'SIGTERM'), 0, `node ${n.id} did not stop cleanly:\n${n.out.slice(-2000)}`);
  for (const n of nodes) assert.doesNotMatch(n.out, / ERROR /, `node ${n.id} logged an error:\n${n.out}`);

  // Every log holds the same entries below the high watermark, with each leader's registration.
  const logs = nodes.map((n) => FileRaftLog.open(join(n.dir, '__cluster_metadata-0')));
  const committed = (log: FileRaftLog): string[] => {
    const out: string[] = [];
    for (let o = log.logStartOffset; o < third.highWatermark; o++) {
      const e = log.entry(o);
      out.push(`${e.epoch}:${e.control ? 'control' : e.value.toString()}`);
    }
    return out;
  };
  const reference = committed(logs[0]!);
  for (const log of logs.slice(1)) assert.deepEqual(committed(log), reference);
  const registrations = reference.filter((e) => e.includes('RegisterController')).map((e) => JSON.parse(e.slice(e.indexOf(':') + 1))[0]);
  assert(registrations.some((r) => r.controllerId === first.leaderId && r.leaderEpoch === first.leaderEpoch));
  assert(registrations.some((r) => r.controllerId === second.leaderId && r.leaderEpoch === second.leaderEpoch));
  assert(reference.some((e) => e.includes('"type":"Topic","name":"orders"')), 'the topic is in the committed log');
  for (const log of logs) log.close();
});
