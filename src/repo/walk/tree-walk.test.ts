import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import type { GitObject } from '../../git/object/object-type.js';
import { encodeTree, forEachTreeEntry, MODE_BLOB, MODE_GITLINK, MODE_TREE } from '../../git/object/tree.js';
import { OidSet } from './oid-set.js';
import type { WalkSource } from './source.js';
import { collectTree, markTreeUninteresting, TreeReader } from './tree-walk.js';

/** An in-memory object source. */
function source(objects: Map<string, GitObject>): WalkSource {
  return {
    commitLinks: () => Promise.reject(new Error('no commits here')),
    tryReadObject: async (oid) => objects.get(oid),
    tryReadHeader: async (oid) => {
      const o = objects.get(oid);
      return o === undefined ? undefined : { type: o.type, size: o.data.length };
    },
  };
}

function put(objects: Map<string, GitObject>, type: GitObject['type'], data: Uint8Array): ObjectId {
  const oid = hashObject(type, data);
  objects.set(oid, { type, data });
  return oid;
}

const name = (s: string): Uint8Array => Buffer.from(s);

describe('tree walks', () => {
  test('pre-order, tree order, gitlinks skipped, seen objects skipped', async () => {
    const objects = new Map<string, GitObject>();
    const a = put(objects, 'blob', Buffer.from('a'));
    const b = put(objects, 'blob', Buffer.from('b'));
    const sub = put(objects, 'tree', encodeTree([{ mode: MODE_BLOB, name: name('x'), oid: b }]));
    const gitlink = '1'.repeat(40) as ObjectId;
    const root = put(
      objects,
      'tree',
      encodeTree([
        { mode: MODE_BLOB, name: name('a'), oid: a },
        { mode: MODE_TREE, name: name('d'), oid: sub },
        { mode: MODE_GITLINK, name: name('m'), oid: gitlink },
        { mode: MODE_BLOB, name: name('z'), oid: a },
      ]),
    );
    const out: ObjectId[] = [];
    await collectTree(new TreeReader(source(objects)), root, new OidSet(), out);
    assert.deepEqual(out, [root, a, sub, b]);
    const seen = new OidSet();
    await markTreeUninteresting(new TreeReader(source(objects)), sub, seen);
    assert.deepEqual(seen.toArray().sort(), [sub, b].sort());
    const out2: ObjectId[] = [];
    await collectTree(new TreeReader(source(objects)), root, seen, out2);
    assert.deepEqual(out2, [root, a]);
  });

  test('a missing tree to send is OBJ_MISSING; a missing uninteresting tree is skipped; a blob as tree is OBJ_BAD_TYPE', async () => {
    const objects = new Map<string, GitObject>();
    const missing = 'a'.repeat(40) as ObjectId;
    const root = put(objects, 'tree', encodeTree([{ mode: MODE_TREE, name: name('d'), oid: missing }]));
    const isCode = (c: string) => (e: unknown) => e instanceof StowageError && e.code === c;
    await assert.rejects(collectTree(new TreeReader(source(objects)), root, new OidSet(), []), isCode('OBJ_MISSING'));
    const marks = new OidSet();
    await markTreeUninteresting(new TreeReader(source(objects)), root, marks);
    assert.equal(marks.size, 2);
    const blob = put(objects, 'blob', Buffer.from('not a tree'));
    await assert.rejects(collectTree(new TreeReader(source(objects)), blob, new OidSet(), []), isCode('OBJ_BAD_TYPE'));
  });

  test('property: arbitrary tree bytes list what forEachTreeEntry lists, or throw OBJ_CORRUPT like it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc.array(fc.tuple(fc.constantFrom('100644', '40000', '160000', '120000', '7', ''), fc.string({ maxLength: 4 }), fc.uint8Array({ minLength: 20, maxLength: 20 })), { maxLength: 4 })
            .map((es) => Buffer.concat(es.map(([m, n, id]) => Buffer.concat([Buffer.from(`${m} ${n}\0`), id])))),
        ),
        async (bytes) => {
          const objects = new Map<string, GitObject>();
          const root = put(objects, 'tree', bytes);
          let expected: string[] | undefined;
          try {
            expected = [];
            const list = expected;
            forEachTreeEntry(bytes, (mode, _n, oid) => {
              if ((mode & 0o170000) !== MODE_GITLINK) list.push(oid);
            });
          } catch {
            expected = undefined;
          }
          const marks = new OidSet();
          try {
            await markTreeUninteresting(new TreeReader(source(objects)), root, marks);
          } catch (err) {
            assert.ok(err instanceof StowageError && err.code === 'OBJ_CORRUPT', String(err));
            assert.equal(expected, undefined);
            return;
          }
          assert.ok(expected !== undefined);
          assert.deepEqual(marks.toArray().sort(), [...new Set([root, ...expected])].sort());
        },
      ),
      { seed: 9, numRuns: 400 },
    );
  });
});
