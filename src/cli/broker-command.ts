/**
 * `strand broker`: runs a broker in the foreground until SIGTERM or SIGINT.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Broker } from '../broker/broker.js';
import { BrokerConfig, ConfigError, parseProperties } from '../broker/config.js';
import { createLogger } from '../broker/logger.js';
import { startConsole, type ConsoleServer } from '../console/server.js';
import { QuorumControllerNode } from '../broker/metadata/quorum-controller.js';
import { tuneHeapGrowth } from './heap-growth.js';

export const BROKER_HELP = `Usage: strand broker [options]

Runs a Kafka-compatible broker in the foreground. SIGTERM or SIGINT shut it down cleanly.

Options:
  --host HOST             listen address (default 127.0.0.1)
  --port PORT             listen port (default 9092)
  --data-dir DIR          data directory, Kafka's log.dirs (default ./data)
  --config FILE           a Kafka-style server.properties file
  --override KEY=VALUE    set a broker config (repeatable); applied after --config
  --metrics-port PORT     serve Prometheus metrics at http://HOST:PORT/metrics, plus /health and /ready
  --metrics-host HOST     address of the metrics endpoint (default 127.0.0.1)
  --console-port PORT     serve the web console at http://HOST:PORT/ (config strand.console.port;
                          default off). It reaches this broker through Strand's client
  --console-host HOST     address of the web console (config strand.console.host; default 127.0.0.1)
  -h, --help              show this help

--host/--port set listeners=PLAINTEXT://HOST:PORT and win over --config and --override.
With controller.quorum.voters=1@HOST:PORT,... the node is a voter of the Raft metadata quorum on
its controller listener (controller.listener.names): process.roles=controller for a
controller-only node, broker,controller (the default) for a combined node of a cluster, whose
broker registers with the active controller and shares the quorum's metadata; with
process.roles=broker (a node.id that is not a voter) the broker follows the metadata log as an
observer. See docs/CLUSTER.md.
Broker configs use Kafka's names (num.partitions, log.retention.ms, log.segment.bytes,
message.max.bytes, auto.create.topics.enable, ...); see docs/CONFIGURATION.md.
TLS, SASL, ACLs and quotas (listeners=SASL_SSL://..., ssl.keystore.location, sasl.enabled.mechanisms,
authorizer.class.name, ...) are set the same way; see docs/SECURITY.md.
Log level: STRAND_LOG_LEVEL=debug|info|warn|error (default info).
The broker process sets V8's --heap-growing-percent=300 (fewer full collections under load)
unless node was given one, e.g. node --heap-growing-percent=100 bin/strand broker.`;

export async function brokerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
      override: { type: 'string', multiple: true },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      'console-port': { type: 'string' },
      'console-host': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(BROKER_HELP);
    return 0;
  }
  const logger = createLogger();
  // Fewer, rarer full collections: their pauses made the broker's latency tail (heap-growth.ts).
  const heapFlag = tuneHeapGrowth();
  if (heapFlag !== null) logger.debug('V8 old generation growth set', { flag: heapFlag });
  const props = values.config ? parseProperties(readFileSync(values.config, 'utf8')) : new Map<string, string>();
  for (const o of values.override ?? []) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--override expects KEY=VALUE, got '${o}'`);
    props.set(o.slice(0, eq).trim(), o.slice(eq + 1).trim());
  }
  if (values.host !== undefined || values.port !== undefined) {
    const current = props.get('listeners');
    const m = current ? /^[^:]+:\/\/(\[[^\]]*\]|[^:,]*):(\d+)/.exec(current) : null;
    const host = values.host ?? m?.[1] ?? '127.0.0.1';
    const port = values.port ?? m?.[2] ?? '9092';
    if (!/^\d+$/.test(port) || Number(port) > 65535) throw new ConfigError(`--port must be a port number, got '${port}'`);
    props.set('listeners', `PLAINTEXT://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`);
  }
  if (values['data-dir'] !== undefined) props.set('log.dirs', values['data-dir']);
  const consolePortFlag = values['console-port'];
  if (consolePortFlag !== undefined) {
    if (!/^\d+$/.test(consolePortFlag) || Number(consolePortFlag) > 65535) throw new ConfigError(`--console-port must be a port number, got '${consolePortFlag}'`);
    props.set('strand.console.port', consolePortFlag);
  }
  if (values['console-host'] !== undefined) props.set('strand.console.host', values['console-host']);
  const config = new BrokerConfig(props);
  const metricsPort = values['metrics-port'];
  if (metricsPort !== undefined && (!/^\d+$/.test(metricsPort) || Number(metricsPort) > 65535)) throw new ConfigError(`--metrics-port must be a port number, got '${metricsPort}'`);
  // A bug in one request's handling must not take the broker down: log it and keep serving.
  process.on('uncaughtException', (e) => logger.error('uncaught exception', { error: e, stack: e.stack }));
  process.on('unhandledRejection', (e) => logger.error('unhandled rejection', { error: e, stack: e instanceof Error ? e.stack : undefined }));
  // Signals are handled from the start: one that arrives while the broker is still starting
  // stops it as soon as it is up, cleanly.
  let signalled: NodeJS.Signals | null = null;
  let onStop: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (onStop = resolve));
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled !== null) {
      logger.warn('second signal: exiting without a clean shutdown', { signal: sig });
      process.exit(130);
    }
    signalled = sig;
    logger.info('signal received', { signal: sig });
    onStop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const roles = config.processRoles;
  let node: { shutdown(): Promise<void> };
  // The console is a client of this broker (the console layer sits on the client, not in the
  // broker): it connects to the broker's own listener, as it would to any cluster.
  let console_: ConsoleServer | null = null;
  if (!roles.includes('broker')) {
    // A controller-only node: a voter of the metadata quorum (docs/CLUSTER.md).
    if (metricsPort !== undefined) logger.warn('--metrics-port is not served by a controller-only node yet');
    if (config.number('strand.console.port') >= 0) logger.warn('the web console is served only by a node with the broker role');
    node = await QuorumControllerNode.start(config, logger.child('controller'));
  } else {
    const broker = await Broker.start(config, logger, { metricsPort: metricsPort === undefined ? undefined : Number(metricsPort), metricsHost: values['metrics-host'] });
    node = broker;
    const consolePort = config.number('strand.console.port');
    if (consolePort >= 0) {
      // It connects as a plain client: to the first PLAINTEXT listener (with TLS or SASL only,
      // run `strand console --command-config` instead).
      const plain = broker.listeners.find((l) => l.securityProtocol === 'PLAINTEXT');
      if (plain === undefined) {
        logger.error('the web console needs a PLAINTEXT listener to connect to; use strand console --command-config for a secured cluster');
        await broker.shutdown();
        return 1;
      }
      const own = plain.bound;
      const target = own.host === '0.0.0.0' || own.host === '' ? '127.0.0.1' : own.host === '::' ? '::1' : own.host;
      try {
        console_ = await startConsole({ brokers: [`${target.includes(':') ? `[${target}]` : target}:${own.port}`], port: consolePort, host: config.string('strand.console.host'), logger: logger.child('console') });
        logger.info('web console listening', { url: console_.url });
      } catch (e) {
        logger.error('web console failed to start', { error: e });
        await broker.shutdown();
        return 1;
      }
    }
  }
  await stopRequested;
  try {
    await console_?.close();
    await node.shutdown();
  } catch (e) {
    logger.error('shutdown failed', { error: e });
    return 1;
  }
  return 0;
}
