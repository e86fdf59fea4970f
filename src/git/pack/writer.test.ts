import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import type { ObjectType } from '../object/object-type.js';
import { createDelta } from './delta.js';
import { encodeIdx } from './idx.js';
import { deflate } from './inflate.js';
import { type GitPack, gitIndexPack, gitVerifyPack, makeGitPack, resolveEntries, tempDir } from './pack-fixtures.test-util.js';
import { PackScanner } from './scanner.js';
import { PackWriter } from './writer.js';

function treeOf(entries: { mode: string; name: string; oid: ObjectId }[]): Buffer {
  return Buffer.concat(entries.map((e) => Buffer.concat([Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.oid, 'hex')])));
}

function commitOf(tree: ObjectId, parent: ObjectId | undefined, msg: string): Buffer {
  const who = 'A U Thor <author@example.com> 1700000000 +0000';
  return Buffer.from(`tree ${tree}\n${parent ? `parent ${parent}\n` : ''}author ${who}\ncommitter ${who}\n\n${msg}\n`);
}

describe('PackWriter', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let fixture: GitPack;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    fixture = await makeGitPack({ files: 6, commits: 12 });
  });
  after(async () => cleanup());

  test('whole objects: git index-pack --strict accepts the pack and writes our idx', async () => {
    const objects: { type: ObjectType; data: Buffer }[] = [];
    const blobs = [Buffer.from('hello\n'), randomBytes(70_000), Buffer.alloc(0), Buffer.from('x'.repeat(5000))];
    for (const b of blobs) objects.push({ type: 'blob', data: b });
    const tree = treeOf(
      blobs.map((b, i) => ({ mode: '100644', name: `f${i}`, oid: hashObject('blob', b) })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
    objects.push({ type: 'tree', data: tree });
    const c1 = commitOf(hashObject('tree', tree), undefined, 'first');
    objects.push({ type: 'commit', data: c1 });
    objects.push({ type: 'commit', data: commitOf(hashObject('tree', tree), hashObject('commit', c1), 'second') });

    const w = new PackWriter(objects.length);
    const parts: Uint8Array[] = [w.header()];
    for (const [i, o] of objects.entries()) parts.push(w.addObject(o.type, o.data, i % 3 === 0 ? 1 : undefined, hashObject(o.type, o.data)));
    assert.equal(w.offset, parts.reduce((n, p) => n + p.length, 0));
    parts.push(w.finish());
    const pack = Buffer.concat(parts);
    assert.equal(w.checksum, pack.subarray(-20).toString('hex'));

    const git = await gitIndexPack(dir, pack, ['--strict']);
    const ours = encodeIdx(w.entries(), w.checksum);
    assert.ok(Buffer.from(ours).equals(Buffer.from(git.idx)));
    assert.equal(git.listing.length, objects.length);
    assert.deepEqual(await gitVerifyPack(dir, pack, ours), git.listing);

    // And our scanner reads back exactly what was written.
    const scanner = new PackScanner();
    const scanned = scanner.push(pack);
    assert.equal(scanner.end().checksum, w.checksum);
    assert.deepEqual(
      scanned.map((e) => Buffer.from(e.data).toString('hex')),
      objects.map((o) => o.data.toString('hex')),
    );
  });

  test('raw entries: git pack entries copied with new offsets, as ofs- and ref-deltas', async () => {
    const scanner = new PackScanner();
    const scanned = scanner.push(fixture.pack);
    scanner.end();
    const resolved = resolveEntries(scanned);
    // One extra whole object first shifts every offset, so each ofs-delta distance is recomputed.
    const extra = Buffer.from('an extra blob that moves everything\n');
    const w = new PackWriter(scanned.length + 2);
    const parts: Uint8Array[] = [w.header()];
    parts.push(w.addObject('blob', extra, undefined, hashObject('blob', extra)));
    const newOffset = new Map<number, number>();
    let deltas = 0;
    for (const [k, e] of scanned.entries()) {
      const compressed = fixture.pack.subarray(e.offset + e.header.headerLength, e.offset + e.packedLength);
      const oid = resolved.get(e.offset)!.oid;
      newOffset.set(e.offset, w.offset);
      if (e.header.type === 'ofs-delta') {
        deltas++;
        const baseOffset = e.header.baseOffset!;
        const header =
          k % 2 === 0
            ? { type: 'ofs-delta' as const, size: e.header.size, baseOutputOffset: newOffset.get(baseOffset)! }
            : { type: 'ref-delta' as const, size: e.header.size, baseId: resolved.get(baseOffset)!.oid };
        parts.push(w.addRaw(header, compressed, oid));
      } else {
        parts.push(w.addRaw({ type: e.header.type, size: e.header.size }, compressed, oid));
      }
    }
    assert.ok(deltas > 10);
    // A delta made by createDelta against an object earlier in this output.
    const first = scanned.find((e) => e.header.type === 'blob')!;
    const base = resolved.get(first.offset)!;
    const target = Buffer.concat([Buffer.from(base.data), Buffer.from('appended line\n')]);
    const delta = createDelta(base.data, target);
    parts.push(
      w.addRaw(
        { type: 'ofs-delta', size: delta.length, baseOutputOffset: newOffset.get(first.offset)! },
        deflate(delta),
        hashObject('blob', target),
      ),
    );
    parts.push(w.finish());
    const pack = Buffer.concat(parts);
    const git = await gitIndexPack(dir, pack);
    assert.ok(Buffer.from(encodeIdx(w.entries(), w.checksum)).equals(Buffer.from(git.idx)));
    assert.equal(git.listing.length, scanned.length + 2);
  });

  test('misuse is refused', () => {
    const w = new PackWriter(1);
    assert.throws(() => w.addObject('blob', Buffer.from('a')), /header\(\)/);
    w.header();
    assert.throws(() => w.header());
    assert.throws(() => w.finish(), /1 objects but 0/);
    assert.throws(() => w.addRaw({ type: 'ofs-delta', size: 1, baseOutputOffset: 12 }, deflate(Buffer.from('x'))), RangeError);
    assert.throws(() => w.addRaw({ type: 'ref-delta', size: 1 }, deflate(Buffer.from('x'))), RangeError);
    w.addObject('blob', Buffer.from('a'));
    assert.throws(() => w.addObject('blob', Buffer.from('b')), /no room/);
    assert.throws(() => w.checksum);
    assert.equal(w.finish().length, 20);
    assert.equal(w.entries().length, 0);
  });
});
