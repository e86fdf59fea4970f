/**
 * Packs nobody published (a push that lost its ref race, a node that died before its meta
 * transaction) are marked once old and deleted after the grace, never a pack that is listed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PackRecord } from '../../meta/meta-store.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { collectRemovedPacks, DEFAULT_ORPHAN_AGE_MS, DEFAULT_REMOVAL_GRACE_MS, markOrphanedPacks, markRemoved, removedMarkerKey } from './removed.js';

const MINUTE = 60_000;

function packName(digit: string): string {
  return `pack-${digit.repeat(40)}`;
}

async function putPackFiles(store: ObjectStore, repoId: string, name: string): Promise<void> {
  for (const ext of ['pack', 'idx', 'rax']) await store.put(`repos/${repoId}/pack/${name}.${ext}`, new Uint8Array([1, 2, 3]));
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(prefix)) out.push(info.key);
  return out.sort();
}

function record(name: string): PackRecord {
  return { name, size: 3, objects: 1, createdMs: Date.now(), source: 'receive' };
}

describe('orphaned packs', () => {
  test('unlisted, unmarked packs are marked once old and deleted after the grace; listed ones stay', async () => {
    const store = new MemoryStore();
    const meta = new StoreMetaStore({ store });
    const repoId = (await meta.createRepo({ name: 'r', head: 'refs/heads/main' })).id;
    let skewMs = 0;
    const deps = { store, meta, repoId, clock: () => Date.now() + skewMs };
    const listed = packName('a');
    const orphan = packName('b');
    const compacted = packName('c');
    for (const name of [listed, orphan, compacted]) await putPackFiles(store, repoId, name);
    const res = await meta.transact(repoId, { addPacks: [record(listed)] });
    assert.ok(res.ok);
    await markRemoved(deps, [compacted], 'compacted');

    // Young files: nobody is marked (a push may be about to publish them).
    assert.deepEqual(await markOrphanedPacks(deps, DEFAULT_ORPHAN_AGE_MS), []);
    assert.deepEqual((await collectRemovedPacks(deps)).deleted, []);
    assert.equal((await store.head(removedMarkerKey(repoId, orphan))) !== undefined, false);

    // A day later the orphan gets a marker (the compacted pack keeps its own, the listed none).
    skewMs = DEFAULT_ORPHAN_AGE_MS + MINUTE;
    const first = await collectRemovedPacks(deps);
    assert.ok(first.waiting.includes(orphan), 'the orphan waits for its grace');
    assert.deepEqual(first.deleted, [compacted]);
    assert.ok((await store.head(removedMarkerKey(repoId, orphan))) !== undefined);
    assert.equal((await store.head(removedMarkerKey(repoId, listed))) !== undefined, false);

    // After the grace counted from the marker, its files go; the listed pack is untouched.
    skewMs += DEFAULT_REMOVAL_GRACE_MS + MINUTE;
    const second = await collectRemovedPacks(deps);
    assert.deepEqual(second.deleted, [orphan]);
    assert.deepEqual(await keys(store, `repos/${repoId}/pack/`), ['pack', 'idx', 'rax'].map((ext) => `repos/${repoId}/pack/${listed}.${ext}`).sort());
  });

  test('a pack published after it was marked is kept, and its marker dropped', async () => {
    const store = new MemoryStore();
    const meta = new StoreMetaStore({ store });
    const repoId = (await meta.createRepo({ name: 'r', head: 'refs/heads/main' })).id;
    let skewMs = DEFAULT_ORPHAN_AGE_MS + MINUTE;
    const deps = { store, meta, repoId, clock: () => Date.now() + skewMs };
    const late = packName('d');
    await putPackFiles(store, repoId, late);
    assert.deepEqual(await markOrphanedPacks(deps, DEFAULT_ORPHAN_AGE_MS), [late]);
    // The (very slow) push publishes it after all.
    assert.ok((await meta.transact(repoId, { addPacks: [record(late)] })).ok);
    skewMs += DEFAULT_REMOVAL_GRACE_MS + MINUTE;
    const res = await collectRemovedPacks(deps);
    assert.deepEqual(res.deleted, []);
    assert.deepEqual(res.dropped, [late]);
    assert.equal((await keys(store, `repos/${repoId}/pack/${late}.`)).length, 3);
  });

  test('keys that are not pack files are left alone', async () => {
    const store = new MemoryStore();
    const meta = new StoreMetaStore({ store });
    const repoId = (await meta.createRepo({ name: 'r', head: 'refs/heads/main' })).id;
    await store.put(`repos/${repoId}/pack/notes.txt`, new Uint8Array([1]));
    await store.put(`repos/${repoId}/pack/pack-xyz.pack`, new Uint8Array([1]));
    const deps = { store, meta, repoId, clock: () => Date.now() + 10 * DEFAULT_ORPHAN_AGE_MS };
    assert.deepEqual(await markOrphanedPacks(deps, DEFAULT_ORPHAN_AGE_MS), []);
  });
});
