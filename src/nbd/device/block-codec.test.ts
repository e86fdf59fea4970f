import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { CHECK_LENGTH, decodeBlock, encodeBlockV1, encodedLengthV2, payloadLengthOf, sectorCount, slotOffset } from './block-codec.js';
import { BlockIo, newEntry } from './block-io.js';
import { blockKey } from './volume-layout.js';

const isStoreIo = (e: unknown): boolean => e instanceof StowageError && e.code === 'STORE_IO';

/** Encodes a format 2 (or 3) block through BlockIo (the only writer of formats 2 and 3). */
function encodeV2(index: number, epoch: number, payload: Buffer, format: 2 | 3 = 2): Buffer {
  const io = new BlockIo(new MemoryStore(), 'v', format, () => payload.byteLength);
  const e = newEntry(sectorCount(payload.byteLength));
  for (let s = 0; s < e.sectors.length; s++) e.sectors[s] = payload.subarray(s * 4096, (s + 1) * 4096);
  const body = io.encode(index, e, undefined, epoch);
  assert.ok(body !== undefined);
  return body;
}

describe('block codec', () => {
  test('format 2: round trip for any length; every single-byte flip is caught', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 * 4096 + 100 }), fc.nat(1000), fc.nat(), (len, index, flipSeed) => {
        const payload = Buffer.alloc(len);
        for (let i = 0; i < len; i++) payload[i] = (i * 7 + index) & 255;
        const body = encodeV2(index, 9, payload);
        assert.equal(body.byteLength, encodedLengthV2(len));
        assert.equal(payloadLengthOf(body.byteLength), len);
        const d = decodeBlock('k', index, body);
        assert.deepEqual(d.payload, payload);
        assert.equal(d.epoch, 9);
        const bad = Buffer.from(body);
        const at = flipSeed % bad.byteLength;
        bad[at] = (bad[at] as number) ^ 1;
        assert.throws(() => decodeBlock('k', index, bad), isStoreIo);
        assert.throws(() => decodeBlock('k', index + 1, body), isStoreIo, 'another index');
        assert.throws(() => decodeBlock('k', index, body.subarray(0, body.byteLength - 1)), isStoreIo, 'truncated');
      }),
      { numRuns: 60 },
    );
  });

  test('format 3: round trip for any length; every single-byte flip and every moved slot is caught', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 * 4096 + 100 }), fc.nat(2 ** 40), fc.nat(), (len, index, flipSeed) => {
        const payload = Buffer.alloc(len);
        for (let i = 0; i < len; i++) payload[i] = (i * 7 + index) & 255;
        const body = encodeV2(index, 9, payload, 3);
        assert.equal(body[4], 3);
        assert.equal(body.byteLength, encodedLengthV2(len));
        const d = decodeBlock('k', index, body);
        assert.deepEqual(d.payload, payload);
        assert.equal(d.epoch, 9);
        const bad = Buffer.from(body);
        const at = flipSeed % bad.byteLength;
        bad[at] = (bad[at] as number) ^ 1;
        assert.throws(() => decodeBlock('k', index, bad), isStoreIo);
        assert.throws(() => decodeBlock('k', index + 1, body), isStoreIo, 'another index');
        assert.throws(() => decodeBlock('k', index + 2 ** 32, body), isStoreIo, 'another index, high half');
        if (len > 4096) {
          // Two slots swapped (same bytes, wrong places): caught even though each CRC is right.
          const same = Buffer.alloc(len, 1);
          const b = encodeV2(index, 9, same, 3);
          const moved = Buffer.from(b);
          b.copy(moved, slotOffset(0), slotOffset(1), slotOffset(1) + CHECK_LENGTH);
          assert.throws(() => decodeBlock('k', index, moved), isStoreIo);
        }
      }),
      { numRuns: 60 },
    );
  });

  test('format 3: ranged fetch verifies its slots; a lost sector stays an error', async () => {
    const store = new MemoryStore();
    const len = 8 * 4096;
    const io = new BlockIo(store, 'v', 3, () => len);
    const payload = Buffer.alloc(len);
    for (let i = 0; i < len; i++) payload[i] = (i * 13) & 255;
    const body = encodeV2(7, 1, payload, 3);
    await store.put(blockKey('v', 7), body);
    assert.deepEqual(Buffer.concat((await io.fetch(7, 2, 3)) as Buffer[]), payload.subarray(2 * 4096, 4 * 4096));
    assert.deepEqual(Buffer.concat((await io.fetch(7, 0, 7)) as Buffer[]), payload);
    // An upload that could not read the old object writes poisoned slots for sectors not in memory.
    const e = newEntry(8);
    e.sectors[0] = Buffer.alloc(4096, 9);
    const poisoned = io.encode(7, e, { kind: 'lost' }, 2);
    assert.ok(poisoned !== undefined);
    await store.put(blockKey('v', 7), poisoned);
    assert.deepEqual(Buffer.concat((await io.fetch(7, 0, 0)) as Buffer[]), Buffer.alloc(4096, 9));
    await assert.rejects(io.fetch(7, 1, 1), isStoreIo);
    await assert.rejects(io.fetch(7, 0, 7), isStoreIo);
  });

  test('format 1 blocks still decode; random bytes throw only STORE_IO', () => {
    const payload = Buffer.from('hello world');
    assert.deepEqual(decodeBlock('k', 3, encodeBlockV1(3, 1, [payload.subarray(0, 5), payload.subarray(5)])).payload, payload);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeBlock('k', 0, bytes);
        } catch (err) {
          assert.ok(isStoreIo(err));
        }
      }),
    );
  });

  test('ranged fetch verifies only its slots; a bad slot or a short object falls back to a whole read', async () => {
    const store = new MemoryStore();
    const len = 16 * 4096;
    const io = new BlockIo(store, 'v', 2, () => len);
    const payload = Buffer.alloc(len);
    for (let i = 0; i < len; i++) payload[i] = i & 255;
    const body = encodeV2(5, 1, payload);
    await store.put(blockKey('v', 5), body);
    const got = await io.fetch(5, 3, 4);
    assert.deepEqual(Buffer.concat(got as Buffer[]), payload.subarray(3 * 4096, 5 * 4096));
    assert.deepEqual(await io.fetch(6, 0, 1), [null, null], 'absent block: zeros');
    // Damage sector 10: sectors 3-4 still read; sector 10 is an error.
    const bad = Buffer.from(body);
    bad[slotOffset(10) + CHECK_LENGTH + 5] = (bad[slotOffset(10) + CHECK_LENGTH + 5] as number) ^ 1;
    await store.put(blockKey('v', 5), bad);
    assert.deepEqual(Buffer.concat((await io.fetch(5, 3, 4)) as Buffer[]), payload.subarray(3 * 4096, 5 * 4096));
    await assert.rejects(io.fetch(5, 10, 10), isStoreIo);
    // An emptied object (a crash on a file system without rename ordering) is an error, not zeros.
    await store.put(blockKey('v', 5), new Uint8Array(0));
    await assert.rejects(io.fetch(5, 3, 3), isStoreIo);
  });
});
