/**
 * DescribeConfigs (key 32), versions 0–4.
 *
 * Behaviour:
 * - TOPIC resources (type 2): every topic config with its effective value — the topic's override
 *   (DYNAMIC_TOPIC_CONFIG), else the broker's static value of a synonym (STATIC_BROKER_CONFIG,
 *   scaled: log.retention.hours becomes ms), else Kafka's default (DEFAULT_CONFIG). Topic configs
 *   are never read-only. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; illegal name:
 *   INVALID_TOPIC_EXCEPTION (per resource, with a message).
 * - BROKER resources (type 4): the name is this node's id → every broker config Strand reads, with
 *   source STATIC_BROKER_CONFIG when set in server.properties / --override, else DEFAULT_CONFIG;
 *   read_only as each config declares it. The empty name is the cluster-wide dynamic default set,
 *   which holds only what Config records put there (none yet: dynamic broker configs are not
 *   supported). Another id, or a name that is not an integer: INVALID_REQUEST, as Kafka.
 * - Other resource types (BROKER_LOGGER, ...): INVALID_REQUEST "Unsupported resource type".
 * - `configuration_keys` null means all; names that do not exist are left out.
 * - v1+: `include_synonyms` lists the sources in precedence order (topic override, broker static,
 *   default); v3+: `include_documentation` and `config_type`. v0 has `is_default` instead of
 *   `config_source` (set from the same source: default ⇔ DEFAULT_CONFIG). Password configs
 *   (ssl.key.password, inline PEM keys) are sensitive: described with a null value.
 */
import { ErrorCode } from '../../protocol/errors.js';
import {
  DescribeConfigsApi,
  type DescribeConfigsResponse,
  type DescribeConfigsResponseDescribeConfigsResourceResult,
  type DescribeConfigsResponseDescribeConfigsResult,
} from '../../protocol/messages/index.js';
import {
  BROKER_CONFIGS,
  CONFIG_TYPE_CODE,
  ConfigSource,
  TOPIC_CONFIGS,
  brokerConfigDef,
  effectiveTopicConfig,
  type BrokerConfig,
} from '../config.js';
import { invalidTopicName } from '../metadata/controller.js';
import type { MetadataImage } from '../metadata/image.js';
import { defineHandler } from './handler.js';
import { authorize, authorizeCluster } from '../security/authorizer.js';

/** Kafka's ConfigResource.Type codes. */
export const ResourceType = { UNKNOWN: 0, TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 } as const;

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  source: number;
  synonyms: Array<{ name: string; value: string | null; source: number }>;
  configType: number;
  documentation: string;
  /** Password configs: described with a null value, as Kafka does. */
  sensitive?: boolean;
}

/** A topic's configs as Kafka describes them (also the v5+ CreateTopics answer). */
export function topicConfigEntries(overrides: ReadonlyMap<string, string>, broker: BrokerConfig, keys: ReadonlySet<string> | null = null): ConfigEntry[] {
  return TOPIC_CONFIGS.filter((d) => keys === null || keys.has(d.name)).map((d) => {
    const e = effectiveTopicConfig(d.name, overrides, broker);
    return { name: d.name, value: e.value, readOnly: false, source: e.source, synonyms: e.synonyms, configType: CONFIG_TYPE_CODE[d.type], documentation: d.doc };
  });
}

/** This broker's configs (resource name = its node id). */
function brokerConfigEntries(config: BrokerConfig, keys: ReadonlySet<string> | null): ConfigEntry[] {
  return BROKER_CONFIGS.filter((d) => keys === null || keys.has(d.name)).map((d) => {
    const set = config.explicitly(d.name);
    const sensitive = d.type === 'password';
    const synonyms: ConfigEntry['synonyms'] = [];
    if (set !== undefined) synonyms.push({ name: d.name, value: sensitive ? null : set, source: ConfigSource.STATIC_BROKER_CONFIG });
    if (d.default !== null) synonyms.push({ name: d.name, value: d.default, source: ConfigSource.DEFAULT_CONFIG });
    return {
      name: d.name,
      value: sensitive ? null : config.raw(d.name),
      sensitive,
      readOnly: d.readOnly === true,
      source: set !== undefined ? ConfigSource.STATIC_BROKER_CONFIG : ConfigSource.DEFAULT_CONFIG,
      synonyms,
      configType: CONFIG_TYPE_CODE[d.type],
      documentation: d.doc,
    };
  });
}

/** The cluster-wide dynamic broker defaults (resource name ''): whatever Config records set. */
function clusterDefaultEntries(image: MetadataImage, keys: ReadonlySet<string> | null): ConfigEntry[] {
  return [...image.brokerConfigs]
    .filter(([name]) => keys === null || keys.has(name))
    .map(([name, value]) => {
      const def = brokerConfigDef(name);
      const synonyms = [{ name, value, source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG }];
      return { name, value, readOnly: false, source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, synonyms, configType: def ? CONFIG_TYPE_CODE[def.type] : 0, documentation: def?.doc ?? '' };
    });
}

/** The node id a BROKER resource names, or why it is not this broker. */
export function brokerResourceError(name: string, nodeId: number): string | null {
  if (name === '') return null;
  if (!/^-?\d+$/.test(name)) return `Broker id must be an integer, but it is: ${name}`;
  if (Number(name) !== nodeId) return `Unexpected broker id, expected ${nodeId} or empty string, but received ${name}`;
  return null;
}

export const describeConfigsHandler = defineHandler({
  api: DescribeConfigsApi,
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx): DescribeConfigsResponse {
    const broker = ctx.broker;
    const image = broker.image;
    const synonyms = ctx.version >= 1 && req.includeSynonyms;
    const docs = ctx.version >= 3 && req.includeDocumentation;
    const results = req.resources.map((res): DescribeConfigsResponseDescribeConfigsResult => {
      const out = (errorCode: number, errorMessage: string | null, entries: ConfigEntry[] = []): DescribeConfigsResponseDescribeConfigsResult => ({
        errorCode,
        errorMessage,
        resourceType: res.resourceType,
        resourceName: res.resourceName,
        configs: entries.map(
          (e): DescribeConfigsResponseDescribeConfigsResourceResult => ({
            name: e.name,
            value: e.value,
            readOnly: e.readOnly,
            isDefault: e.source === ConfigSource.DEFAULT_CONFIG,
            configSource: e.source,
            isSensitive: e.sensitive === true,
            synonyms: synonyms ? e.synonyms : [],
            configType: e.configType,
            documentation: docs ? e.documentation : null,
          }),
        ),
      });
      const keys = res.configurationKeys === null ? null : new Set(res.configurationKeys);
      if (res.resourceType === ResourceType.TOPIC && !authorize(ctx, 'DescribeConfigs', 'Topic', res.resourceName)) return out(ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Authorization failed.');
      if (res.resourceType === ResourceType.BROKER && !authorizeCluster(ctx, 'DescribeConfigs')) return out(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, 'Authorization failed.');
      switch (res.resourceType) {
        case ResourceType.TOPIC: {
          const bad = invalidTopicName(res.resourceName);
          if (bad !== null) return out(ErrorCode.INVALID_TOPIC_EXCEPTION, bad);
          const topic = image.topic(res.resourceName);
          if (topic === undefined) return out(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `The topic '${res.resourceName}' does not exist.`);
          return out(ErrorCode.NONE, null, topicConfigEntries(topic.configs, broker.config, keys));
        }
        case ResourceType.BROKER: {
          const bad = brokerResourceError(res.resourceName, broker.nodeId);
          if (bad !== null) return out(ErrorCode.INVALID_REQUEST, bad);
          return out(ErrorCode.NONE, null, res.resourceName === '' ? clusterDefaultEntries(image, keys) : brokerConfigEntries(broker.config, keys));
        }
        default:
          return out(ErrorCode.INVALID_REQUEST, `Unsupported resource type: ${res.resourceType}`);
      }
    });
    return { throttleTimeMs: 0, results };
  },
});
