/**
 * The shape of an api handler. Each handler file declares the api it serves, the versions it
 * answers (these are what ApiVersions advertises), and a `handle` that takes the decoded request
 * and returns the response (or null for a request that gets none, like an acks=0 produce).
 * Handlers never see bytes on the wire and never touch files; Kafka errors are response data.
 */
import type { Reader } from '../../protocol/reader.js';
import type { Writer } from '../../protocol/writer.js';
import type { RequestHeader } from '../../protocol/messages/index.js';
import type { Broker } from '../broker.js';
import type { Logger } from '../logger.js';
import type { SecurityProtocol } from '../config.js';
import type { SaslServerSession } from '../security/sasl.js';

/** Who is on the other end of a connection, and over what (set by the listener and SASL). */
export interface ConnectionSecurity {
  /** The listener the client connected to (its advertised address is the one Metadata gives). */
  readonly listener: string;
  readonly securityProtocol: SecurityProtocol;
  /** The authenticated principal, `User:<name>`; `User:ANONYMOUS` when there is none. */
  readonly principal: string;
  /** The client's IP address (ACL host matching). */
  readonly clientHost: string;
  /** SASL state on SASL listeners, else null. */
  readonly sasl: SaslServerSession | null;
  /** Closes the connection once the response to this request is written (failed authentication). */
  closeAfterResponse(reason: string): void;
}

export interface ApiCodec<Req, Resp> {
  readonly key: number;
  readonly name: string;
  decodeRequest(r: Reader, version: number): Req;
  encodeResponse(w: Writer, v: Resp, version: number): void;
}

export interface RequestContext {
  readonly broker: Broker;
  readonly header: RequestHeader;
  readonly version: number;
  readonly clientId: string | null;
  readonly connectionId: string;
  readonly logger: Logger;
  /** Aborted when the connection closes or the broker shuts down: long waits end early. */
  readonly signal: AbortSignal;
  readonly security: ConnectionSecurity;
}

export interface ApiHandler<Req = unknown, Resp = unknown> {
  readonly api: ApiCodec<Req, Resp>;
  readonly minVersion: number;
  readonly maxVersion: number;
  handle(request: Req, ctx: RequestContext): Promise<Resp | null> | Resp | null;
}

export function defineHandler<Req, Resp>(h: ApiHandler<Req, Resp>): ApiHandler<Req, Resp> {
  if (h.minVersion > h.maxVersion) throw new Error(`${h.api.name}: empty version range`);
  return h;
}

/**
 * A broker's address as the client should dial it: for this broker, the address advertised for
 * the listener the request came in on (an SSL client gets the SSL port); for another, its
 * registered listener of the same name (as Kafka), else its inter-broker endpoint.
 */
export function endpointFor(ctx: RequestContext, b: { brokerId: number; host: string; port: number; listeners?: ReadonlyArray<{ name: string; host: string; port: number }> }): { host: string; port: number } {
  if (b.brokerId === ctx.broker.nodeId) return ctx.broker.advertisedFor(ctx.security.listener);
  const same = b.listeners?.find((l) => l.name === ctx.security.listener);
  return same !== undefined ? { host: same.host, port: same.port } : { host: b.host, port: b.port };
}
