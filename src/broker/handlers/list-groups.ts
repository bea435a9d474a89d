/**
 * ListGroups (key 16), versions 0–5.
 *
 * Behaviour:
 * - Every group this broker coordinates (all of them) with its protocol type ("" for a group
 *   that only stores offsets); v4+ also its state, and `states_filter` (case-insensitive) keeps
 *   only groups in those states; v5+ group type "classic" and `types_filter` (a filter without
 *   "classic" lists nothing: Strand has no KIP-848 groups).
 * - While a coordinator partition led here is loading: COORDINATOR_LOAD_IN_PROGRESS. Before
 *   `__consumer_offsets` exists (a cluster creates it on the first FindCoordinator) there are
 *   no groups: an empty list, as Kafka answers.
 */
import { ListGroupsApi, type ListGroupsResponse } from '../../protocol/messages/index.js';
import { OFFSETS_TOPIC } from '../../coordinator/group-records.js';
import { ErrorCode } from '../../protocol/errors.js';
import { defineHandler } from './handler.js';
import { authorize, authorizeCluster } from '../security/authorizer.js';

export const listGroupsHandler = defineHandler({
  api: ListGroupsApi,
  minVersion: 0,
  maxVersion: 5,
  handle(req, ctx): ListGroupsResponse {
    const v = ctx.version;
    const coordinator = ctx.broker.groupCoordinator;
    const types = v >= 5 ? req.typesFilter.map((t) => t.toLowerCase()) : [];
    // Describe on the cluster lists every group; else only the groups the principal may Describe (Kafka).
    const all = authorizeCluster(ctx, 'Describe');
    const groups = (types.length > 0 && !types.includes('classic') ? [] : coordinator.listGroups(v >= 4 ? req.statesFilter : [])).filter(
      (g) => all || authorize(ctx, 'Describe', 'Group', g.groupId),
    );
    return {
      throttleTimeMs: 0,
      errorCode: !coordinator.attached && ctx.broker.image.topic(OFFSETS_TOPIC) === undefined ? ErrorCode.NONE : coordinator.unavailable(),
      groups: groups.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: 'classic' })),
    };
  },
});
