/**
 * The ACL authorizer (Kafka's StandardAuthorizer), the one place access is decided.
 *
 * Off unless `authorizer.class.name` names Kafka's StandardAuthorizer or AclAuthorizer: then
 * every principal may do everything, as in Kafka without an authorizer. On:
 * - principals in `super.users` may do everything;
 * - a resource (Topic, Group, Cluster "kafka-cluster", TransactionalId) is matched by ACLs with a
 *   literal name (or the wildcard `*`) or a prefix of its name; an ACL applies to a request when
 *   its principal is the caller's (or `User:*`) and its host the client's address (or `*`);
 * - a matching DENY for the operation (or All) refuses, whatever allows: deny beats allow;
 * - else a matching ALLOW for the operation, for All, or for one that implies it grants: Describe
 *   is implied by Read, Write, Delete and Alter; DescribeConfigs by AlterConfigs;
 * - a resource with no ACL at all is allowed only with `allow.everyone.if.no.acl.found=true`.
 * Refusals are logged at debug level with principal, operation and resource.
 *
 * Handlers call `authorize(ctx, ...)` with the session principal from the request context and
 * answer the Kafka error their api uses (TOPIC_/GROUP_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
 */
import { ConfigError, type BrokerConfig } from '../config.js';
import type { RequestContext } from '../handlers/handler.js';
import type { AclBinding, Operation, ResourceTypeName, SecurityImage } from '../metadata/security-image.js';

export const CLUSTER_NAME = 'kafka-cluster';
export const WILDCARD = '*';

const AUTHORIZER_CLASSES = new Set(['org.apache.kafka.metadata.authorizer.StandardAuthorizer', 'kafka.security.authorizer.AclAuthorizer', 'kafka.security.auth.SimpleAclAuthorizer']);

/** Kafka's code tables for the ACL apis. */
export const RESOURCE_TYPE_CODE: Record<ResourceTypeName, number> = { Topic: 2, Group: 3, Cluster: 4, TransactionalId: 5 };
export const RESOURCE_TYPE_BY_CODE = new Map(Object.entries(RESOURCE_TYPE_CODE).map(([k, v]) => [v, k as ResourceTypeName]));
export const OPERATION_CODE: Record<Operation, number> = {
  All: 2,
  Read: 3,
  Write: 4,
  Create: 5,
  Delete: 6,
  Alter: 7,
  Describe: 8,
  ClusterAction: 9,
  DescribeConfigs: 10,
  AlterConfigs: 11,
  IdempotentWrite: 12,
};
export const OPERATION_BY_CODE = new Map(Object.entries(OPERATION_CODE).map(([k, v]) => [v, k as Operation]));
export const PATTERN_CODE = { Literal: 3, Prefixed: 4 } as const;
export const PERMISSION_CODE = { Deny: 2, Allow: 3 } as const;

/** Operations that grant `op` when allowed (besides `op` itself and All). */
const IMPLIED_BY: Partial<Record<Operation, readonly Operation[]>> = {
  Describe: ['Read', 'Write', 'Delete', 'Alter'],
  DescribeConfigs: ['AlterConfigs'],
};

/** Operations that make sense on each resource type (Kafka's AclEntry.supportedOperations). */
export const OPERATIONS_OF: Record<ResourceTypeName, readonly Operation[]> = {
  Topic: ['Read', 'Write', 'Create', 'Delete', 'Alter', 'Describe', 'DescribeConfigs', 'AlterConfigs'],
  Group: ['Read', 'Describe', 'Delete'],
  Cluster: ['Create', 'ClusterAction', 'DescribeConfigs', 'AlterConfigs', 'IdempotentWrite', 'Alter', 'Describe'],
  TransactionalId: ['Describe', 'Write'],
};

export class Authorizer {
  readonly enabled: boolean;
  private readonly superUsers: ReadonlySet<string>;
  private readonly allowIfNoAcl: boolean;
  /** ACLs grouped by resource type, rebuilt when the security image changes. */
  private indexed: { image: SecurityImage; byType: Map<ResourceTypeName, AclBinding[]> } | null = null;

  constructor(config: BrokerConfig) {
    const cls = config.string('authorizer.class.name');
    if (cls !== '' && !AUTHORIZER_CLASSES.has(cls)) {
      throw new ConfigError(`authorizer.class.name=${cls} is not supported: use org.apache.kafka.metadata.authorizer.StandardAuthorizer (or leave it empty for no authorization)`);
    }
    this.enabled = cls !== '';
    this.superUsers = new Set(
      (config.raw('super.users') ?? '')
        .split(';')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
    this.allowIfNoAcl = config.bool('allow.everyone.if.no.acl.found');
  }

  private aclsOf(image: SecurityImage, type: ResourceTypeName): readonly AclBinding[] {
    if (this.indexed === null || this.indexed.image !== image) {
      const byType = new Map<ResourceTypeName, AclBinding[]>();
      for (const a of image.acls.values()) {
        if (!byType.has(a.resourceType)) byType.set(a.resourceType, []);
        byType.get(a.resourceType)!.push(a);
      }
      this.indexed = { image, byType };
    }
    return this.indexed.byType.get(type) ?? [];
  }

  authorize(image: SecurityImage, principal: string, host: string, op: Operation, type: ResourceTypeName, name: string): boolean {
    if (!this.enabled || this.superUsers.has(principal)) return true;
    const onResource = this.aclsOf(image, type).filter(
      (a) => (a.patternType === 'Literal' && (a.resourceName === name || a.resourceName === WILDCARD)) || (a.patternType === 'Prefixed' && name.startsWith(a.resourceName)),
    );
    if (onResource.length === 0) return this.allowIfNoAcl;
    const applies = onResource.filter((a) => (a.principal === principal || a.principal === 'User:*') && (a.host === WILDCARD || a.host === host));
    if (applies.some((a) => a.permission === 'Deny' && (a.operation === op || a.operation === 'All'))) return false;
    const grants = new Set<Operation>([op, 'All', ...(IMPLIED_BY[op] ?? [])]);
    return applies.some((a) => a.permission === 'Allow' && grants.has(a.operation));
  }

  /**
   * Whether some ACL lets the principal do `op` on some resource of `type` (Kafka's
   * authorizeByResourceType, used for idempotent producers): an allow for the operation (or All)
   * that no deny of the same principal on a wildcard covers.
   */
  authorizeAny(image: SecurityImage, principal: string, host: string, op: Operation, type: ResourceTypeName): boolean {
    if (!this.enabled || this.superUsers.has(principal)) return true;
    const applies = this.aclsOf(image, type).filter((a) => (a.principal === principal || a.principal === 'User:*') && (a.host === WILDCARD || a.host === host) && (a.operation === op || a.operation === 'All'));
    if (applies.some((a) => a.permission === 'Deny' && a.patternType === 'Literal' && a.resourceName === WILDCARD)) return false;
    return applies.some((a) => a.permission === 'Allow');
  }

  /** Kafka's authorized_operations bit set for a resource (Metadata / DescribeGroups / DescribeCluster). */
  authorizedOperations(image: SecurityImage, principal: string, host: string, type: ResourceTypeName, name: string): number {
    return OPERATIONS_OF[type].filter((op) => this.authorize(image, principal, host, op, type, name)).reduce((bits, op) => bits | (1 << OPERATION_CODE[op]), 0);
  }
}

type AuthorizeContext = Pick<RequestContext, 'broker' | 'security' | 'logger'>;

/** Whether the caller may do `op` on the resource; logs a refusal at debug level. */
export function authorize(ctx: AuthorizeContext, op: Operation, type: ResourceTypeName, name: string): boolean {
  const authorizer = ctx.broker.authorizer;
  if (!authorizer.enabled) return true;
  const ok = authorizer.authorize(ctx.broker.image.security, ctx.security.principal, ctx.security.clientHost, op, type, name);
  if (!ok) ctx.logger.debug('authorization denied', { principal: ctx.security.principal, host: ctx.security.clientHost, operation: op, resourceType: type, resourceName: name });
  return ok;
}

export function authorizeAny(ctx: AuthorizeContext, op: Operation, type: ResourceTypeName): boolean {
  return ctx.broker.authorizer.authorizeAny(ctx.broker.image.security, ctx.security.principal, ctx.security.clientHost, op, type);
}

export const authorizeCluster = (ctx: AuthorizeContext, op: Operation): boolean => authorize(ctx, op, 'Cluster', CLUSTER_NAME);

export function authorizedOperations(ctx: AuthorizeContext, type: ResourceTypeName, name: string): number {
  return ctx.broker.authorizer.authorizedOperations(ctx.broker.image.security, ctx.security.principal, ctx.security.clientHost, type, name);
}
