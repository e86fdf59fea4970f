import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StowageError } from '../../core/errors.js';
import { FsStore } from '../../storage/fs/fs-store.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { DeviceHandle } from './block-device.js';
import { StoreDeviceProvider } from './store-provider.js';
import type { StoreVolume } from './store-volume.js';
import { blockKey, blocksPrefix, countBlocks, createVolume } from './volume-layout.js';

const BS = 64 * 1024;

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const i of store.list(prefix)) out.push(i.key);
  return out;
}

function provider(store: ObjectStore, extra: Partial<ConstructorParameters<typeof StoreDeviceProvider>[0]> = {}): StoreDeviceProvider {
  return new StoreDeviceProvider({ store, cacheMb: 4, nodeId: 'test', writeBackDelayMs: 5, ...extra });
}

/** The block objects after merging the write log (format 3 stages uploads there first). */
async function merged(store: ObjectStore, h: DeviceHandle): Promise<string[]> {
  await (h.device as StoreVolume).writeLog?.mergeAll();
  return keys(store, blocksPrefix('vol'));
}

async function open(p: StoreDeviceProvider, readOnly = false): Promise<DeviceHandle> {
  const h = await p.open('vol', { readOnly });
  assert.ok(h);
  return h;
}

const backends: [string, () => Promise<{ store: ObjectStore; done: () => Promise<void> }>][] = [
  ['memory', async () => ({ store: new MemoryStore(), done: async () => undefined })],
  [
    'fs',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stowage-nbd-'));
      const store = new FsStore({ root: dir });
      return { store, done: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) };
    },
  ],
];

for (const [kind, make] of backends) {
  describe(`StoreVolume on ${kind}`, () => {
    test('reads zeros, writes across block boundaries, survives a new provider after flush', async () => {
      const { store, done } = await make();
      await createVolume(store, 'vol', { size: 16 * BS + 512 * 3, blockSize: BS });
      const h = await open(provider(store));
      const d = h.device;
      assert.deepEqual(Buffer.from(await d.read(0, 1000)), Buffer.alloc(1000));
      const data = randomBytes(3 * BS + 777);
      await d.write(BS - 100, data);
      assert.deepEqual(Buffer.from(await d.read(BS - 100, data.length)), data);
      const tail = randomBytes(1536);
      await d.write(16 * BS, tail); // the short last block
      await d.flush();
      const h2 = await open(provider(store), true);
      assert.deepEqual(Buffer.from(await h2.device.read(BS - 100, data.length)), data);
      assert.deepEqual(Buffer.from(await h2.device.read(16 * BS, 1536)), tail);
      assert.deepEqual(Buffer.from(await h2.device.read(0, BS - 100)), Buffer.alloc(BS - 100));
      await h2.release();
      await h.release();
      await done();
    });

    test('zero writes, trim and write-zeroes delete whole blocks; partial ranges are zero-filled', async () => {
      const { store, done } = await make();
      await createVolume(store, 'vol', { size: 8 * BS, blockSize: BS });
      const h = await open(provider(store));
      const d = h.device;
      await d.write(0, randomBytes(8 * BS));
      await d.flush();
      assert.equal((await countBlocks(store, 'vol')).blocks, 8, 'counted through the write log');
      assert.equal((await merged(store, h)).length, 8);
      await d.write(0, Buffer.alloc(BS), { fua: true });
      await d.trim(BS, BS + 10, { fua: true });
      await d.writeZeroes(3 * BS, 2 * BS, { fua: true });
      assert.equal((await countBlocks(store, 'vol')).blocks, 4, 'tombstones counted through the write log');
      assert.deepEqual(await merged(store, h), [2, 5, 6, 7].map((i) => blockKey('vol', i)));
      assert.deepEqual(Buffer.from(await d.read(2 * BS, 10)), Buffer.alloc(10));
      await d.writeZeroes(5 * BS, 2 * BS, { noHole: true, fua: true });
      assert.equal((await merged(store, h)).length, 4, 'NO_HOLE keeps blocks stored');
      assert.deepEqual(await keys(store, 'nbd/vol/log/'), ['nbd/vol/log/000000000001-seal'], 'merged: only the seal is left');
      assert.deepEqual(Buffer.from(await d.read(5 * BS, 2 * BS)), Buffer.alloc(2 * BS));
      const ext = await d.blockStatus(0, 8 * BS);
      assert.deepEqual(ext, [
        { length: 2 * BS, flags: 3 },
        { length: BS, flags: 0 },
        { length: 2 * BS, flags: 3 },
        { length: 3 * BS, flags: 0 },
      ]);
      await h.release();
      await done();
    });

    test('dirty bytes stay bounded while writing more than the cache', async () => {
      const { store, done } = await make();
      await createVolume(store, 'vol', { size: 256 * BS, blockSize: BS });
      const p = provider(store, { cacheMb: 1, writeBackDelayMs: 1000 });
      const h = await open(p);
      const d = h.device;
      const written = randomBytes(256 * BS);
      let maxDirty = 0;
      const cache = (d as unknown as { blocks: { dirtyBytes: number } }).blocks;
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = w; i < 256; i += 8) {
            await d.write(i * BS, written.subarray(i * BS, (i + 1) * BS));
            maxDirty = Math.max(maxDirty, cache.dirtyBytes);
          }
        }),
      );
      assert.ok(maxDirty <= 512 * 1024, `dirty bytes reached ${maxDirty}`);
      await d.flush();
      const h2 = await open(provider(store), true);
      assert.deepEqual(Buffer.from(await h2.device.read(0, 256 * BS)), written);
      await h2.release();
      await h.release();
      await done();
    });

    test('concurrent partial writes to one block all land', async () => {
      const { store, done } = await make();
      await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
      const h = await open(provider(store));
      const expect = Buffer.alloc(BS);
      await Promise.all(
        Array.from({ length: 64 }, async (_, k) => {
          const piece = randomBytes(512);
          piece.copy(expect, k * 1024);
          await h.device.write(BS + k * 1024, piece);
        }),
      );
      await h.release();
      const h2 = await open(provider(store), true);
      assert.deepEqual(Buffer.from(await h2.device.read(BS, BS)), expect);
      await h2.release();
      await done();
    });

    test('a corrupted block reads as a StoreError', async () => {
      const { store, done } = await make();
      await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
      const h = await open(provider(store));
      await h.device.write(0, randomBytes(BS), { fua: true });
      await merged(store, h);
      await h.release();
      const bytes = Buffer.from(await store.get(blockKey('vol', 0)));
      bytes[100] = (bytes[100] as number) ^ 1;
      await store.put(blockKey('vol', 0), bytes);
      const h2 = await open(provider(store), true);
      await assert.rejects(h2.device.read(0, 10), (e: unknown) => e instanceof StowageError && e.code === 'STORE_IO');
      // A block stored under the wrong index is caught too.
      await store.put(blockKey('vol', 1), await store.get(blockKey('vol', 0)));
      await assert.rejects(h2.device.read(BS, 10), /corrupt/);
      await h2.release();
      await done();
    });
  });
}

test('connections share one volume: multiConn, read-only views see unflushed writes', async () => {
  const store = new MemoryStore();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS, description: 'd' });
  const p = provider(store);
  assert.deepEqual(await p.list(), [{ name: 'vol', description: 'd' }]);
  assert.equal(await p.open('nope', { readOnly: true }), undefined);
  assert.equal(await p.open('../x', { readOnly: true }), undefined);
  const a = await open(p);
  const b = await open(p);
  const r = await open(p, true);
  assert.equal(a.device, b.device);
  assert.equal(a.device.multiConn, true);
  assert.equal(r.device.readOnly, true);
  assert.deepEqual(a.device.blockSizes, { minimum: 1, preferred: BS, maximum: 32 * 1024 * 1024 });
  await a.device.write(10, Buffer.from('hello'));
  assert.equal(Buffer.from(await r.device.read(10, 5)).toString(), 'hello');
  await assert.rejects(r.device.write(0, Buffer.from('x')));
  await a.release();
  await b.release();
  await r.release();
  const again = await open(provider(store), true);
  assert.equal(Buffer.from(await again.device.read(10, 5)).toString(), 'hello', 'the last release flushed');
  await again.release();
});
