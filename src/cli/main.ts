/**
 * The `strand` command: `strand <command> [options]`. `broker` runs a broker; every other command
 * talks to a cluster through Strand's client (src/cli/commands/, one file per command).
 */
import { DataDirLockedError } from '../broker/data-dir-lock.js';
import { BROKER_HELP, brokerCommand } from './broker-command.js';
import { ConfigError } from '../broker/config.js';
import { describeError } from './common.js';
import { TOPICS_HELP, topicsCommand } from './commands/topics.js';
import { PRODUCE_HELP, produceCommand } from './commands/produce.js';
import { CONSUME_HELP, consumeCommand } from './commands/consume.js';
import { GROUPS_HELP, groupsCommand } from './commands/groups.js';
import { RECORDS_HELP, recordsCommand } from './commands/records.js';
import { CLUSTER_HELP, clusterCommand } from './commands/cluster.js';
import { PERF_HELP, perfCommand } from './commands/perf.js';
import { COMPLETION_HELP, completionCommand } from './commands/completion.js';
import { TRANSACTIONS_HELP, transactionsCommand } from './commands/transactions.js';
import { CONSOLE_HELP, consoleCommand } from './commands/console.js';
import { ACLS_HELP, aclsCommand, QUOTAS_HELP, quotasCommand, USERS_HELP, usersCommand } from './commands/security.js';

const HELP = `Usage: strand <command> [options]

Strand: a Kafka-compatible streaming platform for Node.js.

Commands:
  broker        run a broker (with --metrics-port: a Prometheus endpoint; --console-port: the web console)
  topics        create, list, describe, alter-config, add-partitions, delete topics; the log cleaner
  produce       write records from stdin or a file, one per line
  consume       read records, printed as text, a format template or JSON
  groups        list, describe (lag), reset-offsets, delete-offsets, delete consumer groups
  records       delete records before an offset
  transactions  list, describe, describe-producers, find-hanging, abort transactions
  cluster       cluster up: a local N-node cluster; cluster status: nodes, quorum, leaders, ISR
  perf          load generator: perf produce | perf consume (records/s, MB/s, latency)
  console       serve the web console for a cluster (topics, messages, groups, live charts)
  users         SCRAM credentials: users scram set | delete | describe
  acls          ACLs: acls add | list | remove
  quotas        client quotas: quotas set | remove | describe
  completion    shell completion script (strand completion bash)
  help          show this help

Every client command takes --bootstrap-server HOST:PORT (default 127.0.0.1:9092), --json, and
--command-config FILE for TLS / SASL (docs/SECURITY.md).
Run 'strand <command> --help' for a command's options. Docs: docs/CLI.md.`;

const COMMANDS: Record<string, { help: string; run: (argv: string[]) => Promise<number> }> = {
  broker: { help: BROKER_HELP, run: brokerCommand },
  topics: { help: TOPICS_HELP, run: topicsCommand },
  produce: { help: PRODUCE_HELP, run: produceCommand },
  consume: { help: CONSUME_HELP, run: consumeCommand },
  groups: { help: GROUPS_HELP, run: groupsCommand },
  records: { help: RECORDS_HELP, run: recordsCommand },
  transactions: { help: TRANSACTIONS_HELP, run: transactionsCommand },
  cluster: { help: CLUSTER_HELP, run: clusterCommand },
  perf: { help: PERF_HELP, run: perfCommand },
  completion: { help: COMPLETION_HELP, run: completionCommand },
  console: { help: CONSOLE_HELP, run: consoleCommand },
  users: { help: USERS_HELP, run: usersCommand },
  acls: { help: ACLS_HELP, run: aclsCommand },
  quotas: { help: QUOTAS_HELP, run: quotasCommand },
};

export const COMMAND_NAMES = Object.keys(COMMANDS);

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log((rest[0] !== undefined ? COMMANDS[rest[0]]?.help : undefined) ?? HELP);
      return 0;
    case '--version':
    case '-v': {
      const { readFileSync } = await import('node:fs');
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      console.log(pkg.version);
      return 0;
    }
    default: {
      const c = COMMANDS[command];
      if (c === undefined) {
        console.error(`strand: unknown command '${command}'\n\n${HELP}`);
        return 2;
      }
      return c.run(rest);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A client command is done: do not wait for sockets or timers still winding down.
    if (process.argv[2] !== 'broker') process.stdout.write('', () => process.exit(code));
  },
  (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof ConfigError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))) {
      console.error(`strand: ${(e as Error).message}`);
      process.exit(2);
    }
    if (e instanceof DataDirLockedError) {
      // An operator's mistake, not a crash: one line, no stack.
      console.error(`strand: ${e.message}`);
      process.exit(1);
    }
    const d = describeError(e);
    if (d !== null) {
      console.error(`strand: ${d.message}`);
      if (d.hint !== null) console.error(`  hint: ${d.hint}`);
      process.exit(d.exitCode);
    }
    console.error('strand: fatal:', e instanceof Error ? (e.stack ?? e.message) : e);
    // A broker that failed half-way through starting may hold listeners open: exit regardless.
    process.exit(1);
  },
);
