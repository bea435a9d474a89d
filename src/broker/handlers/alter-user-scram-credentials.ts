/**
 * AlterUserScramCredentials (key 51), version 0.
 *
 * Behaviour:
 * - Upsertions carry the salted password (the client derives it; the password never reaches the
 *   broker); the broker keeps salt, iterations, StoredKey and ServerKey in the metadata log
 *   (security/credentials.ts). Deletions remove one mechanism of a user.
 * - Per user, as Kafka: empty name or empty salt / salted password → UNACCEPTABLE_CREDENTIAL;
 *   unknown mechanism → UNSUPPORTED_SASL_MECHANISM; iterations outside 4096–16384 →
 *   UNACCEPTABLE_CREDENTIAL; the same user and mechanism twice → DUPLICATE_RESOURCE; deleting a
 *   credential that does not exist → RESOURCE_NOT_FOUND. A user with any error changes nothing.
 * - Needs Alter on the cluster (authorizer on): else CLUSTER_AUTHORIZATION_FAILED for every user.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { AlterUserScramCredentialsApi, type AlterUserScramCredentialsResponse } from '../../protocol/messages/index.js';
import { authorizeCluster } from '../security/authorizer.js';
import { alterScramCredentials } from '../security/credentials.js';
import { defineHandler } from './handler.js';

export const alterUserScramCredentialsHandler = defineHandler({
  api: AlterUserScramCredentialsApi,
  minVersion: 0,
  maxVersion: 0,
  async handle(req, ctx): Promise<AlterUserScramCredentialsResponse> {
    if (!authorizeCluster(ctx, 'Alter')) {
      const users = new Set([...req.deletions.map((d) => d.name), ...req.upsertions.map((u) => u.name)]);
      return { throttleTimeMs: 0, results: [...users].map((user) => ({ user, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.' })) };
    }
    return { throttleTimeMs: 0, results: await alterScramCredentials(ctx.broker.controller, req.deletions, req.upsertions) };
  },
});
