/**
 * The write-back block cache of one volume, shared by all its connections. Entries hold a
 * block's 4 KiB sectors sparsely (block-io.ts), so a small read fetches and verifies only the
 * sectors it needs, and a small write into a block not in memory fetches at most the two
 * sectors it covers partly. Past the cache size, clean entries are evicted LRU, and dirty
 * entries drop their clean sectors (an upload copies those from the old object). Dirty bytes
 * are the bytes of sectors changed since the block's last upload, bounded by `maxDirtyBytes`:
 * a write that would go past the bound waits (back-pressure). Dirty blocks upload after
 * `writeBackDelayMs` without writes (so small writes coalesce into one put), at once when
 * someone waits for them (FLUSH, FUA), and when three quarters of the dirty bound are used,
 * the blocks with the most dirty bytes first (an upload costs about the same for one changed
 * sector as for all of them, so those free the most per put).
 *
 * Uploads are deferred-durability puts, at most `uploadConcurrency` at once, started from
 * batches picked behind one fence check each (lease.ts); at most one upload per block is in
 * flight, so puts and deletes of a block never reorder. Durability (FLUSH, FUA) = the blocks
 * concerned uploaded, then `store.sync()`, which covers every deferred put resolved before
 * it. Every 32 MiB uploaded a sync also starts in the background, so the disk writes of a
 * long copy overlap it instead of all waiting for its final FLUSH (measured: a 1 GiB copy's
 * FLUSH took 2.6-3.7 s without, 0.7-1.3 s with).
 *
 * With a write log (format 3, write-log.ts) an upload encodes the block into the log's open
 * segment instead of putting its object: its upload slot frees at the append, and the block
 * stays dirty (its waiters waiting) until the segment's put resolves. The uploader ends the
 * open segment whenever it has nothing more to start (so a FLUSH or FUA never waits for a
 * segment to fill), and a block rewritten whole is due at once (nothing more can coalesce).
 */
import { StoreError, StowageError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { SECTOR_SIZE, sectorCount, sectorLength } from './block-codec.js';
import { BlockIo, newEntry, type Entry, type Sector } from './block-io.js';
import { ByteParts } from './byte-parts.js';
import { KeyedLock, contiguous, entryOverhead, missing, pickUploads } from './cache-policy.js';
import { blockKey } from './volume-layout.js';
import type { WriteLog } from './write-log.js';

/** Whether every sector of `e` changed since its last upload (a sequential rewrite). */
function rewrittenWhole(e: Entry): boolean {
  for (const at of e.changedAt) if (at <= e.durable) return false;
  return true;
}

/** What a VolumeCache needs. */
export interface VolumeCacheOptions {
  readonly store: ObjectStore;
  readonly name: string;
  /** The volume's block format (volume-layout.ts). */
  readonly format: 1 | 2 | 3;
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
  /**
   * The volume's write log (format 3): uploads append to its segments instead of putting block
   * objects, and reads of stored blocks go through its index. Without it, one object per block.
   */
  readonly log?: WriteLog | undefined;
}

const RETRY_MS = 1000;
const ZERO_SECTOR = Buffer.alloc(SECTOR_SIZE);
/** Weight of one first miss in the moving share of first misses on recently evicted blocks. */
const GHOST_WEIGHT = 1 / 64;
/** That share above which the cache counts as thrashing (no whole-block reads on a miss). */
const THRASHING = 0.25;
/** Sectors of the aligned window a later miss reads (256 KiB: a whole block of the default size and below). */
const WINDOW_SECTORS = (256 * 1024) / SECTOR_SIZE;
/**
 * Share of the dirty bound past which uploads start without waiting for writes to pause.
 * Measured (fio 4 KiB randwrite over 256 MiB, 256 MiB cache): see VolumeCache.pick.
 */
const PRESSURE = 0.75;
/**
 * Bytes uploaded after which a store sync starts in the background, so a FLUSH after a long
 * copy finds most deferred puts already durable instead of syncing them all at once.
 */
const SYNC_AHEAD_BYTES = 32 * 1024 * 1024;
/**
 * Changes up to this long copy whole sectors into the buffers already held for them instead
 * of keeping views of the request (whose buffers would then live as long as the sectors).
 */
const IN_PLACE_MAX = 64 * 1024;
/** Share of the cache an eviction frees below the cache size, so it runs once per many writes. */
const EVICT_SLACK = 1 / 32;

/** How a change treats one sector: new bytes from `src`, or zeros (kept allocated or not). */
type Change = { readonly kind: 'data'; readonly src: ByteParts; readonly donated: boolean } | { readonly kind: 'zero'; readonly keep: boolean };

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
  /** Writers waiting for dirty room, first come first served; each is reserved when woken. */
  private roomWaiters: { readonly bytes: number; readonly resolve: () => void }[] = [];
  /** Uploads running; blocks picked behind the last fence check and not yet started. */
  private running = 0;
  private queue: number[] = [];
  /** A fence check is under way. */
  private fencing = false;
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;
  private closing = false;
  /** Recently evicted blocks (insertion order, bounded) and how often first misses hit them. */
  private readonly ghosts = new Set<number>();
  private readonly ghostMax: number;
  private ghostRate = 0;
  /** Completed uploads; a fetch that saw it change must not install what it read. */
  private uploads = 0;
  /** Bytes put since the last background sync started, and whether one runs. */
  private unsynced = 0;
  private syncingAhead = false;
  size: number;

  constructor(private readonly opts: VolumeCacheOptions) {
    this.size = opts.size;
    this.ghostMax = Math.max(64, Math.ceil(opts.cacheBytes / opts.blockSize));
    this.io = new BlockIo(opts.store, opts.name, opts.format, (i) => this.blockLength(i), opts.logger, opts.log);
  }

  /** Bytes of dirty sectors (changed since their block's last upload). */
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
      // Blocks above 256 KiB read the aligned 256 KiB around the miss instead of the whole
      // block: the same read as a 256 KiB block's, however big the objects are.
      let f1 = s1;
      if (e === undefined) this.noteFirstMiss(index);
      const last = sectorCount(this.blockLength(index)) - 1;
      if (this.io.format === 1) {
        f0 = 0;
        f1 = last;
      } else if (e !== undefined && this.ghostRate < THRASHING) {
        f0 = s0 - (s0 % WINDOW_SECTORS);
        f1 = Math.min(last, s1 - (s1 % WINDOW_SECTORS) + WINDOW_SECTORS - 1);
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

  /**
   * Block `index` as one buffer without a copy when its sectors lie in order in one buffer (a
   * block read whole from the store, or written whole); undefined otherwise (use readInto). The
   * buffer is the cache's own: a later partial write may change it in place, which only a
   * request overlapping this one in time could see (NBD leaves that result undefined).
   */
  async readWhole(index: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    const len = this.blockLength(index);
    const n = sectorCount(len);
    let e = this.touch(index);
    let sectors: readonly Sector[] | undefined = e?.sectors;
    if (e === undefined || missing(e, 0, n - 1)) {
      if (e === undefined) this.noteFirstMiss(index);
      const got = await this.fetchInstall(index, 0, n - 1, signal);
      e = this.entries.get(index);
      sectors = got.map((g, s) => {
        const mem = e?.sectors[s];
        return mem !== undefined ? mem : g;
      });
    }
    return contiguous(sectors as readonly Sector[], len);
  }

  /**
   * Writes `data` at `off` in block `index`; copied unless `donated` (then whole sectors are
   * views of its pieces, and only a sector straddling two pieces is copied).
   */
  async write(index: number, off: number, data: ByteParts | Buffer, donated = false): Promise<void> {
    const src = data instanceof ByteParts ? data : ByteParts.of(data);
    await this.change(index, off, src.length, { kind: 'data', src, donated });
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
    this.opts.log?.fail(err);
    this.wakeRoom();
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
      this.cachedBytes += entryOverhead(e.sectors.length);
    }
    return e;
  }

  /** Adds bytes held by an entry to the totals. */
  private grow(e: Entry, delta: number): void {
    e.bytes += delta;
    this.cachedBytes += delta;
  }

  /** Fetches sectors s0..s1 and installs those still missing; returns what was read. */
  private async fetchInstall(index: number, s0: number, s1: number, signal?: AbortSignal): Promise<(Buffer | null)[]> {
    const before = this.entries.get(index);
    const uploads = this.uploads;
    const drops = before?.drops;
    const got = await this.io.fetch(index, s0, s1, signal);
    const now = this.entries.get(index);
    // Install only what is still current. In the same entry, a sector still missing was
    // missing all along unless clean sectors were dropped meanwhile (one written, uploaded and
    // dropped during the fetch would read stale); no drop happens under the block's lock.
    // In a new entry: only if no upload completed meanwhile.
    if (now !== undefined && now === before ? now.drops === drops : uploads === this.uploads) {
      const e = now ?? this.entryFor(index);
      let added = 0;
      for (let s = s0; s <= s1; s++) {
        if (e.sectors[s] !== undefined) continue;
        const v = got[s - s0] as Buffer | null;
        e.sectors[s] = v;
        added += v === null ? 0 : v.byteLength;
      }
      this.grow(e, added);
      this.evict();
    }
    return got;
  }

  private evict(): void {
    if (this.cachedBytes <= this.opts.cacheBytes) return;
    const target = this.opts.cacheBytes - Math.floor(this.opts.cacheBytes * EVICT_SLACK);
    for (const [i, e] of this.entries) {
      if (this.cachedBytes <= target) break;
      // An upload reads `sectors` across awaits, and so does a change under the block's lock.
      if (e.uploading || this.locks.held(i)) continue;
      if (e.version !== e.durable) {
        if (e.bytes > e.dirtyBytes) this.dropClean(e);
        continue;
      }
      this.entries.delete(i);
      this.cachedBytes -= e.bytes + entryOverhead(e.sectors.length);
      this.ghosts.delete(i);
      this.ghosts.add(i);
      if (this.ghosts.size > this.ghostMax) this.ghosts.delete(this.ghosts.values().next().value as number);
    }
  }

  /** Drops the clean sectors of a dirty entry from memory (they read from the store again). */
  private dropClean(e: Entry): void {
    let freed = 0;
    e.drops++;
    for (let s = 0; s < e.sectors.length; s++) {
      const sec = e.sectors[s];
      if (sec === undefined || sec === null || (e.changedAt[s] as number) > e.durable) continue;
      e.sectors[s] = undefined;
      e.checked[s] = 0;
      freed += sec.byteLength;
    }
    this.grow(e, -freed);
  }

  /** A block with no entry was missed: was it evicted recently (the cache thrashes)? */
  private noteFirstMiss(index: number): void {
    const ghost = this.ghosts.delete(index);
    this.ghostRate = this.ghostRate * (1 - GHOST_WEIGHT) + (ghost ? GHOST_WEIGHT : 0);
  }

  /** Whether `bytes` more dirty bytes fit under the bound (always, when nothing is dirty). */
  private fits(bytes: number): boolean {
    const used = this.dirtyHeld + this.reserved;
    return this.failure !== undefined || used + bytes <= this.opts.maxDirtyBytes || used === 0;
  }

  /**
   * Reserves `bytes` of dirty room, waiting in line while the bound is reached. Waiters are
   * woken in order and only as far as room allows (wakeRoom): waking every waiter on each
   * upload to re-check cost a promise per waiter per upload (nbdcopy keeps up to 64 requests
   * in flight on each of its 4 connections).
   */
  private async room(bytes: number): Promise<void> {
    if (this.roomWaiters.length === 0 && this.fits(bytes)) {
      this.reserved += bytes;
      return;
    }
    this.schedule(0);
    await new Promise<void>((resolve) => this.roomWaiters.push({ bytes, resolve }));
  }

  /** Reserves room for, and wakes, the waiters at the head of the line that fit now. */
  private wakeRoom(): void {
    while (this.roomWaiters.length > 0) {
      const w = this.roomWaiters[0] as { readonly bytes: number; readonly resolve: () => void };
      if (!this.fits(w.bytes)) {
        this.schedule(0);
        return;
      }
      this.roomWaiters.shift();
      // Reserved in the same tick as the check, so a later waiter sees it.
      this.reserved += w.bytes;
      w.resolve();
    }
  }

  private async change(index: number, off: number, len: number, change: Change): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const reserve = change.kind === 'zero' && !change.keep ? 0 : len;
    await this.room(reserve);
    try {
      await this.locks.run(index, () => this.apply(index, off, len, change));
    } finally {
      this.reserved -= reserve;
      // Reserved bytes turned dirty (or fewer, for sectors already dirty), or a zeroing
      // freed dirty bytes: either way the line may move.
      if (this.roomWaiters.length > 0) this.wakeRoom();
    }
    this.opts.log?.noteWrite();
    // With the write log a fully rewritten block is due at once (cache-policy.ts, fullBytes).
    const full = this.opts.log !== undefined && (this.entries.get(index)?.dirtyBytes ?? 0) >= this.blockLength(index);
    this.schedule(this.pressure() || full ? 0 : this.opts.writeBackDelayMs);
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
    this.dirty.add(index);
    const version = e.version + 1;
    let delta = 0;
    let dirtyDelta = 0;
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
          const at = s * SECTOR_SIZE - off;
          if (change.src.isZero(at, at + sl, ZERO_SECTOR)) next = null;
          else if (old !== null && old !== undefined && len <= IN_PLACE_MAX) {
            // A small change overwrites the sector's buffer: the request's buffer dies young.
            change.src.copyTo(old, 0, at, at + sl);
            next = old;
          } else if (change.donated) {
            // Views of the request's pieces; a sector straddling two pieces is copied alone.
            next = change.src.slice(at, at + sl);
          } else {
            // One copy for all the whole sectors of this change; sectors are views of it.
            copy ??= change.src.copy();
            next = copy.subarray(at, at + sl);
          }
        }
      } else {
        if (old === undefined) throw new StoreError('STORE_IO', `block ${index} sector ${s} was not loaded`);
        if (old === null && change.kind === 'zero' && !change.keep) continue;
        next = old ?? Buffer.alloc(sl);
        if (change.kind === 'zero') next.fill(0, from, to);
        else change.src.copyTo(next, from, s * SECTOR_SIZE + from - off, s * SECTOR_SIZE + to - off);
      }
      const newBytes = next === null ? 0 : next.byteLength;
      e.sectors[s] = next;
      e.checked[s] = 0;
      delta += newBytes - oldBytes;
      dirtyDelta += newBytes - ((e.changedAt[s] as number) > e.durable ? oldBytes : 0);
      e.changedAt[s] = version;
    }
    this.grow(e, delta);
    e.dirtyBytes += dirtyDelta;
    this.dirtyHeld += dirtyDelta;
    e.version = version;
    e.lastWriteMs = performance.now();
  }

  private schedule(delayMs: number): void {
    // While uploads run, each one's end pumps again.
    if (this.running > 0 || this.fencing || this.failure !== undefined) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pump(), delayMs);
  }

  /** Starts a store sync in the background; a failure is left for the next FLUSH to report. */
  private syncAhead(): void {
    this.syncingAhead = true;
    this.unsynced = 0;
    this.opts.store.sync().then(
      () => (this.syncingAhead = false),
      (err: unknown) => {
        this.syncingAhead = false;
        this.opts.logger?.debug({ err }, 'nbd: background store sync failed; the next flush retries it');
      },
    );
  }

  /** Whether uploads should start without waiting for writes to pause. */
  private pressure(): boolean {
    return this.dirtyHeld >= this.opts.maxDirtyBytes * PRESSURE;
  }

  /** The next blocks to upload (cache-policy.ts). */
  private pick(): { batch: number[]; waitMs: number | undefined } {
    return pickUploads(this.dirty, this.entries, this.urgent, {
      now: performance.now(),
      closing: this.closing,
      pressure: this.closing || this.pressure(),
      max: this.opts.uploadConcurrency * 2,
      writeBackDelayMs: this.opts.writeBackDelayMs,
      ...(this.opts.log === undefined ? {} : { fullBytes: (i: number) => this.blockLength(i) }),
    });
  }

  /**
   * Keeps up to `uploadConcurrency` uploads running, started from batches picked behind one
   * fence check each; a finished upload starts the next at once (no wait for its batch).
   */
  private async pump(): Promise<void> {
    if (this.fencing || this.failure !== undefined) return;
    while (this.running < this.opts.uploadConcurrency) {
      if (this.queue.length === 0) {
        const { batch, waitMs } = this.pick();
        if (batch.length === 0) {
          // Nothing more to append soon: put the write log's open segment (FLUSH, FUA, idle).
          if (this.running === 0) this.opts.log?.sealOpen();
          if (waitMs !== undefined) this.schedule(Math.ceil(waitMs));
          return;
        }
        this.fencing = true;
        try {
          await this.opts.fence();
        } catch (err) {
          this.fail(err);
          return;
        } finally {
          this.fencing = false;
        }
        if (this.failure !== undefined) return;
        this.queue = batch;
      }
      const i = this.queue.shift() as number;
      const e = this.entries.get(i);
      if (e === undefined || e.uploading || !this.dirty.has(i)) continue;
      this.running++;
      // An upload holds its slot until its put starts: with the write log, until its record
      // is appended (the segment's put then resolves it), so the next blocks fill the segment.
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        this.running--;
        if (this.dirty.size > 0 || this.queue.length > 0) void this.pump();
      };
      void this.upload(i, release).finally(release);
    }
  }

  private async upload(index: number, release: () => void): Promise<void> {
    const e = this.entries.get(index) as Entry;
    const key = blockKey(this.opts.name, index);
    e.uploading = true;
    try {
      const old = await this.io.readOld(index, e);
      // From here to the put, synchronous: the body is a snapshot of this version.
      const version = e.version;
      // With the write log, a block rewritten whole since its last upload is encoded straight
      // into the log's open segment; any other upload puts its object directly (write-log.ts).
      const log = this.opts.log !== undefined && rewrittenWhole(e) ? this.opts.log : undefined;
      const body = this.io.encode(index, e, old, this.opts.epoch(), log?.reserve(this.io.encodedLength(index)));
      if (log !== undefined) {
        const appended = log.append(index, body);
        release();
        await appended;
      } else if (this.opts.log !== undefined) {
        await this.opts.log.direct(index, body, release);
        if (body !== undefined) this.io.recycle(body);
      } else if (body === undefined) await this.opts.store.delete(key);
      else {
        await this.opts.store.put(key, body, { deferDurability: true });
        this.io.recycle(body);
      }
      this.uploads++;
      this.unsynced += body?.byteLength ?? 0;
      if (this.unsynced >= SYNC_AHEAD_BYTES && !this.syncingAhead) this.syncAhead();
      if (version > e.durable) {
        // Sectors changed up to `version` are in the store now: no longer dirty.
        let cleaned = 0;
        for (let s = 0; s < e.sectors.length; s++) {
          const at = e.changedAt[s] as number;
          if (at > e.durable && at <= version) {
            const sec = e.sectors[s];
            cleaned += sec === null || sec === undefined ? 0 : sec.byteLength;
          }
        }
        e.durable = version;
        e.dirtyBytes -= cleaned;
        this.dirtyHeld -= cleaned;
      }
      const done = e.waiters.filter((w) => w.version <= e.durable);
      e.waiters = e.waiters.filter((w) => w.version > e.durable);
      for (const w of done) w.resolve();
      if (e.durable >= e.version) {
        this.dirty.delete(index);
        this.urgent.delete(index);
      }
      this.wakeRoom();
    } catch (err) {
      const wrapped = err instanceof StowageError ? err : new StoreError('STORE_IO', `uploading block ${key} failed`, { cause: err });
      this.opts.logger?.warn({ err, key }, 'nbd: block upload failed; will retry');
      e.retryAtMs = performance.now() + RETRY_MS;
      for (const w of e.waiters.splice(0)) w.reject(wrapped);
    } finally {
      e.uploading = false;
      // With the write log the slot was released at the append: pump again for this block's
      // later writes or its retry.
      if (this.opts.log !== undefined && this.dirty.size > 0) this.schedule(0);
    }
  }
}
