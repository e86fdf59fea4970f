/**
 * Opens and manages repositories by name over an ObjectStore and a MetaStore. Every name
 * passes checkRepoName before anything else sees it; HEAD targets pass checkRefName.
 */
import { NotFoundError, StoreError, ValidationError } from '../core/errors.js';
import { checkRefName } from '../git/refname/check.js';
import type { MetaStore, RepoRecord, RepoSettings } from '../meta/meta-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { RepoCaches } from './cache/repo-caches.js';
import { repoPrefix } from './keys.js';
import { checkRepoName } from './name.js';
import type { Repository, RepositoryHost } from './repository.js';
import { StoredRepository, type StoredRepositoryDeps } from './stored-repository.js';
import type { CompactOptions, CompactResult } from './compact/compact.js';

/** HEAD of a new repository unless the caller names another branch. */
export const DEFAULT_HEAD = 'refs/heads/main';

/**
 * The full ref HEAD should point at: `main` means `refs/heads/main`; a `refs/...` name is
 * taken as given. Throws ValidationError('REF_BAD_NAME').
 */
export function normalizeHeadRef(ref: string): string {
  const full = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
  checkRefName(full);
  if (!full.startsWith('refs/heads/')) {
    throw new ValidationError('REF_BAD_NAME', `HEAD must point at a branch (refs/heads/...), not ${JSON.stringify(full.slice(0, 200))}`);
  }
  return full;
}

/** A RepositoryHost backed by the stores; see StoredRepositoryDeps. */
export class StoredRepositoryHost implements RepositoryHost {
  readonly #deps: StoredRepositoryDeps;

  constructor(deps: StoredRepositoryDeps) {
    this.#deps = deps;
  }

  /** Convenience constructor from the separate parts. */
  static of(store: ObjectStore, meta: MetaStore, caches: RepoCaches, clock: () => number = Date.now): StoredRepositoryHost {
    return new StoredRepositoryHost({ store, meta, caches, clock });
  }

  async open(name: string): Promise<Repository> {
    return new StoredRepository(await this.#record(name), this.#deps);
  }

  async create(name: string, opts: { defaultBranch?: string; settings?: RepoSettings } = {}): Promise<Repository> {
    const checked = checkRepoName(name);
    const head = normalizeHeadRef(opts.defaultBranch ?? DEFAULT_HEAD);
    const record = await this.#deps.meta.createRepo({
      name: checked,
      head,
      ...(opts.settings === undefined ? {} : { settings: opts.settings }),
    });
    return new StoredRepository(record, this.#deps);
  }

  async list(): Promise<RepoRecord[]> {
    return this.#deps.meta.listRepos();
  }

  async rename(from: string, to: string): Promise<RepoRecord> {
    return this.#deps.meta.renameRepo(checkRepoName(from), checkRepoName(to));
  }

  /**
   * Removes the name from the catalog (the repository is gone for every reader at once),
   * then deletes its files under repos/<id>/ best-effort: a failure there leaves garbage
   * for housekeeping, never a half-visible repository.
   */
  async delete(name: string): Promise<RepoRecord> {
    const record = await this.#deps.meta.deleteRepo(checkRepoName(name));
    await this.#deleteData(record.id);
    return record;
  }

  async setHead(name: string, ref: string): Promise<void> {
    const record = await this.#record(name);
    const head = normalizeHeadRef(ref);
    const res = await this.#deps.meta.transact(record.id, { setHead: head });
    if (!res.ok) {
      // A transaction without ref expectations cannot conflict; treat it as a broken store.
      throw new StoreError('META_CORRUPT', `setting HEAD of ${record.name} reported conflicts`);
    }
  }

  async updateSettings(name: string, settings: RepoSettings): Promise<RepoRecord> {
    return this.#deps.meta.updateRepoSettings(checkRepoName(name), settings);
  }

  /** Compacts a repository's packs now (`stowage repo compact`); see compact/compact.ts. */
  async compact(name: string, opts: CompactOptions = {}): Promise<CompactResult> {
    return new StoredRepository(await this.#record(name), this.#deps).compact(opts);
  }

  async #record(name: string): Promise<RepoRecord> {
    const checked = checkRepoName(name);
    const record = await this.#deps.meta.tryGetRepo(checked);
    if (record === undefined) throw new NotFoundError('REPO_NOT_FOUND', `repository ${checked} does not exist`);
    return record;
  }

  async #deleteData(repoId: string): Promise<void> {
    const store = this.#deps.store;
    try {
      const keys: string[] = [];
      for await (const info of store.list(repoPrefix(repoId))) keys.push(info.key);
      // Packs before their indexes would let a reader find an idx without its pack; delete
      // indexes first, so a racing reader sees absence rather than a dangling index.
      keys.sort((a, b) => Number(b.endsWith('.idx')) - Number(a.endsWith('.idx')));
      for (const key of keys) {
        try {
          await store.delete(key);
        } catch {
          // Best effort: housekeeping collects what is left.
        }
      }
    } catch {
      // Listing failed: housekeeping collects the data later.
    }
  }
}
