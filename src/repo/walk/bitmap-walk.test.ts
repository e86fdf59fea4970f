import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { MetaStore } from '../../meta/meta-store.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { BITMAP_KIND } from '../accel/bitmap-format.js';
import { importBareRepository } from '../bare/import-bare.js';
import { readBareRepository } from '../bare/read-bare.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { StoredRepositoryHost } from '../host.js';
import { acceleratorKey } from '../keys.js';
import { ObjectDb } from '../object-db/object-db.js';
import { walkSourceOf } from '../object-db/testing/db-source.js';
import { buildFixture, git, gitLines, storePacks, type GitFixture } from '../object-db/testing/git-fixture.js';
import { newPackOutStats, packObjects } from '../pack-out/pack-objects.js';
import type { StoredRepository } from '../stored-repository.js';
import { enumerateObjects, type Enumeration } from './enumerate.js';
import type { WalkSource } from './source.js';
import type { TagRef } from './tags.js';
import { writeReachBitmaps } from './bitmap-write.js';

let fx: GitFixture;
let tmp: string;
/** The fixture's history with git's own bitmaps (git's bitmap walk, a second oracle). */
let gitBitmapped: string;
/** The second parent of a merge in the history before the split. */
let mergeParent: string;

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

interface Env {
  readonly store: MemoryStore;
  readonly meta: MetaStore;
  readonly repo: StoredRepository;
}

function newEnv(): { store: MemoryStore; meta: MetaStore; host: StoredRepositoryHost } {
  const store = new MemoryStore();
  const meta = new StoreMetaStore({ store });
  return { store, meta, host: StoredRepositoryHost.of(store, meta, createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 })) };
}

/** Pushes `pack` (a pack stream) with ref updates, as receive-pack would. */
async function push(repo: StoredRepository, pack: Uint8Array, refs: readonly [ObjectId, string][]): Promise<void> {
  const received = await repo.receivePack(once(pack), { fsck: {}, limits: DEFAULT_LIMITS, newTips: refs.map(([o]) => o) });
  const record = await received.store();
  const state = await repo.readState();
  const changes = [];
  for (const [oid, name] of refs) {
    const type = await received.objectType(oid);
    const peeled = type === 'tag' ? await received.peel(oid) : undefined;
    changes.push({ name, expected: state.refs.has(name) ? { kind: 'any' as const } : { kind: 'must-not-exist' as const }, value: peeled === undefined ? { oid } : { oid, peeled } });
  }
  const res = await repo.updateRefs({ refs: changes, addPacks: record === undefined ? [] : [record] });
  assert.ok(res.ok);
  await received.discard();
}

/** The fixture imported whole (one closed pack with bitmaps; from git's repack with `repacked`). */
async function importWhole(name: string, repacked = false): Promise<Env> {
  const { store, meta, host } = newEnv();
  const repo = (await host.create(name)) as StoredRepository;
  await importBareRepository(repo, await readBareRepository(repacked ? gitBitmapped : fx.oracle));
  return { store, meta, repo };
}

/** The history up to the split imported (bitmaps), the rest pushed as a thin pack, then more pushes. */
async function importThenPush(name: string): Promise<Env> {
  const { store, meta, host } = newEnv();
  const repo = (await host.create(name)) as StoredRepository;
  const partA = join(tmp, `${name}-a.git`);
  await git(tmp, ['init', '-q', '--bare', '-b', 'main', partA]);
  await git(partA, ['index-pack', '--stdin'], await git(fx.oracle, ['pack-objects', '--revs', '--stdout', '-q'], `${fx.splitCommit}\n`));
  await git(partA, ['update-ref', 'refs/heads/main', fx.splitCommit]);
  await git(partA, ['update-ref', 'refs/heads/old', `${fx.splitCommit}~3`]);
  await importBareRepository(repo, await readBareRepository(partA));
  const tips = (await gitLines(fx.oracle, ['for-each-ref', '--format=%(objectname) %(refname)'])).map((l) => l.split(' ') as [ObjectId, string]);
  // Two pushes: the branches first, then the tags (refs move, packs pile up after the bitmaps).
  const heads = tips.filter(([, n]) => n.startsWith('refs/heads/'));
  const thin1 = await git(fx.oracle, ['pack-objects', '--revs', '--thin', '--stdout', '-q', '--delta-base-offset'], `${heads.map(([o]) => o).join('\n')}\n^${fx.splitCommit}\n`);
  await push(repo, thin1, heads);
  const thin2 = await git(fx.oracle, ['pack-objects', '--revs', '--all', '--thin', '--stdout', '-q', '--delta-base-offset'], `${heads.map(([o]) => `^${o}`).join('\n')}\n`);
  await push(repo, thin2, tips.filter(([, n]) => !n.startsWith('refs/heads/')));
  return { store, meta, repo };
}

/** Sources over the repository's current packs: with its bitmaps, and without. */
async function sources(env: Env): Promise<{ withBitmaps: WalkSource; without: WalkSource; db: ObjectDb }> {
  const state = await env.repo.readState();
  const db = await ObjectDb.open({ store: env.store, repoId: env.repo.record.id, caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 }) }, state.packs);
  const withBitmaps = walkSourceOf(db);
  const { reachBitmaps: _unused, ...without } = withBitmaps;
  return { withBitmaps, without, db };
}

async function revListObjects(repo: string, args: readonly string[], input: string): Promise<string[]> {
  return (await gitLines(repo, ['rev-list', ...args, '--objects', '--stdin'], input)).map((l) => l.slice(0, 40));
}

/** The exact difference: objects reachable from the wants and not from the haves (git's bitmap answer). */
async function exactDifference(wants: readonly string[], haves: readonly string[]): Promise<string[]> {
  const w = await revListObjects(fx.oracle, [], `${wants.join('\n')}\n`);
  const h = new Set(haves.length === 0 ? [] : await revListObjects(fx.oracle, [], `${haves.join('\n')}\n`));
  return [...new Set(w)].filter((o) => !h.has(o)).sort();
}

function sorted(e: { readonly objects: readonly ObjectId[] }): string[] {
  assert.equal(new Set(e.objects).size, e.objects.length, 'no object is listed twice');
  return [...e.objects].sort();
}

function tagRefs(): TagRef[] {
  return [...fx.refs].filter(([n]) => n.startsWith('refs/tags/')).map(([, v]) => ({ oid: v.oid, ...(v.peeled ? { peeled: v.peeled } : {}) }));
}

before(async () => {
  fx = await buildFixture();
  tmp = await mkdtemp(join(tmpdir(), 'stowage-bitmap-'));
  gitBitmapped = join(tmp, 'git-bitmapped.git');
  await git(tmp, ['clone', '-q', '--mirror', fx.oracle, gitBitmapped]);
  await git(gitBitmapped, ['repack', '-adbq']);
  const merge = await gitLines(fx.oracle, ['rev-list', '--merges', '-n', '1', '--skip', '2', fx.splitCommit]);
  mergeParent = `${merge[0]!}^2`;
});
after(async () => {
  await fx.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

const ref = (name: string): ObjectId => fx.refs.get(name)!.oid;
const allRefs = (): ObjectId[] => [...fx.refs.values()].map((v) => v.oid);
const heads = (): ObjectId[] => [...fx.refs].filter(([n]) => n.startsWith('refs/heads/')).map(([, v]) => v.oid);

/** wants, haves (rev-parse expressions). */
const CASES: [string, () => string[], () => string[]][] = [
  ['clone of main', () => [ref('refs/heads/main')], () => []],
  ['clone of every branch and tag', allRefs, () => []],
  ['main since the split commit', () => [ref('refs/heads/main')], () => [fx.splitCommit]],
  ['main not side', () => [ref('refs/heads/main')], () => [ref('refs/heads/side')]],
  ['side not main', () => [ref('refs/heads/side')], () => [ref('refs/heads/main')]],
  ['all branches not two tags', heads, () => [ref('refs/tags/v0.2'), ref('refs/tags/light-55')]],
  ['annotated and nested tags, tree and blob tags', () => [ref('refs/tags/v-outer'), ref('refs/tags/tree-tag'), ref('refs/tags/blob-tag')], () => []],
  ['want equals have', () => [ref('refs/heads/main')], () => [ref('refs/heads/main')]],
  ['have is a tree', () => [ref('refs/heads/main')], () => [`${fx.splitCommit}^{tree}`]],
  ['have deep in history, want a tag', () => [ref('refs/tags/v-outer')], () => [`${fx.splitCommit}~30`]],
  ['everything not an old first-parent commit', allRefs, () => [`${fx.splitCommit}~10`, mergeParent]],
];

async function resolve(exprs: readonly string[]): Promise<ObjectId[]> {
  return exprs.length === 0 ? [] : ((await gitLines(fx.oracle, ['rev-parse', ...exprs])) as ObjectId[]);
}

describe('enumeration with reachability bitmaps equals git', () => {
  for (const layout of ['imported whole', 'imported then pushed'] as const) {
    describe(layout, () => {
      let env: Env;
      let src: Awaited<ReturnType<typeof sources>>;
      before(async () => {
        env = layout === 'imported whole' ? await importWhole('whole') : await importThenPush('split');
        src = await sources(env);
      });

      test('the imported pack has bitmaps and walks use them; pushed packs have none', async () => {
        const state = await env.repo.readState();
        const have = await Promise.all(state.packs.map(async (p) => (await env.store.tryGet(acceleratorKey(env.repo.record.id, p.name, BITMAP_KIND))) !== undefined));
        assert.deepEqual(have, state.packs.map((p) => p.source === 'import'));
        const view = await src.withBitmaps.reachBitmaps!();
        assert.ok(view !== undefined && view.file.entryCount > 0);
        assert.equal(state.packs[view.pack]!.source, 'import');
      });

      for (const [name, wants, haves] of CASES) {
        test(name, async () => {
          const w = await resolve(wants());
          const h = await resolve(haves());
          const exact = await exactDifference(w, h);
          const got = sorted(await enumerateObjects(src.withBitmaps, { wants: w, haves: h }));
          assert.deepEqual(got, exact, 'bitmaps give the exact difference');
          // git's own bitmap walk agrees.
          const gitBm = await revListObjects(gitBitmapped, ['--use-bitmap-index'], `${w.join('\n')}\n${h.map((x) => `^${x}`).join('\n')}\n`);
          assert.deepEqual([...new Set(gitBm)].sort(), exact, "git's bitmap walk");
          // Without bitmaps: git's rev-list without bitmaps, of which the exact difference is a subset.
          const plain = sorted(await enumerateObjects(src.without, { wants: w, haves: h }));
          const gitPlain = await revListObjects(fx.oracle, [], `${w.join('\n')}\n${h.map((x) => `^${x}`).join('\n')}\n`);
          assert.deepEqual(plain, [...new Set(gitPlain)].sort(), 'without bitmaps');
          const plainSet = new Set(plain);
          assert.ok(got.every((o) => plainSet.has(o)));
          // Where git's two walks agree (every case of this history), so do ours.
          if (plain.length === exact.length) assert.deepEqual(got, plain, 'the same with and without bitmaps');
          if (h.length === 0) assert.deepEqual(got, plain, 'a clone is the same with and without bitmaps');
        });
      }

      test('include-tag sends the same tags with and without bitmaps', async () => {
        for (const [w, h] of [
          [[ref('refs/heads/main')], []],
          [heads(), []],
          [[ref('refs/heads/main')], [fx.splitCommit]],
        ] as [ObjectId[], ObjectId[]][]) {
          const got = await enumerateObjects(src.withBitmaps, { wants: w, haves: h, includeTags: true }, tagRefs());
          const plain = await enumerateObjects(src.without, { wants: w, haves: h, includeTags: true }, tagRefs());
          const tagsOf = async (e: Enumeration): Promise<string[]> => {
            const out: string[] = [];
            for (const o of e.objects) if ((await src.withBitmaps.tryReadHeader(o))?.type === 'tag') out.push(o);
            return out.sort();
          };
          assert.deepEqual(await tagsOf(got), await tagsOf(plain));
          const exact = new Set(await exactDifference(w, h));
          for (const o of got.objects) if (!exact.has(o)) assert.equal((await src.withBitmaps.tryReadHeader(o))?.type, 'tag');
        }
      });

      test('a missing want is OBJ_MISSING; missing haves are ignored; the signal aborts', async () => {
        const none = 'e'.repeat(40) as ObjectId;
        await assert.rejects(enumerateObjects(src.withBitmaps, { wants: [none], haves: [] }), (e: unknown) => (e as { code?: string }).code === 'OBJ_MISSING');
        const got = await enumerateObjects(src.withBitmaps, { wants: [ref('refs/heads/main')], haves: [none] });
        assert.deepEqual(sorted(got), await exactDifference([ref('refs/heads/main')], []));
        const ac = new AbortController();
        ac.abort(new Error('stop'));
        await assert.rejects(enumerateObjects(src.withBitmaps, { wants: allRefs(), haves: [], signal: ac.signal }), /stop/);
      });
    });
  }

  test('a full clone of a bitmapped pack is the stored pack, sent as it is', async () => {
    // git's repack: one pack of distinct objects (the fixture's two packs share some).
    const env = await importWhole('whole-pack', true);
    const { withBitmaps, db } = await sources(env);
    const wants = [...fx.refs.values()].map((v) => v.oid);
    const e = await enumerateObjects(withBitmaps, { wants, haves: [] });
    assert.equal(e.packed?.extras, 0);
    assert.equal(e.packed?.positions.length, db.packs[0]!.index.count);
    assert.equal(e.objects.length, db.packs[0]!.index.count);
    const stats = newPackOutStats();
    const chunks: Uint8Array[] = [];
    const opts = { thin: false, ofsDelta: true, locations: { graph: e.graph!, at: e.locations! }, packed: { graph: e.graph!, ...e.packed! } };
    for await (const c of packObjects(db, e.objects, opts, stats)) chunks.push(c);
    assert.equal(stats.wholePack, true);
    const stored = Buffer.from(await env.store.get(db.packs[0]!.key));
    assert.ok(Buffer.concat(chunks).equals(stored));
    // Through the repository's own contract too; the lazily listed ids are the right ones.
    const res = await env.repo.enumerateObjects({ wants, haves: [] });
    const viaRepo: Uint8Array[] = [];
    for await (const c of env.repo.packObjects(res.objects, { thin: false, ofsDelta: true, ...(res.hints === undefined ? {} : { hints: res.hints }) })) viaRepo.push(c);
    assert.ok(Buffer.concat(viaRepo).equals(stored));
    assert.deepEqual(sorted(res), await exactDifference(wants, []));
    // Without the whole-pack hint the list is read and planned: the same pack comes out.
    const planned = newPackOutStats();
    const again: Uint8Array[] = [];
    for await (const c of packObjects(db, e.objects, { thin: false, ofsDelta: true, locations: { graph: e.graph!, at: e.locations! } }, planned)) again.push(c);
    assert.equal(planned.wholePack, true);
    assert.ok(Buffer.concat(again).equals(stored));
  });

  test('a full clone after pushes: the bitmapped pack goes out as one verbatim run, the rest after it', async () => {
    const env = await importThenPush('whole-plus-rest');
    const wants = allRefs();
    const res = await env.repo.enumerateObjects({ wants, haves: [] });
    const chunks: Uint8Array[] = [];
    for await (const c of env.repo.packObjects(res.objects, { thin: false, ofsDelta: true, ...(res.hints === undefined ? {} : { hints: res.hints }) })) chunks.push(c);
    const dir = await mkdtemp(join(tmp, 'whole-plus-rest-'));
    await git(dir, ['init', '-q', '--bare']);
    const name = (await git(dir, ['index-pack', '--stdin', '--strict'], Buffer.concat(chunks))).toString().trim().split(/\s+/).pop()!;
    const idx = await readFile(join(dir, 'objects', 'pack', `pack-${name}.idx`));
    const ids = (await git(dir, ['show-index'], idx)).toString().trim().split('\n').map((l) => l.split(' ')[1]!);
    assert.deepEqual([...ids].sort(), await exactDifference(wants, []));
  });

  test('a corrupt or foreign bitmap file is ignored: the walk answers as without bitmaps', async () => {
    const env = await importWhole('corrupt');
    const state = await env.repo.readState();
    const key = acceleratorKey(env.repo.record.id, state.packs[0]!.name, BITMAP_KIND);
    const good = Buffer.from(await env.store.get(key));
    const w = [ref('refs/heads/main')];
    const h = [fx.splitCommit];
    const plain = sorted(await enumerateObjects((await sources(env)).without, { wants: w, haves: h }));
    for (const bad of [good.subarray(0, 100), Buffer.concat([good.subarray(0, 60), Buffer.from([good[60]! ^ 1]), good.subarray(61)]), Buffer.alloc(0)]) {
      await env.store.put(key, bad);
      const src = await sources(env);
      assert.equal(await src.withBitmaps.reachBitmaps!(), undefined);
      assert.deepEqual(sorted(await enumerateObjects(src.withBitmaps, { wants: w, haves: h })), plain);
    }
  });

  test('compaction of every pack writes bitmaps for the merged pack; answers stay exact', async () => {
    const env = await importThenPush('compacted');
    const res = await env.repo.compact({ full: true, graceMs: 0 });
    assert.equal(res.kind, 'compacted');
    assert.equal(res.kind === 'compacted' ? res.bitmaps?.kind : undefined, 'written');
    const state = await env.repo.readState();
    assert.equal(state.packs.length, 1);
    assert.ok((await env.store.tryGet(acceleratorKey(env.repo.record.id, state.packs[0]!.name, BITMAP_KIND))) !== undefined);
    // The old packs' bitmaps go with their files once collected.
    await env.repo.compact({ graceMs: 0 });
    const left = [];
    for await (const info of env.store.list(`repos/${env.repo.record.id}/pack/`)) if (info.key.endsWith(`.${BITMAP_KIND}`)) left.push(info.key);
    assert.deepEqual(left, [acceleratorKey(env.repo.record.id, state.packs[0]!.name, BITMAP_KIND)]);
    const src = await sources(env);
    for (const [name, wants, haves] of CASES) {
      const w = await resolve(wants());
      const h = await resolve(haves());
      assert.deepEqual(sorted(await env.repo.enumerateObjects({ wants: w, haves: h })), await exactDifference(w, h), name);
      assert.deepEqual(sorted(await enumerateObjects(src.withBitmaps, { wants: w, haves: h })), await exactDifference(w, h), name);
    }
  });

  test('a pack that is not closed gets no bitmaps', async () => {
    // The fixture's newer pack holds the history after the split only (plus a thin pack's bases).
    const store = new MemoryStore();
    const caches = createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 });
    const [newer, older] = await storePacks(store, 'r', fx.packs);
    const deps = { store, repoId: 'r', caches };
    const res = await writeReachBitmaps(deps, newer!, allRefs());
    assert.equal(res.kind, 'skipped');
    assert.equal(await store.tryGet(acceleratorKey('r', newer!.name, BITMAP_KIND)), undefined);
    // The older pack is closed for the split commit (and for nothing newer).
    assert.equal((await writeReachBitmaps(deps, older!, [ref('refs/heads/main')])).kind, 'skipped');
    const ok = await writeReachBitmaps(deps, older!, [fx.splitCommit]);
    assert.ok(ok.kind === 'written' && ok.entries > 1);
    // Without accelerators (these packs have none) the walk inflates; the sets are still exact.
    const db = await ObjectDb.open({ store, repoId: 'r', caches }, [newer!, older!]);
    for (const [w, h] of [[[ref('refs/heads/main')], [`${fx.splitCommit}~5`]], [allRefs(), []], [[fx.splitCommit], []]] as [string[], string[]][]) {
      const wants = await resolve(w);
      const haves = await resolve(h);
      assert.deepEqual(sorted(await enumerateObjects(walkSourceOf(db), { wants, haves })), await exactDifference(wants, haves));
    }
  });
});
