/**
 * Online compaction under load: a git daemon in this process serves one repository while
 * three stock git clients clone it in a loop (protocol v0, v1, v2), two push to it in a loop,
 * and compaction runs over and over in the same process with a short grace period, so packs
 * are merged and old files deleted while clones read them. Every clone must succeed and be
 * fsck-clean, every acknowledged push must be served afterwards, and no client may see an
 * error.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { createLogger } from '../../src/core/log.js';
import { GitDaemon } from '../../src/frontends/git-daemon/server.js';
import { StoreMetaStore } from '../../src/meta/store/store-meta.js';
import { createRepoCaches } from '../../src/repo/cache/repo-caches.js';
import { compactRepository, type CompactDeps } from '../../src/repo/compact/compact.js';
import { collectRemovedPacks } from '../../src/repo/compact/removed.js';
import { StoredRepositoryHost } from '../../src/repo/host.js';
import { createGitService } from '../../src/service/dispatch.js';
import { FsStore } from '../../src/storage/fs/fs-store.js';
import { git, gitResult, type ClientProtocol } from '../helpers/git.js';
import { assertFsckClean, objectsOf } from '../helpers/repo-check.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

/** How long clients and compaction run together. */
const RUN_MS = 30_000;
/** Removed packs' files go after this; far longer than one clone of this small repository takes. */
const GRACE_MS = 8_000;
const PUSHERS = 2;
const CLONERS: readonly ClientProtocol[] = [0, 1, 2];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('compaction during concurrent clones and pushes', () => {
  let work: string;
  let store: FsStore;
  let meta: StoreMetaStore;
  let daemon: GitDaemon;
  let url: string;
  let deps: CompactDeps;
  let skewMs = 0;

  before(async () => {
    work = await makeTempDir('stowage-compact-e2e-');
    store = new FsStore({ root: join(work, 'data') });
    meta = new StoreMetaStore({ store });
    const caches = createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 8 });
    const host = StoredRepositoryHost.of(store, meta, caches, Date.now);
    const repo = await host.create('busy', { defaultBranch: 'main' });
    // The compactor shares the server's caches, as a compaction in a serving process does.
    deps = { store, meta, caches, repoId: repo.record.id, clock: () => Date.now() + skewMs };
    const logger = createLogger({ level: 'silent' });
    const service = createGitService({ host, fsck: {}, limits: DEFAULT_LIMITS, allowReceivePack: () => true, logger, agent: 'stowage/test' });
    daemon = new GitDaemon({ service, logger, listen: { host: '127.0.0.1', port: 0 }, allowPush: true, idleTimeoutMs: 30_000, maxConnections: 64 });
    const { port } = await daemon.start();
    url = `git://127.0.0.1:${port}/busy`;
  });

  after(async () => {
    await daemon?.close();
    await meta?.close();
    await store?.close();
    if (work !== undefined) await removeTempDir(work);
  });

  test('every clone is fsck-clean, every acknowledged push is served, no client error', async (t) => {
    const seed = join(work, 'seed');
    await git(['init', '-q', '-b', 'main', seed]);
    await writeFile(join(seed, 'README'), 'seed\n');
    await git(['-C', seed, 'add', '-A']);
    await git(['-C', seed, 'commit', '-q', '-m', 'seed']);
    await git(['-C', seed, 'push', '-q', url, 'main:main']);

    const deadline = Date.now() + RUN_MS;
    const failures: string[] = [];
    const acked: string[][] = Array.from({ length: PUSHERS }, () => []);
    let clones = 0;
    let compactions = 0;
    let deletedPacks = 0;
    let maxPacks = 0;

    const pusher = async (k: number): Promise<void> => {
      const dir = join(work, `pusher-${k}`);
      await git(['clone', '-q', url, dir]);
      for (let round = 0; Date.now() < deadline; round++) {
        await writeFile(join(dir, `p${k}.txt`), `pusher ${k} round ${round}\n${'a line of text\n'.repeat(40 + round * 3)}`);
        await writeFile(join(dir, `p${k}-${round % 5}.txt`), `${round}\n`);
        await git(['-C', dir, 'add', '-A']);
        await git(['-C', dir, 'commit', '-q', '-m', `p${k} ${round}`]);
        const head = (await git(['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
        const res = await gitResult(['-C', dir, 'push', '-q', url, `HEAD:refs/heads/p${k}`]);
        if (res.code === 0) acked[k]!.push(head);
        else failures.push(`push p${k} round ${round}: ${res.stderr.trim()}`);
      }
    };

    const cloner = async (k: number, protocolVersion: ClientProtocol): Promise<void> => {
      for (let round = 0; Date.now() < deadline; round++) {
        const dir = join(work, `clone-${k}-${round}.git`);
        const res = await gitResult(['clone', '-q', '--mirror', url, dir], { protocolVersion });
        if (res.code !== 0) {
          failures.push(`clone v${protocolVersion} round ${round}: ${res.stderr.trim()}`);
        } else {
          try {
            await assertFsckClean(dir);
            clones++;
          } catch (err) {
            failures.push(`clone v${protocolVersion} round ${round} fsck: ${String(err)}`);
          }
        }
        await rm(dir, { recursive: true, force: true });
      }
    };

    const compactor = async (): Promise<void> => {
      for (let round = 0; Date.now() < deadline; round++) {
        try {
          maxPacks = Math.max(maxPacks, (await meta.readState(deps.repoId)).packs.length);
          const res = await compactRepository(deps, { graceMs: GRACE_MS, full: round % 5 === 4 });
          if (res.kind === 'compacted') compactions++;
          deletedPacks += res.collected.deleted.length;
        } catch (err) {
          failures.push(`compaction round ${round}: ${String(err)}`);
        }
        await sleep(300);
      }
    };

    await Promise.all([
      ...Array.from({ length: PUSHERS }, (_, k) => pusher(k)),
      ...CLONERS.map((v, k) => cloner(k, v)),
      compactor(),
    ]);
    assert.deepEqual(failures, []);
    assert.ok(compactions >= 3, `only ${compactions} compactions ran`);
    assert.ok(deletedPacks > 0, 'no removed pack was deleted while clients ran');
    assert.ok(clones >= CLONERS.length, `only ${clones} clones completed`);
    for (let k = 0; k < PUSHERS; k++) assert.ok(acked[k]!.length > 0, `pusher ${k} got no push through`);

    // Afterwards: one full compaction, every removed file collected, and nothing lost.
    const final = join(work, 'final.git');
    await git(['clone', '-q', '--mirror', url, final]);
    const expected = await objectsOf(final);
    const full = await compactRepository(deps, { full: true, graceMs: GRACE_MS });
    assert.notEqual(full.kind, 'raced');
    skewMs = GRACE_MS * 10;
    try {
      await collectRemovedPacks(deps, { graceMs: GRACE_MS });
    } finally {
      skewMs = 0;
    }
    const state = await meta.readState(deps.repoId);
    assert.equal(state.packs.length, 1);
    const last = join(work, 'last.git');
    await git(['clone', '-q', '--mirror', url, last]);
    await assertFsckClean(last);
    assert.deepEqual(await objectsOf(last), expected);
    for (let k = 0; k < PUSHERS; k++) {
      const tip = (await git(['--git-dir', last, 'rev-parse', `refs/heads/p${k}`])).stdout.trim();
      assert.equal(tip, acked[k]!.at(-1), `branch p${k} is not at its last acknowledged push`);
      for (const head of acked[k]!) {
        const cat = await gitResult(['--git-dir', last, 'cat-file', '-e', `${head}^{commit}`]);
        assert.equal(cat.code, 0, `acknowledged ${head} of p${k} is missing`);
      }
    }
    t.diagnostic(
      `${clones} clones, ${acked.reduce((s, a) => s + a.length, 0)} pushes, ${compactions} compactions, ` +
        `${deletedPacks} packs deleted during the run, at most ${maxPacks} packs visible`,
    );
  });
});
