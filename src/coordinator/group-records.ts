/**
 * The records of the internal topic `__consumer_offsets`, in Kafka's byte formats (so a Kafka
 * tool reading the topic, e.g. `kafka-console-consumer --formatter GroupMetadataMessageFormatter`,
 * would understand them), and the partition a group lives on.
 *
 * Keys (the first INT16 is the key version and says which kind of record it is):
 *   OffsetCommitKey v1:      version INT16 (=1), group STRING, topic STRING, partition INT32
 *   GroupMetadataKey v2:     version INT16 (=2), group STRING
 * Values (a null value is a tombstone: the offset, or the whole group, is deleted):
 *   OffsetCommitValue v3:    version INT16 (=3), offset INT64, leaderEpoch INT32, metadata STRING,
 *                            commitTimestamp INT64
 *   GroupMetadataValue v3:   version INT16 (=3), protocolType STRING, generation INT32,
 *                            protocol NULLABLE_STRING, leader NULLABLE_STRING,
 *                            currentStateTimestamp INT64, members ARRAY of
 *                            { memberId STRING, groupInstanceId NULLABLE_STRING, clientId STRING,
 *                              clientHost STRING, rebalanceTimeout INT32, sessionTimeout INT32,
 *                              subscription BYTES, assignment BYTES }
 * STRING is INT16 length + UTF-8; ARRAY is INT32 count; BYTES is INT32 length (Kafka's classic,
 * non-flexible encoding, which these versions use). Decoding also accepts OffsetCommitValue v0/v1
 * (offset, metadata, commitTimestamp[, expireTimestamp]) and GroupMetadataValue v0–v2, which
 * older Kafka versions wrote.
 *
 * Partition of a group: `abs(javaStringHashCode(groupId)) % partitions`, with Kafka's `Utils.abs`
 * (Integer.MIN_VALUE maps to 0), so a group lands on the same partition number as in Kafka.
 */
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';

export const OFFSETS_TOPIC = '__consumer_offsets';

/** Java's String.hashCode over UTF-16 code units, as a signed 32-bit int. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** Kafka's `Utils.abs(groupId.hashCode) % partitions`. */
export function partitionForGroup(groupId: string, partitions: number): number {
  const h = javaStringHashCode(groupId);
  const abs = h === -2147483648 ? 0 : Math.abs(h);
  return abs % partitions;
}

export interface OffsetCommitKey {
  type: 'offset';
  group: string;
  topic: string;
  partition: number;
}

export interface GroupMetadataKey {
  type: 'group';
  group: string;
}

export type CoordinatorKey = OffsetCommitKey | GroupMetadataKey;

export interface OffsetCommitValue {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  commitTimestamp: number;
}

export interface MemberRecord {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  subscription: Buffer;
  assignment: Buffer;
}

export interface GroupMetadataValue {
  protocolType: string;
  generation: number;
  protocol: string | null;
  leader: string | null;
  currentStateTimestamp: number;
  members: MemberRecord[];
}

/** One record for the log: a key and a value (null = tombstone). */
export interface CoordinatorRecord {
  key: Buffer;
  value: Buffer | null;
}

export function encodeOffsetCommitKey(group: string, topic: string, partition: number): Buffer {
  return new Writer(64).int16(1).string(group).string(topic).int32(partition).toBuffer();
}

export function encodeGroupMetadataKey(group: string): Buffer {
  return new Writer(32).int16(2).string(group).toBuffer();
}

export function encodeOffsetCommitValue(v: OffsetCommitValue): Buffer {
  return new Writer(64).int16(3).int64(v.offset).int32(v.leaderEpoch).string(v.metadata).int64(v.commitTimestamp).toBuffer();
}

export function encodeGroupMetadataValue(v: GroupMetadataValue): Buffer {
  const w = new Writer(256);
  w.int16(3).string(v.protocolType).int32(v.generation).nullableString(v.protocol).nullableString(v.leader).int64(v.currentStateTimestamp);
  w.int32(v.members.length);
  for (const m of v.members) {
    w.string(m.memberId).nullableString(m.groupInstanceId).string(m.clientId).string(m.clientHost);
    w.int32(m.rebalanceTimeoutMs).int32(m.sessionTimeoutMs).bytes(m.subscription).bytes(m.assignment);
  }
  return w.toBuffer();
}

/** Decodes a key; null for a key this broker does not know (it is then skipped on replay). */
export function decodeKey(buf: Buffer): CoordinatorKey | null {
  const r = new Reader(buf);
  const version = r.int16();
  let key: CoordinatorKey | null = null;
  if (version === 0 || version === 1) key = { type: 'offset', group: r.string(), topic: r.string(), partition: r.int32() };
  else if (version === 2) key = { type: 'group', group: r.string() };
  return r.ok ? key : null;
}

export function decodeOffsetCommitValue(buf: Buffer): OffsetCommitValue | null {
  const r = new Reader(buf);
  const version = r.int16();
  let v: OffsetCommitValue | null = null;
  if (version === 0 || version === 1) {
    v = { offset: r.int64(), leaderEpoch: -1, metadata: r.string(), commitTimestamp: r.int64() };
    if (version === 1) r.int64(); // expireTimestamp
  } else if (version === 2) {
    v = { offset: r.int64(), leaderEpoch: -1, metadata: r.string(), commitTimestamp: r.int64() };
  } else if (version >= 3) {
    v = { offset: r.int64(), leaderEpoch: r.int32(), metadata: r.string(), commitTimestamp: r.int64() };
  }
  return r.ok ? v : null;
}

export function decodeGroupMetadataValue(buf: Buffer): GroupMetadataValue | null {
  const r = new Reader(buf);
  const version = r.int16();
  if (version < 0 || version > 3) return null;
  const protocolType = r.string();
  const generation = r.int32();
  const protocol = r.nullableString();
  const leader = r.nullableString();
  const currentStateTimestamp = version >= 2 ? r.int64() : -1;
  const n = r.int32();
  const members: MemberRecord[] = [];
  for (let i = 0; i < n && r.ok; i++) {
    const memberId = r.string();
    const groupInstanceId = version >= 3 ? r.nullableString() : null;
    const clientId = r.string();
    const clientHost = r.string();
    const rebalanceTimeoutMs = version >= 1 ? r.int32() : -1;
    const sessionTimeoutMs = r.int32();
    const subscription = r.bytes();
    const assignment = r.bytes();
    members.push({ memberId, groupInstanceId, clientId, clientHost, rebalanceTimeoutMs: rebalanceTimeoutMs < 0 ? sessionTimeoutMs : rebalanceTimeoutMs, sessionTimeoutMs, subscription, assignment });
  }
  return r.ok ? { protocolType, generation, protocol, leader, currentStateTimestamp, members } : null;
}

export function offsetCommitRecord(group: string, topic: string, partition: number, value: OffsetCommitValue | null): CoordinatorRecord {
  return { key: encodeOffsetCommitKey(group, topic, partition), value: value === null ? null : encodeOffsetCommitValue(value) };
}

export function groupMetadataRecord(group: string, value: GroupMetadataValue | null): CoordinatorRecord {
  return { key: encodeGroupMetadataKey(group), value: value === null ? null : encodeGroupMetadataValue(value) };
}
