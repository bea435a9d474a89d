/**
 * OffsetFetch (key 9), versions 0–8.
 *
 * Behaviour:
 * - Committed offset, leader epoch (v5+) and metadata per requested partition; -1 and "" for a
 *   partition (or group) with no commit.
 * - v2+: null topics means every partition the group has offsets for; a top-level error code.
 * - v7+: require_stable — a partition with a transactional offset commit still pending (its
 *   transaction not yet ended) answers UNSTABLE_OFFSET_COMMIT, which clients retry.
 * - v8: `groups[]` — several groups in one request, one result each.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { OffsetFetchApi, type OffsetFetchResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const offsetFetchHandler = defineHandler({
  api: OffsetFetchApi,
  minVersion: 0,
  maxVersion: 8,
  handle(req, ctx): OffsetFetchResponse {
    const v = ctx.version;
    const gc = ctx.broker.groupCoordinator;
    // Kafka: Describe on the group; committed offsets only of topics the principal may Describe
    // (asked-for ones it may not answer TOPIC_AUTHORIZATION_FAILED, the all-topics form leaves them out).
    const lookup = (groupId: string, topics: Array<{ name: string; partitionIndexes: number[] }> | null) => {
      if (!authorize(ctx, 'Describe', 'Group', groupId)) {
        return { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, topics: [] as ReturnType<typeof gc.fetchOffsets>['topics'] };
      }
      const r = gc.fetchOffsets(groupId, topics === null ? null : topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes })));
      if (!ctx.broker.authorizer.enabled) return r;
      return {
        ...r,
        topics: r.topics
          .filter((t) => topics !== null || authorize(ctx, 'Describe', 'Topic', t.name))
          .map((t) => (authorize(ctx, 'Describe', 'Topic', t.name) ? t : { ...t, partitions: t.partitions.map((p) => ({ ...p, offset: -1, leaderEpoch: -1, metadata: '', errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED })) })),
      };
    };
    const requireStable = v >= 7 && req.requireStable;
    const toPartitions = (ps: ReturnType<typeof lookup>['topics'][number]['partitions'], groupId: string, topic: string) =>
      ps.map((p) => ({
        partitionIndex: p.partition,
        committedOffset: p.offset,
        committedLeaderEpoch: p.leaderEpoch,
        metadata: p.metadata,
        errorCode: requireStable && p.errorCode === ErrorCode.NONE && gc.hasPendingTransactionalOffset(groupId, topic, p.partition) ? ErrorCode.UNSTABLE_OFFSET_COMMIT : p.errorCode,
      }));
    if (v >= 8) {
      return {
        throttleTimeMs: 0,
        topics: [],
        errorCode: ErrorCode.NONE,
        groups: req.groups.map((g) => {
          const r = lookup(g.groupId, g.topics);
          return { groupId: g.groupId, errorCode: r.errorCode, topics: r.topics.map((t) => ({ name: t.name, partitions: toPartitions(t.partitions, g.groupId, t.name) })) };
        }),
      };
    }
    // v0–1 cannot ask for all topics; a null there is treated as empty.
    const topics = req.topics === null && v < 2 ? [] : req.topics;
    const r = lookup(req.groupId, topics);
    const withError = (ps: ReturnType<typeof toPartitions>) => (v < 2 && r.errorCode !== ErrorCode.NONE ? ps.map((p) => ({ ...p, errorCode: r.errorCode })) : ps);
    return {
      throttleTimeMs: 0,
      topics: r.topics.map((t) => ({ name: t.name, partitions: withError(toPartitions(t.partitions, req.groupId, t.name)) })),
      errorCode: r.errorCode,
      groups: [],
    };
  },
});
