/**
 * Compaction against the real fs store and store-backed meta store, with the stock git client
 * pushing and cloning through the file:// server script (service/testing/env.ts).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MetaStore, RepoState, Transaction, TransactResult } from '../../meta/meta-store.js';
import { PackIndex } from '../../git/pack/idx.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';
import { createTestEnv, type TestEnv } from '../../service/testing/env.js';
import { FsStore } from '../../storage/fs/fs-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { ACCEL_KIND } from '../accel/format.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { acceleratorKey } from '../keys.js';
import { compactRepository, type CompactDeps } from './compact.js';
import { collectRemovedPacks, markRemoved, removedMarkerKey, removedPrefix } from './removed.js';

const GRACE_MS = 10 * 60_000;
const PUSHES = 12;

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys;
}

describe('compactRepository with stock git', () => {
  let env: TestEnv;
  let store: FsStore;
  let meta: StoreMetaStore;
  let repoId: string;
  /** Added to Date.now(): moves the compaction's clock past grace periods. */
  let skewMs = 0;
  const clock = (): number => Date.now() + skewMs;

  function deps(m: MetaStore = meta): CompactDeps {
    return { store, meta: m, caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 8 }), repoId, clock };
  }

  async function packFiles(): Promise<Set<string>> {
    const keys = await keysUnder(store, `repos/${repoId}/pack/pack-`);
    return new Set(keys.map((k) => k.slice(k.lastIndexOf('/') + 1).replace(/\.[a-z0-9]+$/, '')));
  }

  async function idxObjects(packName: string): Promise<string[]> {
    const idx = PackIndex.decode(await store.get(`repos/${repoId}/pack/${packName}.idx`));
    return Array.from({ length: idx.count }, (_, i) => idx.oidAt(i));
  }

  async function objectsOfClone(dir: string): Promise<string[]> {
    await env.git('.', ['clone', '-q', '--mirror', ...env.cloneArgs, env.url('r'), dir]);
    const out = await env.git(dir, ['rev-list', '--objects', '--all']);
    await env.git(dir, ['fsck', '--strict', '--full', '--no-dangling', '--no-progress']);
    return [...new Set(out.stdout.split('\n').filter((l) => l !== '').map((l) => l.slice(0, 40)))].sort();
  }

  before(async () => {
    env = await createTestEnv();
    await env.host.create('r');
    await env.git('.', ['clone', '-q', ...env.cloneArgs, env.url('r'), 'src']);
    for (let i = 0; i < PUSHES; i++) {
      // Growing files, so later packs carry deltas against objects of earlier ones.
      await writeFile(join(env.root, 'src', 'a.txt'), `round ${i}\n${'some text line\n'.repeat(50 + i * 7)}`);
      await writeFile(join(env.root, 'src', `f${i % 4}.txt`), `file ${i}\n`);
      await env.git('src', ['add', '-A']);
      await env.git('src', ['commit', '-q', '-m', `commit ${i}`]);
      if (i === 5) await env.git('src', ['tag', '-a', '-m', 'six', 'v6']);
      await env.git('src', ['push', '-q', 'origin', 'main', ...(i === 5 ? ['v6'] : [])]);
    }
    store = new FsStore({ root: join(env.dataDir, 'store') });
    meta = new StoreMetaStore({ store });
    repoId = (await meta.tryGetRepo('r'))!.id;
  });

  after(async () => {
    await meta?.close();
    await store?.close();
    await env?.cleanup();
  });

  test('twelve pushed packs merge; the object set is unchanged and old files wait for the grace', async () => {
    const before = await meta.readState(repoId);
    assert.equal(before.packs.length, PUSHES);
    const objectsBefore = await objectsOfClone('before.git');

    const res = await compactRepository(deps());
    assert.equal(res.kind, 'compacted');
    if (res.kind !== 'compacted') return;
    assert.equal(res.pack.source, 'compact');
    assert.ok(res.removed.length >= 2);
    const afterState = await meta.readState(repoId);
    assert.ok(afterState.packs.length < before.packs.length, `${afterState.packs.length} packs after`);
    assert.deepEqual(afterState.refs, before.refs);
    assert.equal(afterState.head, before.head);
    assert.ok(afterState.packs.some((p) => p.name === res.pack.name));
    // The merged pack holds exactly the objects of the packs it replaced (thin-pack bases
    // appended at push time made some of them hold the same object).
    const union = new Set<string>();
    for (const name of res.removed) for (const oid of await idxObjects(name)) union.add(oid);
    assert.deepEqual(new Set(await idxObjects(res.pack.name)), union);
    assert.equal(res.pack.objects, union.size);

    assert.deepEqual(await objectsOfClone('after.git'), objectsBefore);

    // Within the grace: the old files stay (readers of the old state may still use them).
    const files = await packFiles();
    for (const name of res.removed) assert.ok(files.has(name), `${name} deleted too early`);
    assert.deepEqual(
      (await keysUnder(store, removedPrefix(repoId))).sort(),
      res.removed.map((n) => removedMarkerKey(repoId, n)).sort(),
    );
    const early = await collectRemovedPacks({ store, meta, repoId, clock });
    assert.deepEqual(early.deleted, []);
    assert.equal(early.waiting.length, res.removed.length);

    // A full compaction leaves one pack; nothing is lost.
    const full = await compactRepository(deps(), { full: true });
    assert.equal(full.kind, afterState.packs.length > 1 ? 'compacted' : 'unchanged');
    const one = await meta.readState(repoId);
    assert.equal(one.packs.length, 1);
    assert.deepEqual(await objectsOfClone('full.git'), objectsBefore);

    // Past the grace, every removed pack's files go, then their markers; the visible pack stays.
    skewMs = GRACE_MS + 60_000;
    try {
      const late = await collectRemovedPacks({ store, meta, repoId, clock });
      assert.ok(late.deleted.length >= res.removed.length);
      assert.deepEqual(await packFiles(), new Set([one.packs[0]!.name]));
      assert.deepEqual(await keysUnder(store, removedPrefix(repoId)), []);
      // Index, pack and accelerator of the visible pack are all still there.
      const left = await keysUnder(store, `repos/${repoId}/pack/${one.packs[0]!.name}.`);
      assert.ok(left.some((k) => k.endsWith('.pack')) && left.some((k) => k.endsWith('.idx')), left.join(','));
      assert.ok(left.includes(acceleratorKey(repoId, one.packs[0]!.name, ACCEL_KIND)), `no accelerator: ${left.join(',')}`);
    } finally {
      skewMs = 0;
    }
    assert.deepEqual(await objectsOfClone('late.git'), objectsBefore);
    // Nothing left to do.
    assert.equal((await compactRepository(deps())).kind, 'unchanged');
  });

  test('compaction after more pushes, two compactions at once (two nodes): nothing lost', async () => {
    for (let i = 0; i < 6; i++) {
      await writeFile(join(env.root, 'src', 'b.txt'), `more ${i}\n${'x\n'.repeat(30 * i)}`);
      await env.git('src', ['add', '-A']);
      await env.git('src', ['commit', '-q', '-m', `more ${i}`]);
      await env.git('src', ['push', '-q', 'origin', 'main']);
    }
    const expected = await objectsOfClone('before2.git');
    // A second node: its own meta store instance over the same store.
    const other = new StoreMetaStore({ store });
    try {
      const [a, b] = await Promise.all([compactRepository(deps(), { full: true }), compactRepository(deps(other), { full: true })]);
      assert.ok([a.kind, b.kind].includes('compacted'), `${a.kind} ${b.kind}`);
    } finally {
      await other.close();
    }
    const state = await meta.readState(repoId);
    assert.ok(state.packs.length <= 2, `${state.packs.length} packs`);
    assert.deepEqual(await objectsOfClone('two-nodes.git'), expected);
    // Deletion after both: the visible list keeps its files.
    skewMs = GRACE_MS + 60_000;
    try {
      await collectRemovedPacks({ store, meta, repoId, clock });
    } finally {
      skewMs = 0;
    }
    const files = await packFiles();
    for (const p of (await meta.readState(repoId)).packs) assert.ok(files.has(p.name), `visible ${p.name} lost its files`);
    assert.deepEqual(await objectsOfClone('two-nodes-late.git'), expected);
  });

  test('a failed transaction leaves the old packs visible; the unpublished pack is collected later', async () => {
    for (let i = 0; i < 3; i++) {
      await writeFile(join(env.root, 'src', 'c.txt'), `fail ${i}\n`);
      await env.git('src', ['add', '-A']);
      await env.git('src', ['commit', '-q', '-m', `fail ${i}`]);
      await env.git('src', ['push', '-q', 'origin', 'main']);
    }
    const expected = await objectsOfClone('before3.git');
    const before: RepoState = await meta.readState(repoId);
    const broken: MetaStore = {
      description: 'broken',
      createRepo: (i) => meta.createRepo(i),
      tryGetRepo: (n) => meta.tryGetRepo(n),
      listRepos: () => meta.listRepos(),
      renameRepo: (a, b) => meta.renameRepo(a, b),
      updateRepoSettings: (n, s) => meta.updateRepoSettings(n, s),
      deleteRepo: (n) => meta.deleteRepo(n),
      readState: (id) => meta.readState(id),
      transact: async (_id: string, _txn: Transaction): Promise<TransactResult> => {
        throw new Error('meta store down');
      },
      close: async () => undefined,
    };
    await assert.rejects(compactRepository(deps(broken), { full: true }), /meta store down/);
    const state = await meta.readState(repoId);
    assert.deepEqual(state.packs.map((p) => p.name), before.packs.map((p) => p.name));
    assert.deepEqual(await objectsOfClone('failed.git'), expected);
    const orphans = [...(await packFiles())].filter((n) => !state.packs.some((p) => p.name === n));
    assert.equal(orphans.length, 1);

    skewMs = GRACE_MS + 60_000;
    try {
      const res = await collectRemovedPacks({ store, meta, repoId, clock });
      assert.ok(res.deleted.includes(orphans[0]!));
      // Markers written for the still-visible packs are dropped, their files kept.
      assert.equal(res.dropped.length, before.packs.length);
    } finally {
      skewMs = 0;
    }
    assert.deepEqual(await packFiles(), new Set(state.packs.map((p) => p.name)));
    assert.deepEqual(await keysUnder(store, removedPrefix(repoId)), []);
    assert.deepEqual(await objectsOfClone('failed-late.git'), expected);
  });

  test('files written within the grace are kept even when their marker is old', async () => {
    const name = `pack-${'ab'.repeat(20)}`;
    await store.put(`repos/${repoId}/pack/${name}.pack`, new Uint8Array([1, 2, 3]));
    await store.put(`repos/${repoId}/pack/${name}.idx`, new Uint8Array([4]));
    const oldClock = (): number => Date.now() - GRACE_MS - 60_000;
    await markRemoved({ store, repoId, clock: oldClock }, [name], 'unpublished');
    const res = await collectRemovedPacks({ store, meta, repoId, clock });
    assert.deepEqual(res.waiting, [name]);
    assert.equal((await keysUnder(store, `repos/${repoId}/pack/${name}.`)).length, 2);
    skewMs = GRACE_MS + 60_000;
    try {
      assert.deepEqual((await collectRemovedPacks({ store, meta, repoId, clock })).deleted, [name]);
    } finally {
      skewMs = 0;
    }
    assert.deepEqual(await keysUnder(store, `repos/${repoId}/pack/${name}.`), []);
  });
});
