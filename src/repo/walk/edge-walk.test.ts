import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectId } from '../../git/hash/object-id.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { ObjectDb } from '../object-db/object-db.js';
import { walkSourceOf } from '../object-db/testing/db-source.js';
import { buildFixture, git, gitLines, storePacks, type GitFixture } from '../object-db/testing/git-fixture.js';
import { markEdgesSparse } from './edge-walk.js';
import { OidSet } from './oid-set.js';

let fx: GitFixture;
let db: ObjectDb;

before(async () => {
  fx = await buildFixture({ commits: 120 });
  const store = new MemoryStore();
  db = await ObjectDb.open({ store, repoId: 'r', caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 8 }) }, await storePacks(store, 'r', fx.packs));
});
after(() => fx.cleanup());

describe('markEdgesSparse', () => {
  test('records the parent side of every changed path, and only objects the parent reaches', async () => {
    const commits = await gitLines(fx.oracle, ['rev-list', '--no-merges', '-n', '12', 'refs/heads/main']);
    const src = walkSourceOf(db);
    for (const c of commits) {
      const [tree, parentTree] = await gitLines(fx.oracle, ['rev-parse', `${c}^{tree}`, `${c}^^{tree}`]);
      const edges = new OidSet(16);
      const byName = new Map<number, ObjectId>();
      await markEdgesSparse(await db.graph(), src, tree as ObjectId, parentTree as ObjectId, edges, byName);
      const reach = new Set((await gitLines(fx.oracle, ['rev-list', '--objects', `${c}^`])).map((l) => l.slice(0, 40)));
      for (const e of edges.toArray()) assert.ok(reach.has(e), `${e} is not the parent's`);
      // Every blob the commit modified: its old version is an edge.
      for (const line of await gitLines(fx.oracle, ['diff-tree', '-r', '--no-renames', `${c}^`, c])) {
        const [, , oldId, , status] = line.slice(1).split(/\s+/);
        if (status === 'M') assert.ok(edges.has(oldId as ObjectId), `old version ${oldId} of a modified file is an edge`);
      }
      assert.ok([...byName.values()].every((o) => edges.has(o)));
      // The parent's unchanged subtrees are not walked: fewer edges than the parent's tree holds.
      const inTree = (await gitLines(fx.oracle, ['ls-tree', '-r', '-t', parentTree!])).length + 1;
      assert.ok(edges.size < inTree / 2, `${edges.size} edges of ${inTree}`);
    }
  });

  test('siblings whose names collide in git\'s name hash: only the changed one is walked', async () => {
    // pack_name_hash keeps about the last 16 characters: these two directory names collide.
    const [x, y] = ['x-0123456789abcdefgh', 'y-0123456789abcdefgh'];
    const root = await mkdtemp(join(tmpdir(), 'stowage-edge-'));
    try {
      const work = join(root, 'w');
      await git(root, ['init', '-q', '-b', 'main', work]);
      const ident = ['-c', 'user.name=T', '-c', 'user.email=t@example.com'];
      for (const d of [x, y]) {
        await mkdir(join(work, d));
        await writeFile(join(work, d, 'file'), `in ${d}\n`);
      }
      await git(work, ['add', '.']);
      await git(work, [...ident, 'commit', '-qm', 'one']);
      await writeFile(join(work, x, 'file'), 'changed\n');
      await git(work, [...ident, 'commit', '-qam', 'two']);
      await git(work, ['repack', '-adq']);
      const packDir = join(work, '.git', 'objects', 'pack');
      const name = (await readdir(packDir)).find((f) => f.endsWith('.pack'))!.replace(/\.pack$/, '');
      const store = new MemoryStore();
      const records = await storePacks(store, 'r3', [{ name, pack: await readFile(join(packDir, `${name}.pack`)), idx: await readFile(join(packDir, `${name}.idx`)) }]);
      const small = await ObjectDb.open({ store, repoId: 'r3', caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 8 }) }, records);
      const [tree, parentTree, oldX, oldXFile, yTree, yFile] = await gitLines(work, ['rev-parse', 'main^{tree}', 'main^^{tree}', `main^:${x}`, `main^:${x}/file`, `main^:${y}`, `main^:${y}/file`]);
      const edges = new OidSet(16);
      await markEdgesSparse(await small.graph(), walkSourceOf(small), tree as ObjectId, parentTree as ObjectId, edges, new Map());
      assert.deepEqual(edges.toArray().sort(), [parentTree!, oldX!, oldXFile!].sort());
      assert.ok(!edges.has(yTree as ObjectId) && !edges.has(yFile as ObjectId), 'the unchanged sibling is not an edge');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
