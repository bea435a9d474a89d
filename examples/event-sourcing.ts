/**
 * Event sourcing with a compacted snapshot topic, read back with the table view.
 *
 *   npm run build && node dist/examples/event-sourcing.js [bootstrap]     (default 127.0.0.1:9092)
 *
 * Bank accounts. Commands (open, deposit, withdraw, close) are decided against the account's
 * current state; a command that is accepted becomes events on `<prefix>.account-events` (a plain
 * topic, keyed by account id, kept as the history). A projector — a consumer group — folds the
 * events into each account's state and writes it to `<prefix>.account-state`, a compacted topic
 * keyed by account id: the latest state of an account replaces the one before, and closing an
 * account writes a tombstone. A table view reads the state topic back as a map and is compared with
 * a fold of the whole history. The last line printed is the final state as JSON.
 *
 * In an application, import from 'strand' instead of '../src/index.js'.
 */
import { pathToFileURL } from 'node:url';
import { Kafka, jsonSerde, type Table } from '../src/index.js';

type Command =
  | { type: 'open'; account: string; owner: string }
  | { type: 'deposit'; account: string; amount: number }
  | { type: 'withdraw'; account: string; amount: number }
  | { type: 'close'; account: string };

type Event =
  | { type: 'opened'; account: string; owner: string }
  | { type: 'deposited'; account: string; amount: number }
  | { type: 'withdrawn'; account: string; amount: number }
  | { type: 'closed'; account: string };

interface Account {
  owner: string;
  balance: number;
  version: number;
}

/** The aggregate's rule: which events a command produces, or why it is refused. */
export function decide(state: Account | undefined, c: Command): Event[] | string {
  switch (c.type) {
    case 'open':
      return state ? 'already open' : [{ type: 'opened', account: c.account, owner: c.owner }];
    case 'deposit':
      if (!state) return 'no such account';
      return c.amount > 0 ? [{ type: 'deposited', account: c.account, amount: c.amount }] : 'amount must be positive';
    case 'withdraw':
      if (!state) return 'no such account';
      return c.amount <= state.balance ? [{ type: 'withdrawn', account: c.account, amount: c.amount }] : 'insufficient funds';
    case 'close':
      if (!state) return 'no such account';
      return state.balance === 0 ? [{ type: 'closed', account: c.account }] : 'balance is not zero';
  }
}

/** The state after an event (undefined: the account is gone). */
export function evolve(state: Account | undefined, e: Event): Account | undefined {
  switch (e.type) {
    case 'opened':
      return { owner: e.owner, balance: 0, version: 1 };
    case 'deposited':
      return { ...state!, balance: state!.balance + e.amount, version: state!.version + 1 };
    case 'withdrawn':
      return { ...state!, balance: state!.balance - e.amount, version: state!.version + 1 };
    case 'closed':
      return undefined;
  }
}

const COMMANDS: Command[] = [
  { type: 'open', account: 'acc-1', owner: 'ada' },
  { type: 'open', account: 'acc-2', owner: 'grace' },
  { type: 'open', account: 'acc-3', owner: 'edsger' },
  { type: 'deposit', account: 'acc-1', amount: 100 },
  { type: 'deposit', account: 'acc-2', amount: 50 },
  { type: 'withdraw', account: 'acc-1', amount: 30 },
  { type: 'withdraw', account: 'acc-2', amount: 80 }, // refused: insufficient funds
  { type: 'deposit', account: 'acc-3', amount: 5 },
  { type: 'withdraw', account: 'acc-3', amount: 5 },
  { type: 'close', account: 'acc-3' },
  { type: 'open', account: 'acc-1', owner: 'someone' }, // refused: already open
  { type: 'deposit', account: 'acc-2', amount: 25 },
  { type: 'deposit', account: 'acc-1', amount: 12 },
];

export async function main(bootstrap: string, prefix: string): Promise<Record<string, Account>> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'event-sourcing-example' });
  const eventsTopic = `${prefix}.account-events`;
  const stateTopic = `${prefix}.account-state`;
  const admin = kafka.admin();
  await admin.createTopics(
    [
      { name: eventsTopic, partitions: 3 },
      { name: stateTopic, partitions: 3, configs: { 'cleanup.policy': 'compact' } },
    ],
    { ignoreExisting: true },
  );
  await admin.close();

  // 1. Commands → events. The command side keeps its own fold of the events it wrote (one writer).
  const producer = kafka.producer<string, Event>({ valueSerializer: jsonSerde<Event>(), acks: -1, lingerMs: 0 });
  const aggregates = new Map<string, Account | undefined>();
  const history: Event[] = [];
  for (const c of COMMANDS) {
    const decision = decide(aggregates.get(c.account), c);
    if (typeof decision === 'string') {
      console.log(`refused ${c.type} ${c.account}: ${decision}`);
      continue;
    }
    for (const e of decision) {
      await producer.send({ topic: eventsTopic, key: e.account, value: e });
      aggregates.set(e.account, evolve(aggregates.get(e.account), e));
      history.push(e);
    }
  }
  console.log(`wrote ${history.length} events for ${COMMANDS.length} commands`);

  // 2. The projector: events → the latest state per account, on the compacted topic.
  const projector = kafka.consumer<string, Event | null>({ groupId: `${prefix}.projector`, fromBeginning: true, valueDeserializer: jsonSerde<Event>() });
  const stateProducer = kafka.producer<string, Account>({ valueSerializer: jsonSerde<Account>(), acks: -1, lingerMs: 0 });
  const projected = new Map<string, Account | undefined>();
  projector.subscribe(eventsTopic);
  await projector.run({
    eachMessage: async ({ message }) => {
      const e = message.value!;
      const next = evolve(projected.get(e.account), e);
      projected.set(e.account, next);
      // A closed account is a tombstone: the cleaner removes it after delete.retention.ms.
      await stateProducer.send({ topic: stateTopic, key: e.account, value: next ?? null });
    },
  });

  // 3. The read model: the state topic as a table, compared with a fold of the whole history.
  const expected = new Map<string, Account>();
  for (const [k, v] of aggregates) if (v !== undefined) expected.set(k, v);
  const accounts: Table<string, Account | null> = kafka.table<string, Account | null>(stateTopic, { valueDeserializer: jsonSerde<Account>() });
  accounts.on('change', (c) => console.log(`state ${c.key}: ${c.value === undefined ? 'closed' : JSON.stringify(c.value)}`));
  await accounts.ready();
  const deadline = Date.now() + 30000;
  const matches = (): boolean => accounts.size === expected.size && [...expected].every(([k, v]) => JSON.stringify(accounts.get(k)) === JSON.stringify(v));
  while (!matches()) {
    if (Date.now() > deadline) throw new Error('the projection did not reach the state of the history within 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const result = Object.fromEntries([...accounts.entries()].map(([k, v]): [string, Account] => [k, v!]).sort(([a], [b]) => a.localeCompare(b)));
  await projector.close();
  await accounts.close();
  await Promise.all([producer.close(), stateProducer.close()]);
  console.log(JSON.stringify(result));
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bootstrap = process.argv[2] ?? process.env['STRAND_BROKERS'] ?? '127.0.0.1:9092';
  const prefix = process.argv[3] ?? `es-${Date.now().toString(36)}`;
  main(bootstrap, prefix).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
