/**
 * The security part of the metadata image: SCRAM credentials and ACLs, as applied from the
 * metadata log (Kafka's UserScramCredentialRecord / AccessControlEntryRecord and their removals).
 *
 * A SCRAM credential is stored as salt, iterations, StoredKey and ServerKey (base64 in the JSON
 * record): never a password, nor the salted password. Immutable like MetadataImage.
 */
import type { ScramCredential, ScramMechanism } from '../../protocol/scram.js';

export type ResourceTypeName = 'Topic' | 'Group' | 'Cluster' | 'TransactionalId';
export type PatternTypeName = 'Literal' | 'Prefixed';
export type Operation =
  | 'All'
  | 'Read'
  | 'Write'
  | 'Create'
  | 'Delete'
  | 'Alter'
  | 'Describe'
  | 'ClusterAction'
  | 'DescribeConfigs'
  | 'AlterConfigs'
  | 'IdempotentWrite';
export type Permission = 'Allow' | 'Deny';

export interface AclBinding {
  resourceType: ResourceTypeName;
  resourceName: string;
  patternType: PatternTypeName;
  principal: string;
  host: string;
  operation: Operation;
  permission: Permission;
}

/**
 * A client quota entity: `user` and/or `client-id`; a null name is that type's default entity
 * (`<default>`), an absent one means the entity does not name that type.
 */
export interface QuotaEntity {
  user?: string | null;
  clientId?: string | null;
}

export const quotaEntityKey = (e: QuotaEntity): string => JSON.stringify([e.user === undefined ? 0 : e.user, e.clientId === undefined ? 0 : e.clientId]);

export type SecurityRecord =
  | { type: 'UserScramCredential'; name: string; mechanism: ScramMechanism; salt: string; iterations: number; storedKey: string; serverKey: string }
  | { type: 'RemoveUserScramCredential'; name: string; mechanism: ScramMechanism }
  | ({ type: 'Acl'; id: string } & AclBinding)
  | { type: 'RemoveAcl'; id: string }
  /** `value` null removes the quota. */
  | { type: 'ClientQuota'; entity: QuotaEntity; key: string; value: number | null };

export class SecurityImage {
  static readonly EMPTY = new SecurityImage(new Map(), new Map(), new Map());

  private constructor(
    /** user → mechanism → credential. */
    readonly scram: ReadonlyMap<string, ReadonlyMap<ScramMechanism, ScramCredential>>,
    /** ACL id → binding. */
    readonly acls: ReadonlyMap<string, AclBinding>,
    /** Client quotas by entity key (quotaEntityKey). */
    readonly quotas: ReadonlyMap<string, { entity: QuotaEntity; values: ReadonlyMap<string, number> }>,
  ) {}

  credential(user: string, mechanism: ScramMechanism): ScramCredential | undefined {
    return this.scram.get(user)?.get(mechanism);
  }

  apply(record: SecurityRecord): SecurityImage {
    switch (record.type) {
      case 'UserScramCredential': {
        const scram = new Map(this.scram);
        const mine = new Map(scram.get(record.name) ?? []);
        mine.set(record.mechanism, {
          salt: Buffer.from(record.salt, 'base64'),
          iterations: record.iterations,
          storedKey: Buffer.from(record.storedKey, 'base64'),
          serverKey: Buffer.from(record.serverKey, 'base64'),
        });
        scram.set(record.name, mine);
        return new SecurityImage(scram, this.acls, this.quotas);
      }
      case 'RemoveUserScramCredential': {
        const scram = new Map(this.scram);
        const mine = new Map(scram.get(record.name) ?? []);
        mine.delete(record.mechanism);
        if (mine.size === 0) scram.delete(record.name);
        else scram.set(record.name, mine);
        return new SecurityImage(scram, this.acls, this.quotas);
      }
      case 'Acl': {
        const acls = new Map(this.acls);
        const { type: _type, id, ...binding } = record;
        acls.set(id, binding);
        return new SecurityImage(this.scram, acls, this.quotas);
      }
      case 'RemoveAcl': {
        const acls = new Map(this.acls);
        acls.delete(record.id);
        return new SecurityImage(this.scram, acls, this.quotas);
      }
      case 'ClientQuota': {
        const key = quotaEntityKey(record.entity);
        const quotas = new Map(this.quotas);
        const values = new Map(quotas.get(key)?.values ?? []);
        if (record.value === null) values.delete(record.key);
        else values.set(record.key, record.value);
        if (values.size === 0) quotas.delete(key);
        else quotas.set(key, { entity: record.entity, values });
        return new SecurityImage(this.scram, this.acls, quotas);
      }
    }
  }
}
