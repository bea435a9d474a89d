/**
 * Issue 6's end-to-end acceptance, the network partition: a real three-process cluster, each node
 * in its own Linux network namespace (src/testing/netns.ts), under the librdkafka acks=all load of
 * scenario.ts. The leader of a partition is cut off from the other nodes (and from the clients);
 * the others fence it and elect new leaders; the load goes on; the link is healed and the old
 * leader must rejoin as a follower (truncating what the new leader does not have) until every ISR
 * is full. Right after the heal the old leader's image is stale (it learns the new quorum leader
 * about 1.5 s later): it must not take librdkafka's writes as the partition's leader meanwhile
 * (its controller session has lapsed: NOT_LEADER_OR_FOLLOWER), or the idempotent producer gets
 * OUT_OF_ORDER_SEQUENCE_NUMBER, which is fatal to it. The checker then confirms nothing acknowledged was lost, duplicated or reordered and
 * the consumers caught up. Needs root (namespaces): skips with the reason otherwise.
 */
import { test } from 'node:test';
import { netnsUnavailable, waitUntil } from '../../src/testing/cluster.js';
import { skipUnless } from '../interop/helpers.js';
import { Scenario, TOPIC } from './scenario.js';

const netns = netnsUnavailable();
const skip = netns !== null ? { skip: `${netns} (a network partition needs namespaces)` } : skipUnless('confluent-kafka');

test('three nodes under librdkafka acks=all load: a network partition isolates a partition leader, then heals; nothing acknowledged lost, no duplicates, no reordering, consumers caught up', { ...skip, timeout: 240000 }, async (t) => {
  const s = await Scenario.start(t, 'netns');
  const { cluster } = s;
  const leader = await cluster.leaderOf(TOPIC, 1);
  cluster.isolate(leader);
  const cutAt = Date.now();
  s.note(`isolated node ${leader} (leader of ${TOPIC}-1)`);
  const next = await cluster.leaderOf(TOPIC, 1, { not: leader, timeoutMs: 30000 });
  await s.producer.waitForMoreAcks(50, 60000, 1);
  s.failovers['network partition isolating a partition leader'] = s.ackDelay(1, cutAt);
  console.log(`isolated node ${leader} (leader of ${TOPIC}-1); node ${next} leads it; first acknowledgement ${s.failovers['network partition isolating a partition leader']} ms after the cut`);
  await s.steady();
  cluster.heal(leader);
  s.note(`healed node ${leader}`);
  await waitUntil(`node ${leader} to rejoin after the heal`, async () => ((await cluster.metadata([], leader).catch(() => null))?.brokers.length === 3 ? true : null), 60000);
  await s.fullIsr(`node ${leader} healed`);
  await s.steady();
  await s.finish(500);
});
