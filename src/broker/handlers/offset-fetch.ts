/**
 * OffsetFetch (key 9), versions 0–8.
 *
 * Behaviour:
 * - Committed offset, leader epoch (v5+) and metadata per requested partition; -1 and "" for a
 *   partition (or group) with no commit.
 * - v2+: null topics means every partition the group has offsets for; a top-level error code.
 * - v7: require_stable is accepted; with no transactional offsets pending there is never an
 *   UNSTABLE_OFFSET_COMMIT to report.
 * - v8: `groups[]` — several groups in one request, one result each.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { OffsetFetchApi, type OffsetFetchResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';

export const offsetFetchHandler = defineHandler({
  api: OffsetFetchApi,
  minVersion: 0,
  maxVersion: 8,
  handle(req, ctx): OffsetFetchResponse {
    const v = ctx.version;
    const gc = ctx.broker.groupCoordinator;
    const lookup = (groupId: string, topics: Array<{ name: string; partitionIndexes: number[] }> | null) =>
      gc.fetchOffsets(groupId, topics === null ? null : topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes })));
    const toPartitions = (ps: ReturnType<typeof lookup>['topics'][number]['partitions']) =>
      ps.map((p) => ({ partitionIndex: p.partition, committedOffset: p.offset, committedLeaderEpoch: p.leaderEpoch, metadata: p.metadata, errorCode: p.errorCode }));
    if (v >= 8) {
      return {
        throttleTimeMs: 0,
        topics: [],
        errorCode: ErrorCode.NONE,
        groups: req.groups.map((g) => {
          const r = lookup(g.groupId, g.topics);
          return { groupId: g.groupId, errorCode: r.errorCode, topics: r.topics.map((t) => ({ name: t.name, partitions: toPartitions(t.partitions) })) };
        }),
      };
    }
    // v0–1 cannot ask for all topics; a null there is treated as empty.
    const topics = req.topics === null && v < 2 ? [] : req.topics;
    const r = lookup(req.groupId, topics);
    const withError = (ps: ReturnType<typeof toPartitions>) => (v < 2 && r.errorCode !== ErrorCode.NONE ? ps.map((p) => ({ ...p, errorCode: r.errorCode })) : ps);
    return {
      throttleTimeMs: 0,
      topics: r.topics.map((t) => ({ name: t.name, partitions: withError(toPartitions(t.partitions)) })),
      errorCode: r.errorCode,
      groups: [],
    };
  },
});
