/**
 * The default MetaStore, on any ObjectStore with create-only puts (DESIGN.md section 4).
 *
 * Each repository is an append-only sequence of whole JSON states at
 * `meta/repos/<repo-id>/v/<version, 12 digits>`; the catalog is the same under
 * `meta/catalog/v/…`. A change reads the newest version N, checks every expectation, and
 * creates N+1 with `ifAbsent`: creating it is winning. A writer that lost re-reads and
 * re-checks (so a race with a change to other refs is retried, not reported), with jittered
 * back-off, up to META_ATTEMPTS times. Within one process, changes to one repository (or to
 * the catalog) queue behind each other instead of racing. See version-log.ts for how reads
 * stay linearizable while old versions are collected.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ConflictError, NotFoundError, StoreError, ValidationError } from '../../core/errors.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type {
  CreateRepoInput,
  MetaStore,
  PackRecord,
  RefConflict,
  RefValue,
  RepoRecord,
  RepoSettings,
  RepoState,
  TransactResult,
  Transaction,
} from '../meta-store.js';
import { Lru } from './lru.js';
import { type Catalog, checkSettings, decodeCatalog, decodeState, encodeCatalog, encodeState } from './state-codec.js';
import { VersionLog, type VersionLogConfig } from './version-log.js';
import { checkText, checkTransaction } from '../record-checks.js';

/** Lost create-only races tolerated per change before META_CONTENTION. */
const META_ATTEMPTS = 100;
/** Versions kept behind the newest one. */
const KEEP_VERSIONS = 64;
/** Hint object and collection cadence, in versions. */
const MILESTONE_EVERY = 16;
/** Default grace before a superseded version may be deleted (see version-log.ts). */
const DEFAULT_GC_GRACE_MS = 10 * 60_000;
/** Parsed states kept in memory: count and total JSON bytes. */
const CACHE_ENTRIES = 256;
const CACHE_BYTES = 64 * 1024 * 1024;
/** Repositories whose probe hints are remembered. */
const LOGS_MAX = 10_000;
/** Repository ids: what idGenerator makes (32 hex), or any safe key component. */
const REPO_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** Options of a StoreMetaStore. */
export interface StoreMetaStoreOptions {
  readonly store: ObjectStore;
  /** Wall clock for createdMs and writtenMs; defaults to Date.now. */
  readonly clock?: () => number;
  /** Makes repository ids; defaults to 16 random bytes in hex. */
  readonly idGenerator?: () => string;
  /** How long a superseded version is kept at least (default 10 minutes). */
  readonly gcGraceMs?: number;
}

function defaultId(): string {
  return randomBytes(16).toString('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Jittered exponential back-off after a lost race: up to ~32 ms. */
function backoff(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(32, 2 ** Math.min(attempt, 5)));
}

function repoNotFound(what: string): NotFoundError {
  return new NotFoundError('REPO_NOT_FOUND', `repository ${what} does not exist`);
}

function contention(what: string): StoreError {
  return new StoreError('META_CONTENTION', `meta store: too many concurrent changes to ${what}; try again`);
}

/** A MetaStore kept as versioned JSON documents in an ObjectStore. */
export class StoreMetaStore implements MetaStore {
  readonly description: string;
  private readonly store: ObjectStore;
  private readonly clock: () => number;
  private readonly idGenerator: () => string;
  private readonly graceMs: number;
  private readonly catalogLog: VersionLog;
  private readonly logs = new Lru<string, VersionLog>(LOGS_MAX);
  private readonly states = new Lru<string, RepoState | Catalog>(CACHE_ENTRIES, CACHE_BYTES);
  private readonly pending = new Set<Promise<void>>();
  private readonly logConfig: VersionLogConfig;

  constructor(opts: StoreMetaStoreOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? Date.now;
    this.idGenerator = opts.idGenerator ?? defaultId;
    this.graceMs = opts.gcGraceMs ?? DEFAULT_GC_GRACE_MS;
    this.description = `store:${opts.store.description}`;
    this.logConfig = {
      store: this.store,
      keepVersions: KEEP_VERSIONS,
      graceMs: this.graceMs,
      every: MILESTONE_EVERY,
      now: () => performance.now(),
      background: (work: () => Promise<void>) => this.background(work),
    };
    this.catalogLog = new VersionLog('meta/catalog/', this.logConfig);
  }

  async createRepo(input: CreateRepoInput): Promise<RepoRecord> {
    const settings = checkSettings(input.settings ?? {});
    if (typeof input.name !== 'string' || input.name.length === 0) {
      throw new ValidationError('REPO_BAD_NAME', 'a repository name must not be empty');
    }
    checkText(input.head, 'head');
    if ((await this.readCatalog()).repos.has(input.name)) throw repoExists(input.name);
    // The state exists before the name is published, so a visible name always has one.
    const id = await this.writeInitialState(input.head);
    try {
      return await this.updateCatalog((repos) => {
        if (repos.has(input.name)) throw repoExists(input.name);
        const record: RepoRecord = { id, name: input.name, createdMs: this.clock(), settings };
        repos.set(input.name, record);
        return record;
      });
    } catch (err) {
      // Nobody knows this id: its state can go at once.
      this.background(() => this.store.delete(this.logOf(id).key(1)));
      throw err;
    }
  }

  async tryGetRepo(name: string): Promise<RepoRecord | undefined> {
    return (await this.readCatalog()).repos.get(name);
  }

  async listRepos(): Promise<RepoRecord[]> {
    const records = [...(await this.readCatalog()).repos.values()];
    return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async renameRepo(from: string, to: string): Promise<RepoRecord> {
    if (typeof to !== 'string' || to.length === 0) {
      throw new ValidationError('REPO_BAD_NAME', 'a repository name must not be empty');
    }
    if (from === to) {
      const record = await this.tryGetRepo(from);
      if (record === undefined) throw repoNotFound(from);
      return record;
    }
    return this.updateCatalog((repos) => {
      const record = repos.get(from);
      if (record === undefined) throw repoNotFound(from);
      if (repos.has(to)) throw repoExists(to);
      const renamed: RepoRecord = { ...record, name: to };
      repos.delete(from);
      repos.set(to, renamed);
      return renamed;
    });
  }

  async updateRepoSettings(name: string, settings: RepoSettings): Promise<RepoRecord> {
    const clean = checkSettings(settings);
    return this.updateCatalog((repos) => {
      const record = repos.get(name);
      if (record === undefined) throw repoNotFound(name);
      const updated: RepoRecord = { ...record, settings: clean };
      repos.set(name, updated);
      return updated;
    });
  }

  async deleteRepo(name: string): Promise<RepoRecord> {
    return this.updateCatalog((repos) => {
      const record = repos.get(name);
      if (record === undefined) throw repoNotFound(name);
      repos.delete(name);
      return record;
    });
  }

  async readState(repoId: string): Promise<RepoState> {
    return (await this.readNewestState(repoId)).state;
  }

  async transact(repoId: string, txn: Transaction): Promise<TransactResult> {
    checkTransaction(txn);
    const log = this.logOf(repoId);
    return log.exclusive(async () => {
      for (let attempt = 0; attempt < META_ATTEMPTS; attempt += 1) {
        if (attempt > 0) await backoff(attempt);
        const started = performance.now();
        const { state } = await this.readNewestState(repoId);
        const conflicts = findConflicts(state, txn);
        if (conflicts.length > 0) return { ok: false, conflicts };
        const next = applyTransaction(state, txn);
        // A read older than a quarter of the grace may be too old to write after (version-log.ts).
        if (this.graceMs > 0 && performance.now() - started > this.graceMs / 4) continue;
        const body = encodeState(next, this.clock());
        if (await log.append(next.version, body)) {
          this.states.set(log.key(next.version), next, body.byteLength);
          return { ok: true, state: next };
        }
      }
      throw contention(`repository ${repoId}`);
    });
  }

  /** Waits for background work (hint objects, collection); the ObjectStore is the caller's to close. */
  async close(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Runs best-effort work in the background; close() waits for it. */
  private background(work: () => Promise<void>): void {
    const p: Promise<void> = work()
      .catch(() => undefined) // best effort: a failed hint or collection is retried later
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private logOf(repoId: string): VersionLog {
    if (typeof repoId !== 'string' || !REPO_ID_RE.test(repoId)) throw repoNotFound(`id ${String(repoId)}`);
    let log = this.logs.get(repoId);
    if (log === undefined) {
      log = new VersionLog(`meta/repos/${repoId}/`, this.logConfig);
      this.logs.set(repoId, log);
    }
    return log;
  }

  /** The newest state, read through the cache; retries if collection raced the read. */
  private async readNewestState(repoId: string): Promise<{ state: RepoState }> {
    const log = this.logOf(repoId);
    for (let attempt = 0; attempt < META_ATTEMPTS; attempt += 1) {
      const version = await log.newest();
      if (version === 0) throw repoNotFound(`id ${repoId}`);
      const key = log.key(version);
      const cached = this.states.get(key);
      if (cached !== undefined && 'head' in cached) return { state: cached };
      const bytes = await log.read(version);
      if (bytes === undefined) continue; // collected after we found it: look again
      const state = decodeState(bytes, version, key);
      this.states.set(key, state, bytes.byteLength);
      return { state };
    }
    throw contention(`repository ${repoId}`);
  }

  private async readCatalog(): Promise<Catalog> {
    const log = this.catalogLog;
    for (let attempt = 0; attempt < META_ATTEMPTS; attempt += 1) {
      const version = await log.newest();
      if (version === 0) return { version: 0, repos: new Map() };
      const key = log.key(version);
      const cached = this.states.get(key);
      if (cached !== undefined && 'repos' in cached) return cached;
      const bytes = await log.read(version);
      if (bytes === undefined) continue;
      const catalog = decodeCatalog(bytes, version, key);
      this.states.set(key, catalog, bytes.byteLength);
      return catalog;
    }
    throw contention('the catalog');
  }

  /** Applies `change` to the newest catalog and publishes it as the next version (CAS loop). */
  private async updateCatalog<T>(change: (repos: Map<string, RepoRecord>) => T): Promise<T> {
    const log = this.catalogLog;
    return log.exclusive(async () => {
      for (let attempt = 0; attempt < META_ATTEMPTS; attempt += 1) {
        if (attempt > 0) await backoff(attempt);
        const started = performance.now();
        const current = await this.readCatalog();
        const repos = new Map(current.repos);
        const result = change(repos); // throws REPO_EXISTS / REPO_NOT_FOUND
        if (this.graceMs > 0 && performance.now() - started > this.graceMs / 4) continue;
        const next: Catalog = { version: current.version + 1, repos };
        const body = encodeCatalog(next, this.clock());
        if (await log.append(next.version, body)) {
          this.states.set(log.key(next.version), next, body.byteLength);
          return result;
        }
      }
      throw contention('the catalog');
    });
  }

  /** Writes version 1 of a fresh repository id; retries on the (unlikely) id collision. */
  private async writeInitialState(head: string): Promise<string> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const id = this.idGenerator();
      if (!REPO_ID_RE.test(id)) throw new ValidationError('ARG_INVALID', `idGenerator made an unsafe id ${id}`);
      const state: RepoState = { version: 1, head, refs: new Map(), packs: [] };
      const log = this.logOf(id);
      if (await log.append(1, encodeState(state, this.clock()))) return id;
    }
    throw new StoreError('META_CONTENTION', 'meta store: could not find an unused repository id');
  }
}

function repoExists(name: string): ConflictError {
  return new ConflictError('REPO_EXISTS', `repository ${name} already exists`);
}

/** The refs whose expectation fails against `state`, with their actual values. */
function findConflicts(state: RepoState, txn: Transaction): RefConflict[] {
  const conflicts: RefConflict[] = [];
  for (const change of txn.refs ?? []) {
    const actual = state.refs.get(change.name);
    const exp = change.expected;
    const ok =
      exp.kind === 'any' ||
      (exp.kind === 'must-exist' && actual !== undefined) ||
      (exp.kind === 'must-not-exist' && actual === undefined) ||
      (exp.kind === 'must-match' && actual !== undefined && actual.oid === exp.oid);
    if (!ok) conflicts.push({ name: change.name, actual });
  }
  return conflicts;
}

/** The next state: refs moved, HEAD repointed, packs added (newest first) then removed. */
function applyTransaction(state: RepoState, txn: Transaction): RepoState {
  const refs = new Map<string, RefValue>(state.refs);
  for (const change of txn.refs ?? []) {
    if (change.value === null) refs.delete(change.name);
    else {
      const { oid, peeled } = change.value;
      refs.set(change.name, Object.freeze(peeled === undefined ? { oid } : { oid, peeled }));
    }
  }
  let packs: readonly PackRecord[] = state.packs;
  const adds = txn.addPacks ?? [];
  const removes = new Set(txn.removePacks ?? []);
  if (adds.length > 0 || removes.size > 0) {
    const known = new Set(packs.map((p) => p.name));
    const added: PackRecord[] = [];
    for (const { name, size, objects, createdMs, source } of adds) {
      if (known.has(name)) continue; // already visible: adding is idempotent
      known.add(name);
      added.push(Object.freeze({ name, size, objects, createdMs, source }));
    }
    packs = [...added, ...packs].filter((p) => !removes.has(p.name));
  }
  return Object.freeze({
    version: state.version + 1,
    head: txn.setHead ?? state.head,
    refs,
    packs: Object.freeze(packs),
  });
}
