/**
 * Transaction markers to a partition led by another broker: two real brokers in-process, A
 * (node 1) coordinating a transaction whose partition `orders-0` is led, in A's metadata image,
 * by broker 2 — B, whose endpoint A's image registers. A's coordinator sends WriteTxnMarkers to
 * B, carrying its coordinator epoch (the `__transaction_state` partition's leader epoch); B
 * writes the marker and later refuses one of an older coordinator epoch.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { ProtocolConnection } from '../../src/testing/protocol-client.js';
import { waitUntil } from '../../src/testing/cluster.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import * as m from '../../src/protocol/messages/index.js';
import { TRANSACTION_STATE_TOPIC, TxnState, partitionForTransactionalId } from '../../src/coordinator/transaction-records.js';
import type { MetadataRecord } from '../../src/broker/metadata/image.js';

const brokers: StrandTestBroker[] = [];
const conns: ProtocolConnection[] = [];

after(async () => {
  for (const c of conns) c.close();
  for (const b of brokers) await b.stop();
});

const until = <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15000): Promise<T> => waitUntil(what, fn, timeoutMs, 20);

const producers = (c: ProtocolConnection) =>
  c.send<m.DescribeProducersResponse>(m.ApiKey.DescribeProducers, 0, { topics: [{ name: 'orders', partitionIndexes: [0] }] }).then((r) => r.topics[0]!.partitions[0]!);

test('the coordinator writes markers to another broker\'s partition with WriteTxnMarkers; a marker of an older coordinator epoch is fenced there', async () => {
  const b = await startStrand({ topics: [{ name: 'orders', partitions: 1 }], config: { 'node.id': 2 } });
  brokers.push(b);
  const a = await startStrand({ topics: [{ name: 'orders', partitions: 1 }], config: { 'transaction.state.log.num.partitions': '2', 'request.timeout.ms': 5000 } });
  brokers.push(a);
  const toA = await ProtocolConnection.connect('127.0.0.1', a.port, 'remote-markers');
  const toB = await ProtocolConnection.connect('127.0.0.1', b.port, 'remote-markers');
  conns.push(toA, toB);

  const tid = 'remote-txn';
  const find = await until('__transaction_state on A', async () => {
    const r = await toA.send<m.FindCoordinatorResponse>(m.ApiKey.FindCoordinator, 3, { ...m.defaultFindCoordinatorRequest(), key: tid, keyType: 1 });
    return r.errorCode === ErrorCode.NONE ? r : undefined;
  });
  assert.equal(find.nodeId, 1);
  // In A's image: broker 2 is B, and it leads orders-0; A's __transaction_state partition of the id moves to epoch 3 (still led by A).
  const txnTopic = a.broker.image.topic(TRANSACTION_STATE_TOPIC)!;
  const tp = partitionForTransactionalId(tid, txnTopic.partitions.length);
  await a.broker.controller.run((image) => {
    const orders = image.topic('orders')!;
    const records: MetadataRecord[] = [
      { type: 'RegisterBroker', brokerId: 2, host: '127.0.0.1', port: b.port, rack: null, incarnationId: 'b' },
      { type: 'Partition', topicId: orders.topicId, partition: 0, replicas: [2], isr: [2], leader: 2, leaderEpoch: 1, partitionEpoch: 1 },
      { type: 'Partition', topicId: txnTopic.topicId, partition: tp, replicas: [1], isr: [1], leader: 1, leaderEpoch: 3, partitionEpoch: 1 },
    ];
    return { records, result: undefined };
  });
  await until('the transaction state partition to reload at epoch 3', () => (a.broker.exactlyOnce.coordinator.unavailableFor(tid) === ErrorCode.NONE && a.broker.exactlyOnce.coordinator.epochOf(tp) === 3 ? true : undefined));

  const init = await until('InitProducerId', async () => {
    const r = await toA.send<m.InitProducerIdResponse>(m.ApiKey.InitProducerId, 4, { ...m.defaultInitProducerIdRequest(), transactionalId: tid, transactionTimeoutMs: 30000 });
    return r.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ? undefined : r;
  });
  assert.equal(init.errorCode, ErrorCode.NONE);
  const added = await toA.send<m.AddPartitionsToTxnResponse>(m.ApiKey.AddPartitionsToTxn, 3, {
    ...m.defaultAddPartitionsToTxnRequest(),
    v3AndBelowTransactionalId: tid,
    v3AndBelowProducerId: init.producerId,
    v3AndBelowProducerEpoch: init.producerEpoch,
    v3AndBelowTopics: [{ name: 'orders', partitions: [0] }],
  });
  assert.equal(added.resultsByTopicV3AndBelow[0]!.resultsByPartition[0]!.partitionErrorCode, ErrorCode.NONE);
  const end = await toA.send<m.EndTxnResponse>(m.ApiKey.EndTxn, 3, { transactionalId: tid, producerId: init.producerId, producerEpoch: init.producerEpoch, committed: true });
  assert.equal(end.errorCode, ErrorCode.NONE);

  // A completes the transaction once B has written the marker.
  await until('CompleteCommit on A', () => (a.broker.exactlyOnce.coordinator.transaction(tid)?.state === TxnState.CompleteCommit ? true : undefined));
  const onB = b.broker.replicaManager.getPartition('orders', 0)!;
  assert.equal(onB.log.logEndOffset, 1, 'B appended the COMMIT marker');
  const state = await producers(toB);
  const entry = state.activeProducers.find((p) => p.producerId === init.producerId);
  assert.ok(entry !== undefined, 'B knows the producer from the marker');
  assert.equal(entry.coordinatorEpoch, 3);
  assert.equal(a.broker.replicaManager.getPartition('orders', 0)?.log.logEndOffset ?? 0, 0, 'A, not a replica of orders-0, wrote nothing there');

  // A deposed coordinator (epoch 2 < 3) cannot decide this producer's transactions on B.
  const stale = await toB.send<m.WriteTxnMarkersResponse>(m.ApiKey.WriteTxnMarkers, 1, {
    markers: [{ producerId: init.producerId, producerEpoch: init.producerEpoch, transactionResult: false, coordinatorEpoch: 2, topics: [{ name: 'orders', partitionIndexes: [0] }] }],
  });
  assert.equal(stale.markers[0]!.topics[0]!.partitions[0]!.errorCode, ErrorCode.TRANSACTION_COORDINATOR_FENCED);
  assert.equal(onB.log.logEndOffset, 1, 'nothing written');
});
