/**
 * One log line per event: `2026-11-29T02:15:14.123Z INFO  [component] message key=value ...`.
 * Levels: debug < info < warn < error; the threshold comes from STRAND_LOG_LEVEL (default info).
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function fmt(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /^[\w.:/@-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

let stderrGuarded = false;

/**
 * Writes a line to stderr. A closed stderr (the reader went away: EPIPE) must not turn every
 * log line into an error event, so write errors are swallowed once here.
 */
function writeStderr(line: string): void {
  if (!stderrGuarded) {
    stderrGuarded = true;
    process.stderr.on('error', () => {});
  }
  process.stderr.write(line + '\n');
}

export function createLogger(opts: { component?: string; level?: Level; write?: (line: string) => void } = {}): Logger {
  const threshold = RANK[opts.level ?? ((process.env['STRAND_LOG_LEVEL'] as Level | undefined) ?? 'info')] ?? RANK.info;
  const write = opts.write ?? writeStderr;
  const make = (component: string): Logger => {
    const log = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] < threshold) return;
      let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${component}] ${msg.replace(/\n/g, ' ')}`;
      if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${fmt(v)}`;
      write(line);
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (c) => make(`${component}.${c}`),
    };
  };
  return make(opts.component ?? 'strand');
}

export const silentLogger: Logger = createLogger({ write: () => {} });
