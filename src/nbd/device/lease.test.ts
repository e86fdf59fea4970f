import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConflictError } from '../../core/errors.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { decodeBlock } from './block-codec.js';
import { breakLease, readLatestLease } from './lease.js';
import type { StoreVolume } from './store-volume.js';
import { StoreDeviceProvider } from './store-provider.js';
import { blockKey, createVolume } from './volume-layout.js';

const BS = 64 * 1024;
const TTL = 60_000;

function setup(): { store: MemoryStore; now: { t: number }; mk: (node: string) => StoreDeviceProvider } {
  const store = new MemoryStore();
  const now = { t: 1_000_000 };
  const mk = (nodeId: string): StoreDeviceProvider =>
    new StoreDeviceProvider({ store, cacheMb: 4, nodeId, clock: () => now.t, leaseTtlMs: TTL, writeBackDelayMs: 5 });
  return { store, now, mk };
}

test('a second server is refused while the lease is live, and may open read-only', async () => {
  const { store, mk } = setup();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
  const a = await mk('a').open('vol', { readOnly: false });
  assert.ok(a);
  await assert.rejects(mk('b').open('vol', { readOnly: false }), (e: unknown) => e instanceof ConflictError && /in use by a/.test(e.message));
  const ro = await mk('b').open('vol', { readOnly: true });
  assert.ok(ro);
  assert.equal(ro.device.readOnly, true);
  await ro.release();
  await a.release();
  // Released cleanly: free at once.
  const b = await mk('b').open('vol', { readOnly: false });
  assert.ok(b);
  assert.equal((await readLatestLease(store, 'vol'))?.epoch, 2);
  await b.release();
});

test('a dead holder’s lease expires; the next holder takes epoch+1', async () => {
  const { store, now, mk } = setup();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
  const a = await mk('a').open('vol', { readOnly: false });
  assert.ok(a);
  await a.device.write(0, Buffer.from('before'), { fua: true });
  (a.device as StoreVolume).crashForTests();
  now.t += TTL / 2;
  await assert.rejects(mk('b').open('vol', { readOnly: false }), ConflictError);
  now.t += TTL;
  const b = await mk('b').open('vol', { readOnly: false });
  assert.ok(b);
  assert.equal(Buffer.from(await b.device.read(0, 6)).toString(), 'before');
  assert.equal((await readLatestLease(store, 'vol'))?.epoch, 2);
  await b.release();
});

test('unlock breaks a live lease and fences the old holder', async () => {
  const { store, mk } = setup();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
  const a = await mk('a').open('vol', { readOnly: false });
  assert.ok(a);
  const broken = await breakLease(store, 'vol', Date.now());
  assert.equal(broken?.was.nodeId, 'a');
  await assert.rejects(a.device.write(0, Buffer.from('stale'), { fua: true }), ConflictError);
  await assert.rejects(a.device.write(0, Buffer.from('stale')), ConflictError);
  const b = await mk('b').open('vol', { readOnly: false });
  assert.ok(b);
  assert.equal((await readLatestLease(store, 'vol'))?.epoch, 3);
  assert.equal(await store.tryGet(blockKey('vol', 0)), undefined, 'the fenced write never reached the store');
  const logged: string[] = [];
  for await (const i of store.list('nbd/vol/log/')) logged.push(i.key);
  assert.ok(!logged.some((k) => /\/000000000001-\d{12}$/.test(k)), `no segment of the fenced holder: ${logged.join(' ')}`);
  await b.release();
  await a.release();
  assert.equal(await breakLease(store, 'vol', Date.now()), undefined, 'nothing to unlock once free');
});

test('fencing: a holder whose lease was taken over cannot make its writes visible over newer data', async () => {
  const { store, now, mk } = setup();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
  const a = await mk('a').open('vol', { readOnly: false });
  assert.ok(a);
  // The old holder stalls (no renewals) but keeps unflushed writes in its cache.
  await a.device.write(0, randomBytes(BS));
  const va = a.device as unknown as { lease: { abandon(): void } };
  va.lease.abandon();
  now.t += 2 * TTL;
  const b = await mk('b').open('vol', { readOnly: false });
  assert.ok(b);
  const newer = randomBytes(BS);
  await b.device.write(0, newer, { fua: true });
  // The old holder wakes up and tries to flush: refused.
  await assert.rejects(a.device.flush(), ConflictError);
  await a.release();
  await (b.device as StoreVolume).writeLog?.mergeAll();
  const stored = decodeBlock(blockKey('vol', 0), 0, await store.get(blockKey('vol', 0)));
  assert.deepEqual(stored.payload, newer);
  assert.equal(stored.epoch, 2);
  await b.release();
});
