/**
 * A fetch's enumeration with reachability bitmaps (git's prepare_bitmap_walk): the objects
 * reachable from the wants minus those reachable from the haves, both computed by bitmap-walk
 * (stored sets ORed where the walk meets a commit that has one). This is the exact difference
 * of the two closures, as git sends with bitmaps; the walk without bitmaps subtracts only what
 * the boundary's trees hold (list-objects.c), so it may send an object that the client has
 * deeper in its history, which this never does. Tags come out as without bitmaps: annotated
 * tags named as wants are sent and followed, include-tag adds the tags whose target is sent.
 * Only for requests without a shallow boundary (callers check).
 */
import { NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { BitmapView } from '../object-db/bitmap-load.js';
import type { EnumerateRequest, ObjectHeader } from '../repository.js';
import { reach, reachViewOf, type ReachRoots } from './bitmap-walk.js';
import type { Enumeration } from './enumerate.js';
import { TAG_CHAIN_MAX, peelTag, tagTarget, type TagRef } from './tags.js';
import { lazyList } from './lazy-list.js';
import { OidSet } from './oid-set.js';
import type { WalkSource } from './source.js';
import { markEdgesSparse } from './edge-walk.js';

/** Roots of a side: tags peeled (the tag objects themselves are roots too). */
async function rootsOf(
  oids: readonly ObjectId[],
  header: (oid: ObjectId) => Promise<ObjectHeader | undefined>,
  src: WalkSource,
  wants: boolean,
): Promise<ReachRoots> {
  const commits: ObjectId[] = [];
  const trees: ObjectId[] = [];
  const others: ObjectId[] = [];
  for (const start of new Set(oids)) {
    let oid = start;
    for (let depth = 0; ; depth++) {
      const h = await header(oid);
      if (h === undefined) {
        if (wants) throw new NotFoundError('OBJ_MISSING', `object ${oid} is missing`);
        break;
      }
      if (h.type === 'commit') commits.push(oid);
      else if (h.type === 'tree') trees.push(oid);
      else others.push(oid);
      if (h.type !== 'tag') break;
      if (depth >= TAG_CHAIN_MAX) {
        if (wants) throw new ValidationError('OBJ_CORRUPT', `tag chain from ${start} is too long`);
        break;
      }
      oid = await tagTarget(src, oid);
    }
  }
  return { commits, trees, others };
}

/** Where a tag ref stands in a bitmapped pack: its bit (-1: not in the pack) and its peeled target's. */
interface TagPosition {
  readonly rank: number;
  /** What the tag peels to; undefined for a lightweight tag (not a tag object). */
  readonly peeled: ObjectId | undefined;
  readonly peeledRank: number;
}

/** Tag positions remembered per bitmapped pack at most (cleared when full). */
const TAG_MEMO_MAX = 65_536;
/**
 * Tag positions per bitmap file (shared by every db of the repository that uses the same
 * bitmapped pack, while the cache keeps it), by tag object id: objects never change, so
 * neither do their targets or bits. Every include-tag fetch tests every tag ref; looking each
 * up in the pack index by hex cost about 4 ms per fetch on git.git's 1,008 tags, and both the
 * refs' state and the db (hence anything memoised on them) change with every push.
 */
const tagMemos = new WeakMap<BitmapView['file'], Map<ObjectId, TagPosition>>();

function tagMemo(view: BitmapView): Map<ObjectId, TagPosition> {
  let m = tagMemos.get(view.file);
  if (m === undefined) {
    m = new Map();
    tagMemos.set(view.file, m);
  }
  return m;
}

/** The bit of `oid` in the view's pack, or -1 when the pack does not hold it. */
function rankIn(view: BitmapView, oid: ObjectId): number {
  const pos = view.graph.indexes[view.pack]!.findIndex(oid);
  return pos >= 0 ? view.rank[pos]! : -1;
}

/** Runs the enumeration over `view` (see the module doc); `tagRefs` are refs/tags/* for include-tag. */
export async function enumerateWithBitmaps(src: WalkSource, view: BitmapView, req: EnumerateRequest, tagRefs: readonly TagRef[]): Promise<Enumeration> {
  const signal = req.signal;
  signal?.throwIfAborted();
  const graph = view.graph;
  const idxP = graph.indexes[view.pack]!;
  const header = async (oid: ObjectId): Promise<ObjectHeader | undefined> => graph.header(oid) ?? src.tryReadHeader(oid);
  const progress = req.onProgress;

  const haveRoots = await rootsOf(req.haves, header, src, false);
  const empty = haveRoots.commits.length + haveRoots.trees.length + haveRoots.others.length === 0;
  const rv = reachViewOf(view);
  const excl = empty ? undefined : await reach(rv, src, haveRoots, { gently: true, signal });
  const wantRoots = await rootsOf(req.wants, header, src, true);
  const res = await reach(rv, src, wantRoots, { exclude: excl, paths: true, signal });

  // Stored sets ORed in may cover what the client has: subtract its closure.
  const bits = res.bits;
  if (excl !== undefined) for (let k = 0; k < bits.length; k++) bits[k] = (bits[k]! & ~excl.bits[k]!) >>> 0;
  const inSent = (oid: ObjectId): boolean => {
    const pos = idxP.findIndex(oid);
    if (pos >= 0) return ((bits[view.rank[pos]! >>> 5]! >>> (view.rank[pos]! & 31)) & 1) !== 0;
    return res.extra.has(oid);
  };
  const inExcl = (oid: ObjectId): boolean => {
    if (excl === undefined) return false;
    const pos = idxP.findIndex(oid);
    if (pos >= 0) return ((excl.bits[view.rank[pos]! >>> 5]! >>> (view.rank[pos]! & 31)) & 1) !== 0;
    return excl.extra.has(oid);
  };

  // The client's trees and blobs at the boundary (thin-pack delta bases): the paths where a
  // sent commit differs from a parent the client has (edge-walk.ts).
  const edges = new OidSet(16);
  const edgeByName = new Map<number, ObjectId>();
  if (excl !== undefined) {
    const done = new Set<string>();
    for (const w of res.walked) {
      for (const parent of w.links.parents) {
        if (!inExcl(parent)) continue;
        const pl = graph.commitLinks(parent) ?? (await src.commitLinks(parent));
        const pair = `${w.links.tree}:${pl.tree}`;
        if (done.has(pair)) continue;
        done.add(pair);
        await markEdgesSparse(graph, src, w.links.tree, pl.tree, edges, edgeByName, signal);
      }
    }
  }

  // include-tag: annotated tags whose target is sent (they come from outside the sets).
  const tags: ObjectId[] = [];
  if (req.includeTags === true) {
    const added = new Set<ObjectId>();
    const memo = tagMemo(view);
    const bit = (set: Uint32Array, r: number): boolean => ((set[r >>> 5]! >>> (r & 31)) & 1) !== 0;
    for (const ref of tagRefs) {
      if (added.has(ref.oid)) continue;
      let tp = memo.get(ref.oid);
      if (tp === undefined) {
        const peeled = ref.peeled ?? (await peelTag(src, ref.oid));
        tp = { rank: rankIn(view, ref.oid), peeled, peeledRank: peeled === undefined ? -1 : rankIn(view, peeled) };
        if (memo.size >= TAG_MEMO_MAX) memo.clear();
        memo.set(ref.oid, tp);
      }
      if (tp.peeled === undefined) continue;
      if (tp.rank >= 0 ? bit(bits, tp.rank) || (excl !== undefined && bit(excl.bits, tp.rank)) : res.extra.has(ref.oid) || excl?.extra.has(ref.oid) === true) continue;
      if (!(tp.peeledRank >= 0 ? bit(bits, tp.peeledRank) : res.extra.has(tp.peeled))) continue;
      let t: ObjectId = ref.oid;
      for (let depth = 0; depth < TAG_CHAIN_MAX && !added.has(t) && !inSent(t) && !inExcl(t); depth++) {
        const h = await header(t);
        if (h === undefined || h.type !== 'tag') break;
        added.add(t);
        tags.push(t);
        t = await tagTarget(src, t);
      }
    }
  }

  // Objects outside P first (commits of newer packs lead, tags last), then P's in pack order.
  const extras = res.extraList.length + tags.length;
  let inP = 0;
  for (let w = 0; w < bits.length; w++) inP += popcount(bits[w]!);
  // P's objects the walk met (they have path names, for pack-out's delta search) lead, the
  // rest follow in pack order; name hashes are listed for the named ones only.
  const names = res.names;
  const positions = new Uint32Array(inP);
  const order = view.order;
  const nameHashes: number[] = res.extraNames.slice();
  for (let i = 0; i < tags.length; i++) nameHashes.push(0);
  let j = 0;
  for (const [k, hash] of names) {
    if (((bits[k >>> 5]! >>> (k & 31)) & 1) === 0) continue;
    positions[j++] = order[k]!;
    nameHashes.push(hash);
  }
  const named = j;
  for (let w = 0; w < bits.length; w++) {
    let word = bits[w]!;
    while (word !== 0) {
      const b = 31 - Math.clz32(word & -word);
      word = (word & (word - 1)) >>> 0;
      const k = w * 32 + b;
      if (named > 0 && names.has(k)) continue;
      positions[j++] = order[k]!;
    }
  }
  const total = extras + inP;
  const extraAt = (i: number): ObjectId => (i < res.extraList.length ? res.extraList[i]! : tags[i - res.extraList.length]!);
  // Ids are made when read: a clone's list is read by nobody when pack-out sends P whole. Many
  // ids come from one hex string of P's names (slicing is cheap); a few are converted each.
  const many = inP > order.length / 16;
  const idAt = (pos: number): ObjectId => (many ? (view.hexNames().slice(pos * 40, pos * 40 + 40) as ObjectId) : idxP.oidAt(pos));
  const out = lazyList(total, (i) => (i < extras ? extraAt(i) : idAt(positions[i - extras]!)));
  const base = view.pack * 2 ** 32;
  const locations = lazyList(total, (i) => (i < extras ? -1 : base + positions[i - extras]!));
  progress?.('Counting objects', total, total);
  return {
    objects: out,
    edges,
    nameHashes,
    edgeByName,
    locations,
    graph,
    packed: { pack: view.pack, extras, positions },
  };
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
