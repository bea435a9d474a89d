/**
 * Issue 6's end-to-end acceptance, the process faults: a real three-process cluster (combined
 * nodes on loopback) under a continuous acks=all idempotent produce load from librdkafka
 * (test/cluster/load/producer.py) with a two-member consumer group reading it (scenario.ts),
 * through kill -9 of the leader of a partition and its restart, then kill -9 of the controller
 * (the metadata quorum's leader) and its restart, each followed by a return to full ISRs. The
 * checker then confirms that no acknowledged record was lost, none was duplicated or reordered
 * within a partition, no consumer read a record the final log does not hold at that offset, and
 * the consumers caught up. The failover time is from the kill to the first acknowledgement of
 * that partition delivered afterwards (necessarily by the new leader); docs/CLUSTER.md records it.
 * The network partition is in partition.test.ts.
 */
import { test } from 'node:test';
import { skipUnless } from '../interop/helpers.js';
import { PARTITIONS, Scenario, TOPIC } from './scenario.js';

test('three nodes under librdkafka acks=all load: kill -9 of a partition leader, then of the controller; nothing acknowledged lost, no duplicates, no reordering, consumers caught up', { ...skipUnless('confluent-kafka'), timeout: 240000 }, async (t) => {
  const s = await Scenario.start(t, 'loopback');
  const { cluster } = s;

  // 1. kill -9 of the leader of partition 0, then its restart.
  {
    const leader = await cluster.leaderOf(TOPIC, 0);
    await cluster.kill(leader);
    const killedAt = Date.now();
    s.note(`killed node ${leader} (leader of ${TOPIC}-0)`);
    const next = await cluster.leaderOf(TOPIC, 0, { not: leader, timeoutMs: 30000 });
    await s.producer.waitForMoreAcks(50, 60000, 0);
    s.failovers['kill -9 of a partition leader'] = s.ackDelay(0, killedAt);
    console.log(`1. killed node ${leader} (leader of ${TOPIC}-0); node ${next} leads it; first acknowledgement ${s.failovers['kill -9 of a partition leader']} ms after the kill`);
    await cluster.restart(leader, { waitForBrokers: 3 });
    s.note(`restarted node ${leader}`);
    await s.fullIsr(`1. node ${leader} restarted`);
    await s.steady();
  }

  // 2. kill -9 of the controller (the quorum leader), then its restart.
  {
    const controller = await cluster.controllerLeader();
    const led: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) if ((await cluster.partition(TOPIC, p))?.leader === controller) led.push(p);
    await cluster.kill(controller);
    const killedAt = Date.now();
    s.note(`killed node ${controller} (quorum leader)`);
    const next = await cluster.controllerLeader({ not: controller, timeoutMs: 30000 });
    const electedMs = Date.now() - killedAt;
    await s.steady(30);
    const watched = led[0] ?? 0;
    s.failovers['kill -9 of the controller'] = s.ackDelay(watched, killedAt);
    console.log(`2. killed node ${controller} (quorum leader; it led partitions [${led.join(',')}]); node ${next} leads the quorum ${electedMs} ms later; first acknowledgement of partition ${watched} ${s.failovers['kill -9 of the controller']} ms after the kill`);
    await cluster.restart(controller, { waitForBrokers: 3 });
    s.note(`restarted node ${controller}`);
    await s.fullIsr(`2. node ${controller} restarted`);
    await s.steady();
  }

  await s.finish(1000);
});
