/**
 * The deterministic simulation of partition replication (see sim/simulation.ts for the world and
 * the invariants): the real replication logic (src/broker/replication/partition-state.ts) and the
 * real leader epoch cache, on simulated brokers, network, disk and controller.
 *
 * `npm test` runs STRAND_REPL_SIM_SEEDS seeds (default 2000) from STRAND_REPL_SIM_FIRST_SEED
 * (default 1). A failing seed is reported with a one-line replay command; STRAND_REPL_SIM_SEED=<n>
 * runs only that seed (STRAND_REPL_SIM_TRACE=1 prints its events, STRAND_REPL_SIM_BUGS=... turns
 * on the injected bugs the run had).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runReplicationSimulation, type ReplicationBugs, type ReplicationSimResult } from './sim/simulation.js';
import { SimulationEnv } from '../raft/sim/world.js';

const sim = new SimulationEnv<ReplicationBugs>('STRAND_REPL_SIM', 'dist/test/replication/simulation.test.js');
const { single, seeds, firstSeed } = sim;
const failure = (r: ReplicationSimResult, bugs?: ReplicationBugs): string => sim.failure(r, bugs);

if (single !== null) {
  test(`replication simulation, seed ${single}`, async () => {
    const bugs = sim.bugs;
    const r = await runReplicationSimulation({ seed: single, bugs, trace: sim.trace });
    console.log(JSON.stringify({ ...r }));
    assert.equal(r.violation, null, r.violation === null ? '' : failure(r, bugs));
  });
} else {
  test(`replication simulation: ${seeds} seeds keep every invariant`, { timeout: 600_000 }, async () => {
    const started = Date.now();
    const total = { acked: 0, elections: 0, crashes: 0, machineCrashes: 0, partitions: 0, truncations: 0, isrChanges: 0 };
    for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
      const r = await runReplicationSimulation({ seed });
      assert.equal(r.violation, null, r.violation === null ? '' : failure(r));
      for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
    }
    console.log(`${seeds} seeds in ${Date.now() - started} ms: ${JSON.stringify(total)}`);
    // The runs must exercise what they claim to.
    assert(total.acked > seeds * 50, 'too few acknowledged records for the runs to mean anything');
    assert(total.elections > seeds && total.crashes > seeds && total.machineCrashes > seeds / 4);
    assert(total.partitions > seeds / 2 && total.truncations > seeds / 10 && total.isrChanges > seeds);
  });

  test('a seed replays exactly: same trace, same outcome', async () => {
    for (const seed of [7, 1234, 99999]) {
      const a = await runReplicationSimulation({ seed });
      const b = await runReplicationSimulation({ seed });
      assert.deepEqual(a, b);
      assert(a.acked > 0);
    }
    assert.notEqual((await runReplicationSimulation({ seed: 7 })).traceHash, (await runReplicationSimulation({ seed: 8 })).traceHash);
  });

  async function findViolation(bugs: ReplicationBugs, maxSeeds: number): Promise<ReplicationSimResult> {
    for (let seed = 1; seed <= maxSeeds; seed++) {
      const r = await runReplicationSimulation({ seed, bugs });
      if (r.violation !== null) return r;
    }
    assert.fail(`no seed of ${maxSeeds} caught ${JSON.stringify(bugs)}`);
  }

  test('the checker catches a high watermark advanced past followers not in sync', async () => {
    const bugs = { hwIgnoresFollowers: true };
    const r = await findViolation(bugs, 300);
    assert(['NoAckedRecordLost', 'NoOffsetTwoRecords'].includes(r.violation!.invariant), failure(r, bugs));
    assert.deepEqual((await runReplicationSimulation({ seed: r.seed, bugs })).violation, r.violation, 'the failing seed replays to the same violation');
  });

  test('the checker catches followers that never truncate to a diverging epoch', async () => {
    const bugs = { followerNeverTruncates: true };
    const r = await findViolation(bugs, 300);
    assert(['LogMatching', 'NoOffsetTwoRecords', 'Liveness', 'Assertion'].includes(r.violation!.invariant), failure(r, bugs));
  });

  test('the checker catches an unclean election (a leader from outside the ISR)', async () => {
    const bugs = { electOutsideIsr: true };
    const r = await findViolation(bugs, 500);
    assert(['NoAckedRecordLost', 'NoOffsetTwoRecords'].includes(r.violation!.invariant), failure(r, bugs));
  });

  test('the checker catches followers that report offsets they have not flushed (machine crashes lose them)', async () => {
    const bugs = { followerFetchBeforeFlush: true };
    const r = await findViolation(bugs, 1000);
    assert(['NoAckedRecordLost', 'NoOffsetTwoRecords'].includes(r.violation!.invariant), failure(r, bugs));
  });
}
