import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { AccelFile, EXT_BIT } from './format.js';
import { AccelWriter } from './writer.js';

const SEED = 20261122;

interface Model {
  count: number;
  types: number[];
  sizes: number[];
  commits: Map<number, { time: number; tree: number; parents: number[] }>;
  trees: Map<number, { base: number | undefined; removed: number[]; added: number[] }>;
  ext: Uint8Array[];
}

/** A random accelerator model: refs point at positions or at ext ids. */
const model = fc
  .record({
    count: fc.integer({ min: 1, max: 40 }),
    ext: fc.array(fc.uint8Array({ minLength: 20, maxLength: 20 }), { maxLength: 5 }),
    seed: fc.array(fc.nat(), { minLength: 200, maxLength: 200 }),
    bigSize: fc.oneof(fc.constant(0), fc.integer({ min: 2 ** 32, max: 2 ** 40 })),
    time: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  })
  .map(({ count, ext, seed, bigSize, time }): Model => {
    let k = 0;
    const next = (n: number): number => seed[k++ % seed.length]! % n;
    const ref = (): number => (ext.length > 0 && next(3) === 0 ? (EXT_BIT | next(ext.length)) >>> 0 : next(count));
    const types: number[] = [];
    const sizes: number[] = [];
    const commits = new Map<number, { time: number; tree: number; parents: number[] }>();
    const trees = new Map<number, { base: number | undefined; removed: number[]; added: number[] }>();
    for (let p = 0; p < count; p++) {
      const t = 1 + next(4);
      types.push(t);
      sizes.push(p === 0 && bigSize > 0 ? bigSize : next(100000));
    }
    for (let p = 0; p < count; p++) {
      if (types[p] === 1 && next(4) !== 0) {
        const parents = Array.from({ length: next(4) }, ref);
        commits.set(p, { time: time + p, tree: ref(), parents });
      }
      if (types[p] === 2 && next(4) !== 0) {
        const treesSoFar = [...trees.keys()];
        const base = treesSoFar.length > 0 && next(2) === 0 ? treesSoFar[next(treesSoFar.length)]! : undefined;
        const n = next(6);
        const removed = base === undefined ? [] : Array.from({ length: next(3) * 3 }, () => next(1000));
        const added = Array.from({ length: n * (base === undefined ? 2 : 3) }, (_, i) => (i % (base === undefined ? 2 : 3) === (base === undefined ? 0 : 1) ? ref() : next(2 ** 31)));
        trees.set(p, { base, removed, added });
      }
    }
    return { count, types, sizes, commits, trees, ext };
  });

const CHECKSUM = 'ab'.repeat(20) as ObjectId;

function write(m: Model, selfContained = true): { bytes: Uint8Array; ext: Map<number, number> } {
  const w = new AccelWriter(m.count, CHECKSUM, selfContained);
  // ext refs are minted by the writer (deduplicated): map model ext index -> written ref.
  const ext = new Map<number, number>();
  m.ext.forEach((raw, i) => ext.set(i, w.extRef(raw, 0)));
  const mapRef = (r: number): number => (r & EXT_BIT ? ext.get(r & ~EXT_BIT)! : r);
  for (let p = 0; p < m.count; p++) w.setObject(p, m.types[p]!, m.sizes[p]!);
  for (const [p, c] of m.commits) w.addCommit(p, c.time, mapRef(c.tree), c.parents.map(mapRef));
  for (const [p, t] of m.trees) {
    const stride = t.base === undefined ? 2 : 3;
    const added = t.added.map((v, i) => (i % stride === stride - 2 ? mapRef(v) : v));
    const removed = t.removed.map((v, i) => (i % 3 === 1 ? mapRef(v % m.count) : v));
    w.addTree(p, t.base, removed, added);
  }
  return { bytes: w.finish(), ext };
}

describe('accelerator format', () => {
  test('property: what is written reads back (types, sizes, commits, trees, ext ids)', () => {
    fc.assert(
      fc.property(model, (m) => {
        const { bytes, ext } = write(m);
        const f = AccelFile.decode(bytes, { count: m.count, packChecksum: CHECKSUM });
        const mapRef = (r: number): number => (r & EXT_BIT ? ext.get(r & ~EXT_BIT)! : r);
        for (let p = 0; p < m.count; p++) {
          assert.equal(f.typeAt(p), m.types[p]);
          assert.equal(f.sizeAt(p), m.sizes[p]);
          const c = m.commits.get(p);
          const got = f.commitAt(p);
          if (c === undefined) assert.equal(got, undefined);
          else assert.deepEqual(got, { time: c.time, tree: mapRef(c.tree), parents: c.parents.map(mapRef) });
          const t = m.trees.get(p);
          const tr = f.treeAt(p);
          if (t === undefined) {
            assert.equal(tr, undefined);
            assert.equal(f.checkTree(p), false);
          } else {
            assert.ok(tr);
            assert.equal(f.checkTree(p), true);
            assert.equal(tr.base, t.base);
            const stride = t.base === undefined ? 2 : 3;
            assert.deepEqual([...tr.added], t.added.map((v, i) => (i % stride === stride - 2 ? mapRef(v) : v)));
            assert.deepEqual([...tr.removed], t.removed.map((v, i) => (i % 3 === 1 ? mapRef(v % m.count) : v)));
            assert.equal(f.treeWord(p) >= 0, true);
          }
        }
        m.ext.forEach((raw, i) => {
          const r = ext.get(i)!;
          assert.equal(f.extOid(r & ~EXT_BIT), Buffer.from(raw).toString('hex'));
        });
        // treeChildren lists exactly the trees based on each position.
        for (let p = 0; p < m.count; p++) {
          const expected = [...m.trees].filter(([, t]) => t.base === p).map(([q]) => q);
          assert.deepEqual([...f.treeChildren(p)], expected);
        }
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  test('property: reserved records filled in place, or a size hint, give the same file as added ones', () => {
    fc.assert(
      fc.property(model, (m) => {
        const { bytes } = write(m);
        // The same records as words, in the order write() adds them (ext refs minted in the same order).
        const w = new AccelWriter(m.count, CHECKSUM, true);
        const ext = new Map<number, number>();
        m.ext.forEach((raw, i) => ext.set(i, w.extRef(raw, 0)));
        const mapRef = (r: number): number => (r & EXT_BIT ? ext.get(r & ~EXT_BIT)! : r);
        for (let p = 0; p < m.count; p++) w.setObject(p, m.types[p]!, m.sizes[p]!);
        const words: number[] = [];
        for (const [p, c] of m.commits) {
          w.reserve(p, 4 + c.parents.length);
          words.push(c.time % 2 ** 32 >>> 0, Math.floor(c.time / 2 ** 32) >>> 0, mapRef(c.tree), c.parents.length, ...c.parents.map(mapRef));
        }
        for (const [p, t] of m.trees) {
          const stride = t.base === undefined ? 2 : 3;
          w.reserve(p, 3 + t.removed.length + t.added.length);
          words.push(t.base ?? 0xffffffff, t.removed.length / 3, t.added.length / stride);
          words.push(...t.removed.map((v, i) => (i % 3 === 1 ? mapRef(v % m.count) : v)));
          words.push(...t.added.map((v, i) => (i % stride === stride - 2 ? mapRef(v) : v)));
        }
        if (words.length > 0) assert.throws(() => w.addCommit(0, 0, 0, []), RangeError);
        const filled = w.finish((data) => {
          assert.equal(data.byteLength, words.length * 4);
          const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
          words.forEach((v, k) => b.writeUInt32LE(v, k * 4));
        });
        assert.deepEqual(Buffer.from(filled), Buffer.from(bytes));
        // A size hint changes only how the data array is allocated.
        const h = new AccelWriter(m.count, CHECKSUM, true, words.length);
        m.ext.forEach((raw) => h.extRef(raw, 0));
        for (let p = 0; p < m.count; p++) h.setObject(p, m.types[p]!, m.sizes[p]!);
        for (const [p, c] of m.commits) h.addCommit(p, c.time, mapRef(c.tree), c.parents.map(mapRef));
        for (const [p, t] of m.trees) {
          const stride = t.base === undefined ? 2 : 3;
          h.addTree(p, t.base, t.removed.map((v, i) => (i % 3 === 1 ? mapRef(v % m.count) : v)), t.added.map((v, i) => (i % stride === stride - 2 ? mapRef(v) : v)));
        }
        if (words.length > 0) assert.throws(() => h.reserve(0, 1), RangeError);
        assert.deepEqual(Buffer.from(h.finish()), Buffer.from(bytes));
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  test('property: any flipped byte or truncation is REPO_CORRUPT, never a wrong answer', () => {
    fc.assert(
      fc.property(model, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, xor) => {
        const { bytes } = write(m);
        const flipped = Buffer.from(bytes);
        flipped[at % flipped.length]! ^= xor;
        const isCorrupt = (e: unknown): boolean => e instanceof StowageError && e.code === 'REPO_CORRUPT';
        assert.throws(() => AccelFile.decode(flipped, { count: m.count, packChecksum: CHECKSUM }), isCorrupt);
        assert.throws(() => AccelFile.decode(bytes.subarray(0, at % bytes.length), { count: m.count, packChecksum: CHECKSUM }), isCorrupt);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  test('a file for another pack or another object count is refused; unaligned input is fine', () => {
    const m: Model = { count: 3, types: [1, 2, 3], sizes: [10, 20, 30], commits: new Map(), trees: new Map(), ext: [] };
    const { bytes } = write(m, false);
    const isCorrupt = (e: unknown): boolean => e instanceof StowageError && e.code === 'REPO_CORRUPT';
    assert.throws(() => AccelFile.decode(bytes, { count: 4, packChecksum: CHECKSUM }), isCorrupt);
    assert.throws(() => AccelFile.decode(bytes, { count: 3, packChecksum: 'cd'.repeat(20) as ObjectId }), isCorrupt);
    const shifted = Buffer.alloc(bytes.length + 1);
    shifted.set(bytes, 1);
    const f = AccelFile.decode(shifted.subarray(1), { count: 3, packChecksum: CHECKSUM });
    assert.equal(f.selfContained, false);
    assert.equal(f.sizeAt(2), 30);
  });

  test('property: random bytes throw only REPO_CORRUPT', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          AccelFile.decode(bytes, { count: 1, packChecksum: CHECKSUM });
        } catch (e) {
          assert.ok(e instanceof StowageError && e.code === 'REPO_CORRUPT', String(e));
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
