import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { OBJECT_SIZE_MAX } from '../../core/limits.js';
import type { ObjectId } from '../hash/object-id.js';
import { PACK_ENTRY_CODE, type PackEntryType, decodeEntryHeader, encodeEntryHeader } from './entry.js';

const types: PackEntryType[] = ['commit', 'tree', 'blob', 'tag', 'ofs-delta', 'ref-delta'];
const oidArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as ObjectId);

function expectBadEntry(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof StowageError && err.code === 'PACK_BAD_ENTRY');
}

describe('entry header', () => {
  test('codes follow gitformat-pack', () => {
    assert.deepEqual(PACK_ENTRY_CODE, { commit: 1, tree: 2, blob: 3, tag: 4, 'ofs-delta': 6, 'ref-delta': 7 });
  });

  test('known encodings', () => {
    // blob of 10 bytes: type 3, size fits the first nibble? no: 10 < 16, one byte 0x3a.
    assert.deepEqual([...encodeEntryHeader('blob', 10)], [0x3a]);
    // commit of 165 bytes: 165 = 0xa5 -> low nibble 5 with MSB, then 165 >> 4 = 10.
    assert.deepEqual([...encodeEntryHeader('commit', 165)], [0x95, 0x0a]);
    // ofs-delta distance 128 encodes as 0x80 0x00 (the +1 per continuation rule).
    assert.deepEqual([...encodeEntryHeader('ofs-delta', 7, { distance: 128 })], [0x67, 0x80, 0x00]);
    assert.deepEqual([...encodeEntryHeader('ofs-delta', 7, { distance: 127 })], [0x67, 0x7f]);
    const h = decodeEntryHeader(Uint8Array.from([0x67, 0x80, 0x00]), 0, 1000);
    assert.deepEqual(h, { type: 'ofs-delta', size: 7, headerLength: 3, baseOffset: 872 });
  });

  test('round trips at any position, and every prefix is "need more"', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.integer({ min: 0, max: OBJECT_SIZE_MAX }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        oidArb,
        fc.nat({ max: 8 }),
        (type, size, distance, id, pad) => {
          const base = type === 'ofs-delta' ? { distance } : type === 'ref-delta' ? { id } : undefined;
          const bytes = encodeEntryHeader(type, size, base);
          const buf = new Uint8Array(pad + bytes.length + 3);
          buf.set(bytes, pad);
          const entryOffset = distance + 12;
          const h = decodeEntryHeader(buf, pad, entryOffset);
          assert.ok(h);
          assert.equal(h.type, type);
          assert.equal(h.size, size);
          assert.equal(h.headerLength, bytes.length);
          if (type === 'ofs-delta') assert.equal(h.baseOffset, 12);
          if (type === 'ref-delta') assert.equal(h.baseId, id);
          for (let n = 0; n < bytes.length; n++) {
            assert.equal(decodeEntryHeader(bytes.subarray(0, n), 0, entryOffset), undefined);
          }
        },
      ),
      { numRuns: 2000, seed: 1 },
    );
  });

  test('rejects type codes 0 and 5', () => {
    expectBadEntry(() => decodeEntryHeader(Uint8Array.from([0x05]), 0, 12));
    expectBadEntry(() => decodeEntryHeader(Uint8Array.from([0x55]), 0, 12));
  });

  test('rejects sizes above OBJECT_SIZE_MAX and overlong size fields', () => {
    const big = encodeEntryHeader('blob', OBJECT_SIZE_MAX);
    assert.equal(decodeEntryHeader(big, 0, 12)?.size, OBJECT_SIZE_MAX);
    expectBadEntry(() => decodeEntryHeader(encodeEntryHeader('blob', OBJECT_SIZE_MAX + 1), 0, 12));
    // Zero-valued continuation bytes keep the value small but the field long.
    expectBadEntry(() => decodeEntryHeader(Uint8Array.from([0xb0, ...Array(10).fill(0x80), 0]), 0, 12));
  });

  test('rejects ofs-delta bases before the first entry or at the entry itself', () => {
    const d = encodeEntryHeader('ofs-delta', 3, { distance: 100 });
    assert.equal(decodeEntryHeader(d, 0, 112)?.baseOffset, 12);
    expectBadEntry(() => decodeEntryHeader(d, 0, 111));
    // distance 0 is not encodable by us but may arrive on the wire.
    expectBadEntry(() => decodeEntryHeader(Uint8Array.from([0x63, 0x00]), 0, 500));
    // A distance that runs past safe integers.
    expectBadEntry(() => decodeEntryHeader(Uint8Array.from([0x63, ...Array(12).fill(0xff), 0x7f]), 0, 500));
  });

  test('random bytes decode or throw PACK_BAD_ENTRY only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 2 ** 40 }), (bytes, at) => {
        try {
          const h = decodeEntryHeader(bytes, 0, at);
          if (h !== undefined) assert.ok(h.headerLength <= bytes.length);
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'PACK_BAD_ENTRY', String(err));
        }
      }),
      { numRuns: 2000, seed: 2 },
    );
  });
});
