import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ObjectId } from '../hash/object-id.js';
import { encodeIdx, encodeIdxSorted, type IdxEntry } from './idx.js';

const CHECKSUM = 'cd'.repeat(20) as ObjectId;

describe('encodeIdxSorted', () => {
  test('property: the same bytes as encodeIdx, small and 64-bit offsets alike', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 12, max: 2 ** 40 }), fc.nat()), { maxLength: 200 }),
        fc.option(fc.integer({ min: 12, max: 2 ** 32 })),
        (rows, limit) => {
          const entries: IdxEntry[] = rows.map(([n, offset, crc32]) => ({ oid: createHash('sha1').update(String(n)).digest('hex') as ObjectId, offset, crc32: crc32 >>> 0 }));
          const sorted = entries.slice().sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : a.offset - b.offset));
          const names = Buffer.concat(sorted.map((e) => Buffer.from(e.oid, 'hex')));
          const opts = limit === null ? {} : { off32Limit: limit };
          const fast = encodeIdxSorted(names, sorted.map((e) => e.offset), sorted.map((e) => e.crc32), CHECKSUM, opts);
          assert.deepEqual(Buffer.from(fast), Buffer.from(encodeIdx(entries, CHECKSUM, opts)));
        },
      ),
      { seed: 3, numRuns: 200 },
    );
  });

  test('refuses unsorted names and columns of different lengths', () => {
    const a = Buffer.alloc(20, 1);
    const b = Buffer.alloc(20, 2);
    assert.throws(() => encodeIdxSorted(Buffer.concat([b, a]), [12, 40], [0, 0], CHECKSUM), RangeError);
    assert.throws(() => encodeIdxSorted(Buffer.concat([a, b]), [12], [0, 0], CHECKSUM), RangeError);
  });
});
