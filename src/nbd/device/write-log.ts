/**
 * A volume's write log: a log-structured staging area in front of its block objects, through
 * the ObjectStore interface only. Uploads of the cache (block-cache.ts) encode blocks (or
 * tombstones) into the open segment instead of putting one object per block. A segment's put
 * starts with its first record and streams the records as they come (write-log-segment.ts);
 * it completes, with the trailer after a last fence check, when the segment is full or when
 * the uploader goes idle (a FLUSH or FUA waits on it, or nothing more is due). A block's
 * upload resolves only once its segment's put did. Durability stays the cache's: deferred
 * puts, then store.sync() at FLUSH.
 *
 * Why: on fs, one object per block costs a file create, a rename over the old file and an
 * fsync per block (and on S3/Swift a PUT per block); a 32 MiB segment costs one of each per
 * 32 blocks of the default 1 MiB size. Reads of a block not in the cache go through the index
 * (write-log-index.ts) to a ranged read of the record, else to the block object.
 *
 * Merge: segments are copied into block objects strictly oldest first (a record still the
 * newest of its block is put as the block object, a tombstone deletes it), synced, then the
 * index entries still pointing at them are dropped and the segment deleted; a crash anywhere
 * in between replays the segment, which holds the same data. Merges run one segment at a time
 * at low concurrency while the log holds more than the bound, or once the volume has had no
 * writes (or reads) for MERGE_IDLE_MS; closing never waits for more than the segment being
 * merged. A segment none of whose records is the newest of its block any more is deleted at
 * once, in any order, after a sync (reclaim): a copy over data still in the log frees it as
 * it goes.
 *
 * Only whole-block rewrites (a sequential copy) go through the log. Any other upload puts its
 * block object directly (`direct`), as before the log: a partial write's block costs a full
 * encoded block either way, and a 4 KiB random write filled the log at 256x its size and then
 * cost a merge. When the index holds a record of the block, the direct put runs under a
 * per-block lock that merges take for each record they copy (so neither an older merged record
 * lands over the direct put nor the two puts race), then the record stops counting for reads
 * and merges, and a marker `newer` is appended; the upload resolves once the marker's segment
 * is put, so a FLUSH covers it (a crash before that may replay the older record: allowed, the
 * write was not flushed). Segments are deleted only after a store sync, which covers the
 * direct puts that superseded their records.
 *
 * Fencing across holders: a new holder seals the log for its epoch (write-log-index.ts).
 */
import { ConflictError, StoreError, StowageError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ByteRange, ObjectStore } from '../../storage/object-store.js';
import { encodeSeal, logPrefix, parseLogName, sealName, segmentName, trailerLength } from './write-log-codec.js';
import { LogIndex, loadLog, type Located, type Segment } from './write-log-index.js';
import { SegmentWriter, TRAILER_ROOM } from './write-log-segment.js';
import { blockKey } from './volume-layout.js';
import { BlockMerger, type MergeHooks } from './write-log-merge.js';

/**
 * Largest segment: 32 MiB. Per-object costs (a file, a rename, an fsync; a PUT) are then paid
 * once per 32 default-size blocks, while a FLUSH waits for at most one partly filled segment
 * and memory holds a few (one filling, the rest being put, all within the dirty bound since a
 * block stays dirty until its segment is put). Capped at a quarter of the dirty bound so a
 * small cache still keeps several segments in the pipeline.
 */
export const SEGMENT_BYTES = 32 * 1024 * 1024;
/**
 * Merge bound: the log may hold max(4 x cache, 2 GiB) before merges run during writes, and
 * segment puts wait for merges past twice that. Reads cost the same from a segment as from a
 * block object and an open reads one trailer per segment (64 reads for 2 GiB), so the bound
 * only limits the space of superseded records (at most twice the bound). Merging a record
 * costs a read and a put, merging a superseded one nothing: the later a segment is merged,
 * the more of it is dead. Measured (1 GiB nbdcopy in, three times over one volume, fs store):
 * at 512 MiB the second and third copies merged the previous copy's segments while
 * overwriting them, 3.9 s each against 2.3-2.5 s with no merge during the copy.
 */
const MERGE_BOUND_MIN = 2 * 1024 * 1024 * 1024;
/** Records the index holds at most before merges run (small blocks: its memory, ~200 B each). */
const MERGE_RECORDS_MAX = 256 * 1024;
/** No writes for this long and the whole log is merged. */
const MERGE_IDLE_MS = 3000;
/** Block puts of one segment's merge in flight. */
const MERGE_CONCURRENCY = 2;

/** What a WriteLog needs. */
export interface WriteLogOptions {
  readonly store: ObjectStore;
  readonly name: string;
  readonly cacheBytes: number;
  readonly maxDirtyBytes: number;
  /** The writer's lease epoch (names its segments and seal). */
  readonly epoch: () => number;
  /** Throws when writes must stop (the lease is gone); called before every segment put and merge. */
  readonly fence: () => Promise<void>;
  readonly logger?: Logger | undefined;
  /** Tests: segment size, merge bound and idle time. */
  readonly segmentBytes?: number;
  readonly mergeBoundBytes?: number;
  readonly mergeIdleMs?: number;
}

/** The write log of one volume. */
export class WriteLog {
  private index = new LogIndex();
  private open: SegmentWriter | undefined;
  private seq = 0;
  private readonly puts = new Set<Promise<void>>();
  /** Per block: a direct put over a logged record, or a merge's copy of a record. */
  private readonly merger: BlockMerger;
  private merging: Promise<void> | undefined;
  /** Segment puts waiting for merges to make room (the log is past twice its bound). */
  private mergeWaiters: (() => void)[] = [];
  private mergeFailed = false;
  private closing = false;
  private reloading: Promise<LogIndex> | undefined;
  private reclaiming: Promise<void> | undefined;
  private holding = false;
  private stopped = false;
  private lastWriteMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly segmentBytes: number;
  private readonly mergeBound: number;
  private readonly mergeIdleMs: number;
  /**
   * Buffers of put segments kept for the next ones (as many as can be in flight within the
   * dirty bound): a fresh 33 MiB buffer costs its page faults on first touch, which measured
   * as much CPU as the encoding copy itself. Dropped when the log goes idle.
   */
  private readonly spares: Buffer[] = [];
  private readonly sparesMax: number;

  constructor(private readonly opts: WriteLogOptions) {
    this.segmentBytes = opts.segmentBytes ?? Math.max(1024 * 1024, Math.min(SEGMENT_BYTES, Math.floor(opts.maxDirtyBytes / 4)));
    this.mergeBound = opts.mergeBoundBytes ?? Math.max(4 * opts.cacheBytes, MERGE_BOUND_MIN);
    this.mergeIdleMs = opts.mergeIdleMs ?? MERGE_IDLE_MS;
    this.merger = new BlockMerger(opts.store, opts.name);
    this.sparesMax = Math.max(1, Math.ceil(opts.maxDirtyBytes / this.segmentBytes));
  }

  /** Bytes of put segments. */
  get bytes(): number {
    return this.index.bytes;
  }

  /** Segments in the store (put and not merged). */
  get segments(): number {
    return this.index.segments.length;
  }

  /** Where the newest record of a block lies, if the log holds one. */
  locate(index: number): Located | undefined {
    return this.index.blocks.get(index);
  }

  /**
   * Reads a block's encoded bytes (or a range of them) through the log; see LogIndex.read.
   * Without the lease, a segment merged away by the holder reloads the index.
   */
  read(index: number, range: ByteRange | undefined, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    return this.index.read(this.opts.store, index, blockKey(this.opts.name, index), range, signal, this.holding ? undefined : () => this.reload());
  }

  /** Rebuilds the index from the store (read-only: another process holds the lease); coalesced. */
  private reload(): Promise<LogIndex> {
    this.reloading ??= loadLog(this.opts.store, this.opts.name)
      .then((loaded) => {
        if (!this.holding) this.index = loaded.index;
        return loaded.index;
      })
      .finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  /** Notes a request: idle merges wait for MERGE_IDLE_MS without any (reads compete with them too). */
  noteActivity(): void {
    this.lastWriteMs = performance.now();
  }

  /**
   * Rebuilds the index from the store. With `holding` (the lease was just taken at epoch()),
   * writes this epoch's seal naming the segments accepted, then deletes rejected segments and
   * older seals. Throws StoreError for a damaged segment or seal.
   */
  async load(holding: boolean): Promise<void> {
    const loaded = await loadLog(this.opts.store, this.opts.name);
    this.index = loaded.index;
    const epoch = this.opts.epoch();
    this.seq = loaded.lastSeq.get(epoch) ?? 0;
    if (!holding) return;
    const prefix = logPrefix(this.opts.name);
    const seal = `${prefix}${sealName(epoch)}`;
    await this.opts.fence();
    // Create-only as a second guard (the lease already makes the epoch this holder's alone);
    // a store without conditional puts keeps its lease records elsewhere: a plain put there.
    const body = encodeSeal(loaded.index.segments.map((s) => s.name));
    const r = await this.opts.store.put(seal, body, { ifAbsent: true }).catch(async (err: unknown) => {
      if (!(err instanceof StowageError && err.code === 'STORE_CONDITION_UNSUPPORTED')) throw err;
      return this.opts.store.put(seal, body);
    });
    if (!r.created) throw new ConflictError('VOLUME_LEASE_HELD', `volume ${this.opts.name}: the write log of lease epoch ${epoch} is already sealed by another server; try again`);
    for (const key of loaded.rejected) await this.opts.store.delete(key);
    for (const key of loaded.seals) {
      const k = parseLogName(key.slice(prefix.length));
      if (k !== undefined && k.epoch < epoch) await this.opts.store.delete(key);
    }
    if (loaded.rejected.length > 0) this.opts.logger?.warn({ volume: this.opts.name, segments: loaded.rejected.length }, 'nbd: dropped write log segments of a fenced holder');
    this.holding = true;
    this.noteWrite();
  }

  /**
   * Room for a record of `length` bytes in the open segment, to encode a block into in place;
   * pass it to `append` before anything else touches the log (synchronously).
   */
  reserve(length: number): Buffer {
    return this.room(length).reserve(length);
  }

  /**
   * Appends a block's encoded bytes (copied now unless they are the space `reserve` gave), or
   * a tombstone (undefined); resolves once the segment holding it is put (visible; durable
   * after a store sync).
   */
  append(index: number, body: Buffer | undefined): Promise<void> {
    return this.appendRecord(index, body, false);
  }

  /**
   * Puts block `index`'s object directly (deferred durability; `body` undefined deletes it) for
   * an upload that did not rewrite the whole block. If the log holds a record of the block, the
   * put runs under the block's lock (merges take it too), the record stops counting and a
   * marker follows it in the log; `started` runs once the put is done and the marker (if any)
   * appended, and the result resolves once the marker's segment is put.
   */
  async direct(index: number, body: Buffer | undefined, started: () => void): Promise<void> {
    // No record of the block in the index: none can shadow the object (at most one upload of a
    // block runs at a time, and a logged one resolves only after its segment is indexed).
    if (!this.index.holds(index)) {
      await this.merger.putObject(index, body);
      started();
      return;
    }
    const marked = await this.merger.put(index, body, () => {
      this.index.supersede(index);
      const p = this.appendRecord(index, undefined, true);
      // Handled by the caller below; not an unhandled rejection meanwhile.
      p.catch(() => undefined);
      return { p };
    });
    started();
    await marked.p;
  }

  private appendRecord(index: number, body: Buffer | undefined, newer: boolean): Promise<void> {
    if (this.stopped) return Promise.reject(new ConflictError('VOLUME_LEASE_LOST', `volume ${this.opts.name}: the write log is closed`));
    const seg = this.room(body?.byteLength ?? 0);
    const done = seg.append(index, body, newer);
    if (seg.used >= this.segmentBytes) this.sealOpen();
    return done;
  }

  /** Ends the open segment now (if any): its put completes with the trailer. */
  sealOpen(): void {
    const seg = this.open;
    this.open = undefined;
    seg?.end();
  }

  /** Notes a write (merges wait for MERGE_IDLE_MS without one, unless the log is over its bound). */
  noteWrite(): void {
    this.lastWriteMs = performance.now();
    if (this.idleTimer === undefined && this.holding && !this.stopped) this.armIdle(this.mergeIdleMs);
  }

  /** Merges every put segment now, oldest first (tests; merges otherwise run by themselves). */
  async mergeAll(hooks?: MergeHooks): Promise<void> {
    await this.merging;
    for (;;) {
      const seg = this.index.segments[0];
      if (seg === undefined || this.stopped) return;
      await this.mergeSegment(seg, hooks);
    }
  }

  /** Puts the open segment, waits for every put and the merge under way; merges no more. */
  async close(): Promise<void> {
    // Closing never waits for merges: segments left over are replayed on the next open.
    this.closing = true;
    this.wakeMergeWaiters();
    this.sealOpen();
    await Promise.allSettled([...this.puts]);
    this.stopped = true;
    this.spares.length = 0;
    this.wakeMergeWaiters();
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    await this.merging;
    await this.reclaiming;
  }

  /** Stops at once: the open segment's put is aborted, nothing more is put or merged. */
  fail(err: unknown): void {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    this.wakeMergeWaiters();
    const seg = this.open;
    this.open = undefined;
    seg?.abort(err);
  }

  /** The open segment, with room for one more record of `len` bytes (the full one is ended). */
  private room(len: number): SegmentWriter {
    const seg = this.open;
    if (seg !== undefined && seg.fits(len)) return seg;
    this.sealOpen();
    const size = Math.max(this.segmentBytes + TRAILER_ROOM, len + trailerLength(1));
    const spare = this.spares.pop();
    const buf = spare !== undefined && spare.byteLength >= size ? spare : Buffer.allocUnsafe(size);
    const name = segmentName(this.opts.epoch(), ++this.seq);
    const next = new SegmentWriter(name, `${logPrefix(this.opts.name)}${name}`, buf, this.opts.fence);
    this.open = next;
    const p = this.putSegment(next);
    this.puts.add(p);
    void p.finally(() => this.puts.delete(p));
    return next;
  }

  /** Streams a segment to the store from its first record; on success indexes it and resolves its records. */
  private async putSegment(seg: SegmentWriter): Promise<void> {
    try {
      await this.mergeRoom();
      await this.opts.fence();
      await this.opts.store.put(seg.key, seg.body(), { deferDurability: true });
      this.index.add({ name: seg.name, key: seg.key, size: seg.used + trailerLength(seg.records.length), records: seg.records });
      // The store holds no caller's buffer past a resolved put: keep one for the next segment.
      if (this.spares.length < this.sparesMax && seg.buf.byteLength === this.segmentBytes + TRAILER_ROOM) this.spares.push(seg.buf);
      seg.settle();
      this.reclaim();
      if (this.overBound(1)) this.startMerge();
    } catch (err) {
      const wrapped = err instanceof StoreError || err instanceof ConflictError ? err : new StoreError('STORE_IO', `putting write log segment ${seg.key} failed`, { cause: err });
      if (this.open === seg) this.open = undefined;
      this.index.doubt(seg.records.map((r) => r.index));
      seg.abort(wrapped);
    }
  }

  /**
   * Waits while the log holds more than twice its bound and merges make progress: writes
   * faster than merges would otherwise grow the log without limit. The blocks of the waiting
   * segment stay dirty, so writers wait on the cache's dirty bound, nothing else.
   */
  private async mergeRoom(): Promise<void> {
    while (this.overBound(2) && this.holding && !this.stopped && !this.closing && !this.mergeFailed) {
      this.startMerge();
      if (this.merging === undefined) return;
      await new Promise<void>((resolve) => this.mergeWaiters.push(resolve));
    }
  }

  /**
   * Deletes the segments whose every record was superseded, in any order (replay finds the
   * newer records either way), after a store sync (the newer segments must be durable before
   * the older ones go) and a fence check. A copy over data still in the log then frees the old
   * segments as it goes instead of leaving them to a merge (on fs, their pages are reused: page
   * cache growth measured 4x the system time per byte written).
   */
  private reclaim(): void {
    if (this.reclaiming !== undefined || !this.holding || this.stopped) return;
    const dead = this.index.dead();
    if (dead.length === 0) return;
    let ok = false;
    this.reclaiming = (async () => {
      await this.opts.store.sync();
      await this.opts.fence();
      for (const seg of dead) {
        if (!this.index.segments.includes(seg)) continue;
        this.index.retire(seg);
        await this.opts.store.delete(seg.key);
        this.index.remove(seg);
      }
      ok = true;
    })()
      .catch((err: unknown) => this.opts.logger?.warn({ err, volume: this.opts.name }, 'nbd: deleting superseded write log segments failed; a merge will retry'))
      .finally(() => {
        this.reclaiming = undefined;
        if (ok) this.reclaim();
      });
  }

  /** Whether the log holds more than `times` its bound (bytes, or records in the index). */
  private overBound(times: number): boolean {
    return this.index.bytes > times * this.mergeBound || this.index.blocks.size > times * MERGE_RECORDS_MAX;
  }

  private wakeMergeWaiters(): void {
    for (const w of this.mergeWaiters.splice(0)) w();
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.stopped) return;
      const left = this.lastWriteMs + this.mergeIdleMs - performance.now();
      if (left > 0) return this.armIdle(left);
      this.spares.length = 0;
      if (this.index.segments.length > 0) this.startMerge();
    }, Math.ceil(ms));
    this.idleTimer.unref();
  }

  private idle(): boolean {
    return performance.now() - this.lastWriteMs >= this.mergeIdleMs && this.open === undefined;
  }

  private startMerge(): void {
    if (!this.holding || this.stopped || this.merging !== undefined) return;
    this.merging = this.mergeLoop().finally(() => {
      this.merging = undefined;
      this.wakeMergeWaiters();
    });
  }

  private async mergeLoop(): Promise<void> {
    while (!this.stopped) {
      const seg = this.index.segments[0];
      if (seg === undefined || !(this.overBound(1) || this.idle())) return;
      try {
        await this.mergeSegment(seg);
        this.mergeFailed = false;
        this.wakeMergeWaiters();
      } catch (err) {
        this.mergeFailed = true;
        // Left for the next trigger (a later idle period, the next open).
        this.opts.logger?.warn({ err, volume: this.opts.name, segment: seg.key }, 'nbd: merging a write log segment failed; will retry later');
        if (!this.stopped) this.armIdle(this.mergeIdleMs);
        return;
      }
    }
  }

  /** Copies a segment's current records into block objects, syncs, then deletes it. */
  private async mergeSegment(seg: Segment, hooks?: MergeHooks): Promise<void> {
    const { store } = this.opts;
    await this.opts.fence();
    await this.merger.copy(this.index, seg, MERGE_CONCURRENCY, hooks);
    // Also makes the segments superseding its other records durable before it goes.
    await store.sync();
    await hooks?.beforeDelete?.();
    if (!this.index.segments.includes(seg)) return; // dropped as dead meanwhile
    await this.opts.fence();
    // Deleted before its entries are dropped: a segment left behind by a failed delete would
    // otherwise replay over newer segments merged after it. Reads meanwhile go to the objects.
    this.index.retire(seg);
    await store.delete(seg.key);
    this.index.remove(seg);
  }
}
