/**
 * Fetch (key 1), versions 0–13. Magic-2 batches are served from v4 on; v0–3 readers expect the
 * older message formats, and Strand does not down-convert: like Kafka with
 * `message.downconversion.enable=false`, a v0–3 fetch that would return records gets
 * UNSUPPORTED_VERSION for that partition (librdkafka needs these versions advertised to turn its
 * codecs on, then fetches with v4+).
 *
 * Behaviour:
 * - Serves stored batches byte for byte, from the batch holding `fetch_offset` up to the high
 *   watermark; read_committed (v4+) stops at the last stable offset (the first offset of the
 *   earliest open transaction) and lists the aborted transactions (producer id, first offset)
 *   of the range from the partition's transaction index, so clients drop aborted records.
 *   Control batches (markers) are served like any batch; clients skip them.
 * - Long poll: when fewer than `min_bytes` are available the request waits for an append to one
 *   of its partitions or `max_wait_ms`, whichever is first; no polling loop.
 * - Limits: `partition_max_bytes` per partition and `max_bytes` (capped by the broker's
 *   fetch.max.bytes) overall, except that the first partition with data always returns at least
 *   one whole batch (KIP-74), so a batch larger than the limits never stalls a consumer. Where
 *   a limit cuts a batch, the records end at the last whole batch the segment's offset index
 *   knows (Kafka sends the cut part, which clients drop and fetch again); only when it knows
 *   none inside the range do they end in part of a batch, as Kafka's do.
 * - Offsets outside [log start, log end] answer OFFSET_OUT_OF_RANGE; a stale or future
 *   current_leader_epoch (v9+) answers FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH.
 * - Only the partition's leader serves it (no KIP-392 fetching from followers): any other replica,
 *   or a broker that does not host a partition of a known topic, answers NOT_LEADER_OR_FOLLOWER.
 * - A follower's fetch (`replica_id` ≥ 0, ClusterAction; Kafka's replica fetch): reads up to the
 *   log end offset instead of the high watermark; with `last_fetched_epoch` (v12+) it is checked
 *   against the leader's epochs and a follower whose log diverged gets `diverging_epoch` (the
 *   epoch and where it ends here) and no records; its fetch offset is its log end offset, which
 *   moves the high watermark (waking consumers and acks=all produces) and can let it into the ISR
 *   (replica-manager.ts, replication/partition-state.ts).
 * - v13+ names topics by id; an unknown id answers UNKNOWN_TOPIC_ID.
 * - Incremental fetch sessions (KIP-227) are declined: every response has session_id 0 and is a
 *   full response; a request naming a session id gets FETCH_SESSION_ID_NOT_FOUND.
 */
import { ErrorCode } from '../../protocol/errors.js';
import {
  FetchApi,
  defaultFetchResponseEpochEndOffset,
  defaultFetchResponseLeaderIdAndEpoch,
  defaultFetchResponseSnapshotId,
  type FetchResponse,
} from '../../protocol/messages/index.js';
import { isLazyRecords } from '../../protocol/writer.js';
import type { FetchPartitionRequest } from '../replica-manager.js';
import { defineHandler } from './handler.js';
import { authorize, authorizeCluster } from '../security/authorizer.js';

const READ_COMMITTED = 1;

export const fetchHandler = defineHandler({
  api: FetchApi,
  minVersion: 0,
  maxVersion: 13,
  async handle(req, ctx): Promise<FetchResponse> {
    const broker = ctx.broker;
    if (req.sessionId !== 0) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [], nodeEndpoints: [] };
    }
    const image = broker.image;
    const byId = ctx.version >= 13;
    // A follower (replica id ≥ 0) needs ClusterAction; a consumer needs Read on each topic.
    const follower = req.replicaId >= 0;
    const followerAllowed = follower && authorizeCluster(ctx, 'ClusterAction');
    const plan = req.topics.map((t) => {
      const topicImage = byId ? image.topicsById.get(t.topicId) : image.topic(t.topic);
      const name = topicImage?.name ?? t.topic;
      const allowed = follower ? followerAllowed : byId && topicImage === undefined ? true : authorize(ctx, 'Read', 'Topic', name);
      return {
        topic: t.topic,
        topicId: t.topicId,
        partitions: t.partitions.map((p): FetchPartitionRequest & { index: number } => {
          const partition = topicImage === undefined || !allowed ? undefined : broker.replicaManager.getPartition(name, p.partition);
          let missingError: number = !allowed ? ErrorCode.TOPIC_AUTHORIZATION_FAILED : byId && topicImage === undefined ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          let usable = partition;
          if (partition !== undefined && p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch !== partition.leaderEpoch) {
            missingError = p.currentLeaderEpoch < partition.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH;
            usable = undefined;
          } else if (partition !== undefined && !partition.isLeader) {
            // Only the leader serves fetches (no KIP-392 follower fetching), to consumers and replicas alike.
            missingError = ErrorCode.NOT_LEADER_OR_FOLLOWER;
            usable = undefined;
          } else if (partition === undefined && topicImage !== undefined && allowed && topicImage.partitions[p.partition] !== undefined) {
            // A partition of a known topic that this broker does not host.
            missingError = ErrorCode.NOT_LEADER_OR_FOLLOWER;
          }
          return {
            index: p.partition,
            partition: usable,
            missingError,
            fetchOffset: p.fetchOffset,
            partitionMaxBytes: Math.max(0, p.partitionMaxBytes),
            readCommitted: !follower && ctx.version >= 4 && req.isolationLevel === READ_COMMITTED,
            lastFetchedEpoch: ctx.version >= 12 ? p.lastFetchedEpoch : -1,
          };
        }),
      };
    });
    const flat = plan.flatMap((t) => t.partitions);
    const maxBytes = Math.min(Math.max(0, req.maxBytes), broker.config.number('fetch.max.bytes'));
    const results = await broker.replicaManager.fetch(flat, maxBytes, req.minBytes, req.maxWaitMs, ctx.signal, follower && followerAllowed ? req.replicaId : -1);
    const readCommitted = req.isolationLevel === READ_COMMITTED;
    let i = 0;
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      sessionId: 0,
      responses: plan.map((t) => ({
        topic: t.topic,
        topicId: t.topicId,
        partitions: t.partitions.map((p) => {
          const r = results[i++]!;
          if (ctx.version < 4 && r.records !== null && r.records.length > 0) {
            if (isLazyRecords(r.records)) r.records.release();
            r.errorCode = ErrorCode.UNSUPPORTED_VERSION;
            r.records = null;
          }
          return {
            partitionIndex: p.index,
            errorCode: r.errorCode,
            highWatermark: r.highWatermark,
            lastStableOffset: r.lastStableOffset,
            logStartOffset: r.logStartOffset,
            divergingEpoch: r.divergingEpoch ?? defaultFetchResponseEpochEndOffset(),
            currentLeader: defaultFetchResponseLeaderIdAndEpoch(),
            snapshotId: defaultFetchResponseSnapshotId(),
            abortedTransactions: readCommitted ? (r.abortedTransactions ?? []) : null,
            preferredReadReplica: -1,
            records: r.records ?? EMPTY,
          };
        }),
      })),
      nodeEndpoints: [],
    };
  },
});

const EMPTY = Buffer.alloc(0);
