/**
 * The benchmark's rows for one Stowage backend: the repository imported into that store and
 * served by one long-running `stowage serve`, against a fresh `git daemon` per run serving a
 * local bare clone. Rows: full clone, mirror push into an empty repository, one-commit fetch,
 * and a round of concurrent clients (each `ls-remote` then a one-commit fetch).
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cli } from '../../test/helpers/cli.js';
import { git, type ClientProtocol } from '../../test/helpers/git.js';
import { startServer, type StowageServer } from '../../test/helpers/server.js';
import { TimedDaemon } from './daemon.js';
import { cpuSeconds, machineCpu, peakRssBytes, reapedChildrenCpuSeconds, resetPeakRss, waitChildless, waitIdle } from './proc-stats.js';
import { median, type Measured, type OperationResult } from './report.js';
import type { BenchStore } from './stores.js';

/** The rows, in the order they run. */
export const ROWS = ['clone', 'push', 'fetch', 'clients'] as const;
/** One row's name on the command line. */
export type RowName = (typeof ROWS)[number];

/** What runRows needs. */
export interface RowsContext {
  /** The bare repository benchmarked (not modified). */
  readonly source: string;
  /** A fresh directory for this backend's servers and clients. */
  readonly work: string;
  readonly store: BenchStore;
  readonly runs: number;
  readonly clients: number;
  readonly protocol: ClientProtocol;
  readonly rows: readonly RowName[];
  /** CPU seconds used so far by the store's own services, when known (Swift, etcd). */
  readonly storeCpu?: () => number | undefined;
  readonly progress: (text: string) => void;
}

/** What one backend's rows measured. */
export interface RowsResult {
  readonly results: OperationResult[];
  /** Wall seconds of `stowage repo import` into this store. */
  readonly importSeconds: number;
  /** The concurrent-clients row's name (for the report's throughput line). */
  readonly concurrentName: string;
}

/**
 * Runs op against the long-running Stowage server: wall, CPU and peak RSS of that run alone.
 * It starts once the server is idle (background work of the preparation, such as a compaction
 * after the push that prepares a fetch, is not the fetch's), and its CPU includes what the
 * server does in the background after op returned, until it is idle again (a push's compaction
 * is the push's, as git's receive-pack runs `gc --auto` before it ends).
 */
async function measureStowage(server: StowageServer, storeCpu: (() => number | undefined) | undefined, op: () => Promise<void>): Promise<Measured> {
  const pid = server.pid;
  await waitIdle(pid);
  const exactPeak = resetPeakRss(pid);
  const cpu0 = cpuSeconds(pid) ?? 0;
  const store0 = storeCpu?.();
  const m0 = machineCpu();
  const c0 = reapedChildrenCpuSeconds();
  const t0 = performance.now();
  await op();
  const wall = (performance.now() - t0) / 1000;
  const m1 = machineCpu();
  const c1 = reapedChildrenCpuSeconds();
  await waitChildless(pid, 10_000);
  const cpuDone = cpuSeconds(pid) ?? cpu0;
  const after = await waitIdle(pid);
  const store1 = storeCpu?.();
  return {
    wallSeconds: wall,
    cpuSeconds: cpuDone + after - cpu0,
    afterCpuSeconds: after,
    peakRssBytes: peakRssBytes(pid) ?? 0,
    exactPeak,
    ...(store0 === undefined || store1 === undefined ? {} : { storeCpuSeconds: store1 - store0 }),
    ...machineShare(m0, m1),
    ...clientShare(c0, c1),
  };
}

/** The client commands' CPU between two readings, for Measured. */
function clientShare(a: number | undefined, b: number | undefined): { clientCpuSeconds?: number } {
  return a === undefined || b === undefined ? {} : { clientCpuSeconds: b - a };
}

/** The machine's busy CPU between two readings, for Measured. */
function machineShare(a: ReturnType<typeof machineCpu>, b: ReturnType<typeof machineCpu>): { machineCpuSeconds?: number; cpus?: number } {
  return a === undefined || b === undefined ? {} : { machineCpuSeconds: b.busySeconds - a.busySeconds, cpus: b.cpus };
}

/** Runs op against a fresh git daemon (under GNU time) serving base. */
async function measureDaemon(base: string, scratch: string, label: string, op: (url: string) => Promise<void>): Promise<Measured> {
  const daemon = await TimedDaemon.start(base, scratch, label);
  try {
    const m0 = machineCpu();
    const c0 = reapedChildrenCpuSeconds();
    const t0 = performance.now();
    await op(daemon.url);
    const wall = (performance.now() - t0) / 1000;
    const m1 = machineCpu();
    const c1 = reapedChildrenCpuSeconds();
    const cost = await daemon.stop();
    return { wallSeconds: wall, ...cost, exactPeak: true, ...machineShare(m0, m1), ...clientShare(c0, c1) };
  } catch (err) {
    daemon.kill();
    throw err;
  }
}

/** Imports ctx.source into ctx.store, serves it and measures every row against git daemon. */
export async function runRows(ctx: RowsContext): Promise<RowsResult> {
  const { source, work, store, progress } = ctx;
  await mkdir(work, { recursive: true });
  const g = (args: readonly string[], timeoutMs = 1_800_000): Promise<unknown> => git(args, { protocolVersion: ctx.protocol, timeoutMs });
  const dataDir = join(work, 'stowage-data');
  const stowage = (args: readonly string[], timeoutMs?: number): Promise<unknown> =>
    cli([...args, ...store.args], { dataDir, env: store.env, ...(timeoutMs === undefined ? {} : { timeoutMs }) });

  progress(`${store.name}: importing into Stowage (${store.description})`);
  const i0 = performance.now();
  await stowage(['repo', 'import', 'bench', source], 1_800_000);
  const importSeconds = (performance.now() - i0) / 1000;
  progress(`${store.name}: import took ${importSeconds.toFixed(2)} s`);
  const server = await startServer({ dataDir, extraArgs: store.args, env: store.env, startTimeoutMs: 60_000 });
  try {
    const stowageUrl = (name: string): string => `${server.gitUrl}/${name}`;
    const base = join(work, 'daemon');
    await g(['clone', '--quiet', '--mirror', source, join(base, 'bench.git')]);

    const results: OperationResult[] = [];
    const runBoth = async (
      name: string,
      prepare: (side: 'stowage' | 'daemon', run: number) => Promise<void>,
      op: (url: (repo: string) => string, side: 'stowage' | 'daemon', run: number) => Promise<void>,
    ): Promise<void> => {
      const mine: Measured[] = [];
      const daemon: Measured[] = [];
      for (let run = 0; run < ctx.runs; run++) {
        progress(`${store.name}: ${name}: run ${run + 1}/${ctx.runs}`);
        await prepare('stowage', run);
        mine.push(await measureStowage(server, ctx.storeCpu, () => op(stowageUrl, 'stowage', run)));
        await prepare('daemon', run);
        daemon.push(await measureDaemon(base, work, `${name.replace(/\W+/g, '-')}-${run}`, (url) => op((repo) => `${url}/${repo}`, 'daemon', run)));
      }
      results.push({ name, stowage: mine, daemon });
      // Each row as soon as it is measured, so a run stopped by its time limit still reports.
      const med = (xs: readonly Measured[], k: 'wallSeconds' | 'cpuSeconds' | 'peakRssBytes'): number => median(xs.map((x) => x[k]));
      const storeCpus = mine.flatMap((x) => (x.storeCpuSeconds === undefined ? [] : [x.storeCpuSeconds]));
      const afterCpu = median(mine.map((x) => x.afterCpuSeconds ?? 0));
      progress(
        `${store.name}: ${name}: wall ${med(mine, 'wallSeconds').toFixed(2)} s vs ${med(daemon, 'wallSeconds').toFixed(2)} s, ` +
          `CPU ${med(mine, 'cpuSeconds').toFixed(2)} s vs ${med(daemon, 'cpuSeconds').toFixed(2)} s` +
          (afterCpu > 0 ? ` (of which ${afterCpu.toFixed(2)} s in the background after it returned)` : '') +
          (storeCpus.length > 0 ? ` (+ store services ${median(storeCpus).toFixed(2)} s)` : '') +
          `, RSS ${(med(mine, 'peakRssBytes') / 1048576).toFixed(0)} MiB vs ${(med(daemon, 'peakRssBytes') / 1048576).toFixed(0)} MiB`,
      );
    };

    const want = (row: RowName): boolean => ctx.rows.includes(row);
    if (want('clone')) await runBoth(
      'full clone (`clone --mirror`)',
      async () => undefined,
      async (url, side, run) => {
        const dst = join(work, `clone-${side}-${run}.git`);
        await g(['clone', '--quiet', '--mirror', url('bench'), dst]);
        await rm(dst, { recursive: true, force: true });
      },
    );
    if (want('push')) await runBoth(
      'mirror push into an empty repository',
      async (side, run) => {
        if (side === 'stowage') await stowage(['repo', 'create', `push-${run}`]);
        else await g(['init', '--quiet', '--bare', join(base, `push-${run}.git`)]);
      },
      async (url, _side, run) => {
        await g(['--git-dir', source, 'push', '--quiet', '--mirror', url(`push-${run}`)]);
      },
    );
    const concurrentName = `${ctx.clients} concurrent clients (ls-remote + one-commit fetch)`;
    if (want('fetch') || want('clients')) {
      // one-commit fetch: both fetchers start from the source's objects; each run a pusher adds one
      // commit to master (not measured), then the fetcher fetches it (measured)
      const pusher = join(work, 'pusher');
      await g(['clone', '--quiet', source, pusher]);
      for (const side of ['stowage', 'daemon']) {
        const fetcher = join(work, `fetcher-${side}.git`);
        await g(['init', '--quiet', '--bare', fetcher]);
        await g(['--git-dir', fetcher, 'fetch', '--quiet', source, '+refs/heads/*:refs/remotes/origin/*']);
      }
      const pushOne = async (side: 'stowage' | 'daemon', tag: string): Promise<void> => {
        await writeFile(join(pusher, `bench-${tag}-${side}.txt`), `one more commit ${tag} ${side}\n`);
        await git(['-C', pusher, 'add', '.']);
        await git(['-C', pusher, 'commit', '--quiet', '-m', `bench ${tag} ${side}`]);
        const target = side === 'stowage' ? stowageUrl('bench') : join(base, 'bench.git');
        await g(['-C', pusher, 'push', '--quiet', target, 'HEAD:refs/heads/master']);
      };
      if (want('fetch')) await runBoth(
        'one-commit fetch',
        (side, run) => pushOne(side, `fetch-${run}`),
        async (url, side) => {
          await g(['--git-dir', join(work, `fetcher-${side}.git`), 'fetch', '--quiet', url('bench'), '+refs/heads/*:refs/remotes/origin/*']);
        },
      );

      // Concurrent clients: each has its own small repository borrowing the fetcher's objects
      // (alternates) and refs; per run a pusher adds one commit (not measured), then all clients
      // run ls-remote and fetch it at once. Every command has a time limit.
      const clients = ctx.clients;
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
      if (clients > 0 && want('clients')) {
        await runBoth(
          concurrentName,
          (side, run) => pushOne(side, `clients-${run}`),
          async (url, side) => {
            const limit = { protocolVersion: ctx.protocol, timeoutMs: 300_000 };
            // A client whose connection is refused or reset (git daemon listens with a backlog of
            // 5) tries again once; the retry counts in the wall time and is reported.
            let retries = 0;
            const twice = async (args: readonly string[]): Promise<void> => {
              try {
                await git(args, limit);
              } catch {
                retries += 1;
                await git(args, limit);
              }
            };
            await Promise.all(
              Array.from({ length: clients }, async (_, i) => {
                const dir = join(work, `client-${side}-${i}.git`);
                await twice(['--git-dir', dir, 'ls-remote', url('bench')]);
                await twice(['--git-dir', dir, 'fetch', '--quiet', url('bench'), '+refs/heads/*:refs/remotes/origin/*']);
              }),
            );
            if (retries > 0) progress(`${store.name}: ${side}: ${retries} client command(s) failed once and were retried`);
          },
        );
      }
    }
    return { results, importSeconds, concurrentName };
  } finally {
    await server.stop().catch(() => undefined);
  }
}
