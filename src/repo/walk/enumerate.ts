/**
 * What a fetch sends: `git rev-list --objects <wants> --not <haves>` cut at the shallow
 * boundary, plus include-tag (pack-objects add_ref_tag). Objects reachable from the haves
 * are excluded the way git does it (list-objects.c mark_edges_uninteresting): by default
 * sparsely as git's pack.useSparse (only paths where a sent tree and an uninteresting one
 * differ are visited), or with `sparse: false` by marking the trees of uninteresting parents
 * of sent commits recursively (exactly `rev-list --objects`); with a shallow boundary the
 * trees of the haves are marked whole too (--objects-edge-aggressive).
 */
import { NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { AccelGraph } from '../accel/graph.js';
import type { EnumerateRequest, ObjectHeader } from '../repository.js';
import { revWalk } from './rev-walk.js';
import type { WalkSource } from './source.js';
import { OidSet } from './oid-set.js';
import { TreeReader, collectTree, markTreeUninteresting, markTreesUninterestingSparse } from './tree-walk.js';
import { TAG_CHAIN_MAX, peelTag, tagTarget, type TagRef } from './tags.js';
import { enumerateWithBitmaps } from './bitmap-enumerate.js';

export { TAG_CHAIN_MAX, type TagRef } from './tags.js';
/** Report counting progress every this many objects. */
const PROGRESS_EVERY = 4096;

/** Objects of one pack by idx position (see Enumeration.packed). */
export interface PackedObjects {
  readonly pack: number;
  readonly extras: number;
  readonly positions: Uint32Array;
}

/** The objects to send and the client's objects at the edge (usable as thin-pack bases). */
export interface Enumeration {
  readonly objects: ObjectId[];
  /** Trees and blobs known to be on the client (marked uninteresting). */
  readonly edges: OidSet;
  /** Name hash of each object's path (0 for commits, tags and roots), parallel to `objects` (or shorter: the rest are 0). */
  readonly nameHashes: number[];
  /** Edge trees and blobs by `pathHash * 2 + kind` (0 tree, 1 blob): thin-pack delta base candidates. */
  readonly edgeByName: Map<number, ObjectId>;
  /** Parallel to `objects` where known (see PathHashes.locations), in the packs of `graph`. */
  readonly locations?: number[];
  readonly graph?: AccelGraph;
  /**
   * Set by bitmap enumerations: objects[extras..] are the objects at `positions` (idx
   * positions, in this order) of pack `pack` of `graph`; the first `extras` are elsewhere.
   * Readers can then skip the (lazy) per-object lists.
   */
  readonly packed?: PackedObjects;
}


/** Runs the enumeration; `tagRefs` are the repository's refs/tags/* (for include-tag). */
export async function enumerateObjects(
  src: WalkSource,
  req: EnumerateRequest,
  tagRefs: readonly TagRef[] = [],
): Promise<Enumeration> {
  const signal = req.signal;
  signal?.throwIfAborted();
  // Bitmaps answer reachability questions; a shallow boundary changes what is reachable.
  if ((req.shallowBoundary === undefined || req.shallowBoundary.size === 0) && src.reachBitmaps !== undefined) {
    const view = await src.reachBitmaps();
    if (view !== undefined) return enumerateWithBitmaps(src, view, req, tagRefs);
  }
  const graph = await src.accelGraph?.();
  const reader = new TreeReader(src, signal, graph);
  const header = async (oid: ObjectId): Promise<ObjectHeader | undefined> => graph?.header(oid) ?? src.tryReadHeader(oid);
  const unint = new OidSet();
  const edgeByName = new Map<number, ObjectId>();
  const progress = req.onProgress;

  // Haves: commits start the uninteresting side; tags are peeled; trees and blobs are marked.
  const haveCommits: ObjectId[] = [];
  for (const have of new Set(req.haves)) {
    let oid = have;
    for (let depth = 0; ; depth++) {
      const h = await header(oid);
      if (h === undefined) break;
      if (h.type === 'commit') haveCommits.push(oid);
      else if (h.type === 'tree') await markTreeUninteresting(reader, oid, unint);
      else unint.add(oid);
      if (h.type !== 'tag' || depth >= TAG_CHAIN_MAX) break;
      oid = await tagTarget(src, oid);
    }
  }

  // Wants: tags are sent and followed; commits start the walk; trees and blobs are pending.
  const wantCommits: ObjectId[] = [];
  const pending: { oid: ObjectId; type: 'tag' | 'tree' | 'blob' }[] = [];
  for (const want of new Set(req.wants)) {
    let oid = want;
    for (let depth = 0; ; depth++) {
      const h = await header(oid);
      if (h === undefined) throw new NotFoundError('OBJ_MISSING', `object ${oid} is missing`);
      if (h.type === 'commit') {
        wantCommits.push(oid);
        break;
      }
      pending.push({ oid, type: h.type });
      if (h.type !== 'tag') break;
      if (depth >= TAG_CHAIN_MAX) throw new ValidationError('OBJ_CORRUPT', `tag chain from ${want} is too long`);
      oid = await tagTarget(src, oid);
    }
  }

  const boundary = req.shallowBoundary;
  const walk = await revWalk(src, {
    interesting: wantCommits,
    uninteresting: haveCommits,
    ...(boundary === undefined ? {} : { boundary }),
    signal,
    graph,
    onProgress: progress === undefined ? undefined : (n) => progress('Counting objects', n, undefined),
  });
  const parentsOf = (oid: ObjectId): readonly ObjectId[] =>
    boundary !== undefined && boundary.has(oid) ? [] : (walk.links(oid)?.parents ?? []);

  // mark_edges_uninteresting: sparse as git's pack.useSparse, except with a shallow boundary
  // (--objects-edge-aggressive marks whole trees of the haves anyway).
  const aggressive = boundary !== undefined && boundary.size > 0;
  if (req.sparse !== false && !aggressive) {
    const roots = new Set<ObjectId>();
    for (const c of walk.listed) {
      const tree = walk.links(c)!.tree;
      if (walk.isUninteresting(c)) unint.add(tree);
      roots.add(tree);
      for (const p of parentsOf(c)) {
        const pl = walk.links(p);
        if (pl === undefined) continue;
        roots.add(pl.tree);
        if (walk.isUninteresting(p)) unint.add(pl.tree);
      }
    }
    await markTreesUninterestingSparse(reader, roots, unint, edgeByName);
  } else {
    for (const c of walk.listed) {
      if (walk.isUninteresting(c)) {
        await markTreeUninteresting(reader, walk.links(c)!.tree, unint, edgeByName);
        continue;
      }
      for (const p of parentsOf(c)) {
        const pl = walk.links(p);
        if (pl !== undefined && walk.isUninteresting(p)) await markTreeUninteresting(reader, pl.tree, unint, edgeByName);
      }
    }
  }
  if (aggressive) {
    for (const h of haveCommits) {
      const hl = walk.links(h);
      if (hl !== undefined) await markTreeUninteresting(reader, hl.tree, unint, edgeByName);
    }
  }

  const commits = walk.commits();
  const out: ObjectId[] = commits.slice();
  const paths = {
    listed: new Array<number>(out.length).fill(0),
    ...(reader.graph === undefined ? {} : { locations: new Array<number>(out.length).fill(-1) }),
  };
  // process_tree skips SEEN and UNINTERESTING alike: one set holds both.
  const seen = unint.clone();
  // A clone lists about every stored object: size the set once.
  if (req.haves.length === 0 && graph !== undefined) seen.reserve(graph.indexes.reduce((n, idx) => n + idx.count, 0));
  for (const c of commits) seen.add(c);
  let reported = 0;
  const report = (): void => {
    if (progress !== undefined && out.length - reported >= PROGRESS_EVERY) {
      reported = out.length;
      progress('Counting objects', out.length, undefined);
    }
  };
  for (const p of pending) {
    if (p.type === 'tree') await collectTree(reader, p.oid, seen, out, paths);
    else if (seen.add(p.oid)) {
      out.push(p.oid);
      paths.listed.push(0);
      paths.locations?.push(-1);
    }
  }
  for (const c of commits) {
    await collectTree(reader, walk.links(c)!.tree, seen, out, paths);
    report();
  }

  if (req.includeTags === true) {
    for (const ref of tagRefs) {
      if (seen.has(ref.oid)) continue;
      const peeled = ref.peeled ?? (await peelTag(src, ref.oid));
      // The target must be sent (seen also holds what the client has).
      if (peeled === undefined || !seen.has(peeled) || unint.has(peeled)) continue;
      let t: ObjectId = ref.oid;
      for (let depth = 0; depth < TAG_CHAIN_MAX && !seen.has(t); depth++) {
        const h = await header(t);
        if (h === undefined || h.type !== 'tag') break;
        seen.add(t);
        out.push(t);
        paths.listed.push(0);
        paths.locations?.push(-1);
        t = await tagTarget(src, t);
      }
    }
  }
  progress?.('Counting objects', out.length, out.length);
  return {
    objects: out,
    edges: unint,
    nameHashes: paths.listed,
    edgeByName,
    ...(paths.locations === undefined || reader.graph === undefined ? {} : { locations: paths.locations, graph: reader.graph }),
  };
}
