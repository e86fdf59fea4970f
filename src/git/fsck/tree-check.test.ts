import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import { compareTreeEntryNames } from '../object/tree.js';
import { fsckObject } from './fsck.js';
import { ourFindings, runFsckCases, type FsckCase } from './fsck-cases.test-util.js';

const BLOB = 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391';
const TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const NULL = '0'.repeat(40);

/** Raw tree bytes from [mode text, name, hex id] in the order given (no sorting). */
function tree(entries: [string, string | Buffer, string][]): Buffer {
  return Buffer.concat(entries.map(([m, n, o]) => Buffer.concat([Buffer.from(`${m} `), Buffer.from(n), Buffer.from([0]), Buffer.from(o, 'hex')])));
}

function c(name: string, data: Buffer, expect: string[], more: Partial<FsckCase> = {}): FsckCase {
  return { name, type: 'tree', data, expect, oracle: true, ...more };
}

const CASES: FsckCase[] = [
  c('empty tree', Buffer.alloc(0), []),
  c('sorted tree', tree([['100644', 'a', BLOB], ['100644', 'a.c', BLOB], ['100644', 'b.c', BLOB], ['40000', 'b', TREE], ['120000', 'c', BLOB], ['160000', 'sub', BLOB]]), []),
  c('unsorted entries', tree([['100644', 'b', BLOB], ['100644', 'a', BLOB]]), ['treeNotSorted:error']),
  c('directory sorted as without slash', tree([['40000', 'a', TREE], ['100644', 'a.c', BLOB]]), ['treeNotSorted:error']),
  c('duplicate file entries', tree([['100644', 'a', BLOB], ['100644', 'a', BLOB]]), ['duplicateEntries:error']),
  c('file and directory of one name, apart', tree([['100644', 'foo', BLOB], ['100644', 'foo.bar', BLOB], ['40000', 'foo', TREE]]), ['duplicateEntries:error']),
  c('dotdot warns', tree([['40000', '..', TREE]]), ['hasDotdot:warn']),
  c('dotdot as error when configured', tree([['40000', '..', TREE]]), ['hasDotdot:error'], { config: { hasDotdot: 'error' } }),
  c('dot warns', tree([['40000', '.', TREE]]), ['hasDot:warn']),
  c('.git entry warns (old histories)', tree([['40000', '.git', TREE]]), ['hasDotgit:warn']),
  c('.GIT (case-insensitive)', tree([['100644', '.GIT', BLOB]]), ['hasDotgit:warn']),
  c('git~1 (NTFS short name)', tree([['40000', 'GIT~1', TREE]]), ['hasDotgit:warn']),
  c('.git with trailing dots and spaces (NTFS)', tree([['40000', '.git. . ', TREE]]), ['hasDotgit:warn']),
  c('.git alternate data stream (NTFS)', tree([['40000', '.git::$INDEX_ALLOCATION', TREE]]), ['hasDotgit:warn']),
  c('.git with ignorable code points (HFS+)', tree([['40000', '.g\u200cit', TREE]]), ['hasDotgit:warn']),
  c('.git after a backslash (NTFS)', tree([['100644', 'a\\.git', BLOB]]), ['hasDotgit:warn']),
  c('.gitx is fine', tree([['100644', '.gitx', BLOB], ['100644', 'git~2', BLOB]]), []),
  c('hasDotgit ignored by config', tree([['40000', '.git', TREE]]), [], { config: { HASDOTGIT: 'ignore' } }),
  c('100664 is accepted (early git)', tree([['100664', 'a', BLOB]]), []),
  c('bad file mode is reported as a warning', tree([['100600', 'a', BLOB]]), ['badFilemode:warn']),
  c('zero-padded mode', tree([['0100644', 'a', BLOB], ['040000', 'b', TREE]]), ['zeroPaddedFilemode:warn']),
  c('slash in a name', tree([['100644', 'a/b', BLOB]]), ['fullPathname:warn']),
  c('null sha1', tree([['100644', 'a', NULL]]), ['nullSha1:warn']),
  c('several findings at once', tree([['100644', 'b', BLOB], ['100644', '..', NULL], ['100755', '.git', BLOB]]), [
    'treeNotSorted:error',
    'hasDotdot:warn',
    'hasDotgit:warn',
    'nullSha1:warn',
  ]),
  c('truncated tree', tree([['100644', 'a', BLOB]]).subarray(0, 20), ['badTree:error']),
  c('malformed mode', tree([['10064x', 'a', BLOB]]), ['badTree:error']),
  c('empty mode', tree([['', 'a', BLOB]]), ['badTree:error']),
  c('empty name', tree([['100644', '', BLOB]]), ['badTree:error']),
  c('bad second entry keeps the first one\'s findings', Buffer.concat([tree([['40000', '.git', TREE]]), Buffer.from('100644 \0'), Buffer.alloc(20)]), [
    'badTree:error',
    'hasDotgit:warn',
  ]),
  c('.gitmodules symlink', tree([['120000', '.gitmodules', BLOB]]), ['gitmodulesSymlink:error']),
  c('.gitattributes symlink', tree([['120000', '.gitattributes', BLOB]]), ['gitattributesSymlink:warn']),
  c('.gitignore and .mailmap symlinks', tree([['120000', '.gitignore', BLOB], ['120000', '.mailmap', BLOB]]), ['gitignoreSymlink:warn', 'mailmapSymlink:warn']),
  c('NTFS short name of .gitmodules as symlink', tree([['120000', 'GITMOD~1', BLOB]]), ['gitmodulesSymlink:error']),
  c('hashed NTFS short name of .gitmodules as symlink', tree([['120000', 'gi7eba~9', BLOB]]), ['gitmodulesSymlink:error']),
  c('very long name', tree([['100644', 'x'.repeat(4097), BLOB]]), ['largePathname:warn']),
];

describe('fsck trees', () => {
  test('each case gives git\'s findings and severities', () => {
    runFsckCases(CASES);
  });

  test('random trees: order, duplicates, names and modes agree with git fsck', () => {
    const nameArb = fc.array(fc.constantFrom('a', 'b', '.', '-', '0', '.git', 'A', '~1', 'git', '\\', 'é'), { minLength: 1, maxLength: 4 }).map((p) => p.join(''));
    const modeArb = fc.constantFrom('100644', '100755', '40000', '120000', '160000', '100664', '100600', '040000');
    const treeArb = fc.array(fc.tuple(modeArb, nameArb, fc.constantFrom(BLOB, TREE, NULL)), { minLength: 1, maxLength: 7 });
    const cases = fc.sample(treeArb, { numRuns: 300, seed: 5 }).map((raw, i): FsckCase => {
      // Half in git's order, so duplicates hidden by the implicit '/' are exercised too.
      const entries =
        i % 2 === 0 ? raw : [...raw].sort((x, y) => compareTreeEntryNames(Buffer.from(x[1]), parseInt(x[0], 8), Buffer.from(y[1]), parseInt(y[0], 8)));
      const base: FsckCase = { name: `random tree ${i}: ${JSON.stringify(entries)}`, type: 'tree', data: tree(entries), expect: [], oracle: true };
      return { ...base, expect: [...ourFindings(base).values()].flat() };
    });
    runFsckCases(cases);
  });

  test('names the .gitmodules and .gitattributes blobs for a second pass', () => {
    const data = tree([
      ['100644', '.gitattributes', BLOB],
      ['100644', '.gitmodules', TREE],
      ['100644', '.gitmodules.', BLOB],
      ['40000', 'x', TREE],
    ]);
    const r = fsckObject(hashObject('tree', data), 'tree', data);
    assert.deepEqual(
      r.specialBlobs.map((s) => `${s.kind}:${s.oid}`).sort(),
      [`gitattributes:${BLOB}`, `gitmodules:${BLOB}`, `gitmodules:${TREE}`].sort(),
    );
  });

  test('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const r = fsckObject('0'.repeat(40) as ObjectId, 'tree', b);
        assert.ok(Array.isArray(r.messages));
      }),
    );
  });
});
