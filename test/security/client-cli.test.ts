/**
 * Strand's own client and CLI with security on: the client's `ssl` and `sasl` options (PLAIN and
 * both SCRAM mechanisms, over SASL_SSL and SASL_PLAINTEXT), a wrong password as
 * SASL_AUTHENTICATION_FAILED, and the CLI's `users scram`, `acls`, `quotas` commands and
 * `--command-config` with Kafka client properties.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, KafkaError } from '../../src/client/index.js';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { STRAND_BIN } from '../../src/testing/broker-process.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { makeTestPki, type TestPki } from './certs.js';
import { run } from '../interop/helpers.js';

const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const CLI_PASSWORD = `cli-${randomBytes(12).toString('hex')}`;

let pki: TestPki;
let strand: StrandTestBroker;

before(async () => {
  pki = makeTestPki();
  strand = await startStrand({
    securityProtocols: ['SSL', 'SASL_PLAINTEXT', 'SASL_SSL'],
    users: [{ name: 'alice', password: PASSWORD }],
    topics: ['client-topic'],
    config: {
      'ssl.keystore.location': pki.brokerKeystore,
      'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      'group.initial.rebalance.delay.ms': 0,
    },
  });
});

after(async () => {
  await strand?.stop();
  pki?.cleanup();
});

test('Strand client produces and consumes with ssl and sasl (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)', { timeout: 60000 }, async () => {
  const ca = readFileSync(pki.caCert, 'utf8');
  const cases = [
    { protocol: 'SSL' as const, ssl: { ca }, sasl: undefined },
    { protocol: 'SASL_PLAINTEXT' as const, ssl: undefined, sasl: { mechanism: 'PLAIN' as const, username: 'alice', password: PASSWORD } },
    { protocol: 'SASL_SSL' as const, ssl: { ca }, sasl: { mechanism: 'SCRAM-SHA-256' as const, username: 'alice', password: PASSWORD } },
    { protocol: 'SASL_SSL' as const, ssl: { ca }, sasl: { mechanism: 'SCRAM-SHA-512' as const, username: 'alice', password: PASSWORD } },
  ];
  for (const c of cases) {
    const kafka = new Kafka({ brokers: [strand.bootstrapFor(c.protocol)], clientId: 'sec-client', ...(c.ssl ? { ssl: c.ssl } : {}), ...(c.sasl ? { sasl: c.sasl } : {}) });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'client-topic', value: `${c.protocol} ${c.sasl?.mechanism ?? ''}` });
    await producer.close();
  }
  const kafka = new Kafka({ brokers: [strand.bootstrapFor('SASL_SSL')], ssl: { ca }, sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice', password: PASSWORD } });
  const consumer = kafka.consumer({ groupId: 'sec-client-group', fromBeginning: true });
  consumer.subscribe('client-topic');
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed only ${JSON.stringify(seen)}`)), 30000);
    void consumer.run({
      eachMessage: ({ message }) => {
        seen.push(message.value!.toString());
        if (seen.length === cases.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.close();
  assert.deepEqual(seen.sort(), cases.map((c) => `${c.protocol} ${c.sasl?.mechanism ?? ''}`).sort());
});

test('Strand client: a wrong password is SASL_AUTHENTICATION_FAILED', { timeout: 30000 }, async () => {
  const kafka = new Kafka({ brokers: [strand.bootstrapFor('SASL_PLAINTEXT')], sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'not-it' }, retry: { retries: 0 } });
  const admin = kafka.admin();
  await assert.rejects(admin.connect(), (e: unknown) => e instanceof KafkaError && e.errorCode === ErrorCode.SASL_AUTHENTICATION_FAILED);
  await admin.close();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const r = await run(process.execPath, [STRAND_BIN, ...args], { input: opts.input ?? '', env: { STRAND_BOOTSTRAP_SERVER: '', ...opts.env }, timeoutMs: 30000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

async function ok(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
  const r = await cli(args, opts);
  assert.equal(r.status, 0, `strand ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

test('CLI: users scram set / describe / delete, then produce and consume over SASL_SSL with --command-config', { timeout: 90000 }, async () => {
  const plain = ['--bootstrap-server', strand.bootstrap];
  await ok(['users', 'scram', 'set', 'carol', ...plain], { input: `${CLI_PASSWORD}\n` });
  const described = JSON.parse(await ok(['users', 'scram', 'describe', 'carol', '--json', ...plain])) as Array<{ user: string; credentials: Array<{ mechanism: string; iterations: number }> }>;
  assert.deepEqual(described, [{ user: 'carol', credentials: [{ mechanism: 'SCRAM-SHA-256', iterations: 4096 }, { mechanism: 'SCRAM-SHA-512', iterations: 4096 }] }]);

  const config = join(pki.dir, 'carol.properties');
  writeFileSync(
    config,
    [
      'security.protocol=SASL_SSL',
      'sasl.mechanism=SCRAM-SHA-512',
      `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="carol" password="${CLI_PASSWORD}";`,
      `ssl.truststore.location=${pki.caCert}`,
      '',
    ].join('\n'),
  );
  const secure = ['--bootstrap-server', strand.bootstrapFor('SASL_SSL'), '--command-config', config];
  await ok(['topics', 'create', 'cli-secure', ...secure]);
  await ok(['produce', 'cli-secure', ...secure], { input: 'one\ntwo\n' });
  assert.equal(await ok(['consume', 'cli-secure', '--from-beginning', '--max-messages', '2', ...secure]), 'one\ntwo\n');

  // PLAIN checks the same credential.
  writeFileSync(config, ['security.protocol=SASL_SSL', 'sasl.mechanism=PLAIN', 'sasl.username=carol', `sasl.password=${CLI_PASSWORD}`, `ssl.truststore.location=${pki.caCert}`].join('\n'));
  assert.match(await ok(['topics', 'list', ...secure]), /cli-secure/);

  await ok(['users', 'scram', 'delete', 'carol', ...plain]);
  const refused = await cli(['topics', 'list', ...secure]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /SASL_AUTHENTICATION_FAILED|Authentication failed/);
  writeFileSync(config, '');
});

test('CLI: acls add / list / remove and quotas set / describe', { timeout: 60000 }, async () => {
  const plain = ['--bootstrap-server', strand.bootstrap];
  await ok(['acls', 'add', '--principal', 'User:reader', '--topic', 'orders', '--operation', 'Read', '--operation', 'Describe', ...plain]);
  await ok(['acls', 'add', '--principal', 'User:etl', '--topic', 'logs-', '--prefixed', '--operation', 'Write', '--deny', ...plain]);
  const listed = JSON.parse(await ok(['acls', 'list', '--json', ...plain])) as Array<{ principal: string; operation: string; patternType: string; permission: string }>;
  assert.deepEqual(
    listed.map((a) => `${a.principal} ${a.permission} ${a.operation} ${a.patternType}`).sort(),
    ['User:etl Deny Write Prefixed', 'User:reader Allow Describe Literal', 'User:reader Allow Read Literal'],
  );
  const removed = JSON.parse(await ok(['acls', 'remove', '--principal', 'User:reader', '--json', ...plain])) as unknown[];
  assert.equal(removed.length, 2);
  assert.equal((JSON.parse(await ok(['acls', 'list', '--json', ...plain])) as unknown[]).length, 1);

  await ok(['quotas', 'set', '--client-id', 'ingest', 'producer_byte_rate=1048576', ...plain]);
  await ok(['quotas', 'set', '--user-default', 'consumer_byte_rate=2097152', ...plain]);
  const quotas = JSON.parse(await ok(['quotas', 'describe', '--json', ...plain])) as Array<{ entity: Record<string, string | null>; quotas: Record<string, number> }>;
  assert.deepEqual(quotas.map((q) => [q.entity, q.quotas]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
    [{ clientId: 'ingest' }, { producer_byte_rate: 1048576 }],
    [{ user: null }, { consumer_byte_rate: 2097152 }],
  ]);
  await ok(['quotas', 'remove', '--client-id', 'ingest', 'producer_byte_rate', ...plain]);
  await ok(['quotas', 'remove', '--user-default', 'consumer_byte_rate', ...plain]);
  assert.deepEqual(JSON.parse(await ok(['quotas', 'describe', '--json', ...plain])), []);
});
