/**
 * The S3 ObjectStore (AWS S3 and S3-compatible stores such as MinIO, Ceph RGW, Swift's
 * s3api): store key `k` is S3 key `<prefix>k` in one bucket. Every put is durable when S3
 * answers, so `deferDurability` is ignored and `sync()` does nothing. Overwrites are atomic
 * (S3 replaces whole objects). Create-only puts use `If-None-Match: *`; where the endpoint
 * does not honour it (see s3-create-only.ts) they throw STORE_CONDITION_UNSUPPORTED rather
 * than overwrite silently.
 *
 * Requests go through one keep-alive socket pool (node:http/https agents, at most
 * `concurrency` sockets) and the SDK's standard retry strategy (`maxAttempts`).
 */
import http from 'node:http';
import https from 'node:https';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { StoreError } from '../../core/errors.js';
import { checkKey, checkPrefix } from '../key.js';
import type {
  ByteRange,
  GetOptions,
  ListOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  PutResult,
  SignalOptions,
} from '../object-store.js';
import { checkRange } from '../store-util.js';
import { probeS3CreateOnly } from './s3-create-only.js';
import { isS3NotFound, s3Error, s3Failure, s3NotFound, sendOptions } from './s3-errors.js';
import { type CreateOnlyMode, resolveS3Options, type S3StoreOptions } from './s3-options.js';
import { uploadObject } from './s3-upload.js';

/** Keys per ListObjectsV2 page (S3's maximum). */
const LIST_PAGE = 1000;

/** The `Range` header for a byte range (never called with length 0). */
function rangeHeader(range: ByteRange): string {
  return `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/** The body of a GetObject answer as an async iterable of bytes (a Node stream in Node). */
function bodyStream(out: GetObjectCommandOutput): AsyncIterable<Uint8Array> & { destroy?: () => void } {
  const body: unknown = out.Body;
  if (body === undefined) return (async function* () {})();
  if (typeof body === 'object' && body !== null && Symbol.asyncIterator in body) {
    return body as AsyncIterable<Uint8Array> & { destroy?: () => void };
  }
  throw new StoreError('STORE_IO', 's3: the response body is not a stream');
}

function staticCredentials(c: {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } {
  const { accessKeyId, secretAccessKey, sessionToken } = c;
  return sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
}

/** An ObjectStore in one S3 bucket, under an optional prefix. */
export class S3Store implements ObjectStore {
  readonly description: string;
  /** S3 reads cost a round trip each: a larger block than fs's keeps request counts down. */
  readonly blockSize = 1024 * 1024;
  private readonly client: S3Client;
  private readonly agent: http.Agent;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly createOnlyMode: CreateOnlyMode;
  private createOnlyKnown: boolean | undefined;
  private probing: Promise<boolean> | undefined;

  /** Validates the options (ValidationError('CONFIG_INVALID')) and builds the client. */
  constructor(options: S3StoreOptions) {
    const o = resolveS3Options(options);
    this.bucket = o.bucket;
    this.prefix = o.prefix;
    this.partSize = o.partSize;
    this.partConcurrency = o.partConcurrency;
    this.createOnlyMode = o.createOnly;
    this.createOnlyKnown = o.createOnly === 'probe' ? undefined : o.createOnly === 'honoured';
    const where = o.endpoint === undefined ? `aws ${o.region}` : new URL(o.endpoint).host;
    this.description = `s3://${o.bucket}/${o.prefix} (${where})`;
    const secure = o.endpoint === undefined || o.endpoint.startsWith('https:');
    const agentOptions = { keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency, scheduling: 'lifo' as const };
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.client = new S3Client({
      region: o.region,
      ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
      forcePathStyle: o.forcePathStyle,
      ...(o.credentials === undefined ? {} : { credentials: staticCredentials(o.credentials) }),
      maxAttempts: o.maxAttempts,
      retryMode: 'standard',
      // Checksums only where S3 requires them: S3 faces such as Swift's s3api refuse the
      // aws-chunked trailers the SDK would otherwise add, and ranged reads have no checksum.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        ...(secure ? { httpsAgent: this.agent } : { httpAgent: this.agent }),
        connectionTimeout: o.connectTimeoutMs,
        requestTimeout: o.requestTimeoutMs,
        throwOnRequestTimeout: true,
      },
    });
  }

  /**
   * Whether create-only puts work here: fixed by the `createOnly` option, or (mode `probe`)
   * `undefined` until `probeCreateOnly()` or the first create-only put has found out.
   */
  get createOnly(): boolean | undefined {
    return this.createOnlyKnown;
  }

  /**
   * Writes a probe object twice with `If-None-Match: *` and reports whether the second was
   * refused (then deletes it). In mode `probe` the answer becomes `createOnly`; configured
   * modes keep their setting. Concurrent calls share one probe.
   */
  async probeCreateOnly(): Promise<boolean> {
    if (this.probing === undefined) {
      this.probing = probeS3CreateOnly(this.client, this.bucket, this.prefix).then(
        (ok) => {
          if (this.createOnlyMode === 'probe') this.createOnlyKnown = ok;
          return ok;
        },
        (err: unknown) => {
          this.probing = undefined; // a broken endpoint: try again next time
          throw err;
        },
      );
    }
    return this.probing;
  }

  async tryGet(key: string, opts: GetOptions = {}): Promise<Uint8Array | undefined> {
    const s3Key = this.s3Key(key);
    const range = opts.range;
    if (range !== undefined) checkRange(range);
    opts.signal?.throwIfAborted();
    if (range?.length === 0) return (await this.head(key, opts)) === undefined ? undefined : new Uint8Array(0);
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: s3Key, Range: range === undefined ? undefined : rangeHeader(range) }),
        sendOptions(opts.signal),
      );
      const bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array(0);
      // A store that ignored the Range header sent the whole object: cut it here.
      if (range !== undefined && out.ContentRange === undefined) return bytes.slice(range.offset, range.offset + range.length);
      return bytes;
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      // 416: the range starts at or past the end (or the object is empty): no bytes.
      if (range !== undefined && s3Failure(err).status === 416) return new Uint8Array(0);
      throw s3Error('get', key, err, opts.signal);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Uint8Array> {
    const data = await this.tryGet(key, opts);
    if (data === undefined) throw s3NotFound(key);
    return data;
  }

  async *getStream(key: string, opts: GetOptions = {}): AsyncGenerator<Uint8Array> {
    const s3Key = this.s3Key(key);
    const range = opts.range;
    if (range !== undefined) checkRange(range);
    opts.signal?.throwIfAborted();
    if (range?.length === 0) {
      if ((await this.head(key, opts)) === undefined) throw s3NotFound(key);
      return;
    }
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: s3Key, Range: range === undefined ? undefined : rangeHeader(range) }),
        sendOptions(opts.signal),
      );
    } catch (err) {
      if (isS3NotFound(err)) throw s3NotFound(key);
      if (range !== undefined && s3Failure(err).status === 416) return;
      throw s3Error('get', key, err, opts.signal);
    }
    const body = bodyStream(out);
    if (range !== undefined && out.ContentRange === undefined) {
      body.destroy?.();
      // The store ignored the Range header: fall back to one buffered ranged read.
      const bytes = await this.tryGet(key, opts);
      if (bytes === undefined) throw s3NotFound(key);
      if (bytes.byteLength > 0) yield bytes;
      return;
    }
    try {
      // Leaving the loop early (a consumer's break) destroys the response stream.
      for await (const chunk of body) {
        opts.signal?.throwIfAborted();
        yield chunk;
      }
    } catch (err) {
      throw s3Error('read', key, err, opts.signal);
    }
  }

  async head(key: string, opts: SignalOptions = {}): Promise<ObjectInfo | undefined> {
    const s3Key = this.s3Key(key);
    opts.signal?.throwIfAborted();
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: s3Key }), sendOptions(opts.signal));
      return { key, size: out.ContentLength ?? 0, mtimeMs: out.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw s3Error('head', key, err, opts.signal);
    }
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    const s3Key = this.s3Key(key);
    opts.signal?.throwIfAborted();
    const ifAbsent = opts.ifAbsent === true;
    if (ifAbsent && !(this.createOnlyKnown ?? (await this.probeCreateOnly()))) throw this.createOnlyUnsupported(key);
    const outcome = await uploadObject(
      { client: this.client, bucket: this.bucket, s3Key, key, partSize: this.partSize, partConcurrency: this.partConcurrency },
      body,
      ifAbsent,
      opts.signal,
    );
    switch (outcome.kind) {
      case 'created':
        return { created: true, info: { key, size: outcome.size, mtimeMs: Date.now() } };
      case 'exists':
        return { created: false };
      case 'unsupported':
        this.createOnlyKnown = false;
        throw this.createOnlyUnsupported(key);
    }
  }

  async delete(key: string, opts: SignalOptions = {}): Promise<void> {
    const s3Key = this.s3Key(key);
    opts.signal?.throwIfAborted();
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: s3Key }), sendOptions(opts.signal));
    } catch (err) {
      if (isS3NotFound(err)) return;
      throw s3Error('delete', key, err, opts.signal);
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    const full = this.prefix + prefix;
    // `startAfter: ''` means every key; S3 wants no StartAfter then.
    const startAfter = opts.startAfter === undefined || opts.startAfter === '' ? undefined : this.prefix + opts.startAfter;
    let token: string | undefined;
    do {
      opts.signal?.throwIfAborted();
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: full === '' ? undefined : full,
            MaxKeys: LIST_PAGE,
            ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }),
          }),
          sendOptions(opts.signal),
        );
      } catch (err) {
        throw s3Error('list', `prefix ${JSON.stringify(prefix)}`, err, opts.signal);
      }
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined || !obj.Key.startsWith(full)) continue;
        yield { key: obj.Key.slice(this.prefix.length), size: obj.Size ?? 0, mtimeMs: obj.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      if (page.IsTruncated === true && token === undefined) {
        throw new StoreError('STORE_IO', `s3 list of prefix ${JSON.stringify(prefix)}: truncated page without a continuation token`);
      }
    } while (token !== undefined);
  }

  /** S3 puts are durable when answered: nothing is deferred. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    this.client.destroy();
    this.agent.destroy();
  }

  /** The S3 key of a store key; throws STORE_BAD_KEY for bad keys. */
  private s3Key(key: string): string {
    return this.prefix + checkKey(key);
  }

  private createOnlyUnsupported(key: string): StoreError {
    return new StoreError(
      'STORE_CONDITION_UNSUPPORTED',
      `create-only put of ${key} refused: this S3 store (${this.description}) does not honour If-None-Match: *; ` +
        'keep refs in etcd with --meta etcd://HOST:PORT/PREFIX',
    );
  }
}
