/**
 * Requests from this broker to another (Kafka's NetworkClient / InterBrokerSendThread, for what
 * the transaction coordinator sends: WriteTxnMarkers to the leaders of the partitions of a
 * transaction).
 *
 * One connection per broker id — the client's Connection (src/client/connection.ts), as the
 * replica fetchers use — to the endpoint the metadata image registers for it (its
 * `inter.broker.listener.name`), opened on first use and again after a failure; requests are
 * pipelined and answers matched by correlation id. Every request has the deadline
 * `request.timeout.ms`: when it passes, or the connection fails, the request rejects with a
 * retriable error (NETWORK_EXCEPTION, REQUEST_TIMED_OUT, BROKER_NOT_AVAILABLE) and the caller
 * retries, as the coordinator's marker phase does. The endpoint is looked up again on every
 * request, so a broker that re-registers elsewhere is followed. PLAINTEXT only (no TLS or SASL on
 * the inter-broker listener yet).
 */
import { Connection, type ApiDef } from '../client/connection.js';
import { StrandError } from '../client/errors.js';

export class InterBrokerClient {
  private readonly connections = new Map<number, Promise<Connection>>();
  private closed = false;

  constructor(
    private readonly clientId: string,
    /** The endpoint of a broker id now (from the metadata image), or undefined when unknown. */
    private readonly endpointOf: (brokerId: number) => { host: string; port: number } | undefined,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Sends `body` as `version` of `api` to broker `brokerId` and resolves with the decoded response. */
  async request<Req, Res>(brokerId: number, api: ApiDef<Req, Res>, body: Req, version: number): Promise<Res> {
    const conn = await this.connectionTo(brokerId);
    return conn.request(api, body, { version });
  }

  private async connectionTo(brokerId: number): Promise<Connection> {
    if (this.closed) throw unavailable('the inter-broker client is closed');
    const ep = this.endpointOf(brokerId);
    if (ep === undefined) throw unavailable(`broker ${brokerId} is not registered`);
    const current = this.connections.get(brokerId);
    if (current !== undefined) {
      const conn = await current.catch(() => null);
      if (conn !== null && !conn.closed && conn.host === ep.host && conn.port === ep.port) return conn;
      conn?.close();
      if (this.connections.get(brokerId) === current) this.connections.delete(brokerId);
    }
    const opening = Connection.connect({
      host: ep.host,
      port: ep.port,
      nodeId: brokerId,
      clientId: this.clientId,
      connectTimeoutMs: this.requestTimeoutMs,
      requestTimeoutMs: this.requestTimeoutMs,
    });
    this.connections.set(brokerId, opening);
    try {
      const conn = await opening;
      if (this.closed) conn.close();
      return conn;
    } catch (e) {
      if (this.connections.get(brokerId) === opening) this.connections.delete(brokerId);
      throw unavailable(`cannot connect to broker ${brokerId}: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.connections.values()) c.then((conn) => conn.close(), () => undefined);
    this.connections.clear();
  }
}

function unavailable(message: string): StrandError {
  return new StrandError('BROKER_NOT_AVAILABLE', message, { retriable: true, needsMetadataRefresh: true });
}
