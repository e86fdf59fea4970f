/**
 * What every end-to-end scenario gets: the running server, the frontend and protocol version
 * under test, a git runner speaking that version, URLs, and scratch directories.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { cli, packCount } from '../helpers/cli.js';
import { git, gitResult, type GitOptions, type GitResult } from '../helpers/git.js';
import { lsRemote } from '../helpers/repo-check.js';
import type { Frontend, StowageServer } from '../helpers/server.js';

/** The hostile scenarios need `..` in a tree to be an error (git's default is a warning). */
export const E2E_SERVER_CONFIG = '[fsck]\nhasDotdot = "error"\n';

/** Protocol versions the suite runs with. */
export type SuiteProtocol = 0 | 2;

/** Shared state of one scenario suite (one frontend, one protocol version, one server). */
export class E2eContext {
  readonly frontend: Frontend;
  readonly protocol: SuiteProtocol;
  #server: StowageServer | undefined;
  #work: string | undefined;
  #dirs = 0;

  constructor(frontend: Frontend, protocol: SuiteProtocol) {
    this.frontend = frontend;
    this.protocol = protocol;
  }

  /** Called from the suite's `before`. */
  attach(server: StowageServer, work: string): void {
    this.#server = server;
    this.#work = work;
  }

  get server(): StowageServer {
    if (this.#server === undefined) throw new Error('the server is not started (suite before() failed?)');
    return this.#server;
  }

  get dataDir(): string {
    return this.server.dataDir;
  }

  /**
   * The URL of a repository on the frontend under test. git:// URLs are used bare and HTTP URLs
   * with `.git`, so both spellings are exercised; `suffix` forces one.
   */
  url(name: string, suffix?: boolean): string {
    const withGit = suffix ?? this.frontend === 'http';
    return this.server.repoUrl(this.frontend, withGit ? `${name}.git` : name);
  }

  /** A new empty scratch directory. */
  async dir(label: string): Promise<string> {
    if (this.#work === undefined) throw new Error('no work dir');
    this.#dirs += 1;
    const path = join(this.#work, `${String(this.#dirs).padStart(3, '0')}-${label.replace(/[^a-z0-9-]+/gi, '-')}`);
    await mkdir(path, { recursive: true });
    return path;
  }

  /** git with the suite's protocol version; throws on failure. */
  git(args: readonly string[], opts: GitOptions = {}): Promise<GitResult> {
    return git(args, { protocolVersion: this.protocol, ...opts });
  }

  /** git with the suite's protocol version; resolves whatever the exit code. */
  gitResult(args: readonly string[], opts: GitOptions = {}): Promise<GitResult> {
    return gitResult(args, { protocolVersion: this.protocol, ...opts });
  }

  /**
   * `stowage repo create NAME [args] --data DIR`. The fixtures and work clones use master, so
   * that is the default branch unless args name another.
   */
  async createRepo(name: string, args: readonly string[] = ['--default-branch', 'master']): Promise<void> {
    await cli(['repo', 'create', name, ...args], { dataDir: this.dataDir });
  }

  /** ls-remote of a repository over the frontend under test. */
  lsRemote(name: string): Promise<Map<string, string>> {
    return lsRemote(this.url(name), this.protocol);
  }

  /** Visible packs of a repository (`repo show --json`). */
  packCount(name: string): Promise<number> {
    return packCount(this.dataDir, name);
  }

  /** The id a revision names in a local repository. */
  async revParse(gitDir: string, rev: string): Promise<string> {
    return (await git(['--git-dir', gitDir, 'rev-parse', '--verify', rev])).stdout.trim();
  }
}

/** Whether a GitResult failed with stderr matching `pattern`; a readable message otherwise. */
export function failedWith(result: GitResult, pattern: RegExp): string | undefined {
  if (result.code === 0) return `git ${result.args.join(' ')} succeeded but should have failed\n${result.stderr}`;
  if (!pattern.test(result.stderr)) return `git ${result.args.join(' ')} failed (${result.code}) without ${pattern}:\n${result.stderr}`;
  return undefined;
}

/** A node:test test whose failure message ends with the server's recent log. */
export function scenario(ctx: E2eContext, name: string, fn: (t: TestContext) => Promise<void>, timeoutMs = 120_000): void {
  test(name, { timeout: timeoutMs }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      let log = '';
      try {
        log = ctx.server.log().split('\n').slice(-60).join('\n');
      } catch {
        log = '(no server)';
      }
      throw new Error(`${(err as Error).message ?? String(err)}\n--- server log (last lines) ---\n${log}`, { cause: err });
    }
  });
}
