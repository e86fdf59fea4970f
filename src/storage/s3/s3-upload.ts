/**
 * Writing one object: bodies up to the part size go in a single PutObject with a
 * Content-Length; bigger or longer streams go through lib-storage's multipart Upload. A
 * failed or aborted upload aborts its multipart upload before the put rejects, so nothing is
 * left behind (no object, no parts). Create-only puts send `If-None-Match: *` on the
 * PutObject or the CompleteMultipartUpload.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isS3NotFound, s3Error, s3Failure, sendOptions } from './s3-errors.js';

/** Chunks a Uint8Array body is fed to the multipart uploader in (the abort check interval). */
const FEED_CHUNK = 1024 * 1024;
/** Tries of a single create-only PutObject answered 409 ConditionalRequestConflict. */
const CONFLICT_ATTEMPTS = 6;

/** Where and how to write. */
export interface UploadTarget {
  readonly client: S3Client;
  readonly bucket: string;
  /** The full S3 key (store prefix included). */
  readonly s3Key: string;
  /** The store key, for messages. */
  readonly key: string;
  readonly partSize: number;
  readonly partConcurrency: number;
}

/** How a write ended: `exists` for a refused create-only put, `unsupported` when S3 answered 501. */
export type UploadOutcome =
  | { readonly kind: 'created'; readonly size: number }
  | { readonly kind: 'exists' }
  | { readonly kind: 'unsupported' };

/** The next item of an iterator, or the signal's reason as soon as it fires. */
async function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T>> {
  if (signal === undefined) return it.next();
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([it.next(), aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

/** Joins chunks into one buffer (no copy for a single chunk). */
function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  return Buffer.concat(chunks, total);
}

/** Writes a whole object; see UploadOutcome. Errors of a streamed body pass through as they are. */
export async function uploadObject(
  target: UploadTarget,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  ifAbsent: boolean,
  signal: AbortSignal | undefined,
): Promise<UploadOutcome> {
  if (body instanceof Uint8Array) {
    if (body.byteLength <= target.partSize) return putSingle(target, body, ifAbsent, signal);
    const bytes = body;
    const slices = (async function* (): AsyncGenerator<Uint8Array> {
      for (let pos = 0; pos < bytes.byteLength; pos += FEED_CHUNK) yield bytes.subarray(pos, pos + FEED_CHUNK);
    })();
    return putMultipart(target, slices, [], 0, ifAbsent, signal);
  }
  // Read ahead up to one part: if the stream ends by then, one PutObject does.
  const it = body[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let buffered = 0;
  try {
    while (buffered <= target.partSize) {
      const step = await nextOrAbort(it, signal);
      if (step.done === true) return await putSingle(target, concat(head, buffered), ifAbsent, signal);
      if (step.value.byteLength === 0) continue;
      // Copied: a source may reuse its buffer once the next chunk is asked for.
      head.push(Buffer.from(step.value));
      buffered += step.value.byteLength;
    }
  } catch (err) {
    void Promise.resolve(it.return?.()).catch(() => undefined);
    throw err;
  }
  return putMultipart(target, it, head, buffered, ifAbsent, signal);
}

/** One PutObject with a known length; create-only conflicts (409) are retried with backoff. */
async function putSingle(
  target: UploadTarget,
  bytes: Uint8Array,
  ifAbsent: boolean,
  signal: AbortSignal | undefined,
): Promise<UploadOutcome> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await target.client.send(
        new PutObjectCommand({
          Bucket: target.bucket,
          Key: target.s3Key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          IfNoneMatch: ifAbsent ? '*' : undefined,
        }),
        sendOptions(signal),
      );
      return { kind: 'created', size: bytes.byteLength };
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      const f = s3Failure(err);
      if (ifAbsent && f.status === 412) {
        // A retried request may have been refused because its own first attempt succeeded
        // (the answer was lost): then the stored bytes are ours.
        if ((f.attempts ?? 1) > 1 && (await storedBytesEqual(target, bytes, signal))) {
          return { kind: 'created', size: bytes.byteLength };
        }
        return { kind: 'exists' };
      }
      if (ifAbsent && f.status === 501) return { kind: 'unsupported' };
      if (ifAbsent && f.status === 409 && attempt < CONFLICT_ATTEMPTS) {
        // ConditionalRequestConflict: another conditional write to the key is in flight.
        await sleep(20 * 2 ** attempt * (0.5 + Math.random()));
        signal?.throwIfAborted();
        continue;
      }
      throw s3Error('put', target.key, err, signal);
    }
  }
}

async function storedBytesEqual(target: UploadTarget, bytes: Uint8Array, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    const out = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: target.s3Key }), sendOptions(signal));
    const stored = await out.Body?.transformToByteArray();
    return stored !== undefined && Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(bytes);
  } catch {
    return false;
  }
}

/**
 * A multipart upload of `head` then the rest of `rest`. The body reaches lib-storage through
 * a generator that stops at the caller's abort; lib-storage then finishes the parts in
 * flight, aborts the multipart upload and rejects, and only then does this reject.
 */
async function putMultipart(
  target: UploadTarget,
  rest: AsyncIterator<Uint8Array>,
  head: readonly Uint8Array[],
  headBytes: number,
  ifAbsent: boolean,
  signal: AbortSignal | undefined,
): Promise<UploadOutcome> {
  // A create-only upload of a key that exists would be refused only at the end: ask first.
  if (ifAbsent) {
    let exists: boolean;
    try {
      exists = await objectExists(target, signal);
    } catch (err) {
      void Promise.resolve(rest.return?.()).catch(() => undefined);
      throw err;
    }
    if (exists) {
      void Promise.resolve(rest.return?.()).catch(() => undefined);
      return { kind: 'exists' };
    }
  }
  let size = headBytes;
  let sourceError: { readonly err: unknown } | undefined;
  const feed = async function* (): AsyncGenerator<Uint8Array> {
    let finished = false;
    try {
      yield* head;
      for (;;) {
        let step: IteratorResult<Uint8Array>;
        try {
          step = await nextOrAbort(rest, signal);
        } catch (err) {
          sourceError = { err };
          throw err;
        }
        if (step.done === true) break;
        size += step.value.byteLength;
        yield Buffer.from(step.value); // a copy, as above: lib-storage keeps chunks across pulls
      }
      finished = true;
    } finally {
      if (!finished) void Promise.resolve(rest.return?.()).catch(() => undefined);
    }
  };
  const upload = new Upload({
    client: target.client,
    params: {
      Bucket: target.bucket,
      Key: target.s3Key,
      Body: Readable.from(feed(), { highWaterMark: 1 }),
      IfNoneMatch: ifAbsent ? '*' : undefined,
    },
    partSize: target.partSize,
    queueSize: target.partConcurrency,
    leavePartsOnError: false,
  });
  try {
    await upload.done();
    return { kind: 'created', size };
  } catch (err) {
    // lib-storage aborts the multipart upload on failure; abort again in case that failed.
    if (upload.uploadId !== undefined) await abortMultipart(target, upload.uploadId);
    if (signal?.aborted === true) throw signal.reason;
    if (sourceError !== undefined) throw sourceError.err;
    const f = s3Failure(err);
    if (ifAbsent && f.status === 412) return { kind: 'exists' };
    if (ifAbsent && f.status === 501) return { kind: 'unsupported' };
    throw s3Error('multipart put', target.key, err);
  }
}

async function objectExists(target: UploadTarget, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.s3Key }), sendOptions(signal));
    return true;
  } catch (err) {
    if (isS3NotFound(err)) return false;
    throw s3Error('head', target.key, err, signal);
  }
}

/** Aborts a multipart upload; best effort (an already aborted upload answers NoSuchUpload). */
async function abortMultipart(target: UploadTarget, uploadId: string): Promise<void> {
  try {
    await target.client.send(
      new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: target.s3Key, UploadId: uploadId }),
    );
  } catch {
    // Gone already, or the store is unreachable: a bucket lifecycle rule is the last resort.
  }
}
