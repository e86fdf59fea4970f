import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteParts } from './byte-parts.js';

const ZEROS = Buffer.alloc(4096);

/** Bytes and a split of them into pieces (views of one buffer, empty pieces allowed). */
const split = fc
  .tuple(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 8 }))
  .map(([bytes, cuts]) => {
    const whole = Buffer.from(bytes);
    const at = [...new Set([0, ...cuts.map((c) => c % (whole.length + 1)), whole.length])].sort((a, b) => a - b);
    const pieces = at.slice(1).map((end, i) => whole.subarray(at[i] as number, end));
    return { whole, pieces };
  });

describe('ByteParts', () => {
  test('any split reads back as the whole: slice, copyTo, copy, isZero and sub', () => {
    fc.assert(
      fc.property(split, fc.nat(1000), fc.nat(1000), ({ whole, pieces }, x, y) => {
        const p = ByteParts.of(pieces);
        assert.equal(p.length, whole.length);
        assert.deepEqual(p.copy(), whole);
        const [from, to] = [Math.min(x, y) % (whole.length + 1), Math.max(x, y) % (whole.length + 1)].sort((a, b) => a - b) as [number, number];
        assert.deepEqual(p.slice(from, to), whole.subarray(from, to));
        const out = Buffer.alloc(to - from + 3, 0xee);
        p.copyTo(out, 2, from, to);
        assert.deepEqual(out.subarray(2, 2 + to - from), whole.subarray(from, to));
        assert.equal(out[0], 0xee);
        assert.equal(out[out.length - 1], 0xee);
        assert.equal(p.isZero(from, to, ZEROS), whole.subarray(from, to).every((b) => b === 0));
        const sub = p.sub(from, to);
        assert.deepEqual(sub.copy(), whole.subarray(from, to));
      }),
    );
  });

  test('a range inside one piece is a view of it, not a copy', () => {
    const a = Buffer.from('abcdefgh');
    const b = Buffer.from('ijklmnop');
    const p = ByteParts.of([a, b]);
    const v = p.view(9, 12) as Buffer;
    assert.equal(v.toString(), 'jkl');
    b[1] = 0x4a; // 'J'
    assert.equal(v.toString(), 'Jkl');
    assert.equal(p.view(6, 10), undefined, 'a range across two pieces has no view');
    assert.equal(p.slice(6, 10).toString(), 'ghiJ');
  });

  test('a lone buffer is one piece; zeros are told apart across pieces', () => {
    const p = ByteParts.of(new Uint8Array([0, 0, 0, 1]));
    assert.equal(p.length, 4);
    assert.equal(p.isZero(0, 3, ZEROS), true);
    assert.equal(p.isZero(0, 4, ZEROS), false);
    const q = ByteParts.of([Buffer.alloc(3), Buffer.from([0, 0, 5]), Buffer.alloc(2)]);
    assert.equal(q.isZero(0, 5, ZEROS), true);
    assert.equal(q.isZero(0, 6, ZEROS), false);
    assert.equal(q.isZero(6, 8, ZEROS), true);
    assert.equal(ByteParts.of([]).length, 0);
  });
});
