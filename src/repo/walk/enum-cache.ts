/**
 * Clone answers kept between requests, as a bit per stored object (git's reachability bitmaps,
 * kept in memory for the current refs): a request without haves or shallow commits asks
 * "everything reachable from these wants", which for one repository state never changes, so
 * repeated and concurrent clones of an unchanged repository skip the walk. The key holds the
 * state version (refs and packs) and the request; the value is one bit per object of each pack
 * (about 100 KiB for git.git), so many fit in a small cache.
 */
import { createHash } from 'node:crypto';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { AccelGraph } from '../accel/graph.js';
import type { ObjectDb } from '../object-db/object-db.js';
import type { EnumerateRequest } from '../repository.js';
import type { Enumeration } from './enumerate.js';
import { lazyList } from './lazy-list.js';
import { OidSet } from './oid-set.js';

/** Objects of an enumeration as a bit per position of each pack (the newest pack holding it). */
export interface ReachMasks {
  /** Cache keys of the packs, in the db's order (the masks hold only for the same packs). */
  readonly packs: readonly string[];
  readonly masks: readonly Uint8Array[];
  readonly count: number;
}

/** Bytes a ReachMasks takes (for the cache's bound). */
export function reachMasksBytes(m: ReachMasks): number {
  return 200 + m.masks.reduce((n, b) => n + b.byteLength + 64, 0);
}

/** The cache key of a clone-like request, or undefined when the request is not cacheable. */
export function enumCacheKey(repoKey: string, version: number, req: EnumerateRequest): string | undefined {
  if (req.haves.length > 0 || (req.shallowBoundary !== undefined && req.shallowBoundary.size > 0)) return undefined;
  const h = createHash('sha1');
  for (const w of [...new Set(req.wants)].sort()) h.update(w);
  return `${repoKey}:${version}:${req.includeTags === true ? 't' : '-'}:${h.digest('hex')}`;
}

/**
 * The cache key of a fetch (haves given, no shallow boundary): the state version and the
 * request's wants, haves and flags. Undefined for other requests (clones have their own cache).
 */
export function fetchCacheKey(repoKey: string, version: number, req: EnumerateRequest): string | undefined {
  if (req.haves.length === 0 || (req.shallowBoundary !== undefined && req.shallowBoundary.size > 0)) return undefined;
  const h = createHash('sha1');
  for (const w of [...new Set(req.wants)].sort()) h.update(w);
  h.update('|');
  for (const x of [...new Set(req.haves)].sort()) h.update(x);
  return `${repoKey}:${version}:${req.includeTags === true ? 't' : '-'}${req.sparse === false ? 'x' : 's'}:${h.digest('hex')}`;
}

/** Bytes an Enumeration takes, roughly (for the fetch cache's bound). */
export function enumerationBytes(e: Enumeration): number {
  return (
    400 +
    e.objects.length * 100 +
    e.nameHashes.length * 8 +
    e.edges.size * 48 +
    e.edgeByName.size * 80 +
    (e.locations?.length ?? 0) * 8 +
    (e.packed?.positions.byteLength ?? 0)
  );
}

/** The masks of an enumeration's objects; undefined if one is in no pack. */
export function toMasks(db: ObjectDb, graph: AccelGraph, e: Enumeration): ReachMasks | undefined {
  const masks = db.packs.map((p) => new Uint8Array((p.index.count + 7) >>> 3));
  const n = e.objects.length;
  const packed = e.graph === graph ? e.packed : undefined;
  if (packed !== undefined) {
    // Bitmap answers: the positions say it all; only the few objects before them are located.
    const m = masks[packed.pack]!;
    for (const pos of packed.positions) m[pos >>> 3]! |= 1 << (pos & 7);
    for (let i = 0; i < packed.extras; i++) {
      const loc = graph.locate(e.objects[i]!);
      if (loc === undefined) return undefined;
      masks[loc.pack]![loc.pos >>> 3]! |= 1 << (loc.pos & 7);
    }
    return { packs: db.packs.map((p) => p.cacheKey), masks, count: n };
  }
  const at = e.graph === graph ? e.locations : undefined;
  for (let i = 0; i < n; i++) {
    const k = at?.[i] ?? -1;
    let p: number;
    let pos: number;
    if (k >= 0) {
      p = Math.floor(k / 2 ** 32);
      pos = k % 2 ** 32;
    } else {
      const loc = graph.locate(e.objects[i]!);
      if (loc === undefined) return undefined;
      p = loc.pack;
      pos = loc.pos;
    }
    masks[p]![pos >>> 3]! |= 1 << (pos & 7);
  }
  return { packs: db.packs.map((p) => p.cacheKey), masks, count: e.objects.length };
}

/** An enumeration rebuilt from masks (objects in pack and idx order; no paths); undefined if the packs differ. */
export function fromMasks(db: ObjectDb, graph: AccelGraph, m: ReachMasks): Enumeration | undefined {
  if (m.packs.length !== db.packs.length || db.packs.some((p, k) => p.cacheKey !== m.packs[k])) return undefined;
  const whole = wholePackOf(db, m);
  if (whole !== undefined) {
    // One whole pack: pack-out sends its file, so ids are made only if something reads them.
    const index = db.packs[whole]!.index;
    const positions = new Uint32Array(index.count);
    for (let i = 0; i < positions.length; i++) positions[i] = i;
    return {
      objects: lazyList(index.count, (pos) => index.oidAt(pos)),
      edges: new OidSet(16),
      nameHashes: lazyList(index.count, () => 0),
      edgeByName: new Map(),
      locations: lazyList(index.count, (pos) => whole * 2 ** 32 + pos),
      graph,
      packed: { pack: whole, extras: 0, positions },
    };
  }
  const objects: ObjectId[] = [];
  const locations: number[] = [];
  db.packs.forEach((pack, p) => {
    const mask = m.masks[p]!;
    const n = pack.index.count;
    // One hex string of the name table, sliced per id: far cheaper than converting each id.
    let hex: string | undefined;
    for (let byte = 0; byte < mask.length; byte++) {
      const bits = mask[byte]!;
      if (bits === 0) continue;
      if (hex === undefined) {
        const first = pack.index.oidBytesAt(0);
        hex = Buffer.from(first.buffer, first.byteOffset, n * 20).toString('hex');
      }
      for (let b = 0; b < 8; b++) {
        if ((bits & (1 << b)) === 0) continue;
        const pos = byte * 8 + b;
        if (pos >= n) break;
        objects.push(hex.slice(pos * 40, pos * 40 + 40) as ObjectId);
        locations.push(p * 2 ** 32 + pos);
      }
    }
  });
  if (objects.length !== m.count) return undefined;
  return {
    objects,
    edges: new OidSet(16),
    nameHashes: new Array<number>(objects.length).fill(0),
    edgeByName: new Map(),
    locations,
    graph,
  };
}

/** The pack whose every object the masks hold, when they hold nothing else (and count each once). */
function wholePackOf(db: ObjectDb, m: ReachMasks): number | undefined {
  let found: number | undefined;
  for (let p = 0; p < m.masks.length; p++) {
    const mask = m.masks[p]!;
    const count = db.packs[p]!.index.count;
    const full = count >>> 3;
    let allZero = true;
    let allOne = true;
    for (let b = 0; b < mask.length; b++) {
      const v = mask[b]!;
      if (v !== 0) allZero = false;
      const want = b < full ? 0xff : (1 << (count % 8)) - 1;
      if (v !== want) allOne = false;
      if (!allZero && !allOne) return undefined;
    }
    if (allOne && !allZero) {
      if (found !== undefined) return undefined;
      found = p;
    } else if (!allZero) return undefined;
  }
  return found !== undefined && db.packs[found]!.index.count === m.count ? found : undefined;
}
