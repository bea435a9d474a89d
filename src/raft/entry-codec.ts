/**
 * Raft log entries as Kafka record batches (magic 2), on disk and in Fetch responses.
 *
 * One entry is one batch of one record: the batch's base offset is the entry's offset, its
 * partition leader epoch the entry's epoch. A data entry's record value is the entry's bytes.
 * The LeaderChange entry is a control batch (attributes bit 5) whose record key is Kafka's
 * control key (version 0, type 2 = LEADER_CHANGE) and whose value is our LeaderChangeMessage as
 * JSON (Kafka encodes it with its binary message schema; nothing outside Strand reads it).
 * Timestamps are not part of an entry: a batch carries 0, so the same entry always encodes to
 * the same bytes.
 */
import { CorruptRecordError } from '../protocol/compression.js';
import { decodeRecordBatch, encodeRecordBatch, isControlBatch } from '../protocol/records.js';
import type { LogEntry } from './types.js';

/** Kafka's control record type for LeaderChange (ControlRecordType.LEADER_CHANGE). */
export const LEADER_CHANGE_CONTROL_TYPE = 2;

const LEADER_CHANGE_KEY = (() => {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(LEADER_CHANGE_CONTROL_TYPE, 2);
  return key;
})();

export function encodeEntry(offset: number, entry: LogEntry): Buffer {
  return encodeRecordBatch({
    records: [{ key: entry.control ? LEADER_CHANGE_KEY : null, value: entry.value, timestamp: 0 }],
    baseOffset: offset,
    partitionLeaderEpoch: entry.epoch,
    control: entry.control,
    baseTimestamp: 0,
  });
}

/** Decodes one batch written by encodeEntry; throws CorruptRecordError on anything else. */
export function decodeEntry(batch: Buffer): { offset: number; entry: LogEntry } {
  const b = decodeRecordBatch(batch);
  const record = b.records[0];
  if (b.records.length !== 1 || record === undefined || record.value === null) throw new CorruptRecordError('a raft entry batch holds exactly one record with a value');
  if (b.header.partitionLeaderEpoch < 0) throw new CorruptRecordError(`raft entry at ${b.header.baseOffset} has no epoch`);
  return { offset: b.header.baseOffset, entry: { epoch: b.header.partitionLeaderEpoch, control: isControlBatch(b.header), value: Buffer.from(record.value) } };
}
