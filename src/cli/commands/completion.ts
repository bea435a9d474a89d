/**
 * `strand completion bash|zsh`: a shell completion script (commands, subcommands, flags, and
 * topic / group names fetched from the cluster with `strand topics list --json` when asked).
 */
import { usage } from '../common.js';

export const COMPLETION_HELP = `Usage: strand completion bash|zsh

Prints a shell completion script. Install it with:
  bash:  source <(strand completion bash)        # or: strand completion bash > /etc/bash_completion.d/strand
  zsh:   source <(strand completion zsh)

Completes commands, subcommands and flags; topic and group names are fetched from the cluster
(--bootstrap-server on the line, or $STRAND_BOOTSTRAP_SERVER, or 127.0.0.1:9092).`;

const COMMON = '--bootstrap-server --command-config --json --help';

/** Subcommands and flags per command (kept in step with each command's OPTIONS; a test checks them). */
export const COMPLETIONS: Record<string, { subs?: string[]; flags: string; names?: 'topics' | 'groups' }> = {
  broker: { flags: '--host --port --data-dir --config --override --metrics-port --metrics-host --console-port --console-host --help' },
  topics: { subs: ['create', 'list', 'describe', 'alter-config', 'add-partitions', 'delete', 'cleaner', 'elect-leaders', 'reassign', 'list-reassignments'], flags: `--partitions --replication-factor --config --if-not-exists --if-exists --internal --all-configs --set --delete --count --partition --unclean --replicas --cancel ${COMMON}`, names: 'topics' },
  produce: { flags: `--file --key-separator --header --partition --compression --acks --linger-ms --encoding --null-value --quiet ${COMMON}`, names: 'topics' },
  consume: { flags: `--from-beginning --from-end --offset --timestamp --group --partition --max-messages --follow --timeout-ms --format --encoding --print-key ${COMMON}`, names: 'topics' },
  groups: { subs: ['list', 'describe', 'reset-offsets', 'delete-offsets', 'delete'], flags: `--topic --all-topics --to-earliest --to-latest --to-offset --to-datetime --shift-by --execute --dry-run --members --state ${COMMON}`, names: 'groups' },
  records: { subs: ['delete'], flags: `--before --partition ${COMMON}`, names: 'topics' },
  transactions: { subs: ['list', 'describe', 'describe-producers', 'find-hanging', 'abort'], flags: `--state --producer-id --duration-filter --transactional-id --topic --max-transaction-timeout --partition --start-offset --producer-epoch --coordinator-epoch ${COMMON}` },
  cluster: { subs: ['up', 'status'], flags: `--nodes --data-dir --base-port --override --quiet --bootstrap-controller ${COMMON}` },
  perf: { subs: ['produce', 'consume'], flags: `--num-records --record-size --throughput --acks --compression --linger-ms --batch-bytes --group --timeout-ms --reporting-interval ${COMMON}`, names: 'topics' },
  console: { flags: '--port --host --bootstrap-server --command-config --help' },
  users: { subs: ['scram'], flags: `--mechanism --iterations --password-file ${COMMON}` },
  acls: { subs: ['add', 'list', 'remove'], flags: `--principal --topic --group --transactional-id --cluster --prefixed --operation --deny --host ${COMMON}` },
  quotas: { subs: ['set', 'remove', 'describe'], flags: `--user --user-default --client-id --client-id-default ${COMMON}` },
  completion: { subs: ['bash', 'zsh'], flags: '--help' },
  help: { flags: '' },
};

function bashScript(): string {
  const cases = Object.entries(COMPLETIONS)
    .map(([cmd, c]) => `    ${cmd}) subs="${(c.subs ?? []).join(' ')}"; flags="${c.flags}"; names="${c.names ?? ''}" ;;`)
    .join('\n');
  return `# bash completion for strand (strand completion bash)
_strand_names() {
  local kind="$1" bs="" i
  for ((i = 1; i < \${#COMP_WORDS[@]}; i++)); do
    case "\${COMP_WORDS[i]}" in --bootstrap-server|-b) bs="\${COMP_WORDS[i+1]}" ;; esac
  done
  strand "$kind" list --json \${bs:+--bootstrap-server "$bs"} 2>/dev/null | sed -n 's/^ *"\\(name\\|group\\)": "\\([^"]*\\)".*/\\2/p'
}
_strand() {
  local cur prev cmd subs flags names
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${Object.keys(COMPLETIONS).join(' ')}" -- "$cur"))
    return
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${cases}
    *) return ;;
  esac
  case "$prev" in
    --file|-f|--config|--data-dir|--command-config|--password-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --compression|-z) COMPREPLY=($(compgen -W "none gzip snappy lz4 zstd" -- "$cur")); return ;;
    --acks) COMPREPLY=($(compgen -W "0 1 all" -- "$cur")); return ;;
    --encoding|-e) COMPREPLY=($(compgen -W "utf8 base64 hex" -- "$cur")); return ;;
    --topic|-t) COMPREPLY=($(compgen -W "$(_strand_names topics)" -- "$cur")); return ;;
    --group|-g) COMPREPLY=($(compgen -W "$(_strand_names groups)" -- "$cur")); return ;;
    --bootstrap-server|-b|--producer-id|--duration-filter|--transactional-id|--max-transaction-timeout|--start-offset|--producer-epoch|--coordinator-epoch|--partitions|--count|--offset|--partition|--max-messages|--num-records|--record-size|--to-offset|--shift-by|--to-datetime|--timestamp|--set|--delete|--header|--format|--key-separator|--before|--port|--host|--metrics-port|--console-port|--console-host|--nodes|--base-port|--bootstrap-controller|--override) return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ -n "$subs" && $COMP_CWORD -eq 2 ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  elif [[ -n "$names" ]]; then
    COMPREPLY=($(compgen -W "$(_strand_names $names)" -- "$cur"))
  fi
}
complete -F _strand strand
`;
}

export async function completionCommand(argv: string[]): Promise<number> {
  const shell = argv[0];
  if (shell === undefined || shell === '--help' || shell === '-h') {
    console.log(COMPLETION_HELP);
    return shell === undefined ? 2 : 0;
  }
  if (shell === 'bash') process.stdout.write(bashScript());
  else if (shell === 'zsh') process.stdout.write(`autoload -U +X bashcompinit && bashcompinit\n${bashScript()}`);
  else throw usage(`unsupported shell '${shell}' (bash or zsh)`, 'completion');
  return 0;
}
