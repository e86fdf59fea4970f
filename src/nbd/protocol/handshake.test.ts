import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LimitError, ProtocolError } from '../../core/errors.js';
import * as K from './constants.js';
import {
  decodeClientFlags,
  decodeExportNameReply,
  decodeGreeting,
  decodeOption,
  decodeOptionReply,
  encodeClientFlags,
  encodeExportNameReply,
  encodeGreeting,
  encodeOption,
  encodeOptionReply,
} from './handshake.js';
import {
  decodeInfo,
  decodeInfoRequest,
  decodeMetaContextReply,
  decodeMetaContextRequest,
  decodeServerReply,
  encodeInfo,
  encodeInfoRequest,
  encodeMetaContextReply,
  encodeMetaContextRequest,
  encodeServerReply,
  type InfoItem,
} from './option-data.js';

const nbdString = fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0'));
const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** Decodes a stream of options fed in the given chunk sizes, as a server would. */
function decodeOptionsChunked(bytes: Uint8Array, cuts: number[]): Array<{ option: number; data: Uint8Array }> {
  const out: Array<{ option: number; data: Uint8Array }> = [];
  let buf = Buffer.alloc(0);
  let pos = 0;
  const sizes = [...cuts, bytes.byteLength];
  for (const n of sizes) {
    const end = Math.min(bytes.byteLength, pos + Math.max(1, n));
    buf = Buffer.concat([buf, bytes.subarray(pos, end)]);
    pos = end;
    for (;;) {
      const step = decodeOption(buf);
      if (step.kind === 'need-more') break;
      out.push({ option: step.option, data: Buffer.from(step.data) });
      buf = buf.subarray(step.consumed);
    }
    if (pos >= bytes.byteLength) break;
  }
  assert.equal(buf.byteLength, 0);
  return out;
}

function isTyped(err: unknown): boolean {
  return err instanceof ProtocolError || err instanceof LimitError;
}

describe('nbd handshake codec', () => {
  test('greeting announces fixed newstyle and no zeroes', () => {
    const g = encodeGreeting();
    assert.equal(Buffer.from(g).subarray(0, 8).toString('latin1'), 'NBDMAGIC');
    assert.equal(Buffer.from(g).subarray(8, 16).toString('latin1'), 'IHAVEOPT');
    const d = decodeGreeting(g);
    assert.equal(d.kind, 'greeting');
    if (d.kind === 'greeting') assert.equal(d.flags, K.NBD_FLAG_FIXED_NEWSTYLE | K.NBD_FLAG_NO_ZEROES);
    assert.deepEqual(decodeGreeting(g.subarray(0, 10)), { kind: 'need-more', bytesNeeded: 8 });
  });

  test('client flags: known bits accepted, unknown bits rejected', () => {
    const ok = decodeClientFlags(encodeClientFlags(3));
    assert.deepEqual(ok, { kind: 'client-flags', fixedNewstyle: true, noZeroes: true, consumed: 4 });
    assert.throws(() => decodeClientFlags(encodeClientFlags(4)), ProtocolError);
    // NO_ZEROES is not acceptable from the client when the server did not offer it.
    assert.throws(() => decodeClientFlags(encodeClientFlags(2), K.NBD_FLAG_FIXED_NEWSTYLE), ProtocolError);
  });

  test('option requests round trip under any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ option: u32, data: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 40 }),
        (opts, cuts) => {
          const bytes = Buffer.concat(opts.map((o) => encodeOption(o.option, o.data)));
          const got = decodeOptionsChunked(bytes, cuts);
          assert.deepEqual(got.map((g) => ({ option: g.option, data: new Uint8Array(g.data) })), opts.map((o) => ({ option: o.option, data: new Uint8Array(o.data) })));
        },
      ),
    );
  });

  test('option data over the limit is a LimitError before any data arrives', () => {
    const head = Buffer.from(encodeOption(K.NBD_OPT_GO)).subarray(0, 16);
    head.writeUInt32BE(K.NBD_MAX_OPTION_LENGTH + 1, 12);
    assert.throws(() => decodeOption(head), LimitError);
    const bad = Buffer.from(head);
    bad[0] = 0;
    assert.throws(() => decodeOption(bad), ProtocolError);
  });

  test('option replies round trip', () => {
    fc.assert(
      fc.property(u32, u32, fc.uint8Array({ maxLength: 100 }), (option, type, data) => {
        const step = decodeOptionReply(encodeOptionReply(option, type, data));
        assert.equal(step.kind, 'reply');
        if (step.kind === 'reply') {
          assert.deepEqual([step.option, step.type, new Uint8Array(step.data)], [option, type, new Uint8Array(data)]);
        }
      }),
    );
    assert.equal(K.isOptionReplyError(K.NBD_REP_ERR_UNSUP), true);
    assert.equal(K.isOptionReplyError(K.NBD_REP_ACK), false);
  });

  test('EXPORT_NAME reply with and without zeroes', () => {
    const with0 = encodeExportNameReply(1 << 20, 0x3, false);
    const without = encodeExportNameReply(1 << 20, 0x3, true);
    assert.equal(with0.byteLength, 134);
    assert.equal(without.byteLength, 10);
    assert.deepEqual(decodeExportNameReply(with0, false), { kind: 'export', size: 1 << 20, flags: 3, consumed: 134 });
    assert.deepEqual(decodeExportNameReply(without, true), { kind: 'export', size: 1 << 20, flags: 3, consumed: 10 });
  });

  test('INFO/GO and meta-context data round trip', () => {
    fc.assert(
      fc.property(nbdString, fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }), (name, infos) => {
        assert.deepEqual(decodeInfoRequest(encodeInfoRequest({ name, infos })), { name, infos });
      }),
    );
    fc.assert(
      fc.property(nbdString, fc.array(nbdString, { maxLength: 8 }), (name, queries) => {
        assert.deepEqual(decodeMetaContextRequest(encodeMetaContextRequest({ name, queries })), { name, queries });
      }),
    );
    fc.assert(
      fc.property(nbdString, nbdString, (name, description) => {
        assert.deepEqual(decodeServerReply(encodeServerReply(name, description)), { name, description });
      }),
    );
    assert.deepEqual(decodeMetaContextReply(encodeMetaContextReply(7, 'base:allocation')), { id: 7, name: 'base:allocation' });
  });

  test('info items round trip', () => {
    const item: fc.Arbitrary<InfoItem> = fc.oneof(
      fc.record({ kind: fc.constant('export' as const), size: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), flags: fc.integer({ min: 0, max: 0xffff }) }),
      fc.record({ kind: fc.constant('name' as const), name: nbdString }),
      fc.record({ kind: fc.constant('description' as const), description: nbdString }),
      fc.record({ kind: fc.constant('block-size' as const), minimum: u32, preferred: u32, maximum: u32 }),
    );
    fc.assert(fc.property(item, (i) => assert.deepEqual(decodeInfo(encodeInfo(i)), { ...i })));
  });

  test('malformed option data: trailing bytes, truncation, NUL, bad UTF-8 are ProtocolErrors', () => {
    const good = Buffer.from(encodeInfoRequest({ name: 'disk', infos: [3] }));
    assert.throws(() => decodeInfoRequest(Buffer.concat([good, Buffer.from([0])])), ProtocolError);
    assert.throws(() => decodeInfoRequest(good.subarray(0, good.byteLength - 1)), ProtocolError);
    assert.throws(() => decodeInfoRequest(encodeInfoRequest({ name: 'a\0b', infos: [] })), ProtocolError);
    const badUtf8 = Buffer.from([0, 0, 0, 1, 0xff, 0, 0]);
    assert.throws(() => decodeInfoRequest(badUtf8), ProtocolError);
    const long = Buffer.alloc(4 + 5000 + 2);
    long.writeUInt32BE(5000, 0);
    long.fill(0x61, 4, 5004);
    assert.throws(() => decodeInfoRequest(long), ProtocolError);
    const many = Buffer.alloc(12);
    many.writeUInt32BE(0, 0);
    many.writeUInt32BE(K.NBD_MAX_META_QUERIES + 1, 4);
    assert.throws(() => decodeMetaContextRequest(many), LimitError);
  });

  test('random bytes only ever give need-more, a value, or a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const f of [decodeOption, decodeOptionReply, decodeInfoRequest, decodeMetaContextRequest, decodeInfo, decodeServerReply, decodeMetaContextReply, decodeClientFlags]) {
          try {
            f(bytes);
          } catch (err) {
            assert.ok(isTyped(err), `unexpected ${String(err)}`);
          }
        }
      }),
    );
  });
});
