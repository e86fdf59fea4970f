/**
 * The client's objects at the boundary of a fetch, found the sparse way (git's pack.useSparse,
 * revision.c mark_trees_uninteresting_sparse): for each sent commit and each of its parents the
 * client has, the two root trees are compared and only paths whose ids differ are followed; the
 * parent's entry at each such path is recorded. Those are the thin-pack delta bases worth
 * having (the old version of a changed file or directory), found in time proportional to
 * the change, where marking the parent's whole tree costs the size of the repository.
 */
import { ValidationError } from '../../core/errors.js';
import { objectIdFromBytes, type ObjectId } from '../../git/hash/object-id.js';
import type { AccelGraph } from '../accel/graph.js';
import { nameMeta } from '../accel/tree-diff.js';
import type { OidSet } from './oid-set.js';
import type { WalkSource } from './source.js';
import { readTreeEntry, type TreeEntrySlots } from './tree-entry.js';
import { pathHash } from './tree-walk.js';


/**
 * The entries of a tree as parallel arrays: name hash (low two bits clear), kind (0 tree,
 * 1 blob, 2 gitlink) and where the raw id is (`bytes[k]` at `at[k]`). No id becomes a string
 * until its entry is found changed: a root tree of git.git has about 450 entries, and a
 * one-commit fetch compares two of them for one or two changed paths.
 */
interface Entries {
  readonly n: number;
  readonly name: Uint32Array;
  readonly kind: Uint8Array;
  readonly bytes: Uint8Array[];
  readonly at: Int32Array;
}

/** The entries of a tree, from its accelerator record or its bytes; undefined when absent. */
async function entriesOf(graph: AccelGraph, src: WalkSource, oid: ObjectId): Promise<Entries | undefined> {
  const loc = graph.locate(oid);
  if (loc !== undefined && graph.files[loc.pack]?.checkTree(loc.pos) === true) {
    const list = graph.entries(loc.pack, loc.pos);
    const n = list.length / 3;
    const out: Entries = { n, name: new Uint32Array(n), kind: new Uint8Array(n), bytes: new Array<Uint8Array>(n), at: new Int32Array(n) };
    for (let k = 0; k < n; k++) {
      const ref = list[k * 3 + 1]!;
      const meta = list[k * 3 + 2]!;
      out.name[k] = (meta & ~3) >>> 0;
      out.kind[k] = meta & 3;
      out.bytes[k] = graph.refBytes(loc.pack, ref);
      out.at[k] = graph.rawOffset(loc.pack, ref);
    }
    return out;
  }
  const obj = await src.tryReadObject(oid);
  if (obj === undefined) return undefined;
  if (obj.type !== 'tree') throw new ValidationError('OBJ_BAD_TYPE', `object ${oid} is a ${obj.type}, expected a tree`);
  const d = obj.data;
  const buf = Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const names: number[] = [];
  const kinds: number[] = [];
  const ats: number[] = [];
  const e: TreeEntrySlots = { kind: 0, nameStart: 0, nameEnd: 0 };
  for (let off = 0; off < buf.length; ) {
    off = readTreeEntry(buf, off, e);
    names.push(nameMeta(buf, e.nameStart, e.nameEnd, 0));
    kinds.push(e.kind);
    ats.push(e.nameEnd + 1);
  }
  const n = names.length;
  return { n, name: Uint32Array.from(names), kind: Uint8Array.from(kinds), bytes: new Array<Uint8Array>(n).fill(buf), at: Int32Array.from(ats) };
}

/** Whether entry i of `x` and entry j of `y` name the same id (raw bytes compared). */
function sameId(x: Entries, i: number, y: Entries, j: number): boolean {
  const a = x.bytes[i]!;
  const b = y.bytes[j]!;
  const p = x.at[i]!;
  const q = y.at[j]!;
  for (let k = 0; k < 20; k++) if (a[p + k] !== b[q + k]) return false;
  return true;
}

/**
 * Records in `edges` (and by path in `edgeByName`, key `pathHash * 2 + kind`, first one wins)
 * the parent tree `have` and its entries on every path where the sent tree `sent` differs.
 */
export async function markEdgesSparse(
  graph: AccelGraph,
  src: WalkSource,
  sent: ObjectId,
  have: ObjectId,
  edges: OidSet,
  edgeByName: Map<number, ObjectId>,
  signal?: AbortSignal,
): Promise<void> {
  edges.add(have);
  const stack: { sent: ObjectId; have: ObjectId; hash: number | undefined }[] = [{ sent, have, hash: undefined }];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const pair = stack.pop()!;
    if (pair.sent === pair.have) continue;
    const [mine, theirs] = await Promise.all([entriesOf(graph, src, pair.sent), entriesOf(graph, src, pair.have)]);
    if (mine === undefined || theirs === undefined) continue;
    // Names are known by hash only (git's pack_name_hash, which collides easily on similar
    // names): an entry is unchanged when any sent entry of its name hash has its id, else it
    // pairs with the sent trees of that hash that differ. Matching only the first entry per
    // hash made every colliding sibling look changed and walked whole subtrees for nothing.
    const byName = new Map<number, number[]>();
    for (let i = 0; i < mine.n; i++) {
      const list = byName.get(mine.name[i]!);
      if (list === undefined) byName.set(mine.name[i]!, [i]);
      else list.push(i);
    }
    for (let j = 0; j < theirs.n; j++) {
      const kind = theirs.kind[j]!;
      if (kind === 2) continue;
      const others = byName.get(theirs.name[j]!);
      if (others !== undefined && others.some((i) => sameId(mine, i, theirs, j))) continue;
      const hash = pathHash(pair.hash, theirs.name[j]!);
      const id = objectIdFromBytes(theirs.bytes[j]!, theirs.at[j]!);
      edges.add(id);
      const key = hash * 2 + kind;
      if (!edgeByName.has(key)) edgeByName.set(key, id);
      if (kind !== 0 || others === undefined) continue;
      for (const i of others) if (mine.kind[i] === 0) stack.push({ sent: objectIdFromBytes(mine.bytes[i]!, mine.at[i]!), have: id, hash });
    }
  }
}
