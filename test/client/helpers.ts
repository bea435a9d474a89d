/** Shared plumbing of the client tests: an in-process broker per file, unique topic names, waiting. */
import { startStrand, type StrandTestBroker, type StartStrandOptions } from '../../src/testing/index.js';

let counter = 0;
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

export async function withStrand(opts: StartStrandOptions = {}): Promise<StrandTestBroker> {
  return startStrand(opts);
}

/** Polls until `check` returns a value (not undefined) or throws after timeoutMs. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
