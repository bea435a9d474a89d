/**
 * Change data capture into a compacted topic, materialised as a replica with the table view.
 *
 *   npm run build && node dist/examples/change-data-capture.js [bootstrap]     (default 127.0.0.1:9092)
 *
 * An in-memory "database" with a `customers` table keeps a change log, as a database's
 * write-ahead log does: every insert, update and delete, in commit order. A connector tails that
 * log and publishes each change to `<prefix>.customers`, a compacted topic keyed by the primary
 * key: the row as JSON for an insert or update, a tombstone for a delete. Compaction keeps the
 * latest row of every key, so the topic is a full copy of the table, not a history that grows
 * forever. Two replicas (table views) materialise it: one started before the changes, following
 * them live, and one started afterwards, loading the copy from the beginning. Both must equal the
 * database. The last line printed is the replica as JSON.
 *
 * In an application, import from 'strand' instead of '../src/index.js'.
 */
import { pathToFileURL } from 'node:url';
import { Kafka, jsonSerde, type Table } from '../src/index.js';

interface Customer {
  id: number;
  name: string;
  email: string;
  tier: 'free' | 'pro';
}

type Change = { op: 'insert' | 'update'; row: Customer } | { op: 'delete'; id: number };

/** A table with a change log: the "database" the connector reads. */
export class Database {
  readonly rows = new Map<number, Customer>();
  readonly log: Change[] = [];

  insert(row: Customer): void {
    if (this.rows.has(row.id)) throw new Error(`duplicate key ${row.id}`);
    this.rows.set(row.id, row);
    this.log.push({ op: 'insert', row });
  }

  update(id: number, patch: Partial<Omit<Customer, 'id'>>): void {
    const row = this.rows.get(id);
    if (!row) throw new Error(`no row ${id}`);
    const next = { ...row, ...patch };
    this.rows.set(id, next);
    this.log.push({ op: 'update', row: next });
  }

  delete(id: number): void {
    if (!this.rows.delete(id)) throw new Error(`no row ${id}`);
    this.log.push({ op: 'delete', id });
  }
}

/** A seeded workload: inserts, updates and deletes (deterministic, so runs can be compared). */
export function workload(db: Database, seed: number, steps: number): void {
  let s = seed >>> 0;
  const rand = (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  let nextId = 1;
  for (let i = 0; i < steps; i++) {
    const ids = [...db.rows.keys()];
    const r = rand(10);
    if (ids.length < 5 || r < 4) {
      const id = nextId++;
      db.insert({ id, name: `customer ${id}`, email: `c${id}@example.com`, tier: 'free' });
    } else if (r < 8) {
      const id = ids[rand(ids.length)]!;
      db.update(id, rand(2) === 0 ? { tier: 'pro' } : { email: `c${id}.${i}@example.com` });
    } else {
      db.delete(ids[rand(ids.length)]!);
    }
  }
}

export async function main(bootstrap: string, prefix: string): Promise<Record<string, Customer>> {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'cdc-example' });
  const topic = `${prefix}.customers`;
  const admin = kafka.admin();
  await admin.createTopics([{ name: topic, partitions: 4, configs: { 'cleanup.policy': 'compact', 'segment.bytes': '16384', 'min.cleanable.dirty.ratio': '0.1' } }], { ignoreExisting: true });
  await admin.close();

  const replica = (): Table<string, Customer | null> => kafka.table<string, Customer | null>(topic, { valueDeserializer: jsonSerde<Customer>() });
  const live = replica();
  await live.ready();

  // The connector: the change log → the topic, keyed by primary key, deletes as tombstones.
  const db = new Database();
  workload(db, 42, 400);
  const producer = kafka.producer<string, Customer>({ valueSerializer: jsonSerde<Customer>(), acks: -1, idempotent: true });
  let published = 0;
  await Promise.all(
    db.log.map((c) => {
      const key = String(c.op === 'delete' ? c.id : c.row.id);
      published++;
      return producer.send({ topic, key, value: c.op === 'delete' ? null : c.row });
    }),
  );
  await producer.close();
  console.log(`published ${published} changes of ${db.rows.size} live rows`);

  const same = (t: Table<string, Customer | null>): boolean => t.size === db.rows.size && [...db.rows].every(([id, row]) => JSON.stringify(t.get(String(id))) === JSON.stringify(row));
  const deadline = Date.now() + 30000;
  while (!same(live)) {
    if (Date.now() > deadline) throw new Error('the live replica did not converge within 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`live replica: ${live.size} rows, equal to the database`);

  const late = replica();
  await late.ready();
  if (!same(late)) throw new Error('a replica loaded from the beginning differs from the database');
  console.log(`late replica: ${late.size} rows, equal to the database`);
  const result = Object.fromEntries([...late.entries()].map(([k, v]): [string, Customer] => [k, v!]).sort(([a], [b]) => Number(a) - Number(b)));
  await Promise.all([live.close(), late.close()]);
  console.log(JSON.stringify(result));
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bootstrap = process.argv[2] ?? process.env['STRAND_BROKERS'] ?? '127.0.0.1:9092';
  const prefix = process.argv[3] ?? `cdc-${Date.now().toString(36)}`;
  main(bootstrap, prefix).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
