/**
 * Listing past S3's 1,000-key page against the Swift AIO's S3 face, with a store that has no
 * prefix (the conformance suite covers a prefixed store).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { uniqueName } from '../../../test/infra/services.js';
import { S3Store } from './s3-store.js';
import { adminClient, createBucket, pool, removeBucket, s3TestTarget, storeOptions } from './s3-store.test-util.js';

const target = s3TestTarget('S3 store listing');
const COUNT = 1200;

async function keysOf(store: S3Store, prefix: string, startAfter?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(prefix, startAfter === undefined ? {} : { startAfter })) out.push(info.key);
  return out;
}

if (target === undefined) {
  test('S3 store listing', { skip: 'no Swift AIO in this run (reason on stderr)' }, () => undefined);
} else {
  const admin = adminClient(target);
  const bucket = uniqueName('s3-list');
  let store: S3Store;
  const keys: string[] = [];
  for (let i = 0; i < COUNT; i += 1) keys.push(`k/${String(i % 3)}/${String(i).padStart(5, '0')}`);
  keys.push('j/before', 'l/after', 'k0');
  const sorted = [...keys].sort();
  const underK = sorted.filter((k) => k.startsWith('k/'));

  describe('S3 store listing past one page', { timeout: 300_000 }, () => {
    before(async () => {
      await createBucket(admin, bucket);
      store = new S3Store(storeOptions(target, bucket, { concurrency: 16 }));
      await pool(keys.length, 16, async (i) => {
        const key = keys[i] ?? 'missing';
        await store.put(key, new TextEncoder().encode(key));
      });
    });
    after(async () => {
      await store.close();
      await removeBucket(admin, bucket);
      admin.destroy();
    });

    test(`lists all ${COUNT} keys under a prefix in order, with sizes`, async () => {
      const infos = [];
      for await (const info of store.list('k/')) infos.push(info);
      assert.deepEqual(
        infos.map((i) => i.key),
        underK,
      );
      for (const info of infos) assert.equal(info.size, info.key.length);
      assert.deepEqual(await keysOf(store, ''), sorted);
      assert.deepEqual(await keysOf(store, 'k/1/'), underK.filter((k) => k.startsWith('k/1/')));
    });

    test('startAfter resumes on later pages', async () => {
      const after1100 = underK[1100] ?? '';
      assert.deepEqual(await keysOf(store, 'k/', after1100), underK.slice(1101));
      assert.deepEqual(await keysOf(store, '', 'k/2/'), sorted.filter((k) => k > 'k/2/'));
      assert.deepEqual(await keysOf(store, 'k/', 'k/9'), []);
    });

    test('leaving a listing early is fine', async () => {
      let n = 0;
      for await (const info of store.list('k/')) {
        assert.ok(info.key.startsWith('k/'));
        n += 1;
        if (n === 1050) break;
      }
      assert.equal(n, 1050);
    });
  });
}
