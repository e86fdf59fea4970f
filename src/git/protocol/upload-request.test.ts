import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { encodeHaves, encodeUploadRequest, parseNegotiationLine, parseUploadRequest, type UploadRequest } from './upload-request.js';
import { formatAck, parseAck, parseShallowLines, formatShallowLines } from './upload-response.js';
import { capabilityArb, linesArb, oidArb, onlyStowageErrors, textLines } from './arbitraries.test-util.js';

const A = 'a'.repeat(40) as ObjectId;
const B = 'b'.repeat(40) as ObjectId;

function dataLines(bytes: Uint8Array): Uint8Array[] {
  return decodePktLines(bytes).flatMap((l) => (l.kind === 'data' ? [l.payload] : []));
}

describe('v0/v1 upload request', () => {
  test('parses wants with capabilities, shallows and a depth', () => {
    const req = parseUploadRequest(
      textLines(`want ${A} multi_ack_detailed side-band-64k ofs-delta agent=git/2.39`, `want ${B}`, `want ${A}`, `shallow ${B}`, 'deepen 3'),
    );
    assert.deepEqual(req.wants, [A, B]);
    assert.deepEqual(req.shallows, [B]);
    assert.equal(req.depth, 3);
    assert.deepEqual(req.capabilities.map((c) => c.name), ['multi_ack_detailed', 'side-band-64k', 'ofs-delta', 'agent']);
  });

  test('accepts upper-case ids and lowers them', () => {
    assert.deepEqual(parseUploadRequest(textLines(`want ${A.toUpperCase()}`)).wants, [A]);
  });

  test('refuses malformed lines and conflicting deepen requests', () => {
    assert.throws(() => parseUploadRequest(textLines('want 1234')), { code: 'PROTO_BAD_WANT' });
    assert.throws(() => parseUploadRequest(textLines('wants x')), { code: 'PROTO_BAD_WANT' });
    assert.throws(() => parseUploadRequest(textLines('deepen 0')), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseUploadRequest(textLines('deepen -1')), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseUploadRequest(textLines('deepen 1', 'deepen-since 5')), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseUploadRequest(textLines('deepen 1', 'deepen-not main')), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseUploadRequest(textLines('filter blob:none', 'filter blob:none')), { code: 'PROTO_BAD_REQUEST' });
  });

  test('round trip', () => {
    const reqArb: fc.Arbitrary<UploadRequest> = fc
      .record({
        wants: fc.uniqueArray(oidArb, { minLength: 1, maxLength: 5 }),
        capabilities: fc.array(capabilityArb, { maxLength: 5 }),
        shallows: fc.uniqueArray(oidArb, { maxLength: 3 }),
        depth: fc.option(fc.integer({ min: 1, max: 0x7fffffff }), { nil: undefined }),
        deepenSince: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
        deepenNot: fc.array(fc.stringMatching(/^[a-z][a-z0-9/]{0,20}$/), { maxLength: 2 }),
        filter: fc.option(fc.constantFrom('blob:none', 'tree:0', 'blob:limit=1024'), { nil: undefined }),
      })
      .filter((r) => r.depth === undefined || (r.deepenSince === undefined && r.deepenNot.length === 0))
      .map((r) => {
        const out: { -readonly [K in keyof UploadRequest]: UploadRequest[K] } = { wants: r.wants, capabilities: r.capabilities, shallows: r.shallows, deepenNot: r.deepenNot };
        if (r.depth !== undefined) out.depth = r.depth;
        if (r.deepenSince !== undefined) out.deepenSince = r.deepenSince;
        if (r.filter !== undefined) out.filter = r.filter;
        return out;
      });
    fc.assert(
      fc.property(reqArb, (req) => {
        assert.deepEqual(parseUploadRequest(dataLines(encodeUploadRequest(req))), req);
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  test('random lines throw only StowageErrors', () => {
    fc.assert(fc.property(linesArb, (lines) => onlyStowageErrors(() => parseUploadRequest(lines))), { seed: 12, numRuns: 1000 });
    fc.assert(
      fc.property(linesArb, (lines) => {
        for (const l of lines) onlyStowageErrors(() => parseNegotiationLine(l));
      }),
      { seed: 13, numRuns: 500 },
    );
  });

  test('have lines, done and acknowledgements', () => {
    const lines = dataLines(encodeHaves([A, B], 'done'));
    assert.deepEqual(lines.map(parseNegotiationLine), [{ kind: 'have', oid: A }, { kind: 'have', oid: B }, { kind: 'done' }]);
    assert.throws(() => parseNegotiationLine(textLines('want x')[0] as Uint8Array), { code: 'PROTO_BAD_REQUEST' });
    for (const ack of [
      { kind: 'nak' as const },
      { kind: 'ack' as const, oid: A },
      { kind: 'ack' as const, oid: A, status: 'continue' as const },
      { kind: 'ack' as const, oid: B, status: 'common' as const },
      { kind: 'ack' as const, oid: B, status: 'ready' as const },
    ]) {
      assert.deepEqual(parseAck(textLines(formatAck(ack))[0] as Uint8Array), ack);
    }
    const update = { shallow: [A], unshallow: [B] };
    assert.deepEqual(parseShallowLines(textLines(...formatShallowLines(update))), update);
  });
});
