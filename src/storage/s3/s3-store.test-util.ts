/**
 * Test support for the S3 store tests: the shared Swift AIO's S3 face (test/infra/services.ts),
 * a plain SDK client for setting up and checking buckets behind the store's back, and bucket
 * creation and removal.
 */
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { requireSwift } from '../../../test/infra/services.js';
import type { S3StoreOptions } from './s3-options.js';

/** How the tests reach the S3 endpoint. */
export interface S3TestTarget {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** The Swift AIO's S3 face, or undefined (CI: throws) when the run has none. */
export function s3TestTarget(what: string): S3TestTarget | undefined {
  const env = requireSwift(what);
  if (env === undefined) return undefined;
  return { endpoint: env.s3Endpoint, region: env.s3Region, accessKeyId: env.s3AccessKey, secretAccessKey: env.s3SecretKey };
}

/** A plain SDK client on the target (path style, no retries hiding failures). */
export function adminClient(t: S3TestTarget): S3Client {
  return new S3Client({
    endpoint: t.endpoint,
    region: t.region,
    forcePathStyle: true,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
}

/** S3StoreOptions for a bucket on the target. */
export function storeOptions(t: S3TestTarget, bucket: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    endpoint: t.endpoint,
    region: t.region,
    bucket,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
    ...extra,
  };
}

/** Runs `count` tasks with at most `width` in flight. */
export async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
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

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Every S3 key in a bucket (or under a prefix). */
export async function listKeys(client: S3Client, bucket: string, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, ...(prefix === undefined ? {} : { Prefix: prefix }), ...(token === undefined ? {} : { ContinuationToken: token }) }),
    );
    for (const obj of page.Contents ?? []) if (obj.Key !== undefined) keys.push(obj.Key);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

/** Multipart uploads in progress in a bucket (key and upload id). */
export async function listUploads(client: S3Client, bucket: string): Promise<{ key: string; uploadId: string }[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => ({ key: u.Key ?? '', uploadId: u.UploadId ?? '' }));
}

/** Aborts leftover uploads, deletes every object, then the bucket. */
export async function removeBucket(client: S3Client, bucket: string): Promise<void> {
  for (const u of await listUploads(client, bucket)) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId })).catch(() => undefined);
  }
  const keys = await listKeys(client, bucket);
  await pool(keys.length, 16, async (i) => {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keys[i] ?? '' }));
  });
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}
