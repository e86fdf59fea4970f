import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NotFoundError } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import type { RepoState } from '../meta/meta-store.js';
import type { CommitLinks, Repository } from '../repo/repository.js';
import { HaveSet, LinkCache } from './negotiation.js';
import { reachableFromRefs } from './wants.js';

/** A commit graph: name -> [time, parents]. Ids are the names padded to 40 hex-ish chars. */
function graph(spec: Record<string, [number, string[]]>): { repo: Repository; id: (n: string) => ObjectId; reads: () => number } {
  const id = (n: string): ObjectId => n.padEnd(40, '0') as ObjectId;
  const links = new Map<ObjectId, CommitLinks>();
  for (const [n, [t, ps]] of Object.entries(spec)) links.set(id(n), { tree: id('tree'), parents: ps.map(id), committerTime: t });
  let reads = 0;
  const repo = {
    async commitLinks(oid: ObjectId): Promise<CommitLinks> {
      reads++;
      const l = links.get(oid);
      if (l === undefined) throw new NotFoundError('OBJ_MISSING', `no ${oid}`);
      return l;
    },
    async tryReadHeader(oid: ObjectId) {
      return links.has(oid) ? { type: 'commit' as const, size: 0 } : undefined;
    },
    async peel(oid: ObjectId) {
      return oid;
    },
  } as unknown as Repository;
  return { repo, id, reads: () => reads };
}

//   a(1) - b(2) - c(3) - d(4)      want d
//            \
//             e(5) - f(6)          want f
const G = { a: [1, []], b: [2, ['a']], c: [3, ['b']], d: [4, ['c']], e: [5, ['b']], f: [6, ['e']] } as Record<string, [number, string[]]>;

describe('HaveSet (ok_to_give_up)', () => {
  test('every want must reach a common commit or a parent of one', async () => {
    const { repo, id } = graph(G);
    const h = new HaveSet(repo, new LinkCache(repo), [id('d'), id('f')]);
    assert.equal(await h.okToGiveUp(), false, 'nothing common yet');
    assert.equal(await h.got(id('zz')), 'absent');
    assert.equal(await h.got(id('d')), 'new');
    assert.equal(await h.okToGiveUp(), false, 'f does not reach d or c');
    // c is known (a parent of d); as git's do_got_oid, its own parents become known too.
    assert.equal(await h.got(id('c')), 'known');
    assert.equal(await h.okToGiveUp(), true, 'f reaches b through e');
    assert.equal(await h.got(id('b')), 'known');
    assert.equal(await h.got(id('e')), 'new');
    assert.deepEqual(h.common, [id('d'), id('e')]);
  });

  test('the walk stops below the oldest common commit', async () => {
    // f's history reaches c only through e, which is older than c.
    const { repo, id } = graph({ c: [10, []], e: [5, ['c']], f: [20, ['e']] });
    const h = new HaveSet(repo, new LinkCache(repo), [id('f')]);
    await h.got(id('c'));
    assert.equal(await h.okToGiveUp(), false);
  });

  test('answers are reused until a have changes something', async () => {
    const { repo, id, reads } = graph(G);
    const h = new HaveSet(repo, new LinkCache(repo), [id('f')]);
    await h.got(id('d'));
    assert.equal(await h.okToGiveUp(), false);
    const n = reads();
    assert.equal(await h.okToGiveUp(), false);
    assert.equal(reads(), n);
  });
});

describe('reachableFromRefs', () => {
  test('finds ancestors of the tips, not other commits', async () => {
    const { repo, id } = graph(G);
    const state: RepoState = { version: 1, head: 'refs/heads/main', refs: new Map([['refs/heads/main', { oid: id('d') }]]), packs: [] };
    const links = new LinkCache(repo);
    assert.equal(await reachableFromRefs(repo, state, links, [id('b'), id('a')]), true);
    assert.equal(await reachableFromRefs(repo, state, links, [id('e')]), false);
  });
});
