/**
 * Transaction coordinator failover in-process: two coordinators (A and B) over one
 * `__transaction_state` log, as the leaders of a partition before and after a leader change; the
 * markers they write carry the partition's leader epoch as the coordinator epoch, and a data
 * partition (ProducerStateManager) refuses a marker older than one it has seen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/protocol/errors.js';
import { MemoryCoordinatorLog } from '../../src/coordinator/coordinator-log.js';
import { ManualScheduler } from '../../src/coordinator/time.js';
import { TransactionCoordinator, DEFAULT_TXN_CONFIG, type TxnMarkerWriter } from '../../src/coordinator/transaction-coordinator.js';
import { TxnState, decodeTransactionValue, partitionForTransactionalId } from '../../src/coordinator/transaction-records.js';
import { ProducerStateError, ProducerStateManager, type ProducerBatchInfo } from '../../src/storage/producer-state.js';
import { noopLogger } from '../../src/storage/logger.js';

const PARTITIONS = 3;
const TID = 'tx-1';

interface Written {
  coordinator: string;
  topic: string;
  partition: number;
  producerId: number;
  epoch: number;
  commit: boolean;
  coordinatorEpoch: number;
}

/** A marker writer that records markers and can be held (a slow data partition). */
class Markers {
  readonly written: Written[] = [];
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  writerFor(coordinator: string): TxnMarkerWriter {
    return {
      writeMarker: async (p, producerId, epoch, commit, coordinatorEpoch) => {
        if (this.gate !== null) await this.gate;
        this.written.push({ coordinator, topic: p.topic, partition: p.partition, producerId, epoch, commit, coordinatorEpoch });
        return true;
      },
    };
  }
}

function coordinator(name: string, clock: ManualScheduler, markers: Markers, nextPid: { n: number }): TransactionCoordinator {
  return new TransactionCoordinator({
    scheduler: clock,
    logger: noopLogger,
    config: DEFAULT_TXN_CONFIG,
    allocateProducerId: async () => nextPid.n++,
    markers: markers.writerFor(name),
  });
}

test('failover: an in-flight PrepareCommit is completed by the new coordinator with its epoch; the old one answers NOT_COORDINATOR and stops', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const markers = new Markers();
  const pids = { n: 1000 };
  const a = coordinator('a', clock, markers, pids);
  const b = coordinator('b', clock, markers, pids);
  const p = partitionForTransactionalId(TID, PARTITIONS);
  a.attach(log);
  b.attach(log);
  for (let i = 0; i < PARTITIONS; i++) await a.onElection(i, 4);
  assert.equal(b.unavailableFor(TID), ErrorCode.NOT_COORDINATOR);

  const init = await a.initProducerId(TID, 60000, -1, -1, ErrorCode.PRODUCER_FENCED);
  assert.equal(init.errorCode, ErrorCode.NONE);
  const parts = [
    { topic: 'orders', partition: 0 },
    { topic: 'orders', partition: 1 },
  ];
  assert.equal(await a.addPartitions(TID, init.producerId, init.producerEpoch, parts, ErrorCode.PRODUCER_FENCED), ErrorCode.NONE);
  // The markers hang (a slow partition leader): A has written PrepareCommit and answered EndTxn.
  markers.hold();
  assert.equal(await a.endTxn(TID, init.producerId, init.producerEpoch, true, ErrorCode.PRODUCER_FENCED), ErrorCode.NONE);
  assert.equal(a.transaction(TID)!.state, TxnState.PrepareCommit);

  // The leadership of the partition moves to B (epoch 5).
  a.onResignation(p);
  assert.equal(a.transaction(TID), undefined);
  assert.equal((await a.initProducerId(TID, 60000, -1, -1, ErrorCode.PRODUCER_FENCED)).errorCode, ErrorCode.NOT_COORDINATOR);
  assert.equal(await a.endTxn(TID, init.producerId, init.producerEpoch, true, ErrorCode.PRODUCER_FENCED), ErrorCode.NOT_COORDINATOR);

  const loading = b.onElection(p, 5);
  assert.equal(b.unavailableFor(TID), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  await loading;
  assert.equal(b.transaction(TID)!.state, TxnState.PrepareCommit, 'B replayed the decision');
  // A retry of EndTxn by the producer: B is completing it.
  assert.equal(await b.endTxn(TID, init.producerId, init.producerEpoch, true, ErrorCode.PRODUCER_FENCED), ErrorCode.CONCURRENT_TRANSACTIONS);
  markers.release();
  await b.idle();
  await a.idle();
  assert.equal(b.transaction(TID)!.state, TxnState.CompleteCommit);
  const byB = markers.written.filter((w) => w.coordinator === 'b');
  assert.deepEqual(byB.map((w) => [w.partition, w.commit, w.coordinatorEpoch]).sort(), [[0, true, 5], [1, true, 5]]);
  // A's held markers carried its own epoch; its completion then stopped without writing the state.
  assert.ok(markers.written.filter((w) => w.coordinator === 'a').every((w) => w.coordinatorEpoch === 4));
  const states: number[] = [];
  await log.replay(p, (r) => {
    const v = r.value === null ? null : decodeTransactionValue(r.value);
    if (v !== null) states.push(v.state);
  });
  assert.equal(states.filter((s) => s === TxnState.CompleteCommit).length, 1, 'only B wrote CompleteCommit');

  // The producer goes on with B: a new transaction, and a zombie with the old epoch is fenced.
  const again = await b.initProducerId(TID, 60000, -1, -1, ErrorCode.PRODUCER_FENCED);
  assert.equal(again.errorCode, ErrorCode.NONE);
  assert.equal(again.producerId, init.producerId);
  assert.equal(again.producerEpoch, init.producerEpoch + 1);
  assert.equal(await b.addPartitions(TID, init.producerId, init.producerEpoch, parts, ErrorCode.PRODUCER_FENCED), ErrorCode.PRODUCER_FENCED);
  a.shutdown();
  b.shutdown();
});

test('verifyWrite: a producer coordinated elsewhere is not refused by a broker that serves only some partitions', async () => {
  const log = new MemoryCoordinatorLog(PARTITIONS);
  const clock = new ManualScheduler();
  const c = coordinator('c', clock, new Markers(), { n: 1 });
  c.attach(log);
  await c.onElection(0, 0);
  assert.equal(c.verifyWrite(77, 0, 'orders', 0), ErrorCode.NONE);
  for (let i = 1; i < PARTITIONS; i++) await c.onElection(i, 0);
  // Serving every partition, an unknown producer has no open transaction anywhere.
  assert.equal(c.verifyWrite(77, 0, 'orders', 0), ErrorCode.INVALID_TXN_STATE);
  c.shutdown();
});

test('a data partition refuses a marker of an older coordinator epoch than the last one it applied (TRANSACTION_COORDINATOR_FENCED)', () => {
  const state = new ProducerStateManager('/nonexistent');
  const batch = (over: Partial<ProducerBatchInfo>): ProducerBatchInfo => ({
    producerId: 5,
    epoch: 0,
    baseSequence: 0,
    lastSequence: 0,
    transactional: true,
    controlType: null,
    coordinatorEpoch: -1,
    maxTimestamp: 1,
    ...over,
  });
  const data = batch({});
  assert.deepEqual(state.check(data, 'client'), { kind: 'ok' });
  state.apply(data, 0, 0, 0);
  const marker = batch({ controlType: 1, coordinatorEpoch: 5, baseSequence: -1, lastSequence: -1 });
  assert.deepEqual(state.check(marker, 'coordinator'), { kind: 'ok' });
  state.apply(marker, 1, 1, 0);
  const stale = batch({ controlType: 0, coordinatorEpoch: 4, baseSequence: -1, lastSequence: -1 });
  assert.throws(
    () => state.check(stale, 'coordinator'),
    (e: unknown) => e instanceof ProducerStateError && e.code === 'TRANSACTION_COORDINATOR_FENCED',
  );
  // The same or a newer epoch is accepted.
  assert.deepEqual(state.check(batch({ controlType: 0, coordinatorEpoch: 5, baseSequence: -1, lastSequence: -1 }), 'coordinator'), { kind: 'ok' });
  assert.deepEqual(state.check(batch({ controlType: 0, coordinatorEpoch: 6, baseSequence: -1, lastSequence: -1 }), 'coordinator'), { kind: 'ok' });
});
