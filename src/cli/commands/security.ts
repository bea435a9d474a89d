/**
 * `strand users` (SCRAM credentials), `strand acls` and `strand quotas`, through Strand's admin
 * client (like kafka-configs.sh --entity-type users / kafka-acls.sh / kafka-client-quotas).
 * Passwords never appear on the command line (where `ps` shows them): `users scram set` reads
 * the password from --password-file, $STRAND_SCRAM_PASSWORD, or the first line of stdin.
 */
import { readFileSync } from 'node:fs';
import type { AclBinding, AclFilter, AclOperation, AclPermission, AclResourceType, QuotaEntity } from '../../client/admin-security.js';
import type { ScramMechanism } from '../../protocol/scram.js';
import { COMMON_HELP, CliError, int, parse, printJson, table, usage, withAdmin } from '../common.js';

export const USERS_HELP = `Usage: strand users scram set USER [--mechanism M] [--iterations N] [--password-file FILE]
       strand users scram delete USER [--mechanism M]
       strand users scram describe [USER ...]

Manages SCRAM credentials (AlterUserScramCredentials / DescribeUserScramCredentials). The
password is salted and hashed by this command; the broker stores salt, iterations, StoredKey
and ServerKey only. SASL PLAIN logins are checked against the same credentials.

Options:
      --mechanism SCRAM-SHA-256|SCRAM-SHA-512   default: both (set, delete)
      --iterations N              4096–16384 (default 4096)
      --password-file FILE        read the password from FILE (else $STRAND_SCRAM_PASSWORD, else stdin)
${COMMON_HELP}

Examples:
  echo "$ALICE_PASSWORD" | strand users scram set alice
  strand users scram describe --json`;

export const ACLS_HELP = `Usage: strand acls add --principal User:NAME (--topic T | --group G | --cluster | --transactional-id ID)
                       --operation OP [--operation OP ...] [--deny] [--prefixed] [--host H]
       strand acls list [filters]
       strand acls remove [filters]

Manages ACLs (CreateAcls / DescribeAcls / DeleteAcls); they apply once the broker runs with
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer (docs/SECURITY.md).
Operations: All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
AlterConfigs, IdempotentWrite. Filters for list / remove: the same flags, each optional.

Options:
      --principal P               User:alice (User:* for everyone)
      --topic T | --group G | --transactional-id ID | --cluster    the resource
      --prefixed                  the name is a prefix (default: the literal name; * is every name)
      --operation OP              repeatable
      --deny                      a DENY rule (default ALLOW); deny beats allow
      --host H                    client address the rule applies to (default *)
${COMMON_HELP}

Examples:
  strand acls add --principal User:reader --topic orders --operation Read
  strand acls add --principal User:reader --group orders-app --operation Read
  strand acls add --principal User:etl --topic logs- --prefixed --operation Write
  strand acls list --principal User:reader`;

export const QUOTAS_HELP = `Usage: strand quotas set (--user U | --user-default) (--client-id C | --client-id-default) KEY=VALUE ...
       strand quotas remove (entity) KEY ...
       strand quotas describe [entity]

Client quotas (AlterClientQuotas / DescribeClientQuotas): producer_byte_rate and
consumer_byte_rate in bytes per second, request_percentage in percent of one handler. A client
over its quota gets throttle_time_ms in its responses and is not read from meanwhile.

Options:
      --user U | --user-default           the user part of the entity
      --client-id C | --client-id-default the client-id part of the entity
${COMMON_HELP}

Examples:
  strand quotas set --client-id ingest producer_byte_rate=1048576
  strand quotas set --user-default consumer_byte_rate=10485760
  strand quotas describe --json`;

const MECHANISMS: ScramMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512'];
const OPERATIONS: AclOperation[] = ['All', 'Read', 'Write', 'Create', 'Delete', 'Alter', 'Describe', 'ClusterAction', 'DescribeConfigs', 'AlterConfigs', 'IdempotentWrite'];

function mechanismsOf(value: string | undefined): ScramMechanism[] {
  if (value === undefined) return MECHANISMS;
  if (!(MECHANISMS as string[]).includes(value)) throw usage(`--mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, got '${value}'`, 'users');
  return [value as ScramMechanism];
}

async function readPassword(file: string | undefined): Promise<string> {
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read --password-file ${file}: ${(e as Error).message}`, null, 2);
    }
  } else if (process.env['STRAND_SCRAM_PASSWORD'] !== undefined) {
    text = process.env['STRAND_SCRAM_PASSWORD'];
  } else {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  }
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new CliError('empty password', 'give it with --password-file, $STRAND_SCRAM_PASSWORD or on stdin', 2);
  return password;
}

export async function usersCommand(argv: string[]): Promise<number> {
  const [kind, sub, ...rest] = argv;
  if (kind === undefined || kind === '--help' || kind === '-h' || kind === 'help') {
    console.log(USERS_HELP);
    return kind === undefined ? 2 : 0;
  }
  if (kind !== 'scram') throw usage(`unknown users command '${kind}' (only 'scram')`, 'users');
  const p = parse(rest, { mechanism: { type: 'string' }, iterations: { type: 'string' }, 'password-file': { type: 'string' } } as const, USERS_HELP);
  if (p === null) return 0;
  const v = p.values;
  switch (sub) {
    case 'set': {
      const user = p.positionals[0];
      if (user === undefined) throw usage('users scram set needs a USER', 'users');
      const iterations = int(v.iterations, '--iterations', { min: 1 });
      const password = await readPassword(v['password-file']);
      return withAdmin(v, async (admin) => {
        for (const m of mechanismsOf(v.mechanism)) await admin.security.upsertUserScramCredential(user, m, password, iterations);
        if (v.json) printJson({ user, mechanisms: mechanismsOf(v.mechanism) });
        else console.log(`set ${mechanismsOf(v.mechanism).join(' and ')} credentials of ${user}`);
        return 0;
      });
    }
    case 'delete': {
      const user = p.positionals[0];
      if (user === undefined) throw usage('users scram delete needs a USER', 'users');
      return withAdmin(v, async (admin) => {
        const existing = (await admin.security.describeUserScramCredentials([user]))[0]?.credentials.map((c) => c.mechanism) ?? [];
        const targets = mechanismsOf(v.mechanism).filter((m) => v.mechanism !== undefined || existing.includes(m));
        for (const m of targets) await admin.security.deleteUserScramCredential(user, m);
        if (!v.json) console.log(`deleted ${targets.join(' and ')} credentials of ${user}`);
        else printJson({ user, deleted: targets });
        return 0;
      });
    }
    case 'describe':
      return withAdmin(v, async (admin) => {
        const users = await admin.security.describeUserScramCredentials(p.positionals.length > 0 ? p.positionals : undefined);
        if (v.json) printJson(users);
        else console.log(table(['USER', 'MECHANISM', 'ITERATIONS'], users.flatMap((u) => u.credentials.map((c) => [u.user, c.mechanism, c.iterations]))));
        return 0;
      });
    default:
      throw usage(`unknown users scram command '${sub ?? ''}' (set, delete, describe)`, 'users');
  }
}

const ACL_OPTIONS = {
  principal: { type: 'string' },
  topic: { type: 'string' },
  group: { type: 'string' },
  'transactional-id': { type: 'string' },
  cluster: { type: 'boolean' },
  prefixed: { type: 'boolean' },
  operation: { type: 'string', multiple: true },
  deny: { type: 'boolean' },
  host: { type: 'string' },
} as const;

export async function aclsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(ACLS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, ACL_OPTIONS, ACLS_HELP);
  if (p === null) return 0;
  const v = p.values;
  const resources: Array<[AclResourceType, string]> = [];
  if (v.topic !== undefined) resources.push(['Topic', v.topic]);
  if (v.group !== undefined) resources.push(['Group', v.group]);
  if (v['transactional-id'] !== undefined) resources.push(['TransactionalId', v['transactional-id']]);
  if (v.cluster) resources.push(['Cluster', 'kafka-cluster']);
  if (resources.length > 1) throw usage('give one resource: --topic, --group, --transactional-id or --cluster', 'acls');
  const ops = (v.operation ?? []).map((o) => {
    const op = OPERATIONS.find((x) => x.toLowerCase() === o.toLowerCase());
    if (op === undefined) throw usage(`unknown operation '${o}' (${OPERATIONS.join(', ')})`, 'acls');
    return op;
  });
  const permission: AclPermission | undefined = v.deny ? 'Deny' : sub === 'add' ? 'Allow' : undefined;
  const show = (acls: Array<Required<AclBinding>>): void => {
    if (v.json) printJson(acls);
    else console.log(table(['PRINCIPAL', 'PERMISSION', 'OPERATION', 'RESOURCE', 'NAME', 'PATTERN', 'HOST'], acls.map((a) => [a.principal, a.permission, a.operation, a.resourceType, a.resourceName, a.patternType, a.host])));
  };
  const filters = (): AclFilter[] => {
    const base: AclFilter = {};
    if (v.principal !== undefined) base.principal = v.principal;
    if (resources[0] !== undefined) [base.resourceType, base.resourceName] = resources[0];
    if (v.prefixed) base.patternType = 'Prefixed';
    if (v.host !== undefined) base.host = v.host;
    if (permission !== undefined) base.permission = permission;
    return ops.length === 0 ? [base] : ops.map((operation) => ({ ...base, operation }));
  };
  switch (sub) {
    case 'add': {
      if (v.principal === undefined || resources.length === 0 || ops.length === 0) throw usage('acls add needs --principal, a resource and at least one --operation', 'acls');
      const [resourceType, resourceName] = resources[0]!;
      const acls: AclBinding[] = ops.map((operation) => ({ resourceType, resourceName, patternType: v.prefixed ? 'Prefixed' : 'Literal', principal: v.principal!, host: v.host ?? '*', operation, permission: permission! }));
      return withAdmin(v, async (admin) => {
        await admin.security.createAcls(acls);
        show(acls as Array<Required<AclBinding>>);
        return 0;
      });
    }
    case 'list':
      return withAdmin(v, async (admin) => {
        const found = (await Promise.all(filters().map((f) => admin.security.describeAcls(f)))).flat();
        show(found);
        return 0;
      });
    case 'remove':
      return withAdmin(v, async (admin) => {
        const removed = (await Promise.all(filters().map((f) => admin.security.deleteAcls(f)))).flat();
        show(removed);
        return 0;
      });
    default:
      throw usage(`unknown acls command '${sub}' (add, list, remove)`, 'acls');
  }
}

const QUOTA_OPTIONS = {
  user: { type: 'string' },
  'user-default': { type: 'boolean' },
  'client-id': { type: 'string' },
  'client-id-default': { type: 'boolean' },
} as const;

export async function quotasCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(QUOTAS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest, QUOTA_OPTIONS, QUOTAS_HELP);
  if (p === null) return 0;
  const v = p.values;
  const entity: QuotaEntity = {};
  if (v.user !== undefined) entity.user = v.user;
  else if (v['user-default']) entity.user = null;
  if (v['client-id'] !== undefined) entity.clientId = v['client-id'];
  else if (v['client-id-default']) entity.clientId = null;
  const named = entity.user !== undefined || entity.clientId !== undefined;
  switch (sub) {
    case 'set':
    case 'remove': {
      if (!named) throw usage(`quotas ${sub} needs --user, --user-default, --client-id or --client-id-default`, 'quotas');
      const quotas: Record<string, number | null> = {};
      for (const a of p.positionals) {
        if (sub === 'remove') quotas[a] = null;
        else {
          const eq = a.indexOf('=');
          const value = eq > 0 ? Number(a.slice(eq + 1)) : NaN;
          if (!Number.isFinite(value)) throw usage(`quotas set expects KEY=NUMBER, got '${a}'`, 'quotas');
          quotas[a.slice(0, eq)] = value;
        }
      }
      if (Object.keys(quotas).length === 0) throw usage(`quotas ${sub} needs at least one quota`, 'quotas');
      return withAdmin(v, async (admin) => {
        await admin.security.alterClientQuotas(entity, quotas);
        if (v.json) printJson({ entity, quotas });
        return 0;
      });
    }
    case 'describe':
      return withAdmin(v, async (admin) => {
        const found = await admin.security.describeClientQuotas(named ? entity : undefined);
        const label = (n: string | null | undefined): string | undefined => (n === null ? '<default>' : n);
        if (v.json) printJson(found);
        else console.log(table(['USER', 'CLIENT-ID', 'QUOTAS'], found.map((q) => [label(q.entity.user), label(q.entity.clientId), Object.entries(q.quotas).map(([k, x]) => `${k}=${x}`).join(',')])));
        return 0;
      });
    default:
      throw usage(`unknown quotas command '${sub}' (set, remove, describe)`, 'quotas');
  }
}
