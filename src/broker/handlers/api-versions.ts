/**
 * ApiVersions (key 18), versions 0–3.
 *
 * Behaviour:
 * - Lists every api this broker handles with the versions its handler answers (from the handler
 *   registry, so what is advertised is exactly what is implemented).
 * - The response header is always v0 (see protocol/apis.ts).
 * - A request version above 3 is answered at the connection layer with a v0 body carrying
 *   UNSUPPORTED_VERSION and the supported ranges (KIP-511), so the client can retry lower.
 * - v3 client_software_name / version are not validated (optional in KIP-511).
 */
import { ApiVersionsApi, type ApiVersionsResponse } from '../../protocol/messages/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import { defineHandler } from './handler.js';

export function apiVersionsResponse(errorCode: number, apis: ReadonlyArray<{ api: { key: number }; minVersion: number; maxVersion: number }>): ApiVersionsResponse {
  return {
    errorCode,
    apiKeys: apis.map((h) => ({ apiKey: h.api.key, minVersion: h.minVersion, maxVersion: h.maxVersion })).sort((a, b) => a.apiKey - b.apiKey),
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
}

export const apiVersionsHandler = defineHandler({
  api: ApiVersionsApi,
  minVersion: 0,
  maxVersion: 3,
  handle: (_req, ctx) => apiVersionsResponse(ErrorCode.NONE, ctx.broker.handlers),
});
