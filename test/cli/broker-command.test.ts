/**
 * `strand broker` as a user runs it: help, a server.properties file with overrides on top, bad
 * configuration refused with a clear message, and SIGINT / SIGTERM shutting down cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as m from '../../src/protocol/messages/index.js';
import { STRAND_BIN, freePort, startBroker } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

const strand = (...args: string[]) => spawnSync(process.execPath, [STRAND_BIN, ...args], { encoding: 'utf8', timeout: 20000 });

test('strand --help and strand broker --help describe the commands', () => {
  const top = strand('--help');
  assert.equal(top.status, 0);
  assert.match(top.stdout, /Usage: strand <command>/);
  assert.match(top.stdout, /broker/);
  const broker = strand('broker', '--help');
  assert.equal(broker.status, 0);
  for (const flag of ['--host', '--port', '--data-dir', '--config', '--override']) assert.match(broker.stdout, new RegExp(flag));
});

test('bad configuration is refused with a clear message and exit code 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-cli-'));
  try {
    const badValue = strand('broker', '--data-dir', dir, '--override', 'num.partitions=zero');
    assert.equal(badValue.status, 2);
    assert.match(badValue.stderr, /num.partitions must be an integer/);
    const badFlag = strand('broker', '--no-such-flag');
    assert.equal(badFlag.status, 2);
    assert.match(badFlag.stderr, /no-such-flag/);
    const unknownCommand = strand('frobnicate');
    assert.equal(unknownCommand.status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('server.properties is read, --override wins over it, and unknown keys are logged', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-cli-'));
  const props = join(dir, 'server.properties');
  writeFileSync(props, ['# a Kafka-style file', 'num.partitions=2', 'log.retention.hours=1', 'zookeeper.connect=localhost:2181', ''].join('\n'));
  const broker = await startBroker({ dataDir: join(dir, 'data'), args: ['--config', props], overrides: { 'num.partitions': 3 } });
  try {
    const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    const md = await c.send<m.MetadataResponse>(m.ApiKey.Metadata, 9, { ...m.defaultMetadataRequest(), topics: [{ topicId: m.defaultMetadataRequestTopic().topicId, name: 'auto' }], allowAutoTopicCreation: true });
    assert.equal(md.topics[0]!.partitions.length, 3);
    const dc = await c.send<m.DescribeConfigsResponse>(m.ApiKey.DescribeConfigs, 4, {
      resources: [{ resourceType: 2, resourceName: 'auto', configurationKeys: ['retention.ms'] }],
      includeSynonyms: true,
      includeDocumentation: false,
    });
    const retention = dc.results[0]!.configs[0]!;
    assert.equal(retention.value, String(3600000)); // log.retention.hours=1, in ms
    assert.equal(retention.configSource, 4); // STATIC_BROKER_CONFIG
    c.close();
    assert.match(broker.output(), /ignoring unknown broker config name=zookeeper.connect/);
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGINT and SIGTERM shut down cleanly (exit 0, logs closed, marked clean)', { timeout: 30000 }, async () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const broker = await startBroker({ port: await freePort() });
    broker.child.kill(signal);
    const code = await new Promise<number | null>((resolve) => broker.child.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, broker.output());
    assert.match(broker.output(), new RegExp(`signal received signal=${signal}`));
    assert.match(broker.output(), /shutdown complete/);
    broker.cleanup();
  }
});
