import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { PutOptions, PutResult } from '../../storage/object-store.js';
import { StoreDeviceProvider } from './store-provider.js';
import { blockKey, createVolume } from './volume-layout.js';

/** A store that records deferred puts and which of them each sync covered. */
class RecordingStore extends MemoryStore {
  readonly deferred = new Set<string>();
  readonly synced = new Set<string>();
  syncs = 0;
  override async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    const r = await super.put(key, body, opts);
    if (opts.deferDurability === true) {
      this.deferred.add(key);
      this.synced.delete(key);
    }
    return r;
  }
  override async sync(): Promise<void> {
    this.syncs++;
    const covered = [...this.deferred];
    await new Promise((resolve) => setImmediate(resolve));
    for (const k of covered) this.synced.add(k);
  }
}

test('block uploads are deferred puts; FUA and FLUSH resolve only after a sync covering them', async () => {
  const store = new RecordingStore();
  const BS = 64 * 1024;
  await createVolume(store, 'vol', { size: 16 * BS, blockSize: BS });
  const h = await new StoreDeviceProvider({ store, cacheMb: 4, nodeId: 't', writeBackDelayMs: 10_000 }).open('vol', { readOnly: false });
  assert.ok(h);
  const d = h.device;
  await d.write(0, randomBytes(4096), { fua: true });
  assert.ok(store.synced.has(blockKey('vol', 0)), 'FUA write synced');
  await d.write(3 * BS + 100, randomBytes(5000));
  await d.write(7 * BS, randomBytes(BS));
  assert.ok(!store.deferred.has(blockKey('vol', 3)), 'not uploaded before its write-back delay');
  await d.flush();
  for (const i of [0, 3, 7]) assert.ok(store.synced.has(blockKey('vol', i)), `block ${i} durable after FLUSH`);
  // A FLUSH with nothing dirty still syncs: a background upload may be visible but not durable.
  const before = store.syncs;
  await d.flush();
  assert.equal(store.syncs, before + 1);
  await h.release();
});
