import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ObjectId } from '../../git/hash/object-id.js';
import { RawOidMap } from './raw-oid-map.js';

describe('RawOidMap', () => {
  test('behaves like a Map of hex ids (first value wins), through growth and colliding prefixes', () => {
    const id = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as ObjectId);
    // Ids sharing their first 4 bytes all hash to one slot: linear probing must still tell them apart.
    const colliding = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => `abcdef01${Buffer.from(b).toString('hex')}` as ObjectId);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(id, colliding), fc.integer({ min: 1, max: 255 })), { maxLength: 3000 }), (pairs) => {
        const m = new RawOidMap(4);
        const ref = new Map<ObjectId, number>();
        for (const [oid, v] of pairs) {
          const prev = m.setIfAbsentHex(oid, v);
          assert.equal(prev, ref.get(oid) ?? 0);
          if (!ref.has(oid)) ref.set(oid, v);
        }
        assert.equal(m.size, ref.size);
        assert.deepEqual(new Map(m.entries()), ref);
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  test('reserve() makes room once; every id stays findable at three-quarters load', () => {
    const m = new RawOidMap();
    m.reserve(3000);
    const before = m.raw().vals.length;
    const ids = Array.from({ length: 3000 }, (_, k) => Buffer.alloc(20, 0).fill(k % 251, 0, 4).fill(k >> 8, 4, 8).fill(k & 255, 8, 20));
    ids.forEach((b, k) => assert.equal(m.setIfAbsent(b, 0, (k % 255) + 1), 0));
    assert.equal(m.raw().vals.length, before, 'no rehash after reserve');
    ids.forEach((b, k) => assert.equal(m.setIfAbsent(b, 0, 1), (k % 255) + 1));
    assert.equal(m.size, 3000);
  });

  test('reads ids in place from a larger buffer', () => {
    const buf = Buffer.alloc(64, 7);
    const m = new RawOidMap();
    assert.equal(m.setIfAbsent(buf, 10, 3), 0);
    assert.equal(m.setIfAbsent(Buffer.alloc(20, 7), 0, 9), 3);
    assert.deepEqual([...m.entries()], [['07'.repeat(20), 3]]);
  });
});
