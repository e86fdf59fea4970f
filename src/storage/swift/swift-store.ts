/**
 * The native OpenStack Swift ObjectStore (DESIGN.md section 3): one container, keys as
 * object names under an optional prefix, written by hand on undici (see swift-client.ts).
 *
 * - Reads: ranged GET (206; 416 on an empty or short object is an empty result), streamed
 *   GET, HEAD. Full reads of plain objects are checked against their MD5 ETag.
 * - Writes: see swift-upload.ts. Bodies above the cluster's max_file_size, and streamed bodies
 *   above `put_buffer_size` (their size is unknown until they end), become SLOs whose manifest
 *   PUT commits them. Every put is durable when it resolves, so `deferDurability` is ignored
 *   and `sync` does nothing.
 * - Create-only: `If-None-Match: *`. Swift 2.30 checks it when a PUT starts, not when it
 *   commits, so creators racing within one PUT's duration can all get 201. This store
 *   therefore (1) runs create-only puts of one key one at a time within the process, which
 *   makes them linearizable here, and (2) tags each with a writer id and, after a 201, HEADs
 *   the key: another writer's object there means this put lost. Across processes (2) narrows
 *   the race but cannot close it: several writers to one key need a MetaStore on etcd.
 * - Deletes HEAD first: an SLO is deleted with its segments (`?multipart-manifest=delete`).
 *   Overwriting an SLO leaves its old segments in `<container>+segments` (keys are
 *   content-named, so big objects are not overwritten in practice).
 * - Listings page with `marker` (past Swift's 10,000-name limit); SLOs list at their full size.
 */
import { randomBytes } from 'node:crypto';
import { NotFoundError, StoreError } from '../../core/errors.js';
import { checkKey, checkPrefix } from '../key.js';
import type { GetOptions, ListOptions, ObjectInfo, ObjectStore, PutOptions, PutResult, SignalOptions } from '../object-store.js';
import { checkRange } from '../store-util.js';
import { objectPath, SwiftClient, type SwiftClientDeps, type SwiftReply } from './swift-client.js';
import { resolveSwiftOptions, type SwiftSettings, type SwiftStoreOptions } from './swift-options.js';
import {
  bareEtag,
  BodySplitter,
  bufferHead,
  deleteSegments,
  deleteSlo,
  md5Hex,
  putSegmented,
  type UploadResult,
  type UploadTarget,
} from './swift-upload.js';
import { listPage } from './swift-list.js';

/** Swift's default max_file_size (5 GiB + 2), used when /info is not published. */
const DEFAULT_MAX_FILE_SIZE = 5 * 1024 ** 3 + 2;
/** Default SLO segment size ceiling. */
const DEFAULT_SEGMENT_SIZE = 1024 ** 3;
/** Swift's default max_object_name_length. */
const MAX_NAME_LENGTH = 1024;
/** User metadata naming the writer of a create-only put. */
const WRITER_HEADER = 'x-object-meta-stowage-writer';

/** What the cluster allows (from GET /info, else Swift's defaults). */
interface ClusterLimits {
  readonly maxFileSize: number;
  readonly listingLimit: number;
  readonly maxSegments: number;
}

function positive(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

function section(info: Record<string, unknown> | undefined, name: string): Record<string, unknown> {
  const s = info?.[name];
  return typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {};
}

function notFound(key: string): NotFoundError {
  return new NotFoundError('STORE_NOT_FOUND', `no object at key ${key}`);
}

/** `Range` for a non-empty range. */
function rangeHeader(offset: number, length: number): string {
  return `bytes=${offset}-${offset + length - 1}`;
}

/** An object's time: X-Timestamp (µs precision) or Last-Modified, else now. */
function mtimeOf(reply: SwiftReply): number {
  const ts = Number(reply.header('x-timestamp'));
  if (Number.isFinite(ts) && ts > 0) return Math.round(ts * 1000);
  const lm = Date.parse(reply.header('last-modified') ?? '');
  return Number.isFinite(lm) ? lm : Date.now();
}

function isSlo(reply: SwiftReply): boolean {
  return (reply.header('x-static-large-object') ?? '').toLowerCase() === 'true';
}

/** An ObjectStore in one Swift container. */
export class SwiftStore implements ObjectStore {
  readonly description: string;
  readonly blockSize: number;
  /** Dulwich's cache_length (MB), for the block cache built by the caller. */
  readonly cacheLength: number;
  readonly #opts: SwiftStoreOptions;
  readonly #client: SwiftClient;
  readonly #target: UploadTarget;
  readonly #createQueue = new Map<string, Promise<void>>();
  #limits: Promise<ClusterLimits> | undefined;
  #container: Promise<void> | undefined;
  #segments: Promise<void> | undefined;

  constructor(settings: SwiftSettings, deps: SwiftClientDeps = {}) {
    this.#opts = resolveSwiftOptions([settings]);
    this.#client = new SwiftClient(this.#opts, deps);
    this.description = `swift:${this.#opts.container}/${this.#opts.prefix}`;
    this.blockSize = this.#opts.blockSize;
    this.cacheLength = this.#opts.cacheLength;
    const segmentsContainer = `${this.#opts.container}+segments`;
    this.#target = {
      client: this.#client,
      container: this.#opts.container,
      segmentsContainer,
      ensureSegments: () => {
        this.#segments ??= this.#memo(() => this.#putContainer(segmentsContainer), () => (this.#segments = undefined));
        return this.#segments;
      },
      parallel: Math.max(1, Math.min(4, this.#opts.concurrency)),
    };
  }

  async tryGet(key: string, opts: GetOptions = {}): Promise<Uint8Array | undefined> {
    const path = this.#path(key);
    const range = opts.range;
    if (range !== undefined) checkRange(range);
    opts.signal?.throwIfAborted();
    if (range?.length === 0) return (await this.head(key, opts)) === undefined ? undefined : new Uint8Array(0);
    const reply = await this.#client.call({
      op: 'get',
      what: `key ${key}`,
      method: 'GET',
      path,
      headers: range === undefined ? {} : { range: rangeHeader(range.offset, range.length) },
      ok: [200, 206, 404, 416],
      signal: opts.signal,
    });
    if (reply.status === 404) return undefined;
    if (reply.status === 416) return new Uint8Array(0);
    if (reply.status === 200 && range !== undefined) {
      return reply.body.subarray(Math.min(range.offset, reply.body.byteLength), range.offset + range.length);
    }
    if (reply.status === 200 && !isSlo(reply)) {
      const etag = bareEtag(reply.header('etag'));
      const mine = etag !== undefined && /^[0-9a-f]{32}$/.test(etag) ? md5Hex(reply.body) : undefined;
      if (mine !== undefined && mine !== etag) {
        throw new StoreError('STORE_IO', `${this.description}: get key ${key}: body does not match its ETag (corrupt in transit?)`);
      }
    }
    return reply.body;
  }

  async get(key: string, opts: GetOptions = {}): Promise<Uint8Array> {
    const data = await this.tryGet(key, opts);
    if (data === undefined) throw notFound(key);
    return data;
  }

  async *getStream(key: string, opts: GetOptions = {}): AsyncGenerator<Uint8Array> {
    const path = this.#path(key);
    const range = opts.range;
    if (range !== undefined) checkRange(range);
    opts.signal?.throwIfAborted();
    if (range?.length === 0) {
      if ((await this.head(key, opts)) === undefined) throw notFound(key);
      return;
    }
    const reply = await this.#client.call({
      op: 'get',
      what: `key ${key}`,
      method: 'GET',
      path,
      headers: range === undefined ? {} : { range: rangeHeader(range.offset, range.length) },
      ok: [200, 206, 404, 416],
      stream: true,
      signal: opts.signal,
    });
    try {
      if (reply.status === 404) throw notFound(key);
      if (reply.status === 416) return;
      // A 200 to a ranged request (a server ignoring Range): cut the range out ourselves.
      let skip = reply.status === 200 && range !== undefined ? range.offset : 0;
      let left = reply.status === 200 && range !== undefined ? range.length : Infinity;
      for await (const chunk of reply.stream) {
        if (left <= 0) break;
        let piece: Buffer = chunk;
        if (skip > 0) {
          const cut = Math.min(skip, piece.byteLength);
          skip -= cut;
          piece = piece.subarray(cut);
        }
        if (piece.byteLength > left) piece = piece.subarray(0, left);
        left -= piece.byteLength;
        if (piece.byteLength > 0) yield piece;
      }
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      if (opts.signal?.aborted === true) throw opts.signal.reason;
      throw new StoreError('STORE_IO', `${this.description}: get key ${key} failed while streaming: ${(err as Error).message}`, { cause: err });
    } finally {
      reply.discard();
    }
  }

  async head(key: string, opts: SignalOptions = {}): Promise<ObjectInfo | undefined> {
    const reply = await this.#head(key, opts.signal);
    return reply === undefined ? undefined : this.#infoOf(key, reply);
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    const name = this.#name(key);
    opts.signal?.throwIfAborted();
    if (opts.ifAbsent !== true) return this.#put(key, name, body, opts.signal, undefined);
    // One create-only put per key at a time in this process (see the module doc).
    const prev = this.#createQueue.get(name) ?? Promise.resolve();
    let done = (): void => undefined;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = prev.then(() => mine);
    this.#createQueue.set(name, tail);
    try {
      await prev;
      return await this.#put(key, name, body, opts.signal, randomBytes(12).toString('hex'));
    } finally {
      done();
      if (this.#createQueue.get(name) === tail) this.#createQueue.delete(name);
    }
  }

  async delete(key: string, opts: SignalOptions = {}): Promise<void> {
    const path = this.#path(key);
    opts.signal?.throwIfAborted();
    const head = await this.#head(key, opts.signal);
    if (head === undefined) return;
    if (isSlo(head) && (await deleteSlo(this.#target, key, path, opts.signal))) return;
    await this.#client.call({ op: 'delete', what: `key ${key}`, method: 'DELETE', path, ok: [204, 404], signal: opts.signal });
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    opts.signal?.throwIfAborted();
    const limits = await this.#clusterLimits();
    const base = this.#opts.prefix;
    let marker = opts.startAfter === undefined ? undefined : base + opts.startAfter;
    const limit = Math.min(this.#opts.pageSize, limits.listingLimit);
    for (;;) {
      opts.signal?.throwIfAborted();
      const page = await listPage(this.#client, {
        container: this.#opts.container,
        prefix: base + prefix,
        marker,
        limit,
        what: `prefix ${JSON.stringify(prefix)}`,
        signal: opts.signal,
      });
      for (const item of page) yield { key: item.name.slice(base.length), size: item.bytes, mtimeMs: item.mtimeMs };
      const last = page[page.length - 1];
      if (page.length < limit || last === undefined) return;
      marker = last.name;
    }
  }

  /** Every put is durable when it resolves. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    await this.#client.close();
  }

  /** Replaces the cached auth token, so the next request meets a 401 (tests of the refresh). */
  async replaceTokenForTest(token: string): Promise<void> {
    await this.#client.replaceTokenForTest(token);
  }

  /** The object name of a key; throws STORE_BAD_KEY. */
  #name(key: string): string {
    checkKey(key);
    const name = this.#opts.prefix + key;
    if (Buffer.byteLength(name) > MAX_NAME_LENGTH) {
      throw new StoreError('STORE_BAD_KEY', `key ${key.slice(0, 80)}… is too long for Swift with prefix ${this.#opts.prefix}`);
    }
    return name;
  }

  #path(key: string): string {
    return objectPath(this.#opts.container, this.#name(key));
  }

  #infoOf(key: string, reply: SwiftReply): ObjectInfo {
    return { key, size: Number(reply.header('content-length') ?? 0), mtimeMs: mtimeOf(reply) };
  }

  async #head(key: string, signal: AbortSignal | undefined): Promise<SwiftReply | undefined> {
    const path = this.#path(key);
    signal?.throwIfAborted();
    const reply = await this.#client.call({ op: 'head', what: `key ${key}`, method: 'HEAD', path, ok: [200, 404], signal });
    return reply.status === 404 ? undefined : reply;
  }

  /** Buffers what fits, then writes one object or an SLO; `writer` set for create-only puts. */
  async #put(
    key: string,
    name: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    signal: AbortSignal | undefined,
    writer: string | undefined,
  ): Promise<PutResult> {
    const limits = await this.#clusterLimits();
    await this.#ensureContainer();
    const data = body instanceof Uint8Array ? body : await bufferHead(body, Math.min(this.#opts.putBufferSize, limits.maxFileSize), signal);
    const single = data instanceof Uint8Array && data.byteLength <= limits.maxFileSize;
    // A create-only put of a large object: skip the upload when the key exists.
    if (!single && writer !== undefined && (await this.#head(key, signal)) !== undefined) {
      if (data instanceof BodySplitter) await data.cancel();
      return { created: false };
    }
    const headers: Record<string, string> = writer === undefined ? {} : { 'if-none-match': '*', [WRITER_HEADER]: writer };
    let result: UploadResult;
    if (single) {
      result = await this.#putObject(key, name, data, headers, signal);
    } else {
      const segmentSize = Math.min(this.#opts.segmentSize ?? DEFAULT_SEGMENT_SIZE, limits.maxFileSize);
      result = await putSegmented(this.#target, key, name, data, { segmentSize, maxSegments: limits.maxSegments, headers, signal });
    }
    const written: PutResult = { created: true, info: { key, size: result.size, mtimeMs: mtimeOf(result.reply) } };
    if (writer === undefined) return written;
    if (result.reply.status === 412 && !result.reply.ambiguous) {
      await deleteSegments(this.#target, result.segments); // our manifest never landed
      return { created: false };
    }
    // A 412 after an attempt whose outcome is unknown may answer our own object; and after a
    // 201, a racing creator's object may have replaced ours (see the module doc). Segments are
    // left alone here: a HEAD answered by a lagging replica must not cost us our own object.
    const now = await this.#head(key, signal);
    if (now === undefined) return result.reply.status === 412 ? { created: false } : written;
    return now.header(WRITER_HEADER) === writer ? { created: true, info: this.#infoOf(key, now) } : { created: false };
  }

  /** One PUT with Content-Length and ETag; recreates the container once if it vanished. */
  async #putObject(
    key: string,
    name: string,
    data: Uint8Array,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<UploadResult> {
    const etag = md5Hex(data);
    for (let again = false; ; again = true) {
      const reply = await this.#client.call({
        op: 'put',
        what: `key ${key}`,
        method: 'PUT',
        path: objectPath(this.#opts.container, name),
        headers: { 'content-type': 'application/octet-stream', ...(etag === undefined ? {} : { etag }), ...headers },
        body: data,
        ok: again ? [201, 412] : [201, 412, 404],
        signal,
      });
      if (reply.status !== 404) return { reply, size: data.byteLength, segments: [] };
      this.#container = undefined;
      await this.#ensureContainer();
    }
  }

  async #putContainer(container: string): Promise<void> {
    await this.#client.call({ op: 'create', what: `container ${container}`, method: 'PUT', path: objectPath(container), ok: [201, 202] });
  }

  #ensureContainer(): Promise<void> {
    this.#container ??= this.#memo(() => this.#putContainer(this.#opts.container), () => (this.#container = undefined));
    return this.#container;
  }

  #clusterLimits(): Promise<ClusterLimits> {
    this.#limits ??= this.#memo(
      async () => {
        const info = await this.#client.info();
        const swift = section(info, 'swift');
        return {
          maxFileSize: this.#opts.maxFileSize ?? positive(swift['max_file_size']) ?? DEFAULT_MAX_FILE_SIZE,
          listingLimit: positive(swift['container_listing_limit']) ?? 10_000,
          maxSegments: positive(section(info, 'slo')['max_manifest_segments']) ?? 1000,
        };
      },
      () => (this.#limits = undefined),
    );
    return this.#limits;
  }

  /** Runs `fn` once; a failure calls `reset` so the next caller tries again. */
  #memo<T>(fn: () => Promise<T>, reset: () => void): Promise<T> {
    const p = fn();
    p.catch(reset);
    return p;
  }
}
