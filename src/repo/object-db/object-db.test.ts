import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StowageError } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import { FsStore } from '../../storage/fs/fs-store.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { createRepoCaches } from '../cache/repo-caches.js';
import { idxKey, packKey } from '../keys.js';
import { readCommitLinks } from './commit-links.js';
import { ObjectDb } from './object-db.js';
import { applyDelta } from '../../git/pack/delta.js';
import { encodeIdx, type IdxEntry } from '../../git/pack/idx.js';
import { PackScanner } from '../../git/pack/scanner.js';
import type { ObjectType } from '../../git/object/object-type.js';
import { allObjects, buildFixture, git, gitLines, storePacks, type GitFixture } from './testing/git-fixture.js';

let fx: GitFixture;
let fsRoot: string;
let expected: { oid: ObjectId; type: string; size: number }[];

before(async () => {
  fx = await buildFixture();
  expected = await allObjects(fx.oracle);
  fsRoot = await mkdtemp(join(tmpdir(), 'stowage-objdb-'));
});
after(async () => {
  await fx.cleanup();
  await rm(fsRoot, { recursive: true, force: true });
});

async function open(store: ObjectStore, opts: { blockSize?: number; objectCacheMb?: number } = {}): Promise<ObjectDb> {
  const caches = createRepoCaches({
    blockCacheMb: 4,
    indexCacheMb: 4,
    objectCacheMb: opts.objectCacheMb ?? 8,
    ...(opts.blockSize === undefined ? {} : { blockSize: opts.blockSize }),
  });
  const records = await storePacks(store, 'r1', fx.packs);
  return ObjectDb.open({ store, repoId: 'r1', caches }, records);
}

for (const kind of ['memory', 'fs'] as const) {
  describe(`ObjectDb over ${kind} store`, () => {
    const makeStore = (): ObjectStore =>
      kind === 'memory' ? new MemoryStore({ blockSize: 64 * 1024 }) : new FsStore({ root: join(fsRoot, `s-${Math.random()}`) });

    test('every object reads back with the type, size and id git reports', async () => {
      // A tiny object cache forces delta chains to be resolved from the packs again and again.
      const db = await open(makeStore(), { objectCacheMb: 0.05, blockSize: 4096 });
      assert.equal(expected.length > 1500, true);
      for (const e of expected) {
        const obj = await db.tryReadObject(e.oid);
        assert.ok(obj, `missing ${e.oid}`);
        assert.equal(obj.type, e.type, e.oid);
        assert.equal(obj.data.byteLength, e.size, e.oid);
        assert.equal(hashObject(obj.type, obj.data), e.oid);
      }
    });

    test('tryReadHeader agrees with git for every object, cold and warm', async () => {
      const db = await open(makeStore());
      for (const pass of [1, 2]) {
        for (const e of expected) {
          const h = await db.tryReadHeader(e.oid);
          assert.deepEqual(h, { type: e.type, size: e.size }, `${e.oid} pass ${pass}`);
        }
        // Warm the object cache for the second pass.
        for (const e of expected.slice(0, 300)) await db.readObject(e.oid);
      }
    });

    test('absent objects are undefined / OBJ_MISSING', async () => {
      const db = await open(makeStore());
      const none = 'f'.repeat(40) as ObjectId;
      assert.equal(db.has(none), false);
      assert.equal(await db.tryReadObject(none), undefined);
      assert.equal(await db.tryReadHeader(none), undefined);
      assert.equal(await db.tryReadRawEntry(none), undefined);
      await assert.rejects(db.readObject(none), (e: unknown) => e instanceof StowageError && e.code === 'OBJ_MISSING');
    });
  });
}

describe('ObjectDb details', () => {
  test('the packs hold ofs-deltas, ref-deltas and objects present in both packs', async () => {
    const db = await open(new MemoryStore());
    const kinds = new Map<string, number>();
    let dupes = 0;
    for (const e of expected) {
      const raw = await db.tryReadRawEntry(e.oid, { verifyCrc: true });
      assert.ok(raw);
      kinds.set(raw.header.type, (kinds.get(raw.header.type) ?? 0) + 1);
      if (raw.baseId !== undefined) {
        // The base named by the entry really is the object the delta applies to.
        assert.ok(db.has(raw.baseId));
      }
      if (db.packs.filter((p) => p.index.has(e.oid)).length > 1) dupes++;
    }
    assert.ok((kinds.get('ofs-delta') ?? 0) > 100, `ofs-deltas: ${JSON.stringify([...kinds])}`);
    assert.ok((kinds.get('ref-delta') ?? 0) > 0, `ref-deltas: ${JSON.stringify([...kinds])}`);
    assert.ok(dupes > 0, 'the completed thin pack repeats some objects of the old pack');
  });

  test('commit links match git log', async () => {
    const db = await open(new MemoryStore());
    const lines = await gitLines(fx.oracle, ['log', '--all', '--format=%H %T %ct %P']);
    assert.ok(lines.length > 300);
    for (const line of lines) {
      const [oid, tree, time, ...parents] = line.split(' ');
      const links = await readCommitLinks(db, oid as ObjectId);
      assert.equal(links.tree, tree);
      assert.equal(links.committerTime, Number(time));
      assert.deepEqual(links.parents, parents.filter((p) => p !== ''));
    }
    const tree = lines[0]!.split(' ')[1] as ObjectId;
    await assert.rejects(readCommitLinks(db, tree), (e: unknown) => e instanceof StowageError && e.code === 'OBJ_BAD_TYPE');
  });

  test('a corrupted pack byte is REPO_CORRUPT (never wrong data) and fails the CRC check', async () => {
    const store = new MemoryStore();
    const db = await open(store);
    const pack = db.packs[1]!;
    // Pick a commit stored whole, corrupt a byte in its compressed body.
    let victim: { oid: ObjectId; offset: number } | undefined;
    for (const e of expected) {
      if (e.type !== 'commit') continue;
      const i = pack.index.findIndex(e.oid);
      if (i < 0) continue;
      const raw = await db.tryReadRawEntry(e.oid);
      if (raw?.pack === pack && raw.header.type === 'commit') {
        victim = { oid: e.oid, offset: pack.index.offsetAt(i) };
        break;
      }
    }
    assert.ok(victim);
    const bytes = Buffer.from(await store.get(packKey('r1', pack.record.name)));
    bytes[victim.offset + 6]! ^= 0xff;
    await store.put(packKey('r1', pack.record.name), bytes);
    const fresh = await ObjectDb.open(
      { store, repoId: 'r1', caches: createRepoCaches({ blockCacheMb: 1, indexCacheMb: 1, objectCacheMb: 1 }) },
      db.packs.map((p) => p.record),
    );
    const isCorrupt = (e: unknown): boolean => e instanceof StowageError && e.code === 'REPO_CORRUPT';
    await assert.rejects(fresh.tryReadRawEntry(victim.oid, { verifyCrc: true }), isCorrupt);
    await assert.rejects(fresh.readObject(victim.oid), isCorrupt);
  });

  test('ref-deltas whose base is in another pack resolve (a thin pack stored as it came)', async () => {
    const store = new MemoryStore();
    const full = await open(store);
    const thin = await git(fx.oracle, ['pack-objects', '--revs', '--thin', '--stdout', '-q'], `refs/heads/main\n^${fx.splitCommit}\n`);
    // Index the thin pack ourselves: git refuses to index a pack with external bases.
    const scanner = new PackScanner();
    const entries = scanner.push(thin);
    const { checksum } = scanner.end();
    const byOffset = new Map<number, { type: ObjectType; data: Uint8Array }>();
    const idx: IdxEntry[] = [];
    let external = 0;
    for (const e of entries) {
      let obj: { type: ObjectType; data: Uint8Array };
      if (e.header.type === 'ofs-delta') {
        const base = byOffset.get(e.header.baseOffset!)!;
        obj = { type: base.type, data: applyDelta(base.data, e.data) };
      } else if (e.header.type === 'ref-delta') {
        const inPack = idx.find((x) => x.oid === e.header.baseId);
        const base = inPack !== undefined ? byOffset.get(inPack.offset)! : await full.readObject(e.header.baseId!);
        if (inPack === undefined) external++;
        obj = { type: base.type, data: applyDelta(base.data, e.data) };
      } else {
        obj = { type: e.header.type as ObjectType, data: e.data };
      }
      byOffset.set(e.offset, obj);
      idx.push({ oid: hashObject(obj.type, obj.data), offset: e.offset, crc32: e.crc32 });
    }
    assert.ok(external > 0, 'the thin pack has deltas against objects it does not hold');
    const name = `pack-${checksum}`;
    await store.put(packKey('r3', name), thin);
    await store.put(idxKey('r3', name), encodeIdx(idx, checksum));
    const [, packA] = await storePacks(store, 'r3', fx.packs);
    const db = await ObjectDb.open(
      { store, repoId: 'r3', caches: createRepoCaches({ blockCacheMb: 1, indexCacheMb: 1, objectCacheMb: 0.1 }) },
      [{ name, size: thin.length, objects: idx.length, createdMs: 0, source: 'receive' }, packA!],
    );
    for (const e of idx) {
      const obj = await db.readObject(e.oid);
      assert.equal(hashObject(obj.type, obj.data), e.oid);
      assert.equal((await db.tryReadHeader(e.oid))?.type, obj.type);
    }
  });

  test('a missing idx is STORE_NOT_FOUND and a bad one REPO_CORRUPT', async () => {
    const store = new MemoryStore();
    const records = await storePacks(store, 'r1', fx.packs);
    const caches = createRepoCaches({ blockCacheMb: 1, indexCacheMb: 1, objectCacheMb: 1 });
    await assert.rejects(
      ObjectDb.open({ store, repoId: 'r1', caches }, [{ ...records[0]!, name: `pack-${'0'.repeat(40)}` }]),
      (e: unknown) => e instanceof StowageError && e.code === 'STORE_NOT_FOUND',
    );
    await store.put(`repos/r2/pack/${records[0]!.name}.idx`, Buffer.from('not an index'));
    await assert.rejects(
      ObjectDb.open({ store, repoId: 'r2', caches }, [records[0]!]),
      (e: unknown) => e instanceof StowageError && e.code === 'REPO_CORRUPT',
    );
  });
});
