/**
 * Stowage against `git daemon`: wall time of a full clone, a mirror push into an empty
 * repository, a one-commit fetch and a round of concurrent clients (each `ls-remote` then a
 * one-commit fetch), medians of a few runs, with each server's CPU seconds and peak RSS, and the
 * ratios Stowage / git daemon, printed as a markdown table for docs/BENCHMARKS.md. A
 * benchmark, not a test: it asserts nothing.
 *
 *   npm run bench -- [--repo BARE_PATH | --generate N | --big COMMITS] [--runs N] [--clients N]
 *                    [--protocol 0|2] [--timeout S] [--keep]
 *
 * --big generates the large history of big-history.ts (25,000 commits: about 330,000 objects).
 *
 * Everything listens on 127.0.0.1 only, every command has a time limit, and the whole run stops
 * itself after --timeout seconds (default 1800).
 */
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeHistory } from '../../test/fixtures/make-history.js';
import { cli } from '../../test/helpers/cli.js';
import { git, lines, type ClientProtocol } from '../../test/helpers/git.js';
import { startServer, type StowageServer } from '../../test/helpers/server.js';
import { makeTempDir, removeTempDir } from '../../test/helpers/tmp.js';
import { makeBigHistory } from './big-history.js';
import { TimedDaemon } from './daemon.js';
import { cpuModel, cpuSeconds, peakRssBytes, resetPeakRss, waitChildless } from './proc-stats.js';
import { formatReport, median, type Measured, type OperationResult } from './report.js';

interface Options {
  readonly repo?: string;
  readonly generate: number;
  readonly big?: number;
  readonly clients: number;
  readonly runs: number;
  readonly protocol: ClientProtocol;
  readonly timeoutS: number;
  readonly keep: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let repo: string | undefined;
  let generate = 2000;
  let big: number | undefined;
  let clients = 50;
  let runs = 3;
  let protocol: ClientProtocol = 2;
  let timeoutS = 1800;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const int = (min: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs an integer >= ${min}`);
      return v;
    };
    if (arg === '--repo') repo = resolve(argv[++i] ?? '');
    else if (arg === '--generate') generate = int(2);
    else if (arg === '--big') big = int(2);
    else if (arg === '--clients') clients = int(1);
    else if (arg === '--runs') runs = int(1);
    else if (arg === '--timeout') timeoutS = int(10);
    else if (arg === '--keep') keep = true;
    else if (arg === '--protocol') {
      const v = int(0);
      if (v !== 0 && v !== 1 && v !== 2) throw new Error('--protocol is 0, 1 or 2');
      protocol = v;
    } else throw new Error(`unknown argument ${arg}\nusage: run.js [--repo BARE_PATH | --generate N | --big COMMITS] [--runs N] [--clients N] [--protocol 0|2] [--timeout S] [--keep]`);
  }
  return { ...(repo === undefined ? {} : { repo }), ...(big === undefined ? {} : { big }), generate, clients, runs, protocol, timeoutS, keep };
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** Runs op against the long-running Stowage server: wall, CPU and peak RSS of that run alone. */
async function measureStowage(server: StowageServer, op: () => Promise<void>): Promise<Measured> {
  const pid = server.pid;
  const exactPeak = resetPeakRss(pid);
  const cpu0 = cpuSeconds(pid) ?? 0;
  const t0 = performance.now();
  await op();
  const wall = (performance.now() - t0) / 1000;
  await waitChildless(pid, 10_000);
  return { wallSeconds: wall, cpuSeconds: (cpuSeconds(pid) ?? cpu0) - cpu0, peakRssBytes: peakRssBytes(pid) ?? 0, exactPeak };
}

/** Runs op against a fresh git daemon (under GNU time) serving base. */
async function measureDaemon(base: string, scratch: string, label: string, op: (url: string) => Promise<void>): Promise<Measured> {
  const daemon = await TimedDaemon.start(base, scratch, label);
  try {
    const t0 = performance.now();
    await op(daemon.url);
    const wall = (performance.now() - t0) / 1000;
    const cost = await daemon.stop();
    return { wallSeconds: wall, ...cost, exactPeak: true };
  } catch (err) {
    daemon.kill();
    throw err;
  }
}

async function describeRepo(path: string): Promise<string> {
  const count = async (args: string[]): Promise<number> => lines((await git(['--git-dir', path, ...args], { timeoutMs: 600_000 })).stdout).length;
  const commits = await count(['rev-list', '--all']);
  const objects = await count(['rev-list', '--objects', '--all']);
  const branches = await count(['for-each-ref', 'refs/heads']);
  const tags = await count(['for-each-ref', 'refs/tags']);
  return `${commits} commits, ${objects} objects, ${branches} branches, ${tags} tags`;
}

async function main(opts: Options): Promise<void> {
  const work = await makeTempDir('stowage-bench-');
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    let source = opts.repo;
    let origin = source === undefined ? '' : `\`${source}\``;
    if (source === undefined && opts.big !== undefined) {
      source = join(work, 'source.git');
      progress(`generating the big history: ${opts.big} commits`);
      await makeBigHistory(source, { commits: opts.big });
      origin = `generated (\`--big ${opts.big}\`)`;
    } else if (source === undefined) {
      source = join(work, 'source.git');
      const branches = Math.min(200, Math.max(1, Math.floor(opts.generate / 10)));
      progress(`generating ${opts.generate} commits, ${branches} branches`);
      await makeHistory(source, { commits: opts.generate, branches });
      origin = `generated (\`--generate ${opts.generate}\`)`;
    } else {
      const bare = (await git(['--git-dir', source, 'rev-parse', '--is-bare-repository'])).stdout.trim();
      if (bare !== 'true') throw new Error(`${source} is not a bare repository`);
    }
    const summary = await describeRepo(source);
    progress(`repository: ${summary}`);
    const g = (args: readonly string[], timeoutMs = 1_800_000): Promise<unknown> => git(args, { protocolVersion: opts.protocol, timeoutMs });

    // Stowage: import into a fresh data dir, serve
    const dataDir = join(work, 'stowage-data');
    progress('importing into Stowage');
    await cli(['repo', 'import', 'bench', source], { dataDir, timeoutMs: 1_800_000 });
    const server = await startServer({ dataDir });
    cleanups.push(() => server.stop());
    const stowageUrl = (name: string): string => `${server.gitUrl}/${name}`;
    // git daemon: a local bare clone under its base path
    const base = join(work, 'daemon');
    await g(['clone', '--quiet', '--mirror', source, join(base, 'bench.git')]);

    const results: OperationResult[] = [];
    const runBoth = async (
      name: string,
      prepare: (side: 'stowage' | 'daemon', run: number) => Promise<void>,
      op: (url: (repo: string) => string, side: 'stowage' | 'daemon', run: number) => Promise<void>,
    ): Promise<void> => {
      const stowage: Measured[] = [];
      const daemon: Measured[] = [];
      for (let run = 0; run < opts.runs; run++) {
        progress(`${name}: run ${run + 1}/${opts.runs}`);
        await prepare('stowage', run);
        stowage.push(await measureStowage(server, () => op(stowageUrl, 'stowage', run)));
        await prepare('daemon', run);
        daemon.push(await measureDaemon(base, work, `${name.replace(/\W+/g, '-')}-${run}`, (url) => op((repo) => `${url}/${repo}`, 'daemon', run)));
      }
      results.push({ name, stowage, daemon });
      // Each row as soon as it is measured, so a run stopped by its time limit still reports.
      const med = (xs: readonly Measured[], k: 'wallSeconds' | 'cpuSeconds' | 'peakRssBytes'): number => median(xs.map((x) => x[k]));
      progress(
        `${name}: wall ${med(stowage, 'wallSeconds').toFixed(2)} s vs ${med(daemon, 'wallSeconds').toFixed(2)} s, ` +
          `CPU ${med(stowage, 'cpuSeconds').toFixed(2)} s vs ${med(daemon, 'cpuSeconds').toFixed(2)} s, ` +
          `RSS ${(med(stowage, 'peakRssBytes') / 1048576).toFixed(0)} MiB vs ${(med(daemon, 'peakRssBytes') / 1048576).toFixed(0)} MiB`,
      );
    };

    await runBoth(
      'full clone (`clone --mirror`)',
      async () => undefined,
      async (url, side, run) => {
        const dst = join(work, `clone-${side}-${run}.git`);
        await g(['clone', '--quiet', '--mirror', url('bench'), dst]);
        await rm(dst, { recursive: true, force: true });
      },
    );
    await runBoth(
      'mirror push into an empty repository',
      async (side, run) => {
        if (side === 'stowage') await cli(['repo', 'create', `push-${run}`], { dataDir });
        else await g(['init', '--quiet', '--bare', join(base, `push-${run}.git`)]);
      },
      async (url, _side, run) => {
        await g(['--git-dir', source, 'push', '--quiet', '--mirror', url(`push-${run}`)]);
      },
    );
    // one-commit fetch: both fetchers start from the source's objects; each run a pusher adds one
    // commit to master (not measured), then the fetcher fetches it (measured)
    const pusher = join(work, 'pusher');
    await g(['clone', '--quiet', source, pusher]);
    for (const side of ['stowage', 'daemon']) {
      const fetcher = join(work, `fetcher-${side}.git`);
      await g(['init', '--quiet', '--bare', fetcher]);
      await g(['--git-dir', fetcher, 'fetch', '--quiet', source, '+refs/heads/*:refs/remotes/origin/*']);
    }
    await runBoth(
      'one-commit fetch',
      async (side, run) => {
        const file = join(pusher, `bench-${side}-${run}.txt`);
        await writeFile(file, `one more commit ${side} ${run}\n`);
        await git(['-C', pusher, 'add', '.']);
        await git(['-C', pusher, 'commit', '--quiet', '-m', `bench ${side} ${run}`]);
        const target = side === 'stowage' ? stowageUrl('bench') : join(base, 'bench.git');
        await g(['-C', pusher, 'push', '--quiet', target, 'HEAD:refs/heads/master']);
      },
      async (url, side) => {
        await g(['--git-dir', join(work, `fetcher-${side}.git`), 'fetch', '--quiet', url('bench'), '+refs/heads/*:refs/remotes/origin/*']);
      },
    );

    // Concurrent clients: each has its own small repository borrowing the fetcher's objects
    // (alternates) and refs; per run a pusher adds one commit (not measured), then all clients
    // run ls-remote and fetch it at once. Every command has a time limit.
    const clients = opts.clients;
    for (const side of ['stowage', 'daemon']) {
      const baseRepo = join(work, `fetcher-${side}.git`);
      await g(['--git-dir', baseRepo, 'pack-refs', '--all']);
      for (let i = 0; i < clients; i++) {
        const dir = join(work, `client-${side}-${i}.git`);
        await g(['init', '--quiet', '--bare', dir]);
        await writeFile(join(dir, 'objects', 'info', 'alternates'), `${join(baseRepo, 'objects')}\n`);
        await copyFile(join(baseRepo, 'packed-refs'), join(dir, 'packed-refs'));
      }
    }
    const concurrentName = `${clients} concurrent clients (ls-remote + one-commit fetch)`;
    await runBoth(
      concurrentName,
      async (side, run) => {
        const file = join(pusher, `bench-conc-${side}-${run}.txt`);
        await writeFile(file, `one more commit for the clients ${side} ${run}\n`);
        await git(['-C', pusher, 'add', '.']);
        await git(['-C', pusher, 'commit', '--quiet', '-m', `bench clients ${side} ${run}`]);
        const target = side === 'stowage' ? stowageUrl('bench') : join(base, 'bench.git');
        await g(['-C', pusher, 'push', '--quiet', target, 'HEAD:refs/heads/master']);
      },
      async (url, side) => {
        const limit = { protocolVersion: opts.protocol, timeoutMs: 300_000 };
        await Promise.all(
          Array.from({ length: clients }, async (_, i) => {
            const dir = join(work, `client-${side}-${i}.git`);
            await git(['--git-dir', dir, 'ls-remote', url('bench')], limit);
            await git(['--git-dir', dir, 'fetch', '--quiet', url('bench'), '+refs/heads/*:refs/remotes/origin/*'], limit);
          }),
        );
      },
    );

    const gitVersion = (await git(['--version'])).stdout.trim();
    process.stdout.write(
      formatReport(results, {
        repository: `${origin}: ${summary}`,
        machine: `${cpuModel()}; ${gitVersion}; node ${process.version}`,
        runs: opts.runs,
        protocol: opts.protocol,
        ...(clients > 0 ? { concurrent: { name: concurrentName, clients } } : {}),
      }),
    );
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
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
  process.exit(1);
}, opts.timeoutS * 1000);
try {
  await main(opts);
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  clearTimeout(limit);
}
