/**
 * The ObjectStore conformance suite against a real S3 endpoint: the s3api face of the shared
 * Swift AIO. Each store gets a fresh bucket, a key prefix, and objects outside that prefix
 * which no listing, read or delete through the store may touch.
 */
import assert from 'node:assert/strict';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { after, test } from 'node:test';
import { uniqueName } from '../../../test/infra/services.js';
import { runObjectStoreConformance } from '../conformance.js';
import { S3Store } from './s3-store.js';
import { adminClient, createBucket, removeBucket, s3TestTarget, storeOptions } from './s3-store.test-util.js';

const target = s3TestTarget('S3 store conformance');

/** Keys in each test bucket outside the store's prefix `stowage/` (and sorting around it). */
const OUTSIDE = ['outside', 'stowage-x/k', 'stowage0', 'stowagf/k', 'a/stowage/k'];

if (target === undefined) {
  test('S3 store conformance', { skip: 'no Swift AIO in this run (reason on stderr)' }, () => undefined);
} else {
  const admin = adminClient(target);
  after(() => admin.destroy());

  // What this endpoint does with If-None-Match decides which ifAbsent tests apply.
  const probeBucket = uniqueName('s3-conf-probe');
  await createBucket(admin, probeBucket);
  const prober = new S3Store(storeOptions(target, probeBucket));
  let createOnly: boolean;
  try {
    createOnly = await prober.probeCreateOnly();
  } finally {
    await prober.close();
    await removeBucket(admin, probeBucket);
  }

  runObjectStoreConformance(
    `s3 (Swift s3api, create-only ${createOnly ? 'honoured' : 'unsupported'})`,
    async () => {
      const bucket = uniqueName('s3-conf');
      await createBucket(admin, bucket);
      for (const key of OUTSIDE) await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
      const store = new S3Store(
        storeOptions(target, bucket, { prefix: 'stowage', createOnly: createOnly ? 'honoured' : 'unsupported', partSize: 5 * 1024 * 1024 }),
      );
      return {
        store,
        cleanup: async () => {
          try {
            for (const key of OUTSIDE) {
              const out = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
              assert.equal(await out.Body?.transformToString(), key, `object ${key} outside the prefix was changed`);
            }
          } finally {
            await removeBucket(admin, bucket);
          }
        },
      };
    },
    { createOnly },
  );
}
