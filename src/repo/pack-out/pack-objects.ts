/**
 * Streams a pack of given objects, reusing stored entries the way git's pack-objects does
 * (write_reuse_object): a whole stored entry is copied compressed, as stored; a stored delta
 * is copied too when its base is in this pack (written first: a base always precedes its
 * delta) or, for a thin pack, on the client; ofs-deltas point at the base's offset in THIS
 * output when ofs-delta was negotiated, otherwise they become ref-deltas. Anything else is
 * inflated and written whole, or as a new delta when the delta search (delta-search.ts) finds
 * a good base. Stored entries are checked against the idx CRC32 before reuse.
 * When the objects are exactly one stored pack's, that pack file is sent as it is; otherwise
 * every stored pack all of whose objects are wanted (and whose accelerator says its delta
 * bases are all inside it) is sent as one verbatim run of entries before the rest.
 */
import { NotFoundError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { ObjectType } from '../../git/object/object-type.js';
import { deflate } from '../../git/pack/inflate.js';
import type { ObjectDb, RawEntry } from '../object-db/object-db.js';
import type { PackHandle } from '../object-db/pack-handle.js';
import type { PackObjectsOptions } from '../repository.js';
import type { OidSet } from '../walk/oid-set.js';
import { DeltaSearch, type DeltaHints } from './delta-search.js';
import type { AccelGraph } from '../accel/graph.js';
import { OutWriter } from './out-writer.js';
import { ReadAhead } from './read-ahead.js';
import { OUT_DEPTH_MAX, planPackOrder, streamPackOrder } from './pack-order.js';

/** Progress is reported at most this often (in objects), and at the end. */
const PROGRESS_STEP_MIN = 256;

/** Options of packObjects beyond the contract's. */
export interface PackOutOptions extends Omit<PackObjectsOptions, 'hints'> {
  /** Output chunk size in bytes (default DEFAULT_CHUNK_SIZE, 256 KiB). */
  readonly chunkSize?: number;
  /** Send a stored pack verbatim when it holds exactly the objects (default true). */
  readonly reuseWholePack?: boolean;
  /** More objects the client has (the enumeration's edge), usable as thin-pack bases. */
  readonly edges?: OidSet;
  /** Paths of the objects and the client's, for a delta search of objects sent whole. */
  readonly hints?: DeltaHints;
  /** Where the enumeration found each object (used when `graph` is this db's graph). */
  readonly locations?: { readonly graph: AccelGraph; readonly at: readonly number[] };
  /**
   * From a bitmap enumeration: objects[extras..] are the objects at `positions` of pack `pack`
   * of `graph` (see Enumeration.packed). When `graph` is this db's, the plan reads the
   * positions instead of the list, and a list of exactly one whole pack sends its file.
   */
  readonly packed?: PackedHint;
}

/** See PackOutOptions.packed. */
export interface PackedHint {
  readonly graph: AccelGraph;
  readonly pack: number;
  readonly extras: number;
  readonly positions: Uint32Array;
}

/** Counters of one packObjects run, for tests and logs. */
export interface PackOutStats {
  /** Stored whole entries copied as stored. */
  reusedWhole: number;
  /** Stored deltas copied as stored. */
  reusedDelta: number;
  /** New deltas from the delta search. */
  deltified: number;
  /** Objects inflated and deflated again whole. */
  inflated: number;
  /** The objects were one stored pack, sent as it is. */
  wholePack: boolean;
  /** Objects sent inside verbatim runs of whole stored packs. */
  reusedPacked: number;
  /** Stored deltas sent whole because their chain would pass git's pack.depth (50). */
  deepChains: number;
}

/** Fresh counters. */
export function newPackOutStats(): PackOutStats {
  return { reusedWhole: 0, reusedDelta: 0, deltified: 0, inflated: 0, wholePack: false, reusedPacked: 0, deepChains: 0 };
}

function isDeltaEntry(raw: RawEntry): boolean {
  return raw.header.type === 'ofs-delta' || raw.header.type === 'ref-delta';
}

/** The single pack holding exactly `objects`, if any (clone of a repository with one pack). */
function exactPack(db: ObjectDb, objects: readonly ObjectId[]): PackHandle | undefined {
  for (const pack of db.packs) {
    if (pack.index.count !== objects.length) continue;
    if (objects.every((o) => pack.index.findIndex(o) >= 0)) return pack;
  }
  return undefined;
}

/**
 * Streams a complete pack (header, entries, trailer) of `objects` (duplicates are sent once).
 * NotFoundError('OBJ_MISSING') if one is absent; ValidationError('REPO_CORRUPT') if a stored
 * entry fails its CRC; the signal aborts between entries.
 */
export async function* packObjects(
  db: ObjectDb,
  objects: readonly ObjectId[],
  opts: PackOutOptions,
  stats: PackOutStats = newPackOutStats(),
): AsyncGenerator<Uint8Array> {
  const signal = opts.signal;
  /** How a whole stored pack is read: chunks may reuse memory when the caller can say it released them. */
  const whole = { ...(signal === undefined ? {} : { signal }), ...(opts.recycle === undefined ? {} : { recycle: opts.recycle }) };
  const reuse = opts.ofsDelta && opts.reuseWholePack !== false && objects.length > 0;
  const packedHint = reuse && opts.packed !== undefined && opts.packed.graph === (await db.graph(signal === undefined ? {} : { signal })) ? opts.packed : undefined;
  if (packedHint !== undefined && packedHint.extras === 0) {
    const k = packedHint.pack;
    const pack = db.packs[k];
    const chains = packedHint.graph.files[k]?.longestChain;
    if (pack !== undefined && pack.index.count === packedHint.positions.length && objects.length === pack.index.count && chains !== undefined && chains <= OUT_DEPTH_MAX) {
      // Exactly one whole pack: its file as it is, without reading the list.
      stats.wholePack = true;
      opts.onProgress?.('Writing objects', 0, objects.length);
      for await (const chunk of db.streamPackFile(pack, whole)) yield chunk;
      opts.onProgress?.('Writing objects', objects.length, objects.length);
      return;
    }
  }
  const plan = reuse ? await planPackOrder(db, objects, signal, opts.locations, packedHint) : undefined;
  const list = plan === undefined ? [...new Set(objects)] : plan.rest;
  const packed = plan === undefined ? 0 : plan.packed;
  const total = list.length + packed;
  const progress = opts.onProgress;
  const step = Math.max(PROGRESS_STEP_MIN, Math.floor(total / 100));

  // A whole pack goes out as it is only when its chains are known to be short enough.
  const planExact =
    plan !== undefined && plan.packs.length === 1 && plan.rest.length === 0 && plan.packed === plan.packs[0]!.pack.index.count && plan.packs[0]!.shallowChains;
  if (reuse && (plan === undefined || planExact)) {
    // The plan counted distinct objects per pack already: a whole pack needs no second check.
    const pack = planExact ? plan.packs[0]!.pack : exactPack(db, list);
    if (pack !== undefined) {
      stats.wholePack = true;
      progress?.('Writing objects', 0, total);
      for await (const chunk of db.streamPackFile(pack, whole)) yield chunk;
      progress?.('Writing objects', total, total);
      return;
    }
  }

  const inList = new Set(list);
  /** Output offset of a whole-pack object, or undefined. */
  const packedAt = (oid: ObjectId): number | undefined => {
    if (plan === undefined) return undefined;
    const loc = db.locate(oid);
    const o = loc === undefined ? undefined : plan.byHandle.get(loc.pack);
    if (o === undefined) return undefined;
    const at = o.outOffset[loc!.position]!;
    return at >= 0 ? at : undefined;
  };
  const inPack = {
    has: (oid: ObjectId): boolean => {
      if (inList.has(oid)) return true;
      const loc = plan === undefined ? undefined : db.locate(oid);
      return loc !== undefined && plan!.byHandle.get(loc.pack)?.wanted[loc.position] === 1;
    },
  };
  const clientHas = opts.thin ? new Set(opts.haves ?? []) : new Set<ObjectId>();
  const writtenList = new Map<ObjectId, number>();
  const written = {
    get: (oid: ObjectId): number | undefined => writtenList.get(oid) ?? packedAt(oid),
    has: (oid: ObjectId): boolean => writtenList.has(oid) || packedAt(oid) !== undefined,
    set: (oid: ObjectId, at: number): void => void writtenList.set(oid, at),
    get size(): number {
      return writtenList.size + stats.reusedPacked;
    },
  };
  /** Delta chain length in the output of objects written as deltas (absent: whole). */
  const depthList = new Map<ObjectId, number>();
  const depthOf = (oid: ObjectId): number => {
    const d = depthList.get(oid);
    if (d !== undefined || plan === undefined) return d ?? 0;
    const loc = db.locate(oid);
    const o = loc === undefined ? undefined : plan.byHandle.get(loc.pack);
    return o === undefined ? 0 : o.depth[loc!.position]!;
  };
  const waiting = new Set<ObjectId>();
  const ahead = new ReadAhead(db, signal);
  const writer = new OutWriter(total, opts.chunkSize);

  const search = opts.hints === undefined || list.length === 0 ? undefined : new DeltaSearch(objects, opts.hints, opts.thin, plan === undefined ? undefined : inList);
  const typeOf = new Map<ObjectId, ObjectType>();
  const readOpt = signal === undefined ? {} : { signal };

  /** Writes `oid` as a new delta against a candidate base, if one is worth it. */
  const deltify = async (oid: ObjectId, type: ObjectType, data: Uint8Array | undefined, edgeOnly: boolean): Promise<boolean> => {
    for (const c of search!.candidates(oid, type)) {
      if (edgeOnly && c.inPack) continue;
      const depth = c.inPack ? depthOf(c.oid) + 1 : 1;
      if (depth > OUT_DEPTH_MAX) continue;
      const base = await db.tryReadObject(c.oid, readOpt);
      if (base === undefined || base.type !== type) continue;
      const target = data ?? (await db.readObject(oid, readOpt)).data;
      data = target;
      const delta = search!.tryDelta(base.data, target);
      if (delta === undefined) continue;
      stats.deltified++;
      search!.written(oid, type, c.oid);
      typeOf.set(oid, type);
      const baseAt = written.get(c.oid);
      depthList.set(oid, depth);
      const body = deflate(delta);
      if (c.inPack && opts.ofsDelta && baseAt !== undefined) writer.addRaw({ type: 'ofs-delta', size: delta.length, baseOutputOffset: baseAt }, body);
      else writer.addRaw({ type: 'ref-delta', size: delta.length, baseId: c.oid }, body);
      return true;
    }
    return false;
  };

  /** Writes `oid` into the output. */
  const write = async (oid: ObjectId, raw: RawEntry): Promise<void> => {
    const h = raw.header;
    if (!isDeltaEntry(raw)) {
      const type = h.type as ObjectType;
      // A stored whole object is sent as stored, unless the client holds an older version
      // of it (a thin fetch of new files): then a delta against that is tried.
      if (search !== undefined && opts.thin && search.wants(type, h.size)) {
        if (await deltify(oid, type, undefined, true)) return;
      }
      stats.reusedWhole++;
      search?.written(oid, type);
      typeOf.set(oid, type);
      writer.addRaw({ type: h.type, size: h.size }, raw.compressed);
      return;
    }
    const base = raw.baseId!;
    const baseAt = written.get(base);
    const depth = baseAt === undefined ? 1 : depthOf(base) + 1;
    if (depth > OUT_DEPTH_MAX) stats.deepChains++;
    else if (baseAt !== undefined) {
      depthList.set(oid, depth);
      stats.reusedDelta++;
      const type = typeOf.get(base);
      if (type !== undefined) typeOf.set(oid, type);
      search?.written(oid, type, base);
      if (opts.ofsDelta) writer.addRaw({ type: 'ofs-delta', size: h.size, baseOutputOffset: baseAt }, raw.compressed);
      else writer.addRaw({ type: 'ref-delta', size: h.size, baseId: base }, raw.compressed);
      return;
    } else if (opts.thin && !inPack.has(base) && (clientHas.has(base) || opts.edges?.has(base) === true)) {
      depthList.set(oid, 1);
      stats.reusedDelta++;
      writer.addRaw({ type: 'ref-delta', size: h.size, baseId: base }, raw.compressed);
      return;
    }
    const obj = await db.readObject(oid, readOpt);
    if (search !== undefined && search.wants(obj.type, obj.data.length)) {
      if (await deltify(oid, obj.type, obj.data, false)) return;
    }
    stats.inflated++;
    search?.written(oid, obj.type);
    typeOf.set(oid, obj.type);
    writer.addObject(obj.type, obj.data);
  };

  writer.header();
  progress?.('Writing objects', 0, total);
  if (plan !== undefined) {
    const order = { verbatim: 0, rewritten: 0, whole: 0, deep: 0 };
    for (const o of plan.packs) {
      yield* streamPackOrder(db, o, writer, order, signal);
      stats.reusedPacked += o.count;
      progress?.('Writing objects', stats.reusedPacked, total);
    }
    stats.reusedDelta += order.rewritten;
    stats.inflated += order.whole;
    stats.deepChains += order.deep;
  }
  const pendingRaw = new Map<ObjectId, RawEntry>();
  for (let i = 0; i < list.length; i++) {
    signal?.throwIfAborted();
    ahead.fill(list, i + 1, (oid) => written.has(oid));
    const first = list[i]!;
    if (written.has(first)) {
      // Written earlier as a base: drop any read-ahead of it.
      ahead.drop(first);
      continue;
    }
    // Depth-first: a delta whose base is in this pack but not yet written waits for it.
    const stack: ObjectId[] = [first];
    while (stack.length > 0) {
      const oid = stack[stack.length - 1]!;
      if (written.has(oid)) {
        stack.pop();
        continue;
      }
      let raw = pendingRaw.get(oid);
      if (raw === undefined) {
        raw = await ahead.take(oid);
        if (raw === undefined) throw new NotFoundError('OBJ_MISSING', `object ${oid} is missing`);
      }
      const base = raw.baseId;
      if (base !== undefined && inPack.has(base) && !written.has(base) && !waiting.has(base)) {
        waiting.add(oid);
        pendingRaw.set(oid, raw);
        stack.push(base);
        continue;
      }
      stack.pop();
      waiting.delete(oid);
      pendingRaw.delete(oid);
      const offset = writer.offset;
      await write(oid, raw);
      written.set(oid, offset);
      if (written.size % step === 0) progress?.('Writing objects', written.size, total);
      // Backpressure: the consumer pulls the next chunk only once it sent this one.
      if (writer.ready) yield writer.take()!;
    }
  }
  writer.finish();
  yield writer.take()!;
  progress?.('Writing objects', total, total);
}
