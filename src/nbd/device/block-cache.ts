/**
 * The write-back block cache of one volume, shared by all its connections. Entries are whole
 * blocks (`null` = zeros, stored as no object). Clean entries are evicted LRU past the cache
 * size; dirty entries are never evicted and are bounded by `maxDirtyBytes`: a write that would
 * dirty one more block waits while the bound is reached (back-pressure). Dirty blocks upload
 * after `writeBackDelayMs` without writes (so small sequential writes coalesce into one put),
 * at once when someone waits for them (FLUSH, FUA) or when half the dirty bound is used.
 * Uploads run in batches of bounded concurrency, each batch behind one fence check (lease.ts);
 * at most one upload per block is in flight, so puts and deletes of a block never reorder.
 */
import { StoreError, StowageError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { decodeBlock, encodeBlock } from './block-codec.js';
import { blockKey } from './volume-layout.js';

interface Waiter {
  readonly version: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface Entry {
  data: Buffer | null;
  /** Bumped by every change. */
  version: number;
  /** The version known to be in the store. */
  durable: number;
  uploading: boolean;
  lastWriteMs: number;
  retryAtMs: number;
  waiters: Waiter[];
}

/** What a VolumeCache needs. */
export interface VolumeCacheOptions {
  readonly store: ObjectStore;
  readonly name: string;
  readonly blockSize: number;
  readonly size: number;
  readonly cacheBytes: number;
  readonly maxDirtyBytes: number;
  readonly uploadConcurrency: number;
  readonly writeBackDelayMs: number;
  /** The writer's lease epoch, written into each block header. */
  readonly epoch: () => number;
  /** Throws when uploads must stop (the lease is gone); called before every batch. */
  readonly fence: () => Promise<void>;
  readonly logger?: Logger | undefined;
}

const RETRY_MS = 1000;

/** Serializes async work per key. */
class KeyedLock {
  private readonly tails = new Map<number, Promise<void>>();
  async run<T>(key: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
  held(key: number): boolean {
    return this.tails.has(key);
  }
}

/** The shared block cache and uploader of one volume. */
export class VolumeCache {
  private readonly entries = new Map<number, Entry>();
  private readonly loading = new Map<number, Promise<Entry>>();
  private readonly locks = new KeyedLock();
  /** Dirty blocks in the order they became dirty. */
  private readonly dirty = new Set<number>();
  private readonly urgent = new Set<number>();
  private cachedBytes = 0;
  /** Writers past `room` that have not yet dirtied their block. */
  private reserved = 0;
  private roomWaiters: (() => void)[] = [];
  private batchRunning = false;
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;
  private closing = false;
  size: number;

  constructor(private readonly opts: VolumeCacheOptions) {
    this.size = opts.size;
  }

  /** Bytes of dirty blocks (each counted as a whole block). */
  get dirtyBytes(): number {
    return this.dirty.size * this.opts.blockSize;
  }

  /** Length of block `index` (the last one may be short). */
  blockLength(index: number): number {
    return Math.min(this.opts.blockSize, this.size - index * this.opts.blockSize);
  }

  /** The current contents of a block (null: zeros); copy synchronously, it may change later. */
  async read(index: number, signal?: AbortSignal): Promise<Buffer | null> {
    return (await this.entry(index, signal)).data;
  }

  /** Whether a block is known to be zeros without I/O: true/false if cached, undefined if not. */
  cachedZero(index: number): boolean | undefined {
    const e = this.entries.get(index);
    return e === undefined ? undefined : e.data === null;
  }

  /** Whether a block is dirty (not yet durable). */
  isDirty(index: number): boolean {
    return this.dirty.has(index);
  }

  /** Replaces a whole block (`data` is kept, not copied; null = zeros). */
  async put(index: number, data: Buffer | null): Promise<void> {
    await this.change(index, false, (e) => {
      e.data = data;
    });
  }

  /** Changes part of a block in place: read-modify-write under the block's lock. */
  async patch(index: number, fn: (block: Buffer) => void, zeroing = false): Promise<void> {
    await this.change(index, true, (e) => {
      if (e.data === null) {
        if (zeroing) return;
        e.data = Buffer.alloc(this.blockLength(index));
      }
      fn(e.data);
    });
  }

  /** Resolves when the current versions of these blocks are durable. */
  waitDurable(indexes: Iterable<number>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const i of indexes) {
      const e = this.entries.get(i);
      if (e === undefined || e.durable >= e.version) continue;
      waits.push(new Promise<void>((resolve, reject) => e.waiters.push({ version: e.version, resolve, reject })));
      this.urgent.add(i);
    }
    if (waits.length === 0) return this.failure === undefined ? Promise.resolve() : Promise.reject(this.failure);
    this.schedule(0);
    return Promise.all(waits).then(() => undefined);
  }

  /** Resolves when every block dirty now is durable. */
  flush(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return this.waitDurable([...this.dirty]);
  }

  /** Prefetches blocks into the cache (advisory; errors ignored). */
  async prefetch(indexes: readonly number[]): Promise<void> {
    await Promise.all(indexes.map((i) => this.entry(i).catch(() => undefined)));
  }

  /** Flushes and stops the uploader. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.flush();
    } finally {
      clearTimeout(this.timer);
    }
  }

  /** Stops everything: pending and later writes fail with `err` (the lease was lost). */
  fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const e of this.entries.values()) {
      for (const w of e.waiters.splice(0)) w.reject(err);
    }
    for (const w of this.roomWaiters.splice(0)) w();
    clearTimeout(this.timer);
  }

  private async entry(index: number, signal?: AbortSignal): Promise<Entry> {
    const e = this.entries.get(index);
    if (e !== undefined) {
      this.entries.delete(index);
      this.entries.set(index, e);
      return e;
    }
    let p = this.loading.get(index);
    if (p === undefined) {
      p = this.load(index, signal).finally(() => this.loading.delete(index));
      this.loading.set(index, p);
    }
    return p;
  }

  private async load(index: number, signal?: AbortSignal): Promise<Entry> {
    const key = blockKey(this.opts.name, index);
    const bytes = await this.opts.store.tryGet(key, signal === undefined ? {} : { signal });
    let data: Buffer | null = null;
    if (bytes !== undefined) {
      const { payload } = decodeBlock(key, index, bytes);
      const len = this.blockLength(index);
      if (payload.byteLength === len) data = payload;
      else {
        data = Buffer.alloc(len);
        payload.copy(data, 0, 0, Math.min(len, payload.byteLength));
      }
    }
    // A write may have installed the block while we were reading: it wins.
    const existing = this.entries.get(index);
    if (existing !== undefined) return existing;
    const e: Entry = { data, version: 0, durable: 0, uploading: false, lastWriteMs: 0, retryAtMs: 0, waiters: [] };
    this.entries.set(index, e);
    this.cachedBytes += data === null ? 64 : data.byteLength;
    this.evict();
    return e;
  }

  private evict(): void {
    if (this.cachedBytes <= this.opts.cacheBytes) return;
    for (const [i, e] of this.entries) {
      if (this.cachedBytes <= this.opts.cacheBytes) break;
      if (e.version !== e.durable || e.uploading || this.locks.held(i)) continue;
      this.entries.delete(i);
      this.cachedBytes -= e.data === null ? 64 : e.data.byteLength;
    }
  }

  private async room(index: number): Promise<void> {
    const limit = Math.max(1, Math.floor(this.opts.maxDirtyBytes / this.opts.blockSize));
    while (this.failure === undefined && !this.dirty.has(index) && this.dirty.size + this.reserved + 1 > limit && this.dirty.size + this.reserved > 0) {
      this.schedule(0);
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    // Reserve in the same tick as the check, or woken writers would all pass it.
    this.reserved++;
  }

  private async change(index: number, needsOld: boolean, fn: (e: Entry) => void): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const reserve = !this.dirty.has(index);
    if (reserve) await this.room(index);
    try {
      await this.locked(index, needsOld, fn);
    } finally {
      if (reserve) {
        this.reserved--;
        for (const w of this.roomWaiters.splice(0)) w();
      }
    }
    this.schedule(this.dirtyBytes * 2 >= this.opts.maxDirtyBytes ? 0 : this.opts.writeBackDelayMs);
    this.evict();
  }

  private async locked(index: number, needsOld: boolean, fn: (e: Entry) => void): Promise<void> {
    await this.locks.run(index, async () => {
      if (this.failure !== undefined) throw this.failure;
      let e = this.entries.get(index);
      if (e === undefined && needsOld) e = await this.entry(index);
      if (e === undefined) {
        e = { data: null, version: 0, durable: 0, uploading: false, lastWriteMs: 0, retryAtMs: 0, waiters: [] };
        this.entries.set(index, e);
        this.cachedBytes += 64;
      }
      const before = e.data === null ? 64 : e.data.byteLength;
      fn(e);
      this.cachedBytes += (e.data === null ? 64 : e.data.byteLength) - before;
      e.version++;
      e.lastWriteMs = performance.now();
      this.dirty.add(index);
    });
  }

  private schedule(delayMs: number): void {
    if (this.batchRunning || this.failure !== undefined) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pump(), delayMs);
  }

  private pick(): { batch: number[]; waitMs: number | undefined } {
    const now = performance.now();
    const pressure = this.closing || this.dirtyBytes * 2 >= this.opts.maxDirtyBytes;
    const max = this.opts.uploadConcurrency * 2;
    const batch: number[] = [];
    let waitMs: number | undefined;
    for (const i of this.dirty) {
      const e = this.entries.get(i) as Entry;
      if (e.uploading) continue;
      const due = Math.max(e.retryAtMs, this.urgent.has(i) || pressure ? 0 : e.lastWriteMs + this.opts.writeBackDelayMs);
      if (due <= now) {
        batch.push(i);
        if (batch.length >= max) break;
      } else waitMs = Math.min(waitMs ?? Infinity, due - now);
    }
    return { batch, waitMs };
  }

  private async pump(): Promise<void> {
    if (this.batchRunning || this.failure !== undefined) return;
    const { batch, waitMs } = this.pick();
    if (batch.length === 0) {
      if (waitMs !== undefined) this.schedule(Math.ceil(waitMs));
      return;
    }
    this.batchRunning = true;
    try {
      try {
        await this.opts.fence();
      } catch (err) {
        this.fail(err);
        return;
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < batch.length) await this.upload(batch[next++] as number);
      };
      await Promise.all(Array.from({ length: Math.min(this.opts.uploadConcurrency, batch.length) }, worker));
    } finally {
      this.batchRunning = false;
    }
    if (this.dirty.size > 0) this.schedule(0);
  }

  private async upload(index: number): Promise<void> {
    const e = this.entries.get(index) as Entry;
    const version = e.version;
    const key = blockKey(this.opts.name, index);
    // Encoding copies the payload, so writes may change the block while the put runs.
    const body = e.data === null ? undefined : encodeBlock(index, this.opts.epoch(), e.data);
    e.uploading = true;
    try {
      if (body === undefined) await this.opts.store.delete(key);
      else await this.opts.store.put(key, body);
      e.durable = Math.max(e.durable, version);
      const done = e.waiters.filter((w) => w.version <= e.durable);
      e.waiters = e.waiters.filter((w) => w.version > e.durable);
      for (const w of done) w.resolve();
      if (e.durable >= e.version) {
        this.dirty.delete(index);
        this.urgent.delete(index);
        for (const w of this.roomWaiters.splice(0)) w();
      }
    } catch (err) {
      const wrapped = err instanceof StowageError ? err : new StoreError('STORE_IO', `uploading block ${key} failed`, { cause: err });
      this.opts.logger?.warn({ err, key }, 'nbd: block upload failed; will retry');
      e.retryAtMs = performance.now() + RETRY_MS;
      for (const w of e.waiters.splice(0)) w.reject(wrapped);
    } finally {
      e.uploading = false;
    }
  }
}
