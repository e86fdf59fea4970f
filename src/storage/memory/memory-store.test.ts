import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runObjectStoreConformance } from '../conformance.js';
import { MemoryStore } from './memory-store.js';

runObjectStoreConformance('memory', async () => ({ store: new MemoryStore(), cleanup: async () => undefined }));

test('MemoryStore stamps mtimes with its clock', async () => {
  const store = new MemoryStore({ clock: () => 1234 });
  const res = await store.put('k', new Uint8Array([1, 2, 3]));
  assert.ok(res.created);
  assert.equal(res.info.mtimeMs, 1234);
  assert.deepEqual(await store.head('k'), { key: 'k', size: 3, mtimeMs: 1234 });
});
