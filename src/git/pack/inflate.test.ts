import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { Inflater, deflate, inflateAt } from './inflate.js';

function expectBadEntry(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof StowageError && err.code === 'PACK_BAD_ENTRY');
}

describe('inflateAt', () => {
  test('inflates one stream among others and reports the bytes it took', () => {
    const a = Buffer.from('first object '.repeat(50));
    const b = randomBytes(3000);
    const za = deflate(a);
    const zb = deflate(b, 9);
    const buf = Buffer.concat([Buffer.from('xx'), za, zb, Buffer.from('trailer')]);
    const ra = inflateAt(buf, 2, a.length);
    assert.ok(ra);
    assert.equal(ra.consumed, za.length);
    assert.ok(Buffer.from(ra.data).equals(a));
    const rb = inflateAt(buf, 2 + za.length, b.length);
    assert.ok(rb);
    assert.equal(rb.consumed, zb.length);
    assert.ok(Buffer.from(rb.data).equals(b));
  });

  test('round trips any data at any level, followed by anything', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 30 }), (data, level, tail) => {
        const z = deflate(data, level);
        const r = inflateAt(Buffer.concat([z, tail]), 0, data.length);
        assert.ok(r);
        assert.equal(r.consumed, z.length);
        assert.deepEqual(new Uint8Array(r.data), data);
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  test('every strict prefix is "need more input"', () => {
    const data = Buffer.from('some text that compresses, some text that compresses\n'.repeat(20));
    const z = deflateSync(data);
    for (let n = 0; n < z.length; n++) assert.equal(inflateAt(z.subarray(0, n), 0, data.length), undefined, `prefix ${n}`);
    assert.ok(inflateAt(z, 0, data.length));
  });

  test('a wrong declared size or corrupt data is PACK_BAD_ENTRY', () => {
    const data = Buffer.from('hello, hello, hello');
    const z = Buffer.from(deflateSync(data));
    expectBadEntry(() => inflateAt(z, 0, data.length - 1));
    expectBadEntry(() => inflateAt(z, 0, data.length + 1));
    expectBadEntry(() => inflateAt(z, 0, 0));
    const bad = Buffer.from(z);
    bad[bad.length - 1]! ^= 0xff; // adler32
    expectBadEntry(() => inflateAt(bad, 0, data.length));
    expectBadEntry(() => inflateAt(Buffer.from([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff]), 0, 10));
    // The shared handle recovers after errors.
    assert.ok(Buffer.from(inflateAt(z, 0, data.length)!.data).equals(data));
  });

  test('random bytes give a result, undefined or PACK_BAD_ENTRY', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 300 }), (bytes, size) => {
        try {
          const r = inflateAt(bytes, 0, size);
          if (r !== undefined) assert.equal(r.data.length, size);
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'PACK_BAD_ENTRY', String(err));
        }
      }),
      { numRuns: 1000, seed: 6 },
    );
  });
});

describe('deflate', () => {
  test('is byte-identical to zlib.deflateSync at every level, any size', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: -1, max: 9 }), fc.boolean(), (bytes, level, text) => {
        const data = text ? Buffer.from(Buffer.from(bytes).toString('base64').repeat(3)) : Buffer.from(bytes);
        assert.ok(Buffer.from(deflate(data, level)).equals(deflateSync(data, { level })));
      }),
      { numRuns: 300, seed: 14 },
    );
    for (const size of [0, 1, 65535, 65536, 200_000, (1 << 20) + 1]) {
      const data = randomBytes(size);
      assert.ok(Buffer.from(deflate(data)).equals(deflateSync(data)), `random ${size}`);
      const zeros = Buffer.alloc(size);
      assert.ok(Buffer.from(deflate(zeros, 9)).equals(deflateSync(zeros, { level: 9 })), `zeros ${size}`);
    }
    assert.throws(() => deflate(Buffer.from('x'), 10), RangeError);
  });
});

describe('Inflater (streaming)', () => {
  function streamed(z: Uint8Array, size: number, cuts: number[], tail: Uint8Array): { data: Uint8Array; consumed: number } {
    const input = Buffer.concat([z, tail]);
    const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
    points.push(input.length);
    const inf = new Inflater();
    inf.begin(size);
    let consumed = 0;
    let prev = 0;
    for (const p of points) {
      consumed += inf.write(input, prev, p);
      prev = p;
      if (inf.done) break;
    }
    assert.ok(inf.done, 'stream ended');
    return { data: inf.result(), consumed };
  }

  test('any split of the input gives the same bytes and consumed count', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.uint8Array({ minLength: 1, maxLength: 10 }),
        (data, cuts, tail) => {
          const z = deflate(data);
          const r = streamed(z, data.length, cuts, tail);
          assert.equal(r.consumed, z.length);
          assert.deepEqual(new Uint8Array(r.data), data);
        },
      ),
      { numRuns: 300, seed: 8 },
    );
  });

  test('ends exactly at a chunk boundary without waiting for more', () => {
    const data = randomBytes(1000);
    const z = deflate(data);
    const inf = new Inflater();
    inf.begin(data.length);
    assert.equal(inf.write(z, 0, 500), 500);
    assert.equal(inf.done, false);
    assert.equal(inf.write(z, 500, z.length), z.length - 500);
    assert.equal(inf.done, true);
    assert.ok(Buffer.from(inf.result()).equals(data));
  });

  test('a stream longer than declared fails while streaming', () => {
    const data = Buffer.alloc(100000, 7);
    const z = deflate(data);
    const inf = new Inflater();
    inf.begin(1000);
    expectBadEntry(() => inf.write(z, 0, z.length));
    // Reusable after a failure.
    inf.begin(data.length);
    inf.write(z, 0, z.length);
    assert.ok(inf.done);
  });
});

describe('Inflater memory on hostile sizes', () => {
  test('a tiny stream declaring a huge size is refused without allocating the declared size', () => {
    const declared = 400 * 1024 * 1024;
    // In a pack the next entry follows: trailing bytes let the inflater see the stream end.
    const stream = Buffer.concat([deflateSync(Buffer.from('tiny')), Buffer.alloc(32)]);
    const before = process.memoryUsage().arrayBuffers;
    const inflater = new Inflater();
    inflater.begin(declared, 12);
    let grew = 0;
    assert.throws(
      () => {
        inflater.write(stream, 0, stream.length);
        grew = process.memoryUsage().arrayBuffers - before;
        // The stream ended early: the entry inflates to fewer bytes than declared.
        assert.fail('expected the short stream to be refused');
      },
      (err: unknown) => {
        grew = process.memoryUsage().arrayBuffers - before;
        return err instanceof StowageError && err.code === 'PACK_BAD_ENTRY';
      },
    );
    assert.ok(grew < 16 * 1024 * 1024, `inflating ${stream.length} bytes reserved ${grew} bytes`);
    const beforeWhole = process.memoryUsage().arrayBuffers;
    let grewWhole = 0;
    assert.throws(
      () => inflateAt(stream, 0, declared),
      (err: unknown) => {
        grewWhole = process.memoryUsage().arrayBuffers - beforeWhole;
        return err instanceof StowageError && err.code === 'PACK_BAD_ENTRY';
      },
    );
    assert.ok(grewWhole < 16 * 1024 * 1024, `inflateAt of ${stream.length} bytes reserved ${grewWhole} bytes`);
  });
});
