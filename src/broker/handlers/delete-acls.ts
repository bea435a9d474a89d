/**
 * DeleteAcls (key 31), versions 0–3.
 *
 * Behaviour:
 * - Each filter (as DescribeAcls') removes every binding it matches, committed as RemoveAcl
 *   records in one metadata batch; its result lists what it removed. A malformed filter:
 *   INVALID_REQUEST for that filter. v0 has no pattern filter (LITERAL).
 * - Needs Alter on the cluster: else CLUSTER_AUTHORIZATION_FAILED for every filter.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DeleteAclsApi, type DeleteAclsResponse } from '../../protocol/messages/index.js';
import { deleteAcls, toWire } from '../security/acls.js';
import { authorizeCluster } from '../security/authorizer.js';
import { defineHandler } from './handler.js';

export const deleteAclsHandler = defineHandler({
  api: DeleteAclsApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<DeleteAclsResponse> {
    if (!authorizeCluster(ctx, 'Alter')) {
      return { throttleTimeMs: 0, filterResults: req.filters.map(() => ({ errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.', matchingAcls: [] })) };
    }
    const filters = req.filters.map((f) => ({ ...f, patternTypeFilter: ctx.version === 0 ? 3 : f.patternTypeFilter }));
    const results = await deleteAcls(ctx.broker.controller, filters);
    return {
      throttleTimeMs: 0,
      filterResults: results.map((r) => ({
        errorCode: r.errorCode,
        errorMessage: r.errorMessage,
        matchingAcls: r.deleted.map((b) => ({ errorCode: ErrorCode.NONE, errorMessage: null, ...toWire(b) })),
      })),
    };
  },
});
