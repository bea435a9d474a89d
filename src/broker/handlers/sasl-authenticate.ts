/**
 * SaslAuthenticate (key 36), versions 0–2.
 *
 * Behaviour:
 * - Carries one token of the exchange chosen by SaslHandshake v1 (security/sasl.ts) and answers
 *   the server's token. Once complete the connection has its principal; v1+ answers
 *   `session_lifetime_ms` (KIP-368, from `connections.max.reauth.ms`, 0 for none).
 * - Wrong credentials or a malformed token: SASL_AUTHENTICATION_FAILED after
 *   `connection.failed.authentication.delay.ms`, logged without the token, and the connection is
 *   closed after the answer. Out of sequence (no handshake, or not a SASL listener):
 *   ILLEGAL_SASL_STATE, then closed.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { SaslAuthenticateApi, type SaslAuthenticateResponse } from '../../protocol/messages/index.js';
import { AuthenticationError } from '../security/sasl.js';
import { authenticationFailed } from '../security/session.js';
import { defineHandler } from './handler.js';

const EMPTY = Buffer.alloc(0);

export const saslAuthenticateHandler = defineHandler({
  api: SaslAuthenticateApi,
  minVersion: 0,
  maxVersion: 2,
  async handle(req, ctx): Promise<SaslAuthenticateResponse> {
    const sasl = ctx.security.sasl;
    if (sasl === null || sasl.state !== 'authenticate') {
      ctx.security.closeAfterResponse('SaslAuthenticate out of sequence');
      return { errorCode: ErrorCode.ILLEGAL_SASL_STATE, errorMessage: 'SaslAuthenticate before SaslHandshake v1', authBytes: EMPTY, sessionLifetimeMs: 0 };
    }
    try {
      const { response } = await sasl.authenticate(req.authBytes, ctx.broker.image, Date.now);
      return { errorCode: ErrorCode.NONE, errorMessage: null, authBytes: response, sessionLifetimeMs: sasl.sessionLifetimeMs(Date.now()) };
    } catch (e) {
      if (!(e instanceof AuthenticationError)) throw e;
      await authenticationFailed(ctx, sasl.mechanism ?? 'unknown', e);
      ctx.security.closeAfterResponse('authentication failed');
      return {
        errorCode: ErrorCode.SASL_AUTHENTICATION_FAILED,
        errorMessage: `Authentication failed during authentication due to invalid credentials with SASL mechanism ${sasl.mechanism}`,
        authBytes: EMPTY,
        sessionLifetimeMs: 0,
      };
    }
  },
});
