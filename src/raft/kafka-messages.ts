/**
 * The Raft messages as Kafka's own requests and responses (the generated codecs in
 * src/protocol/messages): Vote v0, BeginQuorumEpoch v0, EndQuorumEpoch v0, Fetch v13 and
 * FetchSnapshot v0, all for the one partition `__cluster_metadata-0` (topic id
 * AAAAAAAAAAAAAAAAAAAAAQ, Kafka's METADATA_TOPIC_ID, in Fetch v13+).
 *
 * Requests name their sender (Vote: candidateId; BeginQuorumEpoch, EndQuorumEpoch: leaderId;
 * Fetch: replicaId; FetchSnapshot: replicaId). A response is matched to its request by the
 * connection, so its echo fields (types.ts) come from the request. Fetch records are the entries
 * as record batches (entry-codec.ts); FetchSnapshot's unalignedRecords are raw snapshot bytes.
 *
 * A request for another topic or partition, or from a replica claiming a negative id, is
 * answered with a top-level INVALID_REQUEST (fromKafkaRequest returns null).
 */
import { ErrorCode } from '../protocol/errors.js';
import {
  ApiKey,
  defaultBeginQuorumEpochResponse,
  defaultEndQuorumEpochResponse,
  defaultFetchRequest,
  defaultFetchRequestFetchPartition,
  defaultFetchResponse,
  defaultFetchResponsePartitionData,
  defaultFetchSnapshotResponse,
  defaultVoteResponse,
  type BeginQuorumEpochRequest as KBeginQuorumEpochRequest,
  type BeginQuorumEpochResponse as KBeginQuorumEpochResponse,
  type EndQuorumEpochRequest as KEndQuorumEpochRequest,
  type EndQuorumEpochResponse as KEndQuorumEpochResponse,
  type FetchRequest as KFetchRequest,
  type FetchResponse as KFetchResponse,
  type FetchSnapshotRequest as KFetchSnapshotRequest,
  type FetchSnapshotResponse as KFetchSnapshotResponse,
  type VoteRequest as KVoteRequest,
  type VoteResponse as KVoteResponse,
} from '../protocol/messages/index.js';
import { ZERO_UUID } from '../protocol/reader.js';
import { recordsInMemory } from '../protocol/writer.js';
import { decodeEntry, encodeEntry } from './entry-codec.js';
import type { LogEntry, RaftRequest, RaftResponse } from './types.js';

export const METADATA_TOPIC = '__cluster_metadata';
export const METADATA_PARTITION = 0;
/** Kafka's Uuid.METADATA_TOPIC_ID (0...01) in base64url. */
export const METADATA_TOPIC_ID = 'AAAAAAAAAAAAAAAAAAAAAQ';

/** The api versions the quorum speaks (each is flexible). */
export const RAFT_API_VERSIONS: ReadonlyMap<number, number> = new Map([
  [ApiKey.Vote, 0],
  [ApiKey.BeginQuorumEpoch, 0],
  [ApiKey.EndQuorumEpoch, 0],
  [ApiKey.Fetch, 13],
  [ApiKey.FetchSnapshot, 0],
]);

export interface KafkaRequest {
  apiKey: number;
  version: number;
  body: unknown;
}

/** Fetch's per-partition byte bound the leader applies (entries beyond it wait for the next fetch). */
const FETCH_MAX_BYTES = 8 * 1024 * 1024;

export function toKafkaRequest(m: RaftRequest, clusterId: string): KafkaRequest {
  switch (m.type) {
    case 'VoteRequest': {
      const body: KVoteRequest = {
        clusterId,
        voterId: -1,
        topics: [
          {
            topicName: METADATA_TOPIC,
            partitions: [
              {
                partitionIndex: METADATA_PARTITION,
                candidateEpoch: m.candidateEpoch,
                candidateId: m.candidateId,
                candidateDirectoryId: ZERO_UUID,
                voterDirectoryId: ZERO_UUID,
                lastOffsetEpoch: m.lastOffsetEpoch,
                lastOffset: m.lastOffset,
              },
            ],
          },
        ],
      };
      return { apiKey: ApiKey.Vote, version: 0, body };
    }
    case 'BeginQuorumEpochRequest': {
      const body: KBeginQuorumEpochRequest = {
        clusterId,
        voterId: -1,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: METADATA_PARTITION, voterDirectoryId: ZERO_UUID, leaderId: m.leaderId, leaderEpoch: m.leaderEpoch }] }],
        leaderEndpoints: [],
      };
      return { apiKey: ApiKey.BeginQuorumEpoch, version: 0, body };
    }
    case 'EndQuorumEpochRequest': {
      const body: KEndQuorumEpochRequest = {
        clusterId,
        topics: [
          {
            topicName: METADATA_TOPIC,
            partitions: [{ partitionIndex: METADATA_PARTITION, leaderId: m.leaderId, leaderEpoch: m.leaderEpoch, preferredSuccessors: [...m.preferredSuccessors], preferredCandidates: [] }],
          },
        ],
        leaderEndpoints: [],
      };
      return { apiKey: ApiKey.EndQuorumEpoch, version: 0, body };
    }
    case 'FetchRequest': {
      const body: KFetchRequest = {
        ...defaultFetchRequest(),
        clusterId,
        replicaId: m.sourceId,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: FETCH_MAX_BYTES,
        topics: [
          {
            topic: METADATA_TOPIC,
            topicId: METADATA_TOPIC_ID,
            partitions: [
              {
                ...defaultFetchRequestFetchPartition(),
                partition: METADATA_PARTITION,
                currentLeaderEpoch: m.currentLeaderEpoch,
                fetchOffset: m.fetchOffset,
                lastFetchedEpoch: m.lastFetchedEpoch,
                partitionMaxBytes: FETCH_MAX_BYTES,
              },
            ],
          },
        ],
      };
      return { apiKey: ApiKey.Fetch, version: 13, body };
    }
    case 'FetchSnapshotRequest': {
      const body: KFetchSnapshotRequest = {
        clusterId,
        replicaId: m.sourceId,
        maxBytes: FETCH_MAX_BYTES,
        topics: [
          {
            name: METADATA_TOPIC,
            partitions: [
              {
                partition: METADATA_PARTITION,
                currentLeaderEpoch: m.currentLeaderEpoch,
                snapshotId: { endOffset: m.snapshotId.endOffset, epoch: m.snapshotId.epoch },
                position: m.position,
                replicaDirectoryId: ZERO_UUID,
              },
            ],
          },
        ],
      };
      return { apiKey: ApiKey.FetchSnapshot, version: 0, body };
    }
  }
}

function only<T>(items: readonly T[] | null | undefined): T | null {
  return items !== null && items !== undefined && items.length === 1 ? items[0]! : null;
}

/** The Raft request in a decoded Kafka request, or null when it is not one for the metadata partition. */
export function fromKafkaRequest(apiKey: number, body: unknown): RaftRequest | null {
  switch (apiKey) {
    case ApiKey.Vote: {
      const b = body as KVoteRequest;
      const t = only(b.topics);
      const p = only(t?.partitions);
      if (t === null || p === null || t.topicName !== METADATA_TOPIC || p.partitionIndex !== METADATA_PARTITION || p.candidateId < 0) return null;
      return { type: 'VoteRequest', sourceId: p.candidateId, candidateEpoch: p.candidateEpoch, candidateId: p.candidateId, lastOffsetEpoch: p.lastOffsetEpoch, lastOffset: p.lastOffset };
    }
    case ApiKey.BeginQuorumEpoch: {
      const b = body as KBeginQuorumEpochRequest;
      const t = only(b.topics);
      const p = only(t?.partitions);
      if (t === null || p === null || t.topicName !== METADATA_TOPIC || p.partitionIndex !== METADATA_PARTITION || p.leaderId < 0) return null;
      return { type: 'BeginQuorumEpochRequest', sourceId: p.leaderId, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch };
    }
    case ApiKey.EndQuorumEpoch: {
      const b = body as KEndQuorumEpochRequest;
      const t = only(b.topics);
      const p = only(t?.partitions);
      if (t === null || p === null || t.topicName !== METADATA_TOPIC || p.partitionIndex !== METADATA_PARTITION || p.leaderId < 0) return null;
      return { type: 'EndQuorumEpochRequest', sourceId: p.leaderId, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, preferredSuccessors: p.preferredSuccessors };
    }
    case ApiKey.Fetch: {
      const b = body as KFetchRequest;
      const t = only(b.topics);
      const p = only(t?.partitions);
      const replicaId = b.replicaId >= 0 ? b.replicaId : b.replicaState.replicaId;
      if (t === null || p === null || (t.topicId !== METADATA_TOPIC_ID && t.topic !== METADATA_TOPIC) || p.partition !== METADATA_PARTITION || replicaId < 0) return null;
      return { type: 'FetchRequest', sourceId: replicaId, currentLeaderEpoch: p.currentLeaderEpoch, fetchOffset: p.fetchOffset, lastFetchedEpoch: p.lastFetchedEpoch };
    }
    case ApiKey.FetchSnapshot: {
      const b = body as KFetchSnapshotRequest;
      const t = only(b.topics);
      const p = only(t?.partitions);
      if (t === null || p === null || t.name !== METADATA_TOPIC || p.partition !== METADATA_PARTITION || b.replicaId < 0) return null;
      return {
        type: 'FetchSnapshotRequest',
        sourceId: b.replicaId,
        currentLeaderEpoch: p.currentLeaderEpoch,
        snapshotId: { endOffset: p.snapshotId.endOffset, epoch: p.snapshotId.epoch },
        position: p.position,
      };
    }
    default:
      return null;
  }
}

/** The answer to a request that is not for the metadata partition (top-level INVALID_REQUEST). */
export function invalidRequestResponse(apiKey: number): unknown {
  switch (apiKey) {
    case ApiKey.Vote:
      return { ...defaultVoteResponse(), errorCode: ErrorCode.INVALID_REQUEST };
    case ApiKey.BeginQuorumEpoch:
      return { ...defaultBeginQuorumEpochResponse(), errorCode: ErrorCode.INVALID_REQUEST };
    case ApiKey.EndQuorumEpoch:
      return { ...defaultEndQuorumEpochResponse(), errorCode: ErrorCode.INVALID_REQUEST };
    case ApiKey.Fetch:
      return { ...defaultFetchResponse(), errorCode: ErrorCode.INVALID_REQUEST };
    default:
      return { ...defaultFetchSnapshotResponse(), errorCode: ErrorCode.INVALID_REQUEST };
  }
}

export function encodeEntries(fetchOffset: number, entries: readonly LogEntry[]): Buffer {
  return Buffer.concat(entries.map((e, i) => encodeEntry(fetchOffset + i, e)));
}

/** Entries from record batches that must start at `fetchOffset` and be consecutive; null if not. */
export function decodeEntries(fetchOffset: number, bytes: Buffer): LogEntry[] | null {
  const out: LogEntry[] = [];
  let pos = 0;
  while (pos + 12 <= bytes.length) {
    const size = 12 + bytes.readInt32BE(pos + 8);
    if (size <= 12 || pos + size > bytes.length) return null;
    try {
      const { offset, entry } = decodeEntry(bytes.subarray(pos, pos + size));
      if (offset !== fetchOffset + out.length) return null;
      out.push(entry);
    } catch {
      return null;
    }
    pos += size;
  }
  return pos === bytes.length ? out : null;
}

export function toKafkaResponse(m: RaftResponse): unknown {
  switch (m.type) {
    case 'VoteResponse': {
      const body: KVoteResponse = {
        errorCode: ErrorCode.NONE,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: METADATA_PARTITION, errorCode: m.errorCode, leaderId: m.leaderId, leaderEpoch: m.leaderEpoch, voteGranted: m.voteGranted }] }],
        nodeEndpoints: [],
      };
      return body;
    }
    case 'BeginQuorumEpochResponse': {
      const body: KBeginQuorumEpochResponse = {
        errorCode: ErrorCode.NONE,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: METADATA_PARTITION, errorCode: m.errorCode, leaderId: m.leaderId, leaderEpoch: m.leaderEpoch }] }],
        nodeEndpoints: [],
      };
      return body;
    }
    case 'EndQuorumEpochResponse': {
      const body: KEndQuorumEpochResponse = {
        errorCode: ErrorCode.NONE,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: METADATA_PARTITION, errorCode: m.errorCode, leaderId: m.leaderId, leaderEpoch: m.leaderEpoch }] }],
        nodeEndpoints: [],
      };
      return body;
    }
    case 'FetchResponse': {
      const body: KFetchResponse = {
        ...defaultFetchResponse(),
        responses: [
          {
            topic: METADATA_TOPIC,
            topicId: METADATA_TOPIC_ID,
            partitions: [
              {
                ...defaultFetchResponsePartitionData(),
                partitionIndex: METADATA_PARTITION,
                errorCode: m.errorCode,
                highWatermark: m.highWatermark,
                divergingEpoch: m.divergingEpoch === null ? { epoch: -1, endOffset: -1 } : { epoch: m.divergingEpoch.epoch, endOffset: m.divergingEpoch.offset },
                currentLeader: { leaderId: m.leaderId, leaderEpoch: m.leaderEpoch },
                snapshotId: m.snapshotId === null ? { endOffset: -1, epoch: -1 } : { endOffset: m.snapshotId.endOffset, epoch: m.snapshotId.epoch },
                records: encodeEntries(m.fetchOffset, m.entries),
              },
            ],
          },
        ],
      };
      return body;
    }
    case 'FetchSnapshotResponse': {
      const body: KFetchSnapshotResponse = {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        topics: [
          {
            name: METADATA_TOPIC,
            partitions: [
              {
                index: METADATA_PARTITION,
                errorCode: m.errorCode,
                snapshotId: { endOffset: m.snapshotId.endOffset, epoch: m.snapshotId.epoch },
                currentLeader: { leaderId: m.leaderId, leaderEpoch: m.leaderEpoch },
                size: m.size,
                position: m.position,
                unalignedRecords: m.bytes,
              },
            ],
          },
        ],
        nodeEndpoints: [],
      };
      return body;
    }
  }
}

/**
 * The Raft response in a decoded Kafka response to `request` sent to `peerId`, or null when it
 * answers with a top-level error or is malformed (the core then retries after its request timeout).
 */
export function fromKafkaResponse(request: RaftRequest, peerId: number, body: unknown): RaftResponse | null {
  switch (request.type) {
    case 'VoteRequest': {
      const b = body as KVoteResponse;
      const p = only(only(b.topics)?.partitions);
      if (b.errorCode !== ErrorCode.NONE || p === null) return null;
      return { type: 'VoteResponse', sourceId: peerId, errorCode: p.errorCode, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, voteGranted: p.voteGranted };
    }
    case 'BeginQuorumEpochRequest': {
      const b = body as KBeginQuorumEpochResponse;
      const p = only(only(b.topics)?.partitions);
      if (b.errorCode !== ErrorCode.NONE || p === null) return null;
      return { type: 'BeginQuorumEpochResponse', sourceId: peerId, errorCode: p.errorCode, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch };
    }
    case 'EndQuorumEpochRequest': {
      const b = body as KEndQuorumEpochResponse;
      const p = only(only(b.topics)?.partitions);
      if (b.errorCode !== ErrorCode.NONE || p === null) return null;
      return { type: 'EndQuorumEpochResponse', sourceId: peerId, errorCode: p.errorCode, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch };
    }
    case 'FetchRequest': {
      const b = body as KFetchResponse;
      const p = only(only(b.responses)?.partitions);
      if (b.errorCode !== ErrorCode.NONE || p === null) return null;
      const bytes = recordsInMemory(p.records);
      const entries = bytes === null ? [] : decodeEntries(request.fetchOffset, bytes);
      if (entries === null) return null;
      return {
        type: 'FetchResponse',
        sourceId: peerId,
        errorCode: p.errorCode,
        leaderId: p.currentLeader.leaderId,
        leaderEpoch: p.currentLeader.leaderEpoch,
        highWatermark: p.highWatermark,
        fetchOffset: request.fetchOffset,
        lastFetchedEpoch: request.lastFetchedEpoch,
        divergingEpoch: p.divergingEpoch.epoch >= 0 ? { epoch: p.divergingEpoch.epoch, offset: p.divergingEpoch.endOffset } : null,
        snapshotId: p.snapshotId.endOffset >= 0 ? { endOffset: p.snapshotId.endOffset, epoch: p.snapshotId.epoch } : null,
        entries,
      };
    }
    case 'FetchSnapshotRequest': {
      const b = body as KFetchSnapshotResponse;
      const p = only(only(b.topics)?.partitions);
      if (b.errorCode !== ErrorCode.NONE || p === null) return null;
      return {
        type: 'FetchSnapshotResponse',
        sourceId: peerId,
        errorCode: p.errorCode,
        leaderId: p.currentLeader.leaderId,
        leaderEpoch: p.currentLeader.leaderEpoch,
        snapshotId: { endOffset: p.snapshotId.endOffset, epoch: p.snapshotId.epoch },
        size: p.size,
        position: p.position,
        bytes: Buffer.from(recordsInMemory(p.unalignedRecords)),
      };
    }
  }
}
