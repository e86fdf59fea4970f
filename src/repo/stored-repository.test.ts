import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StowageError } from '../core/errors.js';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { hashObject, type ObjectId } from '../git/hash/object-id.js';
import { StoreMetaStore } from '../meta/store/store-meta.js';
import { FsStore } from '../storage/fs/fs-store.js';
import { MemoryStore } from '../storage/memory/memory-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { createRepoCaches, type RepoCaches } from './cache/repo-caches.js';
import { StoredRepositoryHost } from './host.js';
import { allObjects, buildFixture, git, gitLines, publishFixture, type GitFixture } from './object-db/testing/git-fixture.js';
import type { Repository } from './repository.js';

let fx: GitFixture;
let tmp: string;

before(async () => {
  fx = await buildFixture();
  tmp = await mkdtemp(join(tmpdir(), 'stowage-storedrepo-'));
});
after(async () => {
  await fx.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

for (const kind of ['memory', 'fs'] as const) {
  describe(`StoredRepository over ${kind} stores`, () => {
    let store: ObjectStore;
    let caches: RepoCaches;
    let host: StoredRepositoryHost;
    let repo: Repository;
    const ref = (name: string): ObjectId => fx.refs.get(name)!.oid;

    before(async () => {
      store = kind === 'memory' ? new MemoryStore() : new FsStore({ root: join(tmp, 'fs') });
      const meta = new StoreMetaStore({ store });
      caches = createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 });
      host = StoredRepositoryHost.of(store, meta, caches);
      await publishFixture(store, meta, fx, 'team/fixture');
      repo = await host.open('/team/fixture.git');
    });

    test('state, objects and headers read back as git has them', async () => {
      const state = await repo.readState();
      assert.equal(state.head, 'refs/heads/main');
      assert.equal(state.packs.length, 2);
      assert.equal(state.refs.get('refs/heads/main')?.oid, ref('refs/heads/main'));
      for (const e of await allObjects(fx.oracle)) {
        assert.ok(await repo.hasObject(e.oid));
        const obj = await repo.readObject(e.oid);
        assert.equal(hashObject(obj.type, obj.data), e.oid);
        assert.deepEqual(await repo.tryReadHeader(e.oid), { type: e.type, size: e.size });
      }
      const none = '0'.repeat(39) + '1';
      assert.equal(await repo.hasObject(none as ObjectId), false);
      await assert.rejects(repo.readObject(none as ObjectId), (e: unknown) => e instanceof StowageError && e.code === 'OBJ_MISSING');
    });

    test('commitLinks match git log and are cached', async () => {
      const lines = await gitLines(fx.oracle, ['log', '--all', '--format=%H %T %ct %P']);
      for (const pass of [1, 2]) {
        const hitsBefore = caches.commits.stats().hits;
        for (const line of lines) {
          const [oid, tree, time, ...parents] = line.split(' ');
          const l = await repo.commitLinks(oid as ObjectId);
          assert.deepEqual([l.tree, l.committerTime, l.parents], [tree, Number(time), parents.filter((p) => p !== '')]);
        }
        if (pass === 2) assert.equal(caches.commits.stats().hits - hitsBefore, lines.length);
      }
      const tree = lines[0]!.split(' ')[1] as ObjectId;
      await assert.rejects(repo.commitLinks(tree), (e: unknown) => e instanceof StowageError && e.code === 'OBJ_BAD_TYPE');
    });

    test('peel follows tag chains', async () => {
      assert.equal(await repo.peel(ref('refs/tags/v-outer')), fx.refs.get('refs/tags/v-outer')!.peeled);
      assert.equal(await repo.peel(ref('refs/heads/main')), ref('refs/heads/main'));
      const [blob] = await gitLines(fx.oracle, ['rev-parse', 'main:docs/f2.txt']);
      assert.equal(await repo.peel(ref('refs/tags/blob-tag')), blob);
    });

    test('enumerate with include-tag and packObjects give a pack git accepts', async () => {
      const main = ref('refs/heads/main');
      const res = await repo.enumerateObjects({ wants: [main], haves: [], includeTags: true });
      assert.ok(res.objects.includes(ref('refs/tags/v0.1')), 'annotated tag followed');
      assert.ok(res.objects.includes(ref('refs/tags/v-outer')), 'nested tag followed');
      const chunks: Uint8Array[] = [];
      for await (const c of repo.packObjects(res.objects, { thin: false, ofsDelta: true })) chunks.push(c);
      const dir = join(tmp, `${kind}-clone.git`);
      await git(tmp, ['init', '-q', '--bare', dir]);
      await git(dir, ['index-pack', '--stdin', '--strict'], Buffer.concat(chunks));
      await git(dir, ['update-ref', 'refs/heads/main', main]);
      await git(dir, ['fsck', '--no-dangling', '--connectivity-only']);
    });

    test('a thin fetch reuses deltas against the enumeration edge and completes with --fix-thin', async () => {
      const main = ref('refs/heads/main');
      const res = await repo.enumerateObjects({ wants: [main], haves: [fx.splitCommit] });
      const pack = async (thin: boolean, withHints: boolean): Promise<Buffer> => {
        const chunks: Uint8Array[] = [];
        const hints = withHints && res.hints !== undefined ? { hints: res.hints } : {};
        for await (const c of repo.packObjects(res.objects, { thin, ofsDelta: true, haves: [fx.splitCommit], ...hints })) chunks.push(c);
        return Buffer.concat(chunks);
      };
      const thin = await pack(true, true);
      const full = await pack(false, true);
      // Without the enumeration's hints: no paths and no edge, so no delta search.
      const copy = await pack(true, false);
      assert.ok(thin.length < full.length && full.length < copy.length, `${thin.length} < ${full.length} < ${copy.length}`);
      const dir = join(tmp, `${kind}-thin.git`);
      await git(tmp, ['init', '-q', '--bare', dir]);
      const seed = fx.packs[1]!.name;
      for (const ext of ['pack', 'idx']) {
        await copyFile(join(fx.oracle, 'objects', 'pack', `${seed}.${ext}`), join(dir, 'objects', 'pack', `${seed}.${ext}`));
      }
      await git(dir, ['index-pack', '--stdin', '--fix-thin'], thin);
      await git(dir, ['update-ref', 'refs/heads/main', main]);
      await git(dir, ['fsck', '--no-dangling', '--connectivity-only']);
    });

    test('identical fetches of one state share one answer; other requests do not, and an abort stays with its request', async () => {
      const main = ref('refs/heads/main');
      const side = ref('refs/heads/side');
      const plain = [...(await repo.enumerateObjects({ wants: [main], haves: [fx.splitCommit] })).objects].sort();
      // Concurrent identical requests (haves in another order) get the very same answer.
      const [a, b] = await Promise.all([
        repo.enumerateObjects({ wants: [main], haves: [fx.splitCommit, side] }),
        repo.enumerateObjects({ wants: [main], haves: [side, fx.splitCommit, side] }),
      ]);
      assert.equal(a.objects, b.objects);
      const later = await repo.enumerateObjects({ wants: [main], haves: [fx.splitCommit, side] });
      assert.equal(later.objects, a.objects);
      // Other haves or flags are other requests.
      const other = await repo.enumerateObjects({ wants: [main], haves: [fx.splitCommit] });
      assert.notEqual(other.objects, a.objects);
      assert.deepEqual([...other.objects].sort(), plain);
      assert.notEqual((await repo.enumerateObjects({ wants: [main], haves: [fx.splitCommit], includeTags: true })).objects, other.objects);
      // The first requester's abort does not fail a second, identical request.
      const ctl = new AbortController();
      const wants = [ref('refs/heads/side')];
      const haves = [fx.splitCommit];
      const first = repo.enumerateObjects({ wants, haves, signal: ctl.signal });
      const second = repo.enumerateObjects({ wants, haves });
      ctl.abort();
      await assert.rejects(first);
      const expected = (await gitLines(fx.oracle, ['rev-list', '--objects', wants[0]!, `^${fx.splitCommit}`])).map((l) => l.slice(0, 40)).sort();
      const got = new Set<string>((await second).objects);
      assert.ok(expected.every((o) => got.has(o)), 'the second request still gets its whole answer');
    });

    test('computeShallow through the repository', async () => {
      const u = await repo.computeShallow([ref('refs/heads/main')], [], { depth: 1 });
      assert.deepEqual(u.shallow, [ref('refs/heads/main')]);
    });

    test('a deepening fetch (as upload-pack plans it) leaves a shallow clone complete', async () => {
      const main = ref('refs/heads/main');
      const dir = join(tmp, `${kind}-shallow`);
      await git(tmp, ['clone', '-q', '--bare', '--depth', '3', '--no-local', `file://${fx.oracle}`, dir]);
      const before = (await readFile(join(dir, 'shallow'), 'utf8')).trim().split('\n') as ObjectId[];
      const u = await repo.computeShallow([main], before, { depth: 4, relative: true });
      // git: unshallowed commits stay shallow for the walk; their parents are wanted instead.
      const boundary = new Set([...u.boundary, ...u.unshallow]);
      const extraWants = (await Promise.all(u.unshallow.map((c) => repo.commitLinks(c)))).flatMap((l) => l.parents);
      const haves = [main, ...u.unshallow];
      const res = await repo.enumerateObjects({ wants: [main, ...extraWants], haves, shallowBoundary: boundary });
      assert.ok(res.objects.length > 10);
      const chunks: Uint8Array[] = [];
      for await (const c of repo.packObjects(res.objects, { thin: true, ofsDelta: true, haves })) chunks.push(c);
      await git(dir, ['index-pack', '--stdin', '--fix-thin'], Buffer.concat(chunks));
      const next = new Set(before);
      for (const x of u.shallow) next.add(x);
      for (const x of u.unshallow) next.delete(x);
      await writeFile(join(dir, 'shallow'), [...next].join('\n') + '\n');
      // Every object of the deepened history is there, and nothing beyond the new boundary.
      const listed = await gitLines(dir, ['rev-list', '--objects', main]);
      const commits = await gitLines(dir, ['rev-list', main]);
      const expected = await gitLines(fx.oracle, ['--shallow-file', join(dir, 'shallow'), 'rev-list', main]);
      assert.deepEqual(commits, expected);
      assert.ok(listed.length > commits.length);
    });

    test('a push: receivePack, store, updateRefs; the new state is read at once and by other instances', async () => {
      const other = await host.open('team/fixture');
      await other.readState();
      const work = join(tmp, `${kind}-work`);
      await git(tmp, ['clone', '-q', '--no-local', `file://${fx.oracle}`, work]);
      await appendFile(join(work, 'docs', 'f2.txt'), 'a pushed line\n');
      await git(work, ['commit', '-q', '-am', 'pushed change']);
      const [tip] = await gitLines(work, ['rev-parse', 'HEAD']);
      const old = ref('refs/heads/main');
      const thin = await git(work, ['pack-objects', '--revs', '--thin', '--stdout', '-q'], `HEAD\n^${old}\n`);
      const received = await repo.receivePack(chunked(thin, 1000), {
        fsck: {},
        limits: DEFAULT_LIMITS,
        newTips: [tip as ObjectId],
      });
      assert.ok(received.objectCount >= 3);
      const record = await received.store();
      assert.ok(record);
      const res = await repo.updateRefs({
        refs: [{ name: 'refs/heads/main', expected: { kind: 'must-match', oid: old }, value: { oid: tip! } }],
        addPacks: [record],
      });
      assert.ok(res.ok);
      assert.equal(res.state.packs[0]?.name, record.name);
      assert.ok(await repo.hasObject(tip as ObjectId));
      assert.equal((await repo.commitLinks(tip as ObjectId)).parents[0], old);
      // Another instance sees the push once it reads the state (as every request does first).
      assert.equal(await other.hasObject(tip as ObjectId), false);
      await other.readState();
      assert.ok(await other.hasObject(tip as ObjectId));
      const en = await other.enumerateObjects({ wants: [tip as ObjectId], haves: [old] });
      // Exactly what git put in the thin pack: the new commit, two trees and the blob.
      assert.equal(en.objects.length, new DataView(thin.buffer, thin.byteOffset, 12).getUint32(8));
      // A lost race is a value.
      const lost = await repo.updateRefs({ refs: [{ name: 'refs/heads/main', expected: { kind: 'must-match', oid: old }, value: { oid: old } }] });
      assert.equal(lost.ok, false);
      await received.discard();
    });
  });
}

describe('StoredRepository reads a pack without prior state', () => {
  test('first read loads the state', async () => {
    const store = new MemoryStore();
    const meta = new StoreMetaStore({ store });
    const host = StoredRepositoryHost.of(store, meta, createRepoCaches({ blockCacheMb: 1, indexCacheMb: 1, objectCacheMb: 1 }));
    await publishFixture(store, meta, fx, 'lazy');
    const repo = await host.open('lazy');
    const main = fx.refs.get('refs/heads/main')!.oid;
    assert.equal((await repo.readObject(main)).type, 'commit');
    assert.ok((await readFile(join(fx.oracle, 'packed-refs'), 'utf8')).includes(main));
  });
});
