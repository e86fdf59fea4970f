/**
 * Stowage's NBD server against nbdkit on the same storage: with `--backend fs` (the default)
 * Stowage's fs store against `nbdkit file` serving a plain file on the same disk; with
 * `--backend s3` Stowage's S3 store (refs and leases in etcd) against nbdkit's S3 plugin
 * behind its blocksize filter (so 4 KiB requests work), with the same object size up to
 * nbdkit's 64 KiB limit, both on one S3 endpoint (a Swift all-in-one's s3api started for the
 * run, or the test suite's shared one with `--services env`). Rows: nbdcopy of a random image into
 * the export and back out to a file (wall time, MiB/s), and fio 4 KiB random read and random
 * write through fio's nbd engine (IOPS). Prints a markdown table with the ratio Stowage / nbdkit
 * per row (all throughputs: higher is better). A benchmark, not a test: it asserts nothing.
 *
 *   npm run bench:nbd -- [--backend fs|s3] [--services own|env] [--runtime S] [--timeout S] [--keep]
 *                        [--repeat N] [--rows in,out,randread,randwrite] [--image-mb N]
 *                        [--block-size SIZE] [--env KEY=VALUE]... [--cpu-prof DIR]
 *
 * --repeat runs each row N times, Stowage and nbdkit interleaved (the machine is shared), and
 * reports the median of each side with every run's ratio. --env passes configuration to
 * `stowage serve` (e.g. STOWAGE_NBD_CACHE_MB=256); --cpu-prof writes the server's V8 profile.
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
import { DEFAULT_BLOCK_SIZE } from '../../src/nbd/device/volume-layout.js';
import { createS3Bucket, remoteStore, RemoteServices, s3DeleteBucket, type BenchStore } from '../git/stores.js';
import { uniqueName } from '../../test/infra/services.js';

const MiB = 1024 * 1024;
const VOLUME = 'bench';

const ROWS = ['in', 'out', 'randread', 'randwrite'] as const;
type RowName = (typeof ROWS)[number];

/** Where both servers keep the volume. */
type Backend = 'fs' | 's3';

interface Options {
  readonly backend: Backend;
  readonly services: 'own' | 'env';
  readonly runtimeS: number;
  readonly timeoutS: number;
  readonly keep: boolean;
  readonly repeat: number;
  readonly rows: readonly RowName[];
  readonly imageMb: number;
  readonly blockSize: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly cpuProf: string | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  let backend: Backend = 'fs';
  let services: 'own' | 'env' = 'own';
  let runtimeS = 15;
  let timeoutS = 1200;
  let keep = false;
  let repeat = 1;
  let rows: RowName[] = [...ROWS];
  let imageMb = 1024;
  let blockSize: string | undefined;
  const env: Record<string, string> = {};
  let cpuProf: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const int = (min: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs an integer >= ${min}`);
      return v;
    };
    if (arg === '--backend') {
      const v = String(argv[++i]);
      if (v !== 'fs' && v !== 's3') throw new Error('--backend takes fs or s3');
      backend = v;
    } else if (arg === '--services') {
      const v = String(argv[++i]);
      if (v !== 'own' && v !== 'env') throw new Error('--services takes own or env');
      services = v;
    } else if (arg === '--runtime') runtimeS = int(1);
    else if (arg === '--timeout') timeoutS = int(30);
    else if (arg === '--keep') keep = true;
    else if (arg === '--repeat') repeat = int(1);
    else if (arg === '--image-mb') imageMb = int(16);
    else if (arg === '--block-size') blockSize = String(argv[++i]);
    else if (arg === '--cpu-prof') cpuProf = String(argv[++i]);
    else if (arg === '--rows') {
      rows = String(argv[++i]).split(',') as RowName[];
      if (rows.some((r) => !ROWS.includes(r))) throw new Error(`--rows takes a list of ${ROWS.join(', ')}`);
    } else if (arg === '--env') {
      const kv = String(argv[++i]);
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error('--env takes KEY=VALUE');
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else throw new Error(`unknown argument ${arg}\nusage: run.js [--backend fs|s3] [--services own|env] [--runtime S] [--timeout S] [--keep] [--repeat N] [--rows LIST] [--image-mb N] [--block-size SIZE] [--env K=V] [--cpu-prof DIR]`);
  }
  return { backend, services, runtimeS, timeoutS, keep, repeat, rows, imageMb, blockSize, env, cpuProf };
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** Runs a tool in cwd with a hard time limit (SIGKILL); rejects with its output on failure. */
function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number, env: Readonly<Record<string, string>> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { cwd, encoding: 'utf8', maxBuffer: 64 * MiB, timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The value after `flag` in a list of CLI arguments. */
function flagValue(args: readonly string[], flag: string): string {
  const i = args.indexOf(flag);
  const v = i < 0 ? undefined : args[i + 1];
  if (v === undefined) throw new Error(`internal: no ${flag} in ${args.join(' ')}`);
  return v;
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

/** A running nbdkit on 127.0.0.1. */
interface NbdkitProcess {
  readonly nbdUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts `nbdkit -f PLUGIN ARGS…` on a free loopback port and waits until it accepts nbdinfo.
 * `env` adds variables (the S3 plugin's region).
 */
async function startNbdkit(plugin: readonly string[], cwd: string, env: Readonly<Record<string, string>> = {}): Promise<NbdkitProcess> {
  const port = await freePort();
  const child = spawn('nbdkit', ['-f', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), ...plugin], { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
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

/** nbdkit's side of the comparison: a sparse plain file, or the S3 plugin on its own bucket. */
async function startReference(opts: Options, work: string, store: BenchStore | undefined, services: RemoteServices | undefined, cleanups: Array<() => Promise<unknown>>): Promise<NbdkitProcess> {
  const imageBytes = opts.imageMb * MiB;
  if (store === undefined || services === undefined) {
    const plain = join(work, 'nbdkit.img');
    await writeFile(plain, '');
    await truncate(plain, imageBytes);
    return startNbdkit(['file', plain], work);
  }
  const { swift } = services;
  const bucket = uniqueName('bench-nbdkit');
  await createS3Bucket(swift, bucket);
  cleanups.push(() => s3DeleteBucket(swift, bucket));
  // The same object size as Stowage's blocks where nbdkit allows it: its plugins must
  // advertise a minimum block size of at most 64 KiB, and the S3 plugin's minimum is its object size.
  const objectSize = Math.min(NBDKIT_MAX_MIN_BLOCK, blockSizeBytes(opts.blockSize));
  // The blocksize filter takes clients' small requests (fio's 4 KiB) and does the plugin's
  // read-modify-write at its object size; without it libnbd refuses requests below the minimum.
  const plugin = [
    '--filter=blocksize',
    'S3',
    `endpoint-url=${swift.s3Endpoint}`,
    `access-key=${swift.s3AccessKey}`,
    `secret-key=${swift.s3SecretKey}`,
    `bucket=${bucket}`,
    `key=${VOLUME}`,
    `size=${imageBytes}`,
    `object-size=${objectSize}`,
  ];
  return startNbdkit(plugin, work, { AWS_DEFAULT_REGION: swift.s3Region });
}

/** fio's working set: 256 MiB, or the whole volume when smaller. */
function fioSizeMb(opts: Options): number {
  return Math.min(256, opts.imageMb);
}

/** The largest minimum block size nbdkit lets a plugin advertise. */
const NBDKIT_MAX_MIN_BLOCK = 64 * 1024;

/** Bytes of a `--block-size` value (Stowage's default when absent). */
function blockSizeBytes(text: string | undefined): number {
  if (text === undefined) return DEFAULT_BLOCK_SIZE;
  const m = /^(\d+)([KMk]?)$/.exec(text);
  if (m === null) throw new Error(`--block-size ${text}: give bytes, or a number with K or M`);
  return Number(m[1]) * (m[2] === '' ? 1 : m[2] === 'M' ? MiB : 1024);
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
  /** Stowage / nbdkit of each interleaved repetition. */
  readonly ratios: readonly number[];
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** nbdcopy from → to; returns seconds. */
async function timedCopy(from: string, to: string, cwd: string, flush: boolean): Promise<number> {
  const t0 = performance.now();
  await run('nbdcopy', [...(flush ? ['--flush'] : []), from, to], cwd, 600_000);
  return (performance.now() - t0) / 1000;
}

/** The fio arguments of one 4 KiB random workload against url. */
function fioArgs(url: string, rw: 'randread' | 'randwrite', runtimeS: number, sizeMb: number): string[] {
  return [
    `--name=${rw}`,
    '--ioengine=nbd',
    `--uri=${url}`,
    `--rw=${rw}`,
    '--bs=4k',
    '--iodepth=16',
    `--size=${sizeMb}M`,
    '--time_based',
    `--runtime=${runtimeS}`,
    '--output-format=json',
    '--verify_state_save=0',
  ];
}

/** Runs fio and returns the IOPS of the read or write side. */
async function fioIops(url: string, rw: 'randread' | 'randwrite', runtimeS: number, sizeMb: number, cwd: string): Promise<number> {
  const out = await run('fio', fioArgs(url, rw, runtimeS, sizeMb), cwd, (runtimeS + 60) * 1000);
  type Side = { iops: number };
  const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { error: number; read: Side; write: Side }[] }).jobs[0];
  if (job === undefined || job.error !== 0) throw new Error(`fio ${rw} reported an error:\n${out.slice(0, 4000)}`);
  return rw === 'randread' ? job.read.iops : job.write.iops;
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function formatTable(rows: readonly Row[], reference: string, machine: string, command: string): string {
  const out = [
    `| operation | unit | Stowage | ${reference} | Stowage / nbdkit |`,
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => {
      const s = `${fmt(r.stowage)}${r.stowageNote}`;
      const n = `${fmt(r.nbdkit)}${r.nbdkitNote}`;
      const runs = r.ratios.length > 1 ? ` (runs: ${r.ratios.map((x) => x.toFixed(2)).join(', ')})` : '';
      return `| ${r.name} | ${r.unit} | ${s} | ${n} | ${(r.stowage / r.nbdkit).toFixed(2)}${runs} |`;
    }),
    '',
    'All numbers are throughputs: higher is better, and a ratio of 1.00 means Stowage matches',
    `nbdkit; the goal is a ratio of ${reference === 'nbdkit S3' ? 'more than 1.00 against nbdkit S3' : 'at least 0.50 against nbdkit file'} on every row. Wall times in parentheses.`,
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
  const imageBytes = opts.imageMb * MiB;
  try {
    const image = join(work, 'random.img');
    progress(`generating a ${opts.imageMb} MiB random image`);
    await writeRandomFile(image, imageBytes);

    let services: RemoteServices | undefined;
    let store: BenchStore | undefined;
    if (opts.backend === 's3') {
      progress(opts.services === 'env' ? 'using the shared Swift and etcd' : 'starting a Swift all-in-one (s3api) and etcd');
      services = opts.services === 'env' ? RemoteServices.fromEnv() : await RemoteServices.start();
      const started = services;
      cleanups.push(() => started.stop());
      store = await remoteStore('s3', services);
      const made = store;
      cleanups.push(() => made.cleanup());
    }
    // Stowage: a fresh data dir (the fs store, or config only) with one volume of the image's size
    const dataDir = join(work, 'stowage-data');
    const storeEnv: Record<string, string> = store === undefined ? {} : { ...store.env, STOWAGE_STORE: flagValue(store.args, '--store'), STOWAGE_META: flagValue(store.args, '--meta') };
    const create = ['nbd', 'create', VOLUME, '--size', `${opts.imageMb}M`, '--data', dataDir, ...(opts.blockSize === undefined ? [] : ['--block-size', opts.blockSize])];
    await run(process.execPath, [STOWAGE_BIN, ...create], PROJECT_ROOT, 60_000, storeEnv);
    const nodeArgs = opts.cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`];
    const stowage: NbdServerProcess = await startNbdServer(dataDir, { ...storeEnv, ...opts.env }, nodeArgs);
    cleanups.push(() => stowage.stop());
    const nbdkit = await startReference(opts, work, store, services, cleanups);
    cleanups.push(() => nbdkit.stop());

    const sides = [
      { key: 'stowage', url: `${stowage.nbdUrl}/${VOLUME}` },
      { key: 'nbdkit', url: `${nbdkit.nbdUrl}/${VOLUME}` },
    ] as const;
    const rows: Row[] = [];
    const mibps = (s: number): number => imageBytes / MiB / s;
    const secs = (s: number): string => ` (${s.toFixed(1)} s)`;
    /** Runs `measure` for both sides `repeat` times, interleaved; a row of medians. */
    const measureRow = async (name: string, unit: string, measure: (side: (typeof sides)[number]) => Promise<number>, toValue: (x: number) => number, note: (x: number) => string): Promise<void> => {
      const got: [number[], number[]] = [[], []];
      for (let r = 0; r < opts.repeat; r++) {
        for (const [k, side] of sides.entries()) {
          progress(`${name} (${r + 1}/${opts.repeat}): ${side.key}`);
          got[k]?.push(await measure(side));
        }
      }
      const [st, nk] = got;
      const ratios = st.map((x, i) => toValue(x) / toValue(nk[i] as number));
      rows.push({ name, unit, stowage: toValue(median(st)), nbdkit: toValue(median(nk)), stowageNote: note(median(st)), nbdkitNote: note(median(nk)), ratios });
    };

    const needData = opts.rows.some((r) => r !== 'in' && r !== 'randwrite');
    if (opts.rows.includes('in') || needData) {
      if (!opts.rows.includes('in')) {
        for (const side of sides) await timedCopy(image, side.url, work, true);
      } else {
        await measureRow(`nbdcopy ${opts.imageMb} MiB random image in (\`--flush\`)`, 'MiB/s', (side) => timedCopy(image, side.url, work, true), mibps, secs);
      }
    }
    if (opts.rows.includes('out')) {
      await measureRow(`nbdcopy ${opts.imageMb} MiB out to a file`, 'MiB/s', async (side) => {
        const dst = join(work, `out-${side.key}.img`);
        const t = await timedCopy(side.url, dst, work, false);
        if ((await stat(dst)).size !== imageBytes) throw new Error(`nbdcopy out of ${side.key} wrote a file of the wrong size`);
        await run('cmp', [image, dst], work, 120_000);
        await rm(dst, { force: true });
        return t;
      }, mibps, secs);
    }
    for (const rw of ['randread', 'randwrite'] as const) {
      if (!opts.rows.includes(rw)) continue;
      await measureRow(`fio 4 KiB ${rw}, iodepth 16`, 'IOPS', (side) => fioIops(side.url, rw, opts.runtimeS, fioSizeMb(opts), work), (x) => x, () => '');
    }

    const nbdkitVersion = (await run('nbdkit', ['--version'], work, 10_000)).trim();
    const fioVersion = (await run('fio', ['--version'], work, 10_000)).trim();
    const where = store === undefined ? 'both data dirs under os.tmpdir() on the same disk' : `both on ${store.description.replace(/, refs in etcd.*$/, '')}; Stowage's leases in etcd; nbdkit S3 object size ${Math.min(NBDKIT_MAX_MIN_BLOCK, blockSizeBytes(opts.blockSize)) / 1024} KiB, Stowage block size ${blockSizeBytes(opts.blockSize) / 1024} KiB`;
    const machine = `${cpuModel()}; node ${process.version}; ${nbdkitVersion}; ${fioVersion}; ${where}`;
    const command = ['npm run bench:nbd', '--', ...process.argv.slice(2)].join(' ').replace(/ --$/, '');
    process.stdout.write(formatTable(rows, store === undefined ? 'nbdkit file' : 'nbdkit S3', machine, command));
    process.stdout.write(`\nfio arguments: \`fio ${fioArgs('nbd://127.0.0.1:PORT/bench', 'randread', opts.runtimeS, fioSizeMb(opts)).join(' ')}\` (and \`--rw=randwrite\`)\n`);
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
