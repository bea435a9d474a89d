/**
 * The examples in examples/ run as documented — `node dist/examples/<name>.js <bootstrap> <prefix>`
 * as a child process against a broker — and print the state they are meant to reach.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStrand, type StrandTestBroker } from '../../src/testing/index.js';
import { Database, workload } from '../../examples/change-data-capture.js';
import { uniqueName } from './helpers.js';

const EXAMPLES = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'examples');
let broker: StrandTestBroker;

before(async () => {
  broker = await startStrand();
});
after(async () => {
  await broker?.stop();
});

function run(name: string, prefix: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(EXAMPLES, `${name}.js`), broker.bootstrap, prefix], { timeout: 50000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${name} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout.trim().split('\n'));
    });
  });
}

test('examples/event-sourcing: commands become events, the compacted state topic read back as a table holds each open account', { timeout: 60000 }, async () => {
  const lines = await run('event-sourcing', uniqueName('es'));
  assert.ok(lines.includes('refused withdraw acc-2: insufficient funds'));
  assert.ok(lines.includes('state acc-3: closed'));
  assert.deepEqual(JSON.parse(lines[lines.length - 1]!), {
    'acc-1': { owner: 'ada', balance: 82, version: 4 },
    'acc-2': { owner: 'grace', balance: 75, version: 3 },
  });
});

test('examples/change-data-capture: a live and a late replica both equal the database', { timeout: 60000 }, async () => {
  const lines = await run('change-data-capture', uniqueName('cdc'));
  const db = new Database();
  workload(db, 42, 400);
  assert.ok(db.log.some((c) => c.op === 'delete'), 'the workload deletes rows');
  assert.deepEqual(JSON.parse(lines[lines.length - 1]!), Object.fromEntries([...db.rows].map(([id, row]) => [String(id), row])));
  assert.ok(lines.includes(`late replica: ${db.rows.size} rows, equal to the database`));
});
