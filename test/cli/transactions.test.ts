/**
 * `strand transactions list|describe|describe-producers|find-hanging|abort` as a user runs them:
 * the real bin/strand against a broker process. The transaction is opened with the generated codecs
 * (InitProducerId, AddPartitionsToTxn, a transactional Produce) and its producer then stops, as a
 * crashed application would: find-hanging finds it by age, and — once the coordinator has lost
 * its state (`__transaction_state` removed while the broker was down, the way real hanging
 * transactions arise) — as unknown to the coordinator; `abort` then ends it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as m from '../../src/protocol/messages/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { encodeRecordBatch } from '../../src/protocol/records.js';
import { STRAND_BIN, startBroker, type BrokerProcess } from '../../src/testing/broker-process.js';
import { COMPLETIONS } from '../../src/cli/commands/completion.js';
import { TRANSACTIONS_HELP } from '../../src/cli/commands/transactions.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { run } from '../interop/helpers.js';

let broker: BrokerProcess;
const OVERRIDES = { 'transaction.state.log.num.partitions': 3, 'offsets.topic.num.partitions': 3, 'strand.acks.all.fsync': false };
const T = { timeout: 90000 };
const TOPIC = 'cli-txn';
const TID = 'cli-txn-id';
let producerId = -1;
let openedAt = 0;

before(async () => {
  broker = await startBroker({ overrides: OVERRIDES });
});

after(async () => {
  assert.equal(await broker.stop(), 0);
  assert.doesNotMatch(broker.output(), / ERROR /);
  broker.cleanup();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

async function strand(args: string[], opts: { bootstrap?: boolean } = {}): Promise<Run> {
  const full = opts.bootstrap === false ? args : [...args, '--bootstrap-server', broker.bootstrap];
  const r = await run(process.execPath, [STRAND_BIN, ...full], { env: { STRAND_BOOTSTRAP_SERVER: '' }, timeoutMs: 30000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

async function ok(args: string[]): Promise<string> {
  const r = await strand(args);
  assert.equal(r.status, 0, `strand ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens a transaction on TOPIC-0 with three records, then closes the connection: the producer is gone. */
async function openAndAbandonTransaction(): Promise<void> {
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const created = await c.send<m.CreateTopicsResponse>(m.ApiKey.CreateTopics, 7, { ...m.defaultCreateTopicsRequest(), timeoutMs: 5000, topics: [{ name: TOPIC, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }] });
    assert.equal(created.topics[0]!.errorCode, 0);
    let pid: m.InitProducerIdResponse;
    for (;;) {
      pid = await c.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, 4, { transactionalId: TID, transactionTimeoutMs: 300000, producerId: -1, producerEpoch: -1 });
      if (pid.errorCode === 0) break;
      assert.ok(([ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE] as number[]).includes(pid.errorCode), `InitProducerId: ${pid.errorCode}`);
      await sleep(20);
    }
    producerId = pid.producerId;
    const add = await c.send<m.AddPartitionsToTxnResponse>(m.ApiKey.AddPartitionsToTxn, 3, {
      ...m.defaultAddPartitionsToTxnRequest(),
      v3AndBelowTransactionalId: TID,
      v3AndBelowProducerId: pid.producerId,
      v3AndBelowProducerEpoch: pid.producerEpoch,
      v3AndBelowTopics: [{ name: TOPIC, partitions: [0] }],
    });
    assert.equal(add.resultsByTopicV3AndBelow[0]!.resultsByPartition[0]!.partitionErrorCode, 0);
    openedAt = Date.now();
    const records = encodeRecordBatch({ records: ['a', 'b', 'c'].map((v) => ({ value: Buffer.from(v) })), producerId: pid.producerId, producerEpoch: pid.producerEpoch, baseSequence: 0, transactional: true });
    const r = await c.send<m.ProduceResponse>(m.ApiKey.Produce, 9, { transactionalId: TID, acks: -1, timeoutMs: 5000, topicData: [{ name: TOPIC, partitionData: [{ index: 0, records }] }] });
    assert.equal(r.responses[0]!.partitionResponses[0]!.errorCode, 0);
  } finally {
    c.close();
  }
}

test('transactions --help, listed in strand --help and in the completion script', T, async () => {
  const top = await strand(['--help'], { bootstrap: false });
  assert.match(top.stdout, /\n {2}transactions {2}/);
  const help = await strand(['transactions', '--help'], { bootstrap: false });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: strand transactions <list\|describe\|describe-producers\|find-hanging\|abort>/);
  assert.match(help.stdout, /--max-transaction-timeout/);
  const bash = await strand(['completion', 'bash'], { bootstrap: false });
  assert.match(bash.stdout, /transactions\) subs="list describe describe-producers find-hanging abort"/);
  assert.equal((await strand(['transactions'], { bootstrap: false })).status, 2);
  // Every flag the completion offers is one the command documents (and so parses).
  for (const flag of COMPLETIONS['transactions']!.flags.split(' ')) assert.ok(TRANSACTIONS_HELP.includes(flag), `${flag} is in transactions --help`);
  for (const flag of TRANSACTIONS_HELP.match(/--[a-z-]+/g)!) assert.ok(COMPLETIONS['transactions']!.flags.split(' ').includes(flag), `${flag} is completed`);
});

test('usage errors exit 2 with a hint', T, async () => {
  for (const args of [
    ['transactions', 'describe'],
    ['transactions', 'describe-producers'],
    ['transactions', 'find-hanging', '--max-transaction-timeout', 'soon'],
    ['transactions', 'list', '--producer-id', 'x'],
    ['transactions', 'list', '--max-transaction-timeout', '3'],
    ['transactions', 'frobnicate'],
    ['transactions', 'abort', '--topic', 'x'],
    ['transactions', 'abort', '--topic', 'x:0', '--start-offset', '3', '--producer-id', '1', '--producer-epoch', '0'],
    ['transactions', 'abort', '--topic', 'x:0', '--producer-id', '1'],
    ['transactions', 'describe', 'id', '--start-offset', '3'],
  ]) {
    const r = await strand(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /hint: run 'strand transactions --help'|expects/, args.join(' '));
  }
});

test('before any transaction: list is empty, describe names TRANSACTIONAL_ID_NOT_FOUND, find-hanging finds nothing', T, async () => {
  assert.match(await ok(['transactions', 'list']), /^No transactions\.$/m);
  assert.deepEqual(JSON.parse(await ok(['transactions', 'list', '--json'])), []);
  const unknown = await strand(['transactions', 'describe', 'cli-nobody']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /TRANSACTIONAL_ID_NOT_FOUND/);
  assert.match(unknown.stderr, /hint: .*strand transactions list/);
  assert.match(await ok(['transactions', 'find-hanging']), /No hanging transactions in \d+ partitions\./);
});

test('an abandoned open transaction: list, describe, describe-producers show it; find-hanging finds it once older than --max-transaction-timeout', T, async () => {
  await openAndAbandonTransaction();
  const listed = await ok(['transactions', 'list']);
  assert.match(listed, /TRANSACTIONAL-ID\s+COORDINATOR\s+PRODUCER-ID\s+STATE/);
  assert.match(listed, new RegExp(`${TID}\\s+1\\s+${producerId}\\s+Ongoing`));
  assert.deepEqual(JSON.parse(await ok(['transactions', 'list', '--json', '--state', 'Ongoing'])), [{ transactionalId: TID, producerId, state: 'Ongoing', coordinatorId: 1 }]);
  assert.match(await ok(['transactions', 'list', '--state', 'CompleteCommit']), /^No transactions\.$/m);
  assert.deepEqual(JSON.parse(await ok(['transactions', 'list', '--json', '--producer-id', String(producerId)])).map((t: { transactionalId: string }) => t.transactionalId), [TID]);

  const described = await ok(['transactions', 'describe', TID]);
  assert.match(described, new RegExp(`${TID}\\s+1\\s+${producerId}\\s+0\\s+Ongoing\\s+300000\\s+\\S+Z\\s+\\d+\\s+${TOPIC}-0`));
  const [d] = JSON.parse(await ok(['transactions', 'describe', '--transactional-id', TID, '--json'])) as Array<{ state: string; partitions: unknown; transactionStartTimeMs: number }>;
  assert.equal(d!.state, 'Ongoing');
  assert.deepEqual(d!.partitions, [{ topic: TOPIC, partition: 0 }]);
  assert.ok(d!.transactionStartTimeMs <= openedAt + 1000);

  const producers = await ok(['transactions', 'describe-producers', '--topic', TOPIC]);
  assert.match(producers, /TOPIC\s+PARTITION\s+PRODUCER-ID\s+EPOCH\s+COORDINATOR-EPOCH\s+LAST-SEQUENCE\s+LAST-TIMESTAMP\s+TXN-START-OFFSET/);
  assert.match(producers, new RegExp(`${TOPIC}\\s+0\\s+${producerId}\\s+0\\s+-\\s+2\\s+\\S+Z\\s+0`));
  const pj = JSON.parse(await ok(['transactions', 'describe-producers', '--topic', `${TOPIC}:0,1`, '--json'])) as Array<{ partition: number; activeProducers: Array<{ currentTransactionStartOffset: number | null; lastSequence: number }> }>;
  assert.deepEqual(pj.map((x) => [x.partition, x.activeProducers.map((a) => [a.lastSequence, a.currentTransactionStartOffset])]), [[0, [[2, 0]]], [1, []]]);
  const noPartition = await strand(['transactions', 'describe-producers', '--topic', `${TOPIC}:7`]);
  assert.equal(noPartition.status, 1);
  assert.match(noPartition.stderr, /has no partition 7/);

  // The coordinator knows the transaction and it is young: not hanging under the default 15 minutes.
  assert.match(await ok(['transactions', 'find-hanging']), /No hanging transactions/);
  // Older than 0.01 minutes (600 ms) since the producer's last write: hanging.
  while (Date.now() - openedAt < 1500) await sleep(100);
  const found = await ok(['transactions', 'find-hanging', '--max-transaction-timeout', '0.01']);
  assert.match(found, /TOPIC\s+PARTITION\s+PRODUCER-ID\s+EPOCH\s+COORDINATOR-EPOCH\s+START-OFFSET\s+LAST-TIMESTAMP\s+DURATION-MIN\s+TRANSACTIONAL-ID\s+REASON/);
  assert.match(found, new RegExp(`${TOPIC}\\s+0\\s+${producerId}\\s+0\\s+-\\s+0\\s+\\S+Z\\s+0\\s+${TID}\\s+open longer than the max transaction timeout`));
  const fj = JSON.parse(await ok(['transactions', 'find-hanging', '--max-transaction-timeout', '0.01', '--topic', TOPIC, '--json'])) as Array<{ topic: string; partition: number; startOffset: number; transactionalId: string; durationMs: number }>;
  assert.equal(fj.length, 1);
  assert.deepEqual([fj[0]!.topic, fj[0]!.partition, fj[0]!.startOffset, fj[0]!.transactionalId], [TOPIC, 0, 0, TID]);
  assert.ok(fj[0]!.durationMs >= 1000);
  assert.deepEqual(JSON.parse(await ok(['transactions', 'find-hanging', '--max-transaction-timeout', '0.01', '--topic', `${TOPIC}:1`, '--json'])), [], 'partition 1 has no open transaction');
});

test('find-hanging: a transaction the coordinator no longer knows (its __transaction_state lost) is hanging at any age', T, async () => {
  assert.ok(producerId >= 0, 'the previous test opened the transaction');
  assert.equal(await broker.stop(), 0);
  const gone = readdirSync(broker.dataDir).filter((d) => d.startsWith('__transaction_state-'));
  assert.ok(gone.length > 0);
  for (const d of gone) rmSync(join(broker.dataDir, d), { recursive: true });
  broker = await startBroker({ dataDir: broker.dataDir, port: broker.port, overrides: OVERRIDES });

  assert.match(await ok(['transactions', 'list']), /^No transactions\.$/m);
  const found = await ok(['transactions', 'find-hanging']);
  assert.match(found, new RegExp(`${TOPIC}\\s+0\\s+${producerId}\\s+0\\s+-\\s+0\\s+\\S+Z\\s+\\d+\\s+-\\s+no transactional id at the coordinator has producer id ${producerId}`));
  // It holds back the last stable offset: read_committed readers are stuck before it.
  const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
  try {
    const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, 2, { replicaId: -1, isolationLevel: 1, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }], timeoutMs: 0 });
    assert.equal(r.topics[0]!.partitions[0]!.offset, 0);
  } finally {
    c.close();
  }
});

test('abort: the hanging transaction gets an ABORT marker; the last stable offset moves on and nothing is hanging any more', T, async () => {
  const lastStable = async (): Promise<number> => {
    const c = await ProtocolConnection.connect('127.0.0.1', broker.port);
    try {
      const r = await c.send<m.ListOffsetsResponse>(m.ApiKey.ListOffsets, 2, { replicaId: -1, isolationLevel: 1, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1, maxNumOffsets: 1 }] }], timeoutMs: 0 });
      return r.topics[0]!.partitions[0]!.offset;
    } finally {
      c.close();
    }
  };
  assert.equal(await lastStable(), 0, 'the previous test left the transaction hanging');
  const wrong = await strand(['transactions', 'abort', '--topic', TOPIC, '--partition', '0', '--start-offset', '1']);
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /no open transaction starts at offset 1 in cli-txn-0/);
  assert.match(wrong.stderr, /hint: .*describe-producers/);

  assert.match(await ok(['transactions', 'abort', '--topic', TOPIC, '--partition', '0', '--start-offset', '0']), new RegExp(`Aborted the transaction of producer ${producerId} \\(epoch 0\\) in ${TOPIC}-0 that started at offset 0\\.`));
  assert.equal(await lastStable(), 4, 'three records and the ABORT marker are now stable');
  assert.match(await ok(['transactions', 'find-hanging', '--max-transaction-timeout', '0']), /No hanging transactions/);
  const [pp] = JSON.parse(await ok(['transactions', 'describe-producers', '--topic', `${TOPIC}:0`, '--json'])) as Array<{ activeProducers: Array<{ currentTransactionStartOffset: number | null; coordinatorEpoch: number | null }> }>;
  assert.deepEqual(pp!.activeProducers.map((a) => [a.currentTransactionStartOffset, a.coordinatorEpoch]), [[null, 0]]);
  const again = await strand(['transactions', 'abort', '--topic', `${TOPIC}:0`, '--start-offset', '0']);
  assert.equal(again.status, 1, 'nothing left to abort');
  // The explicit form names the producer and epoch itself; a marker with no open transaction behind it changes nothing.
  const explicit = await strand(['transactions', 'abort', '--topic', `${TOPIC}:0`, '--producer-id', String(producerId), '--producer-epoch', '0', '--json']);
  assert.equal(explicit.status, 0, explicit.stderr);
  assert.deepEqual(JSON.parse(explicit.stdout), { topic: TOPIC, partition: 0, producerId, producerEpoch: 0, coordinatorEpoch: 0, startOffset: null, aborted: true });
  assert.equal(await lastStable(), 5);
});
