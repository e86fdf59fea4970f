/**
 * Writing objects to Swift: one PUT for bodies that fit (buffered, with Content-Length and an
 * ETag so Swift checks the MD5, and replayable on a retry), or a Static Large Object for the
 * rest: segments (each MD5-checked against the ETag Swift answers) in `<container>+segments`
 * under a fresh upload id, then the manifest PUT (`?multipart-manifest=put`), which is the
 * commit point. Segments of a failed or lost upload are deleted, best effort.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { LimitError, StoreError } from '../../core/errors.js';
import { objectPath, type StreamBody, type SwiftClient, type SwiftReply } from './swift-client.js';

/** What an upload needs from its store. */
export interface UploadTarget {
  readonly client: SwiftClient;
  readonly container: string;
  readonly segmentsContainer: string;
  /** Creates the segments container if needed (idempotent). */
  ensureSegments(signal?: AbortSignal): Promise<void>;
  /** Segment uploads in flight at once for in-memory bodies. */
  readonly parallel: number;
}

/** An upload's outcome: the manifest's or object's reply, and the bytes written. */
export interface UploadResult {
  readonly reply: SwiftReply;
  readonly size: number;
  /** The segments written (SLO puts): the caller deletes them when a 412 means they are unused. */
  readonly segments: readonly string[];
}

/** The MD5 of a buffer as Swift's ETag spells it, or undefined where MD5 is unavailable (FIPS). */
export function md5Hex(data: Uint8Array): string | undefined {
  try {
    return createHash('md5').update(data).digest('hex');
  } catch {
    return undefined;
  }
}

function newMd5(): Hash | undefined {
  try {
    return createHash('md5');
  } catch {
    return undefined;
  }
}

/** Strips the quotes Swift may put around an ETag. */
export function bareEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^"(.*)"$/, '$1').toLowerCase();
}

/** Splits a put body into segments: first the bytes buffered in memory, then the rest of the source. */
export class BodySplitter {
  readonly #pending: Uint8Array[];
  readonly #iter: AsyncIterator<Uint8Array>;
  readonly #signal: AbortSignal | undefined;
  #done = false;
  #error: unknown;

  constructor(head: readonly Uint8Array[], iter: AsyncIterator<Uint8Array>, signal: AbortSignal | undefined) {
    this.#pending = head.filter((c) => c.byteLength > 0);
    this.#iter = iter;
    this.#signal = signal;
  }

  /** The source's own error, if it threw (passed on to the caller as it is). */
  get sourceError(): unknown {
    return this.#error;
  }

  /** Pulls one chunk from the source; undefined at its end. */
  async pull(): Promise<Uint8Array | undefined> {
    if (this.#done) return undefined;
    this.#signal?.throwIfAborted();
    let step: IteratorResult<Uint8Array>;
    try {
      step = await this.#iter.next();
    } catch (err) {
      this.#error = err;
      this.#done = true;
      throw err;
    }
    if (step.done === true) {
      this.#done = true;
      return undefined;
    }
    return step.value;
  }

  /** Whether any bytes remain (pulling into memory until a non-empty chunk or the end). */
  async hasMore(): Promise<boolean> {
    while (this.#pending.length === 0) {
      const chunk = await this.pull();
      if (chunk === undefined) return false;
      if (chunk.byteLength > 0) this.#pending.push(chunk);
    }
    return true;
  }

  /** Takes up to `max` bytes of what is already in memory. */
  takePending(max: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let room = max;
    while (room > 0 && this.#pending.length > 0) {
      const chunk = this.#pending[0] as Uint8Array;
      if (chunk.byteLength <= room) {
        out.push(chunk);
        this.#pending.shift();
        room -= chunk.byteLength;
      } else {
        out.push(chunk.subarray(0, room));
        this.#pending[0] = chunk.subarray(room);
        room = 0;
      }
    }
    return out;
  }

  /** Puts back bytes pulled past a segment's end. */
  unshift(chunk: Uint8Array): void {
    if (chunk.byteLength > 0) this.#pending.unshift(chunk);
  }

  /** Ends the source early (after a failure), letting it release what it holds. */
  async cancel(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#iter.return?.().catch(() => undefined);
  }
}

/** One segment's body: its in-memory head, then the source up to the segment size. */
class SegmentBody implements StreamBody {
  readonly #split: BodySplitter;
  readonly #head: Uint8Array[];
  readonly #size: number;
  #pulled = false;
  bytes = 0;
  md5: Hash | undefined;

  constructor(split: BodySplitter, size: number) {
    this.#split = split;
    this.#size = size;
    this.#head = split.takePending(size);
  }

  replayable(): boolean {
    return !this.#pulled;
  }

  async *open(): AsyncGenerator<Uint8Array> {
    this.bytes = 0;
    this.md5 = newMd5();
    for (const chunk of this.#head) yield this.#count(chunk);
    while (this.bytes < this.#size) {
      this.#pulled = true;
      const chunk = await this.#split.pull();
      if (chunk === undefined) return;
      const room = this.#size - this.bytes;
      if (chunk.byteLength > room) this.#split.unshift(chunk.subarray(room));
      if (chunk.byteLength > 0) yield this.#count(chunk.byteLength > room ? chunk.subarray(0, room) : chunk);
    }
  }

  #count(chunk: Uint8Array): Uint8Array {
    this.bytes += chunk.byteLength;
    this.md5?.update(chunk);
    return chunk;
  }
}

interface Segment {
  readonly path: string;
  readonly etag: string;
  readonly size: number;
}

function checksumError(what: string, sent: string, got: string | undefined): StoreError {
  return new StoreError('STORE_IO', `swift: ${what}: checksum mismatch (sent MD5 ${sent}, Swift stored ${got ?? 'no ETag'})`);
}

/** Deletes uploaded segments, best effort (a failed upload must not throw twice). */
export async function deleteSegments(target: UploadTarget, paths: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const path = paths[next] as string;
      next += 1;
      await target.client
        .call({ op: 'delete segment', what: path, method: 'DELETE', path, ok: [204, 404] })
        .catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(target.parallel, paths.length) }, worker));
}

/** A unique segment name prefix for one upload of `name`. */
function uploadPrefix(name: string): string {
  const id = `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
  // Keep segment names under Swift's 1024-byte name limit.
  const base = name.length <= 900 ? name : createHash('sha256').update(name).digest('hex');
  return `${base}/${id}`;
}

async function putSegment(
  target: UploadTarget,
  key: string,
  path: string,
  body: Uint8Array | SegmentBody,
  signal: AbortSignal | undefined,
): Promise<Segment> {
  const sent = body instanceof Uint8Array ? md5Hex(body) : undefined;
  const reply = await target.client.call({
    op: 'put segment of',
    what: `key ${key}`,
    method: 'PUT',
    path,
    headers: { 'content-type': 'application/octet-stream', ...(sent === undefined ? {} : { etag: sent }) },
    body,
    ok: [201],
    signal,
  });
  const etag = bareEtag(reply.header('etag'));
  const mine = body instanceof Uint8Array ? sent : body.md5?.digest('hex');
  if (mine !== undefined && etag !== mine) throw checksumError(`segment of key ${key}`, mine, etag);
  const size = body instanceof Uint8Array ? body.byteLength : body.bytes;
  return { path, etag: etag ?? mine ?? '', size };
}

/**
 * Uploads `body` as an SLO at `name`: segments of `segmentSize`, then the manifest with the
 * given headers (If-None-Match for create-only). On failure the segments are deleted. The
 * manifest's reply (201 or 412) is returned; after a 412 the caller decides about the
 * segments, since a 412 after an ambiguous attempt may answer our own manifest.
 */
export async function putSegmented(
  target: UploadTarget,
  key: string,
  name: string,
  body: Uint8Array | BodySplitter,
  opts: {
    readonly segmentSize: number;
    readonly maxSegments: number;
    readonly headers: Readonly<Record<string, string>>;
    readonly signal: AbortSignal | undefined;
  },
): Promise<UploadResult> {
  await target.ensureSegments(opts.signal);
  const prefix = uploadPrefix(name);
  const segPath = (i: number): string => objectPath(target.segmentsContainer, `${prefix}/${String(i).padStart(8, '0')}`);
  const uploaded: string[] = [];
  const segments: Segment[] = [];
  const tooMany = (): LimitError =>
    new LimitError('LIMIT_EXCEEDED', `swift: key ${key} needs more than ${opts.maxSegments} segments of ${opts.segmentSize} bytes (the cluster's max_manifest_segments)`);
  let ok = false;
  try {
    if (body instanceof Uint8Array) {
      const count = Math.ceil(body.byteLength / opts.segmentSize);
      if (count > opts.maxSegments) throw tooMany();
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next;
          next += 1;
          uploaded.push(segPath(i));
          const slice = body.subarray(i * opts.segmentSize, (i + 1) * opts.segmentSize);
          segments[i] = await putSegment(target, key, segPath(i), slice, opts.signal);
        }
      };
      await Promise.all(Array.from({ length: Math.min(target.parallel, count) }, worker));
    } else {
      for (let i = 0; await body.hasMore(); i += 1) {
        if (i >= opts.maxSegments) throw tooMany();
        uploaded.push(segPath(i));
        segments.push(await putSegment(target, key, segPath(i), new SegmentBody(body, opts.segmentSize), opts.signal));
      }
    }
    const manifest = segments.map((s) => ({ path: decodeURIComponent(s.path), etag: s.etag, size_bytes: s.size }));
    const reply = await target.client.call({
      op: 'put manifest of',
      what: `key ${key}`,
      method: 'PUT',
      path: objectPath(target.container, name),
      query: { 'multipart-manifest': 'put' },
      headers: { 'content-type': 'application/octet-stream', ...opts.headers },
      body: Buffer.from(JSON.stringify(manifest)),
      ok: [201, 412],
      signal: opts.signal,
    });
    ok = true;
    return { reply, size: segments.reduce((n, s) => n + s.size, 0), segments: uploaded };
  } catch (err) {
    if (!(body instanceof Uint8Array)) {
      await body.cancel();
      if (body.sourceError !== undefined) throw body.sourceError;
    }
    throw err;
  } finally {
    if (!ok) await deleteSegments(target, uploaded);
  }
}

/** Deletes an SLO with its segments (`?multipart-manifest=delete`); false when it is not one. */
export async function deleteSlo(target: UploadTarget, key: string, path: string, signal: AbortSignal | undefined): Promise<boolean> {
  const reply = await target.client.call({
    op: 'delete',
    what: `key ${key} (large object)`,
    method: 'DELETE',
    path,
    query: { 'multipart-manifest': 'delete' },
    headers: { accept: 'application/json' },
    ok: [200, 404],
    signal,
  });
  if (reply.status === 404) return true;
  let status = '';
  let detail = '';
  try {
    const json = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
    status = String(json['Response Status'] ?? '');
    detail = `${String(json['Response Body'] ?? '')} ${JSON.stringify(json['Errors'] ?? [])}`.trim();
  } catch {
    status = '';
  }
  if (status.startsWith('2') || status.startsWith('404')) return true;
  if (detail.includes('Not an SLO manifest')) return false; // replaced by a plain object meanwhile
  throw new StoreError('STORE_IO', `swift:${target.container}: delete key ${key} (large object) failed: ${status || 'unreadable reply'} ${detail}`.trim());
}

/**
 * Reads a streamed body until it ends or passes `threshold` bytes. Copies what it keeps (the
 * caller may reuse its buffers). Returns the whole body, or a splitter holding the head.
 */
export async function bufferHead(
  body: AsyncIterable<Uint8Array>,
  threshold: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array | BodySplitter> {
  const iter = body[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let total = 0;
  try {
    while (total <= threshold) {
      signal?.throwIfAborted();
      const step = await iter.next();
      if (step.done === true) return head.length === 1 ? (head[0] as Buffer) : Buffer.concat(head, total);
      if (step.value.byteLength === 0) continue;
      head.push(Buffer.from(step.value));
      total += step.value.byteLength;
    }
  } catch (err) {
    await iter.return?.().catch(() => undefined);
    throw err;
  }
  return new BodySplitter(head, iter, signal);
}
