/**
 * Test support (not a test): an NbdServer over MemoryDevices on 127.0.0.1:0, a check for the
 * stock NBD client tools (missing tool: a failure under CI, a stated skip elsewhere), and a
 * promise wrapper around execFile.
 */
import { execFile } from 'node:child_process';
import { pino } from 'pino';
import type { NbdServerOptions } from '../server.js';
import { NbdServer } from '../server.js';
import { MemoryDevice, MemoryProvider } from './memory-device.js';

/** A running server with its devices. */
export interface Harness {
  readonly server: NbdServer;
  readonly provider: MemoryProvider;
  readonly port: number;
  uri(name: string): string;
  close(): Promise<void>;
}

/** Starts a server over the given devices (default: `disk` 64 MiB rw, `ro` 1 MiB read-only). */
export async function startHarness(devices?: MemoryDevice[], extra: Partial<NbdServerOptions> = {}): Promise<Harness> {
  const provider = new MemoryProvider(
    devices ?? [new MemoryDevice('disk', 64 * 1024 * 1024, false, 'a test disk'), new MemoryDevice('ro', 1024 * 1024, true, 'read-only disk')],
  );
  const server = new NbdServer({
    provider,
    listen: { host: '127.0.0.1', port: 0 },
    logger: pino({ level: process.env.NBD_TEST_LOG ?? 'silent' }),
    maxConnections: 64,
    shutdownGraceMs: 2000,
    ...extra,
  });
  const { port } = await server.start();
  return { server, provider, port, uri: (name) => `nbd://127.0.0.1:${port}/${name}`, close: () => server.close() };
}

/** Result of a child process. */
export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program; rejects with its stderr on a nonzero exit. */
export function run(file: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * nbdsh is `python3 -m nbd`; a python3 earlier on PATH (pyenv, venv) may lack the module that
 * python3-libnbd installs, so use the first python3 that has it.
 */
const NBDSH = 'for p in $(type -ap python3); do if "$p" -c "import nbd" 2>/dev/null; then exec "$p" -m nbd "$@"; fi; done; ' +
  'echo "no python3 with the nbd module (python3-libnbd)" >&2; exit 127';

/** Runs nbdsh with the given arguments. */
export function nbdsh(args: readonly string[]): Promise<RunResult> {
  return run('bash', ['-c', NBDSH, 'nbdsh', ...args]);
}

const found = new Map<string, boolean>();

async function have(tool: string): Promise<boolean> {
  let v = found.get(tool);
  if (v === undefined) {
    const probe = tool === 'nbdsh' ? ['-c', NBDSH, 'nbdsh', '-c', 'pass'] : ['-c', `command -v ${tool}`];
    v = await new Promise<boolean>((resolve) => execFile('bash', probe, (err) => resolve(err === null)));
    found.set(tool, v);
  }
  return v;
}

/**
 * The reason to skip when a client tool is missing, or undefined when all are present. Under
 * CI (`CI` set) a missing tool throws: the suite must never pass by skipping there.
 */
export async function missingTools(tools: readonly string[]): Promise<string | undefined> {
  const missing: string[] = [];
  for (const t of tools) if (!(await have(t))) missing.push(t);
  if (missing.length === 0) return undefined;
  const msg = `NBD client tools missing: ${missing.join(', ')} (Debian: apt-get install libnbd-bin python3-libnbd qemu-utils)`;
  if (process.env.CI !== undefined && process.env.CI !== '') throw new Error(msg);
  return msg;
}
