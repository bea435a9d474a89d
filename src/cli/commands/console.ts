/**
 * `strand console`: serves the web console (src/console) for any Kafka-compatible cluster, until
 * Ctrl-C. The console talks to the cluster only through Strand's client.
 */
import { startConsole } from '../../console/server.js';
import { COMMON_HELP, bootstrapOf, int, parse, securityFor } from '../common.js';

export const CONSOLE_HELP = `Usage: strand console [options]

Serves the web console for a Kafka-compatible cluster (Strand or any other): the cluster and its
brokers, topics (partitions, offsets, size on disk, configs; create, add partitions, edit configs,
delete), a message browser with a live tail, consumer groups (members, lag, reset offsets) and
live charts of records and bytes in/out. Open the printed URL in a browser; Ctrl-C stops it.

Options:
  -p, --port PORT      HTTP port (default 8080; 0 picks a free one)
      --host HOST      address to listen on (default 127.0.0.1). The console has no
                       authentication: keep it on loopback unless the network is trusted
${COMMON_HELP.replace(/\n\s+--json[^\n]*/, '')}

A broker can serve the console itself: strand broker --console-port 8080. Docs: docs/CONSOLE.md.

Examples:
  strand console --bootstrap-server 127.0.0.1:9092
  strand console -b kafka-1:9092,kafka-2:9092 --port 9000`;

const OPTIONS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
} as const;

export async function consoleCommand(argv: string[]): Promise<number> {
  const p = parse(argv, OPTIONS, CONSOLE_HELP);
  if (p === null) return 0;
  const v = p.values;
  const brokers = bootstrapOf(v);
  const port = int(v.port, '--port', { min: 0 }) ?? 8080;
  const server = await startConsole({ brokers, port, host: v.host ?? '127.0.0.1', ...securityFor(v) });
  console.log(`strand console: ${server.url} (cluster ${brokers.join(',')}); Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
