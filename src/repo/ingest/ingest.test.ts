import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import { hasCode } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { idxKey, packKey } from '../keys.js';
import type { ReceivePackOptions } from '../repository.js';
import { makeHistory } from './git-history.test-util.js';
import { ingestPack, type IngestDeps } from './ingest.js';
import { MapObjects, chunked, gitRun, gitText, loadObjects, tempDir } from './ingest-fixtures.test-util.js';

const REPO_ID = 'r1';

function deps(store: MemoryStore, objects: MapObjects, spoolDir: string): IngestDeps {
  return { store, repoId: REPO_ID, objects, clock: () => 1234, spoolDir };
}

function options(over: Partial<ReceivePackOptions> = {}): ReceivePackOptions {
  return { fsck: {}, limits: DEFAULT_LIMITS, newTips: [], ...over };
}

async function storedKeys(store: MemoryStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list('')) keys.push(info.key);
  return keys;
}

/** `git verify-pack -v` lines reduced to "oid type size" (offsets differ when appended bytes do). */
async function verifyListing(cwd: string, idxPath: string): Promise<string[]> {
  const text = await gitText(cwd, ['verify-pack', '-v', idxPath]);
  return text
    .split('\n')
    .filter((l) => /^[0-9a-f]{40} /.test(l))
    .map((l) => l.split(/ +/).slice(0, 3).join(' '))
    .sort();
}

describe('ingestPack with packs made by git', () => {
  test('a full pack (ofs-deltas and ref-deltas): ids, pack and idx bytes equal git index-pack', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const repo = join(dir, 'repo');
      await mkdir(repo);
      await makeHistory(repo, { commits: 40, tagsAt: [10, 30] });
      for (const flags of [['--delta-base-offset'], []]) {
        const pack = await gitRun(repo, ['pack-objects', '--stdout', '--revs', '--all', ...flags]);
        const store = new MemoryStore();
        const progress: string[] = [];
        const received = await ingestPack(chunked(pack, [1000, 7, 65536]), deps(store, new MapObjects(), dir), options({
          newTips: [(await gitText(repo, ['rev-parse', 'main'])).trim() as ObjectId],
          onProgress: (phase) => progress.push(phase),
        }));
        const record = await received.store();
        assert.ok(record !== undefined);
        assert.equal(record.source, 'receive');
        assert.equal(record.createdMs, 1234);
        assert.equal(record.objects, pack.readUInt32BE(8));
        const storedPack = await store.get(packKey(REPO_ID, record.name));
        assert.deepEqual(Buffer.from(storedPack), pack);
        assert.equal(record.name, `pack-${pack.subarray(pack.length - 20).toString('hex')}`);
        const ours = await store.get(idxKey(REPO_ID, record.name));
        const packPath = join(dir, 'x.pack');
        await writeFile(packPath, pack);
        await gitRun(repo, ['index-pack', '-o', join(dir, 'x.idx'), packPath]);
        assert.deepEqual(Buffer.from(ours), await readFile(join(dir, 'x.idx')));
        const listing = await gitText(repo, ['verify-pack', '-v', join(dir, 'x.idx')]);
        assert.match(listing, /chain length = 2:/, 'the pack holds delta chains');
        assert.ok(progress.includes('Receiving objects'));
        assert.ok(progress.includes('Resolving deltas'));
        await received.discard();
      }
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('stowage-spool-')), []);
    } finally {
      await cleanup();
    }
  });
});

describe('thin packs', () => {
  test('bases come from the repository, are appended, and the completed pack indexes like git --fix-thin', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const repo = join(dir, 'repo');
      await mkdir(repo);
      await makeHistory(repo, { commits: 30 });
      const thin = await gitRun(repo, ['pack-objects', '--thin', '--stdout', '--revs', '--delta-base-offset'], 'main\n^main~3\n');
      const have = new MapObjects();
      await loadObjects(repo, ['main~3'], have);
      const store = new MemoryStore();
      const tip = (await gitText(repo, ['rev-parse', 'main'])).trim() as ObjectId;
      const received = await ingestPack(chunked(thin, 4096), deps(store, have, dir), options({ newTips: [tip] }));
      const thinCount = thin.readUInt32BE(8);
      assert.ok(received.objectCount > thinCount, 'bases were appended');
      const record = await received.store();
      assert.ok(record !== undefined);
      assert.equal(record.objects, received.objectCount);
      const pack = Buffer.from(await store.get(packKey(REPO_ID, record.name)));
      assert.equal(pack.readUInt32BE(8), received.objectCount);
      assert.equal(record.size, pack.length);
      // The completed pack is a valid, self-contained pack: git indexes it to the same idx bytes.
      await writeFile(join(dir, 'ours.pack'), pack);
      await gitRun(repo, ['index-pack', '-o', join(dir, 'ours.idx'), join(dir, 'ours.pack')]);
      assert.deepEqual(Buffer.from(await store.get(idxKey(REPO_ID, record.name))), await readFile(join(dir, 'ours.idx')));
      // git's own --fix-thin completion of the same thin pack holds the same objects.
      await writeFile(join(dir, 'thin.pack'), thin);
      await gitRun(repo, ['index-pack', '--stdin', '--fix-thin', join(dir, 'git.pack')], thin);
      assert.deepEqual(await verifyListing(repo, join(dir, 'ours.idx')), await verifyListing(repo, join(dir, 'git.idx')));
      await received.discard();
    } finally {
      await cleanup();
    }
  });

  test('a thin pack whose bases are missing fails with PACK_DELTA_BASE_MISSING and leaves nothing behind', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const repo = join(dir, 'repo');
      await mkdir(repo);
      await makeHistory(repo, { commits: 10 });
      const thin = await gitRun(repo, ['pack-objects', '--thin', '--stdout', '--revs'], 'main\n^main~1\n');
      const store = new MemoryStore();
      await assert.rejects(
        ingestPack(chunked(thin, 999), deps(store, new MapObjects(), dir), options()),
        (err) => hasCode(err, 'PACK_DELTA_BASE_MISSING') && /unresolved delta/.test(err.message),
      );
      assert.deepEqual(await storedKeys(store), []);
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('stowage-spool-')), []);
    } finally {
      await cleanup();
    }
  });
});
