/**
 * How put bodies are cut (against the fake): any chunking of a streamed body, any buffer
 * threshold and segment size give one object or a manifest whose segments concatenate to the
 * body, every segment but the last full, each listed with its MD5 and size.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { startFakeSwift, type FakeSwift } from './fake-swift.test-util.js';
import { SwiftStore } from './swift-store.js';

interface ManifestEntry {
  path: string;
  etag: string;
  size_bytes: number;
}

async function* chunked(data: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let pos = 0;
  for (let i = 0; pos < data.byteLength; i += 1) {
    const n = sizes[i % sizes.length] ?? 1;
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}

describe('swift put bodies: plain objects and segments (fake)', () => {
  let fake: FakeSwift;
  before(async () => {
    fake = await startFakeSwift();
  });
  after(() => fake.close());

  test('any chunking, threshold and segment size store exactly the body', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 4000 }),
        fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }).filter((a) => a.some((n) => n > 0)),
        fc.integer({ min: 1, max: 1500 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.boolean(),
        async (data, sizes, segment, buffer, streamed) => {
          run += 1;
          const key = `p/k${run}`;
          const store = new SwiftStore({
            authUrl: fake.authUrl,
            authVer: 1,
            username: 'a:b',
            password: 'p',
            container: 'u',
            maxFileSize: segment,
            putBufferSize: buffer,
          });
          try {
            const res = await store.put(key, streamed ? chunked(data, sizes) : data);
            assert.ok(res.created);
            assert.equal(res.info.size, data.byteLength);
          } finally {
            await store.close();
          }
          const stored = fake.objects.get(`/v1/AUTH_test/u/${key}`);
          assert.ok(stored !== undefined);
          const manifestPut = fake.requests.filter((r) => r.method === 'PUT' && r.path.startsWith(`/v1/AUTH_test/u/${key}?`)).at(-1);
          const plain = streamed ? data.byteLength <= Math.min(buffer, segment) : data.byteLength <= segment;
          if (plain) {
            assert.equal(manifestPut, undefined);
            assert.ok(Buffer.from(stored).equals(data));
            return;
          }
          assert.ok(manifestPut?.path.endsWith('?multipart-manifest=put'));
          const manifest = JSON.parse(stored.toString()) as ManifestEntry[];
          const parts = manifest.map((m) => {
            assert.ok(m.path.startsWith(`/u+segments/${key}/`), m.path);
            const seg = fake.objects.get(`/v1/AUTH_test${m.path.replace('+', '%2B')}`);
            assert.ok(seg !== undefined, m.path);
            assert.equal(m.size_bytes, seg.byteLength);
            assert.equal(m.etag, createHash('md5').update(seg).digest('hex'));
            return seg;
          });
          assert.ok(parts.slice(0, -1).every((p) => p.byteLength === segment));
          assert.ok(parts.every((p) => p.byteLength > 0 && p.byteLength <= segment));
          assert.ok(Buffer.concat(parts).equals(data));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('a source that throws mid-segment: its own error, no object, segments deleted', async () => {
    const store = new SwiftStore({ authUrl: fake.authUrl, authVer: 1, username: 'a:b', password: 'p', container: 'f', maxFileSize: 1000, putBufferSize: 0 });
    async function* failing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 25; i += 1) yield new Uint8Array(100).fill(i);
      throw new Error('source broke');
    }
    try {
      await assert.rejects(() => store.put('broken', failing()), /^Error: source broke$/);
      assert.equal(await store.head('broken'), undefined);
      assert.deepEqual([...fake.objects.keys()].filter((k) => k.startsWith('/v1/AUTH_test/f')), []);
    } finally {
      await store.close();
    }
  });
});
