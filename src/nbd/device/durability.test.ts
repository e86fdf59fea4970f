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

test('format 2: block uploads are deferred puts; FUA and FLUSH resolve only after a sync covering them', async () => {
  const store = new RecordingStore();
  const BS = 64 * 1024;
  await createVolume(store, 'vol', { size: 16 * BS, blockSize: BS, format: 2 });
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

test('format 3: partial uploads are direct deferred puts, whole blocks go to write log segments; FUA and FLUSH resolve only after a sync covering them', async () => {
  const store = new RecordingStore();
  const BS = 64 * 1024;
  await createVolume(store, 'vol', { size: 16 * BS, blockSize: BS });
  const h = await new StoreDeviceProvider({ store, cacheMb: 4, nodeId: 't', writeBackDelayMs: 10_000 }).open('vol', { readOnly: false });
  assert.ok(h);
  const d = h.device;
  const segments = (): string[] => [...store.deferred].filter((k) => /^nbd\/vol\/log\/\d{12}-\d{12}$/.test(k));
  await d.write(0, randomBytes(4096), { fua: true });
  assert.ok(store.synced.has(blockKey('vol', 0)), 'FUA write of part of a block: its object, synced');
  assert.equal(segments().length, 0, 'no segment for a partial block');
  await d.write(3 * BS + 100, randomBytes(5000));
  await d.write(7 * BS, randomBytes(BS));
  assert.ok(!store.deferred.has(blockKey('vol', 3)), 'not uploaded before its write-back delay');
  await d.flush();
  assert.ok(store.synced.has(blockKey('vol', 3)), 'partial block durable after FLUSH');
  assert.ok(!store.deferred.has(blockKey('vol', 7)), 'the whole block went to the log');
  assert.ok(segments().length >= 1 && segments().every((k) => store.synced.has(k)), 'its segment durable after FLUSH');
  // Part of a logged block rewritten: its object is put directly and a marker logged, both
  // covered by the FUA write's sync.
  const before7 = segments().length;
  await d.write(7 * BS + 512, randomBytes(512), { fua: true });
  assert.ok(store.synced.has(blockKey('vol', 7)), 'direct put over a logged block synced');
  assert.equal(segments().length, before7 + 1, 'the marker went into a new segment');
  assert.ok(segments().every((k) => store.synced.has(k)), 'the marker segment synced');
  const before = store.syncs;
  await d.flush();
  assert.equal(store.syncs, before + 1);
  await h.release();
});
