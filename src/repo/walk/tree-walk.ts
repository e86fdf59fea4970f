/**
 * Tree traversals of `rev-list --objects` (list-objects.c): pre-order, entries in tree order,
 * gitlinks (mode 160000) never followed. This is the hot loop of counting (a clone of a
 * large repository scans tens of millions of entries), so entries are parsed in place and
 * tested against raw-id sets: an entry already seen costs a parse and a hash probe, no
 * allocation. Entry validation is git's decode_tree_entry (as forEachTreeEntry).
 *
 * With reachability accelerators (accel/), a recorded tree is read from its record instead of
 * being inflated, and a tree whose base tree is already seen yields only the entries it adds:
 * everything it shares with the base is, or will be, reached through the base (whatever is
 * in a seen set has its whole subtree in it by the end of the walk). So a walk touches each
 * new object about once instead of every entry of every tree.
 */
import { NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { AccelGraph, GraphLocation } from '../accel/graph.js';
import { EXT_BIT, NONE } from '../accel/format.js';
import { nameMeta } from '../accel/tree-diff.js';
import type { OidSet } from './oid-set.js';
import { readTreeEntry, type TreeEntrySlots } from './tree-entry.js';
import type { WalkSource } from './source.js';

/** Check the signal and yield to the event loop every this many trees. */
const CHECK_EVERY = 512;

/** Reads trees for a walk. One instance per walk. */
export class TreeReader {
  readonly #src: WalkSource;
  readonly #signal: AbortSignal | undefined;
  /** Accelerators of the repository's packs, when any. */
  readonly graph: AccelGraph | undefined;
  #reads = 0;

  constructor(src: WalkSource, signal?: AbortSignal, graph?: AccelGraph) {
    this.#src = src;
    this.#signal = signal;
    this.graph = graph?.any === true ? graph : undefined;
  }

  /** Counts a tree; true every CHECK_EVERY trees, when the walk should call pause(). */
  tick(): boolean {
    return ++this.#reads % CHECK_EVERY === 0;
  }

  /** Checks the signal and yields to the event loop. */
  async pause(): Promise<void> {
    this.#signal?.throwIfAborted();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** The bytes of a tree; undefined if absent; ValidationError('OBJ_BAD_TYPE') if not a tree. */
  async read(oid: ObjectId): Promise<Buffer | undefined> {
    if (this.tick()) await this.pause();
    const obj = await this.#src.tryReadObject(oid);
    if (obj === undefined) return undefined;
    if (obj.type !== 'tree') throw new ValidationError('OBJ_BAD_TYPE', `object ${oid} is a ${obj.type}, expected a tree`);
    const d = obj.data;
    return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  }
}

/** A tree being scanned from its bytes. */
interface BytesFrame {
  readonly accel: false;
  readonly data: Buffer;
  pos: number;
  /** pathHash of the tree's path; undefined for a root (entries' paths are their names). */
  readonly hash: number | undefined;
}

/** A recorded tree being scanned from its accelerator: list[pos, end) of [ref, meta] or [index, ref, meta] words. */
interface AccelFrame {
  readonly accel: true;
  readonly pack: number;
  readonly list: Uint32Array;
  readonly stride: number;
  pos: number;
  readonly end: number;
  readonly hash: number | undefined;
}

type Frame = BytesFrame | AccelFrame;

/** Result slots of nextEntry (reused; the walk is sequential within one call). */
interface Cursor {
  /** The entry's raw id is bytes[oid, oid + 20). */
  bytes: Uint8Array;
  oid: number;
  /** 0 tree, 1 blob, 2 gitlink. */
  kind: number;
  /** Name hash of the entry alone (low two bits clear). */
  name: number;
  /** Accelerated frames: the entry's ref in its pack's accelerator. */
  ref: number;
}

/** Where a walk records the path of each object it lists (for delta search in pack-out). */
export interface PathHashes {
  /** Name hash of each object appended to `out`, in the same order. */
  readonly listed: number[];
  /**
   * Where each appended object is, when an accelerator said so: pack number (of the graph)
   * times 2^32 plus idx position; -1 when not known. Saves pack-out a lookup per object.
   */
  readonly locations?: number[];
}

/**
 * The path hash of an entry: its name's hash (git's pack_name_hash of the name, as the
 * accelerator stores it) mixed with its parent's path hash, so the same path always gets the
 * same value whether its tree was inflated or read from an accelerator.
 */
export function pathHash(parent: number | undefined, name: number): number {
  return parent === undefined ? name : (Math.imul(parent ^ 0x2f, 0x9e3779b1) ^ name) >>> 0;
}

/** Parses the entry at f.pos into `c` and advances f.pos. */
function parseEntry(f: BytesFrame, c: Cursor): void {
  f.pos = readTreeEntry(f.data, f.pos, SLOTS);
  c.kind = SLOTS.kind;
  c.bytes = f.data;
  c.oid = SLOTS.nameEnd + 1;
  c.name = nameMeta(f.data, SLOTS.nameStart, SLOTS.nameEnd, 0);
}

/** Result slots of readTreeEntry (reused: parsing is synchronous). */
const SLOTS: TreeEntrySlots = { kind: 0, nameStart: 0, nameEnd: 0 };

/** Reads the next entry of frame f into c; false at the end. */
function nextEntry(graph: AccelGraph | undefined, f: Frame, c: Cursor): boolean {
  if (!f.accel) {
    if (f.pos >= f.data.length) return false;
    parseEntry(f, c);
    return true;
  }
  if (f.pos >= f.end) return false;
  const at = f.pos + f.stride - 2;
  const ref = f.list[at]!;
  const meta = f.list[at + 1]!;
  f.pos += f.stride;
  c.kind = meta & 3;
  c.name = (meta & ~3) >>> 0;
  c.ref = ref;
  c.bytes = graph!.refBytes(f.pack, ref);
  c.oid = graph!.rawOffset(f.pack, ref);
  return true;
}

function hexAt(data: Uint8Array, off: number): ObjectId {
  // Tree bytes, idx name tables and EXT sections are Buffers: no view per id.
  return (Buffer.isBuffer(data) ? data.toString('hex', off, off + 20) : Buffer.from(data.buffer, data.byteOffset + off, 20).toString('hex')) as ObjectId;
}

/** Where the tree an entry names has a record, for accelerated frames (undefined: inflate it). */
function childLocation(graph: AccelGraph | undefined, f: Frame, c: Cursor): GraphLocation | undefined {
  if (graph === undefined) return undefined;
  if (f.accel) return graph.treeLocation(f.pack, c.ref);
  return undefined;
}

/**
 * A frame for a tree from its record (only the added entries when its base is in `seen`, or
 * what other seen neighbours leave uncovered); undefined when it has no record. Synchronous:
 * walks must not pay an await per tree.
 */
function openRecorded(reader: TreeReader, oid: ObjectId, loc: GraphLocation | undefined, hash: number | undefined, seen: Pick<OidSet, 'hasRaw'>): AccelFrame | undefined {
  const graph = reader.graph;
  if (graph !== undefined) {
    const at = loc ?? locateRecorded(graph, oid);
    if (at !== undefined) {
      const p = at.pack;
      const file = graph.files[p]!;
      const words = file.words;
      const names = graph.nameBytes[p]!;
      const w = file.treeWord(at.pos);
      const base = words[w]!;
      const nr = words[w + 1]!;
      const na = words[w + 2]!;
      if (base === NONE) return { accel: true, pack: p, list: words, stride: 2, pos: w + 3, end: w + 3 + na * 2, hash };
      // A seen neighbour (the base, or a tree based on this one) covers all but the difference.
      if (seen.hasRaw(names, graph.posOffset(p, base))) {
        const from = w + 3 + nr * 3;
        return { accel: true, pack: p, list: words, stride: 3, pos: from, end: from + na * 3, hash };
      }
      // Else what a seen neighbour further away leaves uncovered (or the whole list).
      const list = graph.liveEntries(p, at.pos, (q) => seen.hasRaw(names, graph.posOffset(p, q)));
      return { accel: true, pack: p, list, stride: 3, pos: 0, end: list.length, hash };
    }
  }
  return undefined;
}

/** A frame for a tree: from its record when it has one, else from its inflated bytes; undefined when absent. */
async function openTree(reader: TreeReader, oid: ObjectId, hash: number | undefined): Promise<Frame | undefined> {
  const data = await reader.read(oid);
  return data === undefined ? undefined : { accel: false, data, pos: 0, hash };
}

function locateRecorded(graph: AccelGraph, oid: ObjectId): GraphLocation | undefined {
  const loc = graph.locate(oid);
  if (loc === undefined || graph.files[loc.pack]?.checkTree(loc.pos) !== true) return undefined;
  return loc;
}

/**
 * git's mark_tree_uninteresting: adds `tree` and everything under it to `marks`, not
 * descending into trees already marked. Absent trees are skipped (parse_tree_gently).
 * With `edge`, each newly marked tree and blob is also recorded by its path's name hash
 * and kind (0 tree, 1 blob) as `hash * 2 + kind` (the first one seen per key wins).
 */
export async function markTreeUninteresting(
  reader: TreeReader,
  tree: ObjectId,
  marks: OidSet,
  edge?: Map<number, ObjectId>,
): Promise<void> {
  if (!marks.add(tree)) return;
  const graph = reader.graph;
  const stack: { oid: ObjectId; loc: GraphLocation | undefined; hash: number | undefined }[] = [{ oid: tree, loc: undefined, hash: undefined }];
  const c: Cursor = { bytes: EMPTY, oid: 0, kind: 0, name: 0, ref: 0 };
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (reader.tick()) await reader.pause();
    const f = openRecorded(reader, top.oid, top.loc, top.hash, marks) ?? (await openTree(reader, top.oid, top.hash));
    if (f === undefined) continue;
    while (nextEntry(graph, f, c)) {
      if (c.kind === 2 || !marks.addRaw(c.bytes, c.oid)) continue;
      if (edge === undefined && c.kind !== 0) continue;
      const oid = hexAt(c.bytes, c.oid);
      const hash = pathHash(top.hash, c.name);
      if (edge !== undefined) {
        const key = hash * 2 + c.kind;
        if (!edge.has(key)) edge.set(key, oid);
      }
      if (c.kind === 0) stack.push({ oid, loc: childLocation(graph, f, c), hash });
    }
  }
}

/**
 * git's process_tree: appends `tree` and, in pre-order, every tree and blob under it not yet
 * in `seen` (which holds the uninteresting objects too), adding them to `seen`. With
 * `paths`, the name hash of each appended object's path is recorded alongside.
 * NotFoundError('OBJ_MISSING') when a tree to send is missing.
 */
export async function collectTree(
  reader: TreeReader,
  tree: ObjectId,
  seen: OidSet,
  out: ObjectId[],
  paths?: PathHashes,
): Promise<void> {
  if (!seen.add(tree)) return;
  out.push(tree);
  paths?.listed.push(0);
  paths?.locations?.push(-1);
  const graph = reader.graph;
  const stack: Frame[] = [openRecorded(reader, tree, undefined, undefined, seen) ?? (await mustOpen(reader, tree, undefined))];
  const c: Cursor = { bytes: EMPTY, oid: 0, kind: 0, name: 0, ref: 0 };
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    let descend: { oid: ObjectId; hash: number; loc: GraphLocation | undefined } | undefined;
    while (nextEntry(graph, f, c)) {
      if (c.kind === 2 || !seen.addRaw(c.bytes, c.oid)) continue;
      const oid = hexAt(c.bytes, c.oid);
      out.push(oid);
      const hash = pathHash(f.hash, c.name);
      paths?.listed.push(hash);
      paths?.locations?.push(f.accel && (c.ref & EXT_BIT) === 0 ? f.pack * 2 ** 32 + c.ref : -1);
      if (c.kind === 0) {
        descend = { oid, hash, loc: childLocation(graph, f, c) };
        break;
      }
    }
    if (descend === undefined) stack.pop();
    else {
      if (reader.tick()) await reader.pause();
      stack.push(openRecorded(reader, descend.oid, descend.loc, descend.hash, seen) ?? (await mustOpen(reader, descend.oid, descend.hash)));
    }
  }
}

const EMPTY = new Uint8Array(0);

async function mustOpen(reader: TreeReader, oid: ObjectId, hash: number | undefined): Promise<Frame> {
  const f = await openTree(reader, oid, hash);
  if (f === undefined) throw new NotFoundError('OBJ_MISSING', `tree ${oid} is missing`);
  return f;
}


/** A set of trees found at one path (by path hash) during the sparse walk. */
interface PathGroup {
  readonly trees: ObjectId[];
  readonly hash: number | undefined;
}

/**
 * git's mark_trees_uninteresting_sparse (pack.useSparse, on by default since git 2.27): given
 * the root trees of the walk's edge (sent commits and their parents; the uninteresting ones
 * already in `marks`), descends only into paths where both an interesting and an
 * uninteresting tree occur, marking the children of uninteresting trees along the way. A
 * one-commit fetch so visits the changed paths instead of the whole tree of its parent; an
 * object the client has under another path may be sent again, as with git. Paths are grouped
 * by path hash: a collision only merges two groups, and marking stays sound because every
 * marked object is a child of an uninteresting tree. With `edge`, the marked children are
 * recorded by path as in markTreeUninteresting (thin-pack bases for the changed paths).
 */
export async function markTreesUninterestingSparse(
  reader: TreeReader,
  roots: Iterable<ObjectId>,
  marks: OidSet,
  edge?: Map<number, ObjectId>,
): Promise<void> {
  const graph = reader.graph;
  const c: Cursor = { bytes: EMPTY, oid: 0, kind: 0, name: 0, ref: 0 };
  const stack: PathGroup[] = [{ trees: [...new Set(roots)], hash: undefined }];
  while (stack.length > 0) {
    const group = stack.pop()!;
    let interesting = false;
    let uninteresting = false;
    for (const t of group.trees) {
      if (marks.has(t)) uninteresting = true;
      else interesting = true;
      if (interesting && uninteresting) break;
    }
    if (!interesting || !uninteresting) continue;
    const children = new Map<number, Set<ObjectId>>();
    for (const t of group.trees) {
      if (reader.tick()) await reader.pause();
      const parentMarked = marks.has(t);
      const f = openRecorded(reader, t, undefined, group.hash, NO_NEIGHBOURS) ?? (await openTree(reader, t, group.hash));
      if (f === undefined) continue; // parse_tree_gently: an absent tree is skipped
      while (nextEntry(graph, f, c)) {
        if (c.kind === 2) continue;
        const hash = pathHash(group.hash, c.name);
        if (parentMarked && marks.addRaw(c.bytes, c.oid) && edge !== undefined) {
          const key = hash * 2 + c.kind;
          if (!edge.has(key)) edge.set(key, hexAt(c.bytes, c.oid));
        }
        if (c.kind !== 0) continue;
        let set = children.get(hash);
        if (set === undefined) children.set(hash, (set = new Set()));
        set.add(hexAt(c.bytes, c.oid));
      }
    }
    for (const [hash, set] of children) if (set.size > 1) stack.push({ trees: [...set], hash });
  }
}

/**
 * No tree counts as seen: openRecorded then gives a tree's whole entry list (the sparse walk
 * cannot skip a delta base's entries, since a marked tree's children need not be marked).
 */
const NO_NEIGHBOURS: Pick<OidSet, 'hasRaw'> = { hasRaw: () => false };
