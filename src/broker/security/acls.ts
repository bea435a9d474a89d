/**
 * ACL bindings and filters as the CreateAcls / DescribeAcls / DeleteAcls apis carry them (Kafka's
 * codes), and the controller operations that commit them to the metadata log as Acl / RemoveAcl
 * records.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../../protocol/errors.js';
import type { Controller } from '../metadata/controller.js';
import type { MetadataRecord } from '../metadata/image.js';
import type { DeleteAclsRequestDeleteAclsFilter, DeleteAclsResponseDeleteAclsMatchingAcl } from '../../protocol/messages/index.js';
import type { AclBinding, Operation, PatternTypeName, Permission, ResourceTypeName, SecurityImage } from '../metadata/security-image.js';
import { CLUSTER_NAME, OPERATION_BY_CODE, OPERATION_CODE, PATTERN_CODE, PERMISSION_CODE, RESOURCE_TYPE_BY_CODE, RESOURCE_TYPE_CODE, WILDCARD } from './authorizer.js';

/** Filter codes: ANY matches everything; MATCH (pattern type) matches what applies to a name. */
const ANY = 1;
const MATCH = 2;

/** An ACL binding as the wire carries it (DescribeAcls / DeleteAcls answers). */
export type WireAcl = Omit<DeleteAclsResponseDeleteAclsMatchingAcl, 'errorCode' | 'errorMessage'>;

/** An ACL filter as DescribeAcls and DeleteAcls carry it. */
export type WireAclFilter = DeleteAclsRequestDeleteAclsFilter;

export function toWire(a: AclBinding): WireAcl {
  return {
    resourceType: RESOURCE_TYPE_CODE[a.resourceType],
    resourceName: a.resourceName,
    patternType: PATTERN_CODE[a.patternType],
    principal: a.principal,
    host: a.host,
    operation: OPERATION_CODE[a.operation],
    permissionType: PERMISSION_CODE[a.permission],
  };
}

/** A binding from the wire, or why it cannot be created (INVALID_REQUEST). */
export function fromWire(w: WireAcl): AclBinding | string {
  const resourceType = RESOURCE_TYPE_BY_CODE.get(w.resourceType);
  if (resourceType === undefined) return `Invalid resource type ${w.resourceType}: expected Topic (2), Group (3), Cluster (4) or TransactionalId (5)`;
  const patternType: PatternTypeName | undefined = w.patternType === PATTERN_CODE.Literal ? 'Literal' : w.patternType === PATTERN_CODE.Prefixed ? 'Prefixed' : undefined;
  if (patternType === undefined) return `Invalid pattern type ${w.patternType}: expected LITERAL (3) or PREFIXED (4)`;
  if (w.resourceName === '') return 'Resource name must not be empty';
  if (resourceType === 'Cluster' && (w.resourceName !== CLUSTER_NAME || patternType !== 'Literal')) return `The only valid name for the CLUSTER resource is ${CLUSTER_NAME}`;
  if (patternType === 'Prefixed' && w.resourceName === WILDCARD) return 'A PREFIXED pattern cannot be the wildcard *';
  if (!/^[^:]+:.+$/.test(w.principal)) return `Invalid principal '${w.principal}': expected Type:name, e.g. User:alice`;
  if (w.host === '') return 'Host must not be empty (use * for any host)';
  const operation = OPERATION_BY_CODE.get(w.operation);
  if (operation === undefined) return `Invalid operation ${w.operation}`;
  const permission: Permission | undefined = w.permissionType === PERMISSION_CODE.Allow ? 'Allow' : w.permissionType === PERMISSION_CODE.Deny ? 'Deny' : undefined;
  if (permission === undefined) return `Invalid permission type ${w.permissionType}: expected DENY (2) or ALLOW (3)`;
  return { resourceType, resourceName: w.resourceName, patternType, principal: w.principal, host: w.host, operation, permission };
}

/** Why a filter is malformed, or null. */
export function invalidFilter(f: WireAclFilter): string | null {
  if (f.resourceTypeFilter !== ANY && !RESOURCE_TYPE_BY_CODE.has(f.resourceTypeFilter)) return `Invalid resource type filter ${f.resourceTypeFilter}`;
  if (![ANY, MATCH, PATTERN_CODE.Literal, PATTERN_CODE.Prefixed].includes(f.patternTypeFilter)) return `Invalid pattern type filter ${f.patternTypeFilter}`;
  if (f.operation !== ANY && !OPERATION_BY_CODE.has(f.operation)) return `Invalid operation filter ${f.operation}`;
  if (f.permissionType !== ANY && f.permissionType !== PERMISSION_CODE.Allow && f.permissionType !== PERMISSION_CODE.Deny) return `Invalid permission type filter ${f.permissionType}`;
  return null;
}

export function matchesFilter(a: AclBinding, f: WireAclFilter): boolean {
  if (f.resourceTypeFilter !== ANY && RESOURCE_TYPE_CODE[a.resourceType] !== f.resourceTypeFilter) return false;
  if (f.patternTypeFilter === MATCH) {
    // ACLs that apply to the named resource: that literal name, the wildcard, or a prefix of it.
    if (f.resourceNameFilter !== null) {
      const n = f.resourceNameFilter;
      const applies = a.patternType === 'Literal' ? a.resourceName === n || a.resourceName === WILDCARD : n.startsWith(a.resourceName);
      if (!applies) return false;
    }
  } else {
    if (f.patternTypeFilter !== ANY && PATTERN_CODE[a.patternType] !== f.patternTypeFilter) return false;
    if (f.resourceNameFilter !== null && a.resourceName !== f.resourceNameFilter) return false;
  }
  if (f.principalFilter !== null && a.principal !== f.principalFilter) return false;
  if (f.hostFilter !== null && a.host !== f.hostFilter) return false;
  if (f.operation !== ANY && OPERATION_CODE[a.operation] !== f.operation) return false;
  if (f.permissionType !== ANY && PERMISSION_CODE[a.permission] !== f.permissionType) return false;
  return true;
}

const sameBinding = (a: AclBinding, b: AclBinding): boolean =>
  a.resourceType === b.resourceType &&
  a.resourceName === b.resourceName &&
  a.patternType === b.patternType &&
  a.principal === b.principal &&
  a.host === b.host &&
  a.operation === b.operation &&
  a.permission === b.permission;

export const aclRecord = (id: string, b: AclBinding): MetadataRecord => ({ type: 'Acl', id, ...b });

export interface AclResult {
  errorCode: number;
  errorMessage: string | null;
}

/** Creates bindings (one result each, in order); an existing identical binding is left as is. */
export function createAcls(controller: Controller, creations: readonly WireAcl[]): Promise<AclResult[]> {
  return controller.run((image) => {
    const records: MetadataRecord[] = [];
    const existing = [...image.security.acls.values()];
    const results = creations.map((w): AclResult => {
      const b = fromWire(w);
      if (typeof b === 'string') return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: b };
      if (!existing.some((e) => sameBinding(e, b))) {
        existing.push(b);
        records.push(aclRecord(randomUUID(), b));
      }
      return { errorCode: ErrorCode.NONE, errorMessage: null };
    });
    return { records, result: results };
  });
}

export interface DeleteResult extends AclResult {
  deleted: AclBinding[];
}

/** Deletes every binding matching each filter (a binding matched by two filters is reported by both, deleted once). */
export function deleteAcls(controller: Controller, filters: readonly WireAclFilter[]): Promise<DeleteResult[]> {
  return controller.run((image) => {
    const removed = new Set<string>();
    const results = filters.map((f): DeleteResult => {
      const bad = invalidFilter(f);
      if (bad !== null) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: bad, deleted: [] };
      const deleted: AclBinding[] = [];
      for (const [id, a] of image.security.acls) {
        if (!matchesFilter(a, f)) continue;
        deleted.push(a);
        removed.add(id);
      }
      return { errorCode: ErrorCode.NONE, errorMessage: null, deleted };
    });
    return { records: [...removed].map((id): MetadataRecord => ({ type: 'RemoveAcl', id })), result: results };
  });
}

export function describeAcls(security: SecurityImage, f: WireAclFilter): AclBinding[] {
  return [...security.acls.values()].filter((a) => matchesFilter(a, f));
}

export type { AclBinding, Operation, ResourceTypeName };
