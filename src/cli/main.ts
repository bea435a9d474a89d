/**
 * The `strand` command: `strand <command> [options]`.
 */
import { BROKER_HELP, brokerCommand } from './broker-command.js';
import { ConfigError } from '../broker/config.js';

const HELP = `Usage: strand <command> [options]

Strand: a Kafka-compatible streaming platform for Node.js.

Commands:
  broker      run a broker (strand broker --help)
  help        show this help

Run 'strand <command> --help' for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'broker':
      return brokerCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(rest[0] === 'broker' ? BROKER_HELP : HELP);
      return 0;
    case '--version':
    case '-v': {
      const { readFileSync } = await import('node:fs');
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      console.log(pkg.version);
      return 0;
    }
    default:
      console.error(`strand: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof ConfigError || (e instanceof Error && (e as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')) {
      console.error(`strand: ${e.message}`);
      process.exit(2);
    }
    const errno = (e as NodeJS.ErrnoException).code;
    if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) console.error(`strand: ${(e as Error).message}`);
    else console.error('strand: fatal:', e instanceof Error ? (e.stack ?? e.message) : e);
    // A broker that failed half-way through starting may hold listeners open: exit regardless.
    process.exit(1);
  },
);
