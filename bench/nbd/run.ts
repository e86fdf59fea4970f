/**
 * Stowage's NBD server (fs backend) against `nbdkit file` serving a plain file on the same disk:
 * nbdcopy of a 1 GiB random image into the export and back out to a file (wall time, MiB/s),
 * and fio 4 KiB random read and random write through fio's nbd engine (IOPS). Prints a markdown
 * table with the ratio Stowage / nbdkit per row (all throughputs: higher is better). A
 * benchmark, not a test: it asserts nothing.
 *
 *   npm run bench:nbd -- [--runtime S] [--timeout S] [--keep]
 *
 * Everything listens on 127.0.0.1 only, every command has a time limit, the servers are killed
 * at the end, and the whole run stops itself after --timeout seconds (default 1200).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { open, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startNbdServer, type NbdServerProcess } from '../../test/e2e/nbd-helpers.js';
import { STOWAGE_BIN, PROJECT_ROOT } from '../../test/helpers/paths.js';
import { makeTempDir, removeTempDir } from '../../test/helpers/tmp.js';
import { cpuModel } from '../git/proc-stats.js';

const MiB = 1024 * 1024;
const IMAGE_BYTES = 1024 * MiB;
const VOLUME = 'bench';

interface Options {
  readonly runtimeS: number;
  readonly timeoutS: number;
  readonly keep: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  let runtimeS = 15;
  let timeoutS = 1200;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const int = (min: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs an integer >= ${min}`);
      return v;
    };
    if (arg === '--runtime') runtimeS = int(1);
    else if (arg === '--timeout') timeoutS = int(30);
    else if (arg === '--keep') keep = true;
    else throw new Error(`unknown argument ${arg}\nusage: run.js [--runtime S] [--timeout S] [--keep]`);
  }
  return { runtimeS, timeoutS, keep };
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** Runs a tool in cwd with a hard time limit (SIGKILL); rejects with its output on failure. */
function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { cwd, encoding: 'utf8', maxBuffer: 64 * MiB, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A free TCP port on 127.0.0.1 (nbdkit needs a number up front). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** A running `nbdkit file` on 127.0.0.1. */
interface NbdkitProcess {
  readonly nbdUrl: string;
  stop(): Promise<void>;
}

/** Starts `nbdkit -f file FILE` on a free loopback port and waits until it accepts nbdinfo. */
async function startNbdkit(file: string, cwd: string): Promise<NbdkitProcess> {
  const port = await freePort();
  const child = spawn('nbdkit', ['-f', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), 'file', file], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const nbdUrl = `nbd://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nbdkit exited early:\n${err}`);
    try {
      await run('nbdinfo', ['--size', `${nbdUrl}/${VOLUME}`], cwd, 10_000);
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nbdkit did not answer in 30 s: ${(e as Error).message}\n${err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    nbdUrl,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      children.delete(child);
    },
  };
}

/** Writes size random bytes to file in 16 MiB chunks. */
async function writeRandomFile(file: string, size: number): Promise<void> {
  const fh = await open(file, 'w');
  try {
    const chunk = Buffer.allocUnsafe(16 * MiB);
    for (let off = 0; off < size; off += chunk.length) {
      const n = Math.min(chunk.length, size - off);
      randomFillSync(chunk, 0, n);
      await fh.write(chunk, 0, n, off);
    }
  } finally {
    await fh.close();
  }
}

interface Row {
  readonly name: string;
  readonly unit: string;
  readonly stowage: number;
  readonly nbdkit: number;
  readonly stowageNote: string;
  readonly nbdkitNote: string;
}

/** nbdcopy from → to; returns seconds. */
async function timedCopy(from: string, to: string, cwd: string, flush: boolean): Promise<number> {
  const t0 = performance.now();
  await run('nbdcopy', [...(flush ? ['--flush'] : []), from, to], cwd, 600_000);
  return (performance.now() - t0) / 1000;
}

/** The fio arguments of one 4 KiB random workload against url. */
function fioArgs(url: string, rw: 'randread' | 'randwrite', runtimeS: number): string[] {
  return [
    `--name=${rw}`,
    '--ioengine=nbd',
    `--uri=${url}`,
    `--rw=${rw}`,
    '--bs=4k',
    '--iodepth=16',
    '--size=256M',
    '--time_based',
    `--runtime=${runtimeS}`,
    '--output-format=json',
    '--verify_state_save=0',
  ];
}

/** Runs fio and returns the IOPS of the read or write side. */
async function fioIops(url: string, rw: 'randread' | 'randwrite', runtimeS: number, cwd: string): Promise<number> {
  const out = await run('fio', fioArgs(url, rw, runtimeS), cwd, (runtimeS + 60) * 1000);
  type Side = { iops: number };
  const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { error: number; read: Side; write: Side }[] }).jobs[0];
  if (job === undefined || job.error !== 0) throw new Error(`fio ${rw} reported an error:\n${out.slice(0, 4000)}`);
  return rw === 'randread' ? job.read.iops : job.write.iops;
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function formatTable(rows: readonly Row[], machine: string, command: string): string {
  const out = [
    '| operation | unit | Stowage | nbdkit file | Stowage / nbdkit |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => {
      const s = `${fmt(r.stowage)}${r.stowageNote}`;
      const n = `${fmt(r.nbdkit)}${r.nbdkitNote}`;
      return `| ${r.name} | ${r.unit} | ${s} | ${n} | ${(r.stowage / r.nbdkit).toFixed(2)} |`;
    }),
    '',
    'All numbers are throughputs: higher is better, and a ratio of 1.00 means Stowage matches',
    'nbdkit; the goal is a ratio of at least 0.50 on every row. Wall times in parentheses.',
    '',
    `Machine: ${machine}.`,
    '',
    `Command: \`${command}\``,
    '',
  ];
  return `${out.join('\n')}\n`;
}

async function main(opts: Options): Promise<void> {
  const work = await makeTempDir('stowage-nbd-bench-');
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const image = join(work, 'random.img');
    progress('generating a 1 GiB random image');
    await writeRandomFile(image, IMAGE_BYTES);

    // Stowage: a fresh fs data dir with one 1 GiB volume
    const dataDir = join(work, 'stowage-data');
    await run(process.execPath, [STOWAGE_BIN, 'nbd', 'create', VOLUME, '--size', '1G', '--data', dataDir], PROJECT_ROOT, 60_000);
    const stowage: NbdServerProcess = await startNbdServer(dataDir);
    cleanups.push(() => stowage.stop());
    // nbdkit: a sparse 1 GiB plain file
    const plain = join(work, 'nbdkit.img');
    await writeFile(plain, '');
    await truncate(plain, IMAGE_BYTES);
    const nbdkit = await startNbdkit(plain, work);
    cleanups.push(() => nbdkit.stop());

    const sides = [
      { key: 'stowage', url: `${stowage.nbdUrl}/${VOLUME}` },
      { key: 'nbdkit', url: `${nbdkit.nbdUrl}/${VOLUME}` },
    ] as const;
    const rows: Row[] = [];
    const mibps = (s: number): number => IMAGE_BYTES / MiB / s;
    const secs = (s: number): string => ` (${s.toFixed(1)} s)`;

    const copyIn: number[] = [];
    for (const side of sides) {
      progress(`nbdcopy in: ${side.key}`);
      copyIn.push(await timedCopy(image, side.url, work, true));
    }
    rows.push({ name: 'nbdcopy 1 GiB random image in (`--flush`)', unit: 'MiB/s', stowage: mibps(copyIn[0] ?? 0), nbdkit: mibps(copyIn[1] ?? 0), stowageNote: secs(copyIn[0] ?? 0), nbdkitNote: secs(copyIn[1] ?? 0) });

    const copyOut: number[] = [];
    for (const side of sides) {
      progress(`nbdcopy out: ${side.key}`);
      const dst = join(work, `out-${side.key}.img`);
      copyOut.push(await timedCopy(side.url, dst, work, false));
      if ((await stat(dst)).size !== IMAGE_BYTES) throw new Error(`nbdcopy out of ${side.key} wrote a file of the wrong size`);
      await run('cmp', [image, dst], work, 120_000);
      await rm(dst, { force: true });
    }
    rows.push({ name: 'nbdcopy 1 GiB out to a file', unit: 'MiB/s', stowage: mibps(copyOut[0] ?? 0), nbdkit: mibps(copyOut[1] ?? 0), stowageNote: secs(copyOut[0] ?? 0), nbdkitNote: secs(copyOut[1] ?? 0) });

    for (const rw of ['randread', 'randwrite'] as const) {
      const iops: number[] = [];
      for (const side of sides) {
        progress(`fio ${rw} ${opts.runtimeS} s: ${side.key}`);
        iops.push(await fioIops(side.url, rw, opts.runtimeS, work));
      }
      rows.push({ name: `fio 4 KiB ${rw}, iodepth 16`, unit: 'IOPS', stowage: iops[0] ?? 0, nbdkit: iops[1] ?? 0, stowageNote: '', nbdkitNote: '' });
    }

    const nbdkitVersion = (await run('nbdkit', ['--version'], work, 10_000)).trim();
    const fioVersion = (await run('fio', ['--version'], work, 10_000)).trim();
    const machine = `${cpuModel()}; node ${process.version}; ${nbdkitVersion}; ${fioVersion}; both data dirs under os.tmpdir() on the same disk`;
    const command = ['npm run bench:nbd', '--', ...process.argv.slice(2)].join(' ').replace(/ --$/, '');
    process.stdout.write(formatTable(rows, machine, command));
    process.stdout.write(`\nfio arguments: \`fio ${fioArgs('nbd://127.0.0.1:PORT/bench', 'randread', opts.runtimeS).join(' ')}\` (and \`--rw=randwrite\`)\n`);
    if (/"level":"(error|fatal)"/.test(stowage.output())) progress('warning: the Stowage server logged errors');
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
