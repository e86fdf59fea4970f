/**
 * Writes the reachability bitmaps of a closed pack (accel/bitmap-format.ts): for every ref tip
 * and for commits spaced along history (densely near the tips, sparsely further back, as git's
 * bitmap writer selects), the set of objects reachable from the commit. Sets are computed
 * oldest first by the same walk fetches use (bitmap-walk.ts), each ORing the sets of the
 * selected commits it meets, so the whole pack is walked about once. A pack that turns out not
 * to be closed (a tip or anything reachable from one is outside it) gets no file.
 *
 * Callers write the file after the pack, idx and accelerator and before the meta transaction
 * that publishes the pack (import, full compaction), so readers never cache its absence.
 */
import { hasCode } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { PackRecord } from '../../meta/meta-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { BitmapFileBuilder } from '../accel/bitmap-builder.js';
import { BITMAP_KIND } from '../accel/bitmap-format.js';
import type { RepoCaches } from '../cache/repo-caches.js';
import { acceleratorKey } from '../keys.js';
import { readCommitLinks } from '../object-db/commit-links.js';
import { ObjectDb } from '../object-db/object-db.js';
import type { CommitLinks } from '../repository.js';
import { reach, type ReachView } from './bitmap-walk.js';
import type { WalkSource } from './source.js';
import { TAG_CHAIN_MAX, tagTarget } from './tags.js';

/** Most sets in one file (ref tips first, newest first, then the spaced commits). */
export const BITMAP_ENTRIES_MAX = 3000;
/** Commits this near the newest (in date order) are selected every DENSE_GAP. */
const DENSE_REGION = 250;
const DENSE_GAP = 10;
/** Further back the gap grows with the distance (distance / GAP_DIVISOR), up to GAP_MAX. */
const GAP_DIVISOR = 25;
const GAP_MAX = 1000;

/** Where the pack lives. */
export interface BitmapWriteDeps {
  readonly store: ObjectStore;
  readonly repoId: string;
  readonly caches: RepoCaches;
}

/** What writeReachBitmaps did. */
export type BitmapWriteResult =
  | { readonly kind: 'written'; readonly entries: number; readonly bytes: number }
  | { readonly kind: 'skipped'; readonly reason: string };

/** The gap between selected commits at distance `i` (date order) from the newest. */
function gapAt(i: number): number {
  if (i < DENSE_REGION) return DENSE_GAP;
  return Math.min(GAP_MAX, Math.max(DENSE_GAP, Math.floor(i / GAP_DIVISOR)));
}

/**
 * Chooses commits: every tip, then along the commits newest first (`byDate`) one whenever the
 * distance from the last selected one reaches gapAt. At most BITMAP_ENTRIES_MAX.
 */
export function selectCommits(tips: readonly ObjectId[], byDate: readonly ObjectId[]): Set<ObjectId> {
  const chosen = new Set<ObjectId>();
  for (const t of tips) {
    if (chosen.size >= BITMAP_ENTRIES_MAX) break;
    chosen.add(t);
  }
  let last = -Infinity;
  for (let i = 0; i < byDate.length && chosen.size < BITMAP_ENTRIES_MAX; i++) {
    const c = byDate[i]!;
    if (chosen.has(c)) {
      last = i;
      continue;
    }
    if (i - last >= gapAt(i)) {
      chosen.add(c);
      last = i;
    }
  }
  return chosen;
}

/**
 * Computes and stores the bitmaps of `pack` (already stored with its idx and accelerator) for
 * the ref values `tips`. Skips (writing nothing) when the pack is not closed or has no commit.
 * Store failures throw.
 */
export async function writeReachBitmaps(
  deps: BitmapWriteDeps,
  pack: PackRecord,
  tips: readonly ObjectId[],
  opts: { readonly signal?: AbortSignal } = {},
): Promise<BitmapWriteResult> {
  const signal = opts.signal;
  const sig = signal === undefined ? {} : { signal };
  const db = await ObjectDb.open({ store: deps.store, repoId: deps.repoId, caches: deps.caches }, [pack], sig);
  const graph = await db.graph(sig);
  const index = db.packs[0]!.index;
  const src: WalkSource = {
    commitLinks: (oid) => readCommitLinks(db, oid, signal),
    tryReadObject: (oid) => db.tryReadObject(oid, sig),
    tryReadHeader: (oid) => db.tryReadHeader(oid, sig),
  };
  const header = async (oid: ObjectId): Promise<string | undefined> => (graph.header(oid) ?? (await db.tryReadHeader(oid, sig)))?.type;

  // Tips: peeled to commits; everything they name must be in the pack.
  const tipCommits: ObjectId[] = [];
  for (const tip of new Set(tips)) {
    let oid = tip;
    for (let depth = 0; depth < TAG_CHAIN_MAX; depth++) {
      const type = await header(oid);
      if (type === undefined) return { kind: 'skipped', reason: `the pack does not hold ${oid}` };
      if (type === 'commit') tipCommits.push(oid);
      if (type !== 'tag') break;
      oid = await tagTarget(src, oid);
    }
  }
  // Every commit reachable from the tips, parents before children (post-order).
  const links = new Map<ObjectId, CommitLinks>();
  const post: ObjectId[] = [];
  const linksOf = async (oid: ObjectId): Promise<CommitLinks | undefined> => {
    if (index.findIndex(oid) < 0) return undefined;
    try {
      return graph.commitLinks(oid) ?? (await src.commitLinks(oid));
    } catch (err) {
      if (hasCode(err, 'OBJ_MISSING') || hasCode(err, 'OBJ_BAD_TYPE')) return undefined;
      throw err;
    }
  };
  const state = new Map<ObjectId, number>(); // 1 open, 2 done
  for (const tip of tipCommits) {
    if (state.has(tip)) continue;
    const stack: { oid: ObjectId; next: number }[] = [];
    const visit = async (oid: ObjectId): Promise<boolean> => {
      const l = await linksOf(oid);
      if (l === undefined) return false;
      links.set(oid, l);
      state.set(oid, 1);
      stack.push({ oid, next: 0 });
      return true;
    };
    if (!(await visit(tip))) return { kind: 'skipped', reason: `the pack does not hold commit ${tip}` };
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const parents = links.get(top.oid)!.parents;
      if (top.next < parents.length) {
        const parent = parents[top.next++]!;
        if (state.has(parent)) continue;
        if (!(await visit(parent))) return { kind: 'skipped', reason: `the pack does not hold commit ${parent}` };
        continue;
      }
      stack.pop();
      state.set(top.oid, 2);
      post.push(top.oid);
      if (post.length % 4096 === 0) signal?.throwIfAborted();
    }
  }
  if (post.length === 0) return { kind: 'skipped', reason: 'no commit to describe' };

  // Newest first by committer time (ties: later in post-order first), then select.
  const byDate = post.map((oid, k) => ({ oid, k, t: links.get(oid)!.committerTime }));
  byDate.sort((a, b) => b.t - a.t || b.k - a.k);
  const chosen = selectCommits(tipCommits, byDate.map((x) => x.oid));

  const order = index.positionsByOffset();
  const rank = new Uint32Array(order.length);
  for (let k = 0; k < order.length; k++) rank[order[k]!] = k;
  const builder = new BitmapFileBuilder(index.count);
  const view: ReachView = { graph, pack: 0, rank, lookup: (pos, target) => builder.orInto(pos, target) };
  for (const oid of post) {
    if (!chosen.has(oid)) continue;
    const r = await reach(view, src, { commits: [oid], trees: [], others: [] }, sig);
    if (r.extraList.length > 0) return { kind: 'skipped', reason: `the pack does not hold ${r.extraList[0]!}, reachable from ${oid}` };
    builder.add(index.findIndex(oid), r.bits);
  }
  const bytes = builder.finish(index.packChecksum, order);
  await deps.store.put(acceleratorKey(deps.repoId, pack.name, BITMAP_KIND), bytes, sig);
  return { kind: 'written', entries: builder.entryCount, bytes: bytes.byteLength };
}
