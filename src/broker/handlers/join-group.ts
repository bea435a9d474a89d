/**
 * JoinGroup (key 11), versions 0–9.
 *
 * Behaviour (the state machine is in src/coordinator/group-coordinator.ts):
 * - Answers when the group's join phase completes: every member gets the generation, the chosen
 *   protocol and the leader; only the leader gets the members and their metadata.
 * - v4+: a join with an empty member id is answered MEMBER_ID_REQUIRED with the member id to use
 *   (KIP-394); v0–3 joins are admitted directly. v5+: group.instance.id (static membership,
 *   KIP-345; FENCED_INSTANCE_ID for a stale incarnation).
 * - v0 has no rebalance timeout: the session timeout is used (as Kafka does).
 * - Errors: INVALID_GROUP_ID (empty id), INVALID_SESSION_TIMEOUT (outside
 *   group.min/max.session.timeout.ms), INCONSISTENT_GROUP_PROTOCOL (no protocol in common, or
 *   another protocol type), UNKNOWN_MEMBER_ID, COORDINATOR_NOT_AVAILABLE (group being deleted),
 *   NOT_COORDINATOR (broker shutting down, or the connection closed while waiting).
 * - v7+ echo the protocol type; v9's skip_assignment is always false (no broker-side assignor).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { JoinGroupApi, type JoinGroupResponse } from '../../protocol/messages/index.js';
import type { JoinResult } from '../../coordinator/group.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { clientHostOf, untilAborted } from './coordinator-util.js';

export const joinGroupHandler = defineHandler({
  api: JoinGroupApi,
  minVersion: 0,
  maxVersion: 9,
  async handle(req, ctx): Promise<JoinGroupResponse> {
    const v = ctx.version;
    if (!authorize(ctx, 'Read', 'Group', req.groupId)) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, generationId: -1, protocolType: null, protocolName: v >= 7 ? null : '', leader: '', skipAssignment: false, memberId: req.memberId, members: [] };
    }
    const work = ctx.broker.groupCoordinator.joinGroup({
      groupId: req.groupId,
      memberId: req.memberId,
      groupInstanceId: v >= 5 ? req.groupInstanceId : null,
      clientId: ctx.clientId ?? '',
      clientHost: clientHostOf(ctx),
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: v >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
      requireKnownMemberId: v >= 4,
      reason: v >= 8 ? req.reason : null,
    });
    const r: JoinResult = await untilAborted(work, ctx, () => ({
      errorCode: ErrorCode.NOT_COORDINATOR,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: '',
      memberId: req.memberId,
      members: [],
    }));
    return {
      throttleTimeMs: 0,
      errorCode: r.errorCode,
      generationId: r.generationId,
      protocolType: r.protocolType,
      protocolName: v >= 7 ? r.protocolName : (r.protocolName ?? ''),
      leader: r.leader,
      skipAssignment: false,
      memberId: r.memberId,
      members: r.members,
    };
  },
});
