/**
 * The records of the internal topic `__transaction_state`, in Kafka's byte formats
 * (TransactionLogKey / TransactionLogValue v0), and the partition a transactional id lives on.
 *
 *   TransactionLogKey v0:   version INT16 (=0), transactionalId STRING
 *   TransactionLogValue v0: version INT16 (=0), producerId INT64, producerEpoch INT16,
 *                           transactionTimeoutMs INT32, transactionStatus INT8,
 *                           transactionPartitions NULLABLE ARRAY of { topic STRING,
 *                             partitionIds ARRAY of INT32 },
 *                           transactionLastUpdateTimestampMs INT64,
 *                           transactionStartTimestampMs INT64
 * A null value is a tombstone (the transactional id expired). STRING is INT16 length + UTF-8,
 * ARRAY is INT32 count (-1 = null). Status codes are Kafka's (TransactionState.id).
 *
 * Partition of a transactional id: `abs(javaStringHashCode(id)) % partitions`, as for groups.
 */
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';
import { partitionForGroup, type CoordinatorRecord } from './group-records.js';

export const TRANSACTION_STATE_TOPIC = '__transaction_state';

export const TxnState = {
  Empty: 0,
  Ongoing: 1,
  PrepareCommit: 2,
  PrepareAbort: 3,
  CompleteCommit: 4,
  CompleteAbort: 5,
  Dead: 6,
  PrepareEpochFence: 7,
} as const;
export type TxnStateCode = (typeof TxnState)[keyof typeof TxnState];

export const TXN_STATE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TxnState).map(([k, v]) => [v, k]));

export interface TxnPartition {
  topic: string;
  partition: number;
}

export interface TransactionLogValue {
  producerId: number;
  producerEpoch: number;
  timeoutMs: number;
  state: TxnStateCode;
  partitions: TxnPartition[];
  lastUpdateMs: number;
  startMs: number;
}

export function partitionForTransactionalId(transactionalId: string, partitions: number): number {
  return partitionForGroup(transactionalId, partitions);
}

export function encodeTransactionKey(transactionalId: string): Buffer {
  return new Writer(32).int16(0).string(transactionalId).toBuffer();
}

export function decodeTransactionKey(buf: Buffer): string | null {
  const r = new Reader(buf);
  if (r.int16() !== 0) return null;
  const id = r.string();
  return r.ok ? id : null;
}

export function encodeTransactionValue(v: TransactionLogValue): Buffer {
  const w = new Writer(128);
  w.int16(0).int64(v.producerId).int16(v.producerEpoch).int32(v.timeoutMs).int8(v.state);
  const byTopic = new Map<string, number[]>();
  for (const p of v.partitions) {
    const l = byTopic.get(p.topic);
    if (l === undefined) byTopic.set(p.topic, [p.partition]);
    else l.push(p.partition);
  }
  w.int32(byTopic.size);
  for (const [topic, ps] of byTopic) {
    w.string(topic).int32(ps.length);
    for (const p of ps) w.int32(p);
  }
  w.int64(v.lastUpdateMs).int64(v.startMs);
  return w.toBuffer();
}

export function decodeTransactionValue(buf: Buffer): TransactionLogValue | null {
  const r = new Reader(buf);
  if (r.int16() !== 0) return null;
  const producerId = r.int64();
  const producerEpoch = r.int16();
  const timeoutMs = r.int32();
  const state = r.int8() as TxnStateCode;
  const partitions: TxnPartition[] = [];
  const topics = r.int32();
  for (let i = 0; i < topics && r.ok; i++) {
    const topic = r.string();
    const n = r.int32();
    for (let j = 0; j < n && r.ok; j++) partitions.push({ topic, partition: r.int32() });
  }
  const lastUpdateMs = r.int64();
  const startMs = r.int64();
  if (!r.ok || state < 0 || state > 7) return null;
  return { producerId, producerEpoch, timeoutMs, state, partitions, lastUpdateMs, startMs };
}

export function transactionRecord(transactionalId: string, value: TransactionLogValue | null): CoordinatorRecord {
  return { key: encodeTransactionKey(transactionalId), value: value === null ? null : encodeTransactionValue(value) };
}
