/**
 * The server's memory stays bounded by its cache budget: a real `stowage serve` (a child
 * process) whose repository caches sum to 64 MiB serves a clone of a repository whose pack
 * (256 MiB of incompressible 8 KiB blobs) is four times that budget. The client turns
 * ofs-deltas off (repack.useDeltaBaseOffset=false), so the server cannot send the stored pack
 * as it is and reads every entry through its caches, one by one.
 *
 * Peak RSS growth = VmHWM after the clone (reset before it with /proc/PID/clear_refs 5, as
 * bench/git does) minus VmRSS before it (after one ls-remote, so lazy modules are loaded).
 * Measured on the development machine (2 shared cores, Node 20, fs store with 1 MiB blocks):
 * - with these caches: 123-141 MiB (107-117 MiB for a 128 MiB pack); before pack-out bounded
 *   the blocks its read-ahead and output chunks keep alive, 142-175 MiB (136-140 MiB).
 * - with the block and object caches at 1 GiB each (unbounded for this pack): 311-314 MiB,
 *   which is what this test exists to catch.
 * The growth beyond the caches is not live data: with a full GC forced every 50 ms the live
 * ArrayBuffers stay under 40 MiB. V8 frees dead ArrayBuffers (cache blocks the LRU evicted,
 * joined output chunks) lazily: it starts a full collection only once external memory grew by
 * 64 MiB since the last one. The rest is the JS heap and malloc's retained free space.
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

const MIB = 1024 * 1024;
/** Caches of the server under test, MiB: 24 + 8 + 16 + 8 (commits: a quarter of objects, at least 8) + 8 + 0 + 0 = 64. */
const CACHE = { blockMb: 24, indexMb: 8, objectMb: 16, accelMb: 8, cloneMb: 0, bitmapMb: 0 };
const BUDGET_MB = 64;
/**
 * What one clone may add beyond the caches: V8's 64 MiB of external memory before it collects
 * dead ArrayBuffers, plus the heap and malloc's slack (see the measurements above). 112 leaves
 * 35 MiB of headroom over the worst run seen (141) for a loaded CI machine, and still fails by
 * far with unbounded caches (311-314).
 */
const OVERHEAD_MB = 112;
/** Repository: BLOBS incompressible blobs of BLOB_BYTES each (256 MiB), PER_COMMIT per commit. */
const BLOBS = 32768;
/** Small enough for one cache block (reads spanning many blocks bypass the cache). */
const BLOB_BYTES = 8 * 1024;
const PER_COMMIT = 256;

const CLI_MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
/** Runs the compiled CLI's main() with the arguments after `-e`. */
const CLI_SCRIPT = `const { main } = await import(${JSON.stringify(CLI_MAIN)}); process.exitCode = await main(process.argv.slice(1));`;

function gitEnv(home: string): NodeJS.ProcessEnv {
  return { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: devNull, HOME: home };
}

function run(cmd: string, args: readonly string[], cwd: string, timeoutMs = 180_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: gitEnv(cwd), timeout: timeoutMs, maxBuffer: 16 * MIB }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Fills bare repository `dir` by git fast-import: BLOBS random blobs over BLOBS/PER_COMMIT commits of one branch. */
async function fastImport(dir: string): Promise<void> {
  // Level 0: the blobs are random, so compressing them would only cost time.
  const child = spawn('git', ['-c', 'pack.compression=0', 'fast-import', '--quiet'], { cwd: dir, env: gitEnv(dir), stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'close');
  const write = async (b: Buffer): Promise<void> => {
    if (!child.stdin.write(b)) await once(child.stdin, 'drain');
  };
  for (let c = 0; c < BLOBS / PER_COMMIT; c++) {
    await write(Buffer.from(`commit refs/heads/main\ncommitter M <m@m.invalid> ${1700000000 + c} +0000\ndata 1\nc\n`));
    for (let f = 0; f < PER_COMMIT; f++) {
      await write(Buffer.concat([Buffer.from(`M 100644 inline d${c}/f${f}.bin\ndata ${BLOB_BYTES}\n`), randomBytes(BLOB_BYTES), Buffer.from('\n')]));
    }
  }
  child.stdin.end();
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, `git fast-import failed: ${stderr}`);
}

function procKb(pid: number, text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  assert.ok(m !== null, `no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Starts `stowage serve` over dataDir; resolves with the child and its git:// port. */
async function serve(dataDir: string, config: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', CLI_SCRIPT, 'serve', '--data', dataDir, '--config', config, '--git-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
  );
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30_000);
    const onData = (d: Buffer): void => {
      log += d.toString();
      const m = /"url":"git:\/\/127\.0\.0\.1:(\d+)"/.exec(log);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited (${code}):\n${log}`)));
  });
  return { child, port };
}

describe('server memory under a 64 MiB cache budget', () => {
  test('a clone of a repository four times the budget grows peak RSS by less than budget + overhead', { timeout: 300_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-membound-'));
    let child: ChildProcess | undefined;
    try {
      const src = join(dir, 'src.git');
      await run('git', ['init', '-q', '--bare', src], dir);
      await fastImport(src);
      const dataDir = join(dir, 'data');
      await run(process.execPath, ['--input-type=module', '-e', CLI_SCRIPT, 'repo', 'import', 'big', src, '--data', dataDir], dir, 240_000);
      await rm(src, { recursive: true, force: true });
      const config = join(dir, 'stowage.toml');
      await writeFile(config, `[cache]\n${Object.entries(CACHE).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`);
      const s = await serve(dataDir, config);
      child = s.child;
      const pid = child.pid!;
      const url = `git://127.0.0.1:${s.port}/big`;
      // Warm up (lazy modules, first request paths) before measuring.
      await run('git', ['ls-remote', url], dir);
      const before = procKb(pid, await readFile(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
      await writeFile(`/proc/${pid}/clear_refs`, '5');
      const target = join(dir, 'clone.git');
      await run('git', ['-c', 'repack.useDeltaBaseOffset=false', 'clone', '-q', '--mirror', url, target], dir, 240_000);
      const peak = procKb(pid, await readFile(`/proc/${pid}/status`, 'utf8'), 'VmHWM');
      const growthMb = (peak - before) / 1024;
      t.diagnostic(`resting RSS ${(before / 1024).toFixed(0)} MiB, peak ${(peak / 1024).toFixed(0)} MiB, growth ${growthMb.toFixed(0)} MiB`);
      const count = /in-pack: (\d+)/.exec(await run('git', ['count-objects', '-v'], target))?.[1];
      assert.equal(Number(count), BLOBS + (BLOBS / PER_COMMIT) * 3, 'the clone holds every object (per commit: itself, two trees)');
      assert.ok(
        growthMb < BUDGET_MB + OVERHEAD_MB,
        `peak RSS grew by ${growthMb.toFixed(0)} MiB during the clone (from ${(before / 1024).toFixed(0)} MiB); bound ${BUDGET_MB} + ${OVERHEAD_MB} MiB`,
      );
    } finally {
      child?.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
