/**
 * Finding out whether an S3 endpoint honours `If-None-Match: *` on PUT (create-only). AWS S3
 * and MinIO do; some S3 faces overwrite silently, and the s3api middleware of Swift 2.30
 * answers 501 NotImplemented to any conditional PUT. The probe writes one object twice with
 * the condition: honoured only if the first is created and the second refused with 412.
 */
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { StoreError } from '../../core/errors.js';
import { s3Error, s3Failure } from './s3-errors.js';

/** The probe object's name under the store prefix (outside every key the layers above use). */
export const S3_PROBE_NAME = '.stowage-probe';

/** What the second conditional PUT of the probe did. */
type ProbeStep = 'created' | 'refused' | 'unsupported';

async function conditionalPut(client: S3Client, bucket: string, key: string, body: string): Promise<ProbeStep> {
  try {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body), ContentLength: body.length, IfNoneMatch: '*' }),
    );
    return 'created';
  } catch (err) {
    const f = s3Failure(err);
    if (f.status === 412) return 'refused';
    if (f.status === 501 || f.code === 'NotImplemented') return 'unsupported';
    throw s3Error('create-only probe put', key, err);
  }
}

/**
 * Probes create-only support at `<prefix>.stowage-probe/<random>`; deletes the probe object.
 * Throws StoreError('STORE_IO') when the endpoint fails in another way.
 */
export async function probeS3CreateOnly(client: S3Client, bucket: string, prefix: string): Promise<boolean> {
  const key = `${prefix}${S3_PROBE_NAME}/${randomBytes(12).toString('hex')}`;
  let wrote = false;
  try {
    const first = await conditionalPut(client, bucket, key, 'first');
    if (first === 'unsupported') return false;
    if (first === 'refused') {
      throw new StoreError('STORE_IO', `s3 create-only probe: a fresh random key ${key} was refused with 412`);
    }
    wrote = true;
    // 'created' here means the condition was ignored and the object overwritten.
    return (await conditionalPut(client, bucket, key, 'second')) === 'refused';
  } finally {
    // Best effort: a probe object left behind is a few harmless bytes.
    if (wrote) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}
