/**
 * The MetaStore for clusters, on etcd (DESIGN.md section 4). Key layout: etcd-layout.ts.
 *
 * transact: ONE etcd transaction comparing every expected old value (must-match: value
 * equal; must-not-exist: version 0; must-exist: version > 0; any: nothing), the version
 * key and "no journal pending"; on success it writes the refs, packs, HEAD and version+1.
 * Its failure branch reads the compared keys at the same revision, so a lost race is
 * reported with actual values from one consistent moment; a failure of the version alone
 * (a concurrent change to other refs) re-reads and retries, up to TXN_ATTEMPTS times.
 * Changes too big for one etcd transaction go through the journal (journal.ts), still
 * all-or-nothing. Within one process, changes to one repository queue behind each other.
 *
 * Reads and caches: each repository state read is cached and kept current by a watch on
 * the prefix (prefix-watch.ts), which also applies other nodes' pushes and catalog changes.
 * With `reads: 'linearizable'` (default) a read first asks etcd (a quorum read) for the
 * repository's version, so it never returns a stale state, and uses the cache when it is at
 * that version (waiting briefly for the watch to deliver a newer one) instead of reading
 * the whole repository. With `reads: 'cached'`, while the watch is live, reads are served
 * from memory alone (stale by at most the watch latency). Either way a state this process
 * committed replaces the cached one at once, so no read returns anything older.
 */
import type { IEvent } from 'etcd3';
import { StoreError } from '../../core/errors.js';
import type { CreateRepoInput, MetaStore, RepoRecord, RepoSettings, RepoState, TransactResult, Transaction } from '../meta-store.js';
import { defaultRepoId, EtcdCatalog, repoNotFound, type CatalogChange } from './etcd-catalog.js';
import { EtcdConnection, prefixEnd } from './etcd-connection.js';
import { decodePointer, decodeRecord, decodeVersion, EtcdLayout, type JournalOp, REPO_ID_RE } from './etcd-layout.js';
import type { EtcdOptions } from './etcd-options.js';
import { commitJournal, foldJournal, type JournalContext } from './journal.js';
import { PrefixWatch } from './prefix-watch.js';
import { RepoCache } from './repo-cache.js';
import { lostRace, planSmall } from './small-txn.js';
import { checkTransaction } from '../record-checks.js';
import { findConflicts, planOps } from './transact-plan.js';

/** Attempts of one transact before META_CONTENTION (each lost only to a concurrent change). */
const TXN_ATTEMPTS = 100;
/** How long a read waits for the watch to deliver a version etcd reported, before reading it all. */
const CATCH_UP_MS = 500;

/** Extras of an EtcdMetaStore beyond the connection options. */
export interface EtcdMetaStoreExtras {
  /** Wall clock for createdMs; defaults to Date.now. */
  readonly clock?: () => number;
  /** Makes repository ids; defaults to 16 random bytes in hex. */
  readonly idGenerator?: () => string;
}

/** Counters for tests and metrics. */
export interface EtcdMetaStats {
  /** Small quorum reads (version probes, catalog look-ups). */
  probes: number;
  /** Whole-repository reads. */
  fullReads: number;
  /** Watch events received. */
  watchEvents: number;
  /** Transactions committed through the journal (too big for one etcd transaction). */
  journalled: number;
}

interface CatalogCache {
  revision: number;
  readonly epoch: number;
  readonly repos: Map<string, RepoRecord>;
  /** Names this process changed at a revision the watch has not delivered yet: older events skip them. */
  readonly own: Map<string, number>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A MetaStore in etcd (see the header). Build with `EtcdMetaStore.open`. */
export class EtcdMetaStore implements MetaStore {
  readonly description: string;
  readonly connection: EtcdConnection;
  readonly stats: EtcdMetaStats = { probes: 0, fullReads: 0, watchEvents: 0, journalled: 0 };
  private readonly layout: EtcdLayout;
  private readonly watch: PrefixWatch;
  private readonly catalogOps: EtcdCatalog;
  private readonly journalCtx: JournalContext;
  private readonly repos = new Map<string, RepoCache>();
  private catalog: CatalogCache | undefined;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly ownsConnection: boolean;

  private constructor(conn: EtcdConnection, extras: EtcdMetaStoreExtras, owns: boolean) {
    this.connection = conn;
    this.ownsConnection = owns;
    this.layout = new EtcdLayout(conn.prefix);
    this.description = `etcd:${conn.endpointList}/${conn.prefix}`;
    const clock = extras.clock ?? Date.now;
    this.watch = new PrefixWatch(conn, (events) => this.onEvents(events));
    this.catalogOps = new EtcdCatalog({
      conn,
      layout: this.layout,
      clock,
      idGenerator: extras.idGenerator ?? defaultRepoId,
      committed: (change) => this.catalogCommitted(change),
    });
    this.journalCtx = { conn, layout: this.layout, maxTxnOps: conn.options.maxTxnOps, maxRequestBytes: conn.options.maxRequestBytes, clock };
  }

  /** Connects, starts the watch; throws StoreError('STORE_IO') if etcd does not answer within dialTimeoutMs. */
  static async open(options: EtcdOptions, extras: EtcdMetaStoreExtras = {}): Promise<EtcdMetaStore> {
    const conn = await EtcdConnection.open(options);
    try {
      return await EtcdMetaStore.over(conn, extras, true);
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  /** A meta store on an existing connection; close() then leaves the connection open unless `owns`. */
  static async over(conn: EtcdConnection, extras: EtcdMetaStoreExtras = {}, owns = false): Promise<EtcdMetaStore> {
    const meta = new EtcdMetaStore(conn, extras, owns);
    try {
      await meta.watch.start(conn.options.dialTimeoutMs);
    } catch (err) {
      await meta.watch.close();
      throw err;
    }
    return meta;
  }

  createRepo(input: CreateRepoInput): Promise<RepoRecord> {
    return this.catalogOps.create(input);
  }

  async tryGetRepo(name: string): Promise<RepoRecord | undefined> {
    const cached = await this.cachedCatalog();
    if (cached !== undefined) return cached.get(name);
    this.stats.probes += 1;
    return this.catalogOps.get(name);
  }

  async listRepos(): Promise<RepoRecord[]> {
    const repos = (await this.cachedCatalog()) ?? (await this.catalogOps.readAll()).repos;
    return [...repos.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  renameRepo(from: string, to: string): Promise<RepoRecord> {
    return this.catalogOps.rename(from, to);
  }

  updateRepoSettings(name: string, settings: RepoSettings): Promise<RepoRecord> {
    return this.catalogOps.updateSettings(name, settings);
  }

  deleteRepo(name: string): Promise<RepoRecord> {
    return this.catalogOps.delete(name);
  }

  async readState(repoId: string): Promise<RepoState> {
    this.checkId(repoId);
    return (await this.current(repoId)).snapshot();
  }

  async transact(repoId: string, txn: Transaction): Promise<TransactResult> {
    checkTransaction(txn);
    this.checkId(repoId);
    return this.exclusive(repoId, async () => {
      let cache = this.repos.get(repoId) ?? (await this.load(repoId));
      for (let attempt = 0; attempt < TXN_ATTEMPTS; attempt += 1) {
        if (attempt > 0) await sleep(Math.random() * Math.min(32, 2 ** Math.min(attempt, 5)));
        if (cache.journal !== undefined) {
          await foldJournal(this.journalCtx, repoId, cache.journal);
          cache = await this.load(repoId);
          continue;
        }
        const plan = planSmall(this.layout, this.connection.options, repoId, cache, txn);
        if (plan === undefined) return this.transactLarge(repoId, txn);
        // The watch may apply our own commit to `cache` before the answer arrives: build on a fork.
        const base = cache.fork();
        const res = await this.connection.txn(`change repository ${repoId}`, plan.compare, plan.success, plan.failure);
        if (res.succeeded) {
          return { ok: true, state: this.committed(repoId, cache, base, plan.ops, txn.setHead, Number(res.header.revision)) };
        }
        const outcome = lostRace(repoId, plan, res);
        if (outcome.appliedAt !== undefined) {
          return { ok: true, state: this.committed(repoId, cache, base, plan.ops, txn.setHead, outcome.appliedAt) };
        }
        if (outcome.conflicts.length > 0) return { ok: false, conflicts: outcome.conflicts };
        cache = await this.refresh(repoId, cache, outcome.version, outcome.journal);
      }
      throw new StoreError('META_CONTENTION', `etcd meta store: too many concurrent changes to repository ${repoId}; try again`);
    });
  }

  /** Stops the watch and, if this store opened it, closes the client. */
  async close(): Promise<void> {
    await this.watch.close();
    this.repos.clear();
    this.catalog = undefined;
    if (this.ownsConnection) this.connection.close();
  }

  private checkId(repoId: string): void {
    if (typeof repoId !== 'string' || !REPO_ID_RE.test(repoId)) throw repoNotFound(`id ${String(repoId)}`);
  }

  /** Runs changes to one repository one at a time within this process. */
  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  private tracked(cache: RepoCache): boolean {
    return this.watch.live && cache.epoch === this.watch.epoch;
  }

  /** The repository's newest state (see the header for when the cache is used). */
  private async current(id: string): Promise<RepoCache> {
    const cached = this.repos.get(id);
    if (this.connection.options.reads === 'cached' && cached !== undefined && this.tracked(cached)) return this.touch(id, cached);
    this.stats.probes += 1;
    const { kv } = await this.connection.get(`read the version of repository ${id}`, this.layout.versionKey(id));
    if (kv === undefined) throw repoNotFound(`id ${id}`);
    const version = decodeVersion(kv.value.toString('utf8'), `version of ${id}`);
    const atLeast = (): RepoCache | undefined => {
      const c = this.repos.get(id);
      return c !== undefined && c.version >= version ? c : undefined;
    };
    const now = atLeast();
    if (now !== undefined) return this.touch(id, now);
    const behind = this.repos.get(id);
    if (behind !== undefined && this.tracked(behind) && (await this.watch.waitFor(() => atLeast() !== undefined, CATCH_UP_MS))) {
      const caught = atLeast();
      if (caught !== undefined) return this.touch(id, caught);
    }
    return this.load(id);
  }

  /** Reads a repository's whole state at one revision and caches it. */
  private async load(id: string): Promise<RepoCache> {
    this.stats.fullReads += 1;
    const { conn, layout } = { conn: this.connection, layout: this.layout };
    const { kvs, revision } = await conn.rangeAll(`read repository ${id}`, Buffer.from(layout.repoPrefix(id)), Buffer.from(layout.repoStateEnd(id)));
    const pointerKv = kvs.find((kv) => kv.key.toString('utf8') === layout.journalKey(id));
    let chunks: typeof kvs = [];
    if (pointerKv !== undefined) {
      const pointer = decodePointer(pointerKv.value.toString('utf8'), `journal of ${id}`);
      const prefix = Buffer.from(layout.journalChunkPrefix(id, pointer.txn));
      chunks = (await conn.rangeAll(`read a pending change of ${id}`, prefix, prefixEnd(prefix), revision, 4)).kvs;
    }
    const cache = RepoCache.fromRange(layout, id, kvs, revision, chunks);
    if (cache === undefined) throw repoNotFound(`id ${id}`);
    return this.install(id, cache);
  }

  /** Caches a state unless a newer one is cached; marks it tracked if the watch will keep it current. */
  private install(id: string, cache: RepoCache): RepoCache {
    const existing = this.repos.get(id);
    if (
      existing !== undefined &&
      (existing.revision > cache.revision || (existing.revision === cache.revision && this.tracked(existing)))
    ) {
      return this.touch(id, existing);
    }
    cache.epoch = this.watch.tracks(cache.revision) ? this.watch.epoch : -1;
    this.repos.delete(id);
    this.repos.set(id, cache);
    for (const oldest of this.repos.keys()) {
      if (this.repos.size <= this.connection.options.cacheRepos) break;
      this.repos.delete(oldest);
    }
    return cache;
  }

  /** Marks a cached state as recently used (the map's order is the LRU order). */
  private touch(id: string, cache: RepoCache): RepoCache {
    if (this.repos.get(id) === cache) {
      this.repos.delete(id);
      this.repos.set(id, cache);
    }
    return cache;
  }

  /** A state at least at `version` after a lost race: from the watch if it is about to arrive, else read. */
  private async refresh(id: string, cache: RepoCache, version: number, journal: boolean): Promise<RepoCache> {
    if (!journal && version > cache.version && this.tracked(cache)) {
      const caught = await this.watch.waitFor(() => (this.repos.get(id)?.version ?? -1) >= version, CATCH_UP_MS);
      const now = this.repos.get(id);
      if (caught && now !== undefined) return now;
    }
    return this.load(id);
  }

  /**
   * Builds the committed state on `base` (a fork of `cache` taken before the commit) and
   * caches it unless the watch already moved the cache to or past it.
   */
  private committed(id: string, cache: RepoCache, base: RepoCache, ops: readonly JournalOp[], setHead: string | undefined, revision: number): RepoState {
    const next = base;
    next.commit(ops, setHead ?? base.head, base.version + 1, revision);
    const state = next.snapshot();
    const current = this.repos.get(id);
    if (current === undefined || current.revision < revision) {
      // Nothing else changed this repository between base and our commit (the version compare).
      next.epoch = current === cache && this.tracked(cache) ? this.watch.epoch : this.watch.tracks(revision) ? this.watch.epoch : -1;
      this.repos.delete(id);
      this.repos.set(id, next);
    }
    return state;
  }

  /** A transaction too big for one etcd transaction: checked on a fresh state, then journalled. */
  private async transactLarge(id: string, txn: Transaction): Promise<TransactResult> {
    for (let attempt = 0; attempt < TXN_ATTEMPTS; attempt += 1) {
      if (attempt > 0) await sleep(Math.random() * Math.min(32, 2 ** Math.min(attempt, 5)));
      const cache = await this.current(id);
      if (cache.journal !== undefined) {
        await foldJournal(this.journalCtx, id, cache.journal);
        await this.load(id);
        continue;
      }
      const conflicts = findConflicts(cache.snapshot(), txn);
      if (conflicts.length > 0) return { ok: false, conflicts };
      const ops = planOps(cache.packEntries(), txn, cache.version + 1);
      const next = cache.fork();
      const commit = await commitJournal(this.journalCtx, id, cache.version, ops, txn.setHead);
      if (commit === undefined) continue; // the repository moved: re-read and re-check
      this.stats.journalled += 1;
      next.commit(ops, txn.setHead ?? next.head, next.version + 1, commit.revision);
      const state = next.snapshot();
      this.repos.delete(id); // the next read sees the journal or its folded keys
      // Best effort: a fold cut short is finished by the next writer, and readers lay the journal over.
      await foldJournal(this.journalCtx, id, commit.journal).catch(() => undefined);
      return { ok: true, state };
    }
    throw new StoreError('META_CONTENTION', `etcd meta store: too many concurrent changes to repository ${id}; try again`);
  }

  /** The catalog from memory in `cached` mode while the watch is live; else undefined (ask etcd). */
  private async cachedCatalog(): Promise<ReadonlyMap<string, RepoRecord> | undefined> {
    if (this.connection.options.reads !== 'cached' || !this.watch.live) return undefined;
    if (this.catalog !== undefined && this.catalog.epoch === this.watch.epoch) return this.catalog.repos;
    const { repos, revision } = await this.catalogOps.readAll();
    if (!this.watch.tracks(revision)) return repos;
    this.catalog = { revision, epoch: this.watch.epoch, repos, own: new Map() };
    return repos;
  }

  /** Applies this process's own catalog change at once; the watch re-applies it idempotently. */
  private catalogCommitted(change: CatalogChange): void {
    const catalog = this.catalog;
    if (catalog === undefined || catalog.epoch !== this.watch.epoch || change.revision <= catalog.revision) return;
    if (change.remove !== undefined) {
      catalog.repos.delete(change.remove);
      catalog.own.set(change.remove, change.revision);
    }
    if (change.set !== undefined) {
      catalog.repos.set(change.set.name, change.set);
      catalog.own.set(change.set.name, change.revision);
    }
  }

  private onEvents(events: readonly IEvent[]): void {
    const prefix = this.connection.prefix;
    for (const ev of events) {
      this.stats.watchEvents += 1;
      const key = ev.kv.key.toString('utf8');
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const revision = Number(ev.kv.mod_revision);
      if (rest.startsWith('catalog/')) {
        this.catalogEvent(rest.slice(8), ev, revision);
      } else if (rest.startsWith('repos/')) {
        const slash = rest.indexOf('/', 6);
        if (slash < 0) continue;
        const id = rest.slice(6, slash);
        const cache = this.repos.get(id);
        // Events of the revision a cache was read at are already in it; applying them again is harmless.
        if (cache === undefined || cache.epoch !== this.watch.epoch || revision < cache.revision) continue;
        try {
          if (cache.apply(id, rest.slice(slash + 1), ev.type, ev.kv, revision) === 'drop') this.repos.delete(id);
        } catch {
          this.repos.delete(id); // undecodable: the next read reports it
        }
      }
    }
  }

  private catalogEvent(name: string, ev: IEvent, revision: number): void {
    const catalog = this.catalog;
    if (catalog === undefined || catalog.epoch !== this.watch.epoch || revision < catalog.revision) return;
    catalog.revision = revision;
    const own = catalog.own.get(name);
    if (own !== undefined && revision < own) return; // older than what this process wrote there
    catalog.own.delete(name);
    if (ev.type === 'Delete') catalog.repos.delete(name);
    else {
      try {
        catalog.repos.set(name, decodeRecord(ev.kv.value, name));
      } catch {
        this.catalog = undefined; // undecodable: the next read reports it
      }
    }
  }
}
