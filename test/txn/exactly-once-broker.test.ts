/**
 * Exactly-once against a real broker process, with the generated codecs as the client:
 * idempotent produce (duplicates answered with the original offset and stored once, across a
 * clean restart and a kill -9), sequence and epoch errors, and transactions (markers, LSO,
 * read_committed fetch with aborted transactions, ListOffsets isolation, fencing, timeouts,
 * transactional offset commits, require_stable).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { decodeRecordBatches, encodeRecordBatch, Attr } from '../../src/protocol/records.js';
import { recordsInMemory } from '../../src/protocol/writer.js';
import { startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';

let broker: BrokerProcess;
let c: ProtocolConnection;
const ZERO = m.defaultFetchRequestFetchTopic().topicId;
const OVERRIDES = { 'transaction.state.log.num.partitions': 3, 'offsets.topic.num.partitions': 3, 'transaction.abort.timed.out.transaction.cleanup.interval.ms': 200, 'group.initial.rebalance.delay.ms': 0 };

before(async () => {
  broker = await startBroker({ overrides: OVERRIDES });
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
});

after(async () => {
  c.close();
  assert.equal(await broker.stop(), 0);
  assert.doesNotMatch(broker.output(), / ERROR /);
  broker.cleanup();
});

async function restart(kill: boolean): Promise<void> {
  c.close();
  if (kill) await broker.kill();
  else assert.equal(await broker.stop(), 0);
  broker = await startBroker({ dataDir: broker.dataDir, port: broker.port, overrides: OVERRIDES });
  c = await ProtocolConnection.connect('127.0.0.1', broker.port);
}

async function createTopic(name: string, partitions = 1): Promise<void> {
  const r = await c.send(m.ApiKey.CreateTopics, 7, { ...m.defaultCreateTopicsRequest(), timeoutMs: 5000, topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }] });
  assert.equal(r.topics[0].errorCode, 0, r.topics[0].errorMessage ?? '');
}

async function initPid(transactionalId: string | null = null, timeoutMs = 60000, version = 4): Promise<m.InitProducerIdResponse> {
  for (;;) {
    const r = await c.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, version, { transactionalId, transactionTimeoutMs: timeoutMs, producerId: -1, producerEpoch: -1 });
    if (r.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS || r.errorCode === ErrorCode.CONCURRENT_TRANSACTIONS || r.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE) {
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    return r;
  }
}

interface Pid {
  producerId: number;
  producerEpoch: number;
}

const batch = (pid: Pid, seq: number, values: string[], transactional = false): Buffer =>
  encodeRecordBatch({ records: values.map((v) => ({ value: Buffer.from(v) })), producerId: pid.producerId, producerEpoch: pid.producerEpoch, baseSequence: seq, transactional });

async function produce(topic: string, records: Buffer, partition = 0, transactionalId: string | null = null): Promise<m.ProduceResponsePartitionProduceResponse> {
  const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, 7, { transactionalId, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] });
  return r.responses[0]!.partitionResponses[0]!;
}

async function fetch(topic: string, offset: number, isolationLevel: 0 | 1, partition = 0): Promise<{ p: m.FetchResponsePartitionData; values: string[]; controls: number }> {
  const r = await c.send<m.FetchResponse>(m.ApiKey.Fetch, 11, {
    ...m.defaultFetchRequest(),
    isolationLevel,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    topics: [{ topic, topicId: ZERO, partitions: [{ ...m.defaultFetchRequestFetchPartition(), partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }],
  });
  const p = r.responses[0]!.partitions[0]!;
  const batches = decodeRecordBatches(recordsInMemory(p.records) ?? Buffer.alloc(0));
  // What a read_committed client shows (Kafka's consumer logic): an aborted transaction's data is
  // skipped from its first offset until its producer's ABORT marker; markers are never shown.
  const pending = [...(p.abortedTransactions ?? [])].sort((x, y) => x.firstOffset - y.firstOffset);
  const active = new Set<number>();
  const values: string[] = [];
  let controls = 0;
  for (const b of batches) {
    while (isolationLevel === 1 && pending.length > 0 && pending[0]!.firstOffset <= b.header.baseOffset + b.header.lastOffsetDelta) active.add(pending.shift()!.producerId);
    if ((b.header.attributes & Attr.control) !== 0) {
      controls++;
      if (b.records[0]!.key!.readInt16BE(2) === 0) active.delete(b.header.producerId);
      continue;
    }
    if ((b.header.attributes & Attr.transactional) !== 0 && active.has(b.header.producerId)) continue;
    for (const rec of b.records) values.push(rec.value!.toString());
  }
  return { p, values, controls };
}

async function listLatest(topic: string, isolationLevel: 0 | 1): Promise<number> {
  const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, 2, { replicaId: -1, isolationLevel, topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }], timeoutMs: 0 });
  return r.topics[0]!.partitions[0]!.offset;
}

async function findTxnCoordinator(tid: string): Promise<void> {
  for (;;) {
    const r = await c.send<m.FindCoordinatorResponse>(m.ApiKey.FindCoordinator, 2, { key: tid, keyType: 1, coordinatorKeys: [] });
    if (r.errorCode === 0) return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function addPartitions(tid: string, pid: Pid, topic: string, partitions: number[], version = 1): Promise<number[]> {
  for (;;) {
    const r = await c.send<m.AddPartitionsToTxnResponse>(m.ApiKey.AddPartitionsToTxn, version, {
      ...m.defaultAddPartitionsToTxnRequest(),
      v3AndBelowTransactionalId: tid,
      v3AndBelowProducerId: pid.producerId,
      v3AndBelowProducerEpoch: pid.producerEpoch,
      v3AndBelowTopics: [{ name: topic, partitions }],
    });
    const codes = r.resultsByTopicV3AndBelow[0]!.resultsByPartition.map((x) => x.partitionErrorCode);
    if (codes.every((x) => x === ErrorCode.CONCURRENT_TRANSACTIONS)) {
      await new Promise((res) => setTimeout(res, 20));
      continue;
    }
    return codes;
  }
}

/** EndTxn, retried while the previous end is still completing (CONCURRENT_TRANSACTIONS), as clients do. */
async function endTxn(tid: string, pid: Pid, committed: boolean, version = 1): Promise<number> {
  for (;;) {
    const r = await c.send<m.EndTxnResponse>(m.ApiKey.EndTxn, version, { transactionalId: tid, producerId: pid.producerId, producerEpoch: pid.producerEpoch, committed });
    if (r.errorCode !== ErrorCode.CONCURRENT_TRANSACTIONS) return r.errorCode;
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

test('InitProducerId without a transactional id hands out distinct ids, never reused after restarts', async () => {
  const a = await initPid();
  const b = await initPid();
  assert.equal(a.errorCode, 0);
  assert.equal(a.producerEpoch, 0);
  assert.notEqual(a.producerId, b.producerId);
  await restart(true);
  const d = await initPid();
  assert.ok(d.producerId > Math.max(a.producerId, b.producerId), `${d.producerId} after ${a.producerId}, ${b.producerId}`);
  await restart(false);
  const e = await initPid(null, 60000, 0);
  assert.ok(e.producerId > d.producerId);
});

test('an idempotent batch sent twice gets the same offset and is stored once, also after a restart and a kill -9', async () => {
  const topic = 'idem';
  await createTopic(topic);
  const pid = await initPid();
  const r0 = await produce(topic, batch(pid, 0, ['a', 'b']));
  assert.equal(r0.errorCode, 0);
  assert.equal(r0.baseOffset, 0);
  const dup = await produce(topic, batch(pid, 0, ['a', 'b']));
  assert.deepEqual([dup.errorCode, dup.baseOffset], [0, 0]);
  const r1 = await produce(topic, batch(pid, 2, ['c']));
  assert.deepEqual([r1.errorCode, r1.baseOffset], [0, 2]);
  // Out of order: a gap.
  assert.equal((await produce(topic, batch(pid, 5, ['x']))).errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  // Unknown producer starting above 0.
  assert.equal((await produce(topic, batch({ producerId: 999999, producerEpoch: 0 }, 7, ['x']))).errorCode, ErrorCode.UNKNOWN_PRODUCER_ID);

  await restart(false);
  assert.deepEqual(await produce(topic, batch(pid, 2, ['c'])).then((r) => [r.errorCode, r.baseOffset]), [0, 2]);
  const r2 = await produce(topic, batch(pid, 3, ['d']));
  assert.deepEqual([r2.errorCode, r2.baseOffset], [0, 3]);

  await restart(true);
  assert.deepEqual(await produce(topic, batch(pid, 3, ['d'])).then((r) => [r.errorCode, r.baseOffset]), [0, 3]);
  assert.deepEqual(await produce(topic, batch(pid, 0, ['a', 'b'])).then((r) => [r.errorCode, r.baseOffset]), [0, 0]);
  const r3 = await produce(topic, batch(pid, 4, ['e']));
  assert.deepEqual([r3.errorCode, r3.baseOffset], [0, 4]);
  assert.deepEqual((await fetch(topic, 0, 0)).values, ['a', 'b', 'c', 'd', 'e']);
  // Stale epoch after a bump (a new epoch starts at sequence 0).
  const bumped = { producerId: pid.producerId, producerEpoch: 1 };
  assert.equal((await produce(topic, batch(bumped, 3, ['x']))).errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  assert.equal((await produce(topic, batch(bumped, 0, ['f']))).errorCode, 0);
  assert.equal((await produce(topic, batch(pid, 5, ['x']))).errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
  assert.deepEqual((await fetch(topic, 0, 0)).values, ['a', 'b', 'c', 'd', 'e', 'f']);
});

test('transactions: commit, abort, commit; read_committed sees exactly the committed records; LSO and ListOffsets follow', async () => {
  const topic = 'txn-basic';
  await createTopic(topic);
  const tid = 'txn-basic-id';
  await findTxnCoordinator(tid);
  const pid = await initPid(tid);
  assert.equal(pid.errorCode, 0);
  let seq = 0;
  const send = async (values: string[]): Promise<void> => {
    const r = await produce(topic, batch(pid, seq, values, true), 0, tid);
    assert.equal(r.errorCode, 0, `produce ${values}`);
    seq += values.length;
  };
  // Writing before AddPartitionsToTxn is refused (no hanging transaction).
  assert.equal((await produce(topic, batch(pid, 0, ['early'], true), 0, tid)).errorCode, ErrorCode.INVALID_TXN_STATE);

  assert.deepEqual(await addPartitions(tid, pid, topic, [0]), [0]);
  await send(['c1', 'c2']);
  assert.equal((await fetch(topic, 0, 1)).p.lastStableOffset, 0, 'LSO held at the open transaction');
  assert.equal(await listLatest(topic, 1), 0);
  assert.equal(await listLatest(topic, 0), 2);
  assert.deepEqual((await fetch(topic, 0, 1)).values, []);
  assert.equal(await endTxn(tid, pid, true), 0);
  await waitFor('commit marker', async () => (await listLatest(topic, 1)) === 3);

  assert.deepEqual(await addPartitions(tid, pid, topic, [0]), [0]);
  await send(['a1', 'a2']);
  assert.equal(await endTxn(tid, pid, false), 0);
  await waitFor('abort marker', async () => (await listLatest(topic, 1)) === 6);

  assert.deepEqual(await addPartitions(tid, pid, topic, [0]), [0]);
  await send(['c3']);
  assert.equal(await endTxn(tid, pid, true), 0);
  await waitFor('second commit', async () => (await listLatest(topic, 1)) === 8);

  const committed = await fetch(topic, 0, 1);
  assert.deepEqual(committed.values, ['c1', 'c2', 'c3']);
  assert.deepEqual(committed.p.abortedTransactions, [{ producerId: pid.producerId, firstOffset: 3 }]);
  assert.equal(committed.controls, 3);
  assert.deepEqual((await fetch(topic, 0, 0)).values, ['c1', 'c2', 'a1', 'a2', 'c3']);
  // Retried EndTxn of a completed transaction is fine; the other way is not.
  assert.equal(await endTxn(tid, pid, true), 0);
  assert.equal(await endTxn(tid, pid, false), ErrorCode.INVALID_TXN_STATE);

  // The aborted transaction survives a kill -9 (transaction index rebuilt or reloaded).
  await restart(true);
  const after = await fetch(topic, 0, 1);
  assert.deepEqual(after.values, ['c1', 'c2', 'c3']);
  assert.deepEqual(after.p.abortedTransactions, [{ producerId: pid.producerId, firstOffset: 3 }]);
  assert.equal(after.p.lastStableOffset, 8);
});

test('a new producer with the same transactional id fences the old one and aborts its open transaction', async () => {
  const topic = 'txn-fence';
  await createTopic(topic);
  const tid = 'txn-fence-id';
  await findTxnCoordinator(tid);
  const old = await initPid(tid);
  assert.deepEqual(await addPartitions(tid, old, topic, [0]), [0]);
  assert.equal((await produce(topic, batch(old, 0, ['zombie'], true), 0, tid)).errorCode, 0);
  const fresh = await initPid(tid);
  assert.equal(fresh.producerId, old.producerId);
  assert.ok(fresh.producerEpoch >= old.producerEpoch + 1);
  assert.equal(await endTxn(tid, old, true, 2), ErrorCode.PRODUCER_FENCED);
  assert.equal(await endTxn(tid, old, true, 1), ErrorCode.INVALID_PRODUCER_EPOCH);
  assert.deepEqual(await addPartitions(tid, old, topic, [0], 2), [ErrorCode.PRODUCER_FENCED]);
  assert.equal((await produce(topic, batch(old, 1, ['zombie2'], true), 0, tid)).errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
  await waitFor('fence abort', async () => (await fetch(topic, 0, 1)).p.lastStableOffset === (await listLatest(topic, 0)));
  assert.deepEqual((await fetch(topic, 0, 1)).values, []);
  // The new producer works.
  assert.deepEqual(await addPartitions(tid, fresh, topic, [0]), [0]);
  assert.equal((await produce(topic, batch(fresh, 0, ['new'], true), 0, tid)).errorCode, 0);
  assert.equal(await endTxn(tid, fresh, true), 0);
  await waitFor('commit', async () => (await fetch(topic, 0, 1)).values.length === 1);
  assert.deepEqual((await fetch(topic, 0, 1)).values, ['new']);
});

test('errors: INVALID_TRANSACTION_TIMEOUT, INVALID_PRODUCER_ID_MAPPING, CONCURRENT_TRANSACTIONS-free retries, unknown partitions', async () => {
  const tid = 'txn-errors';
  await findTxnCoordinator(tid);
  const r = await c.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, 1, { transactionalId: tid, transactionTimeoutMs: 900001, producerId: -1, producerEpoch: -1 });
  assert.equal(r.errorCode, ErrorCode.INVALID_TRANSACTION_TIMEOUT);
  const pid = await initPid(tid);
  assert.deepEqual(await addPartitions('no-such-id', pid, 'idem', [0]), [ErrorCode.INVALID_PRODUCER_ID_MAPPING]);
  assert.deepEqual(await addPartitions(tid, pid, 'idem', [0, 7]), [ErrorCode.OPERATION_NOT_ATTEMPTED, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
  assert.equal(await endTxn(tid, pid, true), ErrorCode.INVALID_TXN_STATE);
});

test('transaction.timeout.ms aborts an abandoned transaction and fences its producer', async () => {
  const topic = 'txn-timeout';
  await createTopic(topic);
  const tid = 'txn-timeout-id';
  await findTxnCoordinator(tid);
  const pid = await initPid(tid, 500);
  assert.deepEqual(await addPartitions(tid, pid, topic, [0]), [0]);
  assert.equal((await produce(topic, batch(pid, 0, ['lost'], true), 0, tid)).errorCode, 0);
  assert.equal((await fetch(topic, 0, 1)).p.lastStableOffset, 0);
  await waitFor('timeout abort', async () => (await fetch(topic, 0, 1)).p.lastStableOffset === 2, 10000);
  assert.deepEqual((await fetch(topic, 0, 1)).values, []);
  assert.equal(await endTxn(tid, pid, true, 3), ErrorCode.PRODUCER_FENCED);
});

test('transactional offset commits become visible on commit only; require_stable answers UNSTABLE_OFFSET_COMMIT meanwhile', async () => {
  const topic = 'txn-offsets';
  await createTopic(topic);
  const tid = 'txn-offsets-id';
  const group = 'txn-offsets-group';
  await findTxnCoordinator(tid);
  const pid = await initPid(tid);
  const fetchOffset = async (requireStable: boolean): Promise<[number, number]> => {
    const r = await c.send<m.OffsetFetchResponse>(m.ApiKey.OffsetFetch, 7, { ...m.defaultOffsetFetchRequest(), groupId: group, topics: [{ name: topic, partitionIndexes: [0] }], requireStable });
    const p = r.topics[0]!.partitions[0]!;
    return [p.errorCode, p.committedOffset];
  };
  const txnCommit = async (offset: number, p: Pid = pid): Promise<number> => {
    const r = await c.send<m.TxnOffsetCommitResponse>(m.ApiKey.TxnOffsetCommit, 3, {
      ...m.defaultTxnOffsetCommitRequest(),
      transactionalId: tid,
      groupId: group,
      producerId: p.producerId,
      producerEpoch: p.producerEpoch,
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: 'm' }] }],
    });
    return r.topics[0]!.partitions[0]!.errorCode;
  };
  // AddOffsetsToTxn, retried while the previous transaction completes (its offsets can be visible
  // before the coordinator has recorded CompleteCommit/CompleteAbort), as clients do.
  const addOffsets = async (): Promise<number> => {
    for (;;) {
      const r = await c.send<m.AddOffsetsToTxnResponse>(m.ApiKey.AddOffsetsToTxn, 1, { transactionalId: tid, producerId: pid.producerId, producerEpoch: pid.producerEpoch, groupId: group });
      if (r.errorCode !== ErrorCode.CONCURRENT_TRANSACTIONS) return r.errorCode;
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  // Without AddOffsetsToTxn first: refused.
  assert.equal(await txnCommit(5), ErrorCode.INVALID_TXN_STATE);
  assert.equal(await addOffsets(), 0);
  assert.equal(await txnCommit(5), 0);
  assert.deepEqual(await fetchOffset(false), [0, -1]);
  assert.deepEqual(await fetchOffset(true), [ErrorCode.UNSTABLE_OFFSET_COMMIT, -1]);
  assert.equal(await endTxn(tid, pid, true), 0);
  await waitFor('offsets committed', async () => (await fetchOffset(true))[1] === 5);

  // Aborted: the offset stays at 5.
  assert.equal(await addOffsets(), 0);
  assert.equal(await txnCommit(9), 0);
  assert.equal(await endTxn(tid, pid, false), 0);
  await waitFor('abort done', async () => (await fetchOffset(true))[0] === 0);
  assert.deepEqual(await fetchOffset(true), [0, 5]);

  // Pending at a kill -9, committed after: the offset appears once the coordinator completes it.
  assert.equal(await addOffsets(), 0);
  assert.equal(await txnCommit(12), 0);
  await restart(true);
  assert.deepEqual(await fetchOffset(false), [0, 5]);
  assert.equal(await endTxn(tid, pid, true), 0);
  await waitFor('offsets committed after restart', async () => (await fetchOffset(true))[1] === 12);
  await restart(false);
  assert.deepEqual(await fetchOffset(true), [0, 12]);
});

test('kill -9 in the middle of a stream of transactions: each is all or nothing, the LSO advances, the producer continues', async () => {
  const topic = 'txn-crash';
  await createTopic(topic, 2);
  const tid = 'txn-crash-id';
  await findTxnCoordinator(tid);
  // A short transaction timeout: a transaction whose EndTxn died with the broker is aborted by it.
  let pid = await initPid(tid, 3000);
  const seq = [0, 0];
  const runTxn = async (i: number, commit: boolean, awaitEnd: boolean): Promise<void> => {
    assert.deepEqual(await addPartitions(tid, pid, topic, [0, 1]), [0, 0]);
    for (const p of [0, 1]) {
      assert.equal((await produce(topic, batch(pid, seq[p]!, [`t${i}-p${p}-a`, `t${i}-p${p}-b`], true), p, tid)).errorCode, 0);
      seq[p]! += 2;
    }
    const end = c.send<m.EndTxnResponse>(m.ApiKey.EndTxn, 1, { transactionalId: tid, producerId: pid.producerId, producerEpoch: pid.producerEpoch, committed: commit });
    if (!awaitEnd) {
      end.catch(() => undefined);
      return;
    }
    for (let r = await end; r.errorCode === ErrorCode.CONCURRENT_TRANSACTIONS; ) {
      await new Promise((res) => setTimeout(res, 20));
      r = await c.send<m.EndTxnResponse>(m.ApiKey.EndTxn, 1, { transactionalId: tid, producerId: pid.producerId, producerEpoch: pid.producerEpoch, committed: commit });
    }
  };
  for (let i = 0; i < 8; i++) await runTxn(i, i % 3 !== 1, true);
  await runTxn(8, true, false); // EndTxn in flight when the broker dies
  await broker.kill();
  await restart(true);
  // Every partition's LSO catches up with its high watermark (nothing hangs), and each
  // transaction is visible in both partitions or in neither.
  const latest = async (p: number): Promise<{ values: string[]; lso: number; hw: number }> => {
    const f = await fetch(topic, 0, 1, p);
    return { values: f.values, lso: f.p.lastStableOffset, hw: f.p.highWatermark };
  };
  await waitFor('LSO = HW after recovery (or a timeout abort)', async () => {
    const [a, b] = [await latest(0), await latest(1)];
    return a.lso === a.hw && b.lso === b.hw;
  }, 20000);
  const [p0, p1] = [await latest(0), await latest(1)];
  const txnsIn = (values: string[]): Set<string> => new Set(values.map((v) => v.split('-')[0]!));
  assert.deepEqual([...txnsIn(p0.values)].sort(), [...txnsIn(p1.values)].sort());
  const seen = txnsIn(p0.values);
  for (const i of [0, 2, 3, 5, 6]) assert.ok(seen.has(`t${i}`), `committed t${i} visible`);
  for (const i of [1, 4, 7]) assert.ok(!seen.has(`t${i}`), `aborted t${i} invisible`);
  for (const v of [p0, p1]) assert.equal(v.values.length, seen.size * 2, 'whole transactions only');
  // The producer re-initialises (epoch bump) and continues.
  pid = await initPid(tid, 3000);
  seq[0] = 0;
  seq[1] = 0;
  await runTxn(9, true, true);
  await waitFor('t9 committed', async () => (await latest(0)).values.includes('t9-p0-a') && (await latest(1)).values.includes('t9-p1-b'));
});
