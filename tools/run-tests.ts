/**
 * Runs the compiled tests with Node's built-in runner: `node dist/tools/run-tests.js [layer...]`,
 * where a layer is a folder under test/ (protocol, storage, broker, interop, ...). Node 20's
 * `--test` takes no globs, so the files are found here.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'test');
const layers = process.argv.slice(2);

function find(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = find(root).filter((f) => layers.length === 0 || layers.some((l) => relative(root, f).startsWith(l + '/')));
if (files.length === 0) {
  console.error(`no test files found under ${root} for ${layers.join(', ') || 'all layers'}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-timeout=300000', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
