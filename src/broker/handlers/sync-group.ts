/**
 * SyncGroup (key 14), versions 0–5.
 *
 * Behaviour:
 * - The leader's SyncGroup carries every member's assignment; it is stored in
 *   `__consumer_offsets` (fsynced) and then handed to every member waiting in SyncGroup. A
 *   follower waits for that; in a Stable group it gets its current assignment at once.
 * - Errors: UNKNOWN_MEMBER_ID (unknown group or member), ILLEGAL_GENERATION,
 *   REBALANCE_IN_PROGRESS (a new rebalance started), FENCED_INSTANCE_ID (v3+ static member),
 *   INCONSISTENT_GROUP_PROTOCOL (v5+ protocol type/name differ from the group's),
 *   NOT_COORDINATOR (shutdown or the connection closed while waiting).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { SyncGroupApi, type SyncGroupResponse } from '../../protocol/messages/index.js';
import { EMPTY_BUFFER } from '../../coordinator/group.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { untilAborted } from './coordinator-util.js';

export const syncGroupHandler = defineHandler({
  api: SyncGroupApi,
  minVersion: 0,
  maxVersion: 5,
  async handle(req, ctx): Promise<SyncGroupResponse> {
    const v = ctx.version;
    if (!authorize(ctx, 'Read', 'Group', req.groupId)) return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, protocolType: null, protocolName: null, assignment: EMPTY_BUFFER };
    const work = ctx.broker.groupCoordinator.syncGroup({
      groupId: req.groupId,
      generationId: req.generationId,
      memberId: req.memberId,
      groupInstanceId: v >= 3 ? req.groupInstanceId : null,
      protocolType: v >= 5 ? req.protocolType : null,
      protocolName: v >= 5 ? req.protocolName : null,
      assignments: req.assignments,
    });
    const r = await untilAborted(work, ctx, () => ({ errorCode: ErrorCode.NOT_COORDINATOR, protocolType: null, protocolName: null, assignment: EMPTY_BUFFER }));
    return { throttleTimeMs: 0, errorCode: r.errorCode, protocolType: r.protocolType, protocolName: r.protocolName, assignment: r.assignment };
  },
});
