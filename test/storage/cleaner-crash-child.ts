/**
 * Child process of cleaner-crash.test.ts: opens the log in argv[2] and cleans it. With a kill
 * point N > 0 in argv[3] it SIGKILLs itself at the N-th fault point of the pass (log-cleaner.ts
 * names them); argv[4] is the clock, argv[5] an I/O limit in bytes/s (0 = none). Prints
 * `cleaning` when the pass starts and `done <points>` at the end.
 */
import { PartitionLog } from '../../src/storage/log.js';
import { DEFAULT_CLEANER_CONFIG, LogCleaner } from '../../src/storage/log-cleaner.js';
import { crashTestConfig } from './cleaner-support.js';

const [dir, killAtArg, nowArg, ioArg] = process.argv.slice(2);
const killAt = Number(killAtArg);
const now = Number(nowArg);
const io = Number(ioArg);
let points = 0;
const clock = (): number => now;
const log = await PartitionLog.open(dir!, 't', 0, crashTestConfig(), { cleanShutdown: true, clock });
const cleaner = new LogCleaner({
  config: { ...DEFAULT_CLEANER_CONFIG, ioMaxBytesPerSecond: io > 0 ? io : Number.POSITIVE_INFINITY },
  logs: () => [log],
  clock,
  fault: () => {
    points++;
    if (points === killAt) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write('cleaning\n');
const stats = await cleaner.clean(log, { force: true });
if (stats === null) throw new Error('nothing was cleaned');
await log.close();
process.stdout.write(`done ${points}\n`);
