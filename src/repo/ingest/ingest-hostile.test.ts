import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { hasCode } from '../../core/errors.js';
import type { ErrorCode } from '../../core/error-codes.js';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import { createDelta } from '../../git/pack/delta.js';
import { encodeEntryHeader } from '../../git/pack/entry.js';
import { deflate } from '../../git/pack/inflate.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ReceivedPack, ReceivePackOptions } from '../repository.js';
import { ingestPack } from './ingest.js';
import {
  MapObjects,
  chunked,
  commitText,
  craftPack,
  rawPack,
  tempDir,
  treeEntry,
  type CraftEntry,
} from './ingest-fixtures.test-util.js';

const BLOB = Buffer.from('hello\n');
const BLOB_ID = hashObject('blob', BLOB);

interface Run {
  readonly store: MemoryStore;
  readonly spoolDir: string;
}

async function withRun<T>(fn: (run: Run) => Promise<T>): Promise<T> {
  const { dir, cleanup } = await tempDir();
  try {
    return await fn({ store: new MemoryStore(), spoolDir: dir });
  } finally {
    await cleanup();
  }
}

function ingest(run: Run, pack: Uint8Array, over: Partial<ReceivePackOptions> = {}, objects = new MapObjects()): Promise<ReceivedPack> {
  return ingestPack(chunked(pack, 17), { store: run.store, repoId: 'r', objects, clock: () => 1, spoolDir: run.spoolDir }, {
    fsck: {},
    limits: DEFAULT_LIMITS,
    newTips: [],
    ...over,
  });
}

/** Asserts the ingest fails with `code` (and message pattern), leaving no stored key and no spool. */
async function rejects(run: Run, pack: Uint8Array, code: ErrorCode, pattern?: RegExp, over: Partial<ReceivePackOptions> = {}, objects?: MapObjects): Promise<void> {
  await assert.rejects(ingest(run, pack, over, objects), (err: unknown) => {
    assert.ok(hasCode(err, code), `expected ${code}, got ${String(err)}`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
  const keys: string[] = [];
  for await (const info of run.store.list('')) keys.push(info.key);
  assert.deepEqual(keys, []);
  assert.deepEqual(await readdir(run.spoolDir), []);
}

function tree(...entries: Buffer[]): Buffer {
  return Buffer.concat(entries);
}

const GOOD_TREE = tree(treeEntry('100644', 'a', BLOB_ID));
const GOOD_TREE_ID = hashObject('tree', GOOD_TREE);
const GOOD_COMMIT = commitText(GOOD_TREE_ID, []);
const GOOD_COMMIT_ID = hashObject('commit', Buffer.from(GOOD_COMMIT));
const GOOD: CraftEntry[] = [
  { type: 'commit', data: GOOD_COMMIT },
  { type: 'tree', data: GOOD_TREE },
  { type: 'blob', data: BLOB },
];

describe('ingestPack on hostile or broken packs', () => {
  test('a good hand-made pack is accepted', () =>
    withRun(async (run) => {
      const received = await ingest(run, craftPack(GOOD), { newTips: [GOOD_COMMIT_ID] });
      assert.equal(received.objectCount, 3);
      assert.deepEqual(received.warnings, []);
      assert.equal(await received.objectType(GOOD_TREE_ID), 'tree');
      assert.equal(await received.peel(GOOD_COMMIT_ID), GOOD_COMMIT_ID);
      await received.discard();
    }));

  test('truncated packs: PACK_TRUNCATED at every cut', () =>
    withRun(async (run) => {
      const pack = craftPack(GOOD);
      for (const cut of [1, 11, 12, 13, 30, pack.length - 21, pack.length - 1]) {
        await rejects(run, pack.subarray(0, cut), 'PACK_TRUNCATED');
      }
    }));

  test('a bad trailer checksum: PACK_BAD_CHECKSUM', () =>
    withRun(async (run) => {
      const pack = Buffer.from(craftPack(GOOD));
      pack[pack.length - 1]! ^= 1;
      await rejects(run, pack, 'PACK_BAD_CHECKSUM');
    }));

  test('a bad signature: PACK_BAD_HEADER', () =>
    withRun(async (run) => {
      const pack = Buffer.from(craftPack(GOOD));
      pack[0] = 0x51;
      await rejects(run, pack, 'PACK_BAD_HEADER');
    }));

  test('an entry with corrupt zlib data: PACK_BAD_ENTRY', () =>
    withRun(async (run) => {
      const body = Buffer.from(deflate(BLOB));
      body[2]! ^= 0xff;
      body[3]! ^= 0xff;
      await rejects(run, rawPack(1, Buffer.concat([encodeEntryHeader('blob', BLOB.length), body])), 'PACK_BAD_ENTRY');
    }));

  test('an entry that inflates to another size than its header says: PACK_BAD_ENTRY', () =>
    withRun(async (run) => {
      await rejects(run, rawPack(1, Buffer.concat([encodeEntryHeader('blob', 3), deflate(BLOB)])), 'PACK_BAD_ENTRY');
    }));

  test('a ref-delta against a base of the wrong size: PACK_BAD_DELTA', () =>
    withRun(async (run) => {
      const delta = createDelta(Buffer.from('hello world\n'), Buffer.from('hello there world\n'));
      await rejects(run, craftPack([{ type: 'blob', data: BLOB }, { refDelta: BLOB_ID, delta }]), 'PACK_BAD_DELTA', /offset/);
    }));

  test('an ofs-delta whose base offset is not an entry: PACK_BAD_DELTA', () =>
    withRun(async (run) => {
      const first = craftPack([{ type: 'blob', data: BLOB }]);
      const entry = first.subarray(12, first.length - 20);
      const delta = deflate(createDelta(BLOB, Buffer.from('hello!\n')));
      const bad = Buffer.concat([entry, encodeEntryHeader('ofs-delta', 10, { distance: entry.length - 1 }), delta]);
      await rejects(run, rawPack(2, bad), 'PACK_BAD_DELTA', /not the start of an entry/);
    }));

  test('a tree with unsorted entries: FSCK_FAILED naming the tree and treeNotSorted', () =>
    withRun(async (run) => {
      const t = tree(treeEntry('100644', 'b', BLOB_ID), treeEntry('100644', 'a', BLOB_ID));
      const id = hashObject('tree', t);
      await rejects(run, craftPack([{ type: 'tree', data: t }, { type: 'blob', data: BLOB }]), 'FSCK_FAILED', new RegExp(`^error in tree ${id}: treeNotSorted: `));
    }));

  test('a tree with duplicate entries: FSCK_FAILED duplicateEntries', () =>
    withRun(async (run) => {
      const t = tree(treeEntry('100644', 'a', BLOB_ID), treeEntry('100644', 'a', BLOB_ID));
      await rejects(run, craftPack([{ type: 'tree', data: t }, { type: 'blob', data: BLOB }]), 'FSCK_FAILED', /duplicateEntries/);
    }));

  test('a tree with "..": a warning by default, an error when configured', () =>
    withRun(async (run) => {
      const t = tree(treeEntry('100644', '..', BLOB_ID));
      const id = hashObject('tree', t);
      const pack = craftPack([{ type: 'tree', data: t }, { type: 'blob', data: BLOB }]);
      const received = await ingest(run, pack, { newTips: [id] });
      assert.deepEqual(received.warnings.map((w) => [w.id, w.oid]), [['hasDotdot', id]]);
      await received.discard();
      await rejects(run, pack, 'FSCK_FAILED', /hasDotdot/, { fsck: { hasDotdot: 'error' } });
    }));

  test('a ".git" entry: a warning, accepted', () =>
    withRun(async (run) => {
      const t = tree(treeEntry('100644', '.git', BLOB_ID));
      const received = await ingest(run, craftPack([{ type: 'tree', data: t }, { type: 'blob', data: BLOB }]));
      assert.deepEqual(received.warnings.map((w) => w.id), ['hasDotgit']);
      assert.ok((await received.store()) !== undefined);
      await received.discard();
    }));

  test('a commit without a tree line: FSCK_FAILED', () =>
    withRun(async (run) => {
      await rejects(run, craftPack([{ type: 'commit', data: commitText(undefined, []) }]), 'FSCK_FAILED', /^error in commit [0-9a-f]{40}: missingTree/);
    }));

  test('a commit whose parent is missing: CONNECTIVITY_FAILED naming it', () =>
    withRun(async (run) => {
      const parent = hashObject('commit', Buffer.from('not here'));
      const pack = craftPack([{ type: 'commit', data: commitText(GOOD_TREE_ID, [parent]) }, ...GOOD.slice(1)]);
      await rejects(run, pack, 'CONNECTIVITY_FAILED', new RegExp(parent));
      // With the parent in the repository it is accepted.
      const repo = new MapObjects();
      repo.add('commit', GOOD_COMMIT);
      const ok = await ingest(run, craftPack([{ type: 'commit', data: commitText(GOOD_TREE_ID, [GOOD_COMMIT_ID]) }, ...GOOD.slice(1)]), {}, repo);
      await ok.discard();
    }));

  test('a tree entry naming an object of another type: FSCK_FAILED', () =>
    withRun(async (run) => {
      const t = tree(treeEntry('40000', 'dir', BLOB_ID));
      await rejects(run, craftPack([{ type: 'tree', data: t }, { type: 'blob', data: BLOB }]), 'FSCK_FAILED', /expected type tree, found blob/);
    }));

  test('a new tip that is nowhere: CONNECTIVITY_FAILED', () =>
    withRun(async (run) => {
      const tip = hashObject('commit', Buffer.from('nope'));
      await rejects(run, craftPack(GOOD), 'CONNECTIVITY_FAILED', new RegExp(tip), { newTips: [tip] });
    }));

  test('an oversized pack, too many objects, an oversized object: LIMIT_EXCEEDED', () =>
    withRun(async (run) => {
      const pack = craftPack(GOOD);
      await rejects(run, pack, 'LIMIT_EXCEEDED', undefined, { limits: { ...DEFAULT_LIMITS, packSizeMax: pack.length - 1 } });
      await rejects(run, pack, 'LIMIT_EXCEEDED', undefined, { limits: { ...DEFAULT_LIMITS, packObjectsMax: 2 } });
      await rejects(run, pack, 'LIMIT_EXCEEDED', undefined, { limits: { ...DEFAULT_LIMITS, objectSizeMax: 10 } });
    }));

  test('junk after the trailer is refused', () =>
    withRun(async (run) => {
      await rejects(run, Buffer.concat([craftPack(GOOD), Buffer.from('junk')]), 'PROTO_BAD_REQUEST', /after the pack trailer/);
    }));

  test('a delta chain deeper than 4095: PACK_DELTA_CYCLE', () =>
    withRun(async (run) => {
      const entries: CraftEntry[] = [{ type: 'blob', data: 'v0\n' }];
      let prev = Buffer.from('v0\n');
      for (let i = 1; i <= 4096; i++) {
        const next = Buffer.from(`v${i}\n`);
        entries.push({ ofsDelta: i - 1, delta: createDelta(prev, next) });
        prev = next;
      }
      await rejects(run, craftPack(entries), 'PACK_DELTA_CYCLE', /deeper than 4095/);
    }));

  test('ref-deltas on each other with no base anywhere: PACK_DELTA_BASE_MISSING', () =>
    withRun(async (run) => {
      const a = Buffer.from('aaaa aaaa aaaa aaaa\n');
      const b = Buffer.from('aaaa aaaa bbbb aaaa\n');
      const ida = hashObject('blob', a);
      const idb = hashObject('blob', b);
      const pack = craftPack([{ refDelta: idb, delta: createDelta(b, a) }, { refDelta: ida, delta: createDelta(a, b) }]);
      await rejects(run, pack, 'PACK_DELTA_BASE_MISSING', /2 unresolved deltas/);
    }));

  test('an aborted signal stops the ingest', () =>
    withRun(async (run) => {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(ingest(run, craftPack(GOOD), { signal: ac.signal }), { name: 'AbortError' });
      assert.deepEqual(await readdir(run.spoolDir), []);
    }));
});

describe('ingestPack edge cases', () => {
  test('an empty input (a push of deletes only) gives an empty ReceivedPack', () =>
    withRun(async (run) => {
      const received = await ingestPack((async function* () {})(), { store: run.store, repoId: 'r', objects: new MapObjects(), clock: () => 1, spoolDir: run.spoolDir }, {
        fsck: {},
        limits: DEFAULT_LIMITS,
        newTips: [],
      });
      assert.equal(received.objectCount, 0);
      assert.equal(await received.store(), undefined);
      await received.discard();
      assert.deepEqual(await readdir(run.spoolDir), []);
    }));

  test('a pack of zero objects with existing tips is accepted and stores nothing', () =>
    withRun(async (run) => {
      const repo = new MapObjects();
      const c = repo.add('commit', GOOD_COMMIT);
      const received = await ingest(run, craftPack([]), { newTips: [c] }, repo);
      assert.equal(received.objectCount, 0);
      assert.equal(await received.store(), undefined);
      await received.discard();
    }));

  test('duplicates in one pack: the first is kept, nothing fails, both stay indexed', () =>
    withRun(async (run) => {
      const received = await ingest(run, craftPack([...GOOD, { type: 'blob', data: BLOB }]));
      assert.equal(received.objectCount, 4);
      const record = await received.store();
      assert.equal(record?.objects, 4);
      await received.discard();
    }));

  test('objectType and peel answer from the pack, then the repository', () =>
    withRun(async (run) => {
      const repo = new MapObjects();
      const oldBlob = repo.add('blob', 'old\n');
      const tag1 = `object ${GOOD_COMMIT_ID}\ntype commit\ntag t1\ntagger T <t@example.com> 1700000000 +0000\n\nm\n`;
      const tag1Id = hashObject('tag', Buffer.from(tag1));
      const tag2 = `object ${tag1Id}\ntype tag\ntag t2\ntagger T <t@example.com> 1700000000 +0000\n\nm\n`;
      const tag2Id = hashObject('tag', Buffer.from(tag2));
      const repoTag = repo.add('tag', `object ${oldBlob}\ntype blob\ntag old\ntagger T <t@example.com> 1700000000 +0000\n\nm\n`);
      const received = await ingest(run, craftPack([{ type: 'tag', data: tag2 }, { type: 'tag', data: tag1 }, ...GOOD]), { newTips: [tag2Id] }, repo);
      assert.equal(await received.objectType(tag2Id), 'tag');
      assert.equal(await received.objectType(oldBlob), 'blob');
      assert.equal(await received.objectType(hashObject('blob', Buffer.from('x'))), undefined);
      assert.equal(await received.peel(tag2Id), GOOD_COMMIT_ID);
      assert.equal(await received.peel(repoTag), oldBlob);
      assert.equal(await received.peel(BLOB_ID), BLOB_ID);
      assert.equal(await received.peel(hashObject('blob', Buffer.from('x')) as ObjectId), undefined);
      await received.discard();
    }));

  test('.gitmodules blobs get the second pass (a bad url is an error)', () =>
    withRun(async (run) => {
      const gm = Buffer.from('[submodule "x"]\n\tpath = x\n\turl = -upload-pack=evil\n');
      const gmId = hashObject('blob', gm);
      const t = tree(treeEntry('100644', '.gitmodules', gmId));
      await rejects(run, craftPack([{ type: 'tree', data: t }, { type: 'blob', data: gm }]), 'FSCK_FAILED', /gitmodulesUrl/);
      // A .gitmodules blob that is nowhere: gitmodulesMissing (an error by default) before links.
      await rejects(run, craftPack([{ type: 'tree', data: t }]), 'FSCK_FAILED', /gitmodulesMissing/);
    }));
});
