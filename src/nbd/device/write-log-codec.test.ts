import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { encodeSeal, parseLogName, parseSeal, parseTrailer, readFooter, sealName, segmentName, trailerLength, writeTrailer, type LogRecord } from './write-log-codec.js';

const record: fc.Arbitrary<LogRecord> = fc.oneof(
  fc.record({ index: fc.integer({ min: 0, max: 2 ** 41 }), offset: fc.integer({ min: 0, max: 4096 }), length: fc.integer({ min: 1, max: 4096 }), tomb: fc.constant(false) }),
  fc.record({ index: fc.integer({ min: 0, max: 2 ** 41 }), offset: fc.constant(0), length: fc.constant(0), tomb: fc.constant(true) }),
  fc.record({ index: fc.integer({ min: 0, max: 2 ** 41 }), offset: fc.constant(0), length: fc.constant(0), tomb: fc.constant(false), newer: fc.constant(true as const) }),
).map((r) => ({ ...r })); // plain objects, as parsed

/** A segment of `records` whose data area is just long enough for all of them. */
function segment(records: readonly LogRecord[]): Buffer {
  const data = records.reduce((m, r) => Math.max(m, r.offset + r.length), 0);
  const out = Buffer.alloc(data + trailerLength(records.length));
  writeTrailer(records, out, data);
  return out;
}

function isStore(err: unknown): boolean {
  return err instanceof StowageError && err.code === 'STORE_IO';
}

describe('write log codec', () => {
  test('trailer round trip, from the exact tail or the whole segment', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), (records) => {
        const seg = segment(records);
        assert.deepEqual(parseTrailer('k', seg, seg.byteLength), records);
        const tail = seg.subarray(seg.byteLength - trailerLength(records.length));
        assert.equal(readFooter('k', tail.subarray(tail.byteLength - 20), seg.byteLength), tail.byteLength);
        assert.deepEqual(parseTrailer('k', tail, seg.byteLength), records);
      }),
    );
  });

  test('any change of one trailer or footer byte is detected', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 20 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (records, at, flip) => {
        const seg = segment(records);
        const t = trailerLength(records.length);
        const pos = seg.byteLength - t + (at % t);
        seg[pos] = (seg[pos] as number) ^ flip;
        assert.throws(() => parseTrailer('k', seg, seg.byteLength), isStore);
      }),
    );
  });

  test('a record reaching past the data area, or a tail too short, is damage', () => {
    const recs: LogRecord[] = [{ index: 3, offset: 0, length: 100, tomb: false }];
    const seg = segment(recs);
    // The same trailer claimed for a segment whose data area is shorter.
    assert.throws(() => parseTrailer('k', seg.subarray(50), seg.byteLength - 50), isStore);
    assert.throws(() => readFooter('k', Buffer.alloc(10), 10), isStore);
    assert.throws(() => parseTrailer('k', seg.subarray(seg.byteLength - 30), seg.byteLength), isStore);
  });

  test('random bytes throw only StoreError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(1000), (bytes, extra) => {
        try {
          parseTrailer('k', bytes, bytes.byteLength + extra);
        } catch (err) {
          assert.ok(isStore(err), String(err));
        }
      }),
    );
  });

  test('key names and seals', () => {
    assert.equal(segmentName(7, 12), '000000000007-000000000012');
    assert.deepEqual(parseLogName(segmentName(7, 12)), { kind: 'segment', epoch: 7, seq: 12 });
    assert.deepEqual(parseLogName(sealName(7)), { kind: 'seal', epoch: 7 });
    assert.ok(sealName(7) > segmentName(7, 999_999_999_999), 'a seal sorts after its epoch’s segments');
    assert.equal(parseLogName('7-12'), undefined);
    assert.equal(parseLogName('000000000007-000000000012.tmp'), undefined);
    const names = [segmentName(1, 1), segmentName(2, 5)];
    assert.deepEqual(parseSeal('s', encodeSeal(names)), names);
    assert.throws(() => parseSeal('s', Buffer.from('{"accepted":["x"]}')), isStore);
    assert.throws(() => parseSeal('s', Buffer.from('nope')), isStore);
  });
});
