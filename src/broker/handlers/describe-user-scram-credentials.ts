/**
 * DescribeUserScramCredentials (key 50), version 0.
 *
 * Behaviour:
 * - `users` null or empty: every user with a credential; else the named users, each with its
 *   mechanisms and iterations (never salts or keys). A user without a credential:
 *   RESOURCE_NOT_FOUND; a user named twice: DUPLICATE_RESOURCE (per user).
 * - Needs Describe on the cluster (authorizer on): else CLUSTER_AUTHORIZATION_FAILED at the top.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeUserScramCredentialsApi, type DescribeUserScramCredentialsResponse } from '../../protocol/messages/index.js';
import { SCRAM_MECHANISM_CODE } from '../../protocol/scram.js';
import { authorizeCluster } from '../security/authorizer.js';
import { defineHandler } from './handler.js';

export const describeUserScramCredentialsHandler = defineHandler({
  api: DescribeUserScramCredentialsApi,
  minVersion: 0,
  maxVersion: 0,
  handle(req, ctx): DescribeUserScramCredentialsResponse {
    if (!authorizeCluster(ctx, 'Describe')) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: 'Cluster authorization failed.', results: [] };
    }
    const scram = ctx.broker.image.security.scram;
    const describe = (user: string): DescribeUserScramCredentialsResponse['results'][number] => {
      const creds = scram.get(user);
      if (creds === undefined) return { user, errorCode: ErrorCode.RESOURCE_NOT_FOUND, errorMessage: 'Attempt to describe a user credential that does not exist', credentialInfos: [] };
      return {
        user,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        credentialInfos: [...creds].map(([m, c]) => ({ mechanism: SCRAM_MECHANISM_CODE[m], iterations: c.iterations })),
      };
    };
    if (req.users === null || req.users.length === 0) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, results: [...scram.keys()].sort().map(describe) };
    }
    const counts = new Map<string, number>();
    for (const u of req.users) counts.set(u.name, (counts.get(u.name) ?? 0) + 1);
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      results: [...counts].map(([user, n]) =>
        n > 1 ? { user, errorCode: ErrorCode.DUPLICATE_RESOURCE, errorMessage: 'Cannot describe SCRAM credentials for the same user twice in a single request', credentialInfos: [] } : describe(user),
      ),
    };
  },
});
