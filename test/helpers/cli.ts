/** Runs the stowage command line (bin/stowage.js, which loads dist/) as a child process. */
import { execFile } from 'node:child_process';
import { PROJECT_ROOT, STOWAGE_BIN } from './paths.js';

/** Options of one CLI run. */
export interface CliOptions {
  /** Appends `--data DIR` to the arguments. */
  readonly dataDir?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Kills the CLI after this long (default 120 s). */
  readonly timeoutMs?: number;
}

/** What a finished CLI run printed. */
export interface CliResult {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI run that exited non-zero; carries both outputs. */
export class CliFailure extends Error {
  readonly result: CliResult;
  constructor(result: CliResult) {
    super(`stowage ${result.args.join(' ')} exited with ${result.code}\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`);
    this.name = 'CliFailure';
    this.result = result;
  }
}

/** Runs `stowage ARGS` and resolves whatever the exit code. */
export function cliResult(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const full = opts.dataDir === undefined ? [...args] : [...args, '--data', opts.dataDir];
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [STOWAGE_BIN, ...full],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, NO_COLOR: '1', ...opts.env },
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number' && err.killed !== true && !err.signal) {
          reject(err);
          return;
        }
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ args: full, code, stdout, stderr: err?.signal ? `${stderr}\n[killed: ${err.signal}]` : stderr });
      },
    );
    child.stdin?.end();
  });
}

/** Runs `stowage ARGS`; throws CliFailure unless it exits 0. */
export async function cli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const result = await cliResult(args, opts);
  if (result.code !== 0) throw new CliFailure(result);
  return result;
}

/** Runs `stowage ARGS` (which should include --json) and parses its stdout. */
export async function cliJson(args: readonly string[], opts: CliOptions = {}): Promise<unknown> {
  const result = await cli(args, opts);
  try {
    return JSON.parse(result.stdout) as unknown;
  } catch (cause) {
    throw new Error(`stowage ${result.args.join(' ')} did not print JSON:\n${result.stdout}`, { cause });
  }
}

/** The number of visible packs in `repo show NAME --json` output, whatever its exact shape. */
export function packCountOf(show: unknown): number {
  const seen = new Set<unknown>();
  const visit = (value: unknown): number | undefined => {
    if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
    seen.add(value);
    const rec = value as Record<string, unknown>;
    for (const key of ['packs', 'packCount', 'pack_count', 'packFiles']) {
      const v = rec[key];
      if (typeof v === 'number') return v;
      if (Array.isArray(v)) return v.length;
    }
    for (const v of Object.values(rec)) {
      const found = visit(v);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const count = visit(show);
  if (count === undefined) throw new Error(`no pack count in repo show output: ${JSON.stringify(show)}`);
  return count;
}

/** Visible pack count of a repository, from `stowage repo show NAME --json`. */
export async function packCount(dataDir: string, name: string): Promise<number> {
  return packCountOf(await cliJson(['repo', 'show', name, '--json'], { dataDir }));
}
