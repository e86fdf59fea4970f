import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { StowageError, hasCode } from '../../core/errors.js';
import { encodeIdx } from './idx.js';
import { type GitPack, makeGitPack, resolveEntries } from './pack-fixtures.test-util.js';
import { PACK_HEADER_LENGTH, PackScanner, type ScannedEntry, decodePackHeader, encodePackHeader } from './scanner.js';

function scanChunks(chunks: Uint8Array[], opts?: ConstructorParameters<typeof PackScanner>[0]): {
  entries: ScannedEntry[];
  result: ReturnType<PackScanner['end']>;
} {
  const scanner = new PackScanner(opts);
  const entries: ScannedEntry[] = [];
  for (const c of chunks) entries.push(...scanner.push(c));
  return { entries, result: scanner.end() };
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StowageError, `expected a StowageError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('pack header', () => {
  test('round trips and rejects bad signature and version', () => {
    assert.deepEqual(decodePackHeader(encodePackHeader(1234)), { version: 2, objectCount: 1234 });
    const v3 = Buffer.from(encodePackHeader(5));
    v3[7] = 3;
    assert.deepEqual(decodePackHeader(v3), { version: 3, objectCount: 5 });
    const v4 = Buffer.from(encodePackHeader(5));
    v4[7] = 4;
    expectCode(() => decodePackHeader(v4), 'PACK_BAD_HEADER');
    const sig = Buffer.from(encodePackHeader(5));
    sig[0] = 0x51;
    expectCode(() => decodePackHeader(sig), 'PACK_BAD_HEADER');
    expectCode(() => new PackScanner().push(sig), 'PACK_BAD_HEADER');
    assert.equal(PACK_HEADER_LENGTH, 12);
  });
});

describe('PackScanner on packs made by git', () => {
  let fixture: GitPack;
  before(async () => {
    fixture = await makeGitPack({ files: 12, commits: 30 });
  });

  test('every entry matches git verify-pack -v after resolving deltas', () => {
    const { entries, result } = scanChunks([fixture.pack]);
    assert.equal(result.objectCount, fixture.listing.length);
    assert.equal(result.packSize, fixture.pack.length);
    assert.equal(result.checksum, Buffer.from(fixture.pack.subarray(-20)).toString('hex'));
    assert.ok(fixture.listing.some((l) => l.depth > 1), 'the fixture has delta chains');
    const resolved = resolveEntries(entries);
    const byOffset = new Map(entries.map((e) => [e.offset, e]));
    for (const line of fixture.listing) {
      const e = byOffset.get(line.offset);
      assert.ok(e, `entry at ${line.offset}`);
      assert.equal(e.header.size, line.size);
      assert.equal(e.packedLength, line.packedLength);
      const obj = resolved.get(line.offset)!;
      assert.equal(obj.oid, line.oid);
      assert.equal(obj.type, line.type);
    }
  });

  test('an idx built from the scan is byte-identical to git index-pack', () => {
    const scanner = new PackScanner();
    const entries = scanner.push(fixture.pack);
    const { checksum } = scanner.end();
    const resolved = resolveEntries(entries);
    const idx = encodeIdx(
      entries.map((e) => ({ oid: resolved.get(e.offset)!.oid, offset: e.offset, crc32: e.crc32 })),
      checksum,
    );
    assert.ok(Buffer.from(idx).equals(fixture.idx));
  });

  test('any chunking gives the same entries', () => {
    const whole = scanChunks([fixture.pack]).entries;
    const summary = (es: ScannedEntry[]): string[] =>
      es.map((e) => `${e.offset}:${e.packedLength}:${e.crc32}:${Buffer.from(e.data).toString('base64')}`);
    const expected = summary(whole);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        assert.deepEqual(summary(scanChunks(split(fixture.pack, cuts)).entries), expected);
      }),
      { numRuns: 60, seed: 42 },
    );
    // Byte by byte: every state boundary is crossed.
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < fixture.pack.length; i++) bytes.push(fixture.pack.subarray(i, i + 1));
    assert.deepEqual(summary(scanChunks(bytes).entries), expected);
  });

  test('a ref-delta pack from git pack-objects resolves to the same objects', () => {
    const { entries } = scanChunks(split(fixture.refDelta.pack, [1000, 5000, 5001, 9000]));
    assert.ok(entries.some((e) => e.header.type === 'ref-delta'));
    const resolved = resolveEntries(entries);
    const byOffset = new Map(entries.map((e) => [e.offset, e]));
    for (const line of fixture.refDelta.listing) {
      assert.equal(resolved.get(line.offset)?.oid, line.oid);
      assert.equal(byOffset.get(line.offset)?.packedLength, line.packedLength);
    }
  });

  test('entries are returned as soon as their chunk completes them', () => {
    const scanner = new PackScanner();
    const first = scanner.push(fixture.pack.subarray(0, fixture.pack.length - 20));
    assert.equal(first.length, fixture.listing.length);
    assert.equal(scanner.complete, false);
    assert.equal(scanner.push(fixture.pack.subarray(fixture.pack.length - 20)).length, 0);
    assert.equal(scanner.complete, true);
  });

  test('every truncation throws PACK_TRUNCATED at end()', () => {
    const step = Math.max(1, Math.floor(fixture.pack.length / 300));
    for (let len = 0; len < fixture.pack.length; len += step) {
      const scanner = new PackScanner();
      scanner.push(fixture.pack.subarray(0, len));
      expectCode(() => scanner.end(), 'PACK_TRUNCATED');
    }
    const scanner = new PackScanner();
    scanner.push(fixture.pack.subarray(0, fixture.pack.length - 1));
    expectCode(() => scanner.end(), 'PACK_TRUNCATED');
  });

  test('a flipped trailer byte throws PACK_BAD_CHECKSUM', () => {
    const bad = Buffer.from(fixture.pack);
    bad[bad.length - 1]! ^= 1;
    expectCode(() => new PackScanner().push(bad), 'PACK_BAD_CHECKSUM');
  });

  test('a flipped byte anywhere throws a typed error', () => {
    fc.assert(
      fc.property(fc.nat({ max: fixture.pack.length - 21 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Buffer.from(fixture.pack);
        bad[at]! ^= xor;
        try {
          scanChunks([bad]);
        } catch (err) {
          assert.ok(err instanceof StowageError, String(err));
          return;
        }
        assert.fail(`flipping byte ${at} went unnoticed`);
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  test('bytes after the trailer are kept as the remainder', () => {
    const scanner = new PackScanner();
    scanner.push(Buffer.concat([fixture.pack, Buffer.from('0000')]));
    assert.equal(scanner.complete, true);
    assert.equal(Buffer.from(scanner.remainder()).toString(), '0000');
    scanner.push(Buffer.from('more'));
    assert.equal(Buffer.from(scanner.remainder()).toString(), '0000more');
    assert.equal(scanner.end().packSize, fixture.pack.length);
  });

  test('limits throw LIMIT_EXCEEDED', () => {
    const tooMany = (): unknown => scanChunks([fixture.pack], { maxObjects: fixture.listing.length - 1 });
    assert.throws(tooMany, (e: unknown) => hasCode(e, 'LIMIT_EXCEEDED'));
    const biggest = Math.max(...fixture.listing.map((l) => l.size));
    assert.throws(
      () => scanChunks([fixture.pack], { maxObjectSize: biggest - 1 }),
      (e: unknown) => hasCode(e, 'LIMIT_EXCEEDED'),
    );
    assert.throws(
      () => scanChunks(split(fixture.pack, [100, 200]), { maxPackSize: fixture.pack.length - 1 }),
      (e: unknown) => hasCode(e, 'LIMIT_EXCEEDED'),
    );
    assert.doesNotThrow(() => scanChunks([fixture.pack], { maxObjects: fixture.listing.length, maxPackSize: fixture.pack.length }));
  });
});

describe('PackScanner on big objects', () => {
  let fixture: GitPack;
  before(async () => {
    fixture = await makeGitPack({ files: 2, commits: 5, lines: 40_000 });
  });

  test('streams multi-megabyte entries across chunks, holding only a few bytes between pushes', () => {
    assert.ok(fixture.listing.some((l) => l.size > 1_000_000), 'the fixture has big objects');
    const expected = scanChunks([fixture.pack]).entries.map((e) => `${e.offset}:${e.packedLength}:${e.crc32}`);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200_000 }), fc.nat(), (chunkSize, seed) => {
        const scanner = new PackScanner();
        const got: string[] = [];
        let size = chunkSize;
        let s = seed;
        for (let at = 0; at < fixture.pack.length; at += size) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          size = 1 + (s % chunkSize);
          for (const e of scanner.push(fixture.pack.subarray(at, at + size))) got.push(`${e.offset}:${e.packedLength}:${e.crc32}`);
          assert.ok(scanner.bufferedBytes < 64, `holds ${scanner.bufferedBytes} bytes`);
        }
        assert.equal(scanner.end().packSize, fixture.pack.length);
        assert.deepEqual(got, expected);
      }),
      { numRuns: 15, seed: 21 },
    );
    const resolved = resolveEntries(scanChunks([fixture.pack]).entries);
    for (const line of fixture.listing) assert.equal(resolved.get(line.offset)?.oid, line.oid);
  });
});

describe('PackScanner on hostile input', () => {
  test('random bytes after a valid header throw only StowageErrors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat({ max: 5 }), fc.array(fc.nat(), { maxLength: 5 }), (body, count, cuts) => {
        const bytes = Buffer.concat([encodePackHeader(count), body]);
        try {
          scanChunks(split(bytes, cuts));
        } catch (err) {
          assert.ok(err instanceof StowageError, String(err));
        }
      }),
      { numRuns: 500, seed: 3 },
    );
  });

  test('random bytes throw only StowageErrors, and a failed scanner stays failed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const scanner = new PackScanner();
        let first: unknown;
        try {
          scanner.push(bytes);
        } catch (err) {
          first = err;
        }
        if (first !== undefined) {
          assert.ok(first instanceof StowageError, String(first));
          assert.throws(() => scanner.push(Buffer.from('more')), (e: unknown) => e === first);
          assert.throws(() => scanner.end(), (e: unknown) => e === first);
        } else {
          assert.throws(() => scanner.end(), (e: unknown) => e instanceof StowageError);
        }
      }),
      { numRuns: 300, seed: 4 },
    );
  });

  test('an empty pack scans', () => {
    const header = encodePackHeader(0);
    const pack = Buffer.concat([header, createHash('sha1').update(header).digest()]);
    const { entries, result } = scanChunks([pack]);
    assert.equal(entries.length, 0);
    assert.equal(result.objectCount, 0);
    assert.equal(result.packSize, 32);
  });
});
