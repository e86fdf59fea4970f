import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LimitError, ProtocolError } from '../../core/errors.js';
import * as K from './constants.js';
import { GATHER_MIN, RequestDecoder, decodeRequestHeader, encodeRequest, type DecodedRequest, type NbdRequest } from './request.js';
import {
  decodeReply,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeErrorOffsetChunk,
  encodeNoneChunk,
  encodeOffsetDataHeader,
  encodeOffsetHoleChunk,
  encodeSimpleReply,
} from './reply.js';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const request = (maxLen: number): fc.Arbitrary<NbdRequest> =>
  fc.record({
    flags: fc.integer({ min: 0, max: 0xffff }),
    type: fc.integer({ min: 0, max: 9 }),
    cookie: u64,
    offset: u64,
    length: fc.integer({ min: 0, max: maxLen }),
  });

function encodeAll(reqs: readonly NbdRequest[]): { bytes: Buffer; payloads: Map<number, Buffer> } {
  const payloads = new Map<number, Buffer>();
  const parts = reqs.map((r, i) => {
    if (r.type !== K.NBD_CMD_WRITE) return encodeRequest(r);
    const p = Buffer.alloc(r.length, i & 0xff);
    payloads.set(i, p);
    return encodeRequest(r, p);
  });
  return { bytes: Buffer.concat(parts), payloads };
}

function feed(bytes: Buffer, cuts: readonly number[], maxPayload: number): DecodedRequest[] {
  const d = new RequestDecoder({ maxPayload });
  const out: DecodedRequest[] = [];
  let pos = 0;
  for (const c of [...cuts, bytes.byteLength]) {
    const end = Math.min(bytes.byteLength, pos + Math.max(1, c));
    out.push(...d.push(bytes.subarray(pos, end)));
    pos = end;
    if (pos >= bytes.byteLength) break;
  }
  assert.equal(d.buffered, 0);
  return out;
}

describe('nbd request codec', () => {
  test('requests with WRITE payloads round trip under any chunking; oversized WRITEs are drained', () => {
    fc.assert(
      fc.property(fc.array(request(300), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 60 }), (reqs, cuts) => {
        const { bytes, payloads } = encodeAll(reqs);
        const got = feed(bytes, cuts, 200);
        assert.equal(got.length, reqs.length);
        got.forEach((g, i) => {
          const r = reqs[i] as NbdRequest;
          assert.deepEqual(g.request, { ...r });
          if (r.type !== K.NBD_CMD_WRITE) assert.equal(g.kind, 'request');
          else if (r.length > 200) assert.equal(g.kind, 'write-too-big');
          else {
            assert.equal(g.kind, 'write');
            if (g.kind === 'write') assert.deepEqual(Buffer.concat(g.payload), payloads.get(i));
          }
        });
      }),
    );
  });

  test('long WRITE payloads come out as views of the received chunks, under any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: GATHER_MIN, max: GATHER_MIN + 70_000 }), { minLength: 1, maxLength: 3 }), fc.array(fc.integer({ min: 1, max: 90_000 }), { maxLength: 20 }), (lengths, cuts) => {
        const reqs = lengths.map((length, i) => ({ flags: 0, type: K.NBD_CMD_WRITE, cookie: BigInt(i), offset: 0n, length }));
        const { bytes, payloads } = encodeAll(reqs);
        const got = feed(bytes, cuts, GATHER_MIN + 70_000);
        assert.equal(got.length, reqs.length);
        got.forEach((g, i) => {
          assert.ok(g.kind === 'write' && g.owned, 'a long payload is the receiver\'s to keep');
          if (g.kind !== 'write') return;
          assert.deepEqual(Buffer.concat(g.payload), payloads.get(i));
          for (const piece of g.payload) assert.equal(piece.buffer, bytes.buffer, 'a view, not a copy');
        });
      }),
      { numRuns: 40 },
    );
  });

  test('bad magic is a ProtocolError', () => {
    const b = Buffer.from(encodeRequest({ flags: 0, type: 0, cookie: 1n, offset: 0n, length: 1 }));
    b[0] = 0x12;
    assert.throws(() => decodeRequestHeader(b), ProtocolError);
    assert.throws(() => new RequestDecoder().push(b), ProtocolError);
  });

  test('random bytes give requests or ProtocolError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          new RequestDecoder({ maxPayload: 64 }).push(bytes);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }),
    );
  });
});

describe('nbd reply codec', () => {
  test('simple replies round trip, with READ data by cookie', () => {
    fc.assert(
      fc.property(u64, fc.integer({ min: 0, max: 200 }), fc.uint8Array({ maxLength: 64 }), (cookie, error, data) => {
        const bytes = Buffer.concat([encodeSimpleReply(error, cookie), error === 0 ? data : new Uint8Array(0)]);
        const step = decodeReply(bytes, () => data.byteLength);
        assert.equal(step.kind, 'reply');
        if (step.kind === 'reply') {
          assert.deepEqual(step.reply, { kind: 'simple', error, cookie, data: error === 0 ? Buffer.from(data) : Buffer.alloc(0) });
          assert.equal(step.consumed, bytes.byteLength);
        }
      }),
    );
  });

  test('structured chunks round trip', () => {
    const cookie = 0x0102030405060708n;
    const data = Buffer.from('hello');
    const cases = [
      [encodeNoneChunk(cookie), { kind: 'none' }],
      [Buffer.concat([encodeOffsetDataHeader(1, cookie, 4096, 5), data]), { kind: 'offset-data', offset: 4096n, data }],
      [encodeOffsetHoleChunk(1, cookie, 512, 1024), { kind: 'offset-hole', offset: 512n, size: 1024 }],
      [encodeBlockStatusChunk(1, cookie, 1, [{ length: 512, flags: 3 }, { length: 1024, flags: 0 }]), { kind: 'block-status', contextId: 1, extents: [{ length: 512, flags: 3 }, { length: 1024, flags: 0 }] }],
      [encodeErrorChunk(1, cookie, K.NBD_EINVAL, 'bad'), { kind: 'error', error: K.NBD_EINVAL, message: 'bad' }],
      [encodeErrorOffsetChunk(1, cookie, K.NBD_EIO, 'oops', 99), { kind: 'error-offset', error: K.NBD_EIO, message: 'oops', offset: 99n }],
    ] as const;
    for (const [bytes, payload] of cases) {
      const step = decodeReply(bytes);
      assert.equal(step.kind, 'reply');
      if (step.kind === 'reply' && step.reply.kind === 'chunk') {
        assert.equal(step.reply.cookie, cookie);
        assert.deepEqual(step.reply.payload, payload);
        assert.equal(step.consumed, bytes.byteLength);
      } else assert.fail('expected a chunk');
      // Any prefix asks for more.
      assert.equal(decodeReply(bytes.subarray(0, bytes.byteLength - 1)).kind, 'need-more');
    }
  });

  test('random bytes give replies, need-more, or typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, structured) => {
        const b = Buffer.from(bytes);
        if (b.byteLength >= 4) b.writeUInt32BE(structured ? K.NBD_STRUCTURED_REPLY_MAGIC : K.NBD_SIMPLE_REPLY_MAGIC, 0);
        try {
          decodeReply(b, () => 8, 100);
        } catch (err) {
          assert.ok(err instanceof ProtocolError || err instanceof LimitError, String(err));
        }
      }),
    );
  });
});
