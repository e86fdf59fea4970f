/**
 * Online compaction of a repository's packs (DESIGN.md section 7). The packs chosen by
 * planCompaction are merged into ONE new pack by the machinery pushes and fetches already use:
 * pack-out streams exactly the chosen packs' objects (stored entries copied verbatim, deltas
 * kept with their bases), and push ingest indexes that stream, verifies it, and writes the
 * .pack, its .idx and its accelerator, all before anything is visible; a merge of every pack
 * also gets reachability bitmaps (walk/bitmap-write.ts). Then one meta
 * transaction adds the new pack and drops the chosen ones, with no ref change, so a push
 * racing with it never conflicts. Removed packs get durable markers first and their files are
 * deleted by collectRemovedPacks only after a grace period (removed.ts), so readers holding an
 * older state keep reading them.
 *
 * Failure anywhere before the transaction leaves the old packs visible; the new files are
 * unreferenced and marked for collection. Two compactions of the same packs (two nodes) are
 * harmless: the stream is deterministic, so both write the same content-named pack, and a
 * removal of an already removed pack is a no-op in both meta stores; at worst an object is
 * then listed in two packs until a later compaction, never lost, because every transaction
 * removes only packs all of whose objects are in the pack it adds.
 */
import { StoreError, ValidationError } from '../../core/errors.js';
import { OBJECT_SIZE_MAX, type Limits } from '../../core/limits.js';
import { FSCK_DEFAULT_SEVERITY, FSCK_FATAL_IDS } from '../../git/fsck/msg-ids.js';
import type { FsckConfig } from '../../git/fsck/config.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { MetaStore, PackRecord, RepoState } from '../../meta/meta-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { RepoCaches } from '../cache/repo-caches.js';
import { ingestPack } from '../ingest/ingest.js';
import type { ObjectSource } from '../ingest/verify.js';
import { ObjectDb } from '../object-db/object-db.js';
import { packObjects } from '../pack-out/pack-objects.js';
import type { ProgressFn } from '../repository.js';
import { writeReachBitmaps, type BitmapWriteResult } from '../walk/bitmap-write.js';
import { planCompaction, type PlanOptions } from './plan.js';
import { collectRemovedPacks, markRemoved, type CollectResult } from './removed.js';

/** Everything a compaction reads and writes (a StoredRepository has all of it). */
export interface CompactDeps {
  readonly store: ObjectStore;
  readonly meta: MetaStore;
  readonly caches: RepoCaches;
  readonly repoId: string;
  /** Wall clock, ms since the epoch (PackRecord.createdMs, removal markers, grace). */
  readonly clock: () => number;
  /** Where the merged pack is spooled; defaults to the OS temp dir. */
  readonly spoolDir?: string;
}

/** Options of one compaction run. */
export interface CompactOptions extends PlanOptions {
  /** How long removed packs' files stay readable (default 10 minutes). */
  readonly graceMs?: number;
  /** Size limits of the merged pack; default: no limit beyond the pack format's. */
  readonly limits?: Limits;
  /** Delta resolver threads for ingest (1 keeps a background compaction on one core). */
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressFn;
}

/** What a compaction did. Deletion of earlier removals' files runs in every case. */
export type CompactResult =
  | { readonly kind: 'unchanged'; readonly state: RepoState; readonly collected: CollectResult }
  | {
      /** The chosen packs left the list while merging (another compaction won); nothing published. */
      readonly kind: 'raced';
      readonly state: RepoState;
      readonly collected: CollectResult;
    }
  | {
      readonly kind: 'compacted';
      readonly pack: PackRecord;
      /** Names of the packs that left the visible list. */
      readonly removed: readonly string[];
      readonly state: RepoState;
      readonly collected: CollectResult;
      /** Set when the merge took every pack (its output is closed): whether bitmaps were written. */
      readonly bitmaps?: BitmapWriteResult;
    };

/** No limit beyond the format's: the objects were accepted once already. */
const COMPACT_LIMITS: Limits = {
  packSizeMax: Number.MAX_SAFE_INTEGER,
  packObjectsMax: 2 ** 32 - 1,
  objectSizeMax: OBJECT_SIZE_MAX,
  idleTimeoutMs: 0,
};

/**
 * Every fsck message ignored except the fatal ones (which no stored object can have): the
 * objects were checked when they were pushed, under the settings of that time, and must not
 * be refused now. Link checks still run.
 */
export const COMPACT_FSCK: FsckConfig = Object.freeze(
  Object.fromEntries(
    Object.keys(FSCK_DEFAULT_SEVERITY)
      .filter((id) => !FSCK_FATAL_IDS.has(id as keyof typeof FSCK_DEFAULT_SEVERITY))
      .map((id) => [id, 'ignore' as const]),
  ),
);

/** Every object id of the packs, each once, pack by pack in pack-file order. */
function objectsOf(db: ObjectDb): ObjectId[] {
  const seen = new Set<ObjectId>();
  const out: ObjectId[] = [];
  for (const pack of db.packs) {
    const idx = pack.index;
    for (const pos of idx.positionsByOffset()) {
      const oid = idx.oidAt(pos);
      if (!seen.has(oid)) {
        seen.add(oid);
        out.push(oid);
      }
    }
  }
  return out;
}

/**
 * Merges packs of one repository as planCompaction chooses (see the module doc), then deletes
 * files of packs removed more than the grace period ago. Throws what the stores throw; a
 * failure leaves every object visible.
 */
export async function compactRepository(deps: CompactDeps, opts: CompactOptions = {}): Promise<CompactResult> {
  const { store, meta, repoId, clock } = deps;
  const signal = opts.signal;
  const sig = signal === undefined ? {} : { signal };
  const collect = (): Promise<CollectResult> =>
    collectRemovedPacks({ store, meta, repoId, clock }, { ...(opts.graceMs === undefined ? {} : { graceMs: opts.graceMs }), ...sig });

  const state = await meta.readState(repoId);
  const chosenNames = new Set(planCompaction(state.packs, opts));
  if (chosenNames.size < 2) return { kind: 'unchanged', state, collected: await collect() };
  // Newest first, as the state lists them: the merged pack keeps recent objects up front.
  const chosen = state.packs.filter((p) => chosenNames.has(p.name));

  const loc = { store, repoId, caches: deps.caches };
  const db = await ObjectDb.open(loc, chosen, sig);
  // Links of the merged objects are checked against every pack of the state read above.
  const all = await ObjectDb.open(loc, state.packs, sig);
  const objects: ObjectSource = {
    hasObject: async (oid) => all.has(oid),
    tryReadObject: (oid) => all.tryReadObject(oid, sig),
    tryReadHeader: (oid) => all.tryReadHeader(oid, sig),
  };
  const oids = objectsOf(db);
  const stream = packObjects(db, oids, {
    thin: false,
    ofsDelta: true,
    ...sig,
    ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
  });
  const received = await ingestPack(
    stream,
    {
      store,
      repoId,
      objects,
      clock,
      ...(deps.spoolDir === undefined ? {} : { spoolDir: deps.spoolDir }),
      ...(opts.threads === undefined ? {} : { threads: opts.threads }),
    },
    {
      fsck: COMPACT_FSCK,
      limits: opts.limits ?? COMPACT_LIMITS,
      newTips: [],
      ...sig,
      ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
    },
  );
  let stored: PackRecord | undefined;
  try {
    stored = await received.store(sig);
  } finally {
    await received.discard();
  }
  if (stored === undefined || stored.objects !== oids.length) {
    throw new ValidationError('REPO_CORRUPT', `compacting ${chosen.length} packs of ${repoId} produced ${stored?.objects ?? 0} objects, expected ${oids.length}`);
  }
  const pack: PackRecord = { ...stored, source: 'compact' };

  let published = false;
  let bitmaps: BitmapWriteResult | undefined;
  try {
    // A merge of every pack holds everything the refs of `state` reach: it is closed, and its
    // bitmaps go in before the transaction that publishes it (written for those refs; later
    // refs only make walks longer). A failure here leaves the pack unpublished, as below.
    if (chosen.length === state.packs.length) {
      const tips = [...state.refs.values()].map((v) => v.oid as ObjectId);
      bitmaps = await writeReachBitmaps({ store, repoId, caches: deps.caches }, pack, tips, sig);
    }
    // Another compaction may have taken some of these packs meanwhile: then ours is not needed.
    const now = await meta.readState(repoId);
    const visible = new Set(now.packs.map((p) => p.name));
    if (chosen.some((p) => !visible.has(p.name))) {
      published = visible.has(pack.name);
      return { kind: 'raced', state: now, collected: await collect() };
    }
    // The merged pack may be byte-identical to one chosen pack (the others held nothing more).
    const removed = chosen.map((p) => p.name).filter((name) => name !== pack.name);
    // Markers before the transaction: a crash after it still leaves them for collection.
    await markRemoved({ store, repoId, clock }, removed, 'compacted', sig);
    const res = await meta.transact(repoId, { addPacks: [pack], removePacks: removed });
    if (!res.ok) {
      // A transaction without ref changes has nothing to conflict on.
      throw new StoreError('META_CORRUPT', `compacting ${repoId}: the meta store reported conflicts for a pack-only change`);
    }
    published = true;
    // The grace counts from the transaction: move the markers' time to now (best effort).
    await markRemoved({ store, repoId, clock }, removed, 'compacted', sig).catch(() => undefined);
    return { kind: 'compacted', pack, removed, state: res.state, collected: await collect(), ...(bitmaps === undefined ? {} : { bitmaps }) };
  } finally {
    if (!published) {
      // Unreferenced files of a merge that was not published: collect them after the grace.
      await markRemoved({ store, repoId, clock }, [pack.name], 'unpublished').catch(() => undefined);
    }
  }
}
