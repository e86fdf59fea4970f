/**
 * Test support (not a test): runs the stock git binary, the oracle for the object, ref-name
 * and fsck tests, in temporary repositories.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectType } from './object-type.js';

const ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: devNull,
  GIT_AUTHOR_NAME: 'Oracle',
  GIT_AUTHOR_EMAIL: 'oracle@test.invalid',
  GIT_COMMITTER_NAME: 'Oracle',
  GIT_COMMITTER_EMAIL: 'oracle@test.invalid',
  LANG: 'C',
  LC_ALL: 'C',
};

/** Result of one git run. */
export interface GitRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs git synchronously; never throws on a non-zero exit. */
export function gitRun(cwd: string, args: readonly string[], input?: Uint8Array): GitRun {
  const r = spawnSync('git', args, { cwd, env: ENV, input, maxBuffer: 1 << 28, encoding: 'latin1' });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A temporary bare repository; call `dispose` when done. */
export function tempRepo(): { dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-oracle-'));
  const r = gitRun(dir, ['init', '-q', '--bare', '.']);
  if (r.status !== 0) throw new Error(`git init failed: ${r.stderr}`);
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `git hash-object -t <type> --literally -w --stdin`: the id git gives these bytes. */
export function gitHashObject(repo: string, type: ObjectType, data: Uint8Array): string {
  const r = gitRun(repo, ['hash-object', '-t', type, '--literally', '-w', '--stdin'], data);
  if (r.status !== 0) throw new Error(`git hash-object failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** One finding of `git fsck`, as printed: "<error|warning> in <type> <oid>: <id>: <text>". */
export interface GitFsckLine {
  readonly severity: 'error' | 'warn';
  readonly oid: string;
  readonly id: string;
}

const FSCK_LINE = /^(error|warning) in (?:commit|tree|blob|tag|unknown) ([0-9a-f]{40}): ([A-Za-z0-9]+): /;

/** Runs `git fsck` (non-strict) in `repo` with optional `-c fsck.<id>=<sev>` settings. */
export function gitFsck(repo: string, config: Record<string, string> = {}): GitFsckLine[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(config)) args.push('-c', `fsck.${k}=${v}`);
  args.push('fsck', '--no-dangling', '--no-progress', '--no-reflogs');
  const r = gitRun(repo, args);
  const out: GitFsckLine[] = [];
  for (const line of (r.stderr + r.stdout).split('\n')) {
    const m = FSCK_LINE.exec(line);
    if (m !== null) out.push({ severity: m[1] === 'error' ? 'error' : 'warn', oid: m[2] as string, id: m[3] as string });
  }
  return out;
}
