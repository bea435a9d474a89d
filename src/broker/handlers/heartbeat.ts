/**
 * Heartbeat (key 12), versions 0–4.
 *
 * Behaviour:
 * - Restarts the member's session timeout. REBALANCE_IN_PROGRESS while the group prepares a
 *   rebalance (the member must rejoin); NONE while it waits for the assignment or is Stable.
 * - Errors: UNKNOWN_MEMBER_ID (unknown group or member, or an Empty group), ILLEGAL_GENERATION,
 *   FENCED_INSTANCE_ID (v3+ static member), COORDINATOR_NOT_AVAILABLE (group being deleted).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { HeartbeatApi, type HeartbeatResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const heartbeatHandler = defineHandler({
  api: HeartbeatApi,
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx): HeartbeatResponse {
    if (!authorize(ctx, 'Read', 'Group', req.groupId)) return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED };
    const errorCode = ctx.broker.groupCoordinator.heartbeat({
      groupId: req.groupId,
      memberId: req.memberId,
      groupInstanceId: ctx.version >= 3 ? req.groupInstanceId : null,
      generationId: req.generationId,
    });
    return { throttleTimeMs: 0, errorCode };
  },
});
