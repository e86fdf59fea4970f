import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import { gitHashObject, gitRun, tempRepo } from './git-oracle.test-util.js';
import { compareTreeEntryNames, decodeTree, encodeTree, forEachTreeEntry, treeEntryType, type TreeEntry } from './tree.js';

const oidArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as ObjectId);
const nameArb = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))));
const modeArb = fc.oneof(fc.constantFrom(0o100644, 0o100755, 0o120000, 0o40000, 0o160000), fc.integer({ min: 1, max: 0o177777 }));
const entriesArb = fc.uniqueArray(fc.record({ mode: modeArb, name: nameArb, oid: oidArb }), {
  maxLength: 12,
  selector: (e) => Buffer.from(e.name).toString('latin1'),
});

function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return [...entries].sort((a, b) => compareTreeEntryNames(a.name, a.mode, b.name, b.mode));
}

describe('tree', () => {
  let repo: { dir: string; dispose: () => void };
  before(() => {
    repo = tempRepo();
  });
  after(() => repo.dispose());

  test('decode(encode(x)) round trips, in tree order', () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        const decoded = decodeTree(encodeTree(entries));
        assert.deepEqual(
          decoded.map((e) => ({ ...e, name: Buffer.from(e.name) })),
          sortEntries(entries).map((e) => ({ ...e, name: Buffer.from(e.name) })),
        );
      }),
    );
  });

  test('forEachTreeEntry visits what decodeTree returns', () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        const data = encodeTree(entries);
        const seen: TreeEntry[] = [];
        forEachTreeEntry(data, (mode, name, oid) => seen.push({ mode, name, oid }));
        assert.deepEqual(seen, decodeTree(data));
      }),
    );
  });

  test('encodeTree sorts like git mktree and hashes like git', () => {
    const blob = 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391' as ObjectId;
    const tree = '4b825dc642cb6eb9a060e54bf8d69288fbee4904' as ObjectId;
    const samples = [
      ['a', 'a.c', 'a-b', 'a0', 'b', 'A'],
      ['foo', 'foo.bar', 'foo.bar.baz', 'foo-x'],
      ['x', 'x!', 'x~', 'x.'],
    ];
    for (const [k, names] of samples.entries()) {
      const entries: TreeEntry[] = names.map((n, i) => ({
        mode: i % 2 === k % 2 ? 0o40000 : 0o100644,
        name: Buffer.from(n),
        oid: i % 2 === k % 2 ? tree : blob,
      }));
      const input = entries.map((e) => `${e.mode === 0o40000 ? '040000 tree' : '100644 blob'} ${e.oid}\t${Buffer.from(e.name).toString()}\n`).join('');
      const gitId = gitRun(repo.dir, ['mktree', '--missing'], Buffer.from(input)).stdout.trim();
      const mine = encodeTree(entries);
      assert.equal(hashObject('tree', mine), gitId);
      assert.equal(gitHashObject(repo.dir, 'tree', mine), gitId);
    }
  });

  test('hashes of encoded random trees equal git hash-object', () => {
    for (const entries of fc.sample(entriesArb, { numRuns: 6, seed: 3 })) {
      const bytes = encodeTree(entries);
      assert.equal(hashObject('tree', bytes), gitHashObject(repo.dir, 'tree', bytes));
    }
  });

  test('directories compare as if they had a trailing slash', () => {
    const a = Buffer.from('a');
    const ac = Buffer.from('a.c');
    const a0 = Buffer.from('a0');
    assert.ok(compareTreeEntryNames(a, 0o100644, ac, 0o100644) < 0);
    assert.ok(compareTreeEntryNames(a, 0o40000, ac, 0o100644) > 0);
    assert.ok(compareTreeEntryNames(a, 0o40000, a0, 0o100644) < 0);
    assert.equal(compareTreeEntryNames(a, 0o40000, a, 0o40000), 0);
    assert.ok(compareTreeEntryNames(a, 0o160000, ac, 0o100644) < 0, 'a gitlink is not a directory');
  });

  test('treeEntryType', () => {
    assert.equal(treeEntryType(0o40000), 'tree');
    assert.equal(treeEntryType(0o160000), 'gitlink');
    assert.equal(treeEntryType(0o100644), 'blob');
    assert.equal(treeEntryType(0o100755), 'blob');
    assert.equal(treeEntryType(0o120000), 'blob');
  });

  test('modes keep 16 bits, like git', () => {
    const data = Buffer.concat([Buffer.from('1100644 f\0'), Buffer.alloc(20)]);
    assert.equal(decodeTree(data)[0]?.mode, 0o100644);
  });

  test('malformed trees throw OBJ_CORRUPT', () => {
    const z = Buffer.alloc(20);
    const bad = [
      Buffer.from('100644 a'),
      Buffer.concat([Buffer.from('100644 a\0'), z.subarray(0, 19)]),
      Buffer.concat([Buffer.from(' a\0'), z]),
      Buffer.concat([Buffer.from('100648 a\0'), z]),
      Buffer.concat([Buffer.from('100644 \0'), z]),
      Buffer.concat([Buffer.from('100644a\0'), z]),
      Buffer.from('100644'),
    ];
    for (const b of bad) {
      assert.throws(() => decodeTree(b), (e: unknown) => e instanceof ValidationError && e.code === 'OBJ_CORRUPT', JSON.stringify(b.toString('latin1')));
    }
  });

  test('random bytes only throw ValidationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        try {
          decodeTree(b);
        } catch (e) {
          assert.ok(e instanceof ValidationError && e.code === 'OBJ_CORRUPT');
        }
      }),
    );
  });
});
