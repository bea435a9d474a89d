/**
 * The exactly-once consume-transform-produce loop: `runExactlyOnce({ consumer, producer, handler })`.
 *
 * Each fetched batch of one input partition is handled in one transaction of the transactional
 * producer: the handler's output records (sent with `transaction.send` / `sendBatch`) and the
 * input offsets after the batch (`sendOffsets` with the consumer's group metadata, KIP-447) are
 * committed together, or not at all. A `read_committed` reader of the output and the group's
 * committed offsets therefore always agree: after a crash, the restarted pipeline (same
 * transactional id) fences the old producer, its open transaction is aborted, and the input is
 * read again from the offsets committed with the last committed output.
 *
 * Rules the loop checks: the producer is transactional; the consumer belongs to a group and does
 * not commit by itself (`commit: 'manual'`, `commitOnRevoke: false`) — its offsets move only
 * with the transactions. One transaction at a time (batches of several partitions, with
 * `partitionsConsumedConcurrently` > 1, take turns).
 *
 * After each commit the consumer emits 'commit' with the offsets the transaction committed, as
 * for its own commits.
 *
 * Failures: a batch whose transaction fails (the handler throws, a send fails, the commit fails)
 * is aborted and handled again from its first record — the input offset was not moved — up to
 * `retries` times with backoff; then the error goes to the consumer's own policy (`retry`,
 * `onFailure`: 'fail' stops the consumer, 'skip' moves past the batch's first record). A consumer
 * that lost the partition in a rebalance does not retry: the partition's new owner continues
 * from the last committed offsets. A fenced producer (another instance took over the
 * transactional id) stops the consumer, which leaves the group; `consumer.done()` rejects with
 * the fencing error.
 */
import { backoffMs, sleep } from './cluster.js';
import type { Consumer, ConsumerMessage } from './consumer.js';
import { StrandError } from './errors.js';
import type { Producer } from './producer.js';
import type { Transaction } from './transaction.js';

export interface ExactlyOncePayload<K, V, PK, PV> {
  /** One input partition's records, in offset order. */
  batch: { topic: string; partition: number; messages: ConsumerMessage<K, V>[]; highWatermark: number };
  /** The open transaction: send the output with `transaction.send` / `sendBatch`. */
  transaction: Transaction<PK, PV>;
  /** Sends a group heartbeat now (long handlers). */
  heartbeat(): Promise<void>;
  /** False once the partition was taken away or the consumer is stopping. */
  isRunning(): boolean;
  /** 0 the first time the batch is handled, then 1, 2, ... after aborted attempts. */
  attempt: number;
}

export interface ExactlyOnceOptions<K, V, PK, PV> {
  /** A group member with `commit: 'manual'` and `commitOnRevoke: false` (reading `read_committed`, the default). */
  consumer: Consumer<K, V>;
  /** A producer with a `transactionalId`. */
  producer: Producer<PK, PV>;
  handler: (payload: ExactlyOncePayload<K, V, PK, PV>) => Promise<void> | void;
  /** Attempts after the first when a batch's transaction fails (default 5). */
  retries?: number;
  /** First backoff between attempts (default 100 ms), doubling up to `maxBackoffMs` (default 5000 ms). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Starts the consumer with an `eachBatch` that runs `handler` inside a transaction per batch and
 * commits the batch's input offsets in it. Resolves once the consumer runs (its first
 * assignment is in place); `consumer.done()` reports how it ended, `consumer.close()` stops it.
 */
export async function runExactlyOnce<K, V, PK, PV>(opts: ExactlyOnceOptions<K, V, PK, PV>): Promise<void> {
  const { consumer, producer, handler } = opts;
  if (!producer.transactional) throw new StrandError('INVALID_CONFIG', 'runExactlyOnce needs a producer created with a transactionalId');
  const group = consumer.groupMetadata().groupId; // throws without a group
  if (consumer.commitsOffsets) {
    throw new StrandError('INVALID_CONFIG', `the consumer of group ${group} commits offsets by itself; for exactly-once create it with commit: 'manual' and commitOnRevoke: false`);
  }
  const retries = Math.max(0, opts.retries ?? 5);
  const initialBackoffMs = opts.initialBackoffMs ?? 100;
  const maxBackoffMs = opts.maxBackoffMs ?? 5000;
  // Fences an older instance with the same transactional id and aborts its open transaction
  // before the consumer reads its committed offsets (which that transaction may hold pending).
  await producer.initTransactions();
  let turn: Promise<void> = Promise.resolve();
  await consumer.run({
    eachBatch: async ({ batch, heartbeat, isRunning, resolveOffset }) => {
      if (batch.messages.length === 0) return;
      const mine = turn.then(async () => {
        const last = batch.messages[batch.messages.length - 1]!.offset;
        const committed = (offset: number): void => {
          resolveOffset(offset);
          consumer.emit('commit', [{ topic: batch.topic, partition: batch.partition, offset: offset + 1 }]);
        };
        for (let attempt = 0; ; attempt++) {
          let txn: Transaction<PK, PV> | null = null;
          try {
            txn = await producer.transaction();
            await handler({ batch, transaction: txn, heartbeat, isRunning, attempt });
            await txn.sendOffsets({ consumer, offsets: [{ topic: batch.topic, partition: batch.partition, offset: last + 1 }] });
            await txn.commit();
            committed(last);
            return;
          } catch (e) {
            if (producer.fatalError !== null) {
              // Fenced: a newer instance carries on. This one stops (leaving the group) instead of
              // letting the consumer's retry or skip policy spin on a producer that cannot write.
              void consumer.close().catch(() => {});
              throw producer.fatalError;
            }
            if (txn !== null && txn.state === 'committing') {
              // The commit was decided but not confirmed: only committing again can settle it.
              await txn.commit();
              committed(last);
              return;
            }
            if (txn !== null && txn.isActive) await txn.abort().catch(() => {});
            if (attempt >= retries || !isRunning()) throw e;
            consumer.emit('transactionRetry', { topic: batch.topic, partition: batch.partition, offset: batch.messages[0]!.offset, attempt: attempt + 1, error: e });
            await sleep(backoffMs(attempt + 1, initialBackoffMs, maxBackoffMs));
          }
        }
      });
      turn = mine.catch(() => {});
      await mine;
    },
  });
}
