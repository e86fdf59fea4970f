import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StowageError, ValidationError, hasCode } from '../../core/errors.js';
import { createDelta } from '../../git/pack/delta.js';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import { makeHistory } from './git-history.test-util.js';
import { indexPack, type IndexPackOptions } from './index-pack.js';
import type { GitObject } from '../../git/object/object-type.js';
import { MapObjects, chunked, craftPack, gitRun, gitText, loadObjects, tempDir, treeEntry } from './ingest-fixtures.test-util.js';
import { SpoolFile } from './spool.js';
import { PackVerifier } from './verify.js';

async function indexBytes(dir: string, pack: Uint8Array, sizes: number | number[], opts: IndexPackOptions = {}): Promise<Uint8Array | undefined> {
  const spool = await SpoolFile.create(dir);
  try {
    return (await indexPack(chunked(pack, sizes), spool, opts)).idx;
  } finally {
    await spool.remove();
  }
}

describe('indexPack', () => {
  test('memory budgets (deltas re-read from the spool, bases evicted and rebuilt) do not change the result', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const repo = join(dir, 'repo');
      await mkdir(repo);
      await makeHistory(repo, { commits: 60, files: 2, lines: 300 });
      const pack = await gitRun(repo, ['pack-objects', '--stdout', '--revs', '--all', '--delta-base-offset', '--depth=50']);
      await writeFile(join(dir, 'p.pack'), pack);
      await gitRun(repo, ['index-pack', '-o', join(dir, 'p.idx'), join(dir, 'p.pack')]);
      const expected = await readFile(join(dir, 'p.idx'));
      const stats = await gitText(repo, ['verify-pack', '-s', join(dir, 'p.idx')]);
      assert.match(stats, /chain length = 10:/, 'the pack has long chains');
      assert.deepEqual(Buffer.from((await indexBytes(dir, pack, 65536))!), expected);
      assert.deepEqual(Buffer.from((await indexBytes(dir, pack, 4093, { deltaMemory: 0, baseCacheMemory: 1 }))!), expected);
      assert.deepEqual(Buffer.from((await indexBytes(dir, pack, 100_000, { deltaMemory: 5000, baseCacheMemory: 20_000 }))!), expected);
      // Worker threads resolving the ofs trees give the same ids.
      assert.deepEqual(Buffer.from((await indexBytes(dir, pack, 65536, { threads: 3, workerMinDeltas: 1 }))!), expected);
      assert.deepEqual(Buffer.from((await indexBytes(dir, pack, 65536, { threads: 2, workerMinDeltas: 1, baseCacheMemory: 1 }))!), expected);
    } finally {
      await cleanup();
    }
  });

  test('a thin pack (ofs- and ref-deltas, bases from the receiver) indexes the same with worker threads', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const repo = join(dir, 'repo');
      await mkdir(repo);
      await makeHistory(repo, { commits: 40, files: 4 });
      const thin = await gitRun(repo, ['pack-objects', '--thin', '--stdout', '--revs', '--delta-base-offset'], 'main\n^main~8\n');
      const have = new MapObjects();
      await loadObjects(repo, ['main~8'], have);
      const readBase = (oid: ObjectId): Promise<GitObject | undefined> => have.tryReadObject(oid);
      const single = await indexBytes(dir, thin, 1000, { readBase, threads: 1 });
      const threaded = await indexBytes(dir, thin, 1000, { readBase, threads: 2, workerMinDeltas: 1 });
      assert.ok(single !== undefined);
      assert.deepEqual(threaded, single);
    } finally {
      await cleanup();
    }
  });

  test('checks run in worker threads: errors come back typed, warnings and links are merged', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const blob = hashObject('blob', Buffer.from('x\n'));
      const good = Buffer.concat([treeEntry('100644', 'a', blob), treeEntry('100644', 'b', blob)]);
      const unsorted = Buffer.concat([treeEntry('100644', 'b', blob), treeEntry('100644', 'a', blob)]);
      const dotdot = Buffer.concat([treeEntry('100644', '..', blob), treeEntry('100644', 'b', blob)]);
      const run = async (target: Buffer): Promise<PackVerifier> => {
        const verifier = new PackVerifier({});
        const spool = await SpoolFile.create(dir);
        try {
          const pack = craftPack([{ type: 'tree', data: good }, { ofsDelta: 0, delta: createDelta(good, target) }, { type: 'blob', data: 'x\n' }]);
          await indexPack(chunked(pack, 7), spool, { verifier, threads: 2, workerMinDeltas: 1 });
          return verifier;
        } finally {
          await spool.remove();
        }
      };
      await assert.rejects(run(unsorted), (e: unknown) => hasCode(e, 'FSCK_FAILED') && e instanceof ValidationError && /treeNotSorted/.test(e.message));
      const v = await run(dotdot);
      assert.deepEqual(v.warnings.map((w) => w.id), ['hasDotdot']);
      const blobRaw = Buffer.from(blob, 'hex');
      await v.finish({
        typeOf: (oid) => (oid === blob ? 'blob' : undefined), sizeOf: () => 2, read: async () => Buffer.from('x\n'),
        typeCodeRaw: (buf, off) => (blobRaw.equals(buf.subarray(off, off + 20)) ? 3 : 0),
      }, {
        hasObject: async () => false, tryReadObject: async () => undefined, tryReadHeader: async () => undefined,
      }, []);
    } finally {
      await cleanup();
    }
  });

  test('any chunking of the input gives the same idx', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const a = Buffer.from('some content that is long enough to delta against, line 1\nline 2\nline 3\n');
      const b = Buffer.concat([a, Buffer.from('line 4\n')]);
      const pack = craftPack([
        { type: 'blob', data: a },
        { ofsDelta: 0, delta: createDelta(a, b) },
        { refDelta: hashObject('blob', b), delta: createDelta(b, Buffer.from('x')) },
        { type: 'blob', data: 'tail\n' },
      ]);
      const expected = await indexBytes(dir, pack, pack.length);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }), async (sizes) => {
          assert.deepEqual(await indexBytes(dir, pack, sizes), expected);
        }),
        { numRuns: 60, seed: 4242 },
      );
    } finally {
      await cleanup();
    }
  });

  test('random bytes and mutated packs throw only StowageErrors', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const pack = craftPack([{ type: 'blob', data: 'hello\n' }, { type: 'tree', data: Buffer.alloc(0) }]);
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }),
            fc.tuple(fc.nat(pack.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
              const m = Buffer.from(pack);
              m[at] = m[at]! ^ x;
              return m;
            }),
          ),
          async (bytes) => {
            try {
              await indexBytes(dir, bytes, 13);
            } catch (err) {
              assert.ok(err instanceof StowageError, `not a StowageError: ${String(err)}`);
            }
          },
        ),
        { numRuns: 200, seed: 7 },
      );
    } finally {
      await cleanup();
    }
  });

  test('git reads a pack with a duplicate object and its idx listing both', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const repo = join(dir, 'repo.git');
      await gitRun(dir, ['init', '-q', '--bare', repo]);
      const pack = craftPack([{ type: 'blob', data: 'dup\n' }, { type: 'blob', data: 'other\n' }, { type: 'blob', data: 'dup\n' }]);
      const idx = await indexBytes(dir, pack, 5);
      const name = `pack-${Buffer.from(pack.subarray(pack.length - 20)).toString('hex')}`;
      await writeFile(join(repo, 'objects', 'pack', `${name}.pack`), pack);
      await writeFile(join(repo, 'objects', 'pack', `${name}.idx`), idx!);
      const dup = hashObject('blob', Buffer.from('dup\n'));
      assert.equal(await gitText(repo, ['cat-file', '-p', dup]), 'dup\n');
      assert.match(await gitText(repo, ['count-objects', '-v']), /in-pack: 3/);
      await gitRun(repo, ['fsck', '--strict']);
    } finally {
      await cleanup();
    }
  });
});
