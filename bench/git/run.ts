/**
 * Stowage against `git daemon`: wall time of a full clone, a mirror push into an empty
 * repository, a one-commit fetch and a round of concurrent clients (each `ls-remote` then a
 * one-commit fetch), medians of a few runs, with each server's CPU seconds and peak RSS, and the
 * ratios Stowage / git daemon, printed as a markdown table for docs/BENCHMARKS.md. A
 * benchmark, not a test: it asserts nothing.
 *
 *   npm run bench -- [--repo BARE_PATH | --generate N | --big COMMITS] [--runs N] [--clients N]
 *                    [--protocol 0|2] [--timeout S] [--keep] [--rows clone,push,fetch,clients]
 *                    [--store URL] [--meta URL] | [--backends fs,swift,s3] [--services own|env]
 *
 * --big generates the large history of big-history.ts (25,000 commits: about 330,000 objects).
 * --store / --meta go to every `stowage serve` and `stowage repo …` run (STOWAGE_STORE and
 * STOWAGE_META in the environment work too). --backends runs every row on each backend in turn
 * and prints one table per backend, then each remote backend against fs and git daemon; swift
 * and s3 keep refs in etcd, on a Swift all-in-one and a 1-member etcd started for the run
 * (--services own, the default) or on the ones named by STOWAGE_TEST_SWIFT / STOWAGE_TEST_ETCD
 * (--services env).
 *
 * Everything listens on 127.0.0.1 only, every command has a time limit, and the whole run stops
 * itself after --timeout seconds (default 1800 per backend).
 */
import { join, resolve } from 'node:path';
import { makeHistory } from '../../test/fixtures/make-history.js';
import { git, lines, type ClientProtocol } from '../../test/helpers/git.js';
import { makeTempDir, removeTempDir } from '../../test/helpers/tmp.js';
import { makeBigHistory } from './big-history.js';
import { cpuModel } from './proc-stats.js';
import { formatComparison, formatReport, type BackendResults } from './report.js';
import { ROWS, runRows, type RowName } from './rows.js';
import { BACKENDS, customStore, fsStore, remoteStore, RemoteServices, type BackendName, type BenchStore } from './stores.js';

interface Options {
  readonly repo?: string;
  readonly generate: number;
  readonly big?: number;
  readonly clients: number;
  readonly runs: number;
  readonly protocol: ClientProtocol;
  readonly timeoutS: number;
  readonly keep: boolean;
  readonly store?: string;
  readonly meta?: string;
  /** Undefined: one run on --store/--meta (or the environment, or the data dir). */
  readonly backends?: readonly BackendName[];
  readonly services: 'own' | 'env';
  /** The rows to measure (all by default). */
  readonly rows: readonly RowName[];
}

const USAGE =
  'usage: run.js [--repo BARE_PATH | --generate N | --big COMMITS] [--runs N] [--clients N] [--protocol 0|2] [--timeout S] [--keep] ' +
  '[--store URL] [--meta URL] | [--backends fs,swift,s3] [--services own|env] [--rows clone,push,fetch,clients]';

function parseArgs(argv: readonly string[]): Options {
  let repo: string | undefined;
  let generate = 2000;
  let big: number | undefined;
  let clients = 50;
  let runs = 3;
  let protocol: ClientProtocol = 2;
  let timeoutS: number | undefined;
  let keep = false;
  let store: string | undefined;
  let meta: string | undefined;
  let backends: BackendName[] | undefined;
  let services: 'own' | 'env' = 'own';
  let rows: readonly RowName[] = ROWS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const int = (min: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs an integer >= ${min}`);
      return v;
    };
    const text = (): string => {
      const v = argv[++i];
      if (v === undefined || v === '') throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--repo') repo = resolve(text());
    else if (arg === '--generate') generate = int(2);
    else if (arg === '--big') big = int(2);
    else if (arg === '--clients') clients = int(0);
    else if (arg === '--runs') runs = int(1);
    else if (arg === '--timeout') timeoutS = int(10);
    else if (arg === '--keep') keep = true;
    else if (arg === '--store') store = text();
    else if (arg === '--meta') meta = text();
    else if (arg === '--backends') {
      const names = text().split(',').map((n) => n.trim());
      const bad = names.filter((n) => !(BACKENDS as readonly string[]).includes(n));
      if (bad.length > 0 || names.length === 0) throw new Error(`--backends takes a comma-separated list of ${BACKENDS.join(', ')}; unknown: ${bad.join(', ')}`);
      backends = [...new Set(names as BackendName[])];
    } else if (arg === '--services') {
      const v = text();
      if (v !== 'own' && v !== 'env') throw new Error('--services is own or env');
      services = v;
    } else if (arg === '--rows') {
      const names = text().split(',').map((n) => n.trim());
      const bad = names.filter((n) => !(ROWS as readonly string[]).includes(n));
      if (bad.length > 0) throw new Error(`--rows takes a comma-separated list of ${ROWS.join(', ')}; unknown: ${bad.join(', ')}`);
      rows = ROWS.filter((r) => names.includes(r));
    } else if (arg === '--protocol') {
      const v = int(0);
      if (v !== 0 && v !== 1 && v !== 2) throw new Error('--protocol is 0, 1 or 2');
      protocol = v;
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  if (backends !== undefined && (store !== undefined || meta !== undefined)) throw new Error('--backends chooses the stores itself: give either --backends or --store/--meta');
  return {
    ...(repo === undefined ? {} : { repo }),
    ...(big === undefined ? {} : { big }),
    ...(store === undefined ? {} : { store }),
    ...(meta === undefined ? {} : { meta }),
    ...(backends === undefined ? {} : { backends }),
    generate, clients, runs, protocol, timeoutS: timeoutS ?? 1800 * (backends?.length ?? 1), keep, services, rows,
  };
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

async function describeRepo(path: string): Promise<string> {
  const count = async (args: string[]): Promise<number> => lines((await git(['--git-dir', path, ...args], { timeoutMs: 600_000 })).stdout).length;
  const commits = await count(['rev-list', '--all']);
  const objects = await count(['rev-list', '--objects', '--all']);
  const branches = await count(['for-each-ref', 'refs/heads']);
  const tags = await count(['for-each-ref', 'refs/tags']);
  return `${commits} commits, ${objects} objects, ${branches} branches, ${tags} tags`;
}

/** The source repository: given, or generated under work. */
async function prepareSource(opts: Options, work: string): Promise<{ source: string; origin: string }> {
  if (opts.repo !== undefined) {
    const bare = (await git(['--git-dir', opts.repo, 'rev-parse', '--is-bare-repository'])).stdout.trim();
    if (bare !== 'true') throw new Error(`${opts.repo} is not a bare repository`);
    return { source: opts.repo, origin: `\`${opts.repo}\`` };
  }
  const source = join(work, 'source.git');
  if (opts.big !== undefined) {
    progress(`generating the big history: ${opts.big} commits`);
    await makeBigHistory(source, { commits: opts.big });
    return { source, origin: `generated (\`--big ${opts.big}\`)` };
  }
  const branches = Math.min(200, Math.max(1, Math.floor(opts.generate / 10)));
  progress(`generating ${opts.generate} commits, ${branches} branches`);
  await makeHistory(source, { commits: opts.generate, branches });
  return { source, origin: `generated (\`--generate ${opts.generate}\`)` };
}

/** Services started for the run, stopped by the time limit too. */
let services: RemoteServices | undefined;

async function main(opts: Options): Promise<void> {
  const work = await makeTempDir('stowage-bench-');
  try {
    const { source, origin } = await prepareSource(opts, work);
    const summary = await describeRepo(source);
    progress(`repository: ${summary}`);
    const names = opts.backends ?? ['custom'];
    if (names.some((n) => n === 'swift' || n === 's3')) {
      progress(opts.services === 'own' ? 'starting a Swift AIO and a 1-member etcd' : 'using the Swift AIO and etcd of STOWAGE_TEST_SWIFT / STOWAGE_TEST_ETCD');
      services = opts.services === 'own' ? await RemoteServices.start() : RemoteServices.fromEnv();
    }
    const gitVersion = (await git(['--version'])).stdout.trim();
    const all: BackendResults[] = [];
    for (const name of names) {
      const dir = join(work, `backend-${name}`);
      let store: BenchStore;
      if (name === 'fs') store = fsStore(join(dir, 'stowage-data'));
      else if (name === 'custom') store = customStore(opts.store, opts.meta);
      else store = await remoteStore(name, services as RemoteServices);
      // One backend's failure is reported; the others still run.
      try {
        const storeCpu = services?.owned === true && name !== 'fs' && name !== 'custom' ? () => services?.cpuSeconds() : undefined;
        const rows = await runRows({
          source, work: dir, store, runs: opts.runs, clients: opts.clients, protocol: opts.protocol, rows: opts.rows, progress,
          ...(storeCpu === undefined ? {} : { storeCpu }),
        });
        all.push({ name, results: rows.results });
        process.stdout.write(
          formatReport(rows.results, {
            repository: `${origin}: ${summary}`,
            machine: `${cpuModel()}; ${gitVersion}; node ${process.version}`,
            runs: opts.runs,
            protocol: opts.protocol,
            ...(opts.backends === undefined && opts.store === undefined && process.env['STOWAGE_STORE'] === undefined
              ? {}
              : { backend: { name, description: store.description, importSeconds: rows.importSeconds } }),
            ...(opts.clients > 0 && opts.rows.includes('clients') ? { concurrent: { name: rows.concurrentName, clients: opts.clients } } : {}),
          }),
        );
      } catch (err) {
        progress(`${name}: failed, no table for this backend: ${(err as Error).stack ?? String(err)}`);
        process.exitCode = 1;
      } finally {
        await store.cleanup().catch((err: unknown) => progress(`${name}: cleanup failed: ${String(err)}`));
        if (!opts.keep) await removeTempDir(dir).catch(() => undefined);
      }
    }
    if (all.length > 1) process.stdout.write(formatComparison(all));
  } finally {
    await services?.stop();
    if (opts.keep) progress(`kept ${work}`);
    else await removeTempDir(work);
  }
}

const opts = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
})();
const limit = setTimeout(() => {
  process.stderr.write(`bench: stopped after the ${opts.timeoutS} s time limit\n`);
  // the exit hooks kill every child; this also removes the services' directories
  const stopped = services?.stop() ?? Promise.resolve();
  void Promise.race([stopped, new Promise((r) => setTimeout(r, 10_000))]).finally(() => process.exit(1));
}, opts.timeoutS * 1000);
try {
  await main(opts);
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  clearTimeout(limit);
}
