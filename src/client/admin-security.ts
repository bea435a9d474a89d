/**
 * The admin client's security calls: SCRAM users (DescribeUserScramCredentials /
 * AlterUserScramCredentials — the password is salted and hashed here, only the salted password
 * goes to the broker), ACLs (CreateAcls / DescribeAcls / DeleteAcls) and client quotas
 * (AlterClientQuotas / DescribeClientQuotas), with Kafka's names for resource types, pattern
 * types, operations and permissions.
 */
import { randomBytes } from 'node:crypto';
import {
  AlterClientQuotasApi,
  AlterUserScramCredentialsApi,
  CreateAclsApi,
  DeleteAclsApi,
  DescribeAclsApi,
  DescribeClientQuotasApi,
  DescribeUserScramCredentialsApi,
} from '../protocol/messages/index.js';
import { ErrorCode } from '../protocol/errors.js';
import { SCRAM_MECHANISM_BY_CODE, SCRAM_MECHANISM_CODE, SCRAM_MIN_ITERATIONS, saltedPassword, type ScramMechanism } from '../protocol/scram.js';
import type { Connection } from './connection.js';
import { KafkaError, StrandError } from './errors.js';

export type AclResourceType = 'Topic' | 'Group' | 'Cluster' | 'TransactionalId';
export type AclPatternType = 'Literal' | 'Prefixed';
export type AclOperation = 'All' | 'Read' | 'Write' | 'Create' | 'Delete' | 'Alter' | 'Describe' | 'ClusterAction' | 'DescribeConfigs' | 'AlterConfigs' | 'IdempotentWrite';
export type AclPermission = 'Allow' | 'Deny';

export interface AclBinding {
  resourceType: AclResourceType;
  resourceName: string;
  /** Default Literal. */
  patternType?: AclPatternType;
  /** `User:alice`. */
  principal: string;
  /** Default `*` (any host). */
  host?: string;
  operation: AclOperation;
  /** Default Allow. */
  permission?: AclPermission;
}

/** Unset fields match anything; patternType 'Match' finds every ACL that applies to a resource name. */
export interface AclFilter {
  resourceType?: AclResourceType;
  resourceName?: string;
  patternType?: AclPatternType | 'Match';
  principal?: string;
  host?: string;
  operation?: AclOperation;
  permission?: AclPermission;
}

const RESOURCE: Record<AclResourceType, number> = { Topic: 2, Group: 3, Cluster: 4, TransactionalId: 5 };
const PATTERN: Record<AclPatternType | 'Match', number> = { Match: 2, Literal: 3, Prefixed: 4 };
const OPERATION: Record<AclOperation, number> = { All: 2, Read: 3, Write: 4, Create: 5, Delete: 6, Alter: 7, Describe: 8, ClusterAction: 9, DescribeConfigs: 10, AlterConfigs: 11, IdempotentWrite: 12 };
const PERMISSION: Record<AclPermission, number> = { Deny: 2, Allow: 3 };
const ANY = 1;
const nameOf = <T extends string>(table: Record<T, number>, code: number): T => {
  const hit = (Object.entries(table) as Array<[T, number]>).find(([, v]) => v === code);
  if (hit === undefined) throw new StrandError('UNKNOWN', `unexpected code ${code} in an ACL`);
  return hit[0];
};

function wireFilter(f: AclFilter) {
  return {
    resourceTypeFilter: f.resourceType === undefined ? ANY : RESOURCE[f.resourceType],
    resourceNameFilter: f.resourceName ?? null,
    patternTypeFilter: f.patternType === undefined ? ANY : PATTERN[f.patternType],
    principalFilter: f.principal ?? null,
    hostFilter: f.host ?? null,
    operation: f.operation === undefined ? ANY : OPERATION[f.operation],
    permissionType: f.permission === undefined ? ANY : PERMISSION[f.permission],
  };
}

function fromWire(r: { resourceType: number; resourceName: string; patternType: number; principal: string; host: string; operation: number; permissionType: number }): Required<AclBinding> {
  return {
    resourceType: nameOf(RESOURCE, r.resourceType),
    resourceName: r.resourceName,
    patternType: nameOf(PATTERN, r.patternType) as AclPatternType,
    principal: r.principal,
    host: r.host,
    operation: nameOf(OPERATION, r.operation),
    permission: nameOf(PERMISSION, r.permissionType),
  };
}

export interface ScramUser {
  user: string;
  credentials: Array<{ mechanism: ScramMechanism; iterations: number }>;
}

export interface QuotaEntity {
  /** A user name, null for the default user entity; absent when the entity has no user part. */
  user?: string | null;
  clientId?: string | null;
}

const toWireEntity = (e: QuotaEntity) => [
  ...(e.user !== undefined ? [{ entityType: 'user', entityName: e.user }] : []),
  ...(e.clientId !== undefined ? [{ entityType: 'client-id', entityName: e.clientId }] : []),
];

/** The security half of Admin; `controller` gives a connection to the controller. */
export class AdminSecurity {
  constructor(private readonly controller: () => Promise<Connection>) {}

  async describeUserScramCredentials(users?: string[]): Promise<ScramUser[]> {
    const c = await this.controller();
    const r = await c.request(DescribeUserScramCredentialsApi, { users: users === undefined ? null : users.map((name) => ({ name })) });
    if (r.errorCode !== ErrorCode.NONE) throw new KafkaError(r.errorCode, r.errorMessage ?? 'DescribeUserScramCredentials');
    return r.results.map((u) => {
      if (u.errorCode !== ErrorCode.NONE) throw new KafkaError(u.errorCode, `${u.user}: ${u.errorMessage ?? ''}`);
      return { user: u.user, credentials: u.credentialInfos.map((ci) => ({ mechanism: SCRAM_MECHANISM_BY_CODE.get(ci.mechanism) ?? ('SCRAM-SHA-256' as ScramMechanism), iterations: ci.iterations })) };
    });
  }

  /** Sets a user's SCRAM credential: salted here with a random salt; the broker never sees the password. */
  async upsertUserScramCredential(user: string, mechanism: ScramMechanism, password: string, iterations = SCRAM_MIN_ITERATIONS): Promise<void> {
    const salt = randomBytes(32);
    const salted = await saltedPassword(mechanism, password, salt, iterations);
    await this.alterScram([], [{ name: user, mechanism: SCRAM_MECHANISM_CODE[mechanism], iterations, salt, saltedPassword: salted }]);
  }

  async deleteUserScramCredential(user: string, mechanism: ScramMechanism): Promise<void> {
    await this.alterScram([{ name: user, mechanism: SCRAM_MECHANISM_CODE[mechanism] }], []);
  }

  private async alterScram(deletions: Array<{ name: string; mechanism: number }>, upsertions: Array<{ name: string; mechanism: number; iterations: number; salt: Buffer; saltedPassword: Buffer }>): Promise<void> {
    const c = await this.controller();
    const r = await c.request(AlterUserScramCredentialsApi, { deletions, upsertions });
    for (const u of r.results) if (u.errorCode !== ErrorCode.NONE) throw new KafkaError(u.errorCode, `${u.user}: ${u.errorMessage ?? ''}`);
  }

  async createAcls(acls: AclBinding[]): Promise<void> {
    const c = await this.controller();
    const r = await c.request(CreateAclsApi, {
      creations: acls.map((a) => ({
        resourceType: RESOURCE[a.resourceType],
        resourceName: a.resourceName,
        resourcePatternType: PATTERN[a.patternType ?? 'Literal'],
        principal: a.principal,
        host: a.host ?? '*',
        operation: OPERATION[a.operation],
        permissionType: PERMISSION[a.permission ?? 'Allow'],
      })),
    });
    r.results.forEach((x, i) => {
      if (x.errorCode !== ErrorCode.NONE) throw new KafkaError(x.errorCode, `ACL ${JSON.stringify(acls[i])}: ${x.errorMessage ?? ''}`);
    });
  }

  async describeAcls(filter: AclFilter = {}): Promise<Array<Required<AclBinding>>> {
    const c = await this.controller();
    const r = await c.request(DescribeAclsApi, wireFilter(filter));
    if (r.errorCode !== ErrorCode.NONE) throw new KafkaError(r.errorCode, r.errorMessage ?? 'DescribeAcls');
    return r.resources.flatMap((res) => res.acls.map((a) => fromWire({ ...res, ...a })));
  }

  /** Deletes every ACL matching the filter; returns what was deleted. */
  async deleteAcls(filter: AclFilter): Promise<Array<Required<AclBinding>>> {
    const c = await this.controller();
    const r = await c.request(DeleteAclsApi, { filters: [wireFilter(filter)] });
    const f = r.filterResults[0]!;
    if (f.errorCode !== ErrorCode.NONE) throw new KafkaError(f.errorCode, f.errorMessage ?? 'DeleteAcls');
    return f.matchingAcls.map(fromWire);
  }

  /** Sets (a number) or removes (null) quotas of one entity: producer_byte_rate, consumer_byte_rate, request_percentage. */
  async alterClientQuotas(entity: QuotaEntity, quotas: Record<string, number | null>): Promise<void> {
    const c = await this.controller();
    const r = await c.request(AlterClientQuotasApi, {
      entries: [{ entity: toWireEntity(entity), ops: Object.entries(quotas).map(([key, v]) => ({ key, value: v ?? 0, remove: v === null })) }],
      validateOnly: false,
    });
    const e = r.entries[0]!;
    if (e.errorCode !== ErrorCode.NONE) throw new KafkaError(e.errorCode, e.errorMessage ?? 'AlterClientQuotas');
  }

  /** Every entity with quotas (or those matching `entity`, exactly). */
  async describeClientQuotas(entity?: QuotaEntity): Promise<Array<{ entity: QuotaEntity; quotas: Record<string, number> }>> {
    const c = await this.controller();
    const components =
      entity === undefined
        ? []
        : toWireEntity(entity).map((x) => ({ entityType: x.entityType, matchType: x.entityName === null ? 1 : 0, match: x.entityName }));
    const r = await c.request(DescribeClientQuotasApi, { components, strict: entity !== undefined });
    if (r.errorCode !== ErrorCode.NONE) throw new KafkaError(r.errorCode, r.errorMessage ?? 'DescribeClientQuotas');
    return (r.entries ?? []).map((e) => {
      const out: QuotaEntity = {};
      for (const p of e.entity) {
        if (p.entityType === 'user') out.user = p.entityName;
        if (p.entityType === 'client-id') out.clientId = p.entityName;
      }
      return { entity: out, quotas: Object.fromEntries(e.values.map((v) => [v.key, v.value])) };
    });
  }
}
