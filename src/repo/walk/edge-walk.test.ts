import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ObjectId } from '../../git/hash/object-id.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { ObjectDb } from '../object-db/object-db.js';
import { walkSourceOf } from '../object-db/testing/db-source.js';
import { buildFixture, gitLines, storePacks, type GitFixture } from '../object-db/testing/git-fixture.js';
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
});
