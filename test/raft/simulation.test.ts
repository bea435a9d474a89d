/**
 * The deterministic simulation of the Raft quorum (see sim/simulation.ts for the invariants).
 *
 * `npm test` runs STRAND_SIM_SEEDS seeds (default 2000) starting at STRAND_SIM_FIRST_SEED
 * (default 1). A failing seed is reported with a one-line replay command; STRAND_SIM_SEED=<n>
 * runs only that seed (STRAND_SIM_TRACE=1 prints its events, STRAND_SIM_BUGS=voteTwice,...
 * turns on the injected bugs the run had).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RaftTestingBugs } from '../../src/raft/raft-client.js';
import { runSimulation, type SimulationResult } from './sim/simulation.js';
import { SimulationEnv } from './sim/world.js';

const sim = new SimulationEnv<RaftTestingBugs>('STRAND_SIM', 'dist/test/raft/simulation.test.js');
const { single, seeds, firstSeed } = sim;
const failure = (r: SimulationResult, bugs?: RaftTestingBugs): string => sim.failure(r, bugs);

if (single !== null) {
  test(`raft simulation, seed ${single}`, () => {
    const bugs = sim.bugs;
    const r = runSimulation({ seed: single, bugs, trace: sim.trace });
    console.log(JSON.stringify({ ...r }));
    assert.equal(r.violation, null, r.violation === null ? '' : failure(r, bugs));
  });
} else {
  test(`raft simulation: ${seeds} seeds keep every invariant`, { timeout: 600_000 }, () => {
    const started = Date.now();
    let committed = 0;
    let crashes = 0;
    let partitions = 0;
    let snapshots = 0;
    let maxEpoch = 0;
    for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
      const r = runSimulation({ seed });
      assert.equal(r.violation, null, r.violation === null ? '' : failure(r));
      committed += r.committed;
      crashes += r.crashes;
      partitions += r.partitions;
      snapshots += r.snapshotsInstalled;
      maxEpoch = Math.max(maxEpoch, r.maxEpoch);
    }
    console.log(`${seeds} seeds in ${Date.now() - started} ms: ${committed} entries committed, ${crashes} crashes, ${partitions} partitions, ${snapshots} snapshots loaded, epochs up to ${maxEpoch}`);
    // The runs must actually exercise what they claim to.
    assert(committed > seeds * 20, 'too little was committed for the runs to mean anything');
    assert(crashes > seeds && partitions > seeds / 2 && snapshots > seeds / 2);
  });

  test('a seed replays exactly: same trace, same outcome', () => {
    for (const seed of [7, 1234, 99999]) {
      const a = runSimulation({ seed });
      const b = runSimulation({ seed });
      assert.deepEqual(a, b);
      assert(a.committed > 0);
    }
    assert.notEqual(runSimulation({ seed: 7 }).traceHash, runSimulation({ seed: 8 }).traceHash);
  });

  /** Runs seeds with a bug until one breaks an invariant; returns that run. */
  function findViolation(bugs: RaftTestingBugs, maxSeeds: number): SimulationResult {
    for (let seed = 1; seed <= maxSeeds; seed++) {
      const r = runSimulation({ seed, bugs });
      if (r.violation !== null) return r;
    }
    assert.fail(`no seed of ${maxSeeds} caught ${JSON.stringify(bugs)}`);
  }

  test('the checker catches a voter that votes twice in an epoch (ElectionSafety)', () => {
    const r = findViolation({ voteTwice: true }, 500);
    assert.equal(r.violation!.invariant, 'ElectionSafety', failure(r, { voteTwice: true }));
    // The failing seed replays to the same violation.
    assert.deepEqual(runSimulation({ seed: r.seed, bugs: { voteTwice: true } }).violation, r.violation);
  });

  test('the checker catches a leader that commits without a majority', () => {
    const r = findViolation({ commitWithoutMajority: true }, 500);
    assert(['CommittedHistory', 'LeaderCompleteness', 'SnapshotHistory', 'Assertion'].includes(r.violation!.invariant), failure(r, { commitWithoutMajority: true }));
  });

  test('the checker catches followers that acknowledge unflushed entries', () => {
    const r = findViolation({ fetchBeforeFlush: true }, 1000);
    assert(['CommittedHistory', 'LeaderCompleteness', 'SnapshotHistory', 'Assertion'].includes(r.violation!.invariant), failure(r, { fetchBeforeFlush: true }));
  });
}
