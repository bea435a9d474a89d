/**
 * kill -9 of the broker while librdkafka (confluent-kafka-python) streams sequenced values with
 * acks=all, then a restart on the same data directory: every acknowledged record must be there, at
 * the offset its delivery report named, and the log must stay dense and ordered.
 *
 * The producer runs with retries off (message.send.max.retries=0), so an acknowledged value can
 * appear only once: any duplicate would be the broker's doing, not an at-least-once retry.
 * Records the broker appended but never acknowledged may survive or not; both are fine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { describeRun, fetchAll, pythonJson, skipUnless, spawnPython, uniqueTopic } from './helpers.js';

const TOTAL = 20000;
const KILL_AFTER_ACKS = 3000;

const PRODUCER = `
import os, sys, time
from confluent_kafka import Producer
B = os.environ['BOOTSTRAP']
T = os.environ['TOPIC']
TOTAL = int(os.environ['TOTAL'])
out = sys.stdout
def on_delivery(err, msg):
    if err is None:
        out.write('A %d %s\\n' % (msg.offset(), msg.value().decode()))
    else:
        out.write('E %s %s\\n' % (msg.value().decode(), err.name()))
p = Producer({'bootstrap.servers': B, 'acks': 'all', 'linger.ms': 2, 'batch.num.messages': 200,
              'message.send.max.retries': 0, 'message.timeout.ms': 4000, 'enable.idempotence': False,
              'reconnect.backoff.max.ms': 200})
for i in range(TOTAL):
    while True:
        try:
            p.produce(T, value=str(i).encode(), partition=0, on_delivery=on_delivery)
            break
        except BufferError:
            p.poll(0.01)
    if i % 20 == 19:
        p.poll(0.002)   # pace the stream so the kill lands mid-flight
left = p.flush(15)
out.write('DONE %d\\n' % left)
out.flush()
`;

test(
  'kill -9 during an acks=all librdkafka stream: every acknowledged record survives at its offset, densely',
  { ...skipUnless('confluent-kafka'), timeout: 120000 },
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'strand-crash-'));
    const topic = uniqueTopic('crash');
    let broker: BrokerProcess | undefined;
    try {
      broker = await startBroker({ dataDir });
      // Create the topic up front so the stream starts at once.
      await pythonJson(
        'confluent-kafka',
        `
import os, json
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({'bootstrap.servers': os.environ['BOOTSTRAP']})
a.create_topics([NewTopic(os.environ['TOPIC'], 1, 1)])[os.environ['TOPIC']].result(15)
print(json.dumps(True))
`,
        broker.bootstrap,
        { env: { TOPIC: topic } },
      );

      const producer = spawnPython('confluent-kafka', PRODUCER, broker.bootstrap, { env: { TOPIC: topic, TOTAL: String(TOTAL) }, timeoutMs: 90000 });
      await producer.waitForLines(/^A /, KILL_AFTER_ACKS, 60000);
      await broker.kill();
      const killedAt = producer.lines().filter((l) => l.startsWith('A ')).length;
      const result = await producer.exited;
      assert.equal(result.code, 0, describeRun('producer', result));

      const acked = new Map<number, number>(); // offset -> value
      const ackedValues = new Set<number>();
      let errors = 0;
      for (const line of producer.lines()) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'A') {
          const offset = Number(a);
          const value = Number(b);
          assert.ok(!acked.has(offset), `offset ${offset} acknowledged twice`);
          assert.ok(!ackedValues.has(value), `value ${value} acknowledged twice`);
          acked.set(offset, value);
          ackedValues.add(value);
        } else if (kind === 'E') {
          errors++;
        }
      }
      assert.ok(acked.size >= KILL_AFTER_ACKS, `${acked.size} acks`);
      assert.ok(acked.size < TOTAL, `all ${TOTAL} records were acknowledged before the kill took effect: the test proved nothing`);
      assert.equal(acked.size + errors, TOTAL, 'every record got a delivery report');

      // Restart on the same data directory (a new port: the producer is gone).
      broker = await startBroker({ dataDir });
      const { records, highWatermark } = await fetchAll(broker.port, topic, 0);
      const maxAcked = Math.max(...acked.keys());
      assert.ok(highWatermark > maxAcked, `high watermark ${highWatermark} after recovery is not past the last acknowledged offset ${maxAcked}`);

      // Dense and ordered: offsets 0..HW-1, values strictly increasing (the stream's order).
      assert.equal(records.length, highWatermark);
      for (let i = 0; i < records.length; i++) {
        assert.equal(records[i]!.offset, i, `gap or reordering at position ${i}`);
        if (i > 0) assert.ok(Number(records[i]!.value) > Number(records[i - 1]!.value), `values out of order at offset ${i}: ${records[i - 1]!.value} then ${records[i]!.value}`);
      }
      // Every acknowledged record is at its acknowledged offset.
      for (const [offset, value] of acked) {
        assert.equal(records[offset]?.value, String(value), `acknowledged value ${value} not at offset ${offset}`);
      }
      // No acknowledged value is duplicated elsewhere.
      const seen = new Map<string, number>();
      for (const r of records) {
        const prev = seen.get(r.value!);
        assert.equal(prev, undefined, `value ${r.value} at offsets ${prev} and ${r.offset}`);
        seen.set(r.value!, r.offset);
      }

      // The log continues densely after recovery.
      const more = await pythonJson(
        'confluent-kafka',
        `
import os, json
from confluent_kafka import Producer
offsets = []
p = Producer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'acks': 'all'})
for i in range(10):
    p.produce(os.environ['TOPIC'], value=('after-%d' % i).encode(), partition=0, on_delivery=lambda err, msg: offsets.append(msg.offset() if err is None else str(err)))
p.flush(15)
print(json.dumps(offsets))
`,
        broker.bootstrap,
        { env: { TOPIC: topic } },
      );
      assert.deepEqual(more, Array.from({ length: 10 }, (_, i) => highWatermark + i));

      console.log(
        `crash-recovery: ${killedAt} acks when killed, ${acked.size} acked in all, ${errors} failed, ` +
          `${highWatermark - acked.size} unacknowledged records survived; recovery log: ` +
          (broker.output().match(/.*(recover|not clean).*/i)?.[0] ?? '(none)'),
      );
      assert.equal(await broker.stop(), 0, broker.output().slice(-3000));
    } finally {
      await broker?.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
