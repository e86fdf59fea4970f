import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ZERO_OID, type ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { encodePushOptions, encodeReceiveRequest, isDelete, parsePushOptions, parseReceiveRequest } from './receive-commands.js';
import { decodeReportStatus, encodeReportStatus, type RefStatus } from './report-status.js';
import { bytesArb, capabilityArb, linesArb, oidArb, onlyStowageErrors, refNameArb, textLines } from './arbitraries.test-util.js';
import { PUSH_OPTIONS_MAX } from '../../core/limits.js';

const A = 'a'.repeat(40) as ObjectId;

function dataLines(bytes: Uint8Array): Uint8Array[] {
  return decodePktLines(bytes).flatMap((l) => (l.kind === 'data' ? [l.payload] : []));
}

describe('receive commands', () => {
  test('parses commands with capabilities after the NUL', () => {
    const req = parseReceiveRequest(
      textLines(`${ZERO_OID} ${A} refs/heads/main\0 report-status side-band-64k agent=git/2.39`, `${A} ${ZERO_OID} refs/heads/old`),
    );
    assert.equal(req.commands.length, 2);
    assert.deepEqual(req.capabilities.map((c) => c.name), ['report-status', 'side-band-64k', 'agent']);
    assert.equal(isDelete(req.commands[1]!), true);
    assert.equal(isDelete(req.commands[0]!), false);
  });

  test('refuses push certificates and malformed commands', () => {
    assert.throws(() => parseReceiveRequest(textLines('push-cert\0 report-status')), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseReceiveRequest(textLines(`${A} ${A}`)), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseReceiveRequest(textLines(`${A}x${A} refs/heads/a`)), { code: 'PROTO_BAD_REQUEST' });
  });

  test('round trip', () => {
    const reqArb = fc.record({
      commands: fc.array(fc.record({ oldOid: oidArb, newOid: oidArb, name: refNameArb }).map((c) => ({ ...c })), { minLength: 1, maxLength: 5 }),
      capabilities: fc.array(capabilityArb, { maxLength: 5 }),
      shallows: fc.array(oidArb, { maxLength: 2 }),
    }).map((r) => ({ ...r }));
    fc.assert(
      fc.property(reqArb, (req) => {
        assert.deepEqual(parseReceiveRequest(dataLines(encodeReceiveRequest(req))), req);
      }),
      { seed: 31, numRuns: 200 },
    );
  });

  test('push options: round trip and limits', () => {
    const opts = ['ci.skip', 'merge_request.create', 'a b c'];
    assert.deepEqual(parsePushOptions(dataLines(encodePushOptions(opts))), opts);
    assert.throws(() => parsePushOptions(textLines(...Array.from({ length: PUSH_OPTIONS_MAX + 1 }, () => 'x'))), { code: 'LIMIT_EXCEEDED' });
  });

  test('random input throws only StowageErrors', () => {
    fc.assert(fc.property(linesArb, (l) => onlyStowageErrors(() => parseReceiveRequest(l))), { seed: 32, numRuns: 1000 });
  });
});

describe('report-status', () => {
  test('encodes v1 as git does', () => {
    const text = Buffer.from(
      encodeReportStatus({ unpack: 'ok', refs: [{ kind: 'ok', name: 'refs/heads/main' }, { kind: 'ng', name: 'refs/heads/x', reason: 'non-fast-forward' }] }, false),
    ).toString();
    assert.equal(text, '000eunpack ok\n0017ok refs/heads/main\n0025ng refs/heads/x non-fast-forward\n0000');
  });

  test('round trip, v1 and v2', () => {
    const optionArb = fc
      .record({ refname: fc.option(refNameArb, { nil: undefined }), oldOid: fc.option(oidArb, { nil: undefined }), newOid: oidArb, forcedUpdate: fc.constantFrom(true, undefined) })
      .map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
    const statusArb: fc.Arbitrary<RefStatus> = fc.oneof(
      fc.tuple(refNameArb, fc.option(fc.array(optionArb, { minLength: 1, maxLength: 2 }), { nil: undefined })).map(([name, options]) =>
        options === undefined ? { kind: 'ok' as const, name } : { kind: 'ok' as const, name, options },
      ),
      fc.tuple(refNameArb, fc.stringMatching(/^[a-z][a-z -]{0,30}[a-z]$/)).map(([name, reason]) => ({ kind: 'ng' as const, name, reason })),
    );
    fc.assert(
      fc.property(fc.constantFrom('ok', 'index-pack abnormal exit'), fc.array(statusArb, { minLength: 1, maxLength: 5 }), (unpack, refs) => {
        assert.deepEqual(decodeReportStatus(encodeReportStatus({ unpack, refs }, true)), { unpack, refs });
        const v1 = refs.map((r) => (r.kind === 'ok' ? { kind: 'ok' as const, name: r.name } : r));
        assert.deepEqual(decodeReportStatus(encodeReportStatus({ unpack, refs }, false)), { unpack, refs: v1 });
      }),
      { seed: 33, numRuns: 300 },
    );
  });

  test('keeps error text on one line', () => {
    const r = decodeReportStatus(encodeReportStatus({ unpack: 'bad\npack', refs: [{ kind: 'ng', name: 'refs/heads/a', reason: 'x\ny' }] }, false));
    assert.deepEqual(r, { unpack: 'bad pack', refs: [{ kind: 'ng', name: 'refs/heads/a', reason: 'x y' }] });
  });

  test('random bytes throw only StowageErrors', () => {
    fc.assert(fc.property(bytesArb, (b) => onlyStowageErrors(() => decodeReportStatus(b))), { seed: 34, numRuns: 500 });
  });
});
