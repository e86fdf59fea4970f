/**
 * The Swift AIO really is a Swift: tempauth v1, containers and objects, create-only PUTs,
 * paged listings, max_file_size, SLO, and the s3api face (whose limits the stores rely on).
 * Starts its own instance with a small max_file_size.
 */
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand,
  HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { findCommand } from './daemon.js';
import { inCi, uniqueName } from './services.js';
import { startSwiftAio, swiftUnavailableReason, type SwiftAio } from './swift-aio.js';

const MAX_FILE_SIZE = 1024 * 1024;
const unavailable = swiftUnavailableReason();
const skip = unavailable !== undefined && !inCi() ? `Swift AIO: ${unavailable}` : false;
if (skip !== false) process.stderr.write(`skipping the Swift AIO tests: ${unavailable}\n`);

interface Session {
  readonly token: string;
  readonly storageUrl: string;
}

function md5(data: string | Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

describe('Swift AIO', { skip }, () => {
  let aio: SwiftAio;
  let session: Session;
  const auth = (extra: Record<string, string> = {}): Record<string, string> => ({ 'X-Auth-Token': session.token, ...extra });
  const url = (path: string): string => `${session.storageUrl}/${path}`;
  const put = async (path: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<number> => {
    const res = await fetch(url(path), { method: 'PUT', headers: auth(headers), body });
    await res.arrayBuffer();
    return res.status;
  };

  before(async () => {
    const t0 = Date.now();
    aio = await startSwiftAio({ maxFileSize: MAX_FILE_SIZE });
    process.stderr.write(`swift-aio.test: Swift AIO started in ${Date.now() - t0} ms\n`);
    const res = await fetch(aio.env.authUrl, { headers: { 'X-Auth-User': aio.env.user, 'X-Auth-Key': aio.env.key } });
    const token = res.headers.get('x-auth-token');
    const storageUrl = res.headers.get('x-storage-url');
    assert.equal(res.status, 200);
    assert.ok(token !== null && storageUrl !== null);
    session = { token, storageUrl };
  });
  after(() => aio?.stop());

  test('tempauth v1 hands out a token and the hinted storage URL; a wrong key is refused', async () => {
    assert.equal(session.storageUrl, aio.env.storageUrlHint);
    assert.match(session.token, /^AUTH_tk/);
    const bad = await fetch(aio.env.authUrl, { headers: { 'X-Auth-User': aio.env.user, 'X-Auth-Key': 'wrong' } });
    assert.equal(bad.status, 401);
    const noToken = await fetch(session.storageUrl);
    assert.equal(noToken.status, 401);
  });

  test('containers and objects: PUT, GET, HEAD, DELETE', async () => {
    const c = uniqueName('objects');
    assert.equal(await put(c, ''), 201);
    const body = 'hello swift';
    const created = await fetch(url(`${c}/dir/a.txt`), { method: 'PUT', headers: auth(), body });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('etag'), md5(body));
    const got = await fetch(url(`${c}/dir/a.txt`), { headers: auth() });
    assert.equal(got.status, 200);
    assert.equal(await got.text(), body);
    const ranged = await fetch(url(`${c}/dir/a.txt`), { headers: auth({ Range: 'bytes=6-10' }) });
    assert.equal(ranged.status, 206);
    assert.equal(await ranged.text(), 'swift');
    const head = await fetch(url(`${c}/dir/a.txt`), { method: 'HEAD', headers: auth() });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(body.length));
    const del = await fetch(url(`${c}/dir/a.txt`), { method: 'DELETE', headers: auth() });
    assert.equal(del.status, 204);
    const gone = await fetch(url(`${c}/dir/a.txt`), { headers: auth() });
    await gone.arrayBuffer();
    assert.equal(gone.status, 404);
  });

  test('If-None-Match: * makes a PUT create-only (412 when the object exists); If-Match on PUT is ignored', async () => {
    const c = uniqueName('cond');
    assert.equal(await put(c, ''), 201);
    assert.equal(await put(`${c}/k`, 'first', { 'If-None-Match': '*' }), 201);
    assert.equal(await put(`${c}/k`, 'second', { 'If-None-Match': '*' }), 412);
    assert.equal(await (await fetch(url(`${c}/k`), { headers: auth() })).text(), 'first');
    // only '*' is supported on PUT
    assert.equal(await put(`${c}/k`, 'third', { 'If-None-Match': `"${md5('first')}"` }), 400);
    // If-Match is not a condition for PUT in Swift: the write happens
    assert.equal(await put(`${c}/k`, 'fourth', { 'If-Match': '"00000000000000000000000000000000"' }), 201);
    assert.equal(await (await fetch(url(`${c}/k`), { headers: auth() })).text(), 'fourth');
  });

  test('If-None-Match: * is a check before the upload, not an atomic create: concurrent PUTs can all win', async () => {
    const c = uniqueName('race');
    assert.equal(await put(c, ''), 201);
    let most = 0;
    for (let round = 0; round < 20 && most < 2; round++) {
      const statuses = await Promise.all(Array.from({ length: 8 }, (_, i) => put(`${c}/r${round}`, `writer ${i}`, { 'If-None-Match': '*' })));
      assert.ok(statuses.every((s) => s === 201 || s === 412), `statuses ${statuses.join(',')}`);
      most = Math.max(most, statuses.filter((s) => s === 201).length);
    }
    assert.ok(most >= 2, 'expected some round of concurrent create-only PUTs to have several winners');
  });

  test('listings page with limit and marker', async () => {
    const c = uniqueName('list');
    assert.equal(await put(c, ''), 201);
    const names = ['a', 'b/1', 'b/2', 'c', 'd'];
    for (const n of names) assert.equal(await put(`${c}/${n}`, n), 201);
    const page = async (query: string): Promise<string[]> => {
      const res = await fetch(url(`${c}?format=json&${query}`), { headers: auth() });
      assert.equal(res.status, 200);
      return ((await res.json()) as { name: string }[]).map((o) => o.name);
    };
    assert.deepEqual(await page('limit=2'), ['a', 'b/1']);
    assert.deepEqual(await page('limit=2&marker=b%2F1'), ['b/2', 'c']);
    assert.deepEqual(await page('limit=2&marker=c'), ['d']);
    assert.deepEqual(await page('limit=2&marker=d'), []);
    assert.deepEqual(await page('prefix=b%2F'), ['b/1', 'b/2']);
    const head = await fetch(url(c), { method: 'HEAD', headers: auth() });
    assert.equal(head.headers.get('x-container-object-count'), String(names.length));
  });

  test('max_file_size is the configured one: /info says so and a bigger PUT gets 413', async () => {
    assert.equal(aio.env.maxFileSize, MAX_FILE_SIZE);
    const info = (await (await fetch(`${aio.env.s3Endpoint}/info`)).json()) as { swift: { max_file_size: number }; slo?: unknown; s3api?: unknown };
    assert.equal(info.swift.max_file_size, MAX_FILE_SIZE);
    assert.ok(info.slo !== undefined && info.s3api !== undefined);
    const c = uniqueName('big');
    assert.equal(await put(c, ''), 201);
    assert.equal(await put(`${c}/max`, new Uint8Array(MAX_FILE_SIZE)), 201);
    assert.equal(await put(`${c}/over`, new Uint8Array(MAX_FILE_SIZE + 1)), 413);
  });

  test('an SLO manifest joins segments past max_file_size', async () => {
    const c = uniqueName('slo');
    assert.equal(await put(c, ''), 201);
    const segs = [new Uint8Array(MAX_FILE_SIZE).fill(1), new Uint8Array(MAX_FILE_SIZE).fill(2), new Uint8Array(10).fill(3)];
    for (const [i, seg] of segs.entries()) assert.equal(await put(`${c}/seg/${i}`, seg), 201);
    const manifest = segs.map((seg, i) => ({ path: `/${c}/seg/${i}`, etag: md5(seg), size_bytes: seg.length }));
    assert.equal(await put(`${c}/whole?multipart-manifest=put`, JSON.stringify(manifest), { 'If-None-Match': '*' }), 201);
    const got = await fetch(url(`${c}/whole`), { headers: auth() });
    assert.equal(got.status, 200);
    const bytes = new Uint8Array(await got.arrayBuffer());
    assert.equal(bytes.length, 2 * MAX_FILE_SIZE + 10);
    assert.equal(bytes[0], 1);
    assert.equal(bytes[MAX_FILE_SIZE], 2);
    assert.equal(bytes[2 * MAX_FILE_SIZE + 9], 3);
    const tail = await fetch(url(`${c}/whole`), { headers: auth({ Range: `bytes=${2 * MAX_FILE_SIZE - 1}-` }) });
    assert.deepEqual([...new Uint8Array(await tail.arrayBuffer())], [2, ...Array<number>(10).fill(3)]);
    const del = await fetch(url(`${c}/whole?multipart-manifest=delete`), { method: 'DELETE', headers: auth() });
    assert.equal(del.status, 200);
    const seg0 = await fetch(url(`${c}/seg/0`), { method: 'HEAD', headers: auth() });
    assert.equal(seg0.status, 404);
  });

  test('s3api: buckets, objects, listings, multipart; conditional PUT answers 501', async () => {
    const s3 = new S3Client({
      endpoint: aio.env.s3Endpoint, region: aio.env.s3Region, forcePathStyle: true,
      credentials: { accessKeyId: aio.env.s3AccessKey, secretAccessKey: aio.env.s3SecretKey },
    });
    try {
      const bucket = uniqueName('s3');
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const put1 = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'x/one', Body: 'one' }));
      assert.equal(put1.ETag, `"${md5('one')}"`);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'x/two', Body: 'two' }));
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'x/one' }));
      assert.equal(await got.Body?.transformToString(), 'one');
      const page1 = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'x/', MaxKeys: 1 }));
      assert.deepEqual(page1.Contents?.map((o) => o.Key), ['x/one']);
      assert.equal(page1.IsTruncated, true);
      const page2 = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'x/', MaxKeys: 1, ContinuationToken: page1.NextContinuationToken }));
      assert.deepEqual(page2.Contents?.map((o) => o.Key), ['x/two']);

      // Swift 2.30's s3api refuses every conditional PUT, for new and existing keys alike.
      for (const key of ['x/one', 'x/new']) {
        await assert.rejects(s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'again', IfNoneMatch: '*' })), (err: unknown) => {
          const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
          return e.name === 'NotImplemented' && e.$metadata?.httpStatusCode === 501;
        });
      }
      await assert.rejects(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'over', Body: new Uint8Array(MAX_FILE_SIZE + 1) })), { name: 'EntityTooLarge' });

      // multipart is how an S3 client stores more than max_file_size; parts stay below it
      const partSize = MAX_FILE_SIZE / 2;
      const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mpu' }));
      const parts = [new Uint8Array(partSize).fill(7), new Uint8Array(partSize).fill(8), new Uint8Array(partSize).fill(9)];
      const etags: string[] = [];
      for (const [i, body] of parts.entries()) {
        const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mpu', UploadId: upload.UploadId, PartNumber: i + 1, Body: body }));
        etags.push(r.ETag ?? '');
      }
      await s3.send(new CompleteMultipartUploadCommand({
        Bucket: bucket, Key: 'mpu', UploadId: upload.UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }));
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mpu' }));
      assert.equal(head.ContentLength, 3 * partSize);
    } finally {
      s3.destroy();
    }
  });

  test('stop() kills every daemon and removes the directory', async () => {
    await aio.stop();
    assert.equal(existsSync(aio.dir), false);
    await assert.rejects(fetch(`${aio.env.s3Endpoint}/healthcheck`, { signal: AbortSignal.timeout(2000) }));
    await aio.stop(); // twice is fine
  });
});

test('startSwiftAio fails with a clear error and cleans up when start-up takes too long', { skip }, async () => {
  assert.ok(findCommand('swift-proxy-server') !== undefined);
  await assert.rejects(startSwiftAio({ startTimeoutMs: 200 }), /timed out after \d+ ms waiting for the Swift AIO in \S+/);
});
