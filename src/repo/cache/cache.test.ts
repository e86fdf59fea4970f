import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { GetOptions, ObjectStore } from '../../storage/object-store.js';
import { BlockCache } from './block-cache.js';
import { ByteLru } from './byte-lru.js';
import { createRepoCaches, repoCacheStats } from './repo-caches.js';

/** A MemoryStore that counts ranged gets and can delay them. */
class CountingStore extends MemoryStore {
  gets: { offset: number; length: number }[] = [];
  gate: Promise<void> | undefined;
  override async get(key: string, opts: GetOptions = {}): Promise<Uint8Array> {
    this.gets.push(opts.range ?? { offset: 0, length: Infinity });
    if (this.gate !== undefined) await this.gate;
    return super.get(key, opts);
  }
}

describe('ByteLru', () => {
  test('evicts the least recently used entries by bytes', () => {
    const lru = new ByteLru<string, Uint8Array>({ maxBytes: 100, sizeOf: (v) => v.length, maxEntryBytes: 100 });
    lru.set('a', new Uint8Array(40));
    lru.set('b', new Uint8Array(40));
    assert.ok(lru.get('a'));
    lru.set('c', new Uint8Array(40));
    assert.equal(lru.peek('b'), undefined, 'b was the least recent');
    assert.ok(lru.peek('a') && lru.peek('c'));
    const s = lru.stats();
    assert.equal(s.bytes, 80);
    assert.equal(s.evictions, 1);
    assert.equal(s.hits, 1);
  });

  test('never stores a value above maxEntryBytes and counts misses', () => {
    const lru = new ByteLru<string, Uint8Array>({ maxBytes: 100, sizeOf: (v) => v.length });
    lru.set('big', new Uint8Array(26));
    assert.equal(lru.get('big'), undefined);
    assert.equal(lru.stats().misses, 1);
    lru.set('ok', new Uint8Array(25));
    assert.ok(lru.get('ok'));
  });

  test('replacing a key adjusts the byte count', () => {
    const lru = new ByteLru<string, Uint8Array>({ maxBytes: 100, sizeOf: (v) => v.length, maxEntryBytes: 100 });
    lru.set('a', new Uint8Array(50));
    lru.set('a', new Uint8Array(10));
    assert.equal(lru.stats().bytes, 10);
    assert.ok(lru.delete('a'));
    assert.equal(lru.stats().bytes, 0);
  });

  test('getOrLoad shares one load between concurrent callers and does not cache failures', async () => {
    const lru = new ByteLru<string, number>({ maxBytes: 1000, sizeOf: () => 1 });
    let loads = 0;
    const load = async (): Promise<number> => {
      loads++;
      await new Promise((r) => setTimeout(r, 5));
      return 42;
    };
    const got = await Promise.all([lru.getOrLoad('k', load), lru.getOrLoad('k', load), lru.getOrLoad('k', load)]);
    assert.deepEqual(got, [42, 42, 42]);
    assert.equal(loads, 1);
    await assert.rejects(lru.getOrLoad('bad', async () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await lru.getOrLoad('bad', async () => 7), 7);
  });

  test('property: bytes never exceed maxBytes and match the live entries', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 60 })), { maxLength: 200 }), (ops) => {
        const lru = new ByteLru<number, number>({ maxBytes: 100, sizeOf: (v) => v });
        const live = new Map<number, number>();
        for (const [k, size] of ops) {
          lru.set(k, size);
          const s = lru.stats();
          assert.ok(s.bytes <= 100);
          live.clear();
          for (let i = 0; i <= 20; i++) {
            const v = lru.peek(i);
            if (v !== undefined) live.set(i, v);
          }
          assert.equal([...live.values()].reduce((a, b) => a + b, 0), s.bytes);
        }
      }),
      { seed: 3, numRuns: 300 },
    );
  });
});

describe('BlockCache', () => {
  const data = randomBytes(300_000);

  async function setup(blockSize = 4096, maxBytes = 1 << 20): Promise<{ store: CountingStore; cache: BlockCache }> {
    const store = new CountingStore({ blockSize });
    await store.put('repos/r/pack/p.pack', data);
    store.gets = [];
    return { store, cache: new BlockCache({ maxBytes }) };
  }

  test('any range reads back exactly the stored bytes', async () => {
    const { store, cache } = await setup();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: data.length }), fc.integer({ min: 0, max: 40_000 }), async (start, len) => {
        const end = Math.min(data.length, start + len);
        const got = await cache.read(store, 'repos/r/pack/p.pack', start, end);
        assert.ok(Buffer.from(got).equals(data.subarray(start, end)));
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  test('cached blocks are not fetched again; neighbours are fetched in one get', async () => {
    const { store, cache } = await setup();
    await cache.read(store, 'repos/r/pack/p.pack', 100, 4096 * 3 + 5);
    assert.equal(store.gets.length, 1, 'four missing blocks in one ranged get');
    assert.deepEqual(store.gets[0], { offset: 0, length: 4096 * 4 });
    await cache.read(store, 'repos/r/pack/p.pack', 5000, 9000);
    assert.equal(store.gets.length, 1);
    assert.ok(cache.stats().hits >= 2);
  });

  test('concurrent readers of one block share one fetch', async () => {
    const { store, cache } = await setup();
    let open!: () => void;
    store.gate = new Promise<void>((r) => (open = r));
    const reads = Array.from({ length: 10 }, (_, i) => cache.read(store, 'repos/r/pack/p.pack', i * 10, i * 10 + 100));
    await new Promise((r) => setImmediate(r));
    open();
    const got = await Promise.all(reads);
    assert.equal(store.gets.length, 1);
    got.forEach((g, i) => assert.ok(Buffer.from(g).equals(data.subarray(i * 10, i * 10 + 100))));
  });

  test('sequential reads fetch the next blocks ahead, in the background', async () => {
    const { store, cache } = await setup();
    const key = 'repos/r/pack/p.pack';
    for (let b = 0; b < 40; b++) {
      const got = await cache.read(store, key, b * 4096 + 10, b * 4096 + 20);
      assert.ok(Buffer.from(got).equals(data.subarray(b * 4096 + 10, b * 4096 + 20)));
    }
    const s = cache.stats();
    assert.ok(s.readAheads > 0);
    // Every block is fetched once, and most before the reader asked for it.
    assert.ok(s.fetchedBytes >= 40 * 4096 && s.fetchedBytes <= 42 * 4096, JSON.stringify(s));
    assert.ok(s.hits >= 25, JSON.stringify(s));
  });

  test('fetches in flight hold at most a quarter of the cache; the others wait their turn', async () => {
    // 64 KiB of cache: 16 KiB (four 4 KiB blocks) may be in flight.
    const { store, cache } = await setup(4096, 64 * 1024);
    let inFlight = 0;
    let most = 0;
    const get = store.get.bind(store);
    store.get = async (key, opts) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      try {
        return await get(key, opts);
      } finally {
        inFlight--;
      }
    };
    // Scattered single-block reads, as a clone's first objects are.
    const starts = Array.from({ length: 40 }, (_, i) => ((i * 17) % 70) * 4096 + 7);
    const got = await Promise.all(starts.map((s) => cache.read(store, 'repos/r/pack/p.pack', s, s + 100)));
    got.forEach((g, i) => assert.ok(Buffer.from(g).equals(data.subarray(starts[i]!, starts[i]! + 100))));
    assert.ok(most <= 4, `at most four blocks in flight, saw ${most}`);
    assert.ok(cache.stats().inflightWaits > 0);
  });

  test('large reads bypass the cache', async () => {
    const { store, cache } = await setup();
    const got = await cache.read(store, 'repos/r/pack/p.pack', 10, 200_000);
    assert.ok(Buffer.from(got).equals(data.subarray(10, 200_000)));
    assert.equal(cache.stats().entries, 0);
    assert.equal(cache.stats().bypassReads, 1);
  });

  test('reading past the end of the object is REPO_CORRUPT; a missing key is STORE_NOT_FOUND', async () => {
    const { store, cache } = await setup();
    await assert.rejects(cache.read(store, 'repos/r/pack/p.pack', data.length - 10, data.length + 10), (e: unknown) => {
      assert.ok(e instanceof StowageError && e.code === 'REPO_CORRUPT');
      return true;
    });
    await assert.rejects(cache.read(store, 'repos/r/pack/none.pack', 0, 10), (e: unknown) => {
      assert.ok(e instanceof StowageError && e.code === 'STORE_NOT_FOUND');
      return true;
    });
  });

  test('two stores with the same keys never share blocks', async () => {
    const cache = new BlockCache({ maxBytes: 1 << 20 });
    const a: ObjectStore = new MemoryStore({ blockSize: 4096 });
    const b: ObjectStore = new MemoryStore({ blockSize: 4096 });
    await a.put('k/x', Buffer.from('aaaa'));
    await b.put('k/x', Buffer.from('bbbb'));
    assert.equal(Buffer.from(await cache.read(a, 'k/x', 0, 4)).toString(), 'aaaa');
    assert.equal(Buffer.from(await cache.read(b, 'k/x', 0, 4)).toString(), 'bbbb');
  });

  test('an aborted reader rejects without breaking the shared fetch', async () => {
    const { store, cache } = await setup();
    let open!: () => void;
    store.gate = new Promise<void>((r) => (open = r));
    const ac = new AbortController();
    const aborted = cache.read(store, 'repos/r/pack/p.pack', 0, 10, ac.signal);
    const other = cache.read(store, 'repos/r/pack/p.pack', 0, 10);
    ac.abort(new Error('client went away'));
    await assert.rejects(aborted, /client went away/);
    open();
    assert.ok(Buffer.from(await other).equals(data.subarray(0, 10)));
  });
});

describe('createRepoCaches', () => {
  test('builds caches of the given sizes and reports stats', () => {
    const c = createRepoCaches({ blockCacheMb: 2, indexCacheMb: 1, objectCacheMb: 4, blockSize: 65536 });
    const s = repoCacheStats(c);
    assert.equal(s.blocks.maxBytes, 2 * 1024 * 1024);
    assert.equal(s.indexes.maxBytes, 1024 * 1024);
    assert.equal(s.objects.maxBytes, 4 * 1024 * 1024);
    assert.equal(s.commits.maxBytes, 8 * 1024 * 1024);
    assert.equal(c.blocks.blockSizeOf(new MemoryStore({ blockSize: 1 << 20 })), 65536);
    assert.throws(() => createRepoCaches({ blockCacheMb: -1, indexCacheMb: 1, objectCacheMb: 1 }), RangeError);
  });
});
