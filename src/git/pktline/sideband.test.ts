import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LimitError, ProtocolError, ValidationError } from '../../core/errors.js';
import { decodePktLines } from './decode.js';
import { FLUSH_PKT, encodePktLine } from './encode.js';
import { SIDEBAND_64K_MAX, SIDEBAND_MAX, decodeSidebandPayload, decodeSidebandStream, encodeSideband, frameSideband } from './sideband.js';

describe('sideband', () => {
  test('the maximum payloads fill a pkt-line of 65520 / 1000 bytes', () => {
    assert.equal(encodeSideband(1, new Uint8Array(SIDEBAND_64K_MAX), SIDEBAND_64K_MAX).length, 65520);
    assert.equal(encodeSideband(1, new Uint8Array(SIDEBAND_MAX), SIDEBAND_MAX).length, 1000);
  });

  test('splits data into packets of at most maxPayload bytes on the band', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 1200 }), fc.constantFrom<1 | 2 | 3>(1, 2, 3), (data, max, band) => {
        const bytes = encodeSideband(band, data, max);
        const lines = decodePktLines(bytes);
        assert.equal(lines.length, Math.ceil(data.length / max));
        for (const l of lines) {
          assert.ok(l.kind === 'data' && l.payload.length <= max + 1 && l.payload[0] === band);
        }
        const stream = decodeSidebandStream(Buffer.concat([bytes, FLUSH_PKT]));
        const got = [stream.data, stream.progress, stream.error][band - 1];
        assert.deepEqual(Buffer.from(got as Uint8Array), Buffer.from(data));
        assert.equal(stream.flushed, true);
      }),
    );
  });

  test('frameSideband gives the bytes of encodeSideband for any split of the data, without copying it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 1200 }),
        fc.constantFrom<1 | 2 | 3>(1, 2, 3),
        (parts, max, band) => {
          const framed = frameSideband(band, parts, max);
          assert.deepEqual(Buffer.concat(framed), Buffer.from(encodeSideband(band, Buffer.concat(parts), max)));
          const inputs = new Set<ArrayBufferLike>(parts.map((p) => p.buffer));
          const views = framed.filter((f) => inputs.has(f.buffer));
          assert.equal(
            views.reduce((n, v) => n + v.length, 0),
            parts.reduce((n, p) => n + p.length, 0),
            'every data byte is a view of the input',
          );
        },
      ),
    );
    assert.throws(() => frameSideband(1, [new Uint8Array(1)], SIDEBAND_64K_MAX + 1), (e: unknown) => e instanceof LimitError);
    assert.throws(() => frameSideband(1, [new Uint8Array(1)], 0), (e: unknown) => e instanceof ValidationError);
    assert.deepEqual(frameSideband(1, [new Uint8Array(0)], 10), []);
  });

  test('demultiplexes interleaved bands', () => {
    const bytes = Buffer.concat([
      encodeSideband(2, Buffer.from('Counting objects\r'), SIDEBAND_MAX),
      encodeSideband(1, Buffer.from('PACK'), SIDEBAND_MAX),
      encodeSideband(2, Buffer.from('done\n'), SIDEBAND_MAX),
      encodeSideband(1, Buffer.from('data'), SIDEBAND_MAX),
      encodeSideband(3, Buffer.from('fatal\n'), SIDEBAND_MAX),
    ]);
    const s = decodeSidebandStream(bytes);
    assert.equal(Buffer.from(s.data).toString(), 'PACKdata');
    assert.equal(Buffer.from(s.progress).toString(), 'Counting objects\rdone\n');
    assert.equal(Buffer.from(s.error).toString(), 'fatal\n');
    assert.equal(s.flushed, false);
  });

  test('rejects bad bands and bad sizes', () => {
    assert.throws(() => decodeSidebandPayload(Buffer.from([4, 1])), (e: unknown) => e instanceof ProtocolError);
    assert.throws(() => decodeSidebandPayload(new Uint8Array(0)), (e: unknown) => e instanceof ProtocolError);
    assert.throws(() => decodeSidebandStream(encodePktLine('\x05x')), (e: unknown) => e instanceof ProtocolError);
    assert.throws(() => encodeSideband(1, new Uint8Array(1), SIDEBAND_64K_MAX + 1), (e: unknown) => e instanceof LimitError);
    assert.throws(() => encodeSideband(1, new Uint8Array(1), 0), (e: unknown) => e instanceof ValidationError);
    assert.equal(encodeSideband(1, new Uint8Array(0), 10).length, 0);
  });
});
