import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashObject } from '../../git/hash/object-id.js';
import { type GitPack, gitIndexPack, makeGitPack, resolveEntries, tempDir } from '../../git/pack/pack-fixtures.test-util.js';
import { PackScanner, type ScannedEntry } from '../../git/pack/scanner.js';
import { PackWriter, type RawEntryHeader } from '../../git/pack/writer.js';
import { Chunker, PIN_BYTES_MAX } from './chunker.js';
import { OutWriter } from './out-writer.js';

function drain(w: OutWriter, chunks: Uint8Array[]): void {
  if (w.ready) chunks.push(w.take()!);
}

describe('OutWriter', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let fixture: GitPack;
  let scanned: ScannedEntry[];
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    fixture = await makeGitPack({ files: 6, commits: 12 });
    const scanner = new PackScanner();
    scanned = scanner.push(fixture.pack);
    scanner.end();
  });
  after(async () => cleanup());

  test('verbatim runs of a whole stored pack give that pack back, byte for byte', () => {
    const w = new OutWriter(scanned.length, 4096);
    const chunks: Uint8Array[] = [];
    w.header();
    // Runs of 1, 2, 3, ... entries, each one view of the stored pack.
    for (let k = 0, n = 1; k < scanned.length; k += n, n++) {
      const run = scanned.slice(k, k + n);
      const last = run[run.length - 1]!;
      w.addVerbatim(fixture.pack.subarray(run[0]!.offset, last.offset + last.packedLength), run.length);
      drain(w, chunks);
    }
    w.finish();
    chunks.push(w.take()!);
    assert.ok(Buffer.concat(chunks).equals(Buffer.from(fixture.pack)));
    for (const c of chunks.slice(0, -1)) assert.ok(c.length >= 4096, 'full chunks only, but the last');
  });

  test('rewritten entries are what PackWriter writes, and git index-pack --strict accepts them', async () => {
    const resolved = resolveEntries(scanned);
    const extra = Buffer.from('one more blob that moves every offset\n');
    const w = new OutWriter(scanned.length + 1, 1000);
    const p = new PackWriter(scanned.length + 1);
    const chunks: Uint8Array[] = [];
    const expected: Uint8Array[] = [p.header()];
    w.header();
    w.addObject('blob', extra);
    expected.push(p.addObject('blob', extra));
    const newOffset = new Map<number, number>();
    for (const [k, e] of scanned.entries()) {
      const compressed = fixture.pack.subarray(e.offset + e.header.headerLength, e.offset + e.packedLength);
      newOffset.set(e.offset, w.offset);
      let header: RawEntryHeader = { type: e.header.type, size: e.header.size };
      if (e.header.type === 'ofs-delta') {
        header =
          k % 2 === 0
            ? { type: 'ofs-delta', size: e.header.size, baseOutputOffset: newOffset.get(e.header.baseOffset!)! }
            : { type: 'ref-delta', size: e.header.size, baseId: resolved.get(e.header.baseOffset!)!.oid };
      }
      w.addRaw(header, compressed);
      expected.push(p.addRaw(header, compressed, resolved.get(e.offset)!.oid));
      assert.equal(w.offset, p.offset);
      drain(w, chunks);
    }
    w.finish();
    expected.push(p.finish());
    chunks.push(w.take()!);
    const pack = Buffer.concat(chunks);
    assert.ok(pack.equals(Buffer.concat(expected)));
    const git = await gitIndexPack(dir, pack, ['--strict']);
    assert.equal(git.listing.length, scanned.length + 1);
    assert.ok(git.listing.some((l) => l.oid === hashObject('blob', extra)));
  });

  test('misuse is refused: entries before the header, more entries than announced', () => {
    const w = new OutWriter(1);
    assert.throws(() => w.addObject('blob', Buffer.from('a')), /header\(\)/);
    w.header();
    w.addVerbatim(new Uint8Array(3), 1);
    assert.throws(() => w.addObject('blob', Buffer.from('a')), /no room/);
  });
});

describe('Chunker', () => {
  test('keeps views as they are until the blocks they pin pass PIN_BYTES_MAX, then copies', () => {
    const blockSize = 1024 * 1024;
    const blocks = Array.from({ length: PIN_BYTES_MAX / blockSize + 3 }, (_, i) => Buffer.alloc(blockSize, i));
    const c = new Chunker(64 * 1024 * 1024);
    const pieces = blocks.flatMap((b) => [b.subarray(10, 20), b.subarray(30, 40)]);
    for (const p of pieces) c.push(p);
    // Within the limit a block is pinned once for both of its pieces; past it both are copied.
    assert.equal(c.copies, 2 * 3);
    assert.ok(Buffer.from(c.take()!).equals(Buffer.concat(pieces)));
    // A new chunk starts with nothing pinned.
    c.push(blocks[0]!.subarray(0, 5));
    assert.equal(c.copies, 6);
  });
});
