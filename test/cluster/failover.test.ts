/**
 * Issue 6's end-to-end acceptance: a real three-process cluster (combined nodes, each in its own
 * network namespace) under a continuous acks=all idempotent produce load from librdkafka
 * (test/cluster/load/producer.py) with a two-member consumer group reading it, through
 *   1. kill -9 of the leader of a partition, later restarted;
 *   2. kill -9 of the controller (the metadata quorum's leader), later restarted;
 *   3. a network partition that isolates the leader of a partition from the others, then healed.
 * After each fault the cluster must return to full ISRs. At the end the checker (checker.ts)
 * confirms that no acknowledged record was lost, none was duplicated or reordered within a
 * partition, no consumer read a record that the final log does not hold at that offset, and the
 * consumers caught up with everything stored. The failover times (from the kill or the cut to the
 * first acknowledgement of that partition delivered afterwards, necessarily by the new leader)
 * are printed (docs/CLUSTER.md records them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { netnsUnavailable, startCluster, waitUntil, type LocalCluster } from '../../src/testing/cluster.js';
import { skipUnless } from '../interop/helpers.js';
import { check, summary, violations } from './checker.js';
import { dumpTopic, GroupConsumer, LoadProducer } from './load.js';

const TOPIC = 'failover';
const PARTITIONS = 3;
const RATE = 150;

const netns = netnsUnavailable();
const skip = netns !== null ? { skip: `${netns} (the network partition needs namespaces)` } : skipUnless('confluent-kafka');

/** The first acknowledgement of `partition` delivered at or after `since` (epoch ms). */
function firstAckAfter(producer: LoadProducer, partition: number, since: number): number | null {
  for (const a of producer.ackTimes()) if (a.p === partition && a.t >= since) return a.t;
  return null;
}

async function fullIsr(cluster: LocalCluster, what: string): Promise<void> {
  const started = Date.now();
  await cluster.waitForTopic(TOPIC, PARTITIONS, 60000).catch(async (e: Error) => {
    const states = [];
    for (let p = 0; p < PARTITIONS; p++) states.push(JSON.stringify(await cluster.partition(TOPIC, p)));
    const warnings = cluster.nodes.map((n) => `--- node ${n.id} WARN/ERROR ---\n${n.output().split('\n').filter((l) => / (WARN|ERROR) /.test(l)).slice(-15).join('\n')}`);
    throw new Error(`${what}: ${e.message}\n${states.join('\n')}\n${warnings.join('\n')}`);
  });
  console.log(`${what}: every partition back to a full ISR after ${Date.now() - started} ms`);
}

test('three nodes under librdkafka acks=all load: kill -9 of a partition leader, of the controller, an isolated leader; nothing acknowledged lost, no duplicates, no reordering, consumers caught up', { ...skip, timeout: 300000 }, async (t) => {
  // Our own directory, kept (with every node's log) when the test fails.
  const dataDir = mkdtempSync(join(tmpdir(), 'strand-failover-'));
  let passed = false;
  const cluster = await startCluster({ nodes: 3, network: 'netns', dataDir });
  const producer = new LoadProducer(cluster.bootstrap, TOPIC, PARTITIONS, RATE);
  const group = `${TOPIC}-readers`;
  const consumers = [new GroupConsumer(cluster.bootstrap, TOPIC, group, 'a'), new GroupConsumer(cluster.bootstrap, TOPIC, group, 'b')];
  t.after(async () => {
    producer.kill();
    for (const c of consumers) c.kill();
    await cluster.destroy();
  });
  const failovers: Record<string, number> = {};
  // A record of every leader / ISR change the reachable nodes report, printed at the end.
  const started = Date.now();
  const history: string[] = [];
  let watching = true;
  const watcher = (async () => {
    const last = new Map<number, string>();
    while (watching) {
      for (let p = 0; p < PARTITIONS; p++) {
        const s = await cluster.partition(TOPIC, p).catch(() => null);
        const line = s === null ? 'unknown' : `leader ${s.leader} epoch ${s.leaderEpoch} isr [${s.isr.join(',')}]`;
        if (last.get(p) !== line) history.push(`+${((Date.now() - started) / 1000).toFixed(1)}s ${TOPIC}-${p}: ${line}`);
        last.set(p, line);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const note = (what: string): void => void history.push(`+${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
  t.after(async () => {
    watching = false;
    await watcher;
    console.log(`partition history:\n${history.join('\n')}`);
    if (passed) rmSync(dataDir, { recursive: true, force: true });
    else console.log(`the nodes' data and logs are kept in ${dataDir}`);
  });

  const initial = await cluster.createTopic(TOPIC, { partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
  assert.deepEqual(initial.map((p) => p.replicas.length), [3, 3, 3]);
  // Wait for the producer's own start line, then for steady acknowledgements on every partition.
  for (let p = 0; p < PARTITIONS; p++) await producer.waitForMoreAcks(50, 60000, p);
  for (const c of consumers) await c.waitFor('a partition assignment', (ls) => ls.some((l) => l.event === 'assigned' && (l['partitions'] as number[]).length > 0), 60000);

  // 1. kill -9 of the leader of partition 0.
  {
    const leader = await cluster.leaderOf(TOPIC, 0);
    await cluster.kill(leader);
    const killedAt = Date.now();
    note(`killed node ${leader}`);
    const next = await cluster.leaderOf(TOPIC, 0, { not: leader, timeoutMs: 30000 });
    await producer.waitForMoreAcks(50, 60000, 0);
    failovers['kill -9 of a partition leader'] = firstAckAfter(producer, 0, killedAt)! - killedAt;
    console.log(`1. killed node ${leader} (leader of ${TOPIC}-0); node ${next} leads it; first acknowledgement ${failovers['kill -9 of a partition leader']} ms after the kill`);
    await cluster.restart(leader, { waitForBrokers: 3 });
    note(`restarted node ${leader}`);
    await fullIsr(cluster, `1. node ${leader} restarted`);
    for (let p = 0; p < PARTITIONS; p++) await producer.waitForMoreAcks(20, 30000, p);
  }

  // 2. kill -9 of the controller (the quorum leader).
  {
    const controller = await cluster.controllerLeader();
    const led = [];
    for (let p = 0; p < PARTITIONS; p++) if ((await cluster.partition(TOPIC, p))?.leader === controller) led.push(p);
    await cluster.kill(controller);
    const killedAt = Date.now();
    note(`killed node ${controller} (quorum leader)`);
    const next = await cluster.controllerLeader({ not: controller, timeoutMs: 30000 });
    const electedMs = Date.now() - killedAt;
    for (let p = 0; p < PARTITIONS; p++) await producer.waitForMoreAcks(30, 60000, p);
    const watched = led[0] ?? 0;
    failovers['kill -9 of the controller'] = firstAckAfter(producer, watched, killedAt)! - killedAt;
    console.log(`2. killed node ${controller} (quorum leader; it led partitions [${led.join(',')}]); node ${next} leads the quorum ${electedMs} ms later; first acknowledgement of partition ${watched} ${failovers['kill -9 of the controller']} ms after the kill`);
    await cluster.restart(controller, { waitForBrokers: 3 });
    note(`restarted node ${controller}`);
    await fullIsr(cluster, `2. node ${controller} restarted`);
    for (let p = 0; p < PARTITIONS; p++) await producer.waitForMoreAcks(20, 30000, p);
  }

  // 3. a network partition: the leader of partition 1 is cut off from the other nodes (and from the clients).
  {
    const leader = await cluster.leaderOf(TOPIC, 1);
    cluster.isolate(leader);
    const cutAt = Date.now();
    note(`isolated node ${leader}`);
    const next = await cluster.leaderOf(TOPIC, 1, { not: leader, timeoutMs: 30000 });
    await producer.waitForMoreAcks(50, 60000, 1);
    failovers['network partition isolating a partition leader'] = firstAckAfter(producer, 1, cutAt)! - cutAt;
    console.log(`3. isolated node ${leader} (leader of ${TOPIC}-1); node ${next} leads it; first acknowledgement ${failovers['network partition isolating a partition leader']} ms after the cut`);
    for (let p = 0; p < PARTITIONS; p++) await producer.waitForMoreAcks(20, 30000, p);
    cluster.heal(leader);
    note(`healed node ${leader}`);
    await waitUntil(`node ${leader} to rejoin after the heal`, async () => ((await cluster.metadata([], leader).catch(() => null))?.brokers.length === 3 ? true : null), 60000);
    await fullIsr(cluster, `3. node ${leader} healed`);
    for (let p = 0; p < PARTITIONS; p++) await producer.waitForMoreAcks(20, 30000, p);
  }

  const done = await producer.stop();
  assert.equal(done.code, 0, `the producer did not flush everything:\n${producer.errors().slice(-3000)}\n${producer.tail()}`);
  const failed = producer.failed();
  const acked = producer.acked();
  const final = await dumpTopic(cluster.bootstrap, TOPIC);
  // The group catches up with everything stored (a rebalance may make it read some records twice).
  const total = new Set(final.records.map((r) => `${r.p}@${r.o}`));
  await waitUntil('the consumer group to catch up', () => {
    const read = new Set(consumers.flatMap((c) => c.records().map((r) => `${r.p}@${r.o}`)));
    for (const k of total) if (!read.has(k)) return null;
    return true;
  }, 60000, 200).catch((e: Error) => console.log(e.message));
  for (const c of consumers) await c.stop(30000);

  const report = check(acked, final.records, consumers.flatMap((c) => c.records()));
  console.log(`checker: ${summary(report)}; failed deliveries ${failed.length}`);
  console.log(`failover times (ms): ${JSON.stringify(failovers)}`);
  assert.deepEqual(violations(report), []);
  assert.deepEqual(failed, [], 'no delivery failed (message.timeout.ms outlasts every failover)');
  assert.ok(acked.length > 1000, `only ${acked.length} records acknowledged`);

  const codes = await cluster.stop();
  const errors = cluster.nodes.flatMap((n) => n.output().split('\n').filter((l) => / ERROR /.test(l)).map((l) => `node ${n.id}: ${l}`));
  if (errors.length > 0) console.log(`ERROR lines in the nodes' logs:\n${errors.slice(0, 30).join('\n')}`);
  assert.deepEqual(codes, { 1: 0, 2: 0, 3: 0 });
  passed = true;
});
