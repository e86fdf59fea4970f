import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { PackScanner } from '../../git/pack/scanner.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { ObjectDb } from '../object-db/object-db.js';
import { walkSourceOf } from '../object-db/testing/db-source.js';
import { buildFixture, git, gitLines, storePacks, type GitFixture } from '../object-db/testing/git-fixture.js';
import { enumerateObjects } from '../walk/enumerate.js';
import { newPackOutStats, packObjects, type PackOutOptions, type PackOutStats } from './pack-objects.js';

let fx: GitFixture;
let db: ObjectDb;
let n = 0;
const ref = (name: string): ObjectId => fx.refs.get(name)!.oid;

before(async () => {
  fx = await buildFixture();
  const store = new MemoryStore();
  const records = await storePacks(store, 'r1', fx.packs);
  db = await ObjectDb.open({ store, repoId: 'r1', caches: createRepoCaches({ blockCacheMb: 8, indexCacheMb: 4, objectCacheMb: 16 }) }, records);
});
after(() => fx.cleanup());

async function collect(objects: readonly ObjectId[], opts: PackOutOptions, stats?: PackOutStats): Promise<{ pack: Buffer; chunks: number[] }> {
  const chunks: Uint8Array[] = [];
  for await (const c of packObjects(db, objects, opts, stats)) chunks.push(c);
  return { pack: Buffer.concat(chunks), chunks: chunks.map((c) => c.byteLength) };
}

function newStats(): PackOutStats {
  return newPackOutStats();
}

/** Indexes `pack` in a new bare repo (optionally seeded with the files of stored pack `seed`); returns the ids it holds. */
async function indexPack(pack: Uint8Array, opts: { fixThin?: boolean; seed?: string } = {}): Promise<{ dir: string; oids: string[] }> {
  const dir = join(fx.root, `ip-${n++}`);
  await git(fx.root, ['init', '-q', '--bare', dir]);
  if (opts.seed !== undefined) {
    for (const ext of ['pack', 'idx']) {
      await copyFile(join(fx.oracle, 'objects', 'pack', `${opts.seed}.${ext}`), join(dir, 'objects', 'pack', `${opts.seed}.${ext}`));
    }
  }
  const out = (await git(dir, ['index-pack', '--stdin', ...(opts.fixThin === true ? ['--fix-thin'] : [])], pack)).toString().trim();
  const name = `pack-${out.split(/\s+/).pop()}`;
  const lines = (await git(dir, ['show-index'], await readFile(join(dir, 'objects', 'pack', `${name}.idx`)))).toString().trim().split('\n');
  return { dir, oids: lines.map((l) => l.split(' ')[1]!) };
}

function sameSet(a: readonly string[], b: readonly string[], what: string): void {
  assert.deepEqual([...new Set(a)].sort(), [...new Set(b)].sort(), what);
}

describe('packObjects', () => {
  test('a full pack of every ref is accepted by git index-pack and holds exactly the objects', async () => {
    const wants = [...fx.refs.values()].map((v) => v.oid);
    const { objects } = await enumerateObjects(walkSourceOf(db), { wants, haves: [] });
    const stats = newStats();
    const { pack, chunks } = await collect(objects, { thin: false, ofsDelta: true }, stats);
    const { dir, oids } = await indexPack(pack);
    sameSet(oids, objects, 'object set');
    assert.ok(stats.reusedDelta > objects.length / 3, `stored deltas reused: ${JSON.stringify(stats)}`);
    assert.ok(stats.inflated < objects.length / 20, `few objects re-deflated: ${JSON.stringify(stats)}`);
    assert.equal(stats.reusedWhole + stats.reusedDelta + stats.inflated, objects.length);
    // Streamed in chunks of at least 64 KiB, except the last.
    for (const c of chunks.slice(0, -1)) assert.ok(c >= 64 * 1024);
    assert.ok(pack.length < fx.packs.reduce((s, p) => s + p.pack.length, 0) * 1.2, 'reuse keeps the pack small');
    // The repository the pack makes is whole.
    await git(dir, ['update-ref', 'refs/heads/main', ref('refs/heads/main')]);
    await git(dir, ['fsck', '--no-dangling']);
  });

  test('without ofs-delta, stored ofs-deltas become ref-deltas', async () => {
    const { objects } = await enumerateObjects(walkSourceOf(db), { wants: [ref('refs/heads/main')], haves: [] });
    const { pack } = await collect(objects, { thin: false, ofsDelta: false });
    const scanner = new PackScanner();
    const types = new Map<string, number>();
    for (const e of scanner.push(pack)) types.set(e.header.type, (types.get(e.header.type) ?? 0) + 1);
    scanner.end();
    assert.equal(types.get('ofs-delta') ?? 0, 0);
    assert.ok((types.get('ref-delta') ?? 0) > 100, JSON.stringify([...types]));
    sameSet((await indexPack(pack)).oids, objects, 'object set');
  });

  test('a thin pack reuses deltas against the client edge and completes with --fix-thin', async () => {
    const main = ref('refs/heads/main');
    const res = await enumerateObjects(walkSourceOf(db), { wants: [main], haves: [fx.splitCommit] });
    const stats = newStats();
    const thin = await collect(res.objects, { thin: true, ofsDelta: true, haves: [fx.splitCommit], edges: res.edges }, stats);
    const full = await collect(res.objects, { thin: false, ofsDelta: true });
    assert.ok(thin.pack.length < full.pack.length, `thin ${thin.pack.length} < full ${full.pack.length}`);
    // The client has exactly the history up to the split commit: pack A of the fixture.
    const { dir, oids } = await indexPack(thin.pack, { fixThin: true, seed: fx.packs[1]!.name });
    assert.ok(oids.length > res.objects.length, 'completed with local bases');
    for (const o of res.objects) assert.ok(oids.includes(o));
    await git(dir, ['update-ref', 'refs/heads/main', main]);
    await git(dir, ['fsck', '--no-dangling', '--connectivity-only']);
    const listed = await gitLines(dir, ['rev-list', '--objects', main]);
    assert.ok(listed.length > 1000);
  });

  test('objects that are exactly one stored pack are sent as that pack', async () => {
    const packA = db.packs[1]!;
    const objects: ObjectId[] = [];
    for (let i = 0; i < packA.index.count; i++) objects.push(packA.index.oidAt(i));
    const stats = newStats();
    const { pack } = await collect(objects, { thin: false, ofsDelta: true }, stats);
    assert.equal(stats.wholePack, true);
    assert.ok(pack.equals(fx.packs[1]!.pack));
    const again = await collect(objects, { thin: false, ofsDelta: true, reuseWholePack: false });
    sameSet((await indexPack(again.pack)).oids, objects, 'rebuilt pack');
  });

  test('an empty list is a valid empty pack; duplicates are sent once', async () => {
    const empty = await collect([], { thin: false, ofsDelta: true });
    assert.equal(empty.pack.length, 32);
    const c = ref('refs/heads/main');
    const { oids } = await indexPack((await collect([c, c, c], { thin: false, ofsDelta: true })).pack);
    assert.deepEqual(oids, [c]);
  });

  test('a missing object is OBJ_MISSING and the signal aborts the stream', async () => {
    const none = 'c'.repeat(40) as ObjectId;
    await assert.rejects(collect([ref('refs/heads/main'), none], { thin: false, ofsDelta: true }), (e: unknown) => e instanceof StowageError && e.code === 'OBJ_MISSING');
    const ac = new AbortController();
    ac.abort(new Error('client gone'));
    const { objects } = await enumerateObjects(walkSourceOf(db), { wants: [ref('refs/heads/main')], haves: [] });
    await assert.rejects(collect(objects, { thin: false, ofsDelta: true, signal: ac.signal, reuseWholePack: false }), /client gone/);
  });

  test('reports writing progress up to the total', async () => {
    const { objects } = await enumerateObjects(walkSourceOf(db), { wants: [ref('refs/heads/side')], haves: [] });
    const seen: [string, number, number | undefined][] = [];
    await collect(objects, { thin: false, ofsDelta: true, onProgress: (p, d, t) => seen.push([p, d, t]) });
    assert.deepEqual(seen.at(-1), ['Writing objects', objects.length, objects.length]);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]![1] >= seen[i - 1]![1]);
  });
});

