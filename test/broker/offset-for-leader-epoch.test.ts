/**
 * OffsetForLeaderEpoch (key 23) against an in-process broker, with the generated codecs as the
 * client. Leader changes are real metadata changes: a Partition record committed through the
 * broker's controller (what an election commits), after which produce writes the new epoch.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { ScramClient } from '../../src/protocol/scram.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

let strand: StrandTestBroker;
let c: ProtocolConnection;

before(async () => {
  strand = await startStrand({ topics: ['epochs', 'moved', { name: 'two', partitions: 2 }] });
  c = await ProtocolConnection.connect(strand.host, strand.port);
});

after(async () => {
  c?.close();
  await strand?.stop();
});

async function produce(conn: ProtocolConnection, topic: string, n: number): Promise<number> {
  const records = encodeRecordBatch({ records: Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`), timestamp: Date.now() })) });
  const r = await conn.send<m.ProduceResponse>(m.ApiKey.Produce, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return r.responses[0]!.partitionResponses[0]!.errorCode;
}

/** Commits a new leader (and epoch) for partition 0 of `topic`, as an election would; waits until the broker applied it. */
async function elect(topic: string, leader: number, leaderEpoch: number, replicas?: number[]): Promise<void> {
  const broker = strand.broker;
  const t = broker.image.topic(topic)!;
  const p = t.partitions.find((x) => x.partition === 0)!;
  const reps = replicas ?? [...p.replicas];
  await broker.controller.run(() => ({
    records: [{ type: 'Partition' as const, topicId: t.topicId, partition: 0, replicas: reps, isr: reps, leader, leaderEpoch, partitionEpoch: p.partitionEpoch + 1 }],
    result: undefined,
  }));
  const deadline = Date.now() + 5000;
  while (broker.replicaManager.getPartition(topic, 0)?.leaderEpoch !== leaderEpoch) {
    assert.ok(Date.now() < deadline, 'the broker did not apply the new leader epoch');
    await new Promise((r) => setTimeout(r, 5));
  }
}

type Ask = { partition?: number; leaderEpoch: number; currentLeaderEpoch?: number };

async function offsetForLeaderEpoch(topic: string, asks: Ask[], opts: { version?: number; replicaId?: number; conn?: ProtocolConnection } = {}): Promise<m.OffsetForLeaderEpochResponseEpochEndOffset[]> {
  const r = await (opts.conn ?? c).send<m.OffsetForLeaderEpochResponse>(m.ApiKey.OffsetForLeaderEpoch, opts.version ?? 4, {
    replicaId: opts.replicaId ?? -1,
    topics: [{ topic, partitions: asks.map((a) => ({ partition: a.partition ?? 0, leaderEpoch: a.leaderEpoch, currentLeaderEpoch: a.currentLeaderEpoch ?? -1 })) }],
  });
  assert.equal(r.topics.length, 1);
  assert.equal(r.topics[0]!.topic, topic);
  return r.topics[0]!.partitions;
}

const brief = (rs: m.OffsetForLeaderEpochResponseEpochEndOffset[]): Array<[number, number, number]> => rs.map((r) => [r.errorCode, r.leaderEpoch, r.endOffset]);

test('OffsetForLeaderEpoch is advertised as v0–4', async () => {
  const r = await c.send<m.ApiVersionsResponse>(m.ApiKey.ApiVersions, 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  const k = r.apiKeys.find((a) => a.apiKey === 23);
  assert.deepEqual(k && [k.minVersion, k.maxVersion], [0, 4]);
});

test('each epoch ends where the next begins, the latest at the log end (Kafka endOffsetFor)', { timeout: 30000 }, async () => {
  const start = strand.broker.replicaManager.getPartition('epochs', 0)!.leaderEpoch;
  assert.equal(await produce(c, 'epochs', 3), ErrorCode.NONE); // start: 0..2
  await elect('epochs', strand.broker.nodeId, start + 2);
  assert.equal(await produce(c, 'epochs', 2), ErrorCode.NONE); // start+2: 3..4
  await elect('epochs', strand.broker.nodeId, start + 5);
  assert.equal(await produce(c, 'epochs', 1), ErrorCode.NONE); // start+5: 5
  const e = start;
  assert.deepEqual(
    brief(await offsetForLeaderEpoch('epochs', [{ leaderEpoch: e }, { leaderEpoch: e + 1 }, { leaderEpoch: e + 2 }, { leaderEpoch: e + 4 }, { leaderEpoch: e + 5 }, { leaderEpoch: e + 6 }, { leaderEpoch: -1 }])),
    [
      [ErrorCode.NONE, e, 3],
      [ErrorCode.NONE, e, 3],
      [ErrorCode.NONE, e + 2, 5],
      [ErrorCode.NONE, e + 2, 5],
      [ErrorCode.NONE, e + 5, 6],
      [ErrorCode.NONE, -1, -1],
      [ErrorCode.NONE, -1, -1],
    ],
  );
  // current_leader_epoch (v2+): older is fenced, newer unknown, equal answers.
  assert.deepEqual(
    brief(await offsetForLeaderEpoch('epochs', [{ leaderEpoch: e, currentLeaderEpoch: e + 4 }, { leaderEpoch: e, currentLeaderEpoch: e + 6 }, { leaderEpoch: e, currentLeaderEpoch: e + 5 }])),
    [
      [ErrorCode.FENCED_LEADER_EPOCH, -1, -1],
      [ErrorCode.UNKNOWN_LEADER_EPOCH, -1, -1],
      [ErrorCode.NONE, e, 3],
    ],
  );
  // Old versions: v0 has no epoch in the answer, v0–1 no current_leader_epoch (not checked).
  for (const version of [0, 1, 2, 3]) {
    const [r] = await offsetForLeaderEpoch('epochs', [{ leaderEpoch: e + 2, currentLeaderEpoch: e + 5 }], { version, replicaId: 1 });
    assert.equal(r!.errorCode, ErrorCode.NONE, `v${version}`);
    assert.equal(r!.endOffset, 5, `v${version}`);
    assert.equal(r!.leaderEpoch, version === 0 ? -1 : e + 2, `v${version}`);
  }
});

test('an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; several partitions answer each', async () => {
  assert.deepEqual(brief(await offsetForLeaderEpoch('no-such-topic', [{ leaderEpoch: 0 }])), [[ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1]]);
  assert.deepEqual(brief(await offsetForLeaderEpoch('epochs', [{ partition: 7, leaderEpoch: 0 }])), [[ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1]]);
  const e = strand.broker.replicaManager.getPartition('two', 1)!.leaderEpoch;
  const rs = await offsetForLeaderEpoch('two', [
    { partition: 0, leaderEpoch: e },
    { partition: 1, leaderEpoch: e },
  ]);
  assert.deepEqual(rs.map((r) => [r.partition, r.errorCode]), [
    [0, ErrorCode.NONE],
    [1, ErrorCode.NONE],
  ]);
  // Nothing written yet: the cache knows no epoch.
  assert.deepEqual(brief(rs), [
    [ErrorCode.NONE, -1, -1],
    [ErrorCode.NONE, -1, -1],
  ]);
});

test('a partition led by another broker answers NOT_LEADER_OR_FOLLOWER, to consumers and replicas alike', { timeout: 30000 }, async () => {
  assert.equal(await produce(c, 'moved', 2), ErrorCode.NONE);
  const self = strand.broker.nodeId;
  const e = strand.broker.replicaManager.getPartition('moved', 0)!.leaderEpoch;
  await elect('moved', self + 100, e + 1, [self, self + 100]);
  assert.deepEqual(brief(await offsetForLeaderEpoch('moved', [{ leaderEpoch: e }])), [[ErrorCode.NOT_LEADER_OR_FOLLOWER, -1, -1]]);
  assert.deepEqual(brief(await offsetForLeaderEpoch('moved', [{ leaderEpoch: e }], { replicaId: self + 100 })), [[ErrorCode.NOT_LEADER_OR_FOLLOWER, -1, -1]]);
  // The epoch check comes first, as in Kafka.
  assert.deepEqual(brief(await offsetForLeaderEpoch('moved', [{ leaderEpoch: e, currentLeaderEpoch: e }])), [[ErrorCode.FENCED_LEADER_EPOCH, -1, -1]]);
  // Leadership back here: answered again.
  await elect('moved', self, e + 2, [self, self + 100]);
  assert.deepEqual(brief(await offsetForLeaderEpoch('moved', [{ leaderEpoch: e }])), [[ErrorCode.NONE, e, 2]]);
});

test('with an authorizer: Describe on the topic, or ClusterAction on the cluster; otherwise TOPIC_AUTHORIZATION_FAILED', { timeout: 60000 }, async () => {
  const secured = await startStrand({
    securityProtocols: ['SASL_PLAINTEXT'],
    config: { 'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer', 'super.users': 'User:admin', 'sasl.enabled.mechanisms': 'SCRAM-SHA-256' },
    users: [
      { name: 'admin', password: 'admin-pw', mechanisms: ['SCRAM-SHA-256'] },
      { name: 'reader', password: 'reader-pw', mechanisms: ['SCRAM-SHA-256'] },
      { name: 'replica', password: 'replica-pw', mechanisms: ['SCRAM-SHA-256'] },
    ],
    topics: ['seen', 'unseen'],
  });
  const conns: ProtocolConnection[] = [];
  try {
    const login = async (user: string): Promise<ProtocolConnection> => {
      const [host, port] = secured.bootstrapFor('SASL_PLAINTEXT').split(':');
      const conn = await ProtocolConnection.connect(host!, Number(port), `ofle-${user}`);
      conns.push(conn);
      await conn.send(m.ApiKey.SaslHandshake, 1, { mechanism: 'SCRAM-SHA-256' });
      const client = new ScramClient('SCRAM-SHA-256', user, `${user}-pw`);
      const first = await conn.send<m.SaslAuthenticateResponse>(m.ApiKey.SaslAuthenticate, 2, { authBytes: client.first() });
      const final = await conn.send<m.SaslAuthenticateResponse>(m.ApiKey.SaslAuthenticate, 2, { authBytes: await client.final(first.authBytes) });
      assert.equal(final.errorCode, ErrorCode.NONE, `login as ${user}`);
      return conn;
    };
    const admin = await login('admin');
    const acls = await admin.send<m.CreateAclsResponse>(m.ApiKey.CreateAcls, 3, {
      creations: [
        { resourceType: 2, resourceName: 'seen', resourcePatternType: 3, principal: 'User:reader', host: '*', operation: 8, permissionType: 3 },
        { resourceType: 4, resourceName: 'kafka-cluster', resourcePatternType: 3, principal: 'User:replica', host: '*', operation: 9, permissionType: 3 },
      ],
    });
    assert.ok(acls.results.every((r) => r.errorCode === ErrorCode.NONE));
    assert.equal(await produce(admin, 'seen', 1), ErrorCode.NONE);
    assert.equal(await produce(admin, 'unseen', 1), ErrorCode.NONE);
    const epoch = secured.broker.replicaManager.getPartition('seen', 0)!.leaderEpoch;
    const ask = async (conn: ProtocolConnection, topic: string, replicaId = -1): Promise<number> => (await offsetForLeaderEpoch(topic, [{ leaderEpoch: epoch }], { conn, replicaId }))[0]!.errorCode;
    const reader = await login('reader');
    assert.equal(await ask(reader, 'seen'), ErrorCode.NONE);
    assert.equal(await ask(reader, 'unseen'), ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    assert.equal(await ask(reader, 'unseen', 5), ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    const replica = await login('replica');
    assert.equal(await ask(replica, 'seen', 5), ErrorCode.NONE);
    assert.equal(await ask(replica, 'unseen', 5), ErrorCode.NONE);
    assert.equal(await ask(admin, 'unseen'), ErrorCode.NONE);
  } finally {
    for (const conn of conns) conn.close();
    await secured.stop();
  }
});
