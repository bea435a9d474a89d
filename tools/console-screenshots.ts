/**
 * `npm run screenshots`: screenshots of the web console's main pages into docs/console/*.png.
 *
 * Starts a broker process serving the console, fills it with a few topics, consumer groups (one
 * keeping up, one lagging, one stopped) and steady traffic through Strand's client, lets the
 * charts collect samples, then photographs each page with Debian's Chromium (playwright-core).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka } from '../src/client/kafka.js';
import type { Consumer } from '../src/client/consumer.js';
import { freePort, startBroker, waitForPort } from '../src/testing/broker-process.js';
import { launchChromium } from '../test/console/browser.js';

const OUT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'docs', 'console');

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const consolePort = await freePort();
  const broker = await startBroker({ args: ['--console-port', String(consolePort)], overrides: { 'group.initial.rebalance.delay.ms': 0, 'offsets.topic.num.partitions': 8 } });
  const consumers: Consumer[] = [];
  let traffic: NodeJS.Timeout | undefined;
  const browser = await launchChromium();
  try {
    await waitForPort(consolePort, 15000);
    const url = `http://127.0.0.1:${consolePort}/`;
    const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'screenshots' });
    const admin = kafka.admin();
    await admin.createTopics([
      { name: 'orders', partitions: 6, configs: { 'retention.ms': '604800000' } },
      { name: 'payments', partitions: 3, configs: { 'min.insync.replicas': '1' } },
      { name: 'clickstream', partitions: 12, configs: { 'retention.ms': '86400000', 'compression.type': 'zstd' } },
      { name: 'inventory', partitions: 2, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = kafka.producer({ compression: 'lz4' });
    const skus = ['SKU-1042', 'SKU-2210', 'SKU-0007', 'SKU-3391', 'SKU-5120'];
    const order = (i: number) => ({
      topic: 'orders',
      key: `customer-${i % 97}`,
      value: JSON.stringify({ orderId: `ord-${100000 + i}`, customer: `customer-${i % 97}`, items: [{ sku: skus[i % skus.length], qty: 1 + (i % 3) }], total: Math.round((19.9 + (i % 40) * 3.25) * 100) / 100, currency: 'EUR', placedAt: new Date(Date.now() - (4000 - i) * 1000).toISOString() }),
      headers: { 'content-type': 'application/json', source: 'checkout-service' },
    });
    for (let b = 0; b < 8; b++) await producer.sendBatch(Array.from({ length: 250 }, (_, j) => order(b * 250 + j)));
    await producer.sendBatch(Array.from({ length: 600 }, (_, i) => ({ topic: 'payments', key: `ord-${100000 + i}`, value: JSON.stringify({ orderId: `ord-${100000 + i}`, status: i % 17 === 0 ? 'declined' : 'captured', amount: 20 + (i % 50) }) })));
    for (let b = 0; b < 10; b++) await producer.sendBatch(Array.from({ length: 500 }, (_, j) => ({ topic: 'clickstream', key: `session-${(b * 500 + j) % 331}`, value: JSON.stringify({ page: ['/', '/search', '/product', '/cart'][j % 4], ms: 40 + (j % 200) }) })));
    await producer.sendBatch(skus.flatMap((sku, k) => Array.from({ length: 40 }, (_, i) => ({ topic: 'inventory', key: sku, value: JSON.stringify({ sku, onHand: 100 - i - k }) }))));

    // billing keeps up with orders; analytics reads clickstream slowly; audit read half of payments and stopped.
    const billing = kafka.consumer({ groupId: 'billing', fromBeginning: true });
    billing.subscribe('orders');
    await billing.run({ eachBatch: async () => {} });
    consumers.push(billing);
    const analytics = kafka.consumer({ groupId: 'analytics', fromBeginning: true, commit: 'batch', maxPartitionBytes: 4096 });
    analytics.subscribe('clickstream');
    await analytics.run({ eachBatch: async () => new Promise((r) => setTimeout(r, 150)) });
    consumers.push(analytics);
    await admin.resetOffsets('audit', 'payments', { offsets: [0, 1, 2].map((partition) => ({ partition, offset: 90 + partition * 7 })) });

    // Steady traffic while the charts sample.
    let n = 2000;
    traffic = setInterval(() => {
      const batch = Array.from({ length: 40 + Math.round(30 * Math.sin(n / 200)) }, () => order(n++));
      void producer.sendBatch([...batch, ...batch.slice(0, 25).map((_, j) => ({ topic: 'clickstream', key: `session-${j}`, value: JSON.stringify({ page: '/product', ms: 80 + j }) }))]).catch(() => {});
    }, 250);

    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(30000);
    await page.goto(`${url}#/cluster`);
    // Let the charts gather about half a minute of samples.
    const deadline = Date.now() + 60000;
    for (;;) {
      const points = await page.evaluate(async () => ((await (await fetch('/api/metrics')).json()) as { points: unknown[] }).points.length);
      if (points >= 15 || Date.now() > deadline) break;
      await page.waitForTimeout(1000);
    }
    const shoot = async (name: string, hash: string, ready: string, prepare?: () => Promise<void>): Promise<void> => {
      await page.goto(`${url}${hash}`);
      await page.locator(ready).first().waitFor();
      await prepare?.();
      await page.waitForTimeout(600); // let charts and polls settle before the picture
      await page.screenshot({ path: join(OUT, `${name}.png`) });
      console.log(`docs/console/${name}.png`);
    };
    await shoot('cluster', '#/cluster', '[data-testid=brokers]');
    await shoot('topics', '#/topics', '[data-testid=topics-table]');
    await shoot('topic', '#/topics/orders/partitions', '[data-testid=partitions-table]');
    await shoot('configs', '#/topics/orders/configs', '[data-testid=configs-table]');
    await shoot('messages', '#/topics/orders/messages', '[data-testid=message-row]', async () => {
      await page.locator('[data-testid=message-row]').nth(1).click();
    });
    await shoot('groups', '#/groups', '[data-testid=groups-table]');
    await shoot('group', '#/groups/analytics', '[data-testid=group-offsets]');
    // The dark palette follows the system setting.
    await page.emulateMedia({ colorScheme: 'dark' });
    await shoot('cluster-dark', '#/cluster', '[data-testid=brokers]');
    await shoot('messages-dark', '#/topics/orders/messages', '[data-testid=message-row]', async () => {
      await page.locator('[data-testid=message-row]').nth(1).click();
    });
    await admin.close();
    await producer.close();
  } finally {
    clearInterval(traffic);
    for (const c of consumers) await c.close().catch(() => {});
    await browser.close();
    await broker.stop();
    broker.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
