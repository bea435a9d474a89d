/**
 * CreateAcls (key 30), versions 0–3.
 *
 * Behaviour:
 * - Each creation becomes an Acl record in the metadata log (security/acls.ts); creating a binding
 *   that exists already is a success that changes nothing. v0 has no pattern type (LITERAL).
 * - A malformed binding (unknown resource type, pattern, operation or permission; a Cluster
 *   resource not named kafka-cluster; a principal that is not Type:name; an empty host):
 *   INVALID_REQUEST for that creation, with a message.
 * - Needs Alter on the cluster: else CLUSTER_AUTHORIZATION_FAILED for every creation.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { CreateAclsApi, type CreateAclsResponse } from '../../protocol/messages/index.js';
import { createAcls } from '../security/acls.js';
import { authorizeCluster } from '../security/authorizer.js';
import { defineHandler } from './handler.js';

export const createAclsHandler = defineHandler({
  api: CreateAclsApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<CreateAclsResponse> {
    if (!authorizeCluster(ctx, 'Alter')) {
      return { throttleTimeMs: 0, results: req.creations.map(() => ({ errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.' })) };
    }
    const creations = req.creations.map((c) => ({ ...c, patternType: ctx.version === 0 ? 3 : c.resourcePatternType }));
    return { throttleTimeMs: 0, results: await createAcls(ctx.broker.controller, creations) };
  },
});
