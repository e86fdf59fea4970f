import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import type { PackRecord } from '../../meta/meta-store.js';
import { isGeometric, planCompaction, shouldCompact } from './plan.js';

function pack(i: number, objects: number): PackRecord {
  return { name: `pack-${i.toString(16).padStart(40, '0')}`, size: objects * 100 + 32, objects, createdMs: i, source: 'receive' };
}

function packsOf(counts: readonly number[]): PackRecord[] {
  return counts.map((n, i) => pack(i, n));
}

/** Object counts after merging the planned packs into one (duplicates ignored: the worst case). */
function countsAfter(packs: readonly PackRecord[], planned: readonly string[]): number[] {
  const set = new Set(planned);
  const rest = packs.filter((p) => !set.has(p.name)).map((p) => p.objects);
  if (set.size === 0) return rest;
  const merged = packs.filter((p) => set.has(p.name)).reduce((s, p) => s + p.objects, 0);
  return [...rest, merged];
}

function countsOfPlan(packs: readonly PackRecord[], planned: readonly string[]): number[] {
  const byName = new Map(packs.map((p) => [p.name, p.objects]));
  return planned.map((n) => byName.get(n)!).sort((a, b) => a - b);
}

const countsArb = fc.array(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 40 });
const factorArb = fc.constantFrom(1.5, 2, 3, 4);

describe('planCompaction', () => {
  test('git examples: small packs roll up, big ones stay', () => {
    // 1, 1, 2, 4, 8 break at the two ones; rolling them up gives 2, which then breaks against
    // the 2, and so on up the chain (git-repack's doc example shape).
    assert.deepEqual(countsOfPlan(packsOf([1, 1, 2, 4, 8]), planCompaction(packsOf([1, 1, 2, 4, 8]))), [1, 1, 2, 4, 8]);
    const mixed = packsOf([1000, 5, 5]);
    assert.deepEqual(countsOfPlan(mixed, planCompaction(mixed)), [5, 5]);
    const fine = packsOf([1000, 10, 5]);
    assert.deepEqual(planCompaction(fine), []);
    const twelve = packsOf(Array.from({ length: 12 }, () => 3));
    assert.equal(planCompaction(twelve).length, 12);
  });

  test('never plans one pack; empty lists and single packs plan nothing', () => {
    assert.deepEqual(planCompaction([]), []);
    assert.deepEqual(planCompaction([pack(1, 10)]), []);
    assert.deepEqual(planCompaction([pack(1, 10)], { full: true }), []);
  });

  test('full merges everything', () => {
    const packs = packsOf([1, 2, 4, 8, 16]);
    assert.deepEqual(new Set(planCompaction(packs, { full: true })), new Set(packs.map((p) => p.name)));
  });

  test('bad options are ValidationErrors', () => {
    assert.throws(() => planCompaction(packsOf([1, 1]), { factor: 0.5 }), ValidationError);
    assert.throws(() => planCompaction(packsOf([1, 1]), { factor: Number.NaN }), ValidationError);
    assert.throws(() => planCompaction(packsOf([1, 1]), { maxPacks: 0 }), ValidationError);
  });

  test('property: the result is a geometric progression, and a plan is never one pack', () => {
    fc.assert(
      fc.property(countsArb, factorArb, (counts, factor) => {
        const packs = packsOf(counts);
        const planned = planCompaction(packs, { factor });
        assert.notEqual(planned.length, 1);
        assert.equal(new Set(planned).size, planned.length);
        assert.ok(isGeometric(countsAfter(packs, planned), factor), `after ${JSON.stringify(counts)}`);
      }),
      { seed: 20260101, numRuns: 2000 },
    );
  });

  test('property: empty exactly when already geometric', () => {
    fc.assert(
      fc.property(countsArb, factorArb, (counts, factor) => {
        const planned = planCompaction(packsOf(counts), { factor });
        assert.equal(planned.length === 0, isGeometric(counts, factor));
      }),
      { seed: 7, numRuns: 2000 },
    );
  });

  test('property: the planned packs are the smallest ones (a prefix by size)', () => {
    fc.assert(
      fc.property(countsArb, (counts) => {
        const packs = packsOf(counts);
        const planned = new Set(planCompaction(packs));
        if (planned.size === 0) return;
        const largestIn = Math.max(...packs.filter((p) => planned.has(p.name)).map((p) => p.objects));
        for (const p of packs) if (!planned.has(p.name)) assert.ok(p.objects >= largestIn);
      }),
      { seed: 11, numRuns: 1000 },
    );
  });

  test('property: a second plan after merging is empty (the result is stable)', () => {
    fc.assert(
      fc.property(countsArb, factorArb, (counts, factor) => {
        const packs = packsOf(counts);
        const after = countsAfter(packs, planCompaction(packs, { factor }));
        assert.deepEqual(planCompaction(packsOf(after), { factor }), []);
      }),
      { seed: 3, numRuns: 1000 },
    );
  });

  test('property: maxPacks bounds the count and keeps the progression', () => {
    fc.assert(
      fc.property(countsArb, fc.integer({ min: 1, max: 10 }), (counts, maxPacks) => {
        const packs = packsOf(counts);
        const planned = planCompaction(packs, { maxPacks });
        const after = countsAfter(packs, planned);
        if (packs.length >= 2) assert.ok(after.length <= Math.max(maxPacks, 1), `${after.length} > ${maxPacks}`);
        assert.ok(isGeometric(after));
      }),
      { seed: 5, numRuns: 1000 },
    );
  });

  test('property: the plan does not depend on the order packs are listed in', () => {
    fc.assert(
      fc.property(countsArb.chain((c) => fc.tuple(fc.constant(c), fc.shuffledSubarray(c.map((_, i) => i), { minLength: c.length }))), ([counts, order]) => {
        const packs = packsOf(counts);
        const shuffled = order.map((i) => packs[i]!);
        assert.deepEqual(planCompaction(shuffled).sort(), planCompaction(packs).sort());
      }),
      { seed: 13, numRuns: 500 },
    );
  });
});

describe('shouldCompact', () => {
  test('waits for minPacks, then follows the plan', () => {
    assert.equal(shouldCompact(packsOf([5, 5])), false);
    assert.equal(shouldCompact(packsOf([5, 5]), { minPacks: 2 }), true);
    assert.equal(shouldCompact(packsOf([1000, 100, 10, 1])), false);
    assert.equal(shouldCompact(packsOf([1000, 100, 10, 10])), true);
  });

  test('more packs than maxPacks always call for compaction', () => {
    assert.equal(shouldCompact(packsOf([1, 2, 4]), { minPacks: 10, maxPacks: 2 }), true);
  });
});
