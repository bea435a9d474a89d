/**
 * The client's optional logger: any object with these four methods (console works, so do pino
 * and the broker's logger). The client logs nothing unless one is given.
 */
export interface ClientLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const noop = (): void => {};
export const nullLogger: ClientLogger = { debug: noop, info: noop, warn: noop, error: noop };
