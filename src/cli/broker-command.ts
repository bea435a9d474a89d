/**
 * `strand broker`: runs a broker in the foreground until SIGTERM or SIGINT.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Broker } from '../broker/broker.js';
import { BrokerConfig, ConfigError, parseProperties } from '../broker/config.js';
import { createLogger } from '../broker/logger.js';

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
  -h, --help              show this help

--host/--port set listeners=PLAINTEXT://HOST:PORT and win over --config and --override.
Broker configs use Kafka's names (num.partitions, log.retention.ms, log.segment.bytes,
message.max.bytes, auto.create.topics.enable, ...); see docs/CONFIGURATION.md.
TLS, SASL, ACLs and quotas (listeners=SASL_SSL://..., ssl.keystore.location, sasl.enabled.mechanisms,
authorizer.class.name, ...) are set the same way; see docs/SECURITY.md.
Log level: STRAND_LOG_LEVEL=debug|info|warn|error (default info).`;

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
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(BROKER_HELP);
    return 0;
  }
  const logger = createLogger();
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
  const broker = await Broker.start(config, logger, { metricsPort: metricsPort === undefined ? undefined : Number(metricsPort), metricsHost: values['metrics-host'] });
  await stopRequested;
  try {
    await broker.shutdown();
  } catch (e) {
    logger.error('shutdown failed', { error: e });
    return 1;
  }
  return 0;
}
