/**
 * Ranged reads of immutable store objects (packs) through a cache of aligned blocks.
 * Concurrent readers of one block share one in-flight `get`; neighbouring missing blocks
 * are fetched with one ranged `get`. Only immutable, content-named keys may be read here:
 * a block is never revalidated. Fetches in flight hold at most a quarter of the cache's size
 * (or one run when that is smaller): many concurrent readers of scattered blocks (a pack
 * written in an order far from the one it is read in) wait for room instead of holding
 * block after block in memory beyond the cache's budget.
 */
import { ValidationError } from '../../core/errors.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { ByteLru, type CacheStats } from './byte-lru.js';

/** Smallest and largest block sizes accepted (a store's hint is clamped to these). */
export const BLOCK_SIZE_MIN = 4 * 1024;
export const BLOCK_SIZE_MAX = 8 * 1024 * 1024;
/** Reads spanning more blocks than this bypass the cache: one big object must not flush it. */
const CACHED_READ_BLOCKS_MAX = 8;
/** Blocks fetched ahead, in the background, when a key is read sequentially (walks, pack-out). */
const READAHEAD_BLOCKS = 2;
/** Keys whose last missed block is remembered for sequential detection. */
const SEQUENCE_KEYS_MAX = 256;
/** Bytes of fetches in flight, as a fraction of the cache's size. */
const INFLIGHT_FRACTION = 0.25;

/** Options of a BlockCache. */
export interface BlockCacheOptions {
  readonly maxBytes: number;
  /** Fixed block size; when absent each store's `blockSize` is used (clamped). */
  readonly blockSize?: number;
}

function clampBlockSize(n: number): number {
  const v = Math.min(BLOCK_SIZE_MAX, Math.max(BLOCK_SIZE_MIN, Math.floor(n)));
  return Number.isFinite(v) ? v : 64 * 1024;
}

/** A process-wide cache of pack blocks, shared by all requests. */
export class BlockCache {
  readonly #lru: ByteLru<string, Uint8Array>;
  readonly #fixedBlockSize: number | undefined;
  readonly #inflight = new Map<string, Promise<Uint8Array>>();
  readonly #storeIds = new WeakMap<ObjectStore, number>();
  /** Last block fetched per key (insertion-ordered, bounded): a miss right after it is sequential. */
  readonly #lastMiss = new Map<string, number>();
  readonly #inflightMax: number;
  #inflightBytes = 0;
  /** Fetches waiting for room in flight, first come first served. */
  readonly #waiting: { readonly bytes: number; readonly start: () => void }[] = [];
  #inflightWaits = 0;
  #nextStoreId = 1;
  #bypassReads = 0;
  #readAheads = 0;
  #fetches = 0;
  #fetchedBytes = 0;

  constructor(opts: BlockCacheOptions) {
    // A block may be as large as a quarter of the cache so that small caches still work.
    this.#lru = new ByteLru({ maxBytes: opts.maxBytes, sizeOf: (v) => v.byteLength + 96 });
    this.#fixedBlockSize = opts.blockSize === undefined ? undefined : clampBlockSize(opts.blockSize);
    this.#inflightMax = Math.floor(opts.maxBytes * INFLIGHT_FRACTION);
  }

  /** The block size used for `store`. */
  blockSizeOf(store: ObjectStore): number {
    return this.#fixedBlockSize ?? clampBlockSize(store.blockSize);
  }

  /** A short tag naming `store` within this process, for cache keys of other caches too. */
  storeTag(store: ObjectStore): string {
    let id = this.#storeIds.get(store);
    if (id === undefined) {
      id = this.#nextStoreId++;
      this.#storeIds.set(store, id);
    }
    return `s${id}`;
  }

  /**
   * Bytes [start, end) of the object at `key`. The result may be a view into a cached block:
   * callers must not modify it. Throws ValidationError('REPO_CORRUPT') if the object is
   * shorter than `end`, NotFoundError('STORE_NOT_FOUND') if it is absent.
   */
  async read(store: ObjectStore, key: string, start: number, end: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (!(start >= 0 && end >= start && Number.isSafeInteger(end))) {
      throw new RangeError(`invalid read range [${start}, ${end}) of ${key}`);
    }
    if (end === start) return new Uint8Array(0);
    const bs = this.blockSizeOf(store);
    const first = Math.floor(start / bs);
    const last = Math.floor((end - 1) / bs);
    if (last - first + 1 > CACHED_READ_BLOCKS_MAX) {
      this.#bypassReads++;
      const data = await store.get(key, withSignal({ range: { offset: start, length: end - start } }, signal));
      this.#count(data.byteLength);
      return checkLength(data, end - start, key, end);
    }
    const prefix = `${this.storeTag(store)}:${key}#`;
    const blocks = await this.#blocks(store, key, prefix, bs, first, last, signal);
    if (blocks.length === 1) {
      const b = blocks[0]!;
      const lo = start - first * bs;
      return checkLength(b.subarray(lo, Math.min(b.byteLength, end - first * bs)), end - start, key, end);
    }
    const out = Buffer.allocUnsafe(end - start);
    let o = 0;
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      const blockStart = (first + i) * bs;
      const lo = Math.max(start, blockStart) - blockStart;
      const hi = Math.min(end, blockStart + b.byteLength) - blockStart;
      if (hi > lo) {
        out.set(b.subarray(lo, hi), o);
        o += hi - lo;
      }
    }
    return checkLength(out.subarray(0, o), end - start, key, end);
  }

  /** Counters of the block LRU plus fetch counts. */
  stats(): CacheStats & {
    readonly fetches: number;
    readonly fetchedBytes: number;
    readonly bypassReads: number;
    readonly readAheads: number;
    /** Fetches that waited for room in flight. */
    readonly inflightWaits: number;
  } {
    return {
      ...this.#lru.stats(),
      inflightWaits: this.#inflightWaits,
      fetches: this.#fetches,
      fetchedBytes: this.#fetchedBytes,
      bypassReads: this.#bypassReads,
      readAheads: this.#readAheads,
    };
  }

  clear(): void {
    this.#lru.clear();
  }

  async #blocks(
    store: ObjectStore,
    key: string,
    prefix: string,
    bs: number,
    first: number,
    last: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array[]> {
    const parts: (Uint8Array | Promise<Uint8Array>)[] = [];
    let runStart = -1;
    const flush = (upTo: number): void => {
      if (runStart < 0) return;
      const promises = this.#fetchRun(store, key, prefix, bs, runStart, upTo, signal);
      for (const p of promises) parts.push(p);
      this.#readAhead(store, key, prefix, bs, runStart, upTo);
      runStart = -1;
    };
    for (let b = first; b <= last; b++) {
      const k = prefix + b;
      const hit = this.#lru.get(k);
      const pending = hit === undefined ? this.#inflight.get(k) : undefined;
      if (hit !== undefined || pending !== undefined) {
        flush(b - 1);
        parts.push(hit ?? pending!);
      } else if (runStart < 0) {
        runStart = b;
      }
    }
    flush(last);
    return Promise.all(parts);
  }

  /** Starts background fetches of the blocks after `to` when `key` is being read in order. */
  #readAhead(store: ObjectStore, key: string, prefix: string, bs: number, from: number, to: number): void {
    const prev = this.#lastMiss.get(prefix);
    this.#lastMiss.delete(prefix);
    this.#lastMiss.set(prefix, to);
    if (this.#lastMiss.size > SEQUENCE_KEYS_MAX) this.#lastMiss.delete(this.#lastMiss.keys().next().value!);
    if (prev === undefined || from - prev < 1 || from - prev > READAHEAD_BLOCKS + 1) return;
    let start = to + 1;
    while (start <= to + READAHEAD_BLOCKS && (this.#lru.has(prefix + start) || this.#inflight.has(prefix + start))) start++;
    let end = start;
    while (end < to + READAHEAD_BLOCKS && !this.#lru.has(prefix + (end + 1)) && !this.#inflight.has(prefix + (end + 1))) end++;
    if (start > to + READAHEAD_BLOCKS) return;
    // Reading ahead is optional: never when it would wait for room.
    if (this.#waiting.length > 0 || this.#inflightBytes + (end - start + 1) * bs > this.#inflightMax) return;
    this.#readAheads++;
    // One get per block: a block cut out of a longer run would be a copy (see #fetchRun).
    for (let b = start; b <= end; b++) {
      for (const p of this.#fetchRun(store, key, prefix, bs, b, b, undefined)) p.catch(() => undefined);
    }
  }

  /** Fetches blocks [from, to] with one ranged get; returns one promise per block. */
  #fetchRun(
    store: ObjectStore,
    key: string,
    prefix: string,
    bs: number,
    from: number,
    to: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array>[] {
    // The shared fetch is not tied to one caller's signal: other requests may wait on it.
    const length = (to - from + 1) * bs;
    const get = (): Promise<Uint8Array> =>
      store.get(key, { range: { offset: from * bs, length } }).finally(() => this.#release(length));
    const room = this.#admit(length);
    const run = (room === undefined ? get() : room.then(get)).then((data) => {
      this.#count(data.byteLength);
      return data;
    });
    const out: Promise<Uint8Array>[] = [];
    for (let b = from; b <= to; b++) {
      const k = prefix + b;
      const lo = (b - from) * bs;
      const p = run.then((data) => {
        // Copy so a cached block does not pin the whole run's buffer after neighbours are evicted.
        const block = to === from ? data : Uint8Array.prototype.slice.call(data, lo, Math.min(data.byteLength, lo + bs));
        // An empty block lies past the end of the object (read-ahead overshoot): not worth keeping.
        if (block.byteLength > 0) this.#lru.set(k, block);
        return block;
      });
      const tracked = p.finally(() => this.#inflight.delete(k));
      // Waiters that are not the first caller must not see an unhandled rejection.
      tracked.catch(() => undefined);
      this.#inflight.set(k, tracked);
      out.push(signal === undefined ? tracked : raceAbort(tracked, signal));
    }
    return out;
  }

  /** Takes room for `bytes` in flight: undefined when taken at once, else resolves once taken. */
  #admit(bytes: number): Promise<void> | undefined {
    if (this.#inflightBytes === 0 || (this.#waiting.length === 0 && this.#inflightBytes + bytes <= this.#inflightMax)) {
      this.#inflightBytes += bytes;
      return undefined;
    }
    this.#inflightWaits++;
    return new Promise<void>((start) => this.#waiting.push({ bytes, start }));
  }

  /** Gives back room; starts waiting fetches that now fit (always the first when nothing is in flight). */
  #release(bytes: number): void {
    this.#inflightBytes -= bytes;
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0]!;
      if (this.#inflightBytes > 0 && this.#inflightBytes + next.bytes > this.#inflightMax) break;
      this.#waiting.shift();
      this.#inflightBytes += next.bytes;
      next.start();
    }
  }

  #count(bytes: number): void {
    this.#fetches++;
    this.#fetchedBytes += bytes;
  }
}

function withSignal<T extends object>(opts: T, signal: AbortSignal | undefined): T & { signal?: AbortSignal } {
  return signal === undefined ? opts : { ...opts, signal };
}

function checkLength(data: Uint8Array, want: number, key: string, end: number): Uint8Array {
  if (data.byteLength < want) {
    throw new ValidationError('REPO_CORRUPT', `${key} ends before byte ${end}: the pack is shorter than its index says`);
  }
  return data;
}

/** Resolves like `p` but rejects as soon as `signal` aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
