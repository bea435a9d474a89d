/**
 * The Raft messages survive the trip through Kafka's wire format (the generated codecs), and a
 * request for another partition is answered with INVALID_REQUEST rather than handled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../src/protocol/errors.js';
import { API_BY_KEY, ApiKey } from '../../src/protocol/messages/index.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { fromKafkaRequest, fromKafkaResponse, invalidRequestResponse, RAFT_API_VERSIONS, toKafkaRequest, toKafkaResponse } from '../../src/raft/kafka-messages.js';
import type { RaftRequest, RaftResponse } from '../../src/raft/types.js';

function wire(apiKey: number, version: number, body: unknown, side: 'request' | 'response'): unknown {
  const api = API_BY_KEY.get(apiKey)!;
  const w = new Writer(64);
  const encode = (side === 'request' ? api.encodeRequest : api.encodeResponse) as (w: Writer, v: unknown, version: number) => void;
  encode(w, body, version);
  const r = new Reader(w.toBuffer());
  const decoded = side === 'request' ? api.decodeRequest(r, version) : api.decodeResponse(r, version);
  assert(r.ok, `${api.name} v${version}: ${r.error}`);
  return decoded;
}

const requests: RaftRequest[] = [
  { type: 'VoteRequest', sourceId: 2, candidateEpoch: 7, candidateId: 2, lastOffsetEpoch: 6, lastOffset: 1234 },
  { type: 'BeginQuorumEpochRequest', sourceId: 3, leaderId: 3, leaderEpoch: 9 },
  { type: 'EndQuorumEpochRequest', sourceId: 1, leaderId: 1, leaderEpoch: 4, preferredSuccessors: [3, 2] },
  { type: 'FetchRequest', sourceId: 2, currentLeaderEpoch: 5, fetchOffset: 100, lastFetchedEpoch: 4 },
  { type: 'FetchSnapshotRequest', sourceId: 3, currentLeaderEpoch: 5, snapshotId: { endOffset: 90, epoch: 3 }, position: 4096 },
];

test('every Raft request round-trips through its Kafka request', () => {
  for (const m of requests) {
    const k = toKafkaRequest(m, 'cluster-1');
    assert.equal(RAFT_API_VERSIONS.get(k.apiKey), k.version);
    assert.deepEqual(fromKafkaRequest(k.apiKey, wire(k.apiKey, k.version, k.body, 'request')), m);
  }
});

test('every Raft response round-trips through its Kafka response, echo fields from the request', () => {
  const fetch = requests[3] as Extract<RaftRequest, { type: 'FetchRequest' }>;
  const cases: Array<[RaftRequest, RaftResponse]> = [
    [requests[0]!, { type: 'VoteResponse', sourceId: 1, errorCode: 0, leaderId: -1, leaderEpoch: 7, voteGranted: true }],
    [requests[1]!, { type: 'BeginQuorumEpochResponse', sourceId: 1, errorCode: ErrorCode.FENCED_LEADER_EPOCH, leaderId: 2, leaderEpoch: 10 }],
    [requests[2]!, { type: 'EndQuorumEpochResponse', sourceId: 1, errorCode: 0, leaderId: 1, leaderEpoch: 4 }],
    [
      fetch,
      {
        type: 'FetchResponse',
        sourceId: 1,
        errorCode: 0,
        leaderId: 1,
        leaderEpoch: 5,
        highWatermark: 101,
        fetchOffset: 100,
        lastFetchedEpoch: 4,
        divergingEpoch: null,
        snapshotId: null,
        entries: [
          { epoch: 5, control: true, value: Buffer.from('{"version":0,"leaderId":1}') },
          { epoch: 5, control: false, value: Buffer.from('record') },
        ],
      },
    ],
    [fetch, { type: 'FetchResponse', sourceId: 1, errorCode: 0, leaderId: 1, leaderEpoch: 5, highWatermark: -1, fetchOffset: 100, lastFetchedEpoch: 4, divergingEpoch: { epoch: 3, offset: 80 }, snapshotId: null, entries: [] }],
    [fetch, { type: 'FetchResponse', sourceId: 1, errorCode: 0, leaderId: 1, leaderEpoch: 5, highWatermark: 300, fetchOffset: 100, lastFetchedEpoch: 4, divergingEpoch: null, snapshotId: { endOffset: 250, epoch: 5 }, entries: [] }],
    [requests[4]!, { type: 'FetchSnapshotResponse', sourceId: 1, errorCode: 0, leaderId: 1, leaderEpoch: 5, snapshotId: { endOffset: 90, epoch: 3 }, size: 10000, position: 4096, bytes: Buffer.from('chunk') }],
  ];
  for (const [request, response] of cases) {
    const k = toKafkaRequest(request, '');
    const decoded = wire(k.apiKey, k.version, toKafkaResponse(response), 'response');
    assert.deepEqual(fromKafkaResponse(request, response.sourceId, decoded), response);
  }
});

test('a request for another topic is not handled but answered with INVALID_REQUEST', () => {
  const k = toKafkaRequest(requests[0]!, '');
  const body = wire(k.apiKey, k.version, k.body, 'request') as { topics: Array<{ topicName: string }> };
  body.topics[0]!.topicName = 'orders';
  assert.equal(fromKafkaRequest(ApiKey.Vote, body), null);
  const answer = wire(ApiKey.Vote, 0, invalidRequestResponse(ApiKey.Vote), 'response') as { errorCode: number };
  assert.equal(answer.errorCode, ErrorCode.INVALID_REQUEST);
  // A top-level error is no Raft answer at all: the core's timers retry.
  assert.equal(fromKafkaResponse(requests[0]!, 1, answer), null);
});
