/**
 * The object walk of git's bitmap traversal (pack-bitmap.c find_objects), over one bitmapped
 * pack P and the accelerators of every pack: the set of objects reachable from some roots, as
 * a bit per object of P (in P's pack order) plus a list of the objects outside P. Commits are
 * walked newest first; a commit of P that has a stored set ORs it in and its ancestry is not
 * walked; a commit already in the set (or in `exclude`, the client's side computed the same
 * way) stops the walk there. Then the trees of the walked commits are walked, skipping every
 * object already in the set or in `exclude`: a tree in either has its whole subtree there.
 * Objects in packs newer than P (pushes since the bitmaps were written) are found this way too,
 * so bitmaps that predate refs or packs only make the walk longer, never the answer different.
 */
import { NotFoundError, ValidationError, hasCode } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { PackIndex } from '../../git/pack/idx.js';
import type { AccelGraph } from '../accel/graph.js';
import { NONE, EXT_BIT } from '../accel/format.js';
import { nameMeta } from '../accel/tree-diff.js';
import type { BitmapView } from '../object-db/bitmap-load.js';
import type { CommitLinks } from '../repository.js';
import { DateQueue } from './date-queue.js';
import { OidSet } from './oid-set.js';
import type { WalkSource } from './source.js';
import { readTreeEntry, type TreeEntrySlots } from './tree-entry.js';
import { pathHash } from './tree-walk.js';

/** Yield to the event loop and check the signal every this many trees or commits. */
const CHECK_EVERY = 512;

/** Where a reach walk starts. Tags are peeled by the caller (which adds tag objects as `others`). */
export interface ReachRoots {
  readonly commits: readonly ObjectId[];
  readonly trees: readonly ObjectId[];
  /** Blobs and tag objects, added as they are. */
  readonly others: readonly ObjectId[];
}

/** What reach() walks over: the db's graph, the bitmapped pack P and its stored sets. */
export interface ReachView {
  readonly graph: AccelGraph;
  /** Number of P in the graph. */
  readonly pack: number;
  /** Bit (pack order rank) of each idx position of P. */
  readonly rank: Uint32Array;
  /** ORs the stored set of the commit at idx position `pos` of P into `target`; false when it has none. */
  readonly lookup: (pos: number, target: Uint32Array) => boolean;
}

/** The reach view of a pack's loaded bitmaps. */
export function reachViewOf(view: BitmapView): ReachView {
  const file = view.file;
  return {
    graph: view.graph,
    pack: view.pack,
    rank: view.rank,
    lookup: (pos, target) => {
      const e = file.entryOf(pos);
      if (e < 0) return false;
      file.orInto(e, target);
      return true;
    },
  };
}

/** Options of reach(). */
export interface ReachOptions {
  /** Objects the walk does not enter (the client's side): the answer is disjoint from it except for stored sets. */
  readonly exclude?: ReachSet | undefined;
  /** Absent objects are skipped (the have side, git's parse gently) instead of OBJ_MISSING. */
  readonly gently?: boolean;
  /** Record path hashes of the objects the walk meets (for pack-out's delta search). */
  readonly paths?: boolean;
  readonly signal?: AbortSignal | undefined;
}

/** A set of objects: bits over P plus the objects outside P. */
export class ReachSet {
  /** One bit per object of P, in pack order (bit k is idx position view.order[k]). */
  readonly bits: Uint32Array;
  /** Objects outside P, and the same in discovery order with their path hashes. */
  readonly extra = new OidSet(64);
  readonly extraList: ObjectId[] = [];
  readonly extraNames: number[] = [];
  /** Path hashes of objects of P the walk met (bit -> hash), when asked for. */
  readonly names = new Map<number, number>();
  /** Commits the walk visited (no stored set covered them), in walk order. */
  readonly walked: { readonly oid: ObjectId; readonly links: CommitLinks }[] = [];

  constructor(words: number) {
    this.bits = new Uint32Array(words);
  }
}

function testBit(bits: Uint32Array, k: number): boolean {
  return ((bits[k >>> 5]! >>> (k & 31)) & 1) !== 0;
}

/** A tree being read: accelerator entries of pack `pack` ([ref, meta] or [index, ref, meta]) or inflated bytes. */
interface Frame {
  readonly pack: number;
  readonly list: Uint32Array | undefined;
  readonly stride: number;
  pos: number;
  readonly end: number;
  readonly data: Buffer | undefined;
  readonly hash: number | undefined;
}

/**
 * The objects reachable from `roots` that are not in `opts.exclude`'s walk (see the module doc).
 * Stored sets ORed in may hold excluded objects: callers subtract `exclude.bits` at the end.
 * NotFoundError('OBJ_MISSING') for an absent object unless `gently`.
 */
export async function reach(view: ReachView, src: WalkSource, roots: ReachRoots, opts: ReachOptions = {}): Promise<ReachSet> {
  const { graph, rank } = view;
  const p = view.pack;
  const idxP: PackIndex = graph.indexes[p]!;
  const fileP = graph.files[p];
  const set = new ReachSet(Math.ceil(rank.length / 32));
  const bits = set.bits;
  const ex = opts.exclude;
  const exBits = ex?.bits;
  const gently = opts.gently === true;
  const paths = opts.paths === true;
  const signal = opts.signal;
  const lookup = view.lookup;
  let ticks = 0;
  const tick = async (): Promise<void> => {
    if (++ticks % CHECK_EVERY === 0) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };

  /** True if the object at idx position `pos` of P is in the set or excluded. */
  const hasP = (pos: number): boolean => {
    const k = rank[pos]!;
    return testBit(bits, k) || (exBits !== undefined && testBit(exBits, k));
  };
  const setP = (pos: number, hash: number): void => {
    const k = rank[pos]!;
    bits[k >>> 5]! |= 1 << (k & 31);
    if (paths && hash !== 0) set.names.set(k, hash);
  };
  const hasExtra = (oid: ObjectId): boolean => set.extra.has(oid) || (ex !== undefined && ex.extra.has(oid));
  const addExtra = (oid: ObjectId, hash: number): void => {
    set.extra.add(oid);
    set.extraList.push(oid);
    set.extraNames.push(hash);
  };
  /** Adds an object; false when it was there already (or excluded). */
  const add = (oid: ObjectId, pos: number, hash: number): boolean => {
    if (pos >= 0) {
      if (hasP(pos)) return false;
      setP(pos, hash);
      return true;
    }
    if (hasExtra(oid)) return false;
    addExtra(oid, hash);
    return true;
  };

  const linksOf = async (oid: ObjectId): Promise<CommitLinks | undefined> => {
    const known = graph.commitLinks(oid);
    if (known !== undefined) return known;
    try {
      return await src.commitLinks(oid);
    } catch (err) {
      if (gently && (hasCode(err, 'OBJ_MISSING') || hasCode(err, 'OBJ_BAD_TYPE'))) return undefined;
      throw err;
    }
  };

  // Commits, newest first.
  const queue = new DateQueue();
  const queued = new Map<ObjectId, CommitLinks>();
  const enqueue = async (oid: ObjectId, child: ObjectId | undefined): Promise<void> => {
    if (queued.has(oid)) return;
    const pos = idxP.findIndex(oid);
    if (pos >= 0 ? hasP(pos) : hasExtra(oid)) return;
    const l = await linksOf(oid);
    if (l === undefined) {
      if (gently) return;
      throw new NotFoundError('OBJ_MISSING', child === undefined ? `commit ${oid} is missing` : `commit ${oid} (a parent of ${child}) is missing`);
    }
    queued.set(oid, l);
    queue.push(oid, l.committerTime);
  };
  for (const c of roots.commits) await enqueue(c, undefined);
  for (;;) {
    const oid = queue.pop();
    if (oid === undefined) break;
    await tick();
    const pos = idxP.findIndex(oid);
    if (pos >= 0) {
      if (hasP(pos)) continue;
      if (lookup(pos, bits)) continue;
      setP(pos, 0);
    } else {
      if (hasExtra(oid)) continue;
      addExtra(oid, 0);
    }
    const links = queued.get(oid)!;
    set.walked.push({ oid, links });
    for (const parent of links.parents) await enqueue(parent, oid);
  }

  /** A frame over the tree `oid` (idx position `pos` of P, or -1); undefined when absent. */
  const open = async (pos: number, oid: ObjectId | undefined, hash: number | undefined): Promise<Frame | undefined> => {
    if (pos >= 0 && fileP !== undefined && fileP.checkTree(pos)) {
      const words = fileP.words;
      const w = fileP.treeWord(pos);
      const base = words[w]!;
      const nr = words[w + 1]!;
      const na = words[w + 2]!;
      if (base === NONE) return { pack: p, list: words, stride: 2, pos: w + 3, end: w + 3 + na * 2, data: undefined, hash };
      if (hasP(base)) {
        const from = w + 3 + nr * 3;
        return { pack: p, list: words, stride: 3, pos: from, end: from + na * 3, data: undefined, hash };
      }
      const list = graph.liveEntries(p, pos, hasP);
      return { pack: p, list, stride: 3, pos: 0, end: list.length, data: undefined, hash };
    }
    const id = oid ?? idxP.oidAt(pos);
    const loc = graph.locate(id);
    if (loc !== undefined && loc.pack !== p && graph.files[loc.pack]?.checkTree(loc.pos) === true) {
      const list = graph.entries(loc.pack, loc.pos);
      return { pack: loc.pack, list, stride: 3, pos: 0, end: list.length, data: undefined, hash };
    }
    const obj = await src.tryReadObject(id);
    if (obj === undefined) return undefined;
    if (obj.type !== 'tree') throw new ValidationError('OBJ_BAD_TYPE', `object ${id} is a ${obj.type}, expected a tree`);
    const d = obj.data;
    const data = Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    return { pack: -1, list: undefined, stride: 0, pos: 0, end: data.length, data, hash };
  };

  const walkTree = async (root: ObjectId): Promise<void> => {
    const rootPos = idxP.findIndex(root);
    if (!add(root, rootPos, 0)) return;
    const first = await open(rootPos, root, undefined);
    if (first === undefined) {
      if (gently) return;
      throw new NotFoundError('OBJ_MISSING', `tree ${root} is missing`);
    }
    const stack: Frame[] = [first];
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      let descend: { pos: number; oid: ObjectId | undefined; hash: number } | undefined;
      while (f.pos < f.end) {
        let kind: number;
        let name: number;
        let pos: number;
        let oid: ObjectId | undefined;
        if (f.data === undefined) {
          const at = f.pos + f.stride - 2;
          const ref = f.list![at]!;
          const meta = f.list![at + 1]!;
          f.pos += f.stride;
          kind = meta & 3;
          if (kind === 2) continue;
          name = (meta & ~3) >>> 0;
          if (f.pack === p && (ref & EXT_BIT) === 0) {
            pos = graph.files[p]!.checkRef(ref);
            oid = undefined;
          } else {
            pos = graph.positionIn(f.pack, ref, p);
            oid = pos >= 0 ? undefined : graph.refOid(f.pack, ref);
          }
        } else {
          const e = parseEntry(f);
          kind = e.kind;
          if (kind === 2) continue;
          name = nameMeta(f.data, e.nameStart, e.nameEnd, 0);
          oid = f.data.toString('hex', e.nameEnd + 1, e.nameEnd + 21) as ObjectId;
          pos = idxP.findIndex(oid);
        }
        const hash = paths ? pathHash(f.hash, name) : 0;
        if (pos >= 0) {
          if (hasP(pos)) continue;
          setP(pos, hash);
        } else {
          const id = oid!;
          if (hasExtra(id)) continue;
          addExtra(id, hash);
        }
        if (kind === 0) {
          descend = { pos, oid, hash };
          break;
        }
      }
      if (descend === undefined) {
        stack.pop();
        continue;
      }
      await tick();
      const next = await open(descend.pos, descend.oid, descend.hash);
      if (next === undefined) {
        if (gently) continue;
        throw new NotFoundError('OBJ_MISSING', `tree ${descend.oid ?? idxP.oidAt(descend.pos)} is missing`);
      }
      stack.push(next);
    }
  };

  for (const o of roots.others) add(o, idxP.findIndex(o), 0);
  for (const t of roots.trees) await walkTree(t);
  for (const w of set.walked) await walkTree(w.links.tree);
  return set;
}

/** Parses the entry at f.pos of an inflated tree and advances. */
function parseEntry(f: Frame): TreeEntrySlots {
  const e: TreeEntrySlots = { kind: 0, nameStart: 0, nameEnd: 0 };
  f.pos = readTreeEntry(f.data!, f.pos, e);
  return e;
}

