#!/usr/bin/env node
// Runs the compiled test files with node's own runner.
//
//   node scripts/run-tests.js           every *.test.js under dist/src and dist/test
//   node scripts/run-tests.js --unit    only dist/src (unit and property tests)
//
// Compiled files whose .ts source no longer exists are skipped, so a stale dist/ never runs a
// deleted test. The runner's output (spec reporter, with its closing pass/fail summary) goes to
// our stdout unchanged, and our exit code is node's.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--unit');
if (unknown.length > 0) {
  process.stderr.write(`run-tests: unknown argument(s): ${unknown.join(' ')}\nusage: node scripts/run-tests.js [--unit]\n`);
  process.exit(2);
}
const dirs = args.includes('--unit') ? ['src'] : ['src', 'test'];

/** Every *.test.js below dir (absolute), depth first. */
function findTests(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(path));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

/** Whether the TypeScript source of a compiled test still exists. */
function hasSource(compiled) {
  const rel = relative(dist, compiled);
  return existsSync(join(root, rel.replace(/\.js$/, '.ts')));
}

const files = dirs
  .flatMap((d) => findTests(join(dist, d)))
  .filter(hasSource)
  .map((f) => relative(root, f))
  .sort();

if (files.length === 0) {
  process.stderr.write(`run-tests: no *.test.js files under ${dirs.map((d) => `dist/${d}`).join(', ')}; run \`npm run build\` first\n`);
  process.exit(1);
}

// One scratch directory per run, shared by the test files (fixture cache); removed at the end.
const cache = mkdtempSync(join(tmpdir(), 'stowage-test-run-'));
const child = spawn(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, STOWAGE_TEST_CACHE: cache } },
);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    child.kill(signal);
  });
}

child.on('exit', (code, signal) => {
  rmSync(cache, { recursive: true, force: true });
  if (signal !== null) {
    process.stderr.write(`run-tests: node --test ended by ${signal}\n`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
