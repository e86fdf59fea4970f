/**
 * The index of a volume's write log (write-log.ts): block index -> its newest record (or
 * tombstone) in a put segment, rebuilt on open from the segments' trailers in key order.
 * Fencing across holders (write-log-codec.ts for keys): every holder, right after taking the
 * lease at epoch E, writes the create-only seal `E-seal` naming the segments it accepted. A
 * segment of an epoch older than the newest seal counts only if that seal names it, so a
 * fenced holder's late segment never comes back (the holder of the lease deletes it).
 */
import { StoreError } from '../../core/errors.js';
import type { ByteRange, ObjectStore } from '../../storage/object-store.js';
import { logPrefix, parseLogName, parseSeal, parseTrailer, readFooter, type LogRecord } from './write-log-codec.js';

/** A segment in the store and its records. */
export interface Segment {
  /** Key tail, `<epoch>-<seq>`. */
  readonly name: string;
  readonly key: string;
  readonly size: number;
  readonly records: readonly LogRecord[];
}

/** Where a block's newest record lies. */
export interface Located {
  readonly seg: Segment;
  readonly rec: LogRecord;
}

/** First tail read of a segment: trailers of up to ~2700 records without a second read. */
const TAIL_READ = 64 * 1024;

/**
 * The records of the put segments, newest per block; segments in key order. `blocks` holds
 * the records that shadow the block objects (data, tombstones). A block whose object was put
 * directly over a logged record (write-log.ts, `direct`) leaves `blocks` at once (`superseded`,
 * the old record's segment still counted live), and once the marker `newer` is indexed its
 * entry is the marker (`markers`): reads then go to the object. A marker keeps its segment
 * live like any newest record, so a segment holding an older record of the block is never
 * deleted after the marker's (replay would otherwise show the older record).
 */
export class LogIndex {
  readonly blocks = new Map<number, Located>();
  readonly segments: Segment[] = [];
  /** Bytes of all segments. */
  bytes = 0;
  /** Records whose block object was put directly since, until its marker is indexed. */
  private readonly superseded = new Map<number, Located>();
  /**
   * Blocks with a record in a segment whose put failed: the store may still hold it (a put can
   * fail after its commit), so a direct put over them needs a marker too. Cleared by any newer
   * record of the block.
   */
  private readonly doubtful = new Set<number>();
  /** Markers `newer` still the newest record of their block. */
  private readonly markers = new Map<number, Located>();
  /** Segments merged into block objects, being deleted: reads of their records go to the objects. */
  private readonly retired = new Set<Segment>();
  /** Records of each segment still the newest of their block. */
  private readonly live = new Map<Segment, number>();

  /** Adds a put segment (newer than every segment of a block it holds) in key order. */
  add(seg: Segment): void {
    let at = this.segments.length;
    while (at > 0 && (this.segments[at - 1] as Segment).key > seg.key) at--;
    this.segments.splice(at, 0, seg);
    this.bytes += seg.size;
    this.live.set(seg, 0);
    for (const rec of seg.records) {
      const prev = this.blocks.get(rec.index) ?? this.superseded.get(rec.index) ?? this.markers.get(rec.index);
      if (prev !== undefined) this.live.set(prev.seg, (this.live.get(prev.seg) ?? 1) - 1);
      this.blocks.delete(rec.index);
      this.superseded.delete(rec.index);
      this.markers.delete(rec.index);
      this.doubtful.delete(rec.index);
      (rec.newer === true ? this.markers : this.blocks).set(rec.index, { seg, rec });
      this.live.set(seg, (this.live.get(seg) ?? 0) + 1);
    }
  }

  /** Whether the log holds a record of block `index` that a direct put must supersede with a marker. */
  holds(index: number): boolean {
    return this.blocks.has(index) || this.superseded.has(index) || this.doubtful.has(index);
  }

  /** Notes blocks whose records were in a segment whose put failed (see `doubtful`). */
  doubt(indexes: Iterable<number>): void {
    for (const i of indexes) this.doubtful.add(i);
  }

  /**
   * The block object of `index` was just put (or deleted) directly and is newer than its
   * record: reads and merges leave the record alone from now on; its segment stays live until
   * the marker's segment is indexed (add).
   */
  supersede(index: number): void {
    const loc = this.blocks.get(index);
    if (loc === undefined) return;
    this.blocks.delete(index);
    this.superseded.set(index, loc);
  }

  /** Segments none of whose records is the newest of its block any more (not being merged). */
  dead(): Segment[] {
    return this.segments.filter((s) => this.live.get(s) === 0 && !this.retired.has(s));
  }

  /** Marks a segment merged (its newest records are in the block objects, synced). */
  retire(seg: Segment): void {
    this.retired.add(seg);
  }

  /** Drops a merged and deleted segment and the entries still pointing at its records. */
  remove(seg: Segment): void {
    this.retired.delete(seg);
    const at = this.segments.indexOf(seg);
    if (at < 0) return;
    this.segments.splice(at, 1);
    this.bytes -= seg.size;
    this.live.delete(seg);
    for (const rec of seg.records) {
      for (const m of [this.blocks, this.superseded, this.markers]) {
        if (m.get(rec.index)?.rec === rec) m.delete(rec.index);
      }
    }
  }

  /**
   * Reads block `index` (or `range` of its encoded bytes) through the log: its record, nothing
   * for a tombstone, else the block object at `objectKey`. A record whose segment was merged
   * and deleted meanwhile is looked up again (the block object then holds it). A segment gone
   * without this process merging it (another process holds the lease and merged it) is looked
   * up in the index `reload` rebuilds, once; without `reload` that is an error.
   */
  async read(store: ObjectStore, index: number, objectKey: string, range: ByteRange | undefined, signal?: AbortSignal, reload?: () => Promise<LogIndex>): Promise<Uint8Array | undefined> {
    for (;;) {
      const loc = this.blocks.get(index);
      if (loc === undefined || (this.retired.has(loc.seg) && !loc.rec.tomb)) {
        const opts = range === undefined ? (signal === undefined ? {} : { signal }) : signal === undefined ? { range } : { range, signal };
        return store.tryGet(objectKey, opts);
      }
      if (loc.rec.tomb) return undefined;
      const from = range?.offset ?? 0;
      const length = Math.max(0, Math.min(range?.length ?? Infinity, loc.rec.length - from));
      if (length === 0) return Buffer.alloc(0);
      const r = { offset: loc.rec.offset + from, length };
      const got = await store.tryGet(loc.seg.key, signal === undefined ? { range: r } : { range: r, signal });
      if (got !== undefined) return got;
      if (this.blocks.get(index) === loc && !this.retired.has(loc.seg)) {
        if (reload !== undefined) return (await reload()).read(store, index, objectKey, range, signal);
        throw new StoreError('STORE_IO', `write log segment ${loc.seg.key}, which holds the newest data of block ${index}, is missing from the store`);
      }
    }
  }
}

/** A log as found in the store. */
export interface LoadedLog {
  readonly index: LogIndex;
  /** Segments of older epochs than the newest seal that it did not accept (to delete). */
  readonly rejected: readonly string[];
  /** Keys of every seal found. */
  readonly seals: readonly string[];
  /** Highest sequence number per epoch among the valid segments. */
  readonly lastSeq: ReadonlyMap<number, number>;
}

/** Reads the records of one segment from its tail; undefined if it was deleted meanwhile. */
async function readSegment(store: ObjectStore, key: string, name: string, size: number): Promise<Segment | undefined> {
  const first = Math.min(size, TAIL_READ);
  let tail = await store.tryGet(key, { range: { offset: size - first, length: first } });
  if (tail === undefined) return undefined;
  if (tail.byteLength !== first) throw new StoreError('STORE_IO', `write log segment ${key} changed size while being read (${tail.byteLength} of ${first} bytes)`);
  const need = readFooter(key, tail, size);
  if (need > first) {
    tail = await store.tryGet(key, { range: { offset: size - need, length: need } });
    if (tail === undefined) return undefined;
  }
  return { name, key, size, records: parseTrailer(key, tail, size) };
}

/**
 * Lists `log/` and rebuilds the index in key order, keeping only segments the newest seal
 * allows. A damaged segment or seal throws StoreError (its blocks would read older data).
 */
export async function loadLog(store: ObjectStore, name: string): Promise<LoadedLog> {
  const prefix = logPrefix(name);
  const segments: { key: string; name: string; epoch: number; seq: number; size: number }[] = [];
  const seals: { key: string; epoch: number }[] = [];
  for await (const info of store.list(prefix)) {
    const tail = info.key.slice(prefix.length);
    const k = parseLogName(tail);
    if (k?.kind === 'segment') segments.push({ key: info.key, name: tail, epoch: k.epoch, seq: k.seq, size: info.size });
    else if (k?.kind === 'seal') seals.push({ key: info.key, epoch: k.epoch });
  }
  const newest = seals.reduce<{ key: string; epoch: number } | undefined>((a, s) => (a === undefined || s.epoch > a.epoch ? s : a), undefined);
  let accepted = new Set<string>();
  if (newest !== undefined) {
    const bytes = await store.tryGet(newest.key);
    if (bytes === undefined) throw new StoreError('STORE_IO', `write log seal ${newest.key} vanished while the volume was opened; open it again`);
    accepted = new Set(parseSeal(newest.key, bytes));
  }
  const index = new LogIndex();
  const rejected: string[] = [];
  const lastSeq = new Map<number, number>();
  const valid = segments.filter((s) => {
    const ok = newest === undefined || s.epoch >= newest.epoch || accepted.has(s.name);
    if (!ok) rejected.push(s.key);
    return ok;
  });
  // Trailers are read a few at a time; records go into the index in key order.
  const read = await mapLimit(valid, 8, (s) => readSegment(store, s.key, s.name, s.size));
  for (let i = 0; i < valid.length; i++) {
    const seg = read[i];
    const s = valid[i] as (typeof valid)[number];
    if (seg === undefined) continue; // merged and deleted meanwhile: its blocks are in objects
    index.add(seg);
    lastSeq.set(s.epoch, Math.max(lastSeq.get(s.epoch) ?? 0, s.seq));
  }
  return { index, rejected, seals: seals.map((s) => s.key), lastSeq };
}

/** `fn` over `items` with at most `limit` running; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
