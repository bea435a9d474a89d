/**
 * SCRAM credential changes as controller operations: validated against the image, committed to
 * the metadata log as UserScramCredential / RemoveUserScramCredential records.
 */
import { ErrorCode } from '../../protocol/errors.js';
import {
  credentialFromSaltedPassword,
  SCRAM_MAX_ITERATIONS,
  SCRAM_MECHANISM_BY_CODE,
  SCRAM_MIN_ITERATIONS,
  type ScramCredential,
  type ScramMechanism,
} from '../../protocol/scram.js';
import type { Controller } from '../metadata/controller.js';
import type { MetadataRecord } from '../metadata/image.js';

export interface ScramDeletion {
  name: string;
  mechanism: number;
}

export interface ScramUpsertion extends ScramDeletion {
  iterations: number;
  salt: Buffer;
  saltedPassword: Buffer;
}

export interface UserResult {
  user: string;
  errorCode: number;
  errorMessage: string | null;
}

export function credentialRecord(name: string, mechanism: ScramMechanism, c: ScramCredential): MetadataRecord {
  return {
    type: 'UserScramCredential',
    name,
    mechanism,
    salt: c.salt.toString('base64'),
    iterations: c.iterations,
    storedKey: c.storedKey.toString('base64'),
    serverKey: c.serverKey.toString('base64'),
  };
}

export function alterScramCredentials(controller: Controller, deletions: readonly ScramDeletion[], upsertions: readonly ScramUpsertion[]): Promise<UserResult[]> {
  return controller.run((image) => {
    const errors = new Map<string, { errorCode: number; errorMessage: string }>();
    const fail = (user: string, errorCode: number, errorMessage: string): void => {
      if (!errors.has(user)) errors.set(user, { errorCode, errorMessage });
    };
    const seen = new Set<string>();
    const order: string[] = [];
    const check = (op: ScramDeletion): ScramMechanism | null => {
      if (!order.includes(op.name)) order.push(op.name);
      if (op.name === '') {
        fail(op.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, 'Username must not be empty');
        return null;
      }
      const m = SCRAM_MECHANISM_BY_CODE.get(op.mechanism);
      if (m === undefined) {
        fail(op.name, ErrorCode.UNSUPPORTED_SASL_MECHANISM, 'Unknown SCRAM mechanism');
        return null;
      }
      const key = `${op.name}\u0000${m}`;
      if (seen.has(key)) {
        fail(op.name, ErrorCode.DUPLICATE_RESOURCE, 'A user credential cannot be altered twice in the same request');
        return null;
      }
      seen.add(key);
      return m;
    };
    const records: MetadataRecord[] = [];
    const byUser = new Map<string, MetadataRecord[]>();
    const add = (user: string, r: MetadataRecord): void => {
      if (!byUser.has(user)) byUser.set(user, []);
      byUser.get(user)!.push(r);
    };
    for (const d of deletions) {
      const m = check(d);
      if (m === null) continue;
      if (image.security.credential(d.name, m) === undefined) {
        fail(d.name, ErrorCode.RESOURCE_NOT_FOUND, 'Attempt to delete a user credential that does not exist');
        continue;
      }
      add(d.name, { type: 'RemoveUserScramCredential', name: d.name, mechanism: m });
    }
    for (const u of upsertions) {
      const m = check(u);
      if (m === null) continue;
      if (u.iterations < SCRAM_MIN_ITERATIONS || u.iterations > SCRAM_MAX_ITERATIONS) {
        fail(u.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, `Iterations must be between ${SCRAM_MIN_ITERATIONS} and ${SCRAM_MAX_ITERATIONS}`);
        continue;
      }
      if (u.salt.length === 0 || u.saltedPassword.length === 0) {
        fail(u.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, 'Salt and salted password must not be empty');
        continue;
      }
      add(u.name, credentialRecord(u.name, m, credentialFromSaltedPassword(m, u.saltedPassword, u.salt, u.iterations)));
    }
    for (const [user, rs] of byUser) if (!errors.has(user)) records.push(...rs);
    const result = order.map((user): UserResult => {
      const e = errors.get(user);
      return e === undefined ? { user, errorCode: ErrorCode.NONE, errorMessage: null } : { user, ...e };
    });
    return { records, result };
  });
}
