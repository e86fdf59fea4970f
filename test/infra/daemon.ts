/**
 * Child daemons for the test infrastructure: each runs in its own process group with its output
 * in a log file, dies with the test process (parent-death signal where setpriv has it, plus an
 * exit hook), and can be SIGKILLed as a group. Also free ports and polling with a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, openSync, closeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** How a daemon ended. */
export interface DaemonExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A running (or ended) child process with its own process group and log file. It keeps the
 * event loop alive until it ends, so a test that forgets to stop its services hangs visibly.
 */
export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Settles when the process has ended. */
  readonly exited: Promise<DaemonExit>;
  /** How it ended, or undefined while it runs. */
  exit(): DaemonExit | undefined;
  /** Sends a signal to the whole process group (default SIGKILL) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<DaemonExit>;
}

const live = new Set<ChildProcess>();
let hooked = false;

function killGroupSync(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const child of live) killGroupSync(child, 'SIGKILL');
    live.clear();
  });
}

/** The absolute path of a command found on PATH, or undefined. */
export function findCommand(name: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    if (isExecutable(path)) return path;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// util-linux setpriv sets PR_SET_PDEATHSIG and execs the daemon, so a test process killed with
// SIGKILL still takes its daemons along; without it the exit hook is all we have.
const SETPRIV = findCommand('setpriv');

/** What spawnDaemon runs and where its output goes. */
export interface DaemonSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts a daemon in a new process group; rejects if it cannot be executed at all. */
export async function spawnDaemon(spec: DaemonSpec): Promise<Daemon> {
  hookExit();
  const resolved = findCommand(spec.command);
  if (resolved === undefined) throw new Error(`cannot start ${spec.name}: ${spec.command} not found${spec.command.includes('/') ? '' : ' on PATH'}`);
  const fd = openSync(spec.logFile, 'a');
  let child: ChildProcess;
  try {
    const [command, args] = SETPRIV === undefined
      ? [resolved, spec.args]
      : [SETPRIV, ['--pdeathsig', 'KILL', '--', resolved, ...spec.args]];
    child = spawn(command, args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start ${spec.name} (${spec.command}): ${err.message}`, { cause: err })));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${spec.name}: no pid`);
  live.add(child);
  let ended: DaemonExit | undefined;
  const exited = new Promise<DaemonExit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      ended = { code, signal };
      resolve(ended);
    });
  });
  return {
    name: spec.name,
    pid,
    logFile: spec.logFile,
    exited,
    exit: () => ended,
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (ended === undefined) killGroupSync(child, signal);
      return exited;
    },
  };
}

/** The last maxBytes of a log file as text ('' if unreadable). */
export async function logTail(path: string, maxBytes = 3000): Promise<string> {
  try {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await file.read(buf, 0, buf.length, start);
      const text = buf.toString('utf8');
      return start > 0 ? `…${text.slice(text.indexOf('\n') + 1)}` : text;
    } finally {
      await file.close();
    }
  } catch {
    return '';
  }
}

/** A one-paragraph account of a daemon that ended, with the tail of its log. */
export async function describeExit(daemon: Daemon): Promise<string> {
  const ended = daemon.exit();
  const how = ended === undefined ? 'is running' : ended.signal !== null ? `was killed by ${ended.signal}` : `exited with code ${ended.code}`;
  const tail = (await logTail(daemon.logFile)).trimEnd();
  return `${daemon.name} (pid ${daemon.pid}) ${how}; last lines of ${daemon.logFile}:\n${tail === '' ? '(empty)' : tail}`;
}

/**
 * n distinct free TCP ports on 127.0.0.1, found by binding port 0 (all at once, so they differ)
 * and closing again. Another process may take one before the daemon binds it: callers retry.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** What waitUntil polls and for how long. */
export interface WaitOptions {
  /** Named in the timeout error: "waiting for <what>". */
  readonly what: string;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Fail at once (with the log tail) if any of these ends while we wait. */
  readonly daemons?: readonly Daemon[];
}

/**
 * Polls check until it returns true. Each failed check may return or throw a reason, quoted
 * in the timeout error; a daemon that ends meanwhile fails the wait with its log tail.
 */
export async function waitUntil(check: () => Promise<true | string>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let reason = 'not checked yet';
  for (;;) {
    for (const daemon of options.daemons ?? []) {
      if (daemon.exit() !== undefined) throw new Error(`while waiting for ${options.what}: ${await describeExit(daemon)}`);
    }
    try {
      const result = await check();
      if (result === true) return;
      reason = result;
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      const tails = await Promise.all((options.daemons ?? []).map(describeExit));
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what} (last: ${reason})${tails.map((t) => `\n${t}`).join('')}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/** fetch with a per-request timeout, for probes. */
export async function probe(url: string, init: RequestInit = {}, timeoutMs = 2000): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}
