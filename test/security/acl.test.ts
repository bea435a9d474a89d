/**
 * Issue 9 acceptance, authorization: with the StandardAuthorizer switch on, a principal with only
 * Read on a topic and its group consumes and cannot produce, create or delete; prefixed ACLs;
 * deny beats allow; no Describe hides a topic from Metadata; transactional producers need Write
 * on their transactional id; the ACL apis and their persistence; mutual TLS principals mapped by
 * ssl.principal.mapping.rules. Clients log in with SCRAM on a SASL_PLAINTEXT listener (KafkaJS
 * for the consumer and transactional producer, raw requests where the exact error code matters).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import {
  ApiKey,
  defaultFetchRequest,
  type CreateAclsResponse,
  type CreateTopicsResponse,
  type DeleteAclsResponse,
  type DescribeClusterResponse,
  type DeleteTopicsResponse,
  type DescribeAclsResponse,
  type FetchResponse,
  type InitProducerIdResponse,
  type MetadataResponse,
  type ProduceResponse,
  type SaslAuthenticateResponse,
} from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { ZERO_UUID } from '../../src/protocol/reader.js';
import { ScramClient } from '../../src/protocol/scram.js';
import { kcat, skipUnless } from '../interop/helpers.js';
import { makeTestPki, type TestPki } from './certs.js';

const PASSWORDS = new Map(['admin', 'reader', 'writer', 'mixed', 'txn', 'ops'].map((u) => [u, `pw-${randomBytes(10).toString('hex')}`]));

// Kafka's codes: resource types, pattern types, operations, permissions.
const TOPIC = 2;
const GROUP = 3;
const TXN_ID = 5;
const LITERAL = 3;
const PREFIXED = 4;
const OP = { All: 2, Read: 3, Write: 4, Create: 5, Delete: 6, Describe: 8 } as const;
const DENY = 2;
const ALLOW = 3;

let strand: StrandTestBroker;
let dataDir: string;

async function start(dir: string): Promise<StrandTestBroker> {
  return startStrand({
    dataDir: dir,
    securityProtocols: ['SASL_PLAINTEXT'],
    config: {
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'super.users': 'User:admin',
      'auto.create.topics.enable': 'false',
    },
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'strand-acl-'));
  strand = await start(dataDir);
  for (const [u, p] of PASSWORDS) await strand.addUser(u, p, ['SCRAM-SHA-256']);
  await strand.createTopics(['orders', 'logs-app', 'other', 'secret', 'hidden', 'txn-out']);
});

after(async () => {
  await strand?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function login(user: string): Promise<ProtocolConnection> {
  const [host, port] = strand.bootstrapFor('SASL_PLAINTEXT').split(':');
  const c = await ProtocolConnection.connect(host!, Number(port), `acl-test-${user}`);
  await c.send(ApiKey.SaslHandshake, 1, { mechanism: 'SCRAM-SHA-256' });
  const client = new ScramClient('SCRAM-SHA-256', user, PASSWORDS.get(user)!);
  const first = await c.send<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 2, { authBytes: client.first() });
  assert.equal(first.errorCode, ErrorCode.NONE);
  const final = await c.send<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 2, { authBytes: await client.final(first.authBytes) });
  assert.equal(final.errorCode, ErrorCode.NONE, `login as ${user}`);
  client.verify(final.authBytes);
  return c;
}

interface Acl {
  host?: string;
  resourceType: number;
  resourceName: string;
  resourcePatternType?: number;
  principal: string;
  operation: number;
  permissionType?: number;
}

async function createAcls(acls: Acl[], as = 'admin'): Promise<CreateAclsResponse> {
  const c = await login(as);
  try {
    return await c.send<CreateAclsResponse>(ApiKey.CreateAcls, 3, {
      creations: acls.map((a) => ({ resourcePatternType: LITERAL, permissionType: ALLOW, host: '*', ...a })),
    });
  } finally {
    c.close();
  }
}

async function produce(c: ProtocolConnection, topic: string, value: string, transactionalId: string | null = null): Promise<number> {
  const records = encodeRecordBatch({ records: [{ key: null, value: Buffer.from(value), timestamp: Date.now() }] });
  const r = await c.send<ProduceResponse>(ApiKey.Produce, 9, { transactionalId, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] });
  return r.responses[0]!.partitionResponses[0]!.errorCode;
}

async function fetchError(c: ProtocolConnection, topic: string): Promise<number> {
  const r = await c.send<FetchResponse>(ApiKey.Fetch, 12, {
    ...defaultFetchRequest(),
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    topics: [{ topic, topicId: ZERO_UUID, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
  });
  return r.responses[0]!.partitions[0]!.errorCode;
}

async function metadata(c: ProtocolConnection, topics: string[] | null): Promise<MetadataResponse> {
  return c.send<MetadataResponse>(ApiKey.Metadata, 12, { topics: topics === null ? null : topics.map((name) => ({ name, topicId: ZERO_UUID })), allowAutoTopicCreation: false, includeTopicAuthorizedOperations: true });
}

test('a principal with only Read on a topic and its group consumes, and cannot produce, create or delete', { ...skipUnless('kafkajs'), timeout: 60000 }, async () => {
  assert.ok((await createAcls([
    { resourceType: TOPIC, resourceName: 'orders', principal: 'User:reader', operation: OP.Read },
    { resourceType: GROUP, resourceName: 'orders-app', principal: 'User:reader', operation: OP.Read },
  ])).results.every((r) => r.errorCode === ErrorCode.NONE));
  const admin = await login('admin');
  for (let i = 0; i < 3; i++) assert.equal(await produce(admin, 'orders', `order-${i}`), ErrorCode.NONE);
  admin.close();

  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const kafka = new Kafka({
    clientId: 'acl-reader',
    brokers: [strand.bootstrapFor('SASL_PLAINTEXT')],
    sasl: { mechanism: 'scram-sha-256', username: 'reader', password: PASSWORDS.get('reader')! },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const consumer = kafka.consumer({ groupId: 'orders-app' });
  await consumer.connect();
  await consumer.subscribe({ topics: ['orders'], fromBeginning: true });
  const seen: string[] = [];
  const all = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value!.toString());
        if (seen.length === 3) resolve();
      },
    });
  });
  await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`consumed only ${JSON.stringify(seen)}`)), 30000))]);
  await consumer.disconnect();
  assert.deepEqual(seen, ['order-0', 'order-1', 'order-2']);

  const producer = kafka.producer();
  await producer.connect();
  await assert.rejects(producer.send({ topic: 'orders', messages: [{ value: 'nope' }] }), (e: Error & { type?: string }) => e.type === 'TOPIC_AUTHORIZATION_FAILED' || /authoriz/i.test(e.message));
  await producer.disconnect();

  const reader = await login('reader');
  assert.equal(await produce(reader, 'orders', 'nope'), ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  const created = await reader.send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, { topics: [{ name: 'orders-2', numPartitions: 1, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
  assert.equal(created.topics[0]!.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  const deleted = await reader.send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 6, { topics: [{ name: 'orders', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
  assert.equal(deleted.responses[0]!.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  assert.ok(strand.broker.image.topic('orders') !== undefined, 'orders still exists');
  // Read on a group does not give another group.
  assert.equal(await fetchError(reader, 'orders'), ErrorCode.NONE);
  reader.close();
});

test('prefixed ACLs cover every topic with the prefix and nothing else', async () => {
  await createAcls([{ resourceType: TOPIC, resourceName: 'logs-', resourcePatternType: PREFIXED, principal: 'User:writer', operation: OP.Write }]);
  const writer = await login('writer');
  assert.equal(await produce(writer, 'logs-app', 'line'), ErrorCode.NONE);
  assert.equal(await produce(writer, 'other', 'line'), ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  // Write implies Describe: the prefixed topic is visible, the other one is not.
  const names = (await metadata(writer, null)).topics.map((t) => t.name);
  assert.deepEqual(names, ['logs-app']);
  writer.close();
});

test('deny beats allow', async () => {
  await createAcls([
    { resourceType: TOPIC, resourceName: '*', principal: 'User:mixed', operation: OP.All },
    { resourceType: TOPIC, resourceName: 'secret', principal: 'User:mixed', operation: OP.Read, permissionType: DENY },
  ]);
  const mixed = await login('mixed');
  assert.equal(await produce(mixed, 'secret', 'x'), ErrorCode.NONE);
  assert.equal(await fetchError(mixed, 'secret'), ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  assert.equal(await fetchError(mixed, 'other'), ErrorCode.NONE);
  mixed.close();
});

test('a principal without Describe does not see the topic in Metadata', async () => {
  const reader = await login('reader');
  const all = await metadata(reader, null);
  assert.deepEqual(all.topics.map((t) => t.name), ['orders']);
  assert.equal(all.topics[0]!.topicAuthorizedOperations, (1 << OP.Read) | (1 << OP.Describe));
  const named = await metadata(reader, ['hidden', 'orders']);
  assert.deepEqual(named.topics.map((t) => [t.name, t.errorCode]), [['hidden', ErrorCode.TOPIC_AUTHORIZATION_FAILED], ['orders', ErrorCode.NONE]]);
  // A topic that does not exist answers the same as one that is hidden: existence does not leak.
  assert.equal((await metadata(reader, ['no-such-topic'])).topics[0]!.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  reader.close();
});

test('an ACL applies only to clients from its host', async () => {
  await createAcls([{ resourceType: TOPIC, resourceName: 'hidden', principal: 'User:writer', operation: OP.Describe, host: '10.9.9.9' } as Acl]);
  const writer = await login('writer');
  assert.deepEqual((await metadata(writer, null)).topics.map((t) => t.name), ['logs-app']);
  await createAcls([{ resourceType: TOPIC, resourceName: 'hidden', principal: 'User:writer', operation: OP.Describe, host: '127.0.0.1' } as Acl]);
  assert.deepEqual((await metadata(writer, null)).topics.map((t) => t.name).sort(), ['hidden', 'logs-app']);
  writer.close();
});

test('a transactional producer needs Write on its transactional id', { ...skipUnless('kafkajs'), timeout: 60000 }, async () => {
  await createAcls([
    { resourceType: TOPIC, resourceName: 'txn-out', principal: 'User:txn', operation: OP.Write },
    { resourceType: TXN_ID, resourceName: 'other-id', principal: 'User:txn', operation: OP.Write },
  ]);
  const c = await login('txn');
  const init = await c.send<InitProducerIdResponse>(ApiKey.InitProducerId, 4, { transactionalId: 'tx-1', transactionTimeoutMs: 10000, producerId: -1, producerEpoch: -1 });
  assert.equal(init.errorCode, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  assert.equal(await produce(c, 'txn-out', 'x', 'tx-1'), ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  // Idempotent (non-transactional) producers need only Write on some topic.
  const idem = await c.send<InitProducerIdResponse>(ApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 10000, producerId: -1, producerEpoch: -1 });
  assert.equal(idem.errorCode, ErrorCode.NONE);
  c.close();

  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const kafka = new Kafka({ brokers: [strand.bootstrapFor('SASL_PLAINTEXT')], sasl: { mechanism: 'scram-sha-256', username: 'txn', password: PASSWORDS.get('txn')! }, logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });
  const denied = kafka.producer({ transactionalId: 'tx-1', idempotent: true, maxInFlightRequests: 1 });
  // FindCoordinator already refuses the id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka: it
  // needs Describe, implied by Write), which KafkaJS reports as no coordinator found.
  await assert.rejects(denied.connect().then(() => denied.transaction()), (e: Error & { type?: string }) => /TRANSACTIONAL_ID_AUTHORIZATION_FAILED|coordinator/i.test(`${e.type ?? ''} ${e.message}`));
  await denied.disconnect();

  await createAcls([{ resourceType: TXN_ID, resourceName: 'tx-1', principal: 'User:txn', operation: OP.Write }]);
  const allowed = kafka.producer({ transactionalId: 'tx-1', idempotent: true, maxInFlightRequests: 1 });
  await allowed.connect();
  const txn = await allowed.transaction();
  await txn.send({ topic: 'txn-out', messages: [{ value: 'committed' }] });
  await txn.commit();
  await allowed.disconnect();
});

test('the operations apis check Kafka\'s operations: WriteTxnMarkers, DescribeLogDirs, DescribeProducers, DescribeTransactions, DescribeLogCleaner', async () => {
  await createAcls([{ resourceType: TOPIC, resourceName: 'orders', principal: 'User:ops', operation: OP.Read }]);
  const ops = await login('ops');
  try {
    // WriteTxnMarkers: ClusterAction on the cluster.
    const markers = await ops.send(ApiKey.WriteTxnMarkers, 1, { markers: [{ producerId: 1, producerEpoch: 0, transactionResult: false, topics: [{ name: 'orders', partitionIndexes: [0] }], coordinatorEpoch: 0 }] });
    assert.equal(markers.markers[0].topics[0].partitions[0].errorCode, ErrorCode.CLUSTER_AUTHORIZATION_FAILED);
    // DescribeLogDirs: Describe on the cluster.
    const dirs = await ops.send(ApiKey.DescribeLogDirs, 4, { topics: null });
    assert.deepEqual([dirs.errorCode, dirs.results.length], [ErrorCode.CLUSTER_AUTHORIZATION_FAILED, 0]);
    // DescribeProducers: Read on each topic.
    const producers = await ops.send(ApiKey.DescribeProducers, 0, { topics: [{ name: 'orders', partitionIndexes: [0] }, { name: 'other', partitionIndexes: [0] }] });
    assert.deepEqual(producers.topics.map((t: { partitions: Array<{ errorCode: number }> }) => t.partitions[0]!.errorCode), [ErrorCode.NONE, ErrorCode.TOPIC_AUTHORIZATION_FAILED]);
    // DescribeTransactions: Describe on the transactional id, before anything about it is told.
    const txns = await ops.send(ApiKey.DescribeTransactions, 0, { transactionalIds: ['someone-elses'] });
    assert.equal(txns.transactionStates[0].errorCode, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    // DescribeLogCleaner (Strand's extension): Describe on the topic.
    const cleaner = await ops.send(ApiKey.DescribeLogCleaner, 0, { topics: [{ name: 'other', partitionIndexes: null }] });
    assert.equal(cleaner.topics[0].errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  } finally {
    ops.close();
  }
  // The super user gets past every check.
  const admin = await login('admin');
  try {
    assert.equal((await admin.send(ApiKey.DescribeLogDirs, 4, { topics: null })).errorCode, ErrorCode.NONE);
    assert.equal((await admin.send(ApiKey.DescribeTransactions, 0, { transactionalIds: ['someone-elses'] })).transactionStates[0].errorCode, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);
  } finally {
    admin.close();
  }
});

test('CreateAcls / DescribeAcls / DeleteAcls: filters, cluster authorization, and persistence across a restart', { timeout: 60000 }, async () => {
  const reader = await login('reader');
  const refused = await reader.send<DescribeAclsResponse>(ApiKey.DescribeAcls, 3, { resourceTypeFilter: 1, resourceNameFilter: null, patternTypeFilter: 1, principalFilter: null, hostFilter: null, operation: 1, permissionType: 1 });
  assert.equal(refused.errorCode, ErrorCode.CLUSTER_AUTHORIZATION_FAILED);
  // DescribeCluster is open to everyone (as Kafka); the cluster operations it reports are the caller's.
  const cluster = await reader.send<DescribeClusterResponse>(ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: true, endpointType: 1 });
  assert.equal(cluster.errorCode, ErrorCode.NONE);
  assert.equal(cluster.clusterAuthorizedOperations, 0);
  assert.equal((await createAcls([{ resourceType: TOPIC, resourceName: 'x', principal: 'User:reader', operation: OP.All }], 'reader')).results[0]!.errorCode, ErrorCode.CLUSTER_AUTHORIZATION_FAILED);
  reader.close();

  const bad = await createAcls([
    { resourceType: 4, resourceName: 'not-the-cluster', principal: 'User:x', operation: OP.All },
    { resourceType: TOPIC, resourceName: 't', principal: 'nobody', operation: OP.Read },
  ]);
  assert.deepEqual(bad.results.map((r) => r.errorCode), [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);

  const admin = await login('admin');
  // MATCH: every ACL that applies to topic logs-app (the prefixed one, and the mixed user's wildcard).
  const match = await admin.send<DescribeAclsResponse>(ApiKey.DescribeAcls, 3, { resourceTypeFilter: TOPIC, resourceNameFilter: 'logs-app', patternTypeFilter: 2, principalFilter: null, hostFilter: null, operation: 1, permissionType: 1 });
  assert.equal(match.errorCode, ErrorCode.NONE);
  assert.deepEqual(match.resources.map((r) => [r.resourceName, r.patternType]).sort(), [['*', LITERAL], ['logs-', PREFIXED]]);
  admin.close();

  await strand.stop();
  strand = await start(dataDir);
  const again = await login('admin');
  const afterRestart = await again.send<DescribeAclsResponse>(ApiKey.DescribeAcls, 3, { resourceTypeFilter: 1, resourceNameFilter: null, patternTypeFilter: 1, principalFilter: 'User:reader', hostFilter: null, operation: 1, permissionType: 1 });
  assert.deepEqual(afterRestart.resources.map((r) => r.resourceName).sort(), ['orders', 'orders-app']);
  const del = await again.send<DeleteAclsResponse>(ApiKey.DeleteAcls, 3, { filters: [{ resourceTypeFilter: TOPIC, resourceNameFilter: 'orders', patternTypeFilter: LITERAL, principalFilter: 'User:reader', hostFilter: null, operation: 1, permissionType: 1 }] });
  assert.equal(del.filterResults[0]!.matchingAcls.length, 1);
  again.close();
  const reader2 = await login('reader');
  assert.equal(await fetchError(reader2, 'orders'), ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  reader2.close();
});

let pki: TestPki | undefined;
after(() => pki?.cleanup());

test('mutual TLS: the certificate DN mapped by ssl.principal.mapping.rules is the principal; untrusted or missing certificates are refused', { ...skipUnless('kcat'), timeout: 60000 }, async () => {
  pki = makeTestPki();
  const s = await startStrand({
    securityProtocols: ['SSL'],
    topics: ['tls-topic', 'tls-hidden'],
    config: {
      'ssl.keystore.location': pki.brokerKeystore,
      'ssl.truststore.location': pki.caCert,
      'ssl.client.auth': 'required',
      'ssl.principal.mapping.rules': 'RULE:^CN=([^,]+),OU=Clients,.*$/$1/L,DEFAULT',
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    },
  });
  try {
    await s.broker.controller.run(() => ({
      records: [{ type: 'Acl', id: 'alice-describe', resourceType: 'Topic', resourceName: 'tls-topic', patternType: 'Literal', principal: 'User:alice', host: '*', operation: 'Describe', permission: 'Allow' }],
      result: undefined,
    }));
    const alice = pki.client('Alice');
    const bob = pki.client('bob');
    const tls = (cert: { cert: string; key: string } | null): string[] => [
      '-X', 'security.protocol=SSL', '-X', `ssl.ca.location=${pki!.caCert}`,
      ...(cert ? ['-X', `ssl.certificate.location=${cert.cert}`, '-X', `ssl.key.location=${cert.key}`] : []),
      '-L', '-m', '5',
    ];
    const asAlice = await kcat(s.bootstrapFor('SSL'), tls(alice));
    assert.equal(asAlice.code, 0, asAlice.stderr);
    assert.match(asAlice.stdout, /topic "tls-topic"/);
    assert.doesNotMatch(asAlice.stdout, /tls-hidden/);
    const asBob = await kcat(s.bootstrapFor('SSL'), tls(bob));
    assert.equal(asBob.code, 0, asBob.stderr);
    assert.doesNotMatch(asBob.stdout, /topic "tls-/);
    const rogue = await kcat(s.bootstrapFor('SSL'), tls(pki.rogue));
    assert.notEqual(rogue.code, 0, 'a certificate from an untrusted CA is refused');
    const none = await kcat(s.bootstrapFor('SSL'), tls(null));
    assert.notEqual(none.code, 0, 'no certificate is refused with ssl.client.auth=required');
  } finally {
    await s.stop();
  }
});
