/**
 * Issue 9 acceptance, listeners and authentication: kcat (librdkafka), confluent-kafka-python,
 * kafka-python (raw SASL after SaslHandshake v0) and KafkaJS connect over SSL, SASL_PLAINTEXT
 * and SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, produce and consume; a wrong password
 * gets SASL_AUTHENTICATION_FAILED and a flood of bad logins leaves the broker serving; KIP-368
 * session expiry; and no password used here is found in the repository or the data directory.
 *
 * Passwords are random per run (so the scan at the end can look for them); certificates are
 * made with openssl in a temporary directory.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { ApiKey, type MetadataResponse, type SaslAuthenticateResponse, type SaslHandshakeResponse } from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { ScramClient } from '../../src/protocol/scram.js';
import { describeRun, kcat, kcatOk, pythonJson, skipUnless, uniqueTopic } from '../interop/helpers.js';
import { makeTestPki, type TestPki } from './certs.js';

const MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
const SASL_PROTOCOLS = ['SASL_PLAINTEXT', 'SASL_SSL'] as const;
const USER = 'alice';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const WRONG = `wrong-${randomBytes(12).toString('hex')}`;

let pki: TestPki;
let strand: StrandTestBroker;

before(async () => {
  pki = makeTestPki();
  strand = await startStrand({
    securityProtocols: ['SSL', 'SASL_PLAINTEXT', 'SASL_SSL'],
    users: [{ name: USER, password: PASSWORD }],
    config: {
      'ssl.keystore.location': pki.brokerKeystore,
      'ssl.truststore.location': pki.caCert,
      'ssl.client.auth': 'requested',
      'sasl.enabled.mechanisms': MECHANISMS.join(','),
      'connection.failed.authentication.delay.ms': 50,
    },
  });
});

after(async () => {
  await strand?.stop();
  pki?.cleanup();
});

function kcatSecurity(protocol: string, mechanism: string | null, password = PASSWORD): string[] {
  const args = ['-X', `security.protocol=${protocol}`];
  if (protocol.endsWith('SSL')) args.push('-X', `ssl.ca.location=${pki.caCert}`);
  if (mechanism !== null) args.push('-X', `sasl.mechanisms=${mechanism}`, '-X', `sasl.username=${USER}`, '-X', `sasl.password=${password}`);
  return args;
}

/** Every (protocol, mechanism) pair a client is tried with: SSL alone, then SASL over both transports. */
const COMBINATIONS: Array<{ protocol: 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL'; mechanism: string | null }> = [
  { protocol: 'SSL', mechanism: null },
  ...SASL_PROTOCOLS.flatMap((protocol) => MECHANISMS.map((mechanism) => ({ protocol, mechanism }))),
];

const label = (c: { protocol: string; mechanism: string | null }): string => `${c.protocol}${c.mechanism ? `/${c.mechanism}` : ''}`;

test('kcat produces and consumes over SSL, SASL_PLAINTEXT and SASL_SSL with PLAIN and both SCRAM mechanisms', { ...skipUnless('kcat'), timeout: 120000 }, async () => {
  const topic = uniqueTopic('sec-kcat');
  await strand.createTopics([topic]);
  for (const c of COMBINATIONS) {
    await kcatOk(strand.bootstrapFor(c.protocol), [...kcatSecurity(c.protocol, c.mechanism), '-P', '-t', topic], { input: `kcat ${label(c)}\n` });
  }
  for (const c of COMBINATIONS) {
    const out = await kcatOk(strand.bootstrapFor(c.protocol), [...kcatSecurity(c.protocol, c.mechanism), '-C', '-t', topic, '-o', 'beginning', '-e', '-q']);
    assert.deepEqual(out.trim().split('\n'), COMBINATIONS.map((x) => `kcat ${label(x)}`), `consumed over ${label(c)}`);
  }
  // Metadata advertises the listener the client came in on.
  const meta = await kcatOk(strand.bootstrapFor('SASL_SSL'), [...kcatSecurity('SASL_SSL', 'SCRAM-SHA-512'), '-L', '-t', topic]);
  assert.match(meta, new RegExp(`broker 1 at ${strand.bootstrapFor('SASL_SSL').replace(/\./g, '\\.')}`));
});

test('kcat with a wrong password fails with the SASL authentication error', { ...skipUnless('kcat'), timeout: 60000 }, async () => {
  const r = await kcat(strand.bootstrapFor('SASL_SSL'), [...kcatSecurity('SASL_SSL', 'SCRAM-SHA-256', WRONG), '-L', '-m', '5']);
  assert.notEqual(r.code, 0, describeRun('kcat -L with a wrong password', r));
  assert.match(r.stderr, /SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256/);
});

const CONFLUENT_SCRIPT = `
import json, os
from confluent_kafka import Producer, Consumer
conf = {'bootstrap.servers': os.environ['BOOTSTRAP'], 'security.protocol': os.environ['PROTOCOL'], 'ssl.ca.location': os.environ['CA']}
if os.environ['MECHANISM']:
    conf.update({'sasl.mechanisms': os.environ['MECHANISM'], 'sasl.username': os.environ['SASL_USER'], 'sasl.password': os.environ['SASL_PASSWORD']})
errors = []
p = Producer(dict(conf, error_cb=lambda e: errors.append(str(e))))
results = []
p.produce(os.environ['TOPIC'], os.environ['VALUE'].encode(), callback=lambda e, m: results.append(str(e) if e else 'ok'))
p.flush(20)
c = Consumer(dict(conf, **{'group.id': os.environ['GROUP'], 'auto.offset.reset': 'earliest'}))
c.subscribe([os.environ['TOPIC']])
seen = []
import time
deadline = time.time() + 20
while time.time() < deadline and os.environ['VALUE'] not in seen:
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        seen.append(m.value().decode())
c.close()
print(json.dumps({'produced': results, 'consumed': seen, 'errors': errors}))
`;

test('confluent-kafka-python produces and consumes over every protocol and mechanism', { ...skipUnless('confluent-kafka'), timeout: 240000 }, async () => {
  const topic = uniqueTopic('sec-confluent');
  await strand.createTopics([topic]);
  for (const c of COMBINATIONS) {
    const value = `confluent ${label(c)}`;
    const out = await pythonJson<{ produced: string[]; consumed: string[] }>('confluent-kafka', CONFLUENT_SCRIPT, strand.bootstrapFor(c.protocol), {
      env: { PROTOCOL: c.protocol, MECHANISM: c.mechanism ?? '', SASL_USER: USER, SASL_PASSWORD: PASSWORD, CA: pki.caCert, TOPIC: topic, VALUE: value, GROUP: `g-${label(c)}` },
    });
    assert.deepEqual(out.produced, ['ok'], label(c));
    assert.ok(out.consumed.includes(value), `${label(c)} consumed ${JSON.stringify(out.consumed)}`);
  }
});

const KAFKA_PYTHON_SCRIPT = `
import json, os
from kafka import KafkaProducer, KafkaConsumer
conf = dict(bootstrap_servers=os.environ['BOOTSTRAP'], security_protocol=os.environ['PROTOCOL'], ssl_cafile=os.environ['CA'], ssl_check_hostname=False, api_version_auto_timeout_ms=10000)
if os.environ['MECHANISM']:
    conf.update(sasl_mechanism=os.environ['MECHANISM'], sasl_plain_username=os.environ['SASL_USER'], sasl_plain_password=os.environ['SASL_PASSWORD'])
p = KafkaProducer(**conf)
p.send(os.environ['TOPIC'], os.environ['VALUE'].encode()).get(timeout=20)
p.close()
c = KafkaConsumer(os.environ['TOPIC'], auto_offset_reset='earliest', consumer_timeout_ms=5000, **conf)
seen = [m.value.decode() for m in c]
c.close()
print(json.dumps({'consumed': seen}))
`;

test('kafka-python (raw SASL tokens after SaslHandshake v0) produces and consumes over every protocol and mechanism', { ...skipUnless('kafka-python'), timeout: 240000 }, async () => {
  const topic = uniqueTopic('sec-kafka-python');
  await strand.createTopics([topic]);
  for (const c of COMBINATIONS) {
    const value = `kafka-python ${label(c)}`;
    const out = await pythonJson<{ consumed: string[] }>('kafka-python', KAFKA_PYTHON_SCRIPT, strand.bootstrapFor(c.protocol), {
      env: { PROTOCOL: c.protocol, MECHANISM: c.mechanism ?? '', SASL_USER: USER, SASL_PASSWORD: PASSWORD, CA: pki.caCert, TOPIC: topic, VALUE: value },
    });
    assert.ok(out.consumed.includes(value), `${label(c)} consumed ${JSON.stringify(out.consumed)}`);
  }
});

test('KafkaJS produces and consumes over every protocol and mechanism', { ...skipUnless('kafkajs'), timeout: 180000 }, async () => {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const topic = uniqueTopic('sec-kafkajs');
  await strand.createTopics([topic]);
  for (const c of COMBINATIONS) {
    const kafka = new Kafka({
      clientId: 'sec-kafkajs',
      brokers: [strand.bootstrapFor(c.protocol)],
      ssl: c.protocol.endsWith('SSL') ? { ca: [readFileSync(pki.caCert, 'utf8')] } : false,
      ...(c.mechanism ? { sasl: { mechanism: c.mechanism.toLowerCase() as 'plain', username: USER, password: PASSWORD } } : {}),
      logLevel: logLevel.NOTHING,
    });
    const value = `kafkajs ${label(c)}`;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: `kjs-${label(c)}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const seen = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (message.value?.toString() === value) resolve();
        },
      });
    });
    await Promise.race([seen, new Promise((_, reject) => setTimeout(() => reject(new Error(`KafkaJS ${label(c)}: message not consumed in 30 s`)), 30000))]);
    await consumer.disconnect();
  }
});

async function saslConnection(): Promise<ProtocolConnection> {
  const [host, port] = strand.bootstrapFor('SASL_PLAINTEXT').split(':');
  return ProtocolConnection.connect(host!, Number(port));
}

async function plainLogin(c: ProtocolConnection, password: string): Promise<SaslAuthenticateResponse> {
  const hs = await c.send<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, { mechanism: 'PLAIN' });
  assert.equal(hs.errorCode, ErrorCode.NONE);
  return c.send<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 2, { authBytes: Buffer.from(`\u0000${USER}\u0000${password}`) });
}

async function scramLogin(c: ProtocolConnection, password: string, handshake = true): Promise<SaslAuthenticateResponse> {
  if (handshake) assert.equal((await c.send<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, { mechanism: 'SCRAM-SHA-256' })).errorCode, ErrorCode.NONE);
  const client = new ScramClient('SCRAM-SHA-256', USER, password);
  const first = await c.send<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 2, { authBytes: client.first() });
  if (first.errorCode !== ErrorCode.NONE) return first;
  const final = await c.send<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 2, { authBytes: await client.final(first.authBytes) });
  if (final.errorCode === ErrorCode.NONE) client.verify(final.authBytes);
  return final;
}

const waitClosed = async (c: ProtocolConnection): Promise<void> => {
  const deadline = Date.now() + 5000;
  while (!c.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(c.closed, 'connection closed');
};

test('a request other than ApiVersions / SaslHandshake before authentication closes the connection', async () => {
  const c = await saslConnection();
  await assert.rejects(c.send<MetadataResponse>(ApiKey.Metadata, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false }));
  await waitClosed(c);
  const d = await saslConnection();
  const hs = await d.send<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, { mechanism: 'GSSAPI' });
  assert.equal(hs.errorCode, ErrorCode.UNSUPPORTED_SASL_MECHANISM);
  assert.deepEqual(hs.mechanisms, [...MECHANISMS]);
  await waitClosed(d);
});

test('a wrong password answers SASL_AUTHENTICATION_FAILED and closes; a flood of bad logins leaves the broker serving', { timeout: 60000 }, async () => {
  const bad = await saslConnection();
  const r = await plainLogin(bad, WRONG);
  assert.equal(r.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED);
  assert.match(r.errorMessage ?? '', /invalid credentials with SASL mechanism PLAIN/);
  await waitClosed(bad);

  const failuresBefore = strand.broker.metrics.authenticationFailures;
  const flood = Array.from({ length: 300 }, async (_, i) => {
    const c = await saslConnection();
    try {
      const resp = i % 2 === 0 ? await plainLogin(c, WRONG) : await scramLogin(c, WRONG);
      return resp.errorCode;
    } catch {
      return -1; // closed under load before the answer: still refused
    } finally {
      c.close();
    }
  });
  // While the flood runs, a good client is served promptly on the same listener.
  const good = await saslConnection();
  const started = performance.now();
  assert.equal((await scramLogin(good, PASSWORD)).errorCode, ErrorCode.NONE);
  const meta = await good.send<MetadataResponse>(ApiKey.Metadata, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  const servedMs = performance.now() - started;
  assert.equal(meta.brokers.length, 1);
  assert.ok(servedMs < 5000, `a good login and Metadata took ${servedMs.toFixed(0)} ms during the flood`);
  const codes = await Promise.all(flood);
  assert.ok(codes.every((c) => c === ErrorCode.SASL_AUTHENTICATION_FAILED || c === -1), `every bad login refused: ${[...new Set(codes)].join(',')}`);
  assert.ok(strand.broker.metrics.authenticationFailures - failuresBefore >= 150, 'failures counted');
  good.close();
  const after = await saslConnection();
  assert.equal((await plainLogin(after, PASSWORD)).errorCode, ErrorCode.NONE);
  after.close();
});

test('KIP-368: with connections.max.reauth.ms the session ends; re-authenticating keeps the connection', { timeout: 30000 }, async () => {
  const s = await startStrand({ securityProtocols: ['SASL_PLAINTEXT'], users: [{ name: USER, password: PASSWORD }], config: { 'connections.max.reauth.ms': 1500 } });
  try {
    const [host, port] = s.bootstrapFor('SASL_PLAINTEXT').split(':');
    const metadata = (c: ProtocolConnection): Promise<MetadataResponse> => c.send<MetadataResponse>(ApiKey.Metadata, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    const expiring = await ProtocolConnection.connect(host!, Number(port));
    const reauth = await ProtocolConnection.connect(host!, Number(port));
    for (const c of [expiring, reauth]) {
      const r = await scramLogin(c, PASSWORD);
      assert.equal(r.errorCode, ErrorCode.NONE);
      assert.ok(r.sessionLifetimeMs > 0 && r.sessionLifetimeMs <= 1500, `session lifetime ${r.sessionLifetimeMs}`);
      await metadata(c);
    }
    // Re-authenticate one connection before its session ends.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal((await scramLogin(reauth, PASSWORD)).errorCode, ErrorCode.NONE);
    await new Promise((r) => setTimeout(r, 1000));
    await assert.rejects(metadata(expiring));
    await waitClosed(expiring);
    assert.equal((await metadata(reauth)).brokers.length, 1);
    reauth.close();
  } finally {
    await s.stop();
  }
});

/** Files under `dir` (skipping node_modules and .git), up to a bound. */
function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === '.git') continue;
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st === undefined) continue;
    if (st.isDirectory()) filesUnder(p, out);
    else if (st.isFile() && st.size < 256 * 1024 * 1024) out.push(p);
  }
  return out;
}

test('no plaintext password used in these tests is in the data directory or the repository', async () => {
  // The metadata log holds the credentials (salted, hashed): flush it so the bytes are on disk.
  const needles = [PASSWORD, WRONG].flatMap((p) => [Buffer.from(p, 'utf8'), Buffer.from(p, 'utf16le')]);
  const repo = fileURLToPath(new URL('../../..', import.meta.url));
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: repo, encoding: 'utf8' }).split('\0').filter((f) => f !== '').map((f) => join(repo, f));
  const files = [...filesUnder(strand.dataDir), ...tracked, ...filesUnder(join(repo, 'dist'))];
  assert.ok(files.some((f) => f.includes('__cluster_metadata')), 'the metadata log is scanned');
  for (const f of files) {
    const st = statSync(f, { throwIfNoEntry: false });
    if (st === undefined || !st.isFile()) continue;
    const bytes = readFileSync(f);
    for (const n of needles) assert.equal(bytes.indexOf(n), -1, `${f} holds a plaintext password`);
  }
});
