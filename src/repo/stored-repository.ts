/**
 * A Repository over an ObjectStore and a MetaStore. Reads use the object database of the
 * newest state this instance has seen (readState and updateRefs refresh it; one database per
 * state version); pushes go through ingest (spool, index, verify, store), then one meta
 * transaction publishes the packs and moves the refs (DESIGN.md section 5).
 */
import { NotFoundError, ValidationError } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import type { GitObject } from '../git/object/object-type.js';
import { decodeTag } from '../git/object/tag.js';
import type { MetaStore, PackRecord, RepoRecord, RepoState, Transaction, TransactResult } from '../meta/meta-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { AccelGraph } from './accel/graph.js';
import type { BitmapView } from './object-db/bitmap-load.js';
import { writeReachBitmaps } from './walk/bitmap-write.js';
import type { RepoCaches } from './cache/repo-caches.js';
import { ingestPack } from './ingest/ingest.js';
import { readCommitLinks } from './object-db/commit-links.js';
import { ObjectDb } from './object-db/object-db.js';
import { packObjects } from './pack-out/pack-objects.js';
import type {
  CommitLinks,
  DeepenRequest,
  EnumerateRequest,
  EnumerateResult,
  ObjectHeader,
  PackObjectsOptions,
  ReceivedPack,
  ReceivePackOptions,
  Repository,
  ShallowUpdate,
  PackHints,
} from './repository.js';
import { enumerateObjects, TAG_CHAIN_MAX, type Enumeration, type TagRef } from './walk/enumerate.js';
import { computeShallow } from './walk/shallow.js';
import { enumCacheKey, fetchCacheKey, fromMasks, toMasks } from './walk/enum-cache.js';
import { compactRepository, type CompactOptions, type CompactResult } from './compact/compact.js';
import { DEFAULT_REMOVAL_GRACE_MS } from './compact/removed.js';
import type { CompactionScheduler } from './compact/scheduler.js';

/** What a StoredRepository is built from (cli/ passes the concrete backends and caches). */
export interface StoredRepositoryDeps {
  readonly store: ObjectStore;
  readonly meta: MetaStore;
  readonly caches: RepoCaches;
  /** Wall clock, ms since the epoch. */
  readonly clock: () => number;
  /** Where pushed packs are spooled; defaults to the OS temp dir. */
  readonly spoolDir?: string;
  /** Runs compactions in the background after pushes (one per repository at a time); none when absent. */
  readonly compactor?: CompactionScheduler;
  /** Options of those automatic compactions (grace, threads). */
  readonly autoCompact?: CompactOptions;
}

/** One repository; cheap to create (indexes and blocks live in the shared caches). */
export class StoredRepository implements Repository {
  readonly record: RepoRecord;
  readonly #deps: StoredRepositoryDeps;
  readonly #commitKeyPrefix: string;
  #state: RepoState | undefined;
  #db: { readonly version: number; readonly db: Promise<ObjectDb> } | undefined;

  constructor(record: RepoRecord, deps: StoredRepositoryDeps) {
    this.record = record;
    this.#deps = deps;
    this.#commitKeyPrefix = `${deps.caches.blocks.storeTag(deps.store)}:${record.id}:`;
  }

  async readState(): Promise<RepoState> {
    const state = await this.#deps.meta.readState(this.record.id);
    this.#adopt(state);
    return state;
  }

  async hasObject(oid: ObjectId): Promise<boolean> {
    return (await this.#objects()).has(oid);
  }

  async tryReadObject(oid: ObjectId): Promise<GitObject | undefined> {
    return (await this.#objects()).tryReadObject(oid);
  }

  async readObject(oid: ObjectId): Promise<GitObject> {
    return (await this.#objects()).readObject(oid);
  }

  async tryReadHeader(oid: ObjectId): Promise<ObjectHeader | undefined> {
    const db = await this.#objects();
    return (await db.graph()).header(oid) ?? db.tryReadHeader(oid);
  }

  /** The accelerators of the current packs (walks read commits and trees from them). */
  async accelGraph(): Promise<AccelGraph> {
    return (await this.#objects()).graph();
  }

  /** The reachability bitmaps of the current packs, if one has them (walks stop early). */
  async reachBitmaps(): Promise<BitmapView | undefined> {
    return (await this.#objects()).bitmapView();
  }

  /** Writes reachability bitmaps for a stored, unpublished pack closed under `tips` (walk/bitmap-write.ts). */
  async writeReachBitmaps(pack: PackRecord, tips: readonly ObjectId[], opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const d = this.#deps;
    const res = await writeReachBitmaps({ store: d.store, repoId: this.record.id, caches: d.caches }, pack, tips, opts);
    return res.kind === 'written';
  }

  async commitLinks(oid: ObjectId): Promise<CommitLinks> {
    const key = this.#commitKeyPrefix + oid;
    const cache = this.#deps.caches.commits;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const db = await this.#objects();
    const links = (await db.graph()).commitLinks(oid) ?? (await readCommitLinks(db, oid));
    cache.set(key, links);
    return links;
  }

  async peel(oid: ObjectId): Promise<ObjectId> {
    const db = await this.#objects();
    let cur = oid;
    for (let depth = 0; depth <= TAG_CHAIN_MAX; depth++) {
      const obj = await db.tryReadObject(cur);
      if (obj === undefined) throw new NotFoundError('OBJ_MISSING', `object ${cur} is missing`);
      if (obj.type !== 'tag') return cur;
      cur = decodeTag(obj.data).object;
    }
    throw new ValidationError('OBJ_CORRUPT', `tag chain from ${oid} is longer than ${TAG_CHAIN_MAX}`);
  }

  async computeShallow(
    wants: readonly ObjectId[],
    clientShallows: readonly ObjectId[],
    deepen: DeepenRequest,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ShallowUpdate> {
    return computeShallow(this, wants, clientShallows, deepen, opts);
  }

  async enumerateObjects(req: EnumerateRequest): Promise<EnumerateResult> {
    const tags: TagRef[] = [];
    if (req.includeTags === true) {
      const state = this.#state ?? (await this.readState());
      for (const [name, value] of state.refs) {
        if (name.startsWith('refs/tags/')) tags.push({ oid: value.oid as ObjectId, peeled: value.peeled as ObjectId | undefined });
      }
    }
    // Clone-like requests of an unchanged repository are answered from the clone cache.
    const db = await this.#objects();
    const version = this.#db!.version;
    const key = enumCacheKey(this.#commitKeyPrefix, version, req);
    const graph = await db.graph(req.signal === undefined ? {} : { signal: req.signal });
    const clones = this.#deps.caches.clones;
    if (key !== undefined && graph.any) {
      const masks = clones.get(key);
      const hit = masks === undefined ? undefined : fromMasks(db, graph, masks);
      if (hit !== undefined) {
        req.onProgress?.('Counting objects', hit.objects.length, hit.objects.length);
        return { objects: hit.objects, hints: hit as unknown as PackHints };
      }
    }
    const res = await this.#fetchAnswer(version, req, tags);
    if (key !== undefined && graph.any && this.#db?.version === version) {
      const masks = toMasks(db, graph, res);
      if (masks !== undefined) clones.set(key, masks);
    }
    return { objects: res.objects, hints: res as unknown as PackHints };
  }

  /**
   * The enumeration of a fetch (haves given, no shallow boundary), shared by identical requests
   * of one repository state: clients that fetch the same update (a fleet of CI runners after a
   * push) wait for one walk instead of each running it, and small answers stay cached while the
   * state is current. The walk runs with the first requester's signal and progress; a request
   * that sees the shared walk fail while its own signal is not aborted walks for itself.
   */
  async #fetchAnswer(version: number, req: EnumerateRequest, tags: readonly TagRef[]): Promise<Enumeration> {
    const key = fetchCacheKey(this.#commitKeyPrefix, version, req);
    if (key === undefined) return enumerateObjects(this, req, tags);
    const fetches = this.#deps.caches.fetches;
    let first = false;
    try {
      const res = await fetches.getOrLoad(key, () => {
        first = true;
        return enumerateObjects(this, req, tags);
      });
      if (!first) req.onProgress?.('Counting objects', res.objects.length, res.objects.length);
      return res;
    } catch (err) {
      if (first || req.signal?.aborted === true) throw err;
      return enumerateObjects(this, req, tags);
    }
  }

  /**
   * Streams the pack. With the hints of the enumeration that listed `objects`, its paths guide
   * a delta search for objects sent whole, and a thin pack may use its edge (the client's trees
   * and blobs) as delta bases.
   */
  packObjects(objects: readonly ObjectId[], opts: PackObjectsOptions): AsyncIterable<Uint8Array> {
    const objectsDb = (): Promise<ObjectDb> => this.#objects();
    const { hints, ...rest } = opts;
    const e = hints as unknown as Enumeration | undefined;
    const full =
      e === undefined
        ? rest
        : {
            ...rest,
            edges: e.edges,
            hints: { nameHashes: e.nameHashes, edgeByName: e.edgeByName },
            ...(e.locations === undefined || e.graph === undefined ? {} : { locations: { graph: e.graph, at: e.locations } }),
            ...(e.packed === undefined || e.graph === undefined ? {} : { packed: { graph: e.graph, ...e.packed } }),
          };
    return (async function* stream() {
      yield* packObjects(await objectsDb(), objects, full);
    })();
  }

  async receivePack(input: AsyncIterable<Uint8Array>, opts: ReceivePackOptions): Promise<ReceivedPack> {
    const d = this.#deps;
    const deps = {
      store: d.store,
      repoId: this.record.id,
      objects: this,
      clock: d.clock,
      ...(d.spoolDir === undefined ? {} : { spoolDir: d.spoolDir }),
    };
    return ingestPack(input, deps, opts);
  }

  async updateRefs(txn: Transaction): Promise<TransactResult> {
    const res = await this.#deps.meta.transact(this.record.id, txn);
    if (res.ok) {
      this.#adopt(res.state);
      if ((txn.addPacks?.length ?? 0) > 0) this.#afterPush(res.state);
    }
    return res;
  }

  /** Merges small packs (geometric; all with `full`) and deletes files of packs removed longer than the grace ago. */
  async compact(opts: CompactOptions = {}): Promise<CompactResult> {
    const d = this.#deps;
    const res = await compactRepository(
      { store: d.store, meta: d.meta, caches: d.caches, repoId: this.record.id, clock: d.clock, ...(d.spoolDir === undefined ? {} : { spoolDir: d.spoolDir }) },
      opts,
    );
    this.#adopt(res.state);
    return res;
  }

  /** Starts a background compaction when the new pack list calls for one (never waits, never throws). */
  #afterPush(state: RepoState): void {
    const c = this.#deps.compactor;
    if (c === undefined) return;
    const key = `${this.#deps.caches.blocks.storeTag(this.#deps.store)}:${this.record.id}`;
    const opts: CompactOptions = { threads: 1, ...this.#deps.autoCompact };
    const grace = opts.graceMs ?? DEFAULT_REMOVAL_GRACE_MS;
    c.maybeCompact(key, state.packs, async () => {
      const res = await this.compact(opts);
      // Delete what this run removed once its grace has passed, even if no push comes.
      if (res.kind === 'compacted' || res.collected.waiting.length > 0) c.later(key, grace + 30_000, () => this.compact(opts));
    });
  }

  /** Takes a state if it is newer than the one held; the object db follows lazily. */
  #adopt(state: RepoState): void {
    if (this.#state === undefined || state.version > this.#state.version) this.#state = state;
  }

  /** The object db of the newest state seen (reading the state once if none yet). */
  async #objects(): Promise<ObjectDb> {
    if (this.#state === undefined) await this.readState();
    const state = this.#state!;
    const cur = this.#db;
    if (cur !== undefined && cur.version === state.version) return cur.db;
    const d = this.#deps;
    const db = ObjectDb.open({ store: d.store, repoId: this.record.id, caches: d.caches }, state.packs);
    const entry = { version: state.version, db };
    this.#db = entry;
    db.catch(() => {
      // A failed open (store outage) must not stick: the next read tries again.
      if (this.#db === entry) this.#db = undefined;
    });
    return db;
  }
}
