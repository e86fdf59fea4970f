/**
 * Object-store faults under pushes and clones: a git daemon in this process serves a
 * repository whose packs and refs sit behind a FaultyStore (errors before and after writes
 * land, and delays, on a set share of calls). Every push and clone by the stock git client
 * either succeeds or fails with a clean message; with faults off afterwards, every
 * acknowledged push is there and the repository is fsck-clean.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { createLogger } from '../../src/core/log.js';
import { GitDaemon } from '../../src/frontends/git-daemon/server.js';
import { StoreMetaStore } from '../../src/meta/store/store-meta.js';
import { createRepoCaches } from '../../src/repo/cache/repo-caches.js';
import { StoredRepositoryHost } from '../../src/repo/host.js';
import { createGitService } from '../../src/service/dispatch.js';
import { FaultyStore } from '../../src/storage/faulty/faulty-store.js';
import { FsStore } from '../../src/storage/fs/fs-store.js';
import { git, gitResult } from '../helpers/git.js';
import { assertFsckClean } from '../helpers/repo-check.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const ROUNDS = 24;

/** A message that leaked a stack trace or an internal error shape. */
function leaksInternals(stderr: string): boolean {
  return /\n\s+at [^\n]+\(|node:internal|TypeError|ReferenceError/.test(stderr);
}

describe('object store faults under stock git pushes and clones', () => {
  let work: string;
  let faulty: FaultyStore;
  let meta: StoreMetaStore;
  let daemon: GitDaemon;
  let url: string;

  before(async () => {
    work = await makeTempDir('stowage-faults-');
    faulty = new FaultyStore(new FsStore({ root: join(work, 'data') }), {
      errorRate: 0.06,
      lostAckRate: 0.4,
      delayRate: 0.2,
      maxDelayMs: 4,
      seed: 20261122,
    });
    meta = new StoreMetaStore({ store: faulty });
    // Tiny caches so reads keep reaching the faulty store instead of being served from memory.
    const caches = createRepoCaches({ blockCacheMb: 1, indexCacheMb: 1, objectCacheMb: 1 });
    const host = StoredRepositoryHost.of(faulty, meta, caches, Date.now);
    faulty.enabled = false;
    await host.create('faults', { defaultBranch: 'main' });
    faulty.enabled = true;
    const logger = createLogger({ level: 'silent' });
    const service = createGitService({
      host,
      fsck: {},
      limits: DEFAULT_LIMITS,
      allowReceivePack: () => true,
      logger,
      agent: 'stowage/test',
    });
    daemon = new GitDaemon({
      service,
      logger,
      listen: { host: '127.0.0.1', port: 0 },
      allowPush: true,
      idleTimeoutMs: 30_000,
      maxConnections: 64,
    });
    const { port } = await daemon.start();
    url = `git://127.0.0.1:${port}/faults`;
  });

  after(async () => {
    await daemon?.close();
    await meta?.close();
    await faulty?.close();
    if (work !== undefined) await removeTempDir(work);
  });

  test('every push and clone succeeds or fails cleanly; acknowledged pushes survive', async (t) => {
    const src = join(work, 'src');
    await git(['init', '-q', '-b', 'main', src]);
    let acked: string | undefined;
    let pushFailures = 0;
    let cloneFailures = 0;
    let clones = 0;
    const messages = new Set<string>();
    for (let round = 0; round < ROUNDS; round += 1) {
      // A few files per commit, one of them bigger, so packs have deltas and several objects.
      for (let f = 0; f < 3; f += 1) {
        await writeFile(join(src, `f${f}.txt`), `round ${round} file ${f}\n${'line\n'.repeat(200 + round * 10 + f)}`);
      }
      await git(['-C', src, 'add', '-A']);
      await git(['-C', src, 'commit', '-q', '-m', `round ${round}`]);
      const head = (await git(['-C', src, 'rev-parse', 'HEAD'])).stdout.trim();
      const push = gitResult(['-C', src, 'push', '-q', url, 'main:main']);
      // A clone runs alongside every third push, once the repository has a branch.
      const clone = round % 3 === 0 && acked !== undefined ? gitResult(['clone', '-q', url, join(work, `clone-${round}`)]) : undefined;
      const [pushed, cloned] = await Promise.all([push, clone]);
      if (pushed.code === 0) {
        acked = head;
      } else {
        pushFailures += 1;
        assert.ok(!leaksInternals(pushed.stderr), `push failed with internals on the wire:\n${pushed.stderr}`);
        assert.match(pushed.stderr, /\S/, 'a failed push says why');
        messages.add(pushed.stderr.trim().split('\n')[0] ?? '');
      }
      if (cloned !== undefined) {
        clones += 1;
        if (cloned.code === 0) {
          await assertFsckClean(join(work, `clone-${round}`, '.git'));
        } else {
          cloneFailures += 1;
          assert.ok(!leaksInternals(cloned.stderr), `clone failed with internals on the wire:\n${cloned.stderr}`);
        }
      }
    }
    // The faults really happened, and yet work got through.
    assert.ok(faulty.counts.errors + faulty.counts.lostAcks > 0, 'no fault was injected');
    assert.ok(acked !== undefined, `no push of ${ROUNDS} succeeded (${pushFailures} failed)`);

    faulty.enabled = false;
    const final = join(work, 'final');
    await git(['clone', '-q', '--mirror', url, final]);
    await assertFsckClean(final);
    const tip = (await git(['-C', final, 'rev-parse', 'refs/heads/main'])).stdout.trim();
    // The tip is the last acknowledged push or a later one whose acknowledgement was lost.
    const isAncestor = await gitResult(['-C', src, 'merge-base', '--is-ancestor', acked, tip]);
    assert.equal(isAncestor.code, 0, `acknowledged ${acked} is not in the served history (tip ${tip})`);
    t.diagnostic(
      `pushes failed ${pushFailures}/${ROUNDS}, clones failed ${cloneFailures}/${clones}, ` +
        `faults ${JSON.stringify(faulty.counts)}; push errors seen: ${[...messages].join(' | ')}`,
    );
  });
});
