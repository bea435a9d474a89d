/**
 * How far V8 lets the old generation grow between full (mark-compact) collections, for the broker
 * process.
 *
 * V8 sizes the old generation for a small footprint: after each mark-compact it sets the next
 * limit to the live size times a factor it derives from how fast collection is compared with
 * allocation. A broker has a small live heap (~14 MB at rest) and a high allocation rate
 * (request and response objects: ~150 MB/s at 10,000 produce requests/s), and its collections
 * are fast, so V8 picks a factor near its minimum. Measured with --trace-gc at 10,000 produce
 * requests/s: a mark-compact every ~2 s, each stopping the event loop for 2-7 ms while V8's
 * helper threads took both cores of the machine. Those pauses made the tail of the end-to-end
 * latency (p99 3-6.5 ms, p999 12-23 ms; 200-600 records in 50,000 over 5 ms).
 *
 * The broker asks for a fixed factor of 4 instead (V8's own ceiling for its dynamic factor):
 * the old generation may reach four times its live size before the next mark-compact. At a live
 * heap of 14 MB that is 56 MB, and a mark-compact every 15-20 s under the same load (none or one
 * in a run's two 8 s latency cases); the same benchmark then had 0-257 records in 50,000 over
 * 5 ms (the p99 is the 500th worst) and p99 1.8-3.3 ms. Kafka does the like for its JVM
 * (kafka-run-class.sh: G1 with a pause target, a fixed heap in kafka-server-start.sh).
 *
 * The flag is read each time V8 recomputes the limit, so setting it at start is enough. A value
 * the operator chose (`node --heap-growing-percent=N`, or in NODE_OPTIONS) is left alone. Only
 * the `strand broker` process does this: a broker embedded in an application (or the in-process
 * test broker) leaves the host process's V8 as it is.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

/**
 * Sets V8's old-generation growing factor for this process to 1 + percent/100, unless the
 * operator set one (in `execArgv` or `nodeOptions`); returns the flag applied, or null.
 */
export function tuneHeapGrowth(opts: { percent?: number; execArgv?: readonly string[]; nodeOptions?: string } = {}): string | null {
  const { percent = HEAP_GROWING_PERCENT, execArgv = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? '' } = opts;
  const given = (s: string): boolean => /--heap[-_]growing[-_]percent\b/.test(s);
  if (execArgv.some(given) || given(nodeOptions)) return null;
  const flag = `--heap-growing-percent=${percent}`;
  setFlagsFromString(flag);
  return flag;
}
