import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';
import type { MetaStore } from '../../meta/meta-store.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { importBareRepository } from '../bare/import-bare.js';
import { readBareRepository } from '../bare/read-bare.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { StoredRepositoryHost } from '../host.js';
import { acceleratorKey, idxKey, packKey } from '../keys.js';
import { buildAccelerator } from './build.js';
import { buildFixture, git, gitLines, type GitFixture } from '../object-db/testing/git-fixture.js';
import type { Repository } from '../repository.js';
import type { StoredRepository } from '../stored-repository.js';
import { ObjectDb } from '../object-db/object-db.js';
import { newPackOutStats, packObjects } from '../pack-out/pack-objects.js';
import { ACCEL_KIND } from './format.js';

let fx: GitFixture;
let tmp: string;
/** A history made of real commits: subdirectories, renames, deletions, a gitlink, a symlink. */
let real: string;

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** Commits made one by one with git itself, repacked the way git does. */
async function buildRealRepo(dir: string): Promise<string> {
  const work = join(dir, 'work');
  await mkdir(work, { recursive: true });
  await git(work, ['init', '-q', '-b', 'main']);
  const env = ['-c', 'user.name=T', '-c', 'user.email=t@example.invalid'];
  for (let i = 0; i < 40; i++) {
    await mkdir(join(work, 'src', `m${i % 4}`), { recursive: true });
    await writeFile(join(work, 'src', `m${i % 4}`, `f${i % 7}.txt`), `version ${i}\n${'line\n'.repeat(50 + i)}`);
    await writeFile(join(work, 'README'), `readme ${Math.floor(i / 5)}\n`);
    if (i === 10) await symlink('README', join(work, 'link'));
    if (i === 15) await git(work, ['update-index', '--add', '--cacheinfo', `160000,${'1'.repeat(40)},vendor/sub`]);
    if (i === 20) await git(work, ['mv', 'src/m1', 'lib']);
    if (i === 25) await git(work, ['rm', '-q', '-r', 'lib']);
    if (i % 9 === 8) await git(work, ['checkout', '-q', '-B', `topic-${i}`]);
    if (i % 9 === 0 && i > 0) await git(work, ['checkout', '-q', 'main']);
    await git(work, ['add', '-A']);
    await git(work, [...env, 'commit', '-q', '-m', `commit ${i}`, '--date', `${1700000000 + i * 100} +0000`], undefined);
    if (i % 10 === 3) await git(work, [...env, 'tag', '-a', '-m', `tag ${i}`, `v${i}`]);
  }
  const bare = join(dir, 'real.git');
  await git(dir, ['clone', '-q', '--bare', work, bare]);
  await git(bare, ['repack', '-adfq', '--depth=50', '--window=10']);
  return bare;
}

interface Env {
  readonly store: MemoryStore;
  readonly meta: MetaStore;
  readonly repo: StoredRepository;
  readonly oracle: string;
}

/** Imports `oracle` (optionally only up to `split`, then pushes the rest as a thin pack). */
async function importRepo(oracle: string, name: string, split?: ObjectId): Promise<Env> {
  const store = new MemoryStore();
  const meta = new StoreMetaStore({ store });
  const host = StoredRepositoryHost.of(store, meta, createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 }));
  const repo = (await host.create(name)) as StoredRepository;
  if (split === undefined) {
    await importBareRepository(repo, await readBareRepository(oracle));
    return { store, meta, repo, oracle };
  }
  // Part one: a bare repository holding the history up to `split`.
  const partA = join(tmp, `${name}-a.git`);
  await git(tmp, ['init', '-q', '--bare', '-b', 'main', partA]);
  const pack = await git(oracle, ['pack-objects', '--revs', '--stdout', '-q'], `${split}\n`);
  await git(partA, ['index-pack', '--stdin'], pack);
  await git(partA, ['update-ref', 'refs/heads/main', split]);
  await importBareRepository(repo, await readBareRepository(partA));
  // Part two: everything else as a thin pack, as a push sends it.
  const thin = await git(oracle, ['pack-objects', '--revs', '--all', '--thin', '--stdout', '-q', '--delta-base-offset'], `^${split}\n`);
  const tips = (await gitLines(oracle, ['for-each-ref', '--format=%(objectname) %(refname)'])).map((l) => l.split(' ') as [ObjectId, string]);
  const received = await repo.receivePack(once(thin), { fsck: {}, limits: DEFAULT_LIMITS, newTips: tips.map(([o]) => o) });
  const record = await received.store();
  const refs = [];
  for (const [oid, refName] of tips) {
    const type = await received.objectType(oid);
    const peeled = type === 'tag' ? await received.peel(oid) : undefined;
    const value = peeled === undefined ? { oid } : { oid, peeled };
    refs.push(refName === 'refs/heads/main' ? { name: refName, expected: { kind: 'any' as const }, value } : { name: refName, expected: { kind: 'must-not-exist' as const }, value });
  }
  const res = await repo.updateRefs({ refs, addPacks: record === undefined ? [] : [record] });
  assert.ok(res.ok);
  await received.discard();
  return { store, meta, repo, oracle };
}

/** The same repository through a new host with fresh caches (what another process would see). */
async function reopen(env: Env, name: string): Promise<Repository> {
  const host = StoredRepositoryHost.of(env.store, env.meta, createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 }));
  return host.open(name);
}

async function accelKeys(env: Env): Promise<string[]> {
  const state = await env.repo.readState();
  return state.packs.map((p) => acceleratorKey(env.repo.record.id, p.name, ACCEL_KIND));
}

function sortedSet(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort();
}

async function enumerate(repo: Repository, wants: readonly ObjectId[], haves: readonly ObjectId[] = [], extra: Partial<Parameters<Repository['enumerateObjects']>[0]> = {}): Promise<string[]> {
  const res = await repo.enumerateObjects({ wants, haves, ...extra });
  assert.equal(new Set(res.objects).size, res.objects.length, 'no object is listed twice');
  return sortedSet(res.objects);
}

async function refTips(oracle: string, prefix = ''): Promise<ObjectId[]> {
  return (await gitLines(oracle, ['for-each-ref', '--format=%(objectname)', ...(prefix === '' ? [] : [prefix])])) as ObjectId[];
}

function pkt(line: string): string {
  return (line.length + 4).toString(16).padStart(4, '0') + line;
}

/** The objects git's own upload-pack sends for these wants, `deepen depth` and (optionally) include-tag. */
async function gitUploadPack(oracle: string, wants: readonly ObjectId[], depth: number, includeTag: boolean): Promise<string[]> {
  const caps = `ofs-delta${includeTag ? ' include-tag' : ''}`;
  const request = `${wants.map((w, i) => pkt(`want ${w}${i === 0 ? ` ${caps}` : ''}\n`)).join('')}${pkt(`deepen ${depth}\n`)}0000${pkt('done\n')}`;
  const out = await git(oracle, ['upload-pack', '--stateless-rpc', '.'], request);
  const pack = out.subarray(out.indexOf('PACK'));
  const dir = await mkdtemp(join(tmp, 'up-'));
  await git(dir, ['init', '-q', '--bare']);
  const name = (await git(dir, ['index-pack', '--stdin'], pack)).toString().trim().split(/\s+/).pop()!;
  const idx = await readFile(join(dir, 'objects', 'pack', `pack-${name}.idx`));
  const lines = (await git(dir, ['show-index'], idx)).toString().trim().split('\n');
  return sortedSet(lines.map((l) => l.split(' ')[1]!));
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'stowage-accel-'));
  fx = await buildFixture();
  real = await buildRealRepo(tmp);
});
after(async () => {
  await fx.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

const cases: { name: string; setup: () => Promise<Env> }[] = [
  { name: 'generated history (import, then a thin push)', setup: () => importRepo(fx.oracle, 'gen', fx.splitCommit) },
  { name: 'real commits (git repack deltas)', setup: () => importRepo(real, 'real') },
];

for (const c of cases) {
  describe(`accelerated walks: ${c.name}`, () => {
    let env: Env;
    let name: string;
    before(async () => {
      env = await c.setup();
      name = env.repo.record.name;
    });

    test('every pack has an accelerator and the clone set equals git rev-list --objects --all', async () => {
      for (const key of await accelKeys(env)) assert.ok(await env.store.head(key), `${key} exists`);
      const graph = await env.repo.accelGraph();
      assert.ok(graph.files.every((f) => f !== undefined));
      const expected = sortedSet((await gitLines(env.oracle, ['rev-list', '--objects', '--all'])).map((l) => l.slice(0, 40)));
      assert.deepEqual(await enumerate(env.repo, await refTips(env.oracle)), expected);
    });

    test('buildAccelerator (for compaction) rebuilds exactly the stored idx and accelerator from the pack', async () => {
      const state = await env.repo.readState();
      for (const p of state.packs) {
        const pack = await env.store.get(packKey(env.repo.record.id, p.name));
        for (const threads of [1, 2]) {
          const built = await buildAccelerator(once(pack), { threads });
          assert.equal(built.objectCount, p.objects);
          assert.ok(Buffer.from(built.idx).equals(await env.store.get(idxKey(env.repo.record.id, p.name))));
          assert.ok(Buffer.from(built.accel).equals(await env.store.get(acceleratorKey(env.repo.record.id, p.name, ACCEL_KIND))));
        }
      }
    });

    test('a repeated clone is answered from the clone cache with the same objects; a new state misses', async () => {
      const caches = createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 });
      const host = StoredRepositoryHost.of(env.store, env.meta, caches);
      const all = await refTips(env.oracle);
      const heads = await refTips(env.oracle, 'refs/heads');
      const first = await enumerate(await host.open(name), all, [], { includeTags: true });
      const hits = caches.clones.stats().hits;
      const again = await enumerate(await host.open(name), all, [], { includeTags: true });
      assert.equal(caches.clones.stats().hits, hits + 1);
      assert.deepEqual(again, first);
      // Another request is another key; with haves nothing is cached.
      assert.deepEqual(await enumerate(await host.open(name), heads), await enumerate(await reopen(env, name), heads));
      const entries = caches.clones.stats().entries;
      await enumerate(await host.open(name), heads, [heads[0]!]);
      assert.equal(caches.clones.stats().entries, entries);
      // The pack built from a cached answer is whole and correct.
      const repo = await host.open(name);
      const res = await repo.enumerateObjects({ wants: all, haves: [] });
      const chunks: Uint8Array[] = [];
      for await (const c of repo.packObjects(res.objects, { thin: false, ofsDelta: true, ...(res.hints === undefined ? {} : { hints: res.hints }) })) chunks.push(c);
      const dir = await mkdtemp(join(tmp, 'cached-'));
      await git(dir, ['init', '-q', '--bare']);
      await git(dir, ['index-pack', '--stdin', '--strict'], Buffer.concat(chunks));
    });

    test('accelerated, deleted and corrupt accelerators give identical answers', async () => {
      const all = await refTips(env.oracle);
      const heads = await refTips(env.oracle, 'refs/heads');
      const oldest = (await gitLines(env.oracle, ['rev-list', '--reverse', 'main']))[5]! as ObjectId;
      const mid = (await gitLines(env.oracle, ['rev-list', 'main']))[7]! as ObjectId;
      const queries: [ObjectId[], ObjectId[]][] = [[all, []], [heads, [mid]], [[heads[0]!], [oldest]], [all, [mid, oldest]]];
      const answers = async (repo: Repository): Promise<string[][]> => {
        const out: string[][] = [];
        for (const [w, h] of queries) out.push(await enumerate(repo, w, h));
        for (const [w, h] of queries) {
          const expected = sortedSet((await gitLines(env.oracle, ['rev-list', '--objects', ...w, '--not', ...h])).map((l) => l.slice(0, 40)));
          // With haves, we send at most what git's rev-list lists and never less than the new commits.
          const ours = await enumerate(repo, w, h);
          for (const x of expected.filter((e) => !ours.includes(e))) assert.fail(`missing ${x}`);
        }
        for (const oid of [...all, mid, oldest]) {
          const h = await repo.tryReadHeader(oid);
          const links = h?.type === 'commit' ? await repo.commitLinks(oid) : undefined;
          out.push([JSON.stringify(h), JSON.stringify(links)]);
        }
        return out;
      };
      const accelerated = await answers(await reopen(env, name));
      const saved = new Map<string, Uint8Array>();
      for (const key of await accelKeys(env)) {
        const bytes = await env.store.get(key);
        saved.set(key, bytes);
        const bad = Buffer.from(bytes);
        bad[Math.floor(bad.length / 2)]! ^= 0x40;
        await env.store.put(key, bad);
      }
      const corrupt = await reopen(env, name);
      assert.ok((await (corrupt as StoredRepository).accelGraph()).files.every((f) => f === undefined), 'corrupt files are not used');
      assert.deepEqual(await answers(corrupt), accelerated);
      for (const key of saved.keys()) await env.store.delete(key);
      const missing = await reopen(env, name);
      assert.equal((await (missing as StoredRepository).accelGraph()).any, false);
      assert.deepEqual(await answers(missing), accelerated);
      for (const [key, bytes] of saved) await env.store.put(key, bytes);
    });

    test('a full clone pack streams stored packs in their order, and git accepts it whole', async () => {
      const state = await env.repo.readState();
      const db = await ObjectDb.open({ store: env.store, repoId: env.repo.record.id, caches: createRepoCaches({ blockCacheMb: 1, indexCacheMb: 4, objectCacheMb: 1 }) }, state.packs);
      const all = await refTips(env.oracle);
      const { objects } = await env.repo.enumerateObjects({ wants: all, haves: [] });
      for (const ofsDelta of [true, false]) {
        const stats = newPackOutStats();
        const chunks: Uint8Array[] = [];
        for await (const chunk of packObjects(db, objects, { thin: false, ofsDelta }, stats)) chunks.push(chunk);
        if (ofsDelta) assert.ok(stats.reusedPacked > objects.length / 2 || stats.wholePack, JSON.stringify(stats));
        const dir = await mkdtemp(join(tmp, 'full-'));
        await git(dir, ['init', '-q', '--bare']);
        const name = (await git(dir, ['index-pack', '--stdin', '--strict'], Buffer.concat(chunks))).toString().trim().split(/\s+/).pop()!;
        const idx = await readFile(join(dir, 'objects', 'pack', `pack-${name}.idx`));
        const listed = (await git(dir, ['show-index'], idx)).toString().trim().split('\n').map((l) => l.split(' ')[1]!);
        assert.equal(listed.length, new Set(objects).size, 'each object once');
        assert.deepEqual(sortedSet(listed), sortedSet(objects));
        await git(dir, ['update-ref', 'refs/heads/main', (await refTips(env.oracle, 'refs/heads/main'))[0]!]);
        await git(dir, ['fsck', '--no-dangling', '--connectivity-only']);
      }
    });

    for (const depth of [1, 3]) {
      for (const tags of [false, true]) {
        test(`depth ${depth}${tags ? ' with include-tag' : ''}: the objects git's upload-pack sends`, async () => {
          const heads = await refTips(env.oracle, 'refs/heads');
          const expected = await gitUploadPack(env.oracle, heads, depth, tags);
          const results: string[][] = [];
          const saved = new Map<string, Uint8Array>();
          for (const fresh of [false, true]) {
            if (fresh) {
              for (const key of await accelKeys(env)) {
                saved.set(key, await env.store.get(key));
                await env.store.delete(key);
              }
            }
            const repo = fresh ? await reopen(env, name) : env.repo;
            const update = await repo.computeShallow(heads, [], { depth });
            results.push(await enumerate(repo, heads, [], { shallowBoundary: update.boundary, includeTags: tags }));
          }
          for (const [key, bytes] of saved) await env.store.put(key, bytes);
          assert.deepEqual(results[0], results[1], 'with and without accelerators');
          assert.deepEqual(results[0], expected);
        });
      }
    }
  });
}
