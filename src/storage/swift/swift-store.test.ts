/**
 * The Swift store against the shared Swift AIO (test/infra/services.ts): the ObjectStore
 * conformance suite (with a key prefix and objects outside it that the store must never
 * touch), plus what is Swift's own: create-only races, listings in many pages, static large
 * objects above the cluster's max_file_size, and a token refresh.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { uniqueName } from '../../../test/infra/services.js';
import { StowageError } from '../../core/errors.js';
import { runObjectStoreConformance } from '../conformance.js';
import type { ObjectInfo } from '../object-store.js';
import { SwiftStore } from './swift-store.js';
import { adminSession, dropContainer, listNames, raw, settingsFor, swiftTarget } from './swift-store.test-util.js';

const env = swiftTarget('Swift store tests');
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Objects outside the store's prefix `stowage/`, sorting around it. */
const OUTSIDE = ['outside', 'stowage-x/k', 'stowage0', 'stowagf/k', 'a/stowage/k'];

async function collect<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iter) out.push(item);
  return out;
}

async function readAll(iter: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of iter) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

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

if (env === undefined) {
  test('Swift store tests', { skip: 'no Swift AIO in this run (reason on stderr)' }, () => undefined);
} else {
  runObjectStoreConformance('swift (AIO, prefix stowage/)', async () => {
    const container = uniqueName('swift-conf');
    const admin = await adminSession(env);
    await raw(admin, 'PUT', `/${container}`);
    for (const name of OUTSIDE) await raw(admin, 'PUT', `/${container}/${name}`, { body: name });
    const store = new SwiftStore(settingsFor(env, container, { prefix: 'stowage' }));
    return {
      store,
      cleanup: async () => {
        try {
          // Nothing outside the prefix was touched, and every segment left belongs to an object.
          const names = await listNames(admin, container);
          for (const name of OUTSIDE) assert.ok(names.includes(name), `${name} survived`);
          for (const segment of await listNames(admin, `${container}+segments`)) {
            const owner = segment.split('/').slice(0, -2).join('/');
            assert.ok(names.includes(owner), `segment ${segment} of no object`);
          }
        } finally {
          await dropContainer(env, container);
        }
      },
    };
  });

  describe('swift store on the AIO', () => {
    const container = uniqueName('swift-store');
    let store: SwiftStore;
    before(() => {
      store = new SwiftStore(settingsFor(env, container));
    });
    after(async () => {
      await store.close();
      await dropContainer(env, container);
    });

    test('create-only race: 30 concurrent ifAbsent puts of one key, exactly one wins', async () => {
      for (const key of ['race/a', 'race/b']) {
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            store.put(key, i % 3 === 0 ? pieces(enc.encode(`writer-${i}`), 2) : enc.encode(`writer-${i}`), { ifAbsent: true }),
          ),
        );
        const winners = results.flatMap((r, i) => (r.created ? [i] : []));
        assert.equal(winners.length, 1, `winners: ${winners.join(',')}`);
        assert.equal(dec.decode(await store.get(key)), `writer-${String(winners[0])}`);
      }
    });

    test('listing in pages of 100 past 400 keys, resuming with startAfter', async () => {
      const paged = new SwiftStore(settingsFor(env, container, { pageSize: 100 }));
      try {
        const keys = Array.from({ length: 450 }, (_, i) => `pages/${String(i % 11)}/k${String(i).padStart(5, '0')}`);
        await pool(keys.length, 16, (i) => paged.put(keys[i] as string, enc.encode(String(i))).then(() => undefined));
        const sorted = [...keys].sort();
        const all = await collect(paged.list('pages/'));
        assert.deepEqual(all.map((i) => i.key), sorted);
        assert.ok(all.every((i) => i.size === String(keys.indexOf(i.key)).length));
        // Resuming inside a page and exactly at a page boundary.
        for (const at of [212, 299]) {
          const after = sorted[at] as string;
          assert.deepEqual((await collect(paged.list('pages/', { startAfter: after }))).map((i) => i.key), sorted.slice(at + 1));
        }
        assert.deepEqual((await collect(paged.list('pages/3/'))).map((i) => i.key), sorted.filter((k) => k.startsWith('pages/3/')));
        // Leaving a listing early stops paging.
        let seen = 0;
        for await (const _ of paged.list('pages/')) if (++seen === 150) break;
        assert.equal(seen, 150);
      } finally {
        await paged.close();
      }
    });

    test("static large objects above the cluster's max_file_size (read from /info)", { timeout: 180_000 }, async () => {
      const admin = await adminSession(env);
      const max = env.maxFileSize;
      const data = randomBytes(2 * max + 12345);
      // An in-memory body (segments in parallel) and a streamed one.
      const a = await store.put('slo/mem', data);
      assert.ok(a.created);
      assert.equal(a.info.size, data.byteLength);
      const b = await store.put('slo/stream', pieces(data, 300_000));
      assert.ok(b.created);
      for (const key of ['slo/mem', 'slo/stream']) {
        const head = await raw(admin, 'HEAD', `/${container}/${key}`);
        assert.equal(head.headers['x-static-large-object'], 'True', `${key} is an SLO`);
        assert.equal((await store.head(key))?.size, data.byteLength);
        assert.ok(Buffer.from(await store.get(key)).equals(data));
        assert.ok((await readAll(store.getStream(key))).equals(data));
        // A range across the first segment boundary.
        const at = max - 1000;
        const got = await store.get(key, { range: { offset: at, length: 5000 } });
        assert.ok(Buffer.from(got).equals(data.subarray(at, at + 5000)));
        const tail = await readAll(store.getStream(key, { range: { offset: data.byteLength - 10, length: 100 } }));
        assert.ok(tail.equals(data.subarray(data.byteLength - 10)));
        assert.equal((await store.get(key, { range: { offset: data.byteLength, length: 10 } })).byteLength, 0);
      }
      const listed: ObjectInfo[] = await collect(store.list('slo/'));
      assert.deepEqual(listed.map((i) => [i.key, i.size]), [
        ['slo/mem', data.byteLength],
        ['slo/stream', data.byteLength],
      ]);
      const segments = await listNames(admin, `${container}+segments`);
      assert.equal(segments.length, 6);
      // Create-only on an existing SLO: nothing uploaded, nothing left behind.
      assert.deepEqual(await store.put('slo/mem', pieces(data, 1 << 20), { ifAbsent: true }), { created: false });
      assert.deepEqual(await store.put('slo/mem', data, { ifAbsent: true }), { created: false });
      assert.equal((await listNames(admin, `${container}+segments`)).length, 6);
      // A create-only SLO put that wins.
      assert.ok((await store.put('slo/new', data, { ifAbsent: true })).created);
      // A streamed SLO put whose source fails midway leaves no object and no segments.
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield* pieces(data.subarray(0, max + 5000), 100_000);
        throw new Error('source broke');
      }
      await assert.rejects(() => store.put('slo/broken', failing()), /source broke/);
      assert.equal(await store.head('slo/broken'), undefined);
      assert.equal((await listNames(admin, `${container}+segments`)).length, 9);
      // Deleting an SLO deletes its segments.
      for (const key of ['slo/mem', 'slo/stream', 'slo/new']) await store.delete(key);
      assert.deepEqual(await listNames(admin, `${container}+segments`), []);
      assert.deepEqual(await collect(store.list('slo/')), []);
    });

    test('a corrupted token is refreshed: the next call re-authenticates and succeeds', async () => {
      await store.put('tok/k', enc.encode('v1'));
      await store.replaceTokenForTest('AUTH_tk0000000000000000000000000000bogus');
      assert.equal(dec.decode(await store.get('tok/k')), 'v1');
      await store.replaceTokenForTest('AUTH_tk0000000000000000000000000000bogus');
      await store.put('tok/k', pieces(enc.encode('v2'), 1));
      await store.replaceTokenForTest('AUTH_tk0000000000000000000000000000bogus');
      assert.deepEqual((await collect(store.list('tok/'))).map((i) => i.key), ['tok/k']);
      assert.equal(dec.decode(await store.get('tok/k')), 'v2');
    });

    test('a wrong password fails with STORE_IO naming the user, never the password', async () => {
      const bad = new SwiftStore(settingsFor(env, container, { password: 'not-the-password' }));
      try {
        await assert.rejects(
          () => bad.head('k'),
          (err: unknown) => {
            assert.ok(err instanceof StowageError && err.code === 'STORE_IO', String(err));
            assert.match(err.message, /HTTP 401: user "test:tester" was refused/);
            assert.ok(!err.message.includes('not-the-password'));
            return true;
          },
        );
      } finally {
        await bad.close();
      }
    });

    test('a container deleted behind the store is created again on the next put', async () => {
      const other = uniqueName('swift-recreate');
      const s = new SwiftStore(settingsFor(env, other));
      try {
        await s.put('k', enc.encode('one'));
        await dropContainer(env, other);
        assert.equal(await s.tryGet('k'), undefined);
        assert.deepEqual(await collect(s.list('')), []);
        await s.put('k', enc.encode('two'));
        assert.equal(dec.decode(await s.get('k')), 'two');
      } finally {
        await s.close();
        await dropContainer(env, other);
      }
    });
  });
}
