/**
 * Shared by the group handlers: waiting on the coordinator without outliving the connection.
 *
 * A JoinGroup or SyncGroup can wait for a whole rebalance. If the client disconnects or the
 * broker shuts down, the handler answers at once with `onAbort` (a closed connection drops it);
 * the coordinator keeps the member as Kafka would (a member whose response is lost is removed by
 * the rebalance or session timeout, or rejoins).
 */
import type { RequestContext } from './handler.js';

export function untilAborted<T>(work: Promise<T>, ctx: RequestContext, onAbort: () => T): Promise<T> {
  if (ctx.signal.aborted) return Promise.resolve(onAbort());
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => resolve(onAbort());
    ctx.signal.addEventListener('abort', abort, { once: true });
    work.then(
      (v) => {
        ctx.signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        ctx.signal.removeEventListener('abort', abort);
        reject(e);
      },
    );
  });
}

/** The client address Kafka shows for a member ("/127.0.0.1"); the context does not carry it yet. */
export function clientHostOf(ctx: RequestContext): string {
  const host = ctx.security.clientHost;
  return host === '' ? '' : `/${host}`;
}
