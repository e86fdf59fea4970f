/**
 * Create-only puts against the Swift AIO's S3 face. A raw conditional PUT (plain SDK client,
 * not the store) finds out what this endpoint does with `If-None-Match: *`; the store's
 * probe must give the same answer, and ifAbsent puts must behave as specified for it.
 */
import assert from 'node:assert/strict';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { after, before, describe, test } from 'node:test';
import { uniqueName } from '../../../test/infra/services.js';
import { StoreError } from '../../core/errors.js';
import { s3Failure } from './s3-errors.js';
import { S3Store } from './s3-store.js';
import { adminClient, createBucket, listKeys, removeBucket, s3TestTarget, storeOptions } from './s3-store.test-util.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const target = s3TestTarget('S3 store create-only');

/** What one raw PUT with If-None-Match: * got back: `ok` or the HTTP status and S3 code. */
type RawAnswer = { readonly ok: true } | { readonly ok: false; readonly status: number | undefined; readonly code: string };

function isUnsupported(err: unknown): boolean {
  if (!(err instanceof StoreError) || err.code !== 'STORE_CONDITION_UNSUPPORTED') return false;
  assert.match(err.message, /does not honour If-None-Match: \*/);
  assert.match(err.message, /--meta etcd:\/\//);
  return true;
}

if (target === undefined) {
  test('S3 store create-only', { skip: 'no Swift AIO in this run (reason on stderr)' }, () => undefined);
} else {
  const admin = adminClient(target);
  const bucket = uniqueName('s3-create-only');
  const stores: S3Store[] = [];
  const open = (extra: Parameters<typeof storeOptions>[2] = {}): S3Store => {
    const store = new S3Store(storeOptions(target, bucket, extra));
    stores.push(store);
    return store;
  };
  const rawPut = async (key: string, body: string): Promise<RawAnswer> => {
    try {
      await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' }));
      return { ok: true };
    } catch (err) {
      const f = s3Failure(err);
      return { ok: false, status: f.status, code: f.code };
    }
  };

  describe('S3 store create-only puts', { timeout: 120_000 }, () => {
    let first: RawAnswer;
    let second: RawAnswer | undefined;
    let honoured: boolean;

    before(async () => {
      await createBucket(admin, bucket);
      // The raw truth about this endpoint, by hand.
      first = await rawPut('raw/probe', 'one');
      if (first.ok) second = await rawPut('raw/probe', 'two');
      honoured = first.ok && second !== undefined && !second.ok && second.status === 412;
      process.stderr.write(
        `s3 endpoint answered If-None-Match: * with ${JSON.stringify(first)}` +
          `${second === undefined ? '' : ` then ${JSON.stringify(second)}`}: create-only ${honoured ? 'honoured' : 'unsupported'}\n`,
      );
    });
    after(async () => {
      for (const store of stores) await store.close();
      await removeBucket(admin, bucket);
      admin.destroy();
    });

    test('the raw answer is one the store understands, and a refused PUT wrote nothing', async () => {
      if (first.ok) {
        assert.ok(second !== undefined);
        // Honoured (412) or ignored (the second PUT overwrote).
        assert.ok(second.ok || second.status === 412, `unexpected second answer ${JSON.stringify(second)}`);
      } else {
        // Swift 2.30's s3api: 501 NotImplemented for any conditional PUT, and nothing stored.
        assert.equal(first.status, 501);
        assert.equal(first.code, 'NotImplemented');
        assert.deepEqual(await listKeys(admin, bucket, 'raw/'), []);
      }
    });

    test('probeCreateOnly gives the raw answer and cleans up after itself', async () => {
      const store = open({ prefix: 'probe' });
      assert.equal(store.createOnly, undefined);
      const [a, b] = await Promise.all([store.probeCreateOnly(), store.probeCreateOnly()]);
      assert.equal(a, honoured);
      assert.equal(b, honoured);
      assert.equal(store.createOnly, honoured);
      assert.deepEqual(await listKeys(admin, bucket, 'probe/'), []);
    });

    test('mode probe: the first ifAbsent put probes, then behaves as specified', async () => {
      const store = open({ prefix: 'lazy' });
      assert.equal(store.createOnly, undefined);
      await store.put('k', enc.encode('existing'));
      if (honoured) {
        assert.deepEqual(await store.put('k', enc.encode('new'), { ifAbsent: true }), { created: false });
        assert.ok((await store.put('fresh', enc.encode('fresh'), { ifAbsent: true })).created);
        assert.equal(dec.decode(await store.get('fresh')), 'fresh');
      } else {
        await assert.rejects(() => store.put('k', enc.encode('new'), { ifAbsent: true }), isUnsupported);
        await assert.rejects(() => store.put('fresh', enc.encode('fresh'), { ifAbsent: true }), isUnsupported);
        assert.equal(await store.head('fresh'), undefined);
      }
      assert.equal(store.createOnly, honoured);
      assert.equal(dec.decode(await store.get('k')), 'existing');
    });

    test('mode honoured on this endpoint', async () => {
      const store = open({ prefix: 'honoured', createOnly: 'honoured' });
      assert.equal(store.createOnly, true);
      await store.put('k', enc.encode('existing'));
      if (honoured) {
        assert.deepEqual(await store.put('k', enc.encode('new'), { ifAbsent: true }), { created: false });
      } else {
        // The endpoint refuses the condition (501): the store says so and stops sending it.
        await assert.rejects(() => store.put('k', enc.encode('new'), { ifAbsent: true }), isUnsupported);
        assert.equal(store.createOnly, false);
        await assert.rejects(() => store.put('other', enc.encode('x'), { ifAbsent: true }), isUnsupported);
        assert.equal(await store.head('other'), undefined);
      }
      assert.equal(dec.decode(await store.get('k')), 'existing');
    });

    test('mode unsupported refuses create-only puts without writing, other puts work', async () => {
      const store = open({ prefix: 'unsupported', createOnly: 'unsupported' });
      assert.equal(store.createOnly, false);
      await store.put('k', enc.encode('existing'));
      async function* body(): AsyncGenerator<Uint8Array> {
        yield enc.encode('streamed');
      }
      await assert.rejects(() => store.put('k', body(), { ifAbsent: true }), isUnsupported);
      await assert.rejects(() => store.put('absent', enc.encode('x'), { ifAbsent: true }), isUnsupported);
      assert.equal(dec.decode(await store.get('k')), 'existing');
      assert.equal(await store.head('absent'), undefined);
      // The probe still reports the truth, but a configured mode stays as configured.
      assert.equal(await store.probeCreateOnly(), honoured);
      assert.equal(store.createOnly, false);
      assert.deepEqual(await listKeys(admin, bucket, 'unsupported/'), ['unsupported/k']);
    });
  });
}
