/**
 * SaslHandshake (key 17), versions 0–1.
 *
 * Behaviour:
 * - On a SASL listener, picks the mechanism for this connection (security/sasl.ts): one of
 *   `sasl.enabled.mechanisms`, else UNSUPPORTED_SASL_MECHANISM with the enabled list, and the
 *   connection is closed after the answer (as Kafka).
 * - v0: the exchange that follows is raw (size-prefixed tokens, no Kafka headers); v1: it is
 *   carried by SaslAuthenticate requests. Re-authentication (KIP-368) needs v1 and the same
 *   mechanism.
 * - On a PLAINTEXT or SSL listener, or out of sequence: ILLEGAL_SASL_STATE, then closed.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { SaslHandshakeApi, type SaslHandshakeResponse } from '../../protocol/messages/index.js';
import { defineHandler } from './handler.js';

export const saslHandshakeHandler = defineHandler({
  api: SaslHandshakeApi,
  minVersion: 0,
  maxVersion: 1,
  handle(req, ctx): SaslHandshakeResponse {
    const sasl = ctx.security.sasl;
    if (sasl === null) {
      ctx.security.closeAfterResponse(`SaslHandshake on ${ctx.security.securityProtocol} listener ${ctx.security.listener}`);
      return { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: [] };
    }
    const outcome = sasl.handshake(req.mechanism, ctx.version);
    if (outcome !== 'ok') ctx.security.closeAfterResponse(outcome === 'unsupported' ? `unsupported SASL mechanism ${req.mechanism}` : 'SaslHandshake out of sequence');
    return {
      errorCode: outcome === 'ok' ? ErrorCode.NONE : outcome === 'unsupported' ? ErrorCode.UNSUPPORTED_SASL_MECHANISM : ErrorCode.ILLEGAL_SASL_STATE,
      mechanisms: [...sasl.enabledMechanisms],
    };
  },
});
