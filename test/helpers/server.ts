/**
 * Starts `stowage serve` on 127.0.0.1 with ports chosen by the kernel, waits for its two
 * `{"msg":"listening",...}` log lines, keeps its output for failure messages, and makes sure
 * it is killed when the test process ends, whatever happens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT, STOWAGE_BIN } from './paths.js';
import { makeTempDir } from './tmp.js';

/** How startServer runs the server. */
export interface ServerOptions {
  /** TOML text written to a file and passed as --config. */
  readonly config?: string;
  /** Passes --git-allow-push (default true). */
  readonly allowPush?: boolean;
  /** Uses this data dir instead of a fresh temp one. */
  readonly dataDir?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for both listening lines (default 30 s). */
  readonly startTimeoutMs?: number;
}

/** How a stopped server ended. */
export interface ServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Exited by itself within the grace period after SIGTERM (not SIGKILLed). */
  readonly graceful: boolean;
}

/** Which listener a URL is for. */
export type Frontend = 'git' | 'http';

const live = new Set<ChildProcess>();
let hooked = false;

function killAllSync(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllSync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

const LOG_LINES_KEPT = 400;

/** A running `stowage serve`. URLs change on restart(). */
export class StowageServer {
  readonly dataDir: string;
  readonly #args: readonly string[];
  readonly #env: Readonly<Record<string, string>>;
  readonly #startTimeoutMs: number;
  #child: ChildProcess | undefined;
  #exited: Promise<ServerExit> | undefined;
  #gitUrl = '';
  #httpUrl = '';
  readonly #log: string[] = [];
  #starts = 0;

  constructor(dataDir: string, args: readonly string[], env: Readonly<Record<string, string>>, startTimeoutMs: number) {
    this.dataDir = dataDir;
    this.#args = args;
    this.#env = env;
    this.#startTimeoutMs = startTimeoutMs;
  }

  /** git://127.0.0.1:PORT of the current run. */
  get gitUrl(): string {
    return this.#gitUrl;
  }

  /** http://127.0.0.1:PORT of the current run. */
  get httpUrl(): string {
    return this.#httpUrl;
  }

  /** Process id of the current run. */
  get pid(): number {
    const pid = this.#child?.pid;
    if (pid === undefined) throw new Error('server is not running');
    return pid;
  }

  /** host:port of a listener of the current run. */
  address(frontend: Frontend): { host: string; port: number } {
    const url = new URL(frontend === 'git' ? this.#gitUrl : this.#httpUrl);
    return { host: url.hostname, port: Number(url.port) };
  }

  /** The URL of a repository on a listener. */
  repoUrl(frontend: Frontend, name: string): string {
    return `${frontend === 'git' ? this.#gitUrl : this.#httpUrl}/${name}`;
  }

  /** The last lines the server printed (stdout and stderr, interleaved as received). */
  log(): string {
    return this.#log.join('\n');
  }

  /** Starts the process and waits for both listeners. */
  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error('server already running');
    hookExit();
    this.#starts += 1;
    const run = this.#starts;
    this.#note(`--- start #${run}: stowage ${this.#args.join(' ')}`);
    const child = spawn(process.execPath, [STOWAGE_BIN, ...this.#args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...this.#env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.#note(`--- run #${run} exited: code ${code} signal ${signal}`);
        resolve({ code, signal, graceful: false });
      });
    });
    const urls: Partial<Record<Frontend, string>> = {};
    const ready = new Promise<void>((resolve, reject) => {
      const onLine = (line: string): void => {
        this.#note(line);
        const url = listeningUrl(line);
        if (url === undefined) return;
        urls[url.service] = url.url;
        if (urls.git !== undefined && urls.http !== undefined) resolve();
      };
      splitLines(child.stdout, onLine);
      splitLines(child.stderr, onLine);
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`stowage serve exited (code ${code}, signal ${signal}) before listening`)));
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`stowage serve did not log both listening lines within ${this.#startTimeoutMs} ms`)),
        this.#startTimeoutMs,
      );
    });
    try {
      await Promise.race([ready, timeout]);
    } catch (err) {
      await this.stop();
      throw new Error(`${(err as Error).message}\n--- server output ---\n${this.log()}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    this.#gitUrl = urls.git ?? '';
    this.#httpUrl = urls.http ?? '';
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  async stop(graceMs = 10_000): Promise<ServerExit> {
    const child = this.#child;
    const exited = this.#exited;
    if (child === undefined || exited === undefined) return { code: null, signal: null, graceful: true };
    this.#child = undefined;
    this.#exited = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const first = await Promise.race([exited, killed]);
    clearTimeout(timer);
    if (first !== 'timeout') return { ...first, graceful: true };
    this.#note(`--- did not stop within ${graceMs} ms of SIGTERM; SIGKILL`);
    child.kill('SIGKILL');
    return { ...(await exited), graceful: false };
  }

  /** Stops and starts again on the same data dir (new ports). */
  async restart(): Promise<ServerExit> {
    const exit = await this.stop();
    await this.start();
    return exit;
  }

  #note(line: string): void {
    this.#log.push(line);
    if (this.#log.length > LOG_LINES_KEPT) this.#log.splice(0, this.#log.length - LOG_LINES_KEPT);
  }
}

function splitLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (pending.length > 0) onLine(pending);
    pending = '';
  });
}

function listeningUrl(line: string): { service: Frontend; url: string } | undefined {
  if (!line.startsWith('{')) return undefined;
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof rec !== 'object' || rec === null) return undefined;
  const { msg, service, url } = rec as Record<string, unknown>;
  if (msg !== 'listening' || typeof url !== 'string') return undefined;
  if (service !== 'git' && service !== 'http') return undefined;
  return { service, url: url.replace(/\/+$/, '') };
}

/** Starts `stowage serve` with a fresh data dir (unless given) on 127.0.0.1 ports 0. */
export async function startServer(opts: ServerOptions = {}): Promise<StowageServer> {
  const dataDir = opts.dataDir ?? (await makeTempDir('stowage-e2e-data-'));
  const args = ['serve', '--data', dataDir, '--git-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'];
  if (opts.allowPush ?? true) args.push('--git-allow-push');
  if (opts.config !== undefined) {
    const configDir = await makeTempDir('stowage-e2e-config-');
    const file = join(configDir, 'stowage.toml');
    await writeFile(file, opts.config);
    args.push('--config', file);
  }
  args.push(...(opts.extraArgs ?? []));
  const server = new StowageServer(dataDir, args, opts.env ?? {}, opts.startTimeoutMs ?? 30_000);
  await server.start();
  return server;
}
