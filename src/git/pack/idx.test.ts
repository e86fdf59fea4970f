import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { type IdxEntry, PackIndex, encodeIdx } from './idx.js';
import { type GitPack, gitIndexPack, gitVerifyPack, makeGitPack, resolveEntries, tempDir } from './pack-fixtures.test-util.js';
import { PackScanner } from './scanner.js';

function expectCorrupt(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof StowageError && err.code === 'IDX_CORRUPT');
}

function scanToIdxEntries(pack: Uint8Array): { entries: IdxEntry[]; checksum: ObjectId } {
  const scanner = new PackScanner();
  const scanned = scanner.push(pack);
  const { checksum } = scanner.end();
  const resolved = resolveEntries(scanned);
  return { entries: scanned.map((e) => ({ oid: resolved.get(e.offset)!.oid, offset: e.offset, crc32: e.crc32 })), checksum };
}

/** Rewrites the trailing checksum so structural checks, not the checksum, must catch a change. */
function resum(idx: Buffer): Buffer {
  createHash('sha1').update(idx.subarray(0, idx.length - 20)).digest().copy(idx, idx.length - 20);
  return idx;
}

const randomOid = (): ObjectId => randomBytes(20).toString('hex') as ObjectId;

describe('idx v2 against git', () => {
  let fixture: GitPack;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    fixture = await makeGitPack({ files: 10, commits: 20 });
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => cleanup());

  test('decodes git index-pack output: lookups, crc32s, entry ranges', () => {
    const idx = PackIndex.decode(fixture.idx, fixture.pack.length);
    assert.equal(idx.count, fixture.listing.length);
    assert.equal(idx.packChecksum, Buffer.from(fixture.pack.subarray(-20)).toString('hex'));
    const { entries } = scanToIdxEntries(fixture.pack);
    const crcByOffset = new Map(entries.map((e) => [e.offset, e.crc32]));
    for (const line of fixture.listing) {
      const i = idx.findIndex(line.oid);
      assert.ok(i >= 0);
      assert.equal(idx.oidAt(i), line.oid);
      assert.equal(idx.lookup(line.oid), line.offset);
      assert.equal(idx.offsetAt(i), line.offset);
      assert.equal(idx.crc32At(i), crcByOffset.get(line.offset));
      assert.ok(idx.has(line.oid));
      assert.equal(idx.findIndexByOffset(line.offset), i);
      assert.equal(idx.nextOffset(line.offset) - line.offset, line.packedLength);
      assert.ok(Buffer.from(idx.oidBytesAt(i)).equals(Buffer.from(line.oid, 'hex')));
    }
    for (let i = 1; i < idx.count; i++) assert.ok(idx.oidAt(i - 1) < idx.oidAt(i));
    const sorted = idx.offsetsSorted();
    assert.deepEqual([...sorted], fixture.listing.map((l) => l.offset).sort((a, b) => a - b));
    assert.equal(idx.findIndexByOffset(sorted[0]! + 1), -1);
    for (let k = 0; k < 200; k++) {
      const oid = randomOid();
      assert.equal(idx.has(oid), fixture.listing.some((l) => l.oid === oid));
    }
    // Neighbours of present ids are absent: the search compares every word.
    const first = fixture.listing[0]!.oid;
    const twin = (first.slice(0, 39) + (first[39] === '0' ? '1' : '0')) as ObjectId;
    assert.equal(idx.lookup(twin), undefined);
  });

  test('nextOffset needs the pack size only for the last entry', () => {
    const idx = PackIndex.decode(fixture.idx);
    const sorted = idx.offsetsSorted();
    assert.equal(idx.nextOffset(sorted[0]!), sorted[1]);
    assert.throws(() => idx.nextOffset(sorted[sorted.length - 1]!), RangeError);
    assert.equal(idx.nextOffset(sorted[sorted.length - 1]!, fixture.pack.length), fixture.pack.length - 20);
  });

  test('encodeIdx is byte-identical to git index-pack, also with forced 64-bit offsets', async () => {
    const { entries, checksum } = scanToIdxEntries(fixture.pack);
    const shuffled = entries.slice().reverse();
    assert.ok(Buffer.from(encodeIdx(shuffled, checksum)).equals(Buffer.from(fixture.idx)));
    for (const limit of [12, 1000, 5000]) {
      const git = await gitIndexPack(dir, fixture.pack, [`--index-version=2,${limit}`]);
      const ours = encodeIdx(shuffled, checksum, { off32Limit: limit });
      assert.ok(Buffer.from(ours).equals(Buffer.from(git.idx)), `off32 limit ${limit}`);
      const decoded = PackIndex.decode(ours, fixture.pack.length);
      for (const e of entries) assert.equal(decoded.lookup(e.oid), e.offset);
    }
  });

  test('git verify-pack accepts our idx, for a ref-delta pack too', async () => {
    for (const [pack, listing] of [
      [fixture.pack, fixture.listing],
      [fixture.refDelta.pack, fixture.refDelta.listing],
    ] as const) {
      const { entries, checksum } = scanToIdxEntries(pack);
      for (const limit of [undefined, 100]) {
        const ours = encodeIdx(entries, checksum, limit === undefined ? {} : { off32Limit: limit });
        const verified = await gitVerifyPack(dir, pack, ours);
        assert.deepEqual(verified, listing);
      }
    }
    assert.ok(fixture.refDelta.listing.some((l) => l.base !== undefined), 'the ref-delta pack has deltas');
  });
});

describe('idx v2 encoding', () => {
  test('offsets of 2^31 and more round trip through the 64-bit table', () => {
    const entries: IdxEntry[] = [
      { oid: randomOid(), offset: 12, crc32: 1 },
      { oid: randomOid(), offset: 0x7fffffff, crc32: 2 },
      { oid: randomOid(), offset: 0x100000000, crc32: 4 },
      { oid: randomOid(), offset: 0x80000000, crc32: 3 },
      { oid: randomOid(), offset: 2 ** 40 + 5, crc32: 0xffffffff },
    ];
    const bytes = encodeIdx(entries, randomOid());
    assert.equal(bytes.length, 8 + 1024 + 5 * 28 + 3 * 8 + 40);
    const idx = PackIndex.decode(bytes);
    for (const e of entries) {
      const i = idx.findIndex(e.oid);
      assert.equal(idx.offsetAt(i), e.offset);
      assert.equal(idx.crc32At(i), e.crc32);
    }
  });

  test('round trips random entries', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as ObjectId), { maxLength: 300 }),
        fc.infiniteStream(fc.tuple(fc.integer({ min: 12, max: 2 ** 36 }), fc.nat({ max: 0xffffffff }))),
        (oids, values) => {
          const it = values[Symbol.iterator]();
          // A real pack's first entry is at 12; git refuses an idx with all offsets in 64 bits.
          const entries = oids.map((oid, k) => {
            const [offset, crc32] = it.next().value as [number, number];
            return { oid, offset: k === 0 ? 12 : offset, crc32 };
          });
          const idx = PackIndex.decode(encodeIdx(entries, randomOid()));
          assert.equal(idx.count, entries.length);
          for (const e of entries) {
            const i = idx.findIndex(e.oid);
            assert.ok(i >= 0);
            assert.equal(idx.offsetAt(i), e.offset);
            assert.equal(idx.crc32At(i), e.crc32);
            // The raw lookup finds the same position, also at an offset inside a larger buffer.
            const raw = Buffer.concat([Buffer.from([7, 7, 7]), Buffer.from(e.oid, 'hex'), Buffer.from([9])]);
            assert.equal(idx.findIndexRaw(raw, 3), i);
          }
          const absent = randomOid();
          assert.equal(idx.findIndexRaw(Buffer.from(absent, 'hex'), 0), idx.findIndex(absent));
        },
      ),
      { numRuns: 100, seed: 12 },
    );
  });

  test('offset order is right for small and for huge offsets (both sort paths)', () => {
    for (const scale of [1000, 2 ** 47]) {
      const entries = Array.from({ length: 40 }, (_, k) => ({ oid: randomOid(), offset: k === 0 ? 12 : 12 + ((k * 7919) % 40) * scale, crc32: k }));
      const idx = PackIndex.decode(encodeIdx(entries, randomOid()));
      const want = entries.map((e) => e.offset).sort((a, b) => a - b);
      assert.deepEqual([...idx.offsetsSorted()], want);
      const positions = idx.positionsByOffset();
      for (let k = 0; k < want.length; k++) assert.equal(idx.offsetAt(positions[k]!), want[k]);
      for (const e of entries) assert.equal(idx.oidAt(idx.findIndexByOffset(e.offset)), e.oid);
    }
    const dup = [
      { oid: randomOid(), offset: 12, crc32: 0 },
      { oid: randomOid(), offset: 50, crc32: 0 },
      { oid: randomOid(), offset: 50, crc32: 0 },
    ];
    expectCorrupt(() => PackIndex.decode(encodeIdx(dup, randomOid())).offsetsSorted());
  });

  test('an empty index', () => {
    const idx = PackIndex.decode(encodeIdx([], randomOid()));
    assert.equal(idx.count, 0);
    assert.equal(idx.lookup(randomOid()), undefined);
    assert.equal(idx.offsetsSorted().length, 0);
  });

  test('corrupt indexes throw IDX_CORRUPT', () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ oid: randomOid(), offset: 12 + i * 100, crc32: i }));
    const good = Buffer.from(encodeIdx(entries, randomOid()));
    expectCorrupt(() => PackIndex.decode(good.subarray(0, 100)));
    const flipped = Buffer.from(good);
    flipped[2000 % flipped.length]! ^= 1;
    expectCorrupt(() => PackIndex.decode(flipped));
    const magic = Buffer.from(good);
    magic[0] = 0;
    expectCorrupt(() => PackIndex.decode(resum(magic)));
    const version = Buffer.from(good);
    version[7] = 3;
    expectCorrupt(() => PackIndex.decode(resum(version)));
    const fanout = Buffer.from(good);
    fanout.writeUInt32BE(6, 8 + 10 * 4); // fanout[10] = 6 > fanout[255] = 5
    expectCorrupt(() => PackIndex.decode(resum(fanout)));
    const longer = resum(Buffer.concat([good.subarray(0, good.length - 40), Buffer.alloc(4), good.subarray(good.length - 40)]));
    expectCorrupt(() => PackIndex.decode(longer));
    const badLarge = Buffer.from(good);
    badLarge.writeUInt32BE(0x80000000, 8 + 1024 + 5 * 24);
    expectCorrupt(() => PackIndex.decode(resum(badLarge)));
    expectCorrupt(() => PackIndex.decode(good, 100));
    assert.equal(PackIndex.decode(good, 12 + 4 * 100 + 22).count, 5);
  });

  test('random bytes throw only IDX_CORRUPT', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        try {
          PackIndex.decode(bytes);
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'IDX_CORRUPT', String(err));
        }
      }),
      { numRuns: 300, seed: 13 },
    );
  });
});
