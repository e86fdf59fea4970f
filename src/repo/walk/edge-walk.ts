/**
 * The client's objects at the boundary of a fetch, found the sparse way (git's pack.useSparse,
 * revision.c mark_trees_uninteresting_sparse): for each sent commit and each of its parents the
 * client has, the two root trees are compared and only paths whose ids differ are followed; the
 * parent's entry at each such path is recorded. Those are the thin-pack delta bases worth
 * having (the old version of a changed file or directory), found in time proportional to
 * the change, where marking the parent's whole tree costs the size of the repository.
 */
import { ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { AccelGraph } from '../accel/graph.js';
import { nameMeta } from '../accel/tree-diff.js';
import type { OidSet } from './oid-set.js';
import type { WalkSource } from './source.js';
import { readTreeEntry, type TreeEntrySlots } from './tree-entry.js';
import { pathHash } from './tree-walk.js';


/** One entry of a tree: its name's hash (low two bits clear), kind (0 tree, 1 blob, 2 gitlink) and id. */
interface Entry {
  readonly name: number;
  readonly kind: number;
  readonly oid: ObjectId;
}

/** The entries of a tree, from its accelerator record or its bytes; undefined when absent. */
async function entriesOf(graph: AccelGraph, src: WalkSource, oid: ObjectId): Promise<Entry[] | undefined> {
  const loc = graph.locate(oid);
  if (loc !== undefined && graph.files[loc.pack]?.checkTree(loc.pos) === true) {
    const list = graph.entries(loc.pack, loc.pos);
    const out: Entry[] = [];
    for (let k = 0; k < list.length; k += 3) {
      const meta = list[k + 2]!;
      out.push({ name: (meta & ~3) >>> 0, kind: meta & 3, oid: graph.refOid(loc.pack, list[k + 1]!) });
    }
    return out;
  }
  const obj = await src.tryReadObject(oid);
  if (obj === undefined) return undefined;
  if (obj.type !== 'tree') throw new ValidationError('OBJ_BAD_TYPE', `object ${oid} is a ${obj.type}, expected a tree`);
  const d = obj.data;
  const buf = Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const out: Entry[] = [];
  const e: TreeEntrySlots = { kind: 0, nameStart: 0, nameEnd: 0 };
  for (let off = 0; off < buf.length; ) {
    off = readTreeEntry(buf, off, e);
    out.push({ name: nameMeta(buf, e.nameStart, e.nameEnd, 0), kind: e.kind, oid: buf.toString('hex', e.nameEnd + 1, e.nameEnd + 21) as ObjectId });
  }
  return out;
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
    const byName = new Map<number, Entry[]>();
    for (const e of mine) {
      const list = byName.get(e.name);
      if (list === undefined) byName.set(e.name, [e]);
      else list.push(e);
    }
    for (const e of theirs) {
      if (e.kind === 2) continue;
      const others = byName.get(e.name);
      if (others !== undefined && others.some((o) => o.oid === e.oid)) continue;
      const hash = pathHash(pair.hash, e.name);
      edges.add(e.oid);
      const key = hash * 2 + e.kind;
      if (!edgeByName.has(key)) edgeByName.set(key, e.oid);
      if (e.kind !== 0 || others === undefined) continue;
      for (const o of others) if (o.kind === 0) stack.push({ sent: o.oid, have: e.oid, hash });
    }
  }
}
