/**
 * The web console in a real browser (Debian's Chromium through playwright-core) against a real
 * broker process serving it (`strand broker --console-port`): create a topic in the browser,
 * produce with the CLI, see the records in the message browser (and the live tail follow a new
 * one), watch a slow consumer group's lag fall, stop it, reset its offsets from the browser and
 * see the lag go back up. Then configs, partitions and deletion with its confirmation step.
 *
 * Every wait is on a condition in the page (waitForFunction / locator waits), bounded in time.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { Kafka } from '../../src/client/kafka.js';
import type { Consumer } from '../../src/client/consumer.js';
import { freePort, startBroker, STRAND_BIN, waitForPort, type BrokerProcess } from '../../src/testing/broker-process.js';
import { stopCleanly } from '../interop/helpers.js';
import { launchChromium, skipUnlessChromium } from './browser.js';

/** The page's DOM, as far as the functions run in the browser use it (this project compiles without the DOM lib). */
declare const document: { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): { length: number } };

const SKIP = skipUnlessChromium();
const WAIT = { timeout: 30000 };

let broker: BrokerProcess;
let consoleUrl: string;
let browser: Browser;
let page: Page;
let kafka: Kafka;
const problems: string[] = [];

before(async () => {
  if (SKIP.skip !== undefined) return;
  const consolePort = await freePort();
  broker = await startBroker({ args: ['--console-port', String(consolePort)], overrides: { 'group.initial.rebalance.delay.ms': 0, 'auto.create.topics.enable': false } });
  await waitForPort(consolePort, 15000);
  consoleUrl = `http://127.0.0.1:${consolePort}/`;
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'console-test' });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Failed requests are reported with their URL below.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
});

after(async () => {
  await browser?.close();
  if (broker) await stopCleanly(broker);
});

/** `strand produce` with `lines` on stdin; resolves with its output or rejects with it. */
function cliProduce(topic: string, lines: string[], extra: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STRAND_BIN, 'produce', topic, '--bootstrap-server', broker.bootstrap, ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`strand produce exited ${code}:\n${out}`));
    });
    child.stdin.end(lines.join('\n') + '\n');
  });
}

/** The number shown in an element (commas and all), or NaN. */
async function numberIn(selector: string): Promise<number> {
  const text = (await page.locator(selector).first().textContent()) ?? '';
  return Number(text.replace(/[^\d-]/g, '') || 'NaN');
}

/** Waits until the number in `selector` satisfies `check` (the page polls the API itself). */
async function waitForNumber(selector: string, what: string, check: (n: number) => boolean, timeoutMs = 30000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = NaN;
  for (;;) {
    if ((await page.locator(selector).count()) > 0) {
      last = await numberIn(selector);
      if (check(last)) return last;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last seen: ${last})`);
    // Waits for the page to re-render rather than sleeping a fixed time.
    await page.waitForFunction(({ sel, seen }) => (document.querySelector(sel)?.textContent ?? '') !== seen, { sel: selector, seen: await page.locator(selector).first().textContent().catch(() => '') }, { timeout: Math.max(100, Math.min(5000, deadline - Date.now())) }).catch(() => {});
  }
}

test('create a topic in the browser, browse CLI-produced records, follow the live tail', { ...SKIP, timeout: 120000 }, async () => {
  await page.goto(`${consoleUrl}#/topics`);
  await page.getByTestId('create-topic').click();
  await page.getByTestId('topic-name-input').fill('browser-orders');
  await page.getByTestId('topic-partitions-input').fill('2');
  await page.getByTestId('create-topic-submit').click();
  await page.getByTestId('topic-title').filter({ hasText: 'browser-orders' }).waitFor(WAIT);
  await page.getByTestId('partitions-table').waitFor(WAIT);
  assert.equal(await page.locator('[data-testid=partitions-table] tbody tr').count(), 2);
  const admin = kafka.admin();
  try {
    const [d] = await admin.describeTopics(['browser-orders']);
    assert.equal(d!.partitions.length, 2, 'the topic exists in the cluster with 2 partitions');
  } finally {
    await admin.close();
  }

  // 40 JSON records, keyed, plus one that is not UTF-8, all to partition 0.
  const lines = Array.from({ length: 40 }, (_, i) => `order-${i}\t${JSON.stringify({ id: i, item: `widget ${i}`, qty: i % 5 })}`);
  await cliProduce('browser-orders', lines, ['--key-separator', '\t', '--partition', '0', '--header', 'origin=cli']);
  await cliProduce('browser-orders', ['//79/A=='], ['--encoding', 'base64', '--partition', '0']);

  await page.getByTestId('tab-messages').click();
  await page.getByTestId('browse-load').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=message-row]').length === 41, null, WAIT);
  const first = page.locator('[data-testid=message-row][data-offset="0"]');
  assert.match((await first.textContent()) ?? '', /order-0/);
  assert.match((await first.textContent()) ?? '', /"item":"widget 0"/);
  assert.match((await first.textContent()) ?? '', /origin=cli/);
  // Expanding a JSON record pretty-prints it.
  await first.click();
  await page.waitForFunction(() => document.querySelector('[data-testid=message-row][data-offset="0"] [data-testid=message-value] .msg-value.open')?.textContent?.includes('"item": "widget 0"') === true, null, WAIT);
  // Bytes that are not UTF-8 are shown as base64, exactly.
  const binary = page.locator('[data-testid=message-row][data-offset="40"] [data-testid=message-value]');
  assert.match((await binary.textContent()) ?? '', /\/\/79\/A==/);

  // From an offset.
  await page.getByTestId('browse-mode').selectOption('offset');
  await page.getByTestId('browse-offset').fill('35');
  await page.getByTestId('browse-load').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=message-row]').length === 6, null, WAIT);
  assert.equal(await page.locator('[data-testid=message-row]').first().getAttribute('data-offset'), '35');

  // The live tail shows a record produced after it started.
  await page.getByTestId('live-tail').check();
  await cliProduce('browser-orders', ['late\t{"late":true}'], ['--key-separator', '\t', '--partition', '0']);
  await page.locator('[data-testid=message-row][data-offset="41"]').waitFor(WAIT);
  assert.match((await page.locator('[data-testid=message-row][data-offset="41"]').textContent()) ?? '', /"late":true/);
  await page.getByTestId('live-tail').uncheck();
  assert.deepEqual(problems, []);
});

test("a slow consumer group's lag falls; once stopped, a reset from the browser puts it back up", { ...SKIP, timeout: 180000 }, async () => {
  const topic = 'browser-orders';
  const total = 42; // the records of the first test, all in partition 0
  const group = 'browser-slow-group';
  let consumed = 0;
  let consumer: Consumer | null = kafka.consumer({ groupId: group, fromBeginning: true, commit: 'message', sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000 });
  consumer.subscribe(topic);
  await consumer.run({
    eachMessage: async () => {
      consumed++;
      await new Promise((r) => setTimeout(r, 250)); // slow on purpose: the lag has to be seen falling
    },
  });
  try {
    await page.goto(`${consoleUrl}#/groups/${group}`);
    const seen = await waitForNumber('[data-testid=total-lag]', 'a lag above 0 once the group commits', (n) => n > 0);
    const lower = await waitForNumber('[data-testid=total-lag]', `the lag to fall below ${seen}`, (n) => n < seen);
    assert.ok(lower < seen);
    await page.getByTestId('group-state').filter({ hasText: 'Stable' }).waitFor(WAIT);
    // Resetting is refused while the group has members: the button is disabled.
    assert.equal(await page.getByTestId('reset-offsets-button').isDisabled(), true);
    await waitForNumber('[data-testid=total-lag]', 'the lag to reach 0', (n) => n === 0, 60000);
    assert.equal(consumed >= total, true);
  } finally {
    await consumer.close();
    consumer = null;
  }
  await page.getByTestId('group-state').filter({ hasText: 'Empty' }).waitFor(WAIT);
  await page.getByTestId('reset-to').selectOption('earliest');
  await page.getByTestId('reset-offsets-button').click();
  // The confirmation step: the button stays disabled until the group id is typed.
  assert.equal(await page.getByTestId('confirm-button').isDisabled(), true);
  await page.getByTestId('confirm-input').fill(group);
  await page.getByTestId('confirm-button').click();
  await waitForNumber('[data-testid=total-lag]', `the lag back at ${total}`, (n) => n === total);
  const admin = kafka.admin();
  try {
    const lag = await admin.groupLag(group, [topic]);
    assert.equal(lag.find((p) => p.partition === 0)!.offset, 0, 'committed offset of partition 0 is back at 0');
  } finally {
    await admin.close();
  }
  // The groups list shows the same.
  await page.getByTestId('nav-groups').click();
  await page.locator(`[data-group="${group}"] [data-testid=group-lag]`).filter({ hasText: String(total) }).waitFor(WAIT);
  assert.deepEqual(problems, []);
});

test('edit a config, add partitions, delete the topic after typing its name', { ...SKIP, timeout: 120000 }, async () => {
  await page.goto(`${consoleUrl}#/topics/browser-orders/configs`);
  await page.getByTestId('add-config').click();
  await page.getByTestId('config-name-input').fill('retention.ms');
  await page.getByTestId('config-value-input').fill('3600000');
  await page.getByTestId('save-config').click();
  await page.locator('[data-config="retention.ms"]').filter({ hasText: '3600000' }).waitFor(WAIT);
  // A bad value comes back as Kafka's error, shown in the dialog.
  await page.getByTestId('add-config').click();
  await page.getByTestId('config-name-input').fill('retention.ms');
  await page.getByTestId('config-value-input').fill('soon');
  await page.getByTestId('save-config').click();
  await page.locator('.modal [data-testid=error]').filter({ hasText: 'INVALID_CONFIG' }).waitFor(WAIT);
  assert.deepEqual(problems.splice(0), [`HTTP 400 POST ${consoleUrl}api/topics/browser-orders/configs`], 'the refused config is the only failed request');
  await page.keyboard.press('Escape');

  await page.getByTestId('add-partitions').click();
  await page.getByTestId('partition-count-input').fill('3');
  await page.getByTestId('add-partitions-submit').click();
  await page.getByTestId('tab-partitions').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=partitions-table] tbody tr').length === 3, null, WAIT);

  await page.getByTestId('delete-topic').click();
  assert.equal(await page.getByTestId('confirm-button').isDisabled(), true);
  await page.getByTestId('confirm-input').fill('browser-order'); // not quite the name
  assert.equal(await page.getByTestId('confirm-button').isDisabled(), true);
  await page.getByTestId('confirm-input').fill('browser-orders');
  await page.getByTestId('confirm-button').click();
  await page.getByTestId('topics-page').waitFor(WAIT);
  await page.waitForFunction(() => document.querySelector('[data-topic="browser-orders"]') === null, null, WAIT);
  const admin = kafka.admin();
  try {
    assert.ok(!(await admin.listTopics()).includes('browser-orders'));
  } finally {
    await admin.close();
  }
  assert.deepEqual(problems, []);
});

test('the cluster page shows the broker, its log dir and api versions, and the charts see traffic', { ...SKIP, timeout: 120000 }, async () => {
  await page.goto(`${consoleUrl}#/cluster`);
  await page.getByTestId('brokers').filter({ hasText: String(broker.port) }).waitFor(WAIT);
  assert.match((await page.getByTestId('brokers').textContent()) ?? '', new RegExp(broker.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await page.getByTestId('api-versions').filter({ hasText: 'DescribeLogDirs' }).waitFor(WAIT);
  // Records produced while the charts sample show up as a non-zero "in" rate.
  const admin = kafka.admin();
  await admin.createTopics([{ name: 'browser-traffic', partitions: 1 }]);
  await admin.close();
  const producer = kafka.producer();
  const deadline = Date.now() + 60000;
  try {
    for (;;) {
      await producer.sendBatch(Array.from({ length: 50 }, (_, i) => ({ topic: 'browser-traffic', value: `v${i}` })));
      const rate = await page.evaluate(async () => {
        const r = await fetch('/api/metrics');
        const m = (await r.json()) as { points: Array<{ recordsIn: number; bytesIn: number }> };
        return m.points.reduce((x, p) => Math.max(x, p.recordsIn), 0);
      });
      if (rate > 0) break;
      if (Date.now() > deadline) throw new Error('the charts never saw records coming in');
      await page.waitForTimeout(500); // pacing the producer, not waiting for a result
    }
  } finally {
    await producer.close();
  }
  await page.locator('[data-testid=chart-records] .u-over').waitFor(WAIT);
  assert.deepEqual(problems, []);
});
