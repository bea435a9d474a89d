/**
 * Model-based test of the transaction coordinator state machine (Empty, Ongoing, PrepareCommit,
 * PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence) with random InitProducerId,
 * AddPartitionsToTxn, transactional writes, EndTxn, clock advances (timeouts) and restarts
 * (a new coordinator replaying the same log). Partitions are modelled with the real
 * ProducerStateManager, so the LSO is the one the broker would compute.
 *
 * Invariants, checked after every step:
 *  - no transaction is both committed and aborted: every marker matches the one decision
 *    (PrepareCommit / PrepareAbort) made for that transaction, and a decision is never changed;
 *  - the LSO never passes an open transaction, and only a live transaction holds it: every open
 *    transaction in a partition belongs to a producer whose coordinator state is Ongoing or
 *    Prepare*;
 *  - at the end, once the clock has passed every timeout and the markers are written, no
 *    partition has an open transaction (nothing hangs).
 * A failure prints the seed; rerun one with TXN_MODEL_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/protocol/errors.js';
import { MemoryCoordinatorLog } from '../../src/coordinator/coordinator-log.js';
import { ManualScheduler } from '../../src/coordinator/time.js';
import { TransactionCoordinator, type TxnMarkerWriter } from '../../src/coordinator/transaction-coordinator.js';
import { TxnState } from '../../src/coordinator/transaction-records.js';
import { ProducerStateManager, ProducerStateError } from '../../src/storage/producer-state.js';
import { Prng } from '../protocol/prng.js';

const noLog = { debug() {}, info() {}, warn() {}, error() {}, child() { return noLog; } } as any;
const TIDS = ['a', 'b', 'c'];
const PARTITIONS = 3;

class ModelPartition {
  readonly ps = new ProducerStateManager('/model');
  next = 0;
  write(pid: number, epoch: number, seq: number, transactional: boolean, control: number | null): void {
    const info = { producerId: pid, epoch, baseSequence: control === null ? seq : -1, lastSequence: control === null ? seq : -1, transactional, controlType: control, coordinatorEpoch: 0, maxTimestamp: 0 };
    const v = this.ps.check(info, control === null ? 'client' : 'coordinator');
    if (v.kind === 'duplicate') return;
    this.ps.apply(info, this.next, this.next, 0);
    this.next++;
  }
}

async function runModel(seed: number, steps: number): Promise<void> {
  const rng = new Prng(seed);
  const sched = new ManualScheduler();
  const log = new MemoryCoordinatorLog(2);
  const parts = Array.from({ length: PARTITIONS }, () => new ModelPartition());
  /** tid → decisions per transaction instance (keyed by producerId/epoch/start). */
  const decisions = new Map<string, 'commit' | 'abort'>();
  const seqs = new Map<string, number>();
  let nextPid = 1000;
  let coord!: TransactionCoordinator;
  /** Transaction instances: a new one each time an id enters Ongoing from another state. */
  const instance = new Map<string, number>();
  const lastState = new Map<string, number>();
  const instanceKey = (tid: string, _m?: unknown): string => `${tid}#${instance.get(tid) ?? 0}`;
  const markers: TxnMarkerWriter = {
    async writeMarker(p, pid, epoch, commit) {
      await Promise.resolve();
      const part = parts[p.partition]!;
      for (const tid of TIDS) {
        const m = coord.transaction(tid);
        if (m !== undefined && m.producerId === pid) {
          const d = decisions.get(instanceKey(tid, m));
          assert.equal(d, commit ? 'commit' : 'abort', `seed ${seed}: marker ${commit ? 'COMMIT' : 'ABORT'} for ${tid} decided ${d}`);
        }
      }
      try {
        part.write(pid, epoch, 0, true, commit ? 1 : 0);
      } catch (e) {
        if (!(e instanceof ProducerStateError)) throw e;
        return true; // an obsolete marker, skipped as the broker does
      }
      return true;
    },
  };
  const start = async (): Promise<void> => {
    coord = new TransactionCoordinator({
      scheduler: sched,
      logger: noLog,
      config: { maxTimeoutMs: 10000, idExpirationMs: 1e12, abortCheckIntervalMs: 100, markerRetryBackoffMs: 10 },
      allocateProducerId: async () => nextPid++,
      markers,
    });
    coord.onTransition = (tid, _from, to, m) => {
      if (to === TxnState.Ongoing && lastState.get(tid) !== TxnState.Ongoing) instance.set(tid, (instance.get(tid) ?? 0) + 1);
      lastState.set(tid, to);
      if (to === TxnState.PrepareCommit || to === TxnState.PrepareAbort) {
        const k = instanceKey(tid, m);
        const d = to === TxnState.PrepareCommit ? 'commit' : 'abort';
        const prev = decisions.get(k);
        assert.ok(prev === undefined || prev === d, `seed ${seed}: ${k} decided ${prev} then ${d}`);
        decisions.set(k, d);
      }
    };
    await coord.load(log);
  };
  const pids = new Map<string, { producerId: number; producerEpoch: number }>();
  const check = (): void => {
    for (const [i, part] of parts.entries()) {
      for (const pid of part.ps.openTransactions().keys()) {
        const owner = [...coord.transactions()].find((m) => m.producerId === pid);
        assert.ok(owner !== undefined, `seed ${seed}: partition ${i} has an open transaction of unknown producer ${pid}`);
        assert.ok(
          owner.state === TxnState.Ongoing || owner.state === TxnState.PrepareCommit || owner.state === TxnState.PrepareAbort,
          `seed ${seed}: partition ${i} held by producer ${pid} whose transaction is ${coord.stateName(owner)}`,
        );
      }
    }
  };
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };

  {
    await start();
    for (let step = 0; step < steps; step++) {
      const tid = TIDS[rng.int(0, TIDS.length - 1)]!;
      const pid = pids.get(tid);
      const op = rng.int(0, 9);
      if (op <= 1 || pid === undefined) {
        const r = await coord.initProducerId(tid, rng.int(500, 3000), -1, -1, ErrorCode.PRODUCER_FENCED);
        if (r.errorCode === ErrorCode.NONE) {
          pids.set(tid, { producerId: r.producerId, producerEpoch: r.producerEpoch });
          seqs.set(tid, 0);
        } else assert.ok([ErrorCode.CONCURRENT_TRANSACTIONS].includes(r.errorCode as 51), `seed ${seed}: init ${r.errorCode}`);
      } else if (op <= 3) {
        await coord.addPartitions(tid, pid.producerId, pid.producerEpoch, [{ topic: 't', partition: rng.int(0, PARTITIONS - 1) }], ErrorCode.PRODUCER_FENCED);
      } else if (op <= 5) {
        const p = rng.int(0, PARTITIONS - 1);
        if (coord.verifyWrite(pid.producerId, pid.producerEpoch, 't', p) === ErrorCode.NONE) {
          try {
            parts[p]!.write(pid.producerId, pid.producerEpoch, 0, true, null);
          } catch (e) {
            if (!(e instanceof ProducerStateError)) throw e;
          }
        }
      } else if (op <= 7) {
        await coord.endTxn(tid, pid.producerId, pid.producerEpoch, rng.bool(), ErrorCode.PRODUCER_FENCED);
      } else if (op === 8) {
        sched.advance(rng.int(1, 2000));
      } else if (rng.bool(0.3)) {
        coord.shutdown();
        await start();
      }
      await flush();
      check();
    }
    // Quiesce: every timeout passes, markers land; nothing may hang.
    for (let i = 0; i < 50; i++) {
      sched.advance(1000);
      await flush();
      await coord.idle();
    }
    check();
    for (const [i, part] of parts.entries()) assert.equal(part.ps.firstUnstableOffset, null, `seed ${seed}: partition ${i} still has an open transaction`);
  }
}

test('transaction coordinator model: random operations, timeouts and restarts keep the invariants', async () => {
  const fixed = process.env['TXN_MODEL_SEED'];
  const seeds = fixed !== undefined ? [Number(fixed)] : Array.from({ length: 200 }, (_, i) => i + 1);
  for (const seed of seeds) await runModel(seed, 150);
});
