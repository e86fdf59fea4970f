import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { BitmapFile, bitmapWords } from './bitmap-format.js';
import { BitmapFileBuilder, encodeBitmapFile, type BitmapEntryInput } from './bitmap-builder.js';

const SEED = 20261201;
const CHECKSUM = 'ab'.repeat(20) as ObjectId;

/** A set of `count` bits from a shape: runs of ones and zeros, sparse bits, or dense noise. */
function setOf(count: number, shape: number, seed: readonly number[]): Uint32Array {
  const w = new Uint32Array(bitmapWords(count));
  let k = 0;
  const next = (n: number): number => seed[k++ % seed.length]! % n;
  for (let i = 0; i < count; ) {
    const len = 1 + next(shape === 0 ? 3000 : shape === 1 ? 40 : 4);
    const on = shape === 1 ? next(10) === 0 : next(2) === 0;
    for (let j = i; j < Math.min(count, i + len); j++) if (on) w[j >>> 5]! |= 1 << (j & 31);
    i += len;
  }
  return w;
}

/** A permutation of 0..count-1 from a seed (a pack order). */
function permutation(count: number, seed: readonly number[]): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = seed[i % seed.length]! % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function identity(count: number): Uint32Array {
  return Uint32Array.from({ length: count }, (_, i) => i);
}

/** Random files: entries whose sets are related (subsets and neighbours), as history gives. */
const files = fc
  .record({
    count: fc.integer({ min: 1, max: 5000 }),
    n: fc.integer({ min: 0, max: 12 }),
    shapes: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 12, maxLength: 12 }),
    seed: fc.array(fc.nat(), { minLength: 50, maxLength: 50 }),
  })
  .map(({ count, n, shapes, seed }) => {
    const entries: BitmapEntryInput[] = [];
    const used = new Set<number>();
    for (let i = 0; i < n && used.size < count; i++) {
      let pos = seed[i % seed.length]! % count;
      while (used.has(pos)) pos = (pos + 1) % count;
      used.add(pos);
      const bits = setOf(count, shapes[i]!, seed.slice(i));
      // Often a superset of an earlier entry (a descendant), so XOR bases get used.
      if (i > 0 && seed[i]! % 2 === 0) {
        const prev = entries[seed[i]! % i]!.bits;
        for (let k = 0; k < bits.length; k++) bits[k] = (bits[k]! | prev[k]!) >>> 0;
      }
      entries.push({ commitPos: pos, bits });
    }
    return { count, entries, order: permutation(count, seed) };
  });

function decodeAll(bytes: Uint8Array, count: number): BitmapFile {
  return BitmapFile.decode(bytes, { count, packChecksum: CHECKSUM });
}

describe('reachability bitmap format', () => {
  test('round trip: every entry reads back as written, by commit position', () => {
    fc.assert(
      fc.property(files, ({ count, entries, order }) => {
        const bytes = encodeBitmapFile({ count, packChecksum: CHECKSUM, order, entries });
        const f = decodeAll(bytes, count);
        assert.deepEqual(f.order, order);
        for (let k = 0; k < count; k++) assert.equal(f.rank[order[k]!], k);
        assert.equal(f.entryCount, entries.length);
        assert.equal(f.byteLength, bytes.byteLength);
        for (const [i, e] of entries.entries()) {
          const at = f.entryOf(e.commitPos);
          assert.equal(at, i);
          assert.equal(f.commitAt(at), e.commitPos);
          assert.deepEqual(f.read(at), e.bits);
          const target = new Uint32Array(f.words);
          target[0] = 1;
          f.orInto(at, target);
          assert.equal(target[0], (e.bits[0]! | 1) >>> 0);
        }
        // Reading again (from the memo, in another order) gives the same sets.
        for (let i = entries.length - 1; i >= 0; i--) assert.deepEqual(f.read(i), entries[i]!.bits);
        assert.equal(f.entryOf(count + 5), -1);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  test('the builder reads back every set it holds, whole or from its code', () => {
    fc.assert(
      fc.property(files, ({ count, entries }) => {
        const b = new BitmapFileBuilder(count);
        for (const e of entries) b.add(e.commitPos, e.bits);
        assert.equal(b.entryCount, entries.length);
        for (const e of [...entries].reverse()) {
          const target = new Uint32Array(b.words);
          assert.equal(b.orInto(e.commitPos, target), true);
          assert.deepEqual(target, e.bits);
        }
        const used = new Set(entries.map((e) => e.commitPos));
        const free = [...Array(count).keys()].find((p) => !used.has(p));
        if (free !== undefined) assert.equal(b.orInto(free, new Uint32Array(b.words)), false);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  test('runs compress: a history-like file is far smaller than the raw sets', () => {
    const count = 100_000;
    const entries: BitmapEntryInput[] = [];
    for (let i = 0; i < 50; i++) {
      // Commit i reaches a prefix of the pack in pack order: a run of ones.
      const bits = new Uint32Array(bitmapWords(count));
      const upTo = 2000 * (i + 1);
      for (let j = 0; j < upTo; j++) bits[j >>> 5]! |= 1 << (j & 31);
      entries.push({ commitPos: i, bits });
    }
    const bytes = encodeBitmapFile({ count, packChecksum: CHECKSUM, order: identity(count), entries });
    assert.ok(bytes.byteLength < count * 4 + 50 * 64 + 2000, `${bytes.byteLength} bytes`);
    const f = decodeAll(bytes, count);
    for (const [i, e] of entries.entries()) assert.deepEqual(f.read(i), e.bits);
  });

  test('random bytes are refused with a StowageError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: 100 }), (bytes, count) => {
        try {
          decodeAll(bytes, count);
        } catch (err) {
          assert.ok(err instanceof StowageError, String(err));
          assert.equal(err.code, 'REPO_CORRUPT');
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('truncated, flipped, foreign or wrongly sized files are refused as REPO_CORRUPT', () => {
    fc.assert(
      fc.property(files, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ count, entries, order }, at, xor) => {
        const bytes = encodeBitmapFile({ count, packChecksum: CHECKSUM, order, entries });
        const corrupt = (b: Uint8Array, c = count, sum = CHECKSUM): void =>
          assert.throws(() => BitmapFile.decode(b, { count: c, packChecksum: sum }), (e: unknown) => e instanceof StowageError && e.code === 'REPO_CORRUPT');
        corrupt(bytes.subarray(0, at % bytes.length));
        const flipped = Uint8Array.from(bytes);
        flipped[at % bytes.length]! ^= xor;
        corrupt(flipped);
        corrupt(bytes, count + 1);
        corrupt(bytes, count, 'cd'.repeat(20) as ObjectId);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  test('a well-checksummed file with bad structure is refused', () => {
    const count = 64;
    const bits = new Uint32Array(2).fill(0xffffffff);
    const good = Buffer.from(encodeBitmapFile({ count, packChecksum: CHECKSUM, order: identity(count), entries: [{ commitPos: 3, bits }] }));
    const reseal = (b: Buffer): Buffer => {
      createHash('sha1').update(b.subarray(0, b.length - 20)).digest().copy(b, b.length - 20);
      return b;
    };
    const bad = (mutate: (b: Buffer) => void): void => {
      const b = Buffer.from(good);
      mutate(b);
      assert.throws(() => decodeAll(reseal(b), count), (e: unknown) => e instanceof StowageError && e.code === 'REPO_CORRUPT');
    };
    assert.equal(decodeAll(good, count).entryCount, 1);
    bad((b) => b.writeUInt32LE(2, 4)); // version
    bad((b) => b.writeUInt32LE(1, 12)); // unknown flag
    bad((b) => b.writeUInt32LE(64, 48)); // commit position past the count
    bad((b) => b.writeUInt32LE(0, 52)); // XOR base that is not earlier
    bad((b) => b.writeUInt32LE(5, 60)); // stream length past DATA
    // A fill of three words where two exist (DATA starts after the 64 ORDER words).
    bad((b) => b.writeUInt32LE(((1 << 31) | (3 << 16)) >>> 0, 64 + 256));
    // An ORDER that is not a permutation.
    bad((b) => b.writeUInt32LE(5, 64 + 4 * 7));
    // An ORDER that does not follow the pack's offsets.
    const offsets = (pos: number): number => 12 + (pos === 10 ? 1000 : pos * 10);
    assert.equal(BitmapFile.decode(good, { count, packChecksum: CHECKSUM, offsetAt: (pos) => 12 + pos * 10 }).count, count);
    assert.throws(() => BitmapFile.decode(good, { count, packChecksum: CHECKSUM, offsetAt: offsets }), (e: unknown) => e instanceof StowageError && e.code === 'REPO_CORRUPT');
    // Bits past the object count (count 40: the second word may use 8 bits only).
    const small = Buffer.from(encodeBitmapFile({ count: 40, packChecksum: CHECKSUM, order: identity(40), entries: [{ commitPos: 0, bits: new Uint32Array([1, 0x80]) }] }));
    assert.equal(decodeAll(small, 40).entryCount, 1);
    small.writeUInt32LE(0x100, small.length - 24);
    assert.throws(() => decodeAll(reseal(small), 40), (e: unknown) => e instanceof StowageError && e.code === 'REPO_CORRUPT');
  });

  test('the writer refuses what it cannot describe', () => {
    const order = identity(10);
    assert.throws(() => encodeBitmapFile({ count: 10, packChecksum: CHECKSUM, order, entries: [{ commitPos: 1, bits: new Uint32Array(2) }] }), RangeError);
    const one = new Uint32Array(1);
    assert.throws(
      () => encodeBitmapFile({ count: 10, packChecksum: CHECKSUM, order, entries: [{ commitPos: 1, bits: one }, { commitPos: 1, bits: one }] }),
      RangeError,
    );
    assert.throws(() => encodeBitmapFile({ count: 10, packChecksum: CHECKSUM, order: identity(9), entries: [] }), RangeError);
  });
});
