/**
 * The fault scenarios' common frame: a three-node cluster (its directory kept, with every node's
 * log, when the test fails), topic `failover` (3 partitions, replication factor 3,
 * min.insync.replicas 2), the librdkafka load (an acks=all idempotent producer, two group
 * members), a watcher that records every leader / ISR change, and the final check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startCluster, waitUntil, type ClusterNetwork, type LocalCluster } from '../../src/testing/cluster.js';
import { check, summary, violations } from './checker.js';
import { dumpTopic, GroupConsumer, LoadProducer } from './load.js';

export const TOPIC = 'failover';
export const PARTITIONS = 3;
const RATE = 150;

export class Scenario {
  readonly failovers: Record<string, number> = {};
  private readonly history: string[] = [];
  private readonly started = Date.now();
  private passed = false;

  private constructor(
    readonly cluster: LocalCluster,
    readonly producer: LoadProducer,
    readonly consumers: GroupConsumer[],
  ) {}

  static async start(t: TestContext, network: ClusterNetwork): Promise<Scenario> {
    const dataDir = mkdtempSync(join(tmpdir(), 'strand-failover-'));
    const cluster = await startCluster({ nodes: 3, network, dataDir });
    let s: Scenario | null = null;
    let watching = true;
    let watcher: Promise<void> = Promise.resolve();
    t.after(async () => {
      s?.producer.kill();
      for (const c of s?.consumers ?? []) c.kill();
      watching = false;
      await watcher;
      await cluster.destroy();
      if (s !== null) console.log(`partition history:\n${s.history.join('\n')}`);
      if (s?.passed === true) rmSync(dataDir, { recursive: true, force: true });
      else console.log(`the nodes' data and logs are kept in ${dataDir}`);
    });
    // The topic exists before any client runs: librdkafka's producer asks for its metadata with
    // allow_auto_topic_creation, and an auto-created topic (num.partitions=1) could win the race.
    const initial = await cluster.createTopic(TOPIC, { partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
    assert.deepEqual(initial.map((p) => p.replicas.length), [3, 3, 3]);
    const producer = new LoadProducer(cluster.bootstrap, TOPIC, PARTITIONS, RATE);
    const group = `${TOPIC}-readers`;
    const consumers = [new GroupConsumer(cluster.bootstrap, TOPIC, group, 'a'), new GroupConsumer(cluster.bootstrap, TOPIC, group, 'b')];
    const scenario = new Scenario(cluster, producer, consumers);
    s = scenario;
    watcher = (async () => {
      const last = new Map<number, string>();
      while (watching) {
        for (let p = 0; p < PARTITIONS; p++) {
          const st = await cluster.partition(TOPIC, p).catch(() => null);
          const line = st === null ? 'unknown' : `leader ${st.leader} epoch ${st.leaderEpoch} isr [${st.isr.join(',')}]`;
          if (last.get(p) !== line) scenario.note(`${TOPIC}-${p}: ${line}`);
          last.set(p, line);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await scenario.steady(50);
    for (const c of consumers) await c.waitFor('a partition assignment', (ls) => ls.some((l) => l.event === 'assigned' && (l['partitions'] as number[]).length > 0), 60000);
    return scenario;
  }

  note(what: string): void {
    this.history.push(`+${((Date.now() - this.started) / 1000).toFixed(1)}s ${what}`);
  }

  /** Waits for `n` more acknowledgements on every partition. */
  async steady(n = 20, timeoutMs = 60000): Promise<void> {
    for (let p = 0; p < PARTITIONS; p++) await this.producer.waitForMoreAcks(n, timeoutMs, p);
  }

  /** The first acknowledgement of `partition` delivered at or after `since` (epoch ms), as ms after `since`. */
  ackDelay(partition: number, since: number): number {
    for (const a of this.producer.ackTimes()) if (a.p === partition && a.t >= since) return a.t - since;
    throw new Error(`no acknowledgement of partition ${partition} after ${since}`);
  }

  /** Waits until every partition is led with a full ISR; on timeout says what the partitions and nodes look like. */
  async fullIsr(what: string): Promise<void> {
    const started = Date.now();
    await this.cluster.waitForTopic(TOPIC, PARTITIONS, 60000).catch(async (e: Error) => {
      const states = [];
      for (let p = 0; p < PARTITIONS; p++) states.push(JSON.stringify(await this.cluster.partition(TOPIC, p)));
      const warnings = this.cluster.nodes.map((n) => `--- node ${n.id} WARN/ERROR ---\n${n.output().split('\n').filter((l) => / (WARN|ERROR) /.test(l)).slice(-15).join('\n')}`);
      throw new Error(`${what}: ${e.message}\n${states.join('\n')}\n${warnings.join('\n')}`);
    });
    this.note(`${what}: full ISRs`);
    console.log(`${what}: every partition back to a full ISR after ${Date.now() - started} ms`);
  }

  /**
   * Stops the load and checks it: the producer flushed everything with no failed delivery, a
   * fresh dump of the topic holds every acknowledged record once and in order, and the group read
   * everything stored. Then every node must stop cleanly.
   */
  async finish(minAcked: number): Promise<void> {
    const done = await this.producer.stop();
    assert.equal(done.code, 0, `the producer did not flush everything:\n${this.producer.errors().slice(-3000)}\n${this.producer.tail()}`);
    const failed = this.producer.failed();
    const acked = this.producer.acked();
    const final = await dumpTopic(this.cluster.bootstrap, TOPIC);
    // The group catches up with everything stored (a rebalance may make it read some records twice).
    const total = new Set(final.records.map((r) => `${r.p}@${r.o}`));
    await waitUntil('the consumer group to catch up', () => {
      const read = new Set(this.consumers.flatMap((c) => c.records().map((r) => `${r.p}@${r.o}`)));
      for (const k of total) if (!read.has(k)) return null;
      return true;
    }, 60000, 200).catch((e: Error) => console.log(e.message));
    for (const c of this.consumers) await c.stop(30000);

    const report = check(acked, final.records, this.consumers.flatMap((c) => c.records()));
    console.log(`checker: ${summary(report)}; failed deliveries ${failed.length}`);
    // A producer recreated after librdkafka's own bug (load/producer.py): said, not hidden.
    for (const l of this.producer.lines.filter((x) => x.event === 'client-fatal')) console.log(`producer recreated after a known client bug: ${String(l['known'])}: ${String(l['err'])}`);
    console.log(`failover times (ms): ${JSON.stringify(this.failovers)}`);
    assert.deepEqual(violations(report), []);
    assert.deepEqual(failed, [], 'no delivery failed (message.timeout.ms outlasts every failover)');
    assert.ok(acked.length >= minAcked, `only ${acked.length} records acknowledged`);

    const codes = await this.cluster.stop();
    const errors = this.cluster.nodes.flatMap((n) => n.output().split('\n').filter((l) => / ERROR /.test(l)).map((l) => `node ${n.id}: ${l}`));
    if (errors.length > 0) console.log(`ERROR lines in the nodes' logs:\n${errors.slice(0, 30).join('\n')}`);
    assert.deepEqual(codes, { 1: 0, 2: 0, 3: 0 });
    this.passed = true;
  }
}
