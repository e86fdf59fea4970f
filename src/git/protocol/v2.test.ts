import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { decodeV2Advertisement, encodeV2Advertisement, encodeV2Request, parseV2Request } from './v2-capabilities.js';
import { decodeLsRefsOutput, encodeLsRefsOutput, formatLsRefsArgs, matchesRefPrefix, parseLsRefsArgs, LS_REFS_PREFIXES_MAX } from './ls-refs.js';
import { decodeFetchResponse, formatAcknowledgments, formatFetchArgs, formatShallowInfo, parseFetchArgs, type FetchArgs } from './fetch.js';
import { frameLines, DELIM, FLUSH } from './lines.js';
import { bytesArb, linesArb, oidArb, onlyStowageErrors, refNameArb, textLines } from './arbitraries.test-util.js';
import { encodeSideband } from '../pktline/sideband.js';

const A = 'a'.repeat(40) as ObjectId;
const B = 'b'.repeat(40) as ObjectId;
const ALL = { shallow: true, filter: true, refInWant: true, waitForDone: true };

describe('protocol v2 framing', () => {
  test('advertisement round trip, values may hold spaces', () => {
    const caps = [{ name: 'agent', value: 'stowage/1' }, { name: 'ls-refs', value: 'unborn' }, { name: 'fetch', value: 'shallow wait-for-done' }, { name: 'server-option' }];
    assert.deepEqual(decodeV2Advertisement(encodeV2Advertisement(caps)), caps);
  });

  test('request: command, capabilities, delim, args, flush', () => {
    const bytes = encodeV2Request({ command: 'ls-refs', capabilities: [{ name: 'agent', value: 'git/2.39' }, { name: 'object-format', value: 'sha1' }], args: textLines('peel', 'symrefs') });
    const pkts = decodePktLines(bytes);
    const delim = pkts.findIndex((p) => p.kind === 'delim');
    const data = (from: number, to: number): Uint8Array[] => pkts.slice(from, to).flatMap((p) => (p.kind === 'data' ? [p.payload] : []));
    const req = parseV2Request(data(0, delim), data(delim + 1, pkts.length));
    assert.equal(req.command, 'ls-refs');
    assert.deepEqual(req.capabilities, [{ name: 'agent', value: 'git/2.39' }, { name: 'object-format', value: 'sha1' }]);
    assert.equal(req.args.length, 2);
  });

  test('refuses a missing or repeated command', () => {
    assert.throws(() => parseV2Request(textLines('agent=x'), []), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseV2Request(textLines('command=fetch', 'command=ls-refs'), []), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseV2Request(textLines('command=fe tch'), []), { code: 'PROTO_UNKNOWN_COMMAND' });
  });

  test('random input throws only StowageErrors', () => {
    fc.assert(fc.property(linesArb, linesArb, (a, b) => onlyStowageErrors(() => parseV2Request(a, b))), { seed: 21, numRuns: 500 });
    fc.assert(fc.property(bytesArb, (b) => onlyStowageErrors(() => decodeV2Advertisement(b))), { seed: 22, numRuns: 500 });
  });
});

describe('ls-refs', () => {
  test('parses arguments; too many prefixes mean all refs', () => {
    assert.deepEqual(parseLsRefsArgs(textLines('symrefs', 'peel', 'unborn', 'ref-prefix refs/heads/', 'ref-prefix HEAD')), {
      symrefs: true,
      peel: true,
      unborn: true,
      refPrefixes: ['refs/heads/', 'HEAD'],
    });
    const many = Array.from({ length: LS_REFS_PREFIXES_MAX }, (_, i) => `ref-prefix refs/${i}`);
    assert.deepEqual(parseLsRefsArgs(textLines(...many)).refPrefixes, []);
    assert.throws(() => parseLsRefsArgs(textLines('bogus')), { code: 'PROTO_UNKNOWN_PARAM' });
    assert.equal(matchesRefPrefix('refs/heads/main', ['refs/tags/', 'refs/heads/']), true);
    assert.equal(matchesRefPrefix('HEAD', ['refs/']), false);
    assert.equal(matchesRefPrefix('HEAD', []), true);
  });

  test('arguments round trip', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.array(refNameArb, { maxLength: 4 }), (symrefs, peel, unborn, refPrefixes) => {
        const args = { symrefs, peel, unborn, refPrefixes };
        assert.deepEqual(parseLsRefsArgs(textLines(...formatLsRefsArgs(args))), args);
      }),
      { seed: 23, numRuns: 200 },
    );
  });

  test('output round trip, unborn HEAD', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(refNameArb, oidArb, fc.option(oidArb, { nil: undefined })), { maxLength: 6 }), (rows) => {
        const refs = [
          { name: 'HEAD', oid: undefined, symrefTarget: 'refs/heads/main' },
          ...rows.map(([name, oid, peeled]) => (peeled === undefined ? { name, oid } : { name, oid, peeled })),
        ];
        assert.deepEqual(decodeLsRefsOutput(encodeLsRefsOutput(refs)), refs);
      }),
      { seed: 24, numRuns: 200 },
    );
    const text = Buffer.from(encodeLsRefsOutput([{ name: 'HEAD', oid: undefined, symrefTarget: 'refs/heads/main' }])).toString();
    assert.equal(text, '002eunborn HEAD symref-target:refs/heads/main\n0000');
  });

  test('random input throws only StowageErrors', () => {
    fc.assert(fc.property(linesArb, (l) => onlyStowageErrors(() => parseLsRefsArgs(l))), { seed: 25, numRuns: 500 });
    fc.assert(fc.property(bytesArb, (b) => onlyStowageErrors(() => decodeLsRefsOutput(b))), { seed: 26, numRuns: 500 });
  });
});

describe('fetch', () => {
  test('parses every argument git sends', () => {
    const args = parseFetchArgs(
      textLines('thin-pack', 'no-progress', 'include-tag', 'ofs-delta', `shallow ${B}`, 'deepen 2', 'deepen-relative', `want ${A}`, `have ${B}`, 'wait-for-done', 'done'),
      ALL,
    );
    assert.deepEqual(args.wants, [A]);
    assert.deepEqual(args.haves, [B]);
    assert.equal(args.depth, 2);
    assert.equal(args.deepenRelative && args.done && args.thinPack && args.noProgress && args.includeTag && args.ofsDelta && args.waitForDone, true);
  });

  test('refuses unadvertised features and unknown lines', () => {
    const none = { shallow: false, filter: false, refInWant: false, waitForDone: false };
    for (const l of ['deepen 1', `shallow ${A}`, 'filter blob:none', 'want-ref refs/heads/main', 'wait-for-done', 'sideband-all', 'bogus']) {
      assert.throws(() => parseFetchArgs(textLines(l), none), { code: 'PROTO_UNKNOWN_PARAM' }, l);
    }
    assert.throws(() => parseFetchArgs(textLines('deepen 1', 'deepen-since 9'), ALL), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseFetchArgs(textLines('want-ref refs/heads/x', 'want-ref refs/heads/x'), ALL), { code: 'PROTO_BAD_REQUEST' });
  });

  test('arguments round trip', () => {
    const argsArb: fc.Arbitrary<FetchArgs> = fc
      .record({
        wants: fc.uniqueArray(oidArb, { maxLength: 4 }),
        wantRefs: fc.uniqueArray(refNameArb, { maxLength: 2 }),
        haves: fc.array(oidArb, { maxLength: 4 }),
        done: fc.boolean(),
        thinPack: fc.boolean(),
        noProgress: fc.boolean(),
        includeTag: fc.boolean(),
        ofsDelta: fc.boolean(),
        shallows: fc.uniqueArray(oidArb, { maxLength: 2 }),
        depth: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
        deepenRelative: fc.boolean(),
        deepenNot: fc.constant([] as string[]),
        waitForDone: fc.boolean(),
      })
      .map((r) => {
        const { depth, ...rest } = r;
        return depth === undefined ? { ...rest } : { ...rest, depth };
      });
    fc.assert(
      fc.property(argsArb, (a) => {
        assert.deepEqual(parseFetchArgs(textLines(...formatFetchArgs(a)), ALL), a);
      }),
      { seed: 27, numRuns: 200 },
    );
  });

  test('response sections decode', () => {
    const pack = Buffer.from('PACK-bytes');
    const bytes = Buffer.concat([
      frameLines([...formatAcknowledgments([A], true), DELIM, ...formatShallowInfo({ shallow: [B], unshallow: [] }), DELIM, 'packfile']),
      encodeSideband(2, Buffer.from('progress\n'), 100),
      encodeSideband(1, pack, 4),
      frameLines([FLUSH]),
    ]);
    const r = decodeFetchResponse(bytes);
    assert.deepEqual(r.acknowledgments, { acks: [A], nak: false, ready: true });
    assert.deepEqual(r.shallowInfo, { shallow: [B], unshallow: [] });
    assert.deepEqual(Buffer.from(r.packfile?.data ?? []), pack);
    assert.equal(Buffer.from(r.packfile?.progress ?? []).toString(), 'progress\n');
    assert.deepEqual(decodeFetchResponse(frameLines([...formatAcknowledgments([], false), FLUSH])).acknowledgments, { acks: [], nak: true, ready: false });
  });

  test('random input throws only StowageErrors', () => {
    fc.assert(fc.property(linesArb, (l) => onlyStowageErrors(() => parseFetchArgs(l, ALL))), { seed: 28, numRuns: 1000 });
    fc.assert(fc.property(bytesArb, (b) => onlyStowageErrors(() => decodeFetchResponse(b))), { seed: 29, numRuns: 500 });
  });
});
