/**
 * Which quotas a request is charged to, and the resulting throttle time (quotas.ts): Produce
 * charges its record bytes to producer_byte_rate, a consumer Fetch its response's record bytes to
 * consumer_byte_rate, and every request but ApiVersions and the SASL exchange its handling time
 * to request_percentage (a Fetch without its long-poll wait: it is charged nothing). The largest
 * throttle wins. Without any quota in the metadata image this costs one map size check.
 */
import { ApiKey, type FetchRequest, type FetchResponse, type ProduceRequest } from '../../protocol/messages/index.js';
import { recordsInMemory } from '../../protocol/writer.js';
import type { Broker } from '../broker.js';
import { quotaUser } from './quotas.js';

const EXEMPT: ReadonlySet<number> = new Set([ApiKey.ApiVersions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate]);

export function throttleFor(broker: Broker, principal: string, clientId: string, apiKey: number, request: unknown, response: unknown, elapsedMs: number): number {
  const security = broker.image.security;
  if (security.quotas.size === 0 || EXEMPT.has(apiKey)) return 0;
  const user = quotaUser(principal);
  const quotas = broker.quotas;
  let throttle = 0;
  if (apiKey === ApiKey.Produce) {
    let bytes = 0;
    for (const t of (request as ProduceRequest).topicData) for (const p of t.partitionData) bytes += recordsInMemory(p.records)?.length ?? 0;
    throttle = Math.max(throttle, quotas.record(security, 'producer_byte_rate', user, clientId, bytes));
  } else if (apiKey === ApiKey.Fetch && (request as FetchRequest).replicaId < 0 && response !== null) {
    let bytes = 0;
    for (const t of (response as FetchResponse).responses) for (const p of t.partitions) bytes += p.records?.length ?? 0;
    throttle = Math.max(throttle, quotas.record(security, 'consumer_byte_rate', user, clientId, bytes));
  }
  if (apiKey !== ApiKey.Fetch) throttle = Math.max(throttle, quotas.record(security, 'request_percentage', user, clientId, elapsedMs));
  return throttle;
}
