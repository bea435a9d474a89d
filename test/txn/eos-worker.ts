/**
 * The pipeline worker of the exactly-once crash test (exactly-once-pipeline.test.ts), run as a
 * child process: consumes INPUT in group GROUP, writes `out-<value>` for every record to OUTPUT
 * with runExactlyOnce (transactional id TXN_ID), and exits 0 once the offsets committed with its
 * transactions reach the end of every input partition (as it was when the worker started).
 *
 * With HOLD_AFTER=n it stops short on purpose: once n records have been committed, the next
 * batch's transaction sends its output and its offsets, prints {"event":"holding"} and never
 * commits — the test kills it there, with a transaction open.
 *
 * stdout: one JSON object per line ({"event":"committed","records":n}, "holding", "done").
 */
import { Kafka } from '../../src/client/kafka.js';
import { runExactlyOnce } from '../../src/client/exactly-once.js';
import { stringSerde } from '../../src/client/serializers.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
};
const bootstrap = env('BOOTSTRAP');
const input = env('INPUT');
const output = env('OUTPUT');
const holdAfter = process.env['HOLD_AFTER'] === undefined ? Infinity : Number(process.env['HOLD_AFTER']);
const say = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');

const kafka = new Kafka({ brokers: [bootstrap], clientId: 'eos-worker', retry: { retries: 20 } });
const admin = kafka.admin();
const ends = new Map((await admin.listOffsets(input, 'latest')).map((o) => [o.partition, o.offset]));
const done = new Map<number, number>();
for (const o of await admin.fetchOffsets(env('GROUP'))) if (o.topic === input) done.set(o.partition, o.offset);
await admin.close();
const finished = (): boolean => [...ends].every(([p, end]) => (done.get(p) ?? 0) >= end);

const consumer = kafka.consumer<string | null, string | null>({
  groupId: env('GROUP'),
  groupInstanceId: 'eos-worker',
  sessionTimeoutMs: 10000,
  heartbeatIntervalMs: 500,
  fromBeginning: true,
  commit: 'manual',
  commitOnRevoke: false,
  maxPartitionBytes: Number(process.env['MAX_PARTITION_BYTES'] ?? 32768),
  keyDeserializer: stringSerde,
  valueDeserializer: stringSerde,
});
const producer = kafka.producer<string | null, string | null>({ transactionalId: env('TXN_ID'), keySerializer: stringSerde, valueSerializer: stringSerde, lingerMs: 2 });

let records = 0;
let exiting = false;
consumer.on('commit', (offsets: Array<{ partition: number; offset: number }>) => {
  for (const o of offsets) done.set(o.partition, o.offset);
  say({ event: 'committed', records, offsets });
  if (finished() && !exiting) {
    exiting = true;
    void (async () => {
      await consumer.close();
      await producer.close();
      say({ event: 'done', records });
      process.exit(0);
    })();
  }
});

consumer.subscribe(input);
await runExactlyOnce({
  consumer,
  producer,
  handler: async ({ batch, transaction }) => {
    await transaction.sendBatch(batch.messages.map((m) => ({ topic: output, key: m.key, value: `out-${m.value}` })));
    if (records >= holdAfter) {
      const last = batch.messages[batch.messages.length - 1]!.offset;
      await transaction.sendOffsets({ consumer, offsets: [{ topic: batch.topic, partition: batch.partition, offset: last + 1 }] });
      say({ event: 'holding', topic: batch.topic, partition: batch.partition, from: batch.messages[0]!.offset, to: last });
      setInterval(() => {}, 1000); // keeps the process alive until it is killed
      await new Promise(() => {});
    }
    records += batch.messages.length;
  },
});
if (finished()) {
  // Nothing left to do (a restart after the last commit).
  await consumer.close();
  await producer.close();
  say({ event: 'done', records });
  process.exit(0);
}
consumer.done().catch((e: unknown) => {
  process.stderr.write(`consumer stopped: ${(e as Error).stack}\n`);
  process.exit(1);
});
