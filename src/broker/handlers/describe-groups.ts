/**
 * DescribeGroups (key 15), versions 0–5.
 *
 * Behaviour:
 * - Per group: state, protocol type, and its members (member id, v4+ group.instance.id, client
 *   id, client host). A Stable group also shows the chosen protocol and each member's metadata
 *   and assignment; during a rebalance those are empty (as in Kafka).
 * - An unknown group is described as state "Dead" with no error (Kafka's answer).
 * - v3+: authorized operations when asked (every group operation, as there is no authorizer).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeGroupsApi, type DescribeGroupsResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize, authorizedOperations } from '../security/authorizer.js';

/** AclOperation bits READ 3, DELETE 6, DESCRIBE 8. */
const GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8);
const OMITTED = -2147483648;

export const describeGroupsHandler = defineHandler({
  api: DescribeGroupsApi,
  minVersion: 0,
  maxVersion: 5,
  handle(req, ctx): DescribeGroupsResponse {
    const ops = ctx.version >= 3 && req.includeAuthorizedOperations ? GROUP_OPERATIONS : OMITTED;
    return {
      throttleTimeMs: 0,
      groups: req.groups.map((id) => {
        if (!authorize(ctx, 'Describe', 'Group', id)) {
          return { errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED, groupId: id, groupState: '', protocolType: '', protocolData: '', members: [], authorizedOperations: OMITTED };
        }
        const s = ctx.broker.groupCoordinator.describeGroup(id);
        return {
          errorCode: s.errorCode,
          groupId: id,
          groupState: s.state,
          protocolType: s.protocolType,
          protocolData: s.protocol,
          members: s.members.map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            memberMetadata: m.metadata,
            memberAssignment: m.assignment,
          })),
          authorizedOperations: ops !== OMITTED && ctx.broker.authorizer.enabled ? authorizedOperations(ctx, 'Group', id) : ops,
        };
      }),
    };
  },
});
