import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { ObjectDb } from '../object-db/object-db.js';
import { walkSourceOf } from '../object-db/testing/db-source.js';
import { buildFixture, git, gitLines, storePacks, type GitFixture } from '../object-db/testing/git-fixture.js';
import type { DeepenRequest } from '../repository.js';
import { INFINITE_DEPTH, computeShallow } from './shallow.js';
import type { WalkSource } from './source.js';

let fx: GitFixture;
let src: WalkSource;
let n = 0;
const ref = (name: string): ObjectId => fx.refs.get(name)!.oid;

before(async () => {
  fx = await buildFixture();
  const store = new MemoryStore();
  const records = await storePacks(store, 'r1', fx.packs);
  const db = await ObjectDb.open({ store, repoId: 'r1', caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 }) }, records);
  src = walkSourceOf(db);
});
after(() => fx.cleanup());

async function shallowFile(dir: string): Promise<string[]> {
  try {
    return (await readFile(join(dir, '.git', 'shallow'), 'utf8')).trim().split('\n').filter((l) => l !== '').sort();
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw err;
  }
}

/** Clones the oracle over the real protocol with `args`; returns the clone dir. */
async function clone(args: readonly string[]): Promise<string> {
  const dir = join(fx.root, `clone-${n++}`);
  await git(fx.root, ['clone', '-q', '--no-checkout', '--no-local', ...args, `file://${fx.oracle}`, dir]);
  return dir;
}

/** What the client's shallow file holds after our answer. */
function applied(before: readonly string[], update: { shallow: readonly string[]; unshallow: readonly string[] }): string[] {
  const s = new Set(before);
  for (const x of update.shallow) s.add(x);
  for (const x of update.unshallow) s.delete(x);
  return [...s].sort();
}

async function ours(wants: readonly ObjectId[], client: readonly string[], deepen: DeepenRequest): Promise<string[]> {
  const u = await computeShallow(src, wants, client as ObjectId[], deepen);
  // The walk boundary is exactly the client's new shallow set.
  const result = applied(client, u);
  assert.deepEqual([...u.boundary].sort(), result);
  return result;
}

/** Time in the format --shallow-since parses, for a unix time. */
function gitDate(t: number): string {
  return `${new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} +0000`;
}

describe('computeShallow matches real git clones and fetches', () => {
  for (const depth of [1, 3, 10]) {
    test(`clone --depth ${depth}`, async () => {
      const dir = await clone(['--depth', String(depth)]);
      assert.deepEqual(await ours([ref('refs/heads/main')], [], { depth }), await shallowFile(dir));
    });
  }

  test('clone --depth 2 of an annotated tag', async () => {
    const dir = await clone(['--depth', '2', '--branch', 'v0.3']);
    assert.deepEqual(await ours([ref('refs/tags/v0.3')], [], { depth: 2 }), await shallowFile(dir));
  });

  test('clone --shallow-since', async () => {
    const main = ref('refs/heads/main');
    const [line] = await gitLines(fx.oracle, ['log', '-1', '--format=%ct', '--skip', '40', '--first-parent', main]);
    const since = Number(line);
    const dir = await clone(['--shallow-since', gitDate(since)]);
    const expected = await shallowFile(dir);
    assert.ok(expected.length > 0);
    assert.deepEqual(await ours([main], [], { since }), expected);
  });

  test('clone --shallow-exclude of a tag and of a branch', async () => {
    const main = ref('refs/heads/main');
    for (const [name, full] of [['v0.2', 'refs/tags/v0.2'], ['side', 'refs/heads/side']] as const) {
      const dir = await clone(['--shallow-exclude', name]);
      const expected = await shallowFile(dir);
      assert.ok(expected.length > 0, name);
      assert.deepEqual(await ours([main], [], { not: [ref(full)] }), expected, name);
    }
  });

  test('clone --shallow-since with --shallow-exclude', async () => {
    const main = ref('refs/heads/main');
    const [line] = await gitLines(fx.oracle, ['log', '-1', '--format=%ct', '--skip', '120', '--first-parent', main]);
    const since = Number(line);
    const dir = await clone(['--shallow-since', gitDate(since), '--shallow-exclude', 'v0.5']);
    assert.deepEqual(await ours([main], [], { since, not: [ref('refs/tags/v0.5')] }), await shallowFile(dir));
  });

  test('fetch --deepen (relative) unshallows and moves the boundary', async () => {
    const main = ref('refs/heads/main');
    const dir = await clone(['--depth', '3']);
    const before = await shallowFile(dir);
    await git(dir, ['fetch', '-q', '--deepen=2']);
    const u = await computeShallow(src, [main], before as ObjectId[], { depth: 2, relative: true });
    assert.ok(u.unshallow.length > 0);
    assert.deepEqual(applied(before, u), await shallowFile(dir));
  });

  test('fetch --depth (absolute) from a shallower clone', async () => {
    const main = ref('refs/heads/main');
    const dir = await clone(['--depth', '2']);
    const before = await shallowFile(dir);
    await git(dir, ['fetch', '-q', '--depth=6']);
    assert.deepEqual(await ours([main], before, { depth: 6 }), await shallowFile(dir));
  });

  test('fetch --unshallow', async () => {
    const main = ref('refs/heads/main');
    const dir = await clone(['--depth', '4']);
    const before = await shallowFile(dir);
    await git(dir, ['fetch', '-q', '--unshallow']);
    assert.deepEqual(await shallowFile(dir), []);
    const u = await computeShallow(src, [main], before as ObjectId[], { depth: INFINITE_DEPTH });
    assert.deepEqual(u.shallow, []);
    assert.deepEqual([...u.unshallow].sort(), before);
    assert.equal(u.boundary.size, 0);
  });
});

describe('computeShallow edge cases', () => {
  test('no deepen: the boundary is the client shallows we have', async () => {
    const main = ref('refs/heads/main');
    const none = 'd'.repeat(40) as ObjectId;
    const u = await computeShallow(src, [main], [main, none], {});
    assert.deepEqual(u, { shallow: [], unshallow: [], boundary: new Set([main]) });
  });

  test('deepen with deepen-since is refused; so is a non-commit shallow', async () => {
    const main = ref('refs/heads/main');
    const bad = (e: unknown): boolean => e instanceof StowageError && e.code === 'PROTO_BAD_REQUEST';
    await assert.rejects(computeShallow(src, [main], [], { depth: 1, since: 5 }), bad);
    const [tree] = await gitLines(fx.oracle, ['rev-parse', 'main^{tree}']);
    await assert.rejects(computeShallow(src, [main], [tree as ObjectId], { depth: 1 }), bad);
    await assert.rejects(computeShallow(src, [main], [], { since: 4_000_000_000 }), bad);
  });

  test('deepen-relative without a reachable client shallow changes nothing', async () => {
    const u = await computeShallow(src, [ref('refs/heads/main')], [], { depth: 3, relative: true });
    assert.deepEqual(u.shallow, []);
    assert.deepEqual(u.unshallow, []);
  });
});
