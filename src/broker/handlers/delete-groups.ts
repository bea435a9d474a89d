/**
 * DeleteGroups (key 42), versions 0–2.
 *
 * Behaviour:
 * - Deletes groups with no members: their committed offsets and metadata are tombstoned in
 *   `__consumer_offsets`. GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP while it has
 *   members (or is rebalancing).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DeleteGroupsApi, type DeleteGroupsResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const deleteGroupsHandler = defineHandler({
  api: DeleteGroupsApi,
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx): Promise<DeleteGroupsResponse> {
    const allowed = req.groupsNames.filter((g) => authorize(ctx, 'Delete', 'Group', g));
    const results = allowed.length > 0 ? await ctx.broker.groupCoordinator.deleteGroups(allowed) : [];
    const denied = req.groupsNames.filter((g) => !allowed.includes(g)).map((groupId) => ({ groupId, errorCode: ErrorCode.GROUP_AUTHORIZATION_FAILED }));
    return { throttleTimeMs: 0, results: [...results.map((r) => ({ groupId: r.groupId, errorCode: r.errorCode })), ...denied] };
  },
});
