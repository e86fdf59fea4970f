/**
 * An in-memory ObjectStore for unit tests of the layers above. Bytes are copied in and out,
 * so callers can never alias (and mutate) a stored object.
 */
import { NotFoundError } from '../../core/errors.js';
import { checkKey, checkPrefix } from '../key.js';
import type {
  GetOptions,
  ListOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  PutResult,
  SignalOptions,
} from '../object-store.js';
import { checkRange, collectBody } from '../store-util.js';

interface Entry {
  readonly data: Uint8Array;
  readonly mtimeMs: number;
}

/** Options of a MemoryStore. */
export interface MemoryStoreOptions {
  /** Wall clock for mtimes (ms since the epoch); defaults to Date.now. */
  readonly clock?: () => number;
  /** Preferred read alignment reported to callers; 1 MiB by default. */
  readonly blockSize?: number;
}

/** A process-local ObjectStore kept in a Map; create-only puts are atomic within the process. */
export class MemoryStore implements ObjectStore {
  readonly description = 'memory';
  readonly blockSize: number;
  private readonly objects = new Map<string, Entry>();
  private readonly clock: () => number;

  constructor(opts: MemoryStoreOptions = {}) {
    this.clock = opts.clock ?? Date.now;
    this.blockSize = opts.blockSize ?? 1024 * 1024;
  }

  async tryGet(key: string, opts: GetOptions = {}): Promise<Uint8Array | undefined> {
    checkKey(key);
    opts.signal?.throwIfAborted();
    await Promise.resolve();
    const entry = this.objects.get(key);
    if (entry === undefined) return undefined;
    return sliceCopy(entry.data, opts);
  }

  async get(key: string, opts: GetOptions = {}): Promise<Uint8Array> {
    const data = await this.tryGet(key, opts);
    if (data === undefined) throw notFound(key);
    return data;
  }

  async *getStream(key: string, opts: GetOptions = {}): AsyncGenerator<Uint8Array> {
    checkKey(key);
    opts.signal?.throwIfAborted();
    await Promise.resolve();
    const entry = this.objects.get(key);
    if (entry === undefined) throw notFound(key);
    // The entry is immutable once stored, so holding it is a consistent snapshot.
    const { start, end } = rangeBounds(entry.data.byteLength, opts);
    for (let pos = start; pos < end; pos += this.blockSize) {
      opts.signal?.throwIfAborted();
      yield entry.data.slice(pos, Math.min(end, pos + this.blockSize));
    }
  }

  async head(key: string, opts: SignalOptions = {}): Promise<ObjectInfo | undefined> {
    checkKey(key);
    opts.signal?.throwIfAborted();
    await Promise.resolve();
    const entry = this.objects.get(key);
    return entry === undefined ? undefined : info(key, entry);
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    checkKey(key);
    opts.signal?.throwIfAborted();
    if (opts.ifAbsent === true && this.objects.has(key)) return { created: false };
    const data = await collectBody(body, opts.signal);
    opts.signal?.throwIfAborted();
    // Check and set with no await in between: atomic within the process.
    if (opts.ifAbsent === true && this.objects.has(key)) return { created: false };
    const entry: Entry = { data, mtimeMs: this.clock() };
    this.objects.set(key, entry);
    return { created: true, info: info(key, entry) };
  }

  async delete(key: string, opts: SignalOptions = {}): Promise<void> {
    checkKey(key);
    opts.signal?.throwIfAborted();
    await Promise.resolve();
    this.objects.delete(key);
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    const after = opts.startAfter;
    const keys: string[] = [];
    for (const key of this.objects.keys()) {
      if (key.startsWith(prefix) && (after === undefined || key > after)) keys.push(key);
    }
    // Keys are ASCII, so UTF-16 order is byte order.
    keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) {
      opts.signal?.throwIfAborted();
      await Promise.resolve();
      const entry = this.objects.get(key);
      if (entry !== undefined) yield info(key, entry);
    }
  }

  /** Nothing to do: memory holds no durability promise. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    // Nothing to release.
  }
}

function info(key: string, entry: Entry): ObjectInfo {
  return { key, size: entry.data.byteLength, mtimeMs: entry.mtimeMs };
}

function notFound(key: string): NotFoundError {
  return new NotFoundError('STORE_NOT_FOUND', `no object at key ${key}`);
}

function rangeBounds(size: number, opts: GetOptions): { start: number; end: number } {
  if (opts.range === undefined) return { start: 0, end: size };
  checkRange(opts.range);
  const start = Math.min(size, opts.range.offset);
  return { start, end: Math.min(size, start + opts.range.length) };
}

function sliceCopy(data: Uint8Array, opts: GetOptions): Uint8Array {
  const { start, end } = rangeBounds(data.byteLength, opts);
  return data.slice(start, end);
}
