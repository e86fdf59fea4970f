import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hasCode } from '../../core/errors.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { StoredRepositoryHost } from '../host.js';
import { fastImportStream, makeHistory } from '../ingest/git-history.test-util.js';
import { gitOutput, gitRun, gitText, tempDir } from '../ingest/ingest-fixtures.test-util.js';
import { buildFixture, type GitFixture } from '../object-db/testing/git-fixture.js';
import { exportBareRepository } from './export-bare.js';
import { importBareRepository } from './import-bare.js';
import { readBareRepository } from './read-bare.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let src: string;

/** A bare repository with two packs, loose objects, packed and loose refs, nested annotated tags. */
async function buildSource(path: string): Promise<void> {
  await mkdir(path);
  await makeHistory(path, { commits: 25, tagsAt: [5, 20] }, true);
  await gitRun(path, ['pack-refs', '--all']);
  await gitRun(path, ['fast-import', '--quiet'], fastImportStream({ commits: 15, branch: 'feature', seed: 2 }));
  const blob = (await gitText(path, ['hash-object', '-w', '--stdin'], 'a loose blob\n')).trim();
  const tree = (await gitText(path, ['mktree'], `100644 blob ${blob}\tloose.txt\n`)).trim();
  const commit = (await gitText(path, ['commit-tree', '-p', 'main', '-m', 'loose commit', tree])).trim();
  await gitRun(path, ['update-ref', 'refs/heads/loose', commit]);
  await gitRun(path, ['tag', '-a', '-m', 'a loose tag', 'loose-tag', commit]);
  await gitRun(path, ['tag', '-a', '-m', 'a tag of a tag', 'nested', 'loose-tag']);
  await gitRun(path, ['tag', 'blob-tag', blob]);
  await gitRun(path, ['symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/heads/main']);
  // A stray file under refs/ with a name git would not accept (git ignores it too).
  await writeFile(join(path, 'refs', 'heads', '.stray'), `${commit}\n`);
}

async function refsOf(repo: string): Promise<string> {
  return gitText(repo, ['for-each-ref', '--format=%(objectname) %(objecttype) %(refname) %(*objectname)']);
}

async function objectsOf(repo: string): Promise<string[]> {
  return (await gitText(repo, ['rev-list', '--objects', '--all'])).split('\n').filter((l) => l !== '').sort();
}

function newHost(): StoredRepositoryHost {
  const store = new MemoryStore();
  return StoredRepositoryHost.of(store, new StoreMetaStore({ store }), createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 }));
}

before(async () => {
  tmp = await tempDir('stowage-bare-test-');
  src = join(tmp.dir, 'src.git');
  await buildSource(src);
});
after(() => tmp.cleanup());

describe('readBareRepository', () => {
  test('finds HEAD, packed and loose refs, both packs and the loose objects', async () => {
    const bare = await readBareRepository(src);
    assert.equal(bare.head, 'refs/heads/main');
    assert.equal(bare.packs.length, 2);
    assert.equal(bare.looseObjects.length, 5, 'a blob, a tree, a commit and two tags');
    assert.deepEqual(bare.skippedRefs.map((r) => r.name), ['refs/heads/.stray', 'refs/remotes/origin/HEAD']);
    const names = bare.refs.map((r) => r.name);
    for (const n of ['refs/heads/main', 'refs/heads/feature', 'refs/heads/loose', 'refs/tags/v5', 'refs/tags/nested', 'refs/tags/light-20']) {
      assert.ok(names.includes(n), n);
    }
    const v5 = bare.refs.find((r) => r.name === 'refs/tags/v5')!;
    assert.equal(v5.peeled, (await gitText(src, ['rev-parse', 'v5^{}'])).trim());
  });

  test('refuses what is not a bare repository, alternates and shallow clones, with the reason', async () => {
    const work = join(tmp.dir, 'work');
    await mkdir(work);
    await gitRun(work, ['init', '-q']);
    await assert.rejects(readBareRepository(work), (e: unknown) => hasCode(e, 'ARG_INVALID') && /\.git directory/.test(e.message));
    await assert.rejects(readBareRepository(join(tmp.dir, 'nope')), (e: unknown) => hasCode(e, 'ARG_INVALID'));
    const alt = join(tmp.dir, 'alt.git');
    await gitRun(tmp.dir, ['init', '-q', '--bare', alt]);
    await writeFile(join(alt, 'objects', 'info', 'alternates'), `${join(src, 'objects')}\n`);
    await assert.rejects(readBareRepository(alt), (e: unknown) => hasCode(e, 'ARG_INVALID') && /alternates/.test(e.message));
    const shallow = join(tmp.dir, 'shallow.git');
    await gitRun(tmp.dir, ['clone', '-q', '--bare', '--depth=1', `file://${src}`, shallow]);
    await assert.rejects(readBareRepository(shallow), (e: unknown) => hasCode(e, 'ARG_INVALID') && /shallow/.test(e.message));
  });
});

describe('import and export of bare repositories', () => {
  test('import then export gives the same refs, objects and HEAD; git fsck --strict is clean', async () => {
    const host = newHost();
    const repo = await host.create('imported');
    const phases = new Set<string>();
    const result = await importBareRepository(repo, await readBareRepository(src), { onProgress: (p) => phases.add(p) });
    assert.ok(phases.has('Receiving objects') && phases.has('Resolving deltas'));
    const state = await repo.readState();
    assert.equal(result.refs, state.refs.size);
    assert.equal(state.packs.length, 1);
    assert.equal(state.packs[0]!.source, 'import');
    assert.equal(state.head, 'refs/heads/main');
    assert.equal(state.refs.get('refs/tags/nested')?.peeled, (await gitText(src, ['rev-parse', 'nested^{}'])).trim());
    assert.equal(state.refs.get('refs/heads/main')?.peeled, undefined);

    const dst = join(tmp.dir, 'export.git');
    const exported = await exportBareRepository(await host.open('imported'), dst);
    assert.equal(exported.refs, result.refs);
    assert.equal((await refsOf(dst)), (await refsOf(src)).split('\n').filter((l) => !l.includes('refs/remotes/origin/HEAD')).join('\n'));
    assert.deepEqual(await objectsOf(dst), await objectsOf(src));
    assert.equal(await gitText(dst, ['symbolic-ref', 'HEAD']), 'refs/heads/main\n');
    assert.deepEqual(await gitOutput(dst, ['fsck', '--strict', '--no-dangling']), { stdout: '', stderr: '' });
    assert.deepEqual((await readdir(join(dst, 'objects', 'pack'))).filter((n) => n.startsWith('tmp_')), []);
    // The exported repository reads back as a bare repository too.
    assert.equal((await readBareRepository(dst)).refs.length, result.refs);

    // Importing again into the same repository conflicts on the refs and publishes nothing.
    await assert.rejects(importBareRepository(repo, await readBareRepository(src)), (e: unknown) => hasCode(e, 'REF_CAS_LOST'));
    assert.equal((await repo.readState()).packs.length, 1);
    // Export refuses a non-empty target.
    await assert.rejects(exportBareRepository(repo, dst), (e: unknown) => hasCode(e, 'ARG_INVALID'));
  });

  test('a corrupt loose object fails the import with OBJ_CORRUPT and publishes nothing', async () => {
    const bad = join(tmp.dir, 'bad.git');
    await gitRun(tmp.dir, ['init', '-q', '--bare', bad]);
    const blob = (await gitText(bad, ['hash-object', '-w', '--stdin'], 'soon corrupt\n')).trim();
    const other = (await gitText(bad, ['hash-object', '-w', '--stdin'], 'something else\n')).trim();
    await gitRun(bad, ['update-ref', 'refs/tags/t', blob]);
    const path = join(bad, 'objects', blob.slice(0, 2), blob.slice(2));
    await chmod(path, 0o644);
    await copyFile(join(bad, 'objects', other.slice(0, 2), other.slice(2)), path);
    const host = newHost();
    const repo = await host.create('bad');
    await assert.rejects(importBareRepository(repo, await readBareRepository(bad)), (e: unknown) => hasCode(e, 'OBJ_CORRUPT') && e.message.includes(blob));
    const state = await repo.readState();
    assert.equal(state.refs.size, 0);
    assert.equal(state.packs.length, 0);
  });

  test('an empty bare repository imports and exports as empty', async () => {
    const empty = join(tmp.dir, 'empty.git');
    await gitRun(tmp.dir, ['init', '-q', '--bare', '-b', 'trunk', empty]);
    const host = newHost();
    const repo = await host.create('empty');
    assert.deepEqual(await importBareRepository(repo, await readBareRepository(empty)), { refs: 0, objects: 0, warnings: [] });
    assert.equal((await repo.readState()).head, 'refs/heads/trunk');
    const dst = join(tmp.dir, 'empty-export');
    assert.deepEqual(await exportBareRepository(repo, dst), { refs: 0, objects: 0 });
    assert.equal(await gitText(dst, ['symbolic-ref', 'HEAD']), 'refs/heads/trunk\n');
    // An empty repository only gets git's notices (unborn HEAD, no refs).
    const fsck = await gitOutput(dst, ['fsck', '--strict']);
    assert.equal(fsck.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('notice: ')).length, 0, fsck.stderr);
  });
});

describe('round trip of the repo layer fixture (merges, gitlinks, tags of trees and blobs, overlapping packs)', () => {
  let fx: GitFixture;
  before(async () => {
    fx = await buildFixture({ commits: 120 });
  });
  after(() => fx.cleanup());

  test('import of its oracle and export back match git', async () => {
    const host = newHost();
    const repo = await host.create('fixture');
    await importBareRepository(repo, await readBareRepository(fx.oracle));
    const dst = join(tmp.dir, 'fixture-export.git');
    await exportBareRepository(repo, dst);
    assert.equal(await refsOf(dst), await refsOf(fx.oracle));
    assert.deepEqual(await objectsOf(dst), await objectsOf(fx.oracle));
    assert.deepEqual(await gitOutput(dst, ['fsck', '--strict', '--no-dangling']), { stdout: '', stderr: '' });
  });
});
