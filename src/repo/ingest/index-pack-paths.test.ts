import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ProtocolError, ValidationError, hasCode } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import { createDelta } from '../../git/pack/delta.js';
import { PackIndex } from '../../git/pack/idx.js';
import { finishReferenceAccel, ReferenceCollector } from './collector-reference.test-util.js';
import { longestDeltaChain, typeName } from './entry-table.js';
import { makeHistory } from './git-history.test-util.js';
import { indexPack, type IndexedPack, type IndexPackOptions } from './index-pack.js';
import { MapObjects, chunked, commitText, craftPack, gitRun, tempDir, treeEntry, type CraftEntry } from './ingest-fixtures.test-util.js';
import { SpoolFile } from './spool.js';
import { PackVerifier, type PackLookup } from './verify.js';

/** The accelerator the collector of before would have written for an indexed pack (replayed entry by entry). */
function referenceAccel(p: IndexedPack): Uint8Array {
  const t = p.table;
  const ref = new ReferenceCollector();
  for (let i = 0; i < t.count; i++) {
    const data = p.reader.readObject(i).data;
    const base = p.reader.baseOf(i);
    if (base < 0) ref.add(i, t.type[i]!, data);
    else ref.add(i, t.type[i]!, data, base, p.reader.readObject(base).data);
  }
  const idx = PackIndex.decode(p.idx!);
  const positionOf = new Int32Array(t.count);
  for (let i = 0; i < t.count; i++) positionOf[i] = idx.findIndex(t.oidHex(i));
  return finishReferenceAccel(ref, {
    packChecksum: p.checksum!,
    idx: p.idx!,
    entries: t.count,
    positionOf,
    typeOf: (i) => t.type[i]!,
    sizeOf: (i) => t.objectSize[i]!,
    selfContained: true,
    longestChain: longestDeltaChain(t, (i) => (t.kind[i] === 7 ? p.reader.baseOf(i) : undefined)),
  });
}

async function indexed<T>(dir: string, pack: Uint8Array, opts: IndexPackOptions, use: (p: IndexedPack) => Promise<T> | T): Promise<T> {
  const spool = await SpoolFile.create(dir);
  try {
    return await use(await indexPack(chunked(pack, 65536), spool, opts));
  } finally {
    await spool.remove();
  }
}

/** What ingest.ts gives PackVerifier.finish, for an indexed pack. */
function lookup(p: IndexedPack): PackLookup {
  const t = p.table;
  return {
    typeOf: (oid) => {
      const i = p.byOid.get(oid);
      return i === undefined ? undefined : typeName(t.type[i]!);
    },
    sizeOf: (oid) => t.objectSize[p.byOid.get(oid)!]!,
    read: async (oid) => p.reader.readObject(p.byOid.get(oid)!).data,
    typeCodeRaw: (buf, off) => {
      const i = p.byOid.findRaw(buf, off);
      return i < 0 ? 0 : t.type[i]!;
    },
  };
}

/** Indexes and verifies a pack as ingest does; threads 2 with workerMinDeltas 1 forces the worker path. */
async function verifyPack(dir: string, pack: Uint8Array, workers: boolean, repo = new MapObjects()): Promise<void> {
  const verifier = new PackVerifier({});
  const opts: IndexPackOptions = workers ? { verifier, threads: 2, workerMinDeltas: 1 } : { verifier, threads: 1 };
  await indexed(dir, pack, { ...opts, readBase: (oid) => repo.tryReadObject(oid) }, (p) => verifier.finish(lookup(p), repo, []));
}

describe('indexPack: the accelerator and links whichever path resolves', () => {
  for (const h of [{ commits: 80, files: 4, lines: 60, tagsAt: [10, 40] }, { commits: 150, files: 2, lines: 300, seed: 7 }]) {
    test(`idx and accelerator equal the reference collector's, on the calling thread and on workers (${h.commits} commits)`, async () => {
      const { dir, cleanup } = await tempDir();
      try {
        const repo = join(dir, 'repo');
        await mkdir(repo);
        await makeHistory(repo, h);
        const pack = await gitRun(repo, ['pack-objects', '--stdout', '--revs', '--all', '--delta-base-offset', '--depth=20']);
        const single = await indexed(dir, pack, { threads: 1 }, (p) => ({ idx: p.idx!, accel: p.accelerator()!, reference: referenceAccel(p) }));
        assert.deepEqual(Buffer.from(single.accel), Buffer.from(single.reference));
        const threaded = await indexed(dir, pack, { threads: 2, workerMinDeltas: 1 }, (p) => ({ idx: p.idx!, accel: p.accelerator()! }));
        assert.deepEqual(Buffer.from(threaded.idx), Buffer.from(single.idx));
        assert.deepEqual(Buffer.from(threaded.accel), Buffer.from(single.accel));
        // Tight memory: deltas re-read and bases rebuilt, the same file.
        const tight = await indexed(dir, pack, { threads: 1, deltaMemory: 0, baseCacheMemory: 1 }, (p) => p.accelerator()!);
        assert.deepEqual(Buffer.from(tight), Buffer.from(single.accel));
      } finally {
        await cleanup();
      }
    });
  }

  const blob = Buffer.from('one\n');
  const blobId = hashObject('blob', blob);
  const missing = 'ab'.repeat(20) as ObjectId;
  const base = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'c', blobId)]);

  for (const workers of [false, true]) {
    const where = workers ? 'worker threads' : 'the calling thread';
    test(`an entry a tree delta adds is linked: a missing object is found (${where})`, async () => {
      const { dir, cleanup } = await tempDir();
      try {
        const target = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'b', missing), treeEntry('100644', 'c', blobId)]);
        const pack = craftPack([{ type: 'tree', data: base }, { ofsDelta: 0, delta: createDelta(base, target) }, { type: 'blob', data: blob }]);
        await assert.rejects(verifyPack(dir, pack, workers), (e: unknown) => hasCode(e, 'CONNECTIVITY_FAILED') && e instanceof ValidationError && e.message.includes(missing));
        // Named as a tree while the pack has it as a blob: a type error, as before.
        const wrongType = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('40000', 'b', blobId)]);
        const pack2 = craftPack([{ type: 'tree', data: base }, { ofsDelta: 0, delta: createDelta(base, wrongType) }, { type: 'blob', data: blob }]);
        await assert.rejects(verifyPack(dir, pack2, workers), (e: unknown) => hasCode(e, 'FSCK_FAILED') && /named both as blob and as tree|expected type/.test((e as Error).message));
        // The same delta with every entry present passes.
        const fine = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'b', blobId)]);
        await verifyPack(dir, craftPack([{ type: 'tree', data: base }, { ofsDelta: 0, delta: createDelta(base, fine) }, { type: 'blob', data: blob }]), workers);
      } finally {
        await cleanup();
      }
    });

    test(`errors in delta resolution come back typed (${where})`, async () => {
      const { dir, cleanup } = await tempDir();
      try {
        // A copy past the end of the base.
        const badDelta = Buffer.from([base.length, 40, 0x91, base.length - 4, 40]);
        const bad: CraftEntry[] = [{ type: 'tree', data: base }, { ofsDelta: 0, delta: badDelta }, { type: 'blob', data: blob }];
        await assert.rejects(verifyPack(dir, craftPack(bad), workers), (e: unknown) => hasCode(e, 'PACK_BAD_DELTA') && e instanceof ProtocolError);
        // A delta whose result is not a tree: fsck's badTree, an error.
        const junk = Buffer.from('this is not a tree at all, not even close to one\n');
        const pack = craftPack([{ type: 'tree', data: base }, { ofsDelta: 0, delta: createDelta(base, junk) }, { type: 'blob', data: blob }]);
        await assert.rejects(verifyPack(dir, pack, workers), (e: unknown) => hasCode(e, 'FSCK_FAILED') && e instanceof ValidationError && /badTree/.test((e as Error).message));
      } finally {
        await cleanup();
      }
    });
  }

  test('a bad delta fails the same way whether a worker or this thread resolves its batch', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      // Two roots with 300 deltas each: two batches, the first to the worker, the second to this thread.
      const a = Buffer.from('root a\n'.repeat(20));
      const b = Buffer.from('root b\n'.repeat(20));
      const make = (badIn: 'a' | 'b' | undefined): Uint8Array => {
        const entries: CraftEntry[] = [{ type: 'blob', data: a }];
        for (let k = 0; k < 300; k++) entries.push({ ofsDelta: 0, delta: createDelta(a, Buffer.concat([a, Buffer.from(`a ${k}\n`)])) });
        const bAt = entries.length;
        entries.push({ type: 'blob', data: b });
        for (let k = 0; k < 300; k++) entries.push({ ofsDelta: bAt, delta: createDelta(b, Buffer.concat([b, Buffer.from(`b ${k}\n`)])) });
        // A copy past the end of its base.
        const bad = (base: Buffer): Buffer => Buffer.from([base.length, 40, 0x91, base.length - 4, 40]);
        if (badIn === 'a') entries[150] = { ofsDelta: 0, delta: bad(a) };
        if (badIn === 'b') entries[bAt + 150] = { ofsDelta: bAt, delta: bad(b) };
        return craftPack(entries);
      };
      const opts: IndexPackOptions = { threads: 2, workerMinDeltas: 1 };
      const good = await indexed(dir, make(undefined), opts, (p) => p.idx!);
      assert.deepEqual(Buffer.from(good), Buffer.from((await indexed(dir, make(undefined), { threads: 1 }, (p) => p.idx!))));
      for (const where of ['a', 'b'] as const) {
        await assert.rejects(indexed(dir, make(where), opts, () => undefined), (e: unknown) => hasCode(e, 'PACK_BAD_DELTA') && e instanceof ProtocolError);
      }
    } finally {
      await cleanup();
    }
  });

  test('a tree delta on a thin base (not checked here) still links every entry', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      // The repository holds the base tree but not the object its entry "c" names.
      const repo = new MapObjects();
      const thinBase = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'c', missing)]);
      repo.add('tree', thinBase);
      const target = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'b', blobId), treeEntry('100644', 'c', missing)]);
      const tip = commitText(hashObject('tree', target), []);
      const pack = craftPack([{ type: 'commit', data: tip }, { refDelta: hashObject('tree', thinBase), delta: createDelta(thinBase, target) }, { type: 'blob', data: blob }]);
      await assert.rejects(verifyPack(dir, pack, false, repo), (e: unknown) => hasCode(e, 'CONNECTIVITY_FAILED') && (e as Error).message.includes(missing));
      // With the object present (and the right type) the same pack is accepted.
      const present = Buffer.from('present\n');
      const ok = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'c', hashObject('blob', present))]);
      const repo2 = new MapObjects();
      repo2.add('tree', ok);
      repo2.add('blob', present);
      const target2 = Buffer.concat([treeEntry('100644', 'a', blobId), treeEntry('100644', 'b', blobId), treeEntry('100644', 'c', hashObject('blob', present))]);
      const pack2 = craftPack([{ refDelta: hashObject('tree', ok), delta: createDelta(ok, target2) }, { type: 'blob', data: blob }]);
      await verifyPack(dir, pack2, false, repo2);
    } finally {
      await cleanup();
    }
  });
});
