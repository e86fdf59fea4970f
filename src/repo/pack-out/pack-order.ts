/**
 * Pack reuse on clones (git's pack reuse, without bitmaps): a stored pack most of whose
 * objects are wanted is streamed in its own order, reading it sequentially; each wanted entry
 * is copied as stored (CRC32 checked against the idx), ofs-deltas get their distance
 * recomputed across skipped entries, ref-deltas stay as they are when their base is sent
 * (before or after them), and the rare wanted delta whose base is skipped is sent whole. Only packs whose accelerator says every delta base is inside qualify, so a copied
 * ref-delta always finds its base in the same output.
 * Delta chains are capped at git's pack.depth default (50), as git's pack-objects does when it
 * reuses deltas (break_delta_chains): a delta that would be deeper in the output is sent whole,
 * so the client's index-pack never walks a longer chain (fast-import packs have longer ones).
 */
import { crc32 } from 'node:zlib';
import type { ObjectId } from '../../git/hash/object-id.js';
import { decodeEntryHeader } from '../../git/pack/entry.js';
import type { AccelGraph } from '../accel/graph.js';
import type { ObjectDb } from '../object-db/object-db.js';
import type { PackHandle } from '../object-db/pack-handle.js';
import { corruptEntry } from '../object-db/entry-read.js';
import type { OutWriter } from './out-writer.js';
import { SEARCH_DEPTH_MAX } from './delta-search.js';

/** Longest delta chain sent (git's pack.depth default). */
export const OUT_DEPTH_MAX = SEARCH_DEPTH_MAX;

/** A pack is streamed in its order when at least this fraction of its objects is wanted. */
const WANTED_FRACTION_MIN = 0.25;
/** Length of a pack trailer. */
const TRAILER = 20;
/** Length of a pack header. */
const PACK_HEADER = 12;

/** One pack streamed in its own order. */
export interface OrderedPack {
  readonly pack: PackHandle;
  /** 1 where the object at that idx position is sent from this pack. */
  readonly wanted: Uint8Array;
  readonly count: number;
  /** Output offset of each idx position once written (-1: not written from this pack). */
  readonly outOffset: Float64Array;
  /** Delta chain length of each idx position in the output, once written. */
  readonly depth: Uint8Array;
  /** True when the accelerator says no chain of the pack is longer than OUT_DEPTH_MAX. */
  readonly shallowChains: boolean;
  /** The accelerator's longest chain (an upper bound of every entry's depth), when it says. */
  readonly longestChain?: number;
}

/** The packs to stream in order, and the objects left to send one by one. */
export interface PackOrderPlan {
  readonly packs: OrderedPack[];
  readonly byHandle: Map<PackHandle, OrderedPack>;
  /** Objects in the ordered packs. */
  readonly packed: number;
  readonly rest: ObjectId[];
}

/**
 * Chooses packs to stream in order (each object counted in the newest pack holding it). With
 * `byPack` (a bitmap enumeration's positions) the objects of that pack are counted from the
 * positions, not from the list.
 */
export async function planPackOrder(
  db: ObjectDb,
  objects: readonly ObjectId[],
  signal?: AbortSignal,
  known?: { readonly graph: AccelGraph; readonly at: readonly number[] },
  byPack?: { readonly graph: AccelGraph; readonly pack: number; readonly extras: number; readonly positions: Uint32Array },
): Promise<PackOrderPlan | undefined> {
  const graph = await db.graph(signal === undefined ? {} : { signal });
  if (!graph.any) return undefined;
  const n = objects.length;
  const byPositions = byPack !== undefined && byPack.graph === graph && byPack.extras + byPack.positions.length === n ? byPack : undefined;
  // Locations from the enumeration hold only if it read the same packs (same graph).
  const at = byPositions === undefined && known !== undefined && known.graph === graph && known.at.length === n ? known.at : undefined;
  const packs = db.packs;
  const marks = packs.map((p, k) => (graph.files[k]?.selfContained === true ? new Uint8Array(p.index.count) : undefined));
  const distinct = new Array<number>(packs.length).fill(0);
  // Objects looked at one by one: all of them, or those before the positions.
  const listed = byPositions === undefined ? n : byPositions.extras;
  const where = new Int32Array(listed).fill(-1);
  for (let i = 0; i < listed; i++) {
    const k = at === undefined ? -1 : at[i]!;
    const loc = k >= 0 ? { pack: Math.floor(k / 2 ** 32), pos: k % 2 ** 32 } : graph.locate(objects[i]!);
    if (loc === undefined) continue;
    const m = marks[loc.pack];
    if (m === undefined) continue;
    where[i] = loc.pack;
    if (m[loc.pos] === 0) {
      m[loc.pos] = 1;
      distinct[loc.pack]!++;
    }
  }
  const pm = byPositions === undefined ? undefined : marks[byPositions.pack];
  if (byPositions !== undefined && pm !== undefined) {
    for (const pos of byPositions.positions) {
      if (pm[pos] === 0) {
        pm[pos] = 1;
        distinct[byPositions.pack]!++;
      }
    }
  }
  const chosen = packs.map((p, k) => marks[k] !== undefined && distinct[k]! > 0 && distinct[k]! >= p.index.count * WANTED_FRACTION_MIN);
  if (!chosen.some((c) => c)) return undefined;
  const ordered: OrderedPack[] = [];
  const byHandle = new Map<PackHandle, OrderedPack>();
  let packed = 0;
  packs.forEach((pack, k) => {
    if (!chosen[k]) return;
    const chains = graph.files[k]?.longestChain;
    const o: OrderedPack = {
      pack,
      wanted: marks[k]!,
      count: distinct[k]!,
      outOffset: new Float64Array(pack.index.count).fill(-1),
      depth: new Uint8Array(pack.index.count),
      shallowChains: chains !== undefined && chains <= OUT_DEPTH_MAX,
      ...(chains === undefined ? {} : { longestChain: chains }),
    };
    ordered.push(o);
    byHandle.set(pack, o);
    packed += o.count;
  });
  const rest: ObjectId[] = [];
  const restSeen = new Set<ObjectId>();
  for (let i = 0; i < n; i++) {
    let w: number;
    if (i < listed) w = where[i]!;
    else w = pm === undefined ? -1 : byPositions!.pack;
    if (w >= 0 && chosen[w]) continue;
    const oid = objects[i]!;
    if (!restSeen.has(oid)) {
      restSeen.add(oid);
      rest.push(oid);
    }
  }
  return { packs: ordered, byHandle, packed, rest };
}

/**
 * Every entry of a self-contained pack with short chains, wanted: its entries go out as one
 * verbatim run (bytes 12 to size - 20 of the file; ofs-delta distances hold because nothing
 * is skipped), as the whole-file case does, without parsing or checking each entry. Output
 * offsets follow from the idx; depths are bounded by the pack's longest chain.
 */
async function* streamWholeEntries(
  db: ObjectDb,
  o: OrderedPack,
  offsets: Float64Array,
  positions: Uint32Array,
  writer: OutWriter,
  stats: OrderStats,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const { pack, outOffset, depth } = o;
  const n = offsets.length;
  const shift = writer.offset - PACK_HEADER;
  const chain = Math.min(o.longestChain ?? OUT_DEPTH_MAX, OUT_DEPTH_MAX);
  for (let k = 0; k < n; k++) {
    outOffset[positions[k]!] = offsets[k]! + shift;
    depth[positions[k]!] = chain;
  }
  const end = pack.record.size - TRAILER;
  let at = 0;
  for await (const chunk of db.streamPackFile(pack, signal === undefined ? {} : { signal })) {
    const from = Math.max(at, PACK_HEADER);
    const to = Math.min(at + chunk.byteLength, end);
    if (to > from) writer.addVerbatim(chunk.subarray(from - at, to - at), 0);
    at += chunk.byteLength;
    if (writer.ready) yield writer.take()!;
  }
  if (at !== pack.record.size) throw corruptEntry(pack, at, `pack has ${at} bytes, expected ${pack.record.size}`);
  writer.addVerbatim(new Uint8Array(0), n);
  stats.verbatim += n;
}

/** Counters of streamPackOrder. */
export interface OrderStats {
  verbatim: number;
  rewritten: number;
  whole: number;
  /** Of `whole`: deltas sent whole because their chain would pass OUT_DEPTH_MAX. */
  deep: number;
}

/**
 * Streams the wanted entries of `o.pack` in pack order through `writer`, filling o.outOffset.
 * Yields the writer's full chunks to send (what is left stays in the writer).
 * ValidationError('REPO_CORRUPT') on a CRC mismatch or a bad entry.
 */
export async function* streamPackOrder(
  db: ObjectDb,
  o: OrderedPack,
  writer: OutWriter,
  stats: OrderStats,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const { pack, wanted, outOffset, depth } = o;
  const index = pack.index;
  const offsets = index.offsetsSorted();
  const positions = index.positionsByOffset();
  const n = offsets.length;
  const end = pack.record.size - TRAILER;
  if (o.count === n && n > 0 && o.shallowChains && o.longestChain !== undefined) {
    yield* streamWholeEntries(db, o, offsets, positions, writer, stats, signal);
    return;
  }
  // Bytes from bufStart on that are not processed yet: `buf` once joined, plus newer chunks.
  let buf: Buffer = Buffer.alloc(0);
  let bufStart = 0;
  let parts: Buffer[] = [];
  let avail = 0;
  let k = 0;
  let read = 0;
  // Consecutive verbatim entries go out as one piece: a view of `buf` (the store hands out
  // fresh chunks and `buf` is never written to, so the view stays valid after `buf` moves on;
  // every run is handed to the writer before the next chunk is read).
  let runFrom = 0;
  let runEntries = 0;
  let runBytes = 0;
  const flush = (): void => {
    if (runEntries === 0) return;
    writer.addVerbatim(buf.subarray(runFrom - bufStart, runFrom - bufStart + runBytes), runEntries);
    runEntries = 0;
    runBytes = 0;
  };
  for await (const chunk of db.streamPackFile(pack, signal === undefined ? {} : { signal })) {
    const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    read += c.length;
    parts.push(c);
    avail += c.length;
    // Join only once the next entry is complete (a large entry spans many chunks).
    const need = k < n ? (k + 1 < n ? offsets[k + 1]! : end) : 0;
    if (k < n && need > bufStart + buf.length + avail) continue;
    buf = buf.length === 0 && parts.length === 1 ? parts[0]! : Buffer.concat([buf, ...parts]);
    parts = [];
    avail = 0;
    while (k < n) {
      const from = offsets[k]!;
      const to = k + 1 < n ? offsets[k + 1]! : end;
      if (to > bufStart + buf.length) break;
      const pos = positions[k]!;
      k++;
      if (wanted[pos] === 0) continue;
      const bytes = buf.subarray(from - bufStart, to - bufStart);
      if (crc32(bytes) !== index.crc32At(pos)) throw corruptEntry(pack, from, `CRC32 mismatch for ${index.oidAt(pos)}`);
      let h;
      try {
        h = decodeEntryHeader(bytes, 0, from);
      } catch (err) {
        throw corruptEntry(pack, from, 'bad entry header', err);
      }
      if (h === undefined) throw corruptEntry(pack, from, 'entry header is truncated');
      let baseOut = -1;
      let refBaseSent = false;
      let d = 0;
      if (h.type === 'ofs-delta') {
        const bp = index.findIndexByOffset(h.baseOffset!);
        baseOut = bp < 0 ? -1 : outOffset[bp]!;
        d = bp < 0 ? 0 : depth[bp]! + 1;
      } else if (h.type === 'ref-delta') {
        // A ref-delta may precede its base (thin bases are appended at the end of a pack):
        // the client resolves it once the whole pack is in. Such bases are whole objects.
        const bp = index.findIndex(h.baseId!);
        refBaseSent = bp >= 0 && wanted[bp] === 1;
        d = bp >= 0 && outOffset[bp]! >= 0 ? depth[bp]! + 1 : 1;
      }
      const tooDeep = d > OUT_DEPTH_MAX;
      if (tooDeep) {
        baseOut = -1;
        refBaseSent = false;
        stats.deep++;
      }
      const here = writer.offset + runBytes;
      const verbatim =
        (h.type !== 'ofs-delta' && h.type !== 'ref-delta') ||
        refBaseSent ||
        (h.type === 'ofs-delta' && baseOut >= 0 && from - h.baseOffset! === here - baseOut);
      depth[pos] = baseOut >= 0 || refBaseSent ? d : 0;
      if (verbatim) {
        // Whole objects, ref-deltas whose base is sent, ofs-deltas whose distance is unchanged.
        if (runEntries > 0 && runFrom + runBytes !== from) {
          // An entry was skipped: the run is not contiguous any more.
          flush();
          if (writer.ready) yield writer.take()!;
        }
        outOffset[pos] = writer.offset + runBytes;
        if (runEntries === 0) runFrom = from;
        runEntries++;
        runBytes += bytes.length;
        stats.verbatim++;
        continue;
      }
      flush();
      outOffset[pos] = writer.offset;
      if (baseOut >= 0) {
        stats.rewritten++;
        writer.addRaw({ type: 'ofs-delta', size: h.size, baseOutputOffset: baseOut }, bytes.subarray(h.headerLength));
      } else {
        stats.whole++;
        const obj = await db.readAt({ pack, offset: from, position: pos }, signal === undefined ? {} : { signal });
        writer.addObject(obj.type, obj.data);
      }
      if (writer.ready) yield writer.take()!;
    }
    flush();
    if (writer.ready) yield writer.take()!;
    // Keep only the bytes of entries not processed yet.
    const keepFrom = k < n ? offsets[k]! : end;
    buf = buf.subarray(Math.min(buf.length, Math.max(0, keepFrom - bufStart)));
    bufStart = Math.max(bufStart, keepFrom);
  }
  if (k < n || read !== pack.record.size) throw corruptEntry(pack, read, `pack has ${read} bytes, expected ${pack.record.size}`);
}
