import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { PutOptions, PutResult } from '../../storage/object-store.js';
import { VolumeCache, type VolumeCacheOptions } from './block-cache.js';
import { ByteParts } from './byte-parts.js';
import { blockKey } from './volume-layout.js';

const BS = 64 * 1024;
const SECTOR = 4096;

/** A memory store that records the keys of puts in order. */
class PutLog extends MemoryStore {
  readonly puts: string[] = [];
  private started: (() => void) | undefined;
  /** Resolves at the first put. */
  readonly firstPut = new Promise<void>((resolve) => (this.started = resolve));
  override async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    this.puts.push(key);
    this.started?.();
    return super.put(key, body, opts);
  }
}

function cache(store: MemoryStore, over: Partial<VolumeCacheOptions> = {}): VolumeCache {
  return new VolumeCache({
    store,
    name: 'vol',
    format: 3,
    blockSize: BS,
    size: 16 * BS,
    cacheBytes: 64 * BS,
    maxDirtyBytes: 32 * BS,
    uploadConcurrency: 1,
    writeBackDelayMs: 60_000,
    epoch: () => 1,
    fence: async () => undefined,
    ...over,
  });
}

async function readBlock(c: VolumeCache, index: number): Promise<Buffer> {
  const out = Buffer.alloc(BS);
  await c.readInto(index, 0, BS, out, 0);
  return out;
}

describe('VolumeCache', () => {
  test('dirty bytes are the sectors changed since the last upload, not the whole block', async () => {
    const store = new MemoryStore();
    const c = cache(store);
    await c.write(0, 0, randomBytes(BS));
    assert.equal(c.dirtyBytes, BS);
    await c.flush();
    assert.equal(c.dirtyBytes, 0);
    await c.write(0, 3 * SECTOR, randomBytes(SECTOR));
    await c.write(0, 3 * SECTOR, randomBytes(SECTOR)); // the same sector again
    await c.write(0, 9 * SECTOR + 100, randomBytes(50)); // part of another one
    assert.equal(c.dirtyBytes, 2 * SECTOR);
    await c.flush();
    assert.equal(c.dirtyBytes, 0);
    await c.close();
  });

  test('writers past the dirty bound wait in line and all complete; the bound holds', async () => {
    const store = new MemoryStore();
    const c = cache(store, { size: 64 * BS, cacheBytes: 64 * BS, maxDirtyBytes: 4 * BS, uploadConcurrency: 2, writeBackDelayMs: 1 });
    let peak = 0;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await c.write(i, 0, Buffer.alloc(BS, i + 1));
        peak = Math.max(peak, c.dirtyBytes);
        done.push(i);
      }),
    );
    assert.equal(done.length, 40);
    assert.ok(peak <= 4 * BS, `dirty bytes peaked at ${peak}`);
    await c.close();
    for (let i = 0; i < 40; i++) assert.deepEqual(await readBlock(c, i), Buffer.alloc(BS, i + 1));
  });

  test('later misses in a block larger than 256 KiB read aligned windows and return the right bytes', async () => {
    const MB = 1024 * 1024;
    const store = new MemoryStore();
    const data = randomBytes(2 * MB);
    const w = cache(store, { blockSize: MB, size: 2 * MB, cacheBytes: 8 * MB, maxDirtyBytes: 4 * MB });
    await w.write(0, 0, data.subarray(0, MB));
    await w.write(1, 0, data.subarray(MB));
    await w.close();
    const c = cache(store, { blockSize: MB, size: 2 * MB, cacheBytes: 8 * MB, maxDirtyBytes: 4 * MB });
    let seed = 7;
    for (let i = 0; i < 200; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const off = seed % (2 * MB - 1);
      const len = Math.min(2 * MB - off, 1 + (seed % 20000));
      const index = Math.floor(off / MB);
      const inBlock = Math.min(len, (index + 1) * MB - off);
      const out = Buffer.alloc(inBlock);
      await c.readInto(index, off - index * MB, inBlock, out, 0);
      assert.deepEqual(out, data.subarray(off, off + inBlock), `read ${off}+${inBlock}`);
    }
  });

  test('under pressure the blocks with the most dirty bytes upload first', async () => {
    const store = new PutLog();
    // Pressure starts at three quarters of 16 sectors: 12 sectors.
    const c = cache(store, { maxDirtyBytes: 16 * SECTOR });
    for (const i of [0, 1, 2, 3]) await c.write(i, 0, randomBytes(SECTOR));
    assert.deepEqual(store.puts, [], 'below the pressure mark nothing uploads before the delay');
    await c.write(5, 0, randomBytes(10 * SECTOR));
    await store.firstPut; // pressure started the uploads; nobody waits for them yet
    await c.flush();
    assert.equal(store.puts[0], blockKey('vol', 5));
    assert.equal(store.puts.length, 5);
    await c.close();
  });

  test('dirty blocks drop clean sectors past the cache size; uploads merge them back from the store', async () => {
    const store = new MemoryStore();
    const expect = Array.from({ length: 16 }, () => randomBytes(BS));
    const first = cache(store);
    for (let i = 0; i < 16; i++) await first.write(i, 0, expect[i] as Buffer);
    await first.close();
    // A cache of 6 blocks: read 4 whole blocks, change one sector in each, then read 8 more.
    const c = cache(store, { cacheBytes: 6 * BS, maxDirtyBytes: 5 * BS });
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(await readBlock(c, i), expect[i]);
      const piece = randomBytes(SECTOR);
      piece.copy(expect[i] as Buffer, 5 * SECTOR);
      await c.write(i, 5 * SECTOR, piece);
    }
    for (let i = 4; i < 12; i++) assert.deepEqual(await readBlock(c, i), expect[i]);
    assert.equal(c.dirtyBytes, 4 * SECTOR);
    for (let i = 0; i < 12; i++) assert.deepEqual(await readBlock(c, i), expect[i], `block ${i} before the flush`);
    await c.close();
    const again = cache(store);
    for (let i = 0; i < 16; i++) assert.deepEqual(await readBlock(again, i), expect[i], `block ${i} after the flush`);
    await again.close();
  });
});

describe('VolumeCache against a flat model with a cache smaller than the volume', () => {
  const MBS = 16 * 1024;
  const BLOCKS = 8;
  const SIZE = BLOCKS * MBS;
  type Op = { readonly kind: 'write' | 'read'; readonly off: number; readonly len: number; readonly fill: number } | { readonly kind: 'flush' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc
      .record({ kind: fc.constantFrom('write' as const, 'read' as const), block: fc.nat(BLOCKS - 1), off: fc.nat(MBS - 1), len: fc.integer({ min: 1, max: MBS }), fill: fc.integer({ min: 1, max: 255 }) })
      .map(({ kind, block, off, len, fill }) => ({ kind, off: block * MBS + off, len: Math.min(len, MBS - off), fill })),
    fc.constant({ kind: 'flush' as const }),
  );
  const small = (store: MemoryStore, format: 2 | 3): VolumeCache =>
    cache(store, { format, blockSize: MBS, size: SIZE, cacheBytes: 3 * MBS, maxDirtyBytes: 2 * MBS, uploadConcurrency: 2, writeBackDelayMs: 1 });

  for (const format of [3, 2] as const) {
    test(`format ${format}: concurrent small writes and reads, evictions and dropped clean sectors keep every byte`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 10 }), async (steps) => {
          const store = new MemoryStore();
          const c = small(store, format);
          const model = Buffer.alloc(SIZE);
          for (const step of steps) {
            const taken: [number, number][] = [];
            const batch = step.filter((o) => {
              if (o.kind === 'flush') return true;
              const clash = taken.some(([a, b]) => o.off < b && a < o.off + o.len);
              if (!clash) taken.push([o.off, o.off + o.len]);
              return !clash;
            });
            await Promise.all(
              batch.map(async (o) => {
                if (o.kind === 'flush') return c.flush();
                const index = Math.floor(o.off / MBS);
                if (o.kind === 'write') {
                  const data = Buffer.alloc(o.len);
                  for (let i = 0; i < o.len; i++) data[i] = (o.fill + i * 7) & 0xff;
                  data.copy(model, o.off);
                  if (o.fill % 2 === 1) return c.write(index, o.off - index * MBS, data);
                  // As the server hands over a long payload: pieces as received, kept as views.
                  const step = 1 + ((o.fill * 977) % 6000);
                  const pieces: Buffer[] = [];
                  for (let at = 0; at < o.len; at += step) pieces.push(Buffer.from(data.subarray(at, at + step)));
                  return c.write(index, o.off - index * MBS, ByteParts.of(pieces), true);
                }
                const expect = Buffer.from(model.subarray(o.off, o.off + o.len));
                const out = Buffer.alloc(o.len);
                await c.readInto(index, o.off - index * MBS, o.len, out, 0);
                assert.deepEqual(out, expect);
              }),
            );
          }
          await c.close();
          const again = small(store, format);
          for (let i = 0; i < BLOCKS; i++) {
            const out = Buffer.alloc(MBS);
            await again.readInto(i, 0, MBS, out, 0);
            assert.deepEqual(out, model.subarray(i * MBS, (i + 1) * MBS), `block ${i}`);
          }
          await again.close();
        }),
        { numRuns: 60 },
      );
    });
  }
});
