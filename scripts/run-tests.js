#!/usr/bin/env node
// Runs the compiled test files with node's own runner.
//
//   node scripts/run-tests.js           every *.test.js under dist/src and dist/test, with the
//                                       shared test services (below)
//   node scripts/run-tests.js --unit    only dist/src (unit and property tests), no services
//
// Shared test services: unless --unit, one Swift all-in-one (tempauth + s3api) and one 3-member
// etcd cluster are started from dist/test/infra/ before the tests and stopped afterwards (also
// on SIGINT/SIGTERM and when the tests fail). Their connection details reach the test files as
// JSON in STOWAGE_TEST_SWIFT and STOWAGE_TEST_ETCD (read them with test/infra/services.ts). A
// variable already set in our environment is passed on as is and that service is not started,
// e.g. to run against a long-lived dev instance. If a service cannot start (its binaries are
// missing, or start-up fails): in CI (env CI set) we exit non-zero before running any test;
// elsewhere we say why and run without it, and the tests that need it skip.
//
// Compiled files whose .ts source no longer exists are skipped, so a stale dist/ never runs a
// deleted test. The runner's output (spec reporter, with its closing pass/fail summary) goes to
// our stdout unchanged, and our exit code is node's.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--unit');
if (unknown.length > 0) {
  process.stderr.write(`run-tests: unknown argument(s): ${unknown.join(' ')}\nusage: node scripts/run-tests.js [--unit]\n`);
  process.exit(2);
}
const unit = args.includes('--unit');
const dirs = unit ? ['src'] : ['src', 'test'];
const ci = (process.env.CI ?? '') !== '';

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

/** Services we started (each has stop()); stopped exactly once on the way out. */
const started = [];
let cache;
let child;
let interrupted;
let finishing = false;

/** Stops the services, removes the scratch dir and exits with code. */
async function finish(code) {
  if (finishing) return;
  finishing = true;
  const results = await Promise.allSettled(started.map((s) => s.stop()));
  for (const r of results) {
    if (r.status === 'rejected') process.stderr.write(`run-tests: stopping a test service failed: ${r.reason?.message ?? r.reason}\n`);
  }
  if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted !== undefined) return;
    interrupted = signal;
    // the child's exit finishes the run; before it exists, the start-up code checks `interrupted`
    if (child !== undefined) child.kill(signal);
  });
}

/** What the shared services need, and how to start them. */
const services = [
  {
    label: 'Swift AIO', envVar: 'STOWAGE_TEST_SWIFT', module: 'swift-aio.js',
    unavailable: (m) => m.swiftUnavailableReason(),
    start: (m) => m.startSwiftAio(),
    describe: (env) => env.authUrl,
  },
  {
    label: 'etcd cluster', envVar: 'STOWAGE_TEST_ETCD', module: 'etcd-cluster.js',
    unavailable: (m) => m.etcdUnavailableReason(),
    start: (m) => m.startEtcdCluster({ members: 3 }),
    describe: (env) => env.endpoints.join(' '),
  },
];

/** Starts the services not given in our env; returns the env vars to pass on. */
async function startServices() {
  const env = {};
  const t0 = Date.now();
  const problems = [];
  const starting = [];
  for (const s of services) {
    if ((process.env[s.envVar] ?? '') !== '') {
      process.stderr.write(`run-tests: using the ${s.label} given in ${s.envVar}\n`);
      continue;
    }
    const path = join(dist, 'test', 'infra', s.module);
    if (!existsSync(path)) {
      problems.push(`${s.label}: ${relative(root, path)} is missing; run \`npm run build\``);
      continue;
    }
    starting.push((async () => {
      const m = await import(pathToFileURL(path).href);
      const reason = s.unavailable(m);
      if (reason !== undefined) {
        problems.push(`${s.label}: ${reason} (\`.ci/run\` installs the Debian packages)`);
        return;
      }
      if (ci && problems.length > 0) return; // we are going to fail anyway
      try {
        const service = await s.start(m);
        started.push(service);
        env[s.envVar] = JSON.stringify(service.env);
        process.stderr.write(`run-tests: ${s.label} up in ${Date.now() - t0} ms: ${s.describe(service.env)}\n`);
      } catch (err) {
        problems.push(`${s.label} failed to start: ${err?.message ?? err}`);
      }
    })());
  }
  await Promise.all(starting);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`run-tests: ${p}\n`);
    if (ci) {
      process.stderr.write('run-tests: CI needs every shared test service; not running the tests\n');
      await finish(1);
    }
    process.stderr.write('run-tests: running without the missing service(s); the tests that need them skip\n');
  }
  return env;
}

const serviceEnv = unit ? {} : await startServices();
if (interrupted !== undefined) await finish(1);

// One scratch directory per run, shared by the test files (fixture cache); removed at the end.
cache = mkdtempSync(join(tmpdir(), 'stowage-test-run-'));
child = spawn(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, ...serviceEnv, STOWAGE_TEST_CACHE: cache } },
);

child.on('exit', (code, signal) => {
  if (signal !== null) {
    process.stderr.write(`run-tests: node --test ended by ${signal}\n`);
    void finish(1);
    return;
  }
  void finish(code ?? 1);
});
