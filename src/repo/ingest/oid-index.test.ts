import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ObjectId } from '../../git/hash/object-id.js';
import { EntryTable } from './entry-table.js';
import { OidIndex, sortByOid } from './oid-index.js';

/** A table of `ids` (hex) in entry order. */
function tableOf(ids: readonly string[]): EntryTable {
  const t = new EntryTable(4);
  ids.forEach((id, k) => {
    const i = t.add(k * 10 + 12, 2, 10, 0, 3, 1);
    t.setOidHex(i, id as ObjectId);
  });
  return t;
}

function sha(n: number): string {
  return createHash('sha1').update(String(n)).digest('hex');
}

describe('OidIndex', () => {
  test('property: finds the first entry of every id, reports duplicates, misses the rest', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 400 }), (ns) => {
        const ids = ns.map(sha);
        const t = tableOf(ids);
        const index = new OidIndex(t);
        const first = new Map<string, number>();
        ids.forEach((id, i) => {
          const dup = index.add(i);
          assert.equal(dup, first.get(id) ?? -1);
          if (!first.has(id)) first.set(id, i);
        });
        assert.equal(index.size, first.size);
        for (const [id, i] of first) {
          assert.equal(index.get(id as ObjectId), i);
          assert.equal(index.findRaw(Buffer.from(id, 'hex'), 0), i);
        }
        assert.equal(index.get(sha(1000) as ObjectId), undefined);
        assert.equal(index.has(sha(1001) as ObjectId), false);
        assert.equal(index.get('not hex' as ObjectId), undefined);
      }),
      { seed: 11, numRuns: 100 },
    );
  });

  test('reserve() and growth keep every id', () => {
    const ids = Array.from({ length: 5000 }, (_, k) => sha(k));
    const t = tableOf(ids);
    const index = new OidIndex(t);
    index.reserve(10);
    for (let i = 0; i < 2500; i++) index.add(i);
    index.reserve(5000);
    for (let i = 2500; i < 5000; i++) index.add(i);
    for (let i = 0; i < 5000; i++) assert.equal(index.get(ids[i] as ObjectId), i);
  });
});

describe('sortByOid', () => {
  test('property: the order of sorting the hex ids, equal ids by entry number', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 300 }), (ns) => {
        const ids = ns.map(sha);
        const expected = ids.map((id, i) => ({ id, i })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.i - b.i)).map((e) => e.i);
        assert.deepEqual([...sortByOid(tableOf(ids))], expected);
      }),
      { seed: 5, numRuns: 200 },
    );
  });

  test('ids sharing a long prefix (crafted to collide) sort right and fast', () => {
    // 3000 ids with the same first 4 bytes: one bucket, which insertion sort would take quadratically.
    const ids = Array.from({ length: 3000 }, (_, k) => `00000000${sha(k).slice(8)}`);
    const t = tableOf(ids);
    const order = [...sortByOid(t)];
    const expected = ids.map((id, i) => ({ id, i })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.i - b.i)).map((e) => e.i);
    assert.deepEqual(order, expected);
    const index = new OidIndex(t);
    for (let i = 0; i < ids.length; i++) assert.equal(index.add(i), -1);
    for (let i = 0; i < ids.length; i++) assert.equal(index.get(ids[i] as ObjectId), i);
  });
});
