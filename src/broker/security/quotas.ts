/**
 * Client quotas (Kafka's ClientQuotaManager): byte-rate quotas on produce and fetch and a
 * request-time quota, per user and/or client id, kept in the metadata log (ClientQuota records)
 * and managed with AlterClientQuotas / DescribeClientQuotas.
 *
 * Which quota applies to a (user, client id) is Kafka's precedence, most specific first:
 *   /users/<user>/clients/<client-id>, /users/<user>/clients/<default>, /users/<user>,
 *   /users/<default>/clients/<client-id>, /users/<default>/clients/<default>, /users/<default>,
 *   /clients/<client-id>, /clients/<default>.
 * Clients that resolve to the same entity share one rate (a /users/alice quota is for all of
 * alice's clients together).
 *
 * Enforcement as Kafka since KIP-219: the response goes out at once, carrying throttle_time_ms,
 * and the connection is muted (not read) for that long. The rate is measured over
 * `quota.window.num` samples of `quota.window.size.seconds` each; the throttle time is how long
 * the entity must stay silent for its rate over that window to come back to the quota, at most
 * the whole window.
 *
 * Quotas: `producer_byte_rate` (record bytes produced per second), `consumer_byte_rate` (record
 * bytes fetched per second), `request_percentage` (the share of one handler's time, in percent,
 * measured as the time from decoding a request to its response being ready, not counting a
 * fetch's long-poll wait).
 */
import { ErrorCode } from '../../protocol/errors.js';
import type { BrokerConfig } from '../config.js';
import type { Controller } from '../metadata/controller.js';
import type { MetadataRecord } from '../metadata/image.js';
import { quotaEntityKey, type QuotaEntity, type SecurityImage } from '../metadata/security-image.js';

export const QUOTA_KEYS = ['producer_byte_rate', 'consumer_byte_rate', 'request_percentage'] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];

export const ENTITY_USER = 'user';
export const ENTITY_CLIENT_ID = 'client-id';

/** The quota entity that applies to (user, clientId) for `key`, and its value; null when none. */
export function resolveQuota(security: SecurityImage, user: string, clientId: string, key: QuotaKey): { entity: QuotaEntity; value: number } | null {
  if (security.quotas.size === 0) return null;
  const candidates: QuotaEntity[] = [
    { user, clientId },
    { user, clientId: null },
    { user },
    { user: null, clientId },
    { user: null, clientId: null },
    { user: null },
    { clientId },
    { clientId: null },
  ];
  for (const entity of candidates) {
    const q = security.quotas.get(quotaEntityKey(entity));
    const value = q?.values.get(key);
    if (value !== undefined) return { entity, value };
  }
  return null;
}

/** One entity's rate: byte (or millisecond) counts in fixed windows, the last `samples` kept. */
class Rate {
  private readonly starts: number[] = [];
  private readonly counts: number[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly samples: number,
  ) {}

  record(amount: number, nowMs: number): void {
    const start = nowMs - (nowMs % this.windowMs);
    if (this.starts.length === 0 || this.starts[this.starts.length - 1] !== start) {
      this.starts.push(start);
      this.counts.push(0);
    }
    this.counts[this.counts.length - 1]! += amount;
    while (this.starts.length > 0 && this.starts[0]! <= nowMs - this.windowMs * this.samples) {
      this.starts.shift();
      this.counts.shift();
    }
  }

  /**
   * How long (ms) nothing more may be recorded for the rate over the window to be at most
   * `quotaPerSecond`: (total / quota) − elapsed, where elapsed runs from the oldest sample kept.
   */
  throttleMs(quotaPerSecond: number, nowMs: number): number {
    if (this.starts.length === 0) return 0;
    const total = this.counts.reduce((a, b) => a + b, 0);
    const elapsedMs = Math.max(this.windowMs, nowMs - this.starts[0]!);
    const ms = (total / quotaPerSecond) * 1000 - elapsedMs;
    return Math.max(0, Math.min(Math.round(ms), this.windowMs * this.samples));
  }
}

export class QuotaManager {
  private readonly rates = new Map<string, Rate>();
  private readonly windowMs: number;
  private readonly samples: number;

  constructor(config: BrokerConfig) {
    this.windowMs = config.number('quota.window.size.seconds') * 1000;
    this.samples = config.number('quota.window.num');
  }

  /**
   * Records `amount` (bytes, or handler milliseconds for request_percentage) for the client and
   * returns the throttle time its quota calls for (0 without a quota).
   */
  record(security: SecurityImage, key: QuotaKey, user: string, clientId: string, amount: number, nowMs = Date.now()): number {
    const q = resolveQuota(security, user, clientId, key);
    if (q === null) return 0;
    const id = `${key}\u0000${quotaEntityKey(q.entity)}\u0000${q.entity.user === null ? user : ''}\u0000${q.entity.clientId === null ? clientId : ''}`;
    let rate = this.rates.get(id);
    if (rate === undefined) this.rates.set(id, (rate = new Rate(this.windowMs, this.samples)));
    rate.record(amount, nowMs);
    // request_percentage: percent of one handler's time, i.e. quota/100 ms of handling per ms.
    const perSecond = key === 'request_percentage' ? (q.value / 100) * 1000 : q.value;
    return rate.throttleMs(perSecond, nowMs);
  }
}

/** The user name of a principal for quotas (`User:alice` → alice); ANONYMOUS for unauthenticated clients. */
export const quotaUser = (principal: string): string => (principal.startsWith('User:') ? principal.slice(5) : principal);

export interface WireEntity {
  entityType: string;
  entityName: string | null;
}

/** Parses an entity from the wire, or says why not (INVALID_REQUEST). */
export function entityFromWire(parts: readonly WireEntity[]): QuotaEntity | string {
  const e: QuotaEntity = {};
  for (const p of parts) {
    if (p.entityType === ENTITY_USER) {
      if ('user' in e) return 'Duplicate user entity type';
      e.user = p.entityName;
    } else if (p.entityType === ENTITY_CLIENT_ID) {
      if ('clientId' in e) return 'Duplicate client-id entity type';
      e.clientId = p.entityName;
    } else if (p.entityType === 'ip') {
      return 'IP quotas are not supported';
    } else {
      return `Unknown entity type ${p.entityType}`;
    }
  }
  if (e.user === undefined && e.clientId === undefined) return 'The entity must name a user or a client-id';
  return e;
}

export function entityToWire(e: QuotaEntity): WireEntity[] {
  const out: WireEntity[] = [];
  if (e.user !== undefined) out.push({ entityType: ENTITY_USER, entityName: e.user });
  if (e.clientId !== undefined) out.push({ entityType: ENTITY_CLIENT_ID, entityName: e.clientId });
  return out;
}

export interface QuotaEntry {
  entity: readonly WireEntity[];
  ops: ReadonlyArray<{ key: string; value: number; remove: boolean }>;
}

export function alterClientQuotas(controller: Controller, entries: readonly QuotaEntry[], validateOnly: boolean): Promise<Array<{ errorCode: number; errorMessage: string | null }>> {
  return controller.run(() => {
    const records: MetadataRecord[] = [];
    const results = entries.map((entry) => {
      const entity = entityFromWire(entry.entity);
      if (typeof entity === 'string') return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: entity };
      const mine: MetadataRecord[] = [];
      const seen = new Set<string>();
      for (const op of entry.ops) {
        if (!(QUOTA_KEYS as readonly string[]).includes(op.key)) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Unknown quota key ${op.key}: expected ${QUOTA_KEYS.join(', ')}` };
        if (seen.has(op.key)) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Duplicate quota key ${op.key}` };
        seen.add(op.key);
        if (!op.remove && !(Number.isFinite(op.value) && op.value > 0)) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `${op.key} must be a positive number, got ${op.value}` };
        mine.push({ type: 'ClientQuota', entity, key: op.key, value: op.remove ? null : op.value });
      }
      if (!validateOnly) records.push(...mine);
      return { errorCode: ErrorCode.NONE, errorMessage: null };
    });
    return { records, result: results };
  });
}

export interface QuotaFilterComponent {
  entityType: string;
  /** 0 EXACT (match; null = the default entity), 1 DEFAULT, 2 SPECIFIED (any name but the default). */
  matchType: number;
  match: string | null;
}

/** DescribeClientQuotas: the entities matching every component (and, strict, no other types). */
export function describeClientQuotas(security: SecurityImage, components: readonly QuotaFilterComponent[], strict: boolean): Array<{ entity: QuotaEntity; values: ReadonlyMap<string, number> }> | string {
  for (const c of components) {
    if (c.entityType !== ENTITY_USER && c.entityType !== ENTITY_CLIENT_ID) return `Unsupported entity type ${c.entityType}`;
    if (c.matchType < 0 || c.matchType > 2) return `Invalid match type ${c.matchType}`;
  }
  const types = new Set(components.map((c) => c.entityType));
  if (types.size !== components.length) return 'Duplicate entity type in the filter';
  return [...security.quotas.values()].filter(({ entity }) => {
    for (const c of components) {
      const name = c.entityType === ENTITY_USER ? entity.user : entity.clientId;
      if (name === undefined) return false;
      if (c.matchType === 0 && name !== c.match) return false;
      if (c.matchType === 1 && name !== null) return false;
      if (c.matchType === 2 && name === null) return false;
    }
    if (strict) {
      if (entity.user !== undefined && !types.has(ENTITY_USER)) return false;
      if (entity.clientId !== undefined && !types.has(ENTITY_CLIENT_ID)) return false;
    }
    return true;
  });
}
