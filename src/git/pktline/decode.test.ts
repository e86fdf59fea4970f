import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LimitError, ProtocolError, StowageError } from '../../core/errors.js';
import { PKT_LINE_MAX, PKT_PAYLOAD_MAX } from '../../core/limits.js';
import { decodePktLine, decodePktLines, type PktLine } from './decode.js';
import { DELIM_PKT, FLUSH_PKT, RESPONSE_END_PKT, encodePkt, encodePktLine, pktLineText } from './encode.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const pktLineArb: fc.Arbitrary<PktLine> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }).map((payload): PktLine => ({ kind: 'data', payload })) },
  { weight: 1, arbitrary: fc.constantFrom<PktLine>({ kind: 'flush' }, { kind: 'delim' }, { kind: 'response-end' }) },
);

function plain(line: PktLine): unknown {
  return line.kind === 'data' ? { kind: 'data', payload: Buffer.from(line.payload) } : { kind: line.kind };
}

describe('decodePktLine', () => {
  test('decodes data and the special packets', () => {
    assert.deepEqual(plain((decodePktLine(b('0009hello')) as { line: PktLine }).line), { kind: 'data', payload: b('hello') });
    assert.deepEqual(decodePktLine(b('0000rest')), { kind: 'line', line: { kind: 'flush' }, consumed: 4 });
    assert.deepEqual(decodePktLine(b('0001')), { kind: 'line', line: { kind: 'delim' }, consumed: 4 });
    assert.deepEqual(decodePktLine(b('0002')), { kind: 'line', line: { kind: 'response-end' }, consumed: 4 });
    const empty = decodePktLine(b('0004'));
    assert.equal(empty.kind === 'line' && empty.line.kind === 'data' && empty.line.payload.length, 0);
    assert.equal((decodePktLine(b('000AabcdeX')) as { consumed: number }).consumed, 10, 'upper-case hex is accepted like git');
  });

  test('asks for more bytes', () => {
    assert.deepEqual(decodePktLine(b('')), { kind: 'need-more', bytesNeeded: 4 });
    assert.deepEqual(decodePktLine(b('00')), { kind: 'need-more', bytesNeeded: 2 });
    assert.deepEqual(decodePktLine(b('0009hel')), { kind: 'need-more', bytesNeeded: 2 });
  });

  test('rejects bad and reserved lengths and oversize lines', () => {
    for (const s of ['000g', 'zzzz', '-001', ' 004', '0003']) {
      assert.throws(() => decodePktLine(b(s)), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_BAD_LENGTH', s);
    }
    assert.throws(() => decodePktLine(b((PKT_LINE_MAX + 1).toString(16))), (e: unknown) => e instanceof LimitError && e.code === 'PKT_TOO_LONG');
    assert.equal(decodePktLine(b('fff0')).kind, 'need-more');
  });

  test('decode(encode(x)) == x', () => {
    fc.assert(
      fc.property(pktLineArb, (line) => {
        const bytes = encodePkt(line);
        const step = decodePktLine(bytes);
        assert.equal(step.kind, 'line');
        if (step.kind !== 'line') return;
        assert.equal(step.consumed, bytes.length);
        assert.deepEqual(plain(step.line), plain(line));
      }),
    );
  });

  test('decodePktLines reads a stream and refuses a truncated one', () => {
    const lines: PktLine[] = [{ kind: 'data', payload: b('a\n') }, { kind: 'delim' }, { kind: 'flush' }];
    const bytes = Buffer.concat(lines.map(encodePkt));
    assert.deepEqual(decodePktLines(bytes).map(plain), lines.map(plain));
    assert.throws(() => decodePktLines(bytes.subarray(0, 3)), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_TRUNCATED');
  });

  test('random bytes only throw StowageErrors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodePktLines(bytes);
        } catch (e) {
          assert.ok(e instanceof StowageError && (e instanceof ProtocolError || e instanceof LimitError));
        }
      }),
    );
  });
});

describe('encodePktLine', () => {
  test('frames strings as UTF-8 and refuses payloads past the limit', () => {
    assert.deepEqual(Buffer.from(encodePktLine('é\n')), b('0007\xc3\xa9\n'));
    assert.equal(encodePktLine(new Uint8Array(PKT_PAYLOAD_MAX)).length, PKT_LINE_MAX);
    assert.throws(() => encodePktLine(new Uint8Array(PKT_PAYLOAD_MAX + 1)), (e: unknown) => e instanceof LimitError && e.code === 'PKT_TOO_LONG');
    assert.deepEqual([FLUSH_PKT, DELIM_PKT, RESPONSE_END_PKT].map((x) => Buffer.from(x).toString()), ['0000', '0001', '0002']);
  });

  test('pktLineText strips exactly one trailing LF', () => {
    assert.equal(pktLineText(b('want x\n')), 'want x');
    assert.equal(pktLineText(b('a\n\n')), 'a\n');
    assert.equal(pktLineText({ kind: 'data', payload: b('no-lf') }), 'no-lf');
    assert.throws(() => pktLineText({ kind: 'flush' }), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_UNEXPECTED');
  });
});
