/**
 * What a failed authentication costs: a log line without secrets, a count in the broker's
 * metrics, and `connection.failed.authentication.delay.ms` before the answer (Kafka's delayed
 * close), so guessing passwords is slow. The delay is a timer, not work: other connections are
 * served meanwhile, and it ends early when the broker shuts down.
 */
import type { Broker } from '../broker.js';
import type { Logger } from '../logger.js';
import type { AuthenticationError } from './sasl.js';

export interface FailureContext {
  readonly broker: Broker;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly connectionId: string;
  readonly security: { readonly listener: string; readonly clientHost: string };
}

export async function authenticationFailed(ctx: FailureContext, mechanism: string, e: AuthenticationError): Promise<void> {
  ctx.broker.metrics.authenticationFailures++;
  ctx.logger.info('authentication failed', {
    connection: ctx.connectionId,
    listener: ctx.security.listener,
    remote: ctx.security.clientHost,
    mechanism,
    user: e.user,
    reason: e.message,
  });
  const delayMs = ctx.broker.config.number('connection.failed.authentication.delay.ms');
  if (delayMs <= 0 || ctx.signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, delayMs);
    ctx.signal.addEventListener('abort', done);
  });
}
