import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { encodeTree, MODE_BLOB, MODE_BLOB_EXEC, MODE_GITLINK, MODE_TREE } from '../../git/object/tree.js';
import { KIND_BLOB, KIND_GITLINK, KIND_TREE } from './format.js';
import { diffTrees, entryMeta, parseTreeStarts } from './tree-diff.js';

const SEED = 4242;
const MODES = [MODE_BLOB, MODE_BLOB_EXEC, MODE_TREE, MODE_GITLINK, 0o120000];

interface Entry {
  mode: number;
  name: string;
  oid: number;
}

const entry = fc.record({
  mode: fc.constantFrom(...MODES),
  name: fc.stringMatching(/^[a-c.\-_ ]{1,6}$/),
  oid: fc.integer({ min: 0, max: 6 }),
});

function oidOf(n: number): ObjectId {
  return n.toString(16).padStart(40, '0') as ObjectId;
}

/** Tree bytes with entries in the given order (encodeTree sorts; raw keeps the order). */
function raw(entries: readonly Entry[]): Buffer {
  return Buffer.concat(entries.map((e) => Buffer.concat([Buffer.from(`${e.mode.toString(8)} ${e.name}\0`), Buffer.from(oidOf(e.oid), 'hex')])));
}

function sorted(entries: readonly Entry[]): Buffer {
  const byName = new Map(entries.map((e) => [e.name, e]));
  return Buffer.from(encodeTree([...byName.values()].map((e) => ({ mode: e.mode, name: Buffer.from(e.name), oid: oidOf(e.oid) }))));
}

function entriesOf(buf: Buffer): string[] {
  const s = parseTreeStarts(buf);
  const out: string[] = [];
  for (let k = 0; k + 1 < s.length; k++) out.push(buf.subarray(s[k], s[k + 1]).toString('hex'));
  return out;
}

/** Applies a diff the way the accelerator's readers do. */
function apply(base: string[], target: string[], removed: readonly number[], added: readonly number[]): string[] {
  const out: string[] = [];
  let b = 0;
  let r = 0;
  let a = 0;
  for (let k = 0; k < target.length; k++) {
    if (a < added.length && added[a] === k) {
      out.push(target[k]!);
      a++;
      continue;
    }
    while (r < removed.length && removed[r] === b) {
      r++;
      b++;
    }
    out.push(base[b++]!);
  }
  assert.equal(a, added.length);
  return out;
}

function check(baseBuf: Buffer, targetBuf: Buffer): void {
  const d = diffTrees(baseBuf, parseTreeStarts(baseBuf), targetBuf);
  assert.deepEqual([...d.starts], [...parseTreeStarts(targetBuf)]);
  const base = entriesOf(baseBuf);
  const target = entriesOf(targetBuf);
  assert.deepEqual(apply(base, target, d.removed, d.added), target);
  // Removed and added indexes ascend and stay in range.
  for (let i = 1; i < d.removed.length; i++) assert.ok(d.removed[i]! > d.removed[i - 1]!);
  for (let i = 1; i < d.added.length; i++) assert.ok(d.added[i]! > d.added[i - 1]!);
  assert.ok(d.removed.every((x) => x < base.length));
  assert.ok(d.added.every((x) => x < target.length));
}

describe('tree differences', () => {
  test('property: sorted trees and their edits rebuild exactly', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), fc.array(entry, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (base, extra, drops) => {
        const edited = base.filter((_, i) => !drops.includes(i)).concat(extra);
        check(sorted(base), sorted(edited));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  test('property: any entry order (trees fsck would warn about) still gives an exact edit script', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 20 }), fc.array(entry, { maxLength: 20 }), (a, b) => {
        check(raw(a), raw(b));
        check(raw(a), raw([...a.slice(3), ...b, ...a.slice(0, 3)]));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  test('large trees with one change: only the middle differs', () => {
    const base: Entry[] = Array.from({ length: 3000 }, (_, i) => ({ mode: MODE_BLOB, name: `file-${String(i).padStart(5, '0')}`, oid: i % 7 }));
    const target = base.map((e, i) => (i === 1500 ? { ...e, oid: (e.oid + 1) % 7 } : e));
    const d = diffTrees(sorted(base), parseTreeStarts(sorted(base)), sorted(target));
    assert.deepEqual(d.removed, [1500]);
    assert.deepEqual(d.added, [1500]);
    check(sorted(base), sorted(target.slice(1)));
    check(sorted(base), sorted([...target, { mode: MODE_TREE, name: 'zzz', oid: 1 }]));
  });

  test('meta words carry the kind and the name hash', () => {
    const t = sorted([
      { mode: MODE_TREE, name: 'd', oid: 1 },
      { mode: MODE_GITLINK, name: 'm', oid: 2 },
      { mode: MODE_BLOB_EXEC, name: 'x', oid: 3 },
    ]);
    const s = parseTreeStarts(t);
    const kinds = [0, 1, 2].map((k) => entryMeta(t, s[k]!, s[k + 1]!) & 3);
    assert.deepEqual(kinds, [KIND_TREE, KIND_GITLINK, KIND_BLOB]);
    assert.notEqual(entryMeta(t, s[0]!, s[1]!) & ~3, entryMeta(t, s[2]!, s[3]!) & ~3);
  });

  test('property: malformed trees throw OBJ_CORRUPT only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          parseTreeStarts(Buffer.from(bytes));
        } catch (e) {
          assert.ok(e instanceof StowageError && e.code === 'OBJ_CORRUPT', String(e));
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
