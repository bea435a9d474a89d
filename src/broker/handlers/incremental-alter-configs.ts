/**
 * IncrementalAlterConfigs (key 44), versions 0–1.
 *
 * Behaviour:
 * - TOPIC resources: each config carries an operation on the topic's current overrides —
 *   SET (0) sets the override, DELETE (1) removes it (removing one that is not set is fine, an unknown name is INVALID_CONFIG),
 *   APPEND (2) / SUBTRACT (3) add or remove items of a list config (cleanup.policy), starting
 *   from the override or else Kafka's default. APPEND/SUBTRACT of a non-list config, an unknown
 *   name or a bad value: INVALID_CONFIG, and nothing of that resource changes. The edit is
 *   computed against the committed overrides inside the controller, so two concurrent
 *   requests never lose each other's changes.
 * - `validate_only`: checked and answered, nothing committed.
 * - A config named twice in one resource, or an unknown operation: INVALID_REQUEST. A resource
 *   named twice: INVALID_REQUEST "Duplicate resource.".
 * - Unknown topic: UNKNOWN_TOPIC_OR_PARTITION. BROKER resources: INVALID_REQUEST (dynamic broker
 *   configs are not supported yet); BROKER_LOGGER and other types: INVALID_REQUEST.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { IncrementalAlterConfigsApi, type IncrementalAlterConfigsResponse } from '../../protocol/messages/index.js';
import { ConfigError, topicConfigDef } from '../config.js';
import type { AdminResult } from '../metadata/controller.js';
import { alterConfigResources, type ConfigResourceRequest } from './alter-configs.js';
import { defineHandler } from './handler.js';

export const OpType = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const;

interface Op {
  name: string;
  configOperation: number;
  value: string | null;
}

const listItems = (v: string | null): string[] =>
  v === null
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');

/** Applies the operations to a topic's overrides; throws ConfigError. */
export function applyOps(current: ReadonlyMap<string, string>, ops: readonly Op[]): Map<string, string | null> {
  const next = new Map<string, string | null>(current);
  for (const op of ops) {
    const def = topicConfigDef(op.name);
    if (def === undefined) throw new ConfigError(`Unknown topic config name: ${op.name}`);
    switch (op.configOperation) {
      case OpType.SET:
        next.set(op.name, op.value);
        break;
      case OpType.DELETE:
        next.delete(op.name);
        break;
      case OpType.APPEND:
      case OpType.SUBTRACT: {
        const verb = op.configOperation === OpType.APPEND ? 'append' : 'subtract';
        if (def.type !== 'list') throw new ConfigError(`Config value ${verb} is not allowed for config key: ${op.name}`);
        const items = listItems(next.has(op.name) ? next.get(op.name)! : def.default);
        const given = listItems(op.value);
        const out = op.configOperation === OpType.APPEND ? [...items, ...given.filter((g) => !items.includes(g))] : items.filter((i) => !given.includes(i));
        next.set(op.name, out.join(','));
        break;
      }
    }
  }
  return next;
}

function precheck(ops: readonly Op[]): AdminResult | null {
  const seen = new Set<string>();
  for (const op of ops) {
    if (seen.has(op.name)) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Error due to duplicate config keys: ${op.name}` };
    seen.add(op.name);
    if (op.configOperation < OpType.SET || op.configOperation > OpType.SUBTRACT) {
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unknown alter config operation type ${op.configOperation} for ${op.name}` };
    }
  }
  return null;
}

export const incrementalAlterConfigsHandler = defineHandler({
  api: IncrementalAlterConfigsApi,
  minVersion: 0,
  maxVersion: 1,
  async handle(req, ctx): Promise<IncrementalAlterConfigsResponse> {
    const resources = req.resources.map(
      (r): ConfigResourceRequest => ({
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        names: r.configs.map((c) => c.name),
        precheck: precheck(r.configs),
        apply: (current) => applyOps(current, r.configs),
      }),
    );
    return { throttleTimeMs: 0, responses: await alterConfigResources(ctx, resources, req.validateOnly) };
  },
});
