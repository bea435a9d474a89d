/**
 * DescribeAcls (key 29), versions 0–3.
 *
 * Behaviour:
 * - Answers the bindings matching the filter, grouped by resource (type, name, pattern type).
 *   Filters as Kafka: ANY (1) matches every value, a null name / principal / host any; the MATCH
 *   pattern type (2) gives every binding that applies to the named resource (its literal name,
 *   the wildcard, and prefixes of it). v0 has no pattern filter (LITERAL).
 * - A malformed filter: INVALID_REQUEST. Needs Describe on the cluster: else
 *   CLUSTER_AUTHORIZATION_FAILED.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeAclsApi, type DescribeAclsResponse } from '../../protocol/messages/index.js';
import { describeAcls, invalidFilter, toWire } from '../security/acls.js';
import { authorizeCluster } from '../security/authorizer.js';
import { defineHandler } from './handler.js';

export const describeAclsHandler = defineHandler({
  api: DescribeAclsApi,
  minVersion: 0,
  maxVersion: 3,
  handle(req, ctx): DescribeAclsResponse {
    if (!authorizeCluster(ctx, 'Describe')) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.', resources: [] };
    }
    const filter = { ...req, patternTypeFilter: ctx.version === 0 ? 3 : req.patternTypeFilter };
    const bad = invalidFilter(filter);
    if (bad !== null) return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: bad, resources: [] };
    const byResource = new Map<string, DescribeAclsResponse['resources'][number]>();
    for (const b of describeAcls(ctx.broker.image.security, filter)) {
      const w = toWire(b);
      const key = `${w.resourceType}\u0000${w.patternType}\u0000${w.resourceName}`;
      let r = byResource.get(key);
      if (r === undefined) byResource.set(key, (r = { resourceType: w.resourceType, resourceName: w.resourceName, patternType: w.patternType, acls: [] }));
      r.acls.push({ principal: w.principal, host: w.host, operation: w.operation, permissionType: w.permissionType });
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, resources: [...byResource.values()] };
  },
});
