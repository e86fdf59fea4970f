/**
 * Starts `stowage serve --nbd-listen 127.0.0.1:0` for the NBD end-to-end tests, finds the NBD
 * port from its `{"msg":"listening","service":"nbd","url":...}` log line, and kills it at exit.
 * Also: runs external tools, and decides what a missing tool means (fail in CI, skip locally).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { STOWAGE_BIN, PROJECT_ROOT } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A running server with an NBD listener. */
export interface NbdServerProcess {
  readonly dataDir: string;
  /** `nbd://127.0.0.1:PORT` (append `/<export>`). */
  readonly nbdUrl: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts the server on a (fresh or given) data dir; `env` adds variables (STOWAGE_NBD_TLS, …), `nodeArgs` go to node (--cpu-prof). */
export async function startNbdServer(dataDir?: string, env: Readonly<Record<string, string>> = {}, nodeArgs: readonly string[] = []): Promise<NbdServerProcess> {
  const dir = dataDir ?? (await makeTempDir('stowage-nbd-e2e-'));
  const args = ['serve', '--data', dir, '--git-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--nbd-listen', '127.0.0.1:0'];
  const child = spawn(process.execPath, [...nodeArgs, STOWAGE_BIN, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  live.add(child);
  let out = '';
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stowage serve logged no nbd listening line in 30 s:\n${out}`)), 30_000);
    void exited.then(() => reject(new Error(`stowage serve exited before listening:\n${out}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      out += `${line}\n`;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec['msg'] === 'listening' && rec['service'] === 'nbd' && typeof rec['url'] === 'string') {
          clearTimeout(timer);
          resolve(rec['url'].replace(/\/+$/, ''));
        }
      } catch {
        // not a log line
      }
    });
  });
  return {
    dataDir: dir,
    nbdUrl: url,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      live.delete(child);
    },
  };
}

/** Runs a tool; rejects with its output on a non-zero exit. */
export function run(cmd: string, args: readonly string[], timeoutMs = 300_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Whether a tool runs at all. */
export async function haveTool(cmd: string, args: readonly string[] = ['--version']): Promise<boolean> {
  return run(cmd, args, 30_000).then(
    () => true,
    () => false,
  );
}

/**
 * What to do when tools are missing: in CI (process.env.CI) that is a failure with a clear
 * message; on a laptop the test is skipped with the reason printed.
 */
export async function requireTools(t: { skip(msg: string): void }, tools: readonly (readonly [string, readonly string[]])[]): Promise<boolean> {
  const missing: string[] = [];
  for (const [cmd, args] of tools) if (!(await haveTool(cmd, args))) missing.push(cmd);
  if (missing.length === 0) return true;
  const msg = `missing tools: ${missing.join(', ')} (Debian: libnbd-bin qemu-utils fio e2fsprogs)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') throw new Error(msg);
  process.stderr.write(`skipping: ${msg}\n`);
  t.skip(msg);
  return false;
}
