/**
 * AlterClientQuotas (key 49), versions 0–1.
 *
 * Behaviour:
 * - Each entry sets or removes quotas (producer_byte_rate, consumer_byte_rate,
 *   request_percentage) of one entity (user and/or client-id; a null name is the default
 *   entity), committed as ClientQuota records (security/quotas.ts). `validate_only` checks and
 *   commits nothing.
 * - Per entry: an unknown entity type (ip quotas are not supported) or quota key, a duplicate, or
 *   a value that is not positive: INVALID_REQUEST with a message.
 * - Needs AlterConfigs on the cluster: else CLUSTER_AUTHORIZATION_FAILED for every entry.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { AlterClientQuotasApi, type AlterClientQuotasResponse } from '../../protocol/messages/index.js';
import { authorizeCluster } from '../security/authorizer.js';
import { alterClientQuotas } from '../security/quotas.js';
import { defineHandler } from './handler.js';

export const alterClientQuotasHandler = defineHandler({
  api: AlterClientQuotasApi,
  minVersion: 0,
  maxVersion: 1,
  async handle(req, ctx): Promise<AlterClientQuotasResponse> {
    const results = authorizeCluster(ctx, 'AlterConfigs')
      ? await alterClientQuotas(ctx.broker.controller, req.entries, req.validateOnly)
      : req.entries.map(() => ({ errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.' }));
    return {
      throttleTimeMs: 0,
      entries: req.entries.map((e, i) => ({ ...results[i]!, entity: e.entity.map((x) => ({ entityType: x.entityType, entityName: x.entityName })) })),
    };
  },
});
