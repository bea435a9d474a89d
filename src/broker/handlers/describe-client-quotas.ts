/**
 * DescribeClientQuotas (key 48), versions 0–1.
 *
 * Behaviour:
 * - Answers the entities with quotas that match every filter component (match type 0 EXACT —
 *   a null match is the default entity —, 1 DEFAULT, 2 SPECIFIED: any name but the default); `strict` leaves out
 *   entities that also name a type the filter does not mention.
 * - An unsupported entity type or match type: INVALID_REQUEST. Needs DescribeConfigs on the
 *   cluster: else CLUSTER_AUTHORIZATION_FAILED.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeClientQuotasApi, type DescribeClientQuotasResponse } from '../../protocol/messages/index.js';
import { authorizeCluster } from '../security/authorizer.js';
import { describeClientQuotas, entityToWire } from '../security/quotas.js';
import { defineHandler } from './handler.js';

export const describeClientQuotasHandler = defineHandler({
  api: DescribeClientQuotasApi,
  minVersion: 0,
  maxVersion: 1,
  handle(req, ctx): DescribeClientQuotasResponse {
    if (!authorizeCluster(ctx, 'DescribeConfigs')) return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.', entries: null };
    const found = describeClientQuotas(ctx.broker.image.security, req.components, req.strict);
    if (typeof found === 'string') return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: found, entries: null };
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      entries: found.map((q) => ({ entity: entityToWire(q.entity), values: [...q.values].map(([key, value]) => ({ key, value })) })),
    };
  },
});
