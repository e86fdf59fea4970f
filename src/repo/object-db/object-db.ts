/**
 * A read-only object database over the packs of one repository state. Objects are found by
 * the packs' indexes (newest pack first), read by ranged gets through the shared block
 * cache, inflated, and delta chains are resolved iteratively (ofs and ref deltas, depth
 * bounded by DELTA_CHAIN_MAX) with every resolved base kept in the shared object cache.
 */
import { crc32 } from 'node:zlib';
import { NotFoundError } from '../../core/errors.js';
import { DELTA_CHAIN_MAX } from '../../core/limits.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { applyDelta } from '../../git/pack/delta.js';
import type { EntryHeader } from '../../git/pack/entry.js';
import { OBJECT_TYPES, PACK_TYPE_CODE, type GitObject, type ObjectType } from '../../git/object/object-type.js';
import type { PackRecord } from '../../meta/meta-store.js';
import type { ObjectCacheKey } from '../cache/repo-caches.js';
import type { ObjectHeader } from '../repository.js';
import {
  corruptEntry,
  inflateEntry,
  readDeltaResultSize,
  readStoredEntry,
  readStoredHeader,
} from './entry-read.js';
import { openPacks, type PackHandle, type PackLocation } from './pack-handle.js';
import { loadAccelerator } from './accel-load.js';
import { loadBitmaps, mayHaveBitmaps, type BitmapView } from './bitmap-load.js';
import { AccelGraph } from '../accel/graph.js';

/** Where an object is stored. */
export interface ObjectLocation {
  readonly pack: PackHandle;
  readonly offset: number;
  /** Position in the pack index's name table. */
  readonly position: number;
}

/** A stored entry for verbatim reuse in an outgoing pack. */
export interface RawEntry {
  readonly oid: ObjectId;
  readonly pack: PackHandle;
  readonly offset: number;
  /** The header as stored (type, size of the inflated body, base). */
  readonly header: EntryHeader;
  /** The base object of a delta: from the ref-delta header, or the id at the ofs-delta's base offset. */
  readonly baseId?: ObjectId;
  /** The entry's zlib stream as stored (a view; do not modify). */
  readonly compressed: Uint8Array;
}

/** Options of reads. */
export interface ReadOptions {
  readonly signal?: AbortSignal;
}

/** Numeric keys (fast to hash) while pack id and offset fit 53 bits together; else a string. */
const OFFSET_SPAN = 2 ** 36;
const PACK_ID_SPAN = 2 ** 16;

/** The object cache key of the entry at `offset` of `pack`. */
function objectKey(pack: PackHandle, offset: number): ObjectCacheKey {
  return offset < OFFSET_SPAN && pack.cacheId < PACK_ID_SPAN ? pack.cacheId * OFFSET_SPAN + offset : `${pack.cacheKey}@${offset}`;
}

function isDelta(h: EntryHeader): boolean {
  return h.type === 'ofs-delta' || h.type === 'ref-delta';
}

/** Read-only view of the objects in a list of packs. Cheap to create once indexes are cached. */
export class ObjectDb {
  readonly packs: readonly PackHandle[];
  readonly #loc: PackLocation;
  #graph: Promise<AccelGraph> | undefined;
  #bitmaps: Promise<BitmapView | undefined> | undefined;

  private constructor(loc: PackLocation, packs: readonly PackHandle[]) {
    this.#loc = loc;
    this.packs = packs;
  }

  /** Opens the packs of a state (newest first, as RepoState.packs lists them). */
  static async open(loc: PackLocation, packs: readonly PackRecord[], opts: ReadOptions = {}): Promise<ObjectDb> {
    return new ObjectDb(loc, await openPacks(loc, packs, opts.signal));
  }

  /**
   * The packs' reachability accelerators as one graph (loaded once per db through the shared
   * cache; packs without a usable accelerator are read the slow way by the graph's users).
   */
  graph(opts: ReadOptions = {}): Promise<AccelGraph> {
    if (this.#graph === undefined) {
      const p = (async () => {
        const files = await Promise.all(this.packs.map((pack) => loadAccelerator(this.#loc, pack, opts.signal)));
        return new AccelGraph(this.packs.map((pack) => pack.index), files);
      })();
      this.#graph = p;
      p.catch(() => {
        if (this.#graph === p) this.#graph = undefined;
      });
    }
    return this.#graph;
  }

  /**
   * The reachability bitmaps walks may use: those of the largest pack that has a usable file
   * (one per db; git likewise uses one bitmapped pack), or undefined.
   */
  bitmapView(opts: ReadOptions = {}): Promise<BitmapView | undefined> {
    if (this.#bitmaps === undefined) {
      const p = (async (): Promise<BitmapView | undefined> => {
        const candidates = this.packs.map((pack, k) => ({ pack, k })).filter((c) => mayHaveBitmaps(c.pack));
        candidates.sort((a, b) => b.pack.index.count - a.pack.index.count || a.k - b.k);
        for (const c of candidates) {
          const loaded = await loadBitmaps(this.#loc, c.pack, opts.signal);
          if (loaded === undefined) continue;
          const graph = await this.graph(opts);
          const file = loaded.file;
          return { graph, pack: c.k, file, rank: file.rank, order: file.order, hexNames: () => loaded.hexNames() };
        }
        return undefined;
      })();
      this.#bitmaps = p;
      p.catch(() => {
        if (this.#bitmaps === p) this.#bitmaps = undefined;
      });
    }
    return this.#bitmaps;
  }

  /** The newest pack holding `oid` and the entry's offset, or undefined. */
  locate(oid: ObjectId): ObjectLocation | undefined {
    for (const pack of this.packs) {
      const i = pack.index.findIndex(oid);
      if (i >= 0) return { pack, offset: pack.index.offsetAt(i), position: i };
    }
    return undefined;
  }

  has(oid: ObjectId): boolean {
    for (const pack of this.packs) if (pack.index.findIndex(oid) >= 0) return true;
    return false;
  }

  /** Inflates an object, resolving deltas; undefined if no pack has it. */
  async tryReadObject(oid: ObjectId, opts: ReadOptions = {}): Promise<GitObject | undefined> {
    const loc = this.locate(oid);
    return loc === undefined ? undefined : this.readAt(loc, opts);
  }

  /** Like tryReadObject but throws NotFoundError('OBJ_MISSING'). */
  async readObject(oid: ObjectId, opts: ReadOptions = {}): Promise<GitObject> {
    const obj = await this.tryReadObject(oid, opts);
    if (obj === undefined) throw new NotFoundError('OBJ_MISSING', `object ${oid} is missing`);
    return obj;
  }

  /**
   * Inflates the object stored at `loc`. The result may be shared with the cache: do not
   * modify its data. Throws ValidationError('REPO_CORRUPT') for undecodable stored data.
   */
  async readAt(start: ObjectLocation, opts: ReadOptions = {}): Promise<GitObject> {
    const cache = this.#loc.caches.objects;
    const chain: { key: ObjectCacheKey; delta: Uint8Array; pack: PackHandle; offset: number }[] = [];
    let cur: ObjectLocation = start;
    let base: GitObject;
    for (;;) {
      const key = objectKey(cur.pack, cur.offset);
      const hit = cache.get(key);
      if (hit !== undefined) {
        base = hit;
        break;
      }
      const entry = await readStoredEntry(this.#loc, cur.pack, cur.offset, opts.signal);
      const data = inflateEntry(cur.pack, cur.offset, entry);
      const h = entry.header;
      if (!isDelta(h)) {
        base = { type: h.type as ObjectType, data };
        cache.set(key, base);
        break;
      }
      chain.push({ key, delta: data, pack: cur.pack, offset: cur.offset });
      if (chain.length > DELTA_CHAIN_MAX) {
        throw corruptEntry(start.pack, start.offset, `delta chain is longer than ${DELTA_CHAIN_MAX}`);
      }
      cur = this.#baseLocation(cur, h);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const link = chain[i]!;
      let data: Uint8Array;
      try {
        data = applyDelta(base.data, link.delta);
      } catch (err) {
        throw corruptEntry(link.pack, link.offset, 'delta does not apply', err);
      }
      base = { type: base.type, data };
      cache.set(link.key, base);
    }
    return base;
  }

  /**
   * Type and size of an object without inflating it where possible: a whole entry's header
   * says both; a delta's result size is in the first bytes of its body and its type is
   * its chain's base type (git's packed_object_info), remembered per pack entry once known.
   */
  async tryReadHeader(oid: ObjectId, opts: ReadOptions = {}): Promise<ObjectHeader | undefined> {
    const start = this.locate(oid);
    if (start === undefined) return undefined;
    const cached = this.#loc.caches.objects.peek(objectKey(start.pack, start.offset));
    if (cached !== undefined) return { type: cached.type, size: cached.data.byteLength };
    const first = await readStoredHeader(this.#loc, start.pack, start.offset, opts.signal);
    if (!isDelta(first.header)) return { type: first.header.type as ObjectType, size: first.header.size };
    const size = await readDeltaResultSize(this.#loc, start.pack, start.offset, first.header, first.end, opts.signal);
    return { type: await this.#chainType(start, first.header, opts.signal), size };
  }

  /** The type at the bottom of a delta chain, walking headers only; fills the per-pack type table. */
  async #chainType(start: ObjectLocation, startHeader: EntryHeader, signal: AbortSignal | undefined): Promise<ObjectType> {
    const visited: ObjectLocation[] = [];
    let cur = start;
    let h = startHeader;
    let type: ObjectType;
    for (;;) {
      const known = this.#types(cur.pack)[cur.position]!;
      if (known !== 0) {
        type = OBJECT_TYPES[known - 1]!;
        break;
      }
      if (!isDelta(h)) {
        type = h.type as ObjectType;
        break;
      }
      visited.push(cur);
      if (visited.length > DELTA_CHAIN_MAX) {
        throw corruptEntry(start.pack, start.offset, `delta chain is longer than ${DELTA_CHAIN_MAX}`);
      }
      cur = this.#baseLocation(cur, h);
      const cachedBase = this.#loc.caches.objects.peek(objectKey(cur.pack, cur.offset));
      if (cachedBase !== undefined) {
        type = cachedBase.type;
        break;
      }
      h = (await readStoredHeader(this.#loc, cur.pack, cur.offset, signal)).header;
    }
    const code = PACK_TYPE_CODE[type];
    for (const v of visited) this.#types(v.pack)[v.position] = code;
    return type;
  }

  /** Per-pack table of known object types by index position (0 = not known yet). */
  #types(pack: PackHandle): Uint8Array {
    const tables = this.#loc.caches.packTypes;
    let t = tables.get(pack.index);
    if (t === undefined) {
      t = new Uint8Array(pack.index.count);
      tables.set(pack.index, t);
    }
    return t;
  }

  /**
   * The stored entry of `oid` for verbatim reuse; undefined if absent. With `verifyCrc` the
   * entry's bytes are checked against the index's CRC32 first, as git does before reusing
   * an entry, so corruption is never propagated to a client (ValidationError('REPO_CORRUPT')).
   */
  async tryReadRawEntry(oid: ObjectId, opts: ReadOptions & { verifyCrc?: boolean } = {}): Promise<RawEntry | undefined> {
    const loc = this.locate(oid);
    if (loc === undefined) return undefined;
    const entry = await readStoredEntry(this.#loc, loc.pack, loc.offset, opts.signal);
    if (opts.verifyCrc === true) {
      if (crc32(entry.bytes) !== loc.pack.index.crc32At(loc.position)) {
        throw corruptEntry(loc.pack, loc.offset, `CRC32 mismatch for ${oid}`);
      }
    }
    const h = entry.header;
    let baseId: ObjectId | undefined;
    if (h.type === 'ref-delta') baseId = h.baseId;
    else if (h.type === 'ofs-delta') baseId = loc.pack.index.oidAt(this.#ofsBasePosition(loc.pack, loc.offset, h));
    const base = { oid, pack: loc.pack, offset: loc.offset, header: h, compressed: entry.compressed };
    return baseId === undefined ? base : { ...base, baseId };
  }

  /**
   * The bytes of a whole stored pack file, as stored (for sending a pack verbatim); with
   * `recycle`, chunks may be read into the memory of earlier ones (GetOptions.recycle).
   */
  streamPackFile(pack: PackHandle, opts: ReadOptions & { readonly recycle?: () => Promise<void> } = {}): AsyncIterable<Uint8Array> {
    return this.#loc.store.getStream(pack.key, {
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.recycle === undefined ? {} : { recycle: opts.recycle }),
    });
  }

  /** Location of a delta's base: ofs in the same pack; ref in the same pack first (git's rule), else any. */
  #baseLocation(cur: ObjectLocation, h: EntryHeader): ObjectLocation {
    if (h.type === 'ofs-delta') {
      const position = this.#ofsBasePosition(cur.pack, cur.offset, h);
      return { pack: cur.pack, offset: h.baseOffset!, position };
    }
    const baseId = h.baseId!;
    const i = cur.pack.index.findIndex(baseId);
    if (i >= 0) return { pack: cur.pack, offset: cur.pack.index.offsetAt(i), position: i };
    const other = this.locate(baseId);
    if (other === undefined) throw corruptEntry(cur.pack, cur.offset, `delta base ${baseId} is missing`);
    return other;
  }

  /** Index position of an ofs-delta's base; the base offset must start an entry of the pack. */
  #ofsBasePosition(pack: PackHandle, offset: number, h: EntryHeader): number {
    const pos = pack.index.findIndexByOffset(h.baseOffset!);
    if (pos < 0) throw corruptEntry(pack, offset, `delta base offset ${String(h.baseOffset)} is not an entry`);
    return pos;
  }
}
