/**
 * Runs the stock git client in a sealed environment: no system config, HOME and XDG_CONFIG_HOME
 * in a temp dir holding a minimal .gitconfig, no terminal prompts, and none of the caller's GIT_*
 * variables, so a developer's own config never changes what a test sees.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDirSync } from './tmp.js';

/** Wire protocol version the client asks for (protocol.version). */
export type ClientProtocol = 0 | 1 | 2;

/** Options of one git run. */
export interface GitOptions {
  readonly cwd?: string;
  /** Extra environment variables, applied after the sealed ones. */
  readonly env?: Readonly<Record<string, string>>;
  /** protocol.version of the sealed home (default 2, git 2.39's default). */
  readonly protocolVersion?: ClientProtocol;
  /** Bytes for stdin. */
  readonly input?: string | Uint8Array;
  /** Kills git after this long (default 180 s). */
  readonly timeoutMs?: number;
}

/** What a finished git run printed. */
export interface GitResult {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A git run that exited non-zero (or was killed); carries both outputs. */
export class GitFailure extends Error {
  readonly result: GitResult;
  constructor(result: GitResult) {
    super(
      `git ${result.args.join(' ')} exited with ${result.code}\n--- stderr ---\n${tail(result.stderr)}\n--- stdout ---\n${tail(result.stdout)}`,
    );
    this.name = 'GitFailure';
    this.result = result;
  }
}

function tail(text: string, max = 6000): string {
  return text.length <= max ? text : `…${text.slice(-max)}`;
}

const homes = new Map<ClientProtocol, string>();

/** The sealed HOME for a protocol version (one per process and version). */
export function gitHome(protocolVersion: ClientProtocol = 2): string {
  const known = homes.get(protocolVersion);
  if (known !== undefined) return known;
  const home = makeTempDirSync(`stowage-git-home-v${protocolVersion}-`);
  writeFileSync(
    join(home, '.gitconfig'),
    [
      '[user]',
      '\tname = Stowage Test',
      '\temail = test@stowage.invalid',
      '[init]',
      '\tdefaultBranch = master',
      '[protocol]',
      `\tversion = ${protocolVersion}`,
      '[advice]',
      '\tdetachedHead = false',
      '[gc]',
      '\tauto = 0',
      '[maintenance]',
      '\tauto = false',
      '[fetch]',
      '\twriteCommitGraph = false',
      '[core]',
      '\tautocrlf = false',
      '\tfsync = none',
      '[credential]',
      '\thelper =',
      '',
    ].join('\n'),
  );
  homes.set(protocolVersion, home);
  return home;
}

/** The environment git runs with. */
export function gitEnv(protocolVersion: ClientProtocol = 2, extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('GIT_') || key === 'XDG_CONFIG_HOME' || key === 'EMAIL') continue;
    env[key] = value;
  }
  const home = gitHome(protocolVersion);
  Object.assign(env, {
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    SSH_ASKPASS: '/bin/false',
    LC_ALL: 'C',
    LANG: 'C',
    TZ: 'UTC',
  });
  return Object.assign(env, extra);
}

/** Runs git and resolves with its output whatever its exit code. */
export function gitResult(args: readonly string[], opts: GitOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      [...args],
      {
        cwd: opts.cwd,
        env: gitEnv(opts.protocolVersion, opts.env),
        encoding: 'utf8',
        maxBuffer: 1024 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 180_000,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number' && err.killed !== true && !err.signal) {
          reject(err);
          return;
        }
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        const killed = err !== null && (err.killed === true || Boolean(err.signal));
        resolve({
          args,
          code,
          stdout,
          stderr: killed ? `${stderr}\n[killed: ${err?.signal ?? 'timeout'} after ${opts.timeoutMs ?? 180_000} ms]` : stderr,
        });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Runs git; throws GitFailure (with stdout and stderr) unless it exits 0. */
export async function git(args: readonly string[], opts: GitOptions = {}): Promise<GitResult> {
  const result = await gitResult(args, opts);
  if (result.code !== 0) throw new GitFailure(result);
  return result;
}

/** Runs git with stdin streamed from an iterable of chunks (e.g. a fast-import stream). */
export function gitStreamIn(
  args: readonly string[],
  input: Iterable<Uint8Array | string>,
  opts: GitOptions = {},
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...args], {
      cwd: opts.cwd,
      env: gitEnv(opts.protocolVersion, opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { args, code: code ?? -1, stdout, stderr: signal === null ? stderr : `${stderr}\n[killed: ${signal}]` };
      if (result.code !== 0) reject(new GitFailure(result));
      else resolve(result);
    });
    child.stdin.on('error', () => {
      // git exited early; its exit code and stderr say why.
    });
    void (async () => {
      for (const chunk of input) {
        if (!child.stdin.write(chunk)) await new Promise<void>((r) => child.stdin.once('drain', () => r()));
      }
      child.stdin.end();
    })();
  });
}

/** The output lines of a git run, without the trailing empty line. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}
