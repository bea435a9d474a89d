/**
 * The controller-only node in-process: config validation, metadata records replicated and
 * applied to every voter's image, snapshots of the image (and a restart from one), DescribeQuorum.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { BrokerConfig, ConfigError, parseQuorumVoters } from '../../src/broker/config.js';
import { createLogger } from '../../src/broker/logger.js';
import { MetadataImage } from '../../src/broker/metadata/image.js';
import { decodeSnapshot, encodeSnapshot, imageRecords, QuorumControllerNode } from '../../src/broker/metadata/quorum-controller.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ApiKey } from '../../src/protocol/messages/index.js';
import { freePort } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

const logger = createLogger({ level: 'warn' });

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('controller.quorum.voters is parsed as id@host:port and bad values are ConfigErrors', () => {
  assert.deepEqual(parseQuorumVoters('1@127.0.0.1:9093, 2@[::1]:9094'), [
    { id: 1, host: '127.0.0.1', port: 9093 },
    { id: 2, host: '::1', port: 9094 },
  ]);
  assert.throws(() => parseQuorumVoters('1@host'), ConfigError);
  assert.throws(() => parseQuorumVoters('1@a:1,1@b:2'), /twice/);
  assert.throws(() => new BrokerConfig(new Map([['controller.quorum.voters', 'x@y:1']])), ConfigError);
  // The single-node default has no quorum and both roles.
  const single = new BrokerConfig(new Map());
  assert.equal(single.quorumVoters, null);
  assert.deepEqual(single.processRoles, ['broker', 'controller']);
});

test('a controller node refuses a config it cannot run with', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-qc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { 'process.roles': 'controller', 'log.dirs': dir, listeners: 'CONTROLLER://127.0.0.1:0' };
  const config = (extra: Record<string, string>): BrokerConfig => new BrokerConfig(new Map(Object.entries({ ...base, ...extra })));
  await assert.rejects(QuorumControllerNode.start(config({ 'controller.listener.names': 'CONTROLLER' }), logger), /needs controller.quorum.voters/);
  await assert.rejects(QuorumControllerNode.start(config({ 'node.id': '4', 'controller.quorum.voters': '1@127.0.0.1:1', 'controller.listener.names': 'CONTROLLER' }), logger), /not one of controller.quorum.voters/);
  // Without controller.listener.names the CONTROLLER listener has no security protocol: refused when the config is read.
  assert.throws(() => config({ 'controller.quorum.voters': '1@127.0.0.1:1' }), /listener CONTROLLER has no security protocol.*controller.listener.names/);
  await assert.rejects(QuorumControllerNode.start(config({ 'controller.quorum.voters': '1@127.0.0.1:1', 'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT' }), logger), /needs controller.listener.names/);
  await assert.rejects(QuorumControllerNode.start(config({ 'controller.quorum.voters': '1@127.0.0.1:1', 'controller.listener.names': 'OTHER', 'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT' }), logger), /no listener/);
});

test('a snapshot rebuilds the same image and controllers', () => {
  let image = MetadataImage.EMPTY;
  const records = [
    { type: 'RegisterBroker', brokerId: 1, host: 'h', port: 9092, rack: null, incarnationId: 'x' },
    { type: 'Topic', name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAg' },
    { type: 'Partition', topicId: 'AAAAAAAAAAAAAAAAAAAAAg', partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'Config', resourceType: 'topic', resourceName: 'orders', name: 'retention.ms', value: '1000' },
    { type: 'Config', resourceType: 'broker', resourceName: '', name: 'num.partitions', value: '3' },
    { type: 'ProducerIds', brokerId: 1, nextProducerId: 5000 },
  ] as const;
  records.forEach((r, i) => (image = image.apply(r as never, i)));
  const state = { image, controllers: new Map([[2, { controllerId: 2, host: 'c', port: 9093, leaderEpoch: 4 }]]), nextOffset: 10 };
  const back = decodeSnapshot({ endOffset: 10, epoch: 4 }, encodeSnapshot(state));
  assert.deepEqual(imageRecords(back.image), imageRecords(image));
  assert.deepEqual([...back.controllers], [...state.controllers]);
  assert.equal(back.nextOffset, 10);
  assert.throws(() => decodeSnapshot({ endOffset: 11, epoch: 4 }, encodeSnapshot(state)), /not a metadata snapshot/);
});

/**
 * Three controller-only voters on free loopback ports, each with its own data dir under a temporary
 * root (removed after the test); `extra` adds configs. Every node is shut down after the test.
 */
async function startControllerQuorum(t: TestContext, extra: Record<string, string> = {}): Promise<{ root: string; config: (id: number) => BrokerConfig; nodes: Map<number, QuorumControllerNode> }> {
  const root = mkdtempSync(join(tmpdir(), 'strand-qc-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const ports = [await freePort(), await freePort(), await freePort()];
  const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',');
  const config = (id: number): BrokerConfig =>
    new BrokerConfig(
      new Map(
        Object.entries({
          'process.roles': 'controller',
          'node.id': String(id),
          'controller.quorum.voters': voters,
          'controller.listener.names': 'CONTROLLER',
          listeners: `CONTROLLER://127.0.0.1:${ports[id - 1]}`,
          'log.dirs': join(root, `node-${id}`),
          'controller.quorum.election.timeout.ms': '500',
          'controller.quorum.fetch.timeout.ms': '1500',
          'controller.quorum.append.linger.ms': '1',
          ...extra,
        }),
      ),
    );
  const nodes = new Map<number, QuorumControllerNode>();
  t.after(async () => {
    for (const n of nodes.values()) await n.shutdown();
  });
  for (const id of [1, 2, 3]) nodes.set(id, await QuorumControllerNode.start(config(id), logger));
  return { root, config, nodes };
}

test('three controller nodes replicate metadata records into their images, snapshot, and restart from a snapshot', { timeout: 60000 }, async (t) => {
  const { root, config, nodes } = await startControllerQuorum(t, { 'metadata.log.max.record.bytes.between.snapshots': '400' });

  const leader = (): QuorumControllerNode | undefined => [...nodes.values()].find((n) => n.isLeader && n.controllers.has(n.nodeId));
  await waitFor('a leader that registered itself', () => leader() !== undefined);
  const l = leader()!;
  for (let i = 0; i < 20; i++) {
    assert.notEqual(l.propose([{ type: 'Topic', name: `topic-${i}`, topicId: `AAAAAAAAAAAAAAAAAAAA${String(i).padStart(2, '0')}` }]), null);
  }
  for (const n of nodes.values()) await waitFor(`node ${n.nodeId} to apply 20 topics`, () => n.image.topicsByName.size === 20);
  for (const n of nodes.values()) assert.deepEqual([...n.controllers.keys()], [l.nodeId]);

  // Records past the snapshot threshold: every node snapshotted and deleted the log below it.
  for (const id of [1, 2, 3]) {
    const dir = join(root, `node-${id}`, '__cluster_metadata-0');
    await waitFor(`node ${id} to write a snapshot`, () => fs.readdirSync(dir).some((f) => f.endsWith('.checkpoint')));
    assert(fs.readdirSync(dir).includes('quorum-state'));
  }

  // DescribeQuorum: the leader answers with the voters; a follower says it is not the leader.
  const follower = [...nodes.values()].find((n) => n !== l)!;
  const conn = await ProtocolConnection.connect('127.0.0.1', l.port);
  const body = { topics: [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }] };
  const q = (await conn.send(ApiKey.DescribeQuorum, 1, body)).topics[0].partitions[0];
  conn.close();
  assert.equal(q.errorCode, ErrorCode.NONE);
  assert.equal(q.leaderId, l.nodeId);
  assert.deepEqual(q.currentVoters.map((v: { replicaId: number }) => v.replicaId), [1, 2, 3]);
  const fconn = await ProtocolConnection.connect('127.0.0.1', follower.port);
  const fq = (await fconn.send(ApiKey.DescribeQuorum, 0, body)).topics[0].partitions[0];
  fconn.close();
  assert.equal(fq.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
  assert.equal(fq.leaderId, l.nodeId);

  // A follower restarts from its snapshot (and the log above it) with the same image.
  const expected = imageRecords(follower.image);
  await follower.shutdown();
  nodes.delete(follower.nodeId);
  const restarted = await QuorumControllerNode.start(config(follower.nodeId), logger);
  nodes.set(follower.nodeId, restarted);
  // Loaded from its own snapshot before it hears from the leader.
  assert(restarted.image.topicsByName.size > 0, 'the snapshot was not loaded at start');
  await waitFor('the restarted node to re-apply everything', () => restarted.image.topicsByName.size === 20);
  assert.deepEqual(imageRecords(restarted.image), expected);
});

test('the active controller registers brokers and creates topics through the quorum; the next one carries on', { timeout: 60000 }, async (t) => {
  const { nodes } = await startControllerQuorum(t);
  const active = (): QuorumControllerNode | undefined => [...nodes.values()].find((n) => n.activeController !== null);
  await waitFor('an active controller', () => active() !== undefined);
  const first = active()!;

  const send = async (node: QuorumControllerNode, apiKey: number, version: number, body: unknown): Promise<any> => {
    const c = await ProtocolConnection.connect('127.0.0.1', node.port);
    try {
      return await c.send(apiKey, version, body);
    } finally {
      c.close();
    }
  };
  const register = (node: QuorumControllerNode, brokerId: number) =>
    send(node, ApiKey.BrokerRegistration, 0, {
      brokerId,
      clusterId: '',
      incarnationId: 'AAAAAAAAAAAAAAAAAAAAAQ',
      listeners: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092 + brokerId, securityProtocol: 0 }],
      features: [],
      rack: null,
      isMigratingZkBroker: false,
      logDirs: [],
      previousBrokerEpoch: -1,
    });
  const createTopic = (node: QuorumControllerNode, name: string) =>
    send(node, ApiKey.CreateTopics, 7, { topics: [{ name, numPartitions: 3, replicationFactor: 2, assignments: [], configs: [{ name: 'retention.ms', value: '60000' }] }], timeoutMs: 5000, validateOnly: false });

  const follower = [...nodes.values()].find((n) => n !== first)!;
  assert.equal((await register(follower, 101)).errorCode, ErrorCode.NOT_CONTROLLER);
  assert.equal((await createTopic(follower, 'orders')).topics[0].errorCode, ErrorCode.NOT_CONTROLLER);

  /** Retries on whichever node is active: a slow machine may move leadership meanwhile. */
  const onActive = async <T>(what: string, call: (n: QuorumControllerNode) => Promise<T>, errorOf: (r: T) => number): Promise<T> => {
    const deadline = Date.now() + 15000;
    for (;;) {
      const n = active();
      if (n !== undefined) {
        const r = await call(n);
        if (errorOf(r) !== ErrorCode.NOT_CONTROLLER) return r;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  for (const id of [101, 102]) {
    const r = await onActive(`registering broker ${id}`, (n) => register(n, id), (x) => x.errorCode);
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert(r.brokerEpoch > 0);
    // A broker registers fenced; a heartbeat from a broker that has caught up unfences it.
    const heartbeat = (n: QuorumControllerNode) =>
      send(n, ApiKey.BrokerHeartbeat, 0, { brokerId: id, brokerEpoch: r.brokerEpoch, currentMetadataOffset: r.brokerEpoch, wantFence: false, wantShutDown: false, offlineLogDirs: [] });
    const hb = await onActive(`unfencing broker ${id}`, heartbeat, (x) => x.errorCode);
    assert.equal(hb.errorCode, ErrorCode.NONE);
    assert.equal(hb.isFenced, false);
  }
  const created = (await onActive('creating orders', (n) => createTopic(n, 'orders'), (x) => x.topics[0].errorCode)).topics[0];
  assert.equal(created.errorCode, ErrorCode.NONE, created.errorMessage);
  assert.equal(created.numPartitions, 3);
  // Committed before the answer: replicated to every voter's image.
  for (const n of nodes.values()) {
    await waitFor(`node ${n.nodeId} to apply the topic`, () => n.image.topic('orders')?.partitions.length === 3);
    const topic = n.image.topic('orders')!;
    assert.equal(topic.configs.get('retention.ms'), '60000');
    assert.deepEqual([...n.image.brokers.keys()].sort(), [101, 102]);
    for (const p of topic.partitions) assert.equal(p.replicas.length, 2);
  }

  // The active controller stops; the next one starts from the committed image.
  const stopping = active()!;
  await stopping.shutdown();
  nodes.delete(stopping.nodeId);
  await waitFor('a new active controller', () => active() !== undefined);
  const topicError = (x: any): number => x.topics[0].errorCode;
  assert.equal(topicError(await onActive('orders again', (n) => createTopic(n, 'orders'), topicError)), ErrorCode.TOPIC_ALREADY_EXISTS);
  assert.equal(topicError(await onActive('payments', (n) => createTopic(n, 'payments'), topicError)), ErrorCode.NONE);
  for (const n of nodes.values()) await waitFor(`node ${n.nodeId} to apply the second topic`, () => n.image.topic('payments') !== undefined);
});
