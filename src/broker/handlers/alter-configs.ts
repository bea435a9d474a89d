/**
 * AlterConfigs (key 33), versions 0–2.
 *
 * Behaviour:
 * - TOPIC resources: the request's configs become the topic's complete set of overrides (Kafka's
 *   legacy semantics: an override not listed is removed, so the topic falls back to the broker
 *   value or Kafka's default). Unknown names and bad values: INVALID_CONFIG with a message, and
 *   nothing of that resource changes. The controller commits Config records; the replica
 *   manager applies them to the live partitions at once (retention, segment size, max message
 *   bytes, timestamp type, ...).
 * - `validate_only`: checked and answered, nothing committed.
 * - Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; illegal name: INVALID_TOPIC_EXCEPTION.
 * - BROKER resources: dynamic broker configs are not supported yet, so any change answers
 *   INVALID_REQUEST saying to set it in server.properties (a broker id other than this node's
 *   also answers INVALID_REQUEST, as Kafka).
 * - Other resource types: INVALID_REQUEST. A resource named twice: INVALID_REQUEST "Duplicate
 *   resource." (answered once, nothing changed for it).
 * - A config named twice in one resource: the last value wins, as in Kafka's legacy path.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { AlterConfigsApi, type AlterConfigsResponse, type AlterConfigsResponseAlterConfigsResourceResponse } from '../../protocol/messages/index.js';
import { brokerConfigDef } from '../config.js';
import type { AdminResult, TopicConfigChange } from '../metadata/controller.js';
import { brokerResourceError, ResourceType } from './describe-configs.js';
import { defineHandler, type RequestContext } from './handler.js';
import { authorize, authorizeCluster } from '../security/authorizer.js';

export interface ConfigResourceRequest {
  resourceType: number;
  resourceName: string;
  /** The config names the request touches (for the broker-resource answer). */
  names: string[];
  /** Checks that need no state (duplicate keys, bad operations): an error, or null. */
  precheck: AdminResult | null;
  apply: TopicConfigChange['apply'];
}

/** Shared by AlterConfigs and IncrementalAlterConfigs: per-resource answers in request order. */
export async function alterConfigResources(
  ctx: RequestContext,
  resources: ConfigResourceRequest[],
  validateOnly: boolean,
): Promise<AlterConfigsResponseAlterConfigsResourceResponse[]> {
  const broker = ctx.broker;
  const keyOf = (r: ConfigResourceRequest): string => `${r.resourceType}\u0000${r.resourceName}`;
  const counts = new Map<string, number>();
  for (const r of resources) counts.set(keyOf(r), (counts.get(keyOf(r)) ?? 0) + 1);
  const answers: Array<AdminResult | null> = [];
  const topicChanges: TopicConfigChange[] = [];
  const topicSlots: number[] = [];
  const answered = new Set<string>();
  const kept: ConfigResourceRequest[] = [];
  for (const r of resources) {
    if (counts.get(keyOf(r))! > 1) {
      if (answered.has(keyOf(r))) continue;
      answered.add(keyOf(r));
      kept.push(r);
      answers.push({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Duplicate resource.' });
      continue;
    }
    kept.push(r);
    // AlterConfigs on the topic, or on the cluster for broker resources (Kafka's KafkaApis).
    const allowed = r.resourceType === ResourceType.BROKER ? authorizeCluster(ctx, 'AlterConfigs') : r.resourceType === ResourceType.TOPIC ? authorize(ctx, 'AlterConfigs', 'Topic', r.resourceName) : true;
    if (!allowed) {
      answers.push({ errorCode: r.resourceType === ResourceType.BROKER ? ErrorCode.CLUSTER_AUTHORIZATION_FAILED : ErrorCode.TOPIC_AUTHORIZATION_FAILED, errorMessage: 'Authorization failed.' });
      continue;
    }
    if (r.precheck !== null) {
      answers.push(r.precheck);
      continue;
    }
    switch (r.resourceType) {
      case ResourceType.TOPIC:
        topicSlots.push(answers.length);
        answers.push(null);
        topicChanges.push({ topic: r.resourceName, apply: r.apply });
        break;
      case ResourceType.BROKER: {
        const bad = brokerResourceError(r.resourceName, broker.nodeId);
        if (bad !== null) {
          answers.push({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: bad });
        } else if (r.names.length === 0) {
          answers.push({ errorCode: ErrorCode.NONE, errorMessage: null });
        } else {
          const unknown = r.names.find((n) => brokerConfigDef(n) === undefined);
          answers.push(
            unknown !== undefined
              ? { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: `Unknown broker config name: ${unknown}` }
              : {
                  errorCode: ErrorCode.INVALID_REQUEST,
                  errorMessage: `Dynamic broker configs are not supported yet: set ${r.names.join(', ')} in server.properties (or with --override) and restart the broker.`,
                },
          );
        }
        break;
      }
      default:
        answers.push({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unsupported resource type: ${r.resourceType}` });
    }
  }
  if (topicChanges.length > 0) {
    const results = await broker.controller.alterTopicConfigs(topicChanges, validateOnly);
    results.forEach((res, i) => (answers[topicSlots[i]!] = res));
  }
  return kept.map((r, i) => ({ resourceType: r.resourceType, resourceName: r.resourceName, ...answers[i]! }));
}

export const alterConfigsHandler = defineHandler({
  api: AlterConfigsApi,
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx): Promise<AlterConfigsResponse> {
    const resources = req.resources.map(
      (r): ConfigResourceRequest => ({
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        names: r.configs.map((c) => c.name),
        precheck: null,
        apply: () => new Map(r.configs.map((c) => [c.name, c.value])),
      }),
    );
    return { throttleTimeMs: 0, responses: await alterConfigResources(ctx, resources, req.validateOnly) };
  },
});
