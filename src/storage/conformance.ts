/**
 * The ObjectStore conformance suite: every backend's test file calls it against the real
 * service (DESIGN.md section 3). It registers node:test tests; each test gets a fresh store
 * from `makeStore`, and the suite calls `store.close()` then `cleanup()` after it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { StoreError, StowageError } from '../core/errors.js';
import type { ObjectStore } from './object-store.js';

/** What a backend's test supplies: a fresh, empty store and a way to remove its data. */
export type MakeStore = () => Promise<{ store: ObjectStore; cleanup(): Promise<void> }>;

/** What the backend under test can do. */
export interface StoreCaps {
  /**
   * Whether `ifAbsent` puts work (default true). False for stores that cannot write
   * create-only (an S3 face ignoring If-None-Match): their `ifAbsent` puts must throw a
   * StoreError and leave any existing object as it was, never overwrite.
   */
  readonly createOnly?: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Collects an async iterable into an array. */
async function collect<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iter) out.push(item);
  return out;
}

/** Concatenates a byte stream. */
async function readAll(iter: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of iter) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** Yields `data` in pieces of the given sizes (cycled), as views. */
async function* pieces(data: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let pos = 0;
  for (let i = 0; pos < data.byteLength; i += 1) {
    const n = sizes[i % sizes.length] ?? 1;
    yield data.subarray(pos, pos + n);
    pos += n;
    if (i % 16 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function keysOf(store: ObjectStore, prefix: string, startAfter?: string): Promise<string[]> {
  const opts = startAfter === undefined ? {} : { startAfter };
  return (await collect(store.list(prefix, opts))).map((i) => i.key);
}

function byteSorted(keys: readonly string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

async function rejectsWithCode(fn: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof StowageError, `expected a StowageError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Runs `count` tasks with at most `width` in flight. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next;
      next += 1;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}

async function rejectsAsStoreError(fn: () => Promise<unknown>): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    return true;
  });
}

/** Registers the ObjectStore conformance tests for one backend. */
export function runObjectStoreConformance(name: string, makeStore: MakeStore, caps: StoreCaps = {}): void {
  const createOnly = caps.createOnly ?? true;
  const withStore = (title: string, fn: (store: ObjectStore) => Promise<void>, timeout = 60_000): void => {
    test(title, { timeout }, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await fn(store);
      } finally {
        await store.close();
        await cleanup();
      }
    });
  };

  describe(`ObjectStore conformance: ${name}`, () => {
    withStore('put and get round trip, without aliasing', async (store) => {
      assert.ok(store.blockSize > 0);
      assert.ok(store.description.length > 0);
      const body = enc.encode('hello, object store');
      const res = await store.put('a/b/hello.txt', body);
      assert.ok(res.created);
      assert.equal(res.info.key, 'a/b/hello.txt');
      assert.equal(res.info.size, body.byteLength);
      body.fill(0); // the caller's buffer is not the stored object
      const got = await store.get('a/b/hello.txt');
      assert.equal(dec.decode(got), 'hello, object store');
      got.fill(0); // nor is the returned one
      assert.equal(dec.decode(await store.get('a/b/hello.txt')), 'hello, object store');
      assert.equal(dec.decode((await store.tryGet('a/b/hello.txt')) ?? new Uint8Array()), 'hello, object store');
      assert.equal(dec.decode(await readAll(store.getStream('a/b/hello.txt'))), 'hello, object store');
      await store.put('a/b/hello.txt', pieces(enc.encode('second version'), [3, 1, 5]));
      assert.equal(dec.decode(await store.get('a/b/hello.txt')), 'second version');
      await store.put('top', enc.encode('top level'));
      assert.equal(dec.decode(await store.get('top')), 'top level');
    });

    withStore('absent keys: undefined from tryGet and head, STORE_NOT_FOUND from get', async (store) => {
      assert.equal(await store.tryGet('no/such/key'), undefined);
      assert.equal(await store.head('no/such/key'), undefined);
      await rejectsWithCode(() => store.get('no/such/key'), 'STORE_NOT_FOUND');
      await rejectsWithCode(() => readAll(store.getStream('no/such/key')), 'STORE_NOT_FOUND');
      await store.put('dir/child', enc.encode('x'));
      // A prefix of a key is not an object.
      assert.equal(await store.tryGet('dir'), undefined);
      assert.equal(await store.head('dir'), undefined);
    });

    withStore('empty objects', async (store) => {
      const res = await store.put('e/empty', new Uint8Array(0));
      assert.ok(res.created);
      assert.equal(res.info.size, 0);
      assert.equal((await store.get('e/empty')).byteLength, 0);
      assert.equal((await store.head('e/empty'))?.size, 0);
      assert.equal((await store.get('e/empty', { range: { offset: 0, length: 10 } })).byteLength, 0);
      assert.equal((await readAll(store.getStream('e/empty'))).byteLength, 0);
      await store.put('e/empty-stream', pieces(new Uint8Array(0), [1]));
      assert.equal((await store.get('e/empty-stream')).byteLength, 0);
      assert.deepEqual(await keysOf(store, 'e/'), ['e/empty', 'e/empty-stream']);
    });

    withStore(
      'large objects: 20 MB streamed in, read back by ranges and as a stream',
      async (store) => {
        const data = randomBytes(20 * 1024 * 1024 + 123);
        const res = await store.put('big/object', pieces(data, [65536, 1, 1000, 300_000, 7, 1 << 20]));
        assert.ok(res.created);
        assert.equal(res.info.size, data.byteLength);
        assert.equal((await store.head('big/object'))?.size, data.byteLength);
        const step = 1024 * 1024 + 4093;
        for (let offset = 0; offset < data.byteLength; offset += step) {
          const got = await store.get('big/object', { range: { offset, length: step } });
          assert.ok(Buffer.from(got).equals(data.subarray(offset, offset + step)), `range at ${offset}`);
        }
        const streamed = await readAll(store.getStream('big/object'));
        assert.ok(streamed.equals(data));
        const mid = await readAll(store.getStream('big/object', { range: { offset: 5_000_001, length: 3_000_000 } }));
        assert.ok(mid.equals(data.subarray(5_000_001, 8_000_001)));
        // A consumer that copies each chunk before releasing it gets the same bytes with recycle.
        const copies: Buffer[] = [];
        for await (const chunk of store.getStream('big/object', { recycle: () => Promise.resolve() })) copies.push(Buffer.from(chunk));
        assert.ok(Buffer.concat(copies).equals(data));
      },
      180_000,
    );

    withStore('ranged reads: start, middle, end, past the end, zero length', async (store) => {
      const data = Buffer.alloc(1000);
      for (let i = 0; i < data.length; i += 1) data[i] = (i * 7) & 255;
      await store.put('r/obj', data);
      const range = async (offset: number, length: number): Promise<Buffer> =>
        Buffer.from(await store.get('r/obj', { range: { offset, length } }));
      assert.ok((await range(0, 10)).equals(data.subarray(0, 10)));
      assert.ok((await range(500, 100)).equals(data.subarray(500, 600)));
      assert.ok((await range(990, 10)).equals(data.subarray(990)));
      assert.ok((await range(995, 100)).equals(data.subarray(995))); // cut short
      assert.equal((await range(1000, 10)).byteLength, 0);
      assert.equal((await range(5000, 10)).byteLength, 0);
      assert.equal((await range(5, 0)).byteLength, 0);
      assert.ok((await range(0, 1000)).equals(data));
      const streamed = await readAll(store.getStream('r/obj', { range: { offset: 100, length: 250 } }));
      assert.ok(streamed.equals(data.subarray(100, 350)));
      const tail = await readAll(store.getStream('r/obj', { range: { offset: 900, length: 1000 } }));
      assert.ok(tail.equals(data.subarray(900)));
      const bad = { range: { offset: -1, length: 5 } };
      await assert.rejects(() => store.get('r/obj', bad), (err: unknown) => err instanceof StowageError);
    });

    withStore('head reports size and mtime', async (store) => {
      const before = Date.now();
      await store.put('h/k', enc.encode('12345'));
      const info = await store.head('h/k');
      assert.ok(info !== undefined);
      assert.equal(info.key, 'h/k');
      assert.equal(info.size, 5);
      // Generous bounds: remote stores stamp with their own clock.
      assert.ok(Number.isFinite(info.mtimeMs) && Math.abs(info.mtimeMs - before) < 3_600_000);
      await store.put('h/k', enc.encode('1234567890'));
      assert.equal((await store.head('h/k'))?.size, 10);
    });

    withStore('delete is idempotent and prunes nothing else', async (store) => {
      await store.put('d/e/f/g', enc.encode('deep'));
      await store.put('d/e/sibling', enc.encode('stays'));
      await store.delete('d/e/f/g');
      assert.equal(await store.head('d/e/f/g'), undefined);
      assert.equal(await store.tryGet('d/e/f/g'), undefined);
      await store.delete('d/e/f/g');
      await store.delete('never/was/here');
      assert.deepEqual(await keysOf(store, 'd/'), ['d/e/sibling']);
      await store.put('d/e/f/g', enc.encode('again'));
      assert.equal(dec.decode(await store.get('d/e/f/g')), 'again');
      await store.delete('d/e/f/g');
      await store.delete('d/e/sibling');
      assert.deepEqual(await keysOf(store, 'd/'), []);
      await store.put('d/e/f/g', enc.encode('after prune'));
      assert.equal(dec.decode(await store.get('d/e/f/g')), 'after prune');
    });

    withStore('list: byte order, prefixes, startAfter', async (store) => {
      const keys = ['o/B', 'o/a-b', 'o/a.b', 'o/a/c', 'o/a/c0', 'o/a0', 'o/aa', 'o/a/b/c/d', 'oo', 'o-x', 'p'];
      for (const key of keys) await store.put(key, enc.encode(key));
      const infos = await collect(store.list('o/'));
      assert.deepEqual(
        infos.map((i) => i.key),
        byteSorted(keys.filter((k) => k.startsWith('o/'))),
      );
      for (const info of infos) assert.equal(info.size, info.key.length);
      assert.deepEqual(await keysOf(store, ''), byteSorted(keys));
      assert.deepEqual(await keysOf(store, 'o'), byteSorted(keys.filter((k) => k.startsWith('o'))));
      assert.deepEqual(await keysOf(store, 'o/a'), byteSorted(keys.filter((k) => k.startsWith('o/a'))));
      assert.deepEqual(await keysOf(store, 'o/a/'), ['o/a/b/c/d', 'o/a/c', 'o/a/c0']);
      assert.deepEqual(await keysOf(store, 'o/a/c'), ['o/a/c', 'o/a/c0']);
      assert.deepEqual(await keysOf(store, 'zzz'), []);
      assert.deepEqual(await keysOf(store, 'nothing/'), []);
      const all = byteSorted(keys);
      for (const after of ['o/a.b', 'o/a/', 'o/a/b', 'o/a/zz', 'o-x', '', 'o/a0x', 'z', 'A']) {
        assert.deepEqual(await keysOf(store, '', after), all.filter((k) => k > after), `startAfter ${after}`);
      }
      assert.deepEqual(await keysOf(store, 'o/', 'o/a/c'), ['o/a/c0', 'o/a0', 'o/aa']);
    });

    withStore(
      'list pages through more than 2,500 keys with slashes',
      async (store) => {
        const keys: string[] = [];
        for (let i = 0; i < 2600; i += 1) {
          const n = String(i).padStart(5, '0');
          keys.push(i % 5 === 0 ? `p/x-${n}` : `p/${String(i % 7)}/k${n}`);
        }
        keys.push('q/outside', 'p0', 'o/before');
        await pool(keys.length, 32, (i) => store.put(keys[i] ?? 'missing', enc.encode(String(i))).then(() => undefined));
        const expected = byteSorted(keys.filter((k) => k.startsWith('p/')));
        assert.deepEqual(await keysOf(store, 'p/'), expected);
        // Resume in pages of 500 with startAfter.
        const paged: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page: string[] = [];
          for await (const info of store.list('p/', after === undefined ? {} : { startAfter: after })) {
            page.push(info.key);
            if (page.length === 500) break; // leaving early releases the listing
          }
          paged.push(...page);
          if (page.length < 500) break;
          after = page[page.length - 1];
        }
        assert.deepEqual(paged, expected);
      },
      180_000,
    );

    if (createOnly) {
      withStore('ifAbsent creates only once', async (store) => {
        const first = await store.put('c/k', enc.encode('first'), { ifAbsent: true });
        assert.ok(first.created);
        assert.equal(first.info.size, 5);
        assert.deepEqual(await store.put('c/k', enc.encode('second'), { ifAbsent: true }), { created: false });
        assert.deepEqual(await store.put('c/k', pieces(enc.encode('third'), [2]), { ifAbsent: true }), { created: false });
        assert.equal(dec.decode(await store.get('c/k')), 'first');
        await store.delete('c/k');
        assert.ok((await store.put('c/k', pieces(enc.encode('fourth'), [2]), { ifAbsent: true })).created);
        assert.equal(dec.decode(await store.get('c/k')), 'fourth');
        await store.put('c/k', enc.encode('plain overwrite'));
        assert.equal(dec.decode(await store.get('c/k')), 'plain overwrite');
      });

      withStore('50 concurrent ifAbsent creators: exactly one wins', async (store) => {
        for (const key of ['race/one', 'race/deep/two', 'race3']) {
          const results = await Promise.all(
            Array.from({ length: 50 }, (_, i) =>
              store.put(key, i % 2 === 0 ? enc.encode(`writer-${i}`) : pieces(enc.encode(`writer-${i}`), [3]), {
                ifAbsent: true,
              }),
            ),
          );
          const winners = results.flatMap((r, i) => (r.created ? [i] : []));
          assert.equal(winners.length, 1, `winners for ${key}: ${winners.join(',')}`);
          assert.equal(dec.decode(await store.get(key)), `writer-${String(winners[0])}`);
        }
      });
    } else {
      withStore('ifAbsent throws a StoreError and never overwrites (create-only unsupported)', async (store) => {
        await rejectsAsStoreError(() => store.put('c/k', enc.encode('new'), { ifAbsent: true }));
        await rejectsAsStoreError(() => store.put('c/k2', pieces(enc.encode('new'), [2]), { ifAbsent: true }));
        assert.equal(await store.head('c/k'), undefined);
        assert.equal(await store.head('c/k2'), undefined);
        await store.put('c/k', enc.encode('first'));
        await rejectsAsStoreError(() => store.put('c/k', enc.encode('second'), { ifAbsent: true }));
        await rejectsAsStoreError(() => store.put('c/k', pieces(enc.encode('third'), [2]), { ifAbsent: true }));
        assert.equal(dec.decode(await store.get('c/k')), 'first');
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) => store.put('c/k', enc.encode(`writer-${i}`), { ifAbsent: true })),
        );
        for (const r of results) {
          assert.equal(r.status, 'rejected');
          assert.ok(r.reason instanceof StoreError, `expected a StoreError, got ${String(r.reason)}`);
        }
        assert.equal(dec.decode(await store.get('c/k')), 'first');
        await store.put('c/k', enc.encode('plain overwrite'));
        assert.equal(dec.decode(await store.get('c/k')), 'plain overwrite');
        assert.deepEqual(await keysOf(store, 'c/'), ['c/k']);
      });
    }

    withStore('a failed or aborted streaming put leaves nothing', async (store) => {
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield enc.encode('part one,');
        yield new Uint8Array(300_000);
        throw new Error('source broke');
      }
      await assert.rejects(() => store.put('ab/k', failing()), /source broke/);
      if (createOnly) await assert.rejects(() => store.put('ab/k2', failing(), { ifAbsent: true }), /source broke/);
      else await rejectsAsStoreError(() => store.put('ab/k2', failing(), { ifAbsent: true }));
      assert.equal(await store.tryGet('ab/k'), undefined);
      assert.equal(await store.head('ab/k2'), undefined);
      const ac = new AbortController();
      async function* slow(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 100; i += 1) {
          if (i === 3) ac.abort();
          yield new Uint8Array(1000);
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      await assert.rejects(() => store.put('ab/k3', slow(), { signal: ac.signal }));
      assert.equal(await store.head('ab/k3'), undefined);
      assert.deepEqual(await keysOf(store, 'ab/'), []);
      // A failed overwrite keeps the old object.
      await store.put('ab/k', enc.encode('old'));
      await assert.rejects(() => store.put('ab/k', failing()), /source broke/);
      assert.equal(dec.decode(await store.get('ab/k')), 'old');
      assert.deepEqual(await keysOf(store, ''), ['ab/k']);
    });

    withStore('an overwrite is atomic: readers see the old or the new object, never a mix', async (store) => {
      const a = Buffer.alloc(2 * 1024 * 1024 + 17, 0x61);
      const b = Buffer.alloc(3 * 1024 * 1024 + 5, 0x62);
      await store.put('w/k', a);
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 20; i += 1) await store.put('w/k', i % 2 === 0 ? pieces(b, [100_000]) : a);
        writing = false;
      })();
      const reader = async (streamed: boolean): Promise<number> => {
        let reads = 0;
        while (writing || reads === 0) {
          const got = streamed ? await readAll(store.getStream('w/k')) : Buffer.from(await store.get('w/k'));
          assert.ok(got.equals(a) || got.equals(b), `torn read of ${got.byteLength} bytes`);
          reads += 1;
          await new Promise<void>((resolve) => setImmediate(resolve)); // let the writer run
        }
        return reads;
      };
      const counts = await Promise.all([reader(false), reader(true), reader(false), writer.then(() => 0)]);
      assert.ok((counts[0] ?? 0) > 0);
    });

    withStore('puts racing deletes in the same folder never fail', async (store) => {
      for (let round = 0; round < 60; round += 1) {
        await store.put('rd/s/t/old', enc.encode('old'));
        const key = `rd/s/t/new-${String(round)}`;
        await Promise.all([
          store.put(key, enc.encode('new'), { ifAbsent: createOnly && round % 2 === 0 }),
          store.delete('rd/s/t/old'),
        ]);
        assert.equal(dec.decode(await store.get(key)), 'new');
        await store.delete(key);
      }
      assert.deepEqual(await keysOf(store, 'rd/'), []);
    });

    withStore('bad keys are rejected with STORE_BAD_KEY', async (store) => {
      const bad = ['', '/a', 'a/', 'a//b', '../a', 'a/../b', './a', 'a/.', 'a b', 'a\\b', 'ä', 'a\u0000b', 'x'.repeat(1025)];
      for (const key of bad) {
        await rejectsWithCode(() => store.tryGet(key), 'STORE_BAD_KEY');
        await rejectsWithCode(() => store.get(key), 'STORE_BAD_KEY');
        await rejectsWithCode(() => store.head(key), 'STORE_BAD_KEY');
        await rejectsWithCode(() => store.put(key, enc.encode('x')), 'STORE_BAD_KEY');
        await rejectsWithCode(() => store.put(key, enc.encode('x'), { ifAbsent: true }), 'STORE_BAD_KEY');
        await rejectsWithCode(() => store.delete(key), 'STORE_BAD_KEY');
        await rejectsWithCode(() => readAll(store.getStream(key)), 'STORE_BAD_KEY');
      }
      for (const prefix of ['/', '../', 'a//', 'a b']) {
        await rejectsWithCode(async () => collect(store.list(prefix)), 'STORE_BAD_KEY');
      }
      assert.deepEqual(await keysOf(store, ''), []);
    });
  });
}
