/**
 * The write-back block cache of one volume, shared by all its connections. Entries hold a
 * block's 4 KiB sectors sparsely (block-io.ts), so a small read fetches and verifies only the
 * sectors it needs, and a small write into a block not in memory fetches at most the two
 * sectors it covers partly. Clean entries are evicted LRU past the cache size; dirty entries
 * are never evicted and their bytes are bounded by `maxDirtyBytes`: a write that would go past
 * the bound waits (back-pressure). Dirty blocks upload after `writeBackDelayMs` without
 * writes (so small writes coalesce into one put), at once when someone waits for them (FLUSH,
 * FUA) or when half the dirty bound is used.
 *
 * Uploads are deferred-durability puts run in batches of bounded concurrency, each batch
 * behind one fence check (lease.ts); at most one upload per block is in flight, so puts and
 * deletes of a block never reorder. Durability (FLUSH, FUA) = the blocks concerned uploaded,
 * then `store.sync()`, which covers every deferred put resolved before it.
 */
import { StoreError, StowageError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { SECTOR_SIZE, sectorCount, sectorLength } from './block-codec.js';
import { BlockIo, newEntry, type Entry } from './block-io.js';
import { blockKey } from './volume-layout.js';

/** What a VolumeCache needs. */
export interface VolumeCacheOptions {
  readonly store: ObjectStore;
  readonly name: string;
  /** The volume's block format (volume-layout.ts). */
  readonly format: 1 | 2;
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
/** Bytes charged per entry besides its sectors. */
const ENTRY_OVERHEAD = 64;
const ZERO_SECTOR = Buffer.alloc(SECTOR_SIZE);
/** Weight of one first miss in the moving share of first misses on recently evicted blocks. */
const GHOST_WEIGHT = 1 / 64;
/** That share above which the cache counts as thrashing (no whole-block reads on a miss). */
const THRASHING = 0.25;

/** Serializes async work per key. */
class KeyedLock {
  private readonly tails = new Map<number, Promise<void>>();
  async run<T>(key: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev === undefined ? mine : prev.then(() => mine);
    this.tails.set(key, tail);
    if (prev !== undefined) await prev;
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

/** How a change treats one sector: new bytes from `src`, or zeros (kept allocated or not). */
type Change = { readonly kind: 'data'; readonly src: Buffer; readonly donated: boolean } | { readonly kind: 'zero'; readonly keep: boolean };

/** The shared block cache and uploader of one volume. */
export class VolumeCache {
  private readonly entries = new Map<number, Entry>();
  private readonly locks = new KeyedLock();
  private readonly io: BlockIo;
  /** Dirty blocks in the order they became dirty. */
  private readonly dirty = new Set<number>();
  private readonly urgent = new Set<number>();
  private cachedBytes = 0;
  private dirtyHeld = 0;
  /** Bytes promised to writers that passed `room` and have not yet changed their block. */
  private reserved = 0;
  private roomWaiters: (() => void)[] = [];
  private batchRunning = false;
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;
  private closing = false;
  /** Recently evicted blocks (insertion order, bounded) and how often first misses hit them. */
  private readonly ghosts = new Set<number>();
  private readonly ghostMax: number;
  private ghostRate = 0;
  /** Completed uploads; a fetch that saw it change must not install what it read. */
  private uploads = 0;
  size: number;

  constructor(private readonly opts: VolumeCacheOptions) {
    this.size = opts.size;
    this.ghostMax = Math.max(64, Math.ceil(opts.cacheBytes / opts.blockSize));
    this.io = new BlockIo(opts.store, opts.name, opts.format, (i) => this.blockLength(i), opts.logger);
  }

  /** Bytes held by dirty blocks. */
  get dirtyBytes(): number {
    return this.dirtyHeld;
  }

  /** Length of block `index` (the last one may be short). */
  blockLength(index: number): number {
    return Math.min(this.opts.blockSize, this.size - index * this.opts.blockSize);
  }

  /** Copies bytes [off, off+len) of block `index` into `out` at `at`. */
  async readInto(index: number, off: number, len: number, out: Buffer, at: number, signal?: AbortSignal): Promise<void> {
    const s0 = Math.floor(off / SECTOR_SIZE);
    const s1 = Math.floor((off + len - 1) / SECTOR_SIZE);
    let e = this.touch(index);
    let fetched: (Buffer | null)[] | undefined;
    let f0 = s0;
    if (e === undefined || missing(e, s0, s1)) {
      // Format 1 reads whole blocks. Format 2 reads only the sectors asked for on a block's
      // first miss, and the whole block on a later miss while the block is still cached, unless
      // the cache is thrashing (blocks missed again soon after their eviction): then a whole
      // block costs a 64x bigger read and check for bytes evicted before their next use.
      // Measured (fio 4 KiB randread over 256 MiB of 256 KiB blocks, loaded 2-core machine):
      // 256 MiB cache, sectors only 6.2k IOPS, whole on second miss 19.6k; 64 MiB cache,
      // whole on second miss 3.1k, sectors only 6.7k.
      let f1 = s1;
      if (e === undefined) this.noteFirstMiss(index);
      if (this.io.format === 1 || (e !== undefined && this.ghostRate < THRASHING)) {
        f0 = 0;
        f1 = sectorCount(this.blockLength(index)) - 1;
      }
      fetched = await this.fetchInstall(index, f0, f1, signal);
      e = this.entries.get(index);
    }
    for (let s = s0; s <= s1; s++) {
      const mem = e?.sectors[s];
      const src = mem !== undefined ? mem : fetched?.[s - f0];
      const from = Math.max(off, s * SECTOR_SIZE);
      const to = Math.min(off + len, (s + 1) * SECTOR_SIZE);
      const dst = at + from - off;
      if (src === undefined) throw new StoreError('STORE_IO', `block ${index} sector ${s} was not loaded`);
      if (src === null) out.fill(0, dst, dst + to - from);
      else src.copy(out, dst, from - s * SECTOR_SIZE, to - s * SECTOR_SIZE);
    }
  }

  /** Writes `data` at `off` in block `index`; copied unless `donated` (then whole sectors are views of it). */
  async write(index: number, off: number, data: Buffer, donated = false): Promise<void> {
    await this.change(index, off, data.byteLength, { kind: 'data', src: data, donated });
  }

  /** Zeroes [off, off+len) of block `index`; `keep` stores zeros instead of dropping sectors. */
  async zero(index: number, off: number, len: number, keep: boolean): Promise<void> {
    await this.change(index, off, len, { kind: 'zero', keep });
  }

  /** Whether a block is known to be zeros without I/O: true/false if known, undefined if not. */
  cachedZero(index: number): boolean | undefined {
    const e = this.entries.get(index);
    if (e === undefined) return undefined;
    let unknown = false;
    for (const s of e.sectors) {
      if (s === undefined) unknown = true;
      else if (s !== null) return false;
    }
    return unknown ? undefined : true;
  }

  /** Whether a block is dirty (not yet uploaded). */
  isDirty(index: number): boolean {
    return this.dirty.has(index);
  }

  /** Resolves when the current versions of these blocks are durable (uploaded, then synced). */
  async waitDurable(indexes: Iterable<number>): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const waits: Promise<void>[] = [];
    for (const i of indexes) {
      const e = this.entries.get(i);
      if (e === undefined || e.durable >= e.version) continue;
      waits.push(new Promise<void>((resolve, reject) => e.waiters.push({ version: e.version, resolve, reject })));
      this.urgent.add(i);
    }
    if (waits.length > 0) {
      this.schedule(0);
      await Promise.all(waits);
    }
    // Uploaded earlier in the background, or just now: deferred puts need the sync either way.
    await this.opts.store.sync();
  }

  /** Resolves when every block dirty now, and every block uploaded before, is durable. */
  flush(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return this.waitDurable([...this.dirty]);
  }

  /** Prefetches whole blocks into the cache (advisory; errors ignored). */
  async prefetch(indexes: readonly number[]): Promise<void> {
    await Promise.all(
      indexes.map(async (i) => {
        const e = this.touch(i);
        const last = sectorCount(this.blockLength(i)) - 1;
        if (e === undefined || missing(e, 0, last)) await this.fetchInstall(i, 0, last).catch(() => undefined);
      }),
    );
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

  /** The entry of a block, moved to the LRU end. */
  private touch(index: number): Entry | undefined {
    const e = this.entries.get(index);
    if (e !== undefined) {
      this.entries.delete(index);
      this.entries.set(index, e);
    }
    return e;
  }

  private entryFor(index: number): Entry {
    let e = this.entries.get(index);
    if (e === undefined) {
      e = newEntry(sectorCount(this.blockLength(index)));
      this.entries.set(index, e);
      this.cachedBytes += ENTRY_OVERHEAD;
    }
    return e;
  }

  /** Adds bytes held by an entry to the totals. */
  private grow(index: number, e: Entry, delta: number): void {
    e.bytes += delta;
    this.cachedBytes += delta;
    if (this.dirty.has(index)) this.dirtyHeld += delta;
  }

  /** Fetches sectors s0..s1 and installs those still missing; returns what was read. */
  private async fetchInstall(index: number, s0: number, s1: number, signal?: AbortSignal): Promise<(Buffer | null)[]> {
    const before = this.entries.get(index);
    const uploads = this.uploads;
    const got = await this.io.fetch(index, s0, s1, signal);
    const now = this.entries.get(index);
    // Install only what is still current: the same entry, or no upload completed meanwhile.
    if (now === before ? true : uploads === this.uploads) {
      const e = now ?? this.entryFor(index);
      let added = 0;
      for (let s = s0; s <= s1; s++) {
        if (e.sectors[s] !== undefined) continue;
        const v = got[s - s0] as Buffer | null;
        e.sectors[s] = v;
        added += v === null ? 0 : v.byteLength;
      }
      this.grow(index, e, added);
      this.evict();
    }
    return got;
  }

  private evict(): void {
    if (this.cachedBytes <= this.opts.cacheBytes) return;
    for (const [i, e] of this.entries) {
      if (this.cachedBytes <= this.opts.cacheBytes) break;
      if (e.version !== e.durable || e.uploading || this.locks.held(i)) continue;
      this.entries.delete(i);
      this.cachedBytes -= e.bytes + ENTRY_OVERHEAD;
      this.ghosts.delete(i);
      this.ghosts.add(i);
      if (this.ghosts.size > this.ghostMax) this.ghosts.delete(this.ghosts.values().next().value as number);
    }
  }

  /** A block with no entry was missed: was it evicted recently (the cache thrashes)? */
  private noteFirstMiss(index: number): void {
    const ghost = this.ghosts.delete(index);
    this.ghostRate = this.ghostRate * (1 - GHOST_WEIGHT) + (ghost ? GHOST_WEIGHT : 0);
  }

  private async room(bytes: number): Promise<void> {
    const limit = this.opts.maxDirtyBytes;
    while (this.failure === undefined && this.dirtyHeld + this.reserved + bytes > limit && this.dirtyHeld + this.reserved > 0) {
      this.schedule(0);
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    // Reserve in the same tick as the check, or woken writers would all pass it.
    this.reserved += bytes;
  }

  private async change(index: number, off: number, len: number, change: Change): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const reserve = change.kind === 'zero' && !change.keep ? 0 : len;
    await this.room(reserve);
    try {
      await this.locks.run(index, () => this.apply(index, off, len, change));
    } finally {
      this.reserved -= reserve;
      if (reserve > 0) for (const w of this.roomWaiters.splice(0)) w();
    }
    this.schedule(this.dirtyHeld * 2 >= this.opts.maxDirtyBytes ? 0 : this.opts.writeBackDelayMs);
    this.evict();
  }

  private async apply(index: number, off: number, len: number, change: Change): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const blockLen = this.blockLength(index);
    const s0 = Math.floor(off / SECTOR_SIZE);
    const s1 = Math.floor((off + len - 1) / SECTOR_SIZE);
    const partial = (s: number): boolean => off > s * SECTOR_SIZE || off + len < s * SECTOR_SIZE + sectorLength(blockLen, s);
    let e = this.entryFor(index);
    // Sectors changed in part need their old bytes (format 1: the whole block does).
    const n = e.sectors.length;
    if (this.io.format === 1 && missing(e, 0, n - 1) && !(s0 === 0 && s1 === n - 1 && !partial(0) && !partial(n - 1))) {
      await this.fetchInstall(index, 0, n - 1);
    } else {
      const a = partial(s0) && e.sectors[s0] === undefined;
      const b = s1 !== s0 && partial(s1) && e.sectors[s1] === undefined;
      if (a || b) await this.fetchInstall(index, a ? s0 : s1, b ? s1 : s0);
    }
    e = this.entryFor(index);
    if (this.failure !== undefined) throw this.failure;
    if (!this.dirty.has(index)) {
      this.dirty.add(index);
      this.dirtyHeld += e.bytes;
    }
    let delta = 0;
    let copy: Buffer | undefined;
    for (let s = s0; s <= s1; s++) {
      const sl = sectorLength(blockLen, s);
      const from = Math.max(off, s * SECTOR_SIZE) - s * SECTOR_SIZE;
      const to = Math.min(off + len, (s + 1) * SECTOR_SIZE) - s * SECTOR_SIZE;
      const old = e.sectors[s];
      const oldBytes = old === null || old === undefined ? 0 : old.byteLength;
      let next: Buffer | null;
      if (!partial(s)) {
        if (change.kind === 'zero') next = change.keep ? Buffer.alloc(sl) : null;
        else {
          const part = change.src.subarray(s * SECTOR_SIZE - off, s * SECTOR_SIZE - off + sl);
          if (part.equals(ZERO_SECTOR.subarray(0, sl))) next = null;
          else {
            // One copy for all the whole sectors of this change (none if donated); sectors are views of it.
            copy ??= change.donated ? change.src : Buffer.from(change.src);
            next = copy.subarray(s * SECTOR_SIZE - off, s * SECTOR_SIZE - off + sl);
          }
        }
      } else {
        if (old === undefined) throw new StoreError('STORE_IO', `block ${index} sector ${s} was not loaded`);
        if (old === null && change.kind === 'zero' && !change.keep) continue;
        next = old ?? Buffer.alloc(sl);
        if (change.kind === 'zero') next.fill(0, from, to);
        else change.src.copy(next, from, s * SECTOR_SIZE + from - off, s * SECTOR_SIZE + to - off);
      }
      e.sectors[s] = next;
      e.checked[s] = 0;
      delta += (next === null ? 0 : next.byteLength) - oldBytes;
    }
    this.grow(index, e, delta);
    e.version++;
    e.lastWriteMs = performance.now();
  }

  private schedule(delayMs: number): void {
    if (this.batchRunning || this.failure !== undefined) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pump(), delayMs);
  }

  private pick(): { batch: number[]; waitMs: number | undefined } {
    const now = performance.now();
    const pressure = this.closing || this.dirtyHeld * 2 >= this.opts.maxDirtyBytes;
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
    const key = blockKey(this.opts.name, index);
    e.uploading = true;
    try {
      const old = await this.io.readOld(index, e);
      // From here to the put, synchronous: the body is a snapshot of this version.
      const version = e.version;
      const body = this.io.encode(index, e, old, this.opts.epoch());
      if (body === undefined) await this.opts.store.delete(key);
      else await this.opts.store.put(key, body, { deferDurability: true });
      this.uploads++;
      e.durable = Math.max(e.durable, version);
      const done = e.waiters.filter((w) => w.version <= e.durable);
      e.waiters = e.waiters.filter((w) => w.version > e.durable);
      for (const w of done) w.resolve();
      if (e.durable >= e.version) {
        this.dirty.delete(index);
        this.dirtyHeld -= e.bytes;
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

/** Whether any of sectors s0..s1 is not in memory. */
function missing(e: Entry, s0: number, s1: number): boolean {
  for (let s = s0; s <= s1; s++) if (e.sectors[s] === undefined) return true;
  return false;
}
