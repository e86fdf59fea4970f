import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { ObjectDb } from '../object-db/object-db.js';
import { walkSourceOf } from '../object-db/testing/db-source.js';
import { buildFixture, git, gitLines, storePacks, type GitFixture } from '../object-db/testing/git-fixture.js';
import { enumerateObjects, type TagRef } from './enumerate.js';
import { revWalk } from './rev-walk.js';
import type { WalkSource } from './source.js';

let fx: GitFixture;
let src: WalkSource;
const ref = (name: string): ObjectId => fx.refs.get(name)!.oid;

before(async () => {
  fx = await buildFixture();
  const store = new MemoryStore();
  const records = await storePacks(store, 'r1', fx.packs);
  const db = await ObjectDb.open({ store, repoId: 'r1', caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 }) }, records);
  src = walkSourceOf(db);
});
after(() => fx.cleanup());

/** `git rev-list --objects wants --not haves` as a list of ids (names dropped). */
async function gitObjects(wants: readonly string[], haves: readonly string[], extra: readonly string[] = []): Promise<string[]> {
  const lines = await gitLines(fx.oracle, ['rev-list', ...extra, '--objects', '--stdin'], [...wants, ...haves.map((h) => `^${h}`)].join('\n') + '\n');
  return lines.map((l) => l.slice(0, 40));
}

/** The objects `git pack-objects --revs EXTRA` packs for wants --not haves (its pack, indexed, listed). */
async function packedObjects(repo: string, scratch: string, wants: readonly string[], haves: readonly string[], extra: readonly string[] = []): Promise<string[]> {
  const pack = await git(repo, ['pack-objects', '--revs', ...extra, '--stdout', '-q'], [...wants, ...haves.map((h) => `^${h}`)].join('\n') + '\n');
  const dir = await mkdtemp(join(scratch, 'packed-'));
  try {
    await git(scratch, ['init', '-q', '--bare', dir]);
    const idxOut = (await git(dir, ['index-pack', '--stdin'], pack)).toString().trim();
    const idxPath = join(dir, 'objects', 'pack', `pack-${idxOut.split(/\s+/).pop()}.idx`);
    const lines = (await git(dir, ['show-index'], await readFile(idxPath))).toString().trim().split('\n');
    return lines.filter((l) => l !== '').map((l) => l.split(' ')[1]!);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function assertSameSet(actual: readonly string[], expected: readonly string[], what: string): void {
  assert.equal(new Set(actual).size, actual.length, `${what}: duplicates in our output`);
  const e = new Set(expected);
  const missing = [...e].filter((x) => !actual.includes(x));
  const extra = actual.filter((x) => !e.has(x));
  assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] }, what);
  assert.equal(actual.length, e.size, what);
}

describe('enumerateObjects equals git rev-list --objects', () => {
  const cases: [string, () => string[], () => string[]][] = [
    ['clone of main', () => [ref('refs/heads/main')], () => []],
    ['every branch and tag', () => [...fx.refs.values()].map((v) => v.oid), () => []],
    ['main since the split commit', () => [ref('refs/heads/main')], () => [fx.splitCommit]],
    ['main not side', () => [ref('refs/heads/main')], () => [ref('refs/heads/side')]],
    ['side not main', () => [ref('refs/heads/side')], () => [ref('refs/heads/main')]],
    ['all branches not two tags', () => [...fx.refs].filter(([n]) => n.startsWith('refs/heads/')).map(([, v]) => v.oid), () => [ref('refs/tags/v0.2'), ref('refs/tags/light-55')]],
    ['annotated and nested tags, tree and blob tags', () => [ref('refs/tags/v-outer'), ref('refs/tags/tree-tag'), ref('refs/tags/blob-tag')], () => []],
    ['want equals have', () => [ref('refs/heads/main')], () => [ref('refs/heads/main')]],
    ['have is a tree', () => [ref('refs/heads/main')], () => [`${fx.splitCommit}^{tree}`]],
  ];
  for (const [name, wants, haves] of cases) {
    test(name, async () => {
      const h = haves();
      const resolved = h.length === 0 ? [] : await gitLines(fx.oracle, ['rev-parse', ...h]);
      const expected = await gitObjects(wants(), resolved);
      const got = await enumerateObjects(src, { wants: wants() as ObjectId[], haves: resolved as ObjectId[], sparse: false });
      assertSameSet(got.objects, expected, name);
      // The default (sparse) walk sends what git's pack-objects --sparse sends.
      const sparse = await enumerateObjects(src, { wants: wants() as ObjectId[], haves: resolved as ObjectId[] });
      assertSameSet(sparse.objects, await packedObjects(fx.oracle, fx.root, wants(), resolved, ['--sparse']), `${name} (sparse)`);
    });
  }

  test('sparse: only changed paths are walked, and a file moved into a new directory is sent again, as with git', async () => {
    // A tiny history: a/x, a/z and b/y; then x moves to the new directory c/ and z goes, so
    // the path a/ is gone on the sent side and the sparse walk has no reason to look into it.
    const root = await mkdtemp(join(tmpdir(), 'stowage-sparse-'));
    try {
      const work = join(root, 'w');
      await git(root, ['init', '-q', '-b', 'main', work]);
      const ident = ['-c', 'user.name=T', '-c', 'user.email=t@example.com'];
      await mkdir(join(work, 'a'));
      await mkdir(join(work, 'b'));
      await writeFile(join(work, 'a', 'x'), 'the moved file\n');
      await writeFile(join(work, 'a', 'z'), 'a deleted file\n');
      await writeFile(join(work, 'b', 'y'), 'an unchanged file\n');
      await git(work, ['add', '.']);
      await git(work, [...ident, 'commit', '-qm', 'one']);
      await mkdir(join(work, 'c'));
      await git(work, ['mv', 'a/x', 'c/x']);
      await git(work, ['rm', '-q', 'a/z']);
      await git(work, [...ident, 'commit', '-qm', 'two']);
      await git(work, ['repack', '-adq']);
      const [two, one] = await gitLines(work, ['rev-list', 'main']);
      const packDir = join(work, '.git', 'objects', 'pack');
      const name = (await readdir(packDir)).find((f) => f.endsWith('.pack'))!.replace(/\.pack$/, '');
      const store = new MemoryStore();
      const records = await storePacks(store, 'r2', [{ name, pack: await readFile(join(packDir, `${name}.pack`)), idx: await readFile(join(packDir, `${name}.idx`)) }]);
      const db = await ObjectDb.open({ store, repoId: 'r2', caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 }) }, records);
      const small = walkSourceOf(db);
      const req = { wants: [two as ObjectId], haves: [one as ObjectId] };
      const exact = await enumerateObjects(small, { ...req, sparse: false });
      const sparse = await enumerateObjects(small, req);
      const revList = (await gitLines(work, ['rev-list', '--objects', two!, `^${one}`])).map((l) => l.slice(0, 40));
      assertSameSet(exact.objects, revList, 'exact');
      assertSameSet(sparse.objects, await packedObjects(work, root, [two!], [one!], ['--sparse']), 'sparse');
      const blob = (await gitLines(work, ['rev-parse', `${two}:c/x`]))[0] as ObjectId;
      assert.ok(!exact.objects.includes(blob), 'the exact walk knows the client has the moved blob');
      assert.ok(sparse.objects.includes(blob), 'the sparse walk sends the moved blob again, as git does');
      // b/ is the same tree on both sides: the sparse walk never looked inside it.
      assert.equal(sparse.objects.length, exact.objects.length + 1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('commits come first, newest first, as git lists them', async () => {
    const want = ref('refs/heads/main');
    const got = await enumerateObjects(src, { wants: [want], haves: [fx.splitCommit] });
    const commits = await gitLines(fx.oracle, ['rev-list', want, `^${fx.splitCommit}`]);
    assert.deepEqual(got.objects.slice(0, commits.length), commits);
    const walk = await revWalk(src, { interesting: [want] });
    assert.deepEqual(walk.commits(), await gitLines(fx.oracle, ['rev-list', want]));
  });

  test('the gitlink is never followed', async () => {
    const got = await enumerateObjects(src, { wants: [ref('refs/heads/main')], haves: [] });
    assert.ok(!got.objects.includes('1234567890abcdef1234567890abcdef12345678' as ObjectId));
  });

  test('edges are objects of the have side that git marks uninteresting', async () => {
    const got = await enumerateObjects(src, { wants: [ref('refs/heads/main')], haves: [fx.splitCommit] });
    assert.ok(got.edges.size > 10);
    const have = new Set(await gitObjects([fx.splitCommit], []));
    for (const e of got.edges.toArray()) assert.ok(have.has(e), `${e} is not reachable from the have`);
    for (const o of got.objects) assert.ok(!got.edges.has(o));
  });

  test('include-tag adds annotated tags (and tag chains) whose target is sent, as pack-objects does', async () => {
    const want = ref('refs/heads/main');
    const tagRefs: TagRef[] = [...fx.refs].filter(([n]) => n.startsWith('refs/tags/')).map(([, v]) => ({ oid: v.oid, ...(v.peeled ? { peeled: v.peeled } : {}) }));
    const got = await enumerateObjects(src, { wants: [want], haves: [fx.splitCommit], includeTags: true }, tagRefs);
    // Oracle: pack-objects --include-tag, indexed, listed.
    const pack = await git(fx.oracle, ['pack-objects', '--revs', '--include-tag', '--stdout', '-q'], `${want}\n^${fx.splitCommit}\n`);
    const dir = join(fx.root, `it-${Date.now()}`);
    await git(fx.root, ['init', '-q', '--bare', dir]);
    const idxOut = (await git(dir, ['index-pack', '--stdin'], pack)).toString().trim();
    const idxPath = join(dir, 'objects', 'pack', `pack-${idxOut.split(/\s+/).pop()}.idx`);
    const lines = (await git(dir, ['show-index'], await readFile(idxPath))).toString().trim().split('\n');
    const expected = lines.map((l) => l.split(' ')[1]!);
    assertSameSet(got.objects, expected, 'include-tag');
    await rm(dir, { recursive: true, force: true });
  });

  test('a shallow boundary cuts the walk like a shallow file does for git', async () => {
    const want = ref('refs/heads/main');
    const cut = await gitLines(fx.oracle, ['rev-list', '--first-parent', '-n', '1', '--skip', '20', want]);
    const shallowFile = join(fx.root, 'shallow-test');
    await writeFile(shallowFile, `${cut[0]}\n`);
    const expected = (await gitLines(fx.oracle, ['--shallow-file', shallowFile, 'rev-list', '--objects', want])).map((l) => l.slice(0, 40));
    const got = await enumerateObjects(src, { wants: [want], haves: [], shallowBoundary: new Set([cut[0] as ObjectId]) });
    assertSameSet(got.objects, expected, 'shallow');
  });

  test('a missing want is OBJ_MISSING; missing haves are ignored; the signal aborts', async () => {
    const none = 'e'.repeat(40) as ObjectId;
    await assert.rejects(enumerateObjects(src, { wants: [none], haves: [] }), (e: unknown) => e instanceof StowageError && e.code === 'OBJ_MISSING');
    const got = await enumerateObjects(src, { wants: [ref('refs/tags/light-55')], haves: [none] });
    assert.ok(got.objects.length > 100);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(enumerateObjects(src, { wants: [ref('refs/heads/main')], haves: [], signal: ac.signal }), /stop/);
  });
});
