/**
 * Test support (not a test): a repository host over a directory (FsStore + StoreMetaStore) that
 * the test process and the server script (run by git's file:// transport) share, and a
 * helper to run the stock git client.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import { createRepoCaches } from '../../repo/cache/repo-caches.js';
import { StoredRepositoryHost } from '../../repo/host.js';
import { FsStore } from '../../storage/fs/fs-store.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';
import { createGitService } from '../dispatch.js';
import type { GitService } from '../git-service.js';
import type { ReceivePackConfig } from '../options.js';

/** Builds the host over a data directory. */
export function hostAt(dataDir: string): StoredRepositoryHost {
  const store = new FsStore({ root: join(dataDir, 'store') });
  return StoredRepositoryHost.of(store, new StoreMetaStore({ store }), createRepoCaches({ blockCacheMb: 16, indexCacheMb: 8, objectCacheMb: 16 }));
}

/** The service over a host, as the frontends would build it. */
export function serviceFor(host: StoredRepositoryHost, receive: Partial<ReceivePackConfig> = {}): GitService {
  return createGitService({
    host,
    fsck: {},
    limits: DEFAULT_LIMITS,
    allowReceivePack: () => true,
    agent: 'stowage/test',
    receive,
  });
}

/** A temp dir with a data dir inside, removed by cleanup. */
export interface TestEnv {
  readonly root: string;
  readonly dataDir: string;
  readonly host: StoredRepositoryHost;
  /** `git clone` options that make the clone (and later fetches and pushes in it) use our server script. */
  readonly cloneArgs: readonly string[];
  /** `-c` options for a git command in a repository whose origin is not configured for the script. */
  readonly serverArgs: readonly string[];
  /** file:// URL of a repository name. */
  url(repo: string): string;
  /** Runs git in `cwd` (relative to root); rejects with stderr on failure. */
  git(cwd: string, args: readonly string[], opts?: { env?: Record<string, string>; input?: string }): Promise<GitResult>;
  cleanup(): Promise<void>;
}

/** Output of a git run. */
export interface GitResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** A git failure with its output. */
export class GitFailure extends Error {
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

const SCRIPT = fileURLToPath(new URL('./git-server-script.js', import.meta.url));

/** Creates a fresh environment; `receive` is passed to the server script's receive-pack. */
export async function createTestEnv(receive: Partial<ReceivePackConfig> = {}): Promise<TestEnv> {
  const root = await mkdtemp(join(tmpdir(), 'stowage-service-'));
  const dataDir = join(root, 'data');
  const host = hostAt(dataDir);
  const node = process.execPath;
  const upload = `${node} ${SCRIPT} upload-pack`;
  const receive_ = `${node} ${SCRIPT} receive-pack`;
  const serverArgs = ['-c', `remote.origin.uploadpack=${upload}`, '-c', `remote.origin.receivepack=${receive_}`];
  const cloneArgs = [`--upload-pack=${upload}`, '--config', `remote.origin.uploadpack=${upload}`, '--config', `remote.origin.receivepack=${receive_}`];
  const baseEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: root,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
    STOWAGE_TEST_DATA: dataDir,
    STOWAGE_TEST_RECEIVE: JSON.stringify(receive),
    LANG: 'C',
    LC_ALL: 'C',
  };
  return {
    root,
    dataDir,
    host,
    serverArgs,
    cloneArgs,
    url: (repo) => `file://${join(root, 'remote', repo)}`,
    git: (cwd, args, opts = {}) =>
      new Promise((resolve, reject) => {
        const child = execFile(
          'git',
          ['-c', 'init.defaultBranch=main', '-c', 'protocol.file.allow=always', ...args],
          { cwd: join(root, cwd), env: { ...baseEnv, ...opts.env }, maxBuffer: 1 << 28 },
          (err, stdout, stderr) => {
            if (err) reject(new GitFailure(`git ${args.join(' ')} failed: ${stderr}`, stdout, stderr));
            else resolve({ stdout, stderr });
          },
        );
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(opts.input ?? '');
      }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
