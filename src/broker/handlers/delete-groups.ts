/**
 * DeleteGroups (key 42), versions 0–2.
 *
 * Behaviour:
 * - Deletes groups with no members: their committed offsets and metadata are tombstoned in
 *   `__consumer_offsets`. GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP while it has
 *   members (or is rebalancing).
 */
import { DeleteGroupsApi, type DeleteGroupsResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';

export const deleteGroupsHandler = defineHandler({
  api: DeleteGroupsApi,
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx): Promise<DeleteGroupsResponse> {
    const results = await ctx.broker.groupCoordinator.deleteGroups(req.groupsNames);
    return { throttleTimeMs: 0, results: results.map((r) => ({ groupId: r.groupId, errorCode: r.errorCode })) };
  },
});
