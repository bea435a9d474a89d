/**
 * The README's in-process broker example runs as written: extracted from README.md, saved inside
 * the package (so `strand/testing` resolves to this package by self-reference) and run with
 * node --test against KafkaJS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

test('the README example of the in-process broker passes', { timeout: 60000 }, () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("from 'strand/testing'"));
  assert.ok(block, 'README has no strand/testing example');
  const file = join(ROOT, 'dist', 'readme-example.test.mjs');
  writeFileSync(file, block);
  try {
    // A nested runner would otherwise report to ours in its binary protocol.
    const env: NodeJS.ProcessEnv = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' };
    delete env['NODE_TEST_CONTEXT'];
    const r = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', timeout: 50000, cwd: ROOT, env });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass 1/);
  } finally {
    rmSync(file, { force: true });
  }
});
