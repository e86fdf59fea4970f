import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { applyDelta, createDelta, deltaSizes } from './delta.js';

function expectBadDelta(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof StowageError && err.code === 'PACK_BAD_DELTA');
}

/** A target made from the base by random edits: the case deltas exist for. */
const similarArb = fc
  .tuple(
    fc.uint8Array({ minLength: 0, maxLength: 4000 }),
    fc.array(
      fc.record({
        at: fc.nat(),
        del: fc.nat({ max: 64 }),
        ins: fc.uint8Array({ maxLength: 64 }),
      }),
      { maxLength: 12 },
    ),
  )
  .map(([base, edits]) => {
    let t = Buffer.from(base);
    for (const e of edits) {
      const at = t.length === 0 ? 0 : e.at % t.length;
      t = Buffer.concat([t.subarray(0, at), e.ins, t.subarray(Math.min(t.length, at + e.del))]);
    }
    return { base: Buffer.from(base), target: t };
  });

describe('applyDelta', () => {
  test('a hand-made delta', () => {
    const base = Buffer.from('0123456789abcdef');
    // base 16, result 9; copy 4 at offset 10 (0x91 off1=10 size1=4); insert "xyz"; copy 2 at 0.
    const delta = Uint8Array.from([16, 9, 0x91, 10, 4, 3, 0x78, 0x79, 0x7a, 0x90, 2]);
    assert.equal(Buffer.from(applyDelta(base, delta)).toString(), 'abcdxyz01');
    assert.deepEqual(deltaSizes(delta), { baseSize: 16, resultSize: 9 });
  });

  test('a copy with no size bytes copies 0x10000', () => {
    const base = randomBytes(0x10000);
    const delta = Uint8Array.from([0x80, 0x80, 0x04, 0x80, 0x80, 0x04, 0x80]);
    assert.ok(Buffer.from(applyDelta(base, delta)).equals(base));
  });

  test('rejects inconsistent deltas with PACK_BAD_DELTA', () => {
    const base = Buffer.from('0123456789');
    expectBadDelta(() => applyDelta(base, Uint8Array.from([9, 1, 1, 0x41])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 2, 1, 0x41])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 1, 2, 0x41, 0x42])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 1, 0])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 4, 0x91, 8, 4])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 4, 0x91, 8])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 4, 3, 0x41])));
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10])));
    // A tiny delta claiming a huge result is refused before allocating it.
    expectBadDelta(() => applyDelta(base, Uint8Array.from([10, 0xff, 0xff, 0xff, 0xff, 0x07, 0x80])));
  });

  test('random bytes as a delta only throw PACK_BAD_DELTA', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 200 }), fc.boolean(), (base, delta, fixBase) => {
        const d = Buffer.from(delta);
        // Half the time, a matching base size so the instructions themselves are exercised.
        if (d.length > 0 && fixBase) d[0] = base.length & 0x7f;
        try {
          const out = applyDelta(base, d);
          assert.equal(out.length, deltaSizes(d).resultSize);
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'PACK_BAD_DELTA', String(err));
        }
      }),
      { numRuns: 3000, seed: 9 },
    );
  });
});

describe('createDelta', () => {
  test('applies back to the target for similar buffers, and is small', () => {
    fc.assert(
      fc.property(similarArb, ({ base, target }) => {
        const delta = createDelta(base, target);
        assert.deepEqual(deltaSizes(delta), { baseSize: base.length, resultSize: target.length });
        assert.ok(Buffer.from(applyDelta(base, delta)).equals(target));
      }),
      { numRuns: 500, seed: 10 },
    );
    const base = randomBytes(100_000);
    const target = Buffer.concat([base.subarray(0, 40_000), Buffer.from('inserted'), base.subarray(40_100)]);
    const delta = createDelta(base, target);
    assert.ok(delta.length < 64, `delta of a one-edit 100 KB file is ${delta.length} bytes`);
    assert.ok(Buffer.from(applyDelta(base, delta)).equals(target));
  });

  test('applies back for unrelated and repetitive buffers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 3000 }), (base, target) => {
        assert.ok(Buffer.from(applyDelta(base, createDelta(base, target))).equals(Buffer.from(target)));
      }),
      { numRuns: 300, seed: 11 },
    );
    const rep = Buffer.alloc(200_000, 0x61);
    const rep2 = Buffer.concat([rep.subarray(0, 150_000), Buffer.from('b'), rep]);
    const d = createDelta(rep, rep2);
    assert.ok(Buffer.from(applyDelta(rep, d)).equals(rep2));
    assert.ok(d.length < 100, `delta of repetitive data is ${d.length} bytes`);
  });

  test('copies longer than one instruction can hold are split', () => {
    const base = randomBytes(0x1000000 + 100);
    const target = Buffer.concat([base, Buffer.from('end')]);
    const d = createDelta(base, target);
    assert.ok(Buffer.from(applyDelta(base, d)).equals(target));
  });
});
