/**
 * LeaveGroup (key 13), versions 0–5.
 *
 * Behaviour:
 * - v0–2: one member (`member_id`); its result is the top-level error. v3+: a batch of
 *   `members` (member id and/or group.instance.id), one result each (KIP-345); v5 adds a reason,
 *   which is logged.
 * - A member that leaves triggers a rebalance of a Stable or CompletingRebalance group; a member
 *   id handed out with MEMBER_ID_REQUIRED but not yet joined is simply forgotten.
 * - Per member: UNKNOWN_MEMBER_ID (unknown group or member), FENCED_INSTANCE_ID (the instance id
 *   belongs to another member id).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { LeaveGroupApi, type LeaveGroupResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const leaveGroupHandler = defineHandler({
  api: LeaveGroupApi,
  minVersion: 0,
  maxVersion: 5,
  handle(req, ctx): LeaveGroupResponse {
    const v = ctx.version;
    if (!authorize(ctx, 'Read', 'Group', req.groupId)) return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, members: [] };
    const leaving = v >= 3 ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, reason: v >= 5 ? m.reason : null })) : [{ memberId: req.memberId, groupInstanceId: null, reason: null }];
    const r = ctx.broker.groupCoordinator.leaveGroup(req.groupId, leaving);
    if (v < 3) {
      const errorCode = r.errorCode !== ErrorCode.NONE ? r.errorCode : (r.members[0]?.errorCode ?? ErrorCode.NONE);
      return { throttleTimeMs: 0, errorCode, members: [] };
    }
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      members: r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: m.errorCode })),
    };
  },
});
