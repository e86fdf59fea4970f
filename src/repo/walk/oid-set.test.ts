import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { ObjectId } from '../../git/hash/object-id.js';
import { OidSet } from './oid-set.js';

const hex = (b: Uint8Array): ObjectId => Buffer.from(b).toString('hex') as ObjectId;

describe('OidSet', () => {
  test('property: behaves as a Set of hex ids through both interfaces', () => {
    // Few distinct first bytes force long probe chains and equal leading words.
    const oid = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => {
      b[0] = b[0]! & 3;
      if (b[5]! < 40) b.fill(0, 0, 16);
      return b;
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), oid), { maxLength: 400 }), (ops) => {
        const set = new OidSet(4);
        const ref = new Set<string>();
        for (const [raw, b] of ops) {
          const h = hex(b);
          const padded = Buffer.concat([Buffer.from([9, 9, 9]), b]);
          const added = raw ? set.addRaw(padded, 3) : set.add(h);
          assert.equal(added, !ref.has(h));
          ref.add(h);
          assert.ok(set.has(h) && set.hasRaw(padded, 3));
        }
        assert.equal(set.size, ref.size);
        assert.deepEqual(set.toArray().sort(), [...ref].sort());
        const c = set.clone();
        c.add('f'.repeat(40) as ObjectId);
        assert.equal(set.has('f'.repeat(40) as ObjectId), ref.has('f'.repeat(40)));
      }),
      { seed: 5, numRuns: 200 },
    );
  });

  test('holds the all-zero id and grows past its initial capacity', () => {
    const set = new OidSet(2);
    const zero = '0'.repeat(40) as ObjectId;
    assert.equal(set.has(zero), false);
    assert.ok(set.add(zero));
    assert.ok(!set.add(zero));
    const ids = Array.from({ length: 5000 }, () => hex(randomBytes(20)));
    for (const id of ids) set.add(id);
    for (const id of ids) assert.ok(set.has(id));
    assert.equal(set.size, 5001);
    assert.ok(set.toArray().includes(zero));
  });
});
