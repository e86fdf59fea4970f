/**
 * The S3 store's client side against the Swift AIO's S3 face: a store built from an s3:// URL
 * and AWS_* variables works; errors name operation, key and S3's answer without secrets;
 * signals abort requests; deferred-durability puts and sync() behave as plain puts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { uniqueName } from '../../../test/infra/services.js';
import { StoreError, StowageError } from '../../core/errors.js';
import { s3Failure } from './s3-errors.js';
import { parseS3Url } from './s3-options.js';
import { S3Store } from './s3-store.js';
import { adminClient, createBucket, removeBucket, s3TestTarget, storeOptions } from './s3-store.test-util.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const target = s3TestTarget('S3 store client');

function storeIo(mentions: RegExp, secret: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, 'STORE_IO');
    assert.match(err.message, mentions);
    assert.ok(!err.message.includes(secret), 'the message holds the secret');
    assert.ok(!err.message.includes('\n    at '), 'the message holds a stack');
    return true;
  };
}

if (target === undefined) {
  test('S3 store client', { skip: 'no Swift AIO in this run (reason on stderr)' }, () => undefined);
} else {
  const admin = adminClient(target);
  const bucket = uniqueName('s3-client');
  const url = `s3://${bucket}/via-url?endpoint=${encodeURIComponent(target.endpoint)}&region=${target.region}&path_style=true`;

  describe('S3 store client', { timeout: 120_000 }, () => {
    before(() => createBucket(admin, bucket));
    after(async () => {
      await removeBucket(admin, bucket);
      admin.destroy();
    });

    test('a store from an s3:// URL picks up credentials from AWS_* variables', async () => {
      const env = { AWS_ACCESS_KEY_ID: target.accessKeyId, AWS_SECRET_ACCESS_KEY: target.secretAccessKey };
      const store = new S3Store(parseS3Url(url, env));
      try {
        assert.ok(!store.description.includes(target.secretAccessKey));
        assert.match(store.description, new RegExp(`^s3://${bucket}/via-url/ `));
        await store.put('a/b', enc.encode('from the url'));
        assert.equal(dec.decode(await store.get('a/b')), 'from the url');
        const keys = [];
        for await (const info of store.list('')) keys.push(info.key);
        assert.deepEqual(keys, ['a/b']);
        await store.delete('a/b');
      } finally {
        await store.close();
      }
    });

    test('a wrong secret: STORE_IO naming the operation, key and HTTP 403, never the secret', async () => {
      const secret = 'not-the-secret-0123456789';
      const store = new S3Store(parseS3Url(url, { AWS_ACCESS_KEY_ID: target.accessKeyId, AWS_SECRET_ACCESS_KEY: secret }));
      try {
        await assert.rejects(() => store.put('x/y', enc.encode('z')), storeIo(/^s3 put of x\/y failed: \w+ \(HTTP 403\)$/, secret));
        await assert.rejects(() => store.get('x/y'), storeIo(/^s3 get of x\/y failed: .*HTTP 403/, secret));
        await assert.rejects(() => store.head('x/y'), storeIo(/^s3 head of x\/y failed: .*HTTP 403/, secret));
        await assert.rejects(async () => {
          for await (const _ of store.list('x/')) void _;
        }, storeIo(/^s3 list of prefix "x\/" failed: .*HTTP 403/, secret));
      } finally {
        await store.close();
      }
    });

    test('a missing bucket is an error, not an absent key', async () => {
      const store = new S3Store(storeOptions(target, uniqueName('s3-no-such-bucket')));
      try {
        await assert.rejects(() => store.tryGet('k'), storeIo(/NoSuchBucket \(HTTP 404\)/, target.secretAccessKey));
        await assert.rejects(() => store.put('k', enc.encode('v')), storeIo(/HTTP 404/, target.secretAccessKey));
      } finally {
        await store.close();
      }
    });

    test('an unreachable endpoint fails with STORE_IO after bounded attempts', async () => {
      const store = new S3Store({ ...storeOptions(target, bucket), endpoint: 'http://127.0.0.1:1', maxAttempts: 2 });
      try {
        await assert.rejects(
          () => store.head('k'),
          (err: unknown) => storeIo(/^s3 head of k failed: ECONNREFUSED$/, target.secretAccessKey)(err) && s3Failure((err as Error).cause).attempts === 2,
        );
      } finally {
        await store.close();
      }
    });

    test('signals: an aborted signal rejects with its reason; breaking a stream early is fine', async () => {
      const store = new S3Store(storeOptions(target, bucket, { prefix: 'signals' }));
      try {
        const big = new Uint8Array(3 * 1024 * 1024).fill(7);
        await store.put('big', big);
        const reason = new Error('caller left');
        await assert.rejects(() => store.get('big', { signal: AbortSignal.abort(reason) }), (err) => err === reason);
        const ac = new AbortController();
        const pending = store.get('big', { signal: ac.signal });
        ac.abort(reason);
        await assert.rejects(() => pending, (err) => err === reason);
        let seen = 0;
        for await (const chunk of store.getStream('big')) {
          seen += chunk.byteLength;
          break;
        }
        assert.ok(seen > 0);
        assert.equal((await store.get('big')).byteLength, big.byteLength);
      } finally {
        await store.close();
      }
    });

    test('deferDurability is a plain durable put and sync() resolves', async () => {
      const store = new S3Store(storeOptions(target, bucket, { prefix: 'deferred' }));
      try {
        const res = await store.put('blk/1', enc.encode('block'), { deferDurability: true });
        assert.ok(res.created);
        await store.sync();
        assert.equal(dec.decode(await store.get('blk/1')), 'block');
        await assert.rejects(() => store.get('blk/2'), (err) => err instanceof StowageError && err.code === 'STORE_NOT_FOUND');
        assert.equal(await store.tryGet('blk/2'), undefined);
        await store.delete('blk/1');
      } finally {
        await store.close();
      }
    });
  });
}
