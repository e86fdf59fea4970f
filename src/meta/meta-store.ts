/**
 * The meta store contract: what must change atomically. The catalog maps repository
 * names to immutable ids; each repository has a state (HEAD, refs, visible packs) that
 * moves only by `transact`, all-or-nothing and linearizable per repository.
 *
 * A lost race is a value (`{ ok: false, conflicts }`); a broken store throws StoreError.
 * Meta stores know nothing of Git object formats: ids and ref names are opaque strings
 * here, checked by the layers above.
 */

/** Per-repository settings kept in the catalog. */
export interface RepoSettings {
  /** fsck severity overrides, as git's `receive.fsck.<id>`: id (camelCase) -> error|warn|ignore. */
  readonly fsck?: Readonly<Record<string, 'error' | 'warn' | 'ignore'>>;
  /** Free-form description shown by `repo show` and the API. */
  readonly description?: string;
}

/** A catalog entry. `id` never changes and is safe as an object-store key component. */
export interface RepoRecord {
  readonly id: string;
  readonly name: string;
  readonly createdMs: number;
  readonly settings: RepoSettings;
}

/** The value of a direct ref: the object id and, for annotated tags, what it peels to. */
export interface RefValue {
  readonly oid: string;
  /** The non-tag object an annotated tag finally points at. */
  readonly peeled?: string;
}

/** A pack made visible in a repository. Its files are `<name>.pack` and `<name>.idx`. */
export interface PackRecord {
  /** `pack-<40 hex>`: the pack's trailing checksum, as git names packs. */
  readonly name: string;
  readonly size: number;
  readonly objects: number;
  readonly createdMs: number;
  /** Why the pack exists: a push, an import, a compaction. */
  readonly source: 'receive' | 'import' | 'compact' | 'gc';
}

/** A snapshot of one repository's mutable state. */
export interface RepoState {
  /** Increases by one with every successful transaction. */
  readonly version: number;
  /** The ref HEAD points at (a symref), e.g. `refs/heads/main`; it may be unborn. */
  readonly head: string;
  /** Direct refs by full name (`refs/heads/…`, `refs/tags/…`), HEAD excluded. */
  readonly refs: ReadonlyMap<string, RefValue>;
  /** Visible packs, newest first. */
  readonly packs: readonly PackRecord[];
}

/** What a ref must be for a change to apply (gix PreviousValue). */
export type RefExpectation =
  | { readonly kind: 'any' }
  | { readonly kind: 'must-exist' }
  | { readonly kind: 'must-not-exist' }
  | { readonly kind: 'must-match'; readonly oid: string };

/** One ref change: set to `value`, or delete when `value` is null. */
export interface RefChange {
  readonly name: string;
  readonly expected: RefExpectation;
  readonly value: RefValue | null;
}

/** An all-or-nothing change to one repository. */
export interface Transaction {
  readonly refs?: readonly RefChange[];
  /** Points HEAD at another ref name. */
  readonly setHead?: string;
  /** Packs to make visible (their files must already be durable in the object store). */
  readonly addPacks?: readonly PackRecord[];
  /** Pack names to drop from the visible list (files are deleted later by housekeeping). */
  readonly removePacks?: readonly string[];
}

/** A ref whose expectation failed, with what it really was (undefined: absent). */
export interface RefConflict {
  readonly name: string;
  readonly actual: RefValue | undefined;
}

export type TransactResult =
  | { readonly ok: true; readonly state: RepoState }
  | { readonly ok: false; readonly conflicts: readonly RefConflict[] };

export interface CreateRepoInput {
  readonly name: string;
  /** Initial HEAD target, e.g. `refs/heads/main`. */
  readonly head: string;
  readonly settings?: RepoSettings;
}

export interface MetaStore {
  readonly description: string;
  /** Adds a name to the catalog with a fresh id and an empty state; ConflictError('REPO_EXISTS'). */
  createRepo(input: CreateRepoInput): Promise<RepoRecord>;
  /** The catalog entry for a name, or undefined. */
  tryGetRepo(name: string): Promise<RepoRecord | undefined>;
  /** All catalog entries, sorted by name. */
  listRepos(): Promise<RepoRecord[]>;
  /** Renames without touching data; NotFoundError('REPO_NOT_FOUND') / ConflictError('REPO_EXISTS'). */
  renameRepo(from: string, to: string): Promise<RepoRecord>;
  /** Replaces a repository's settings; NotFoundError('REPO_NOT_FOUND'). */
  updateRepoSettings(name: string, settings: RepoSettings): Promise<RepoRecord>;
  /** Removes a name from the catalog and returns the removed record; its state stays until collected. */
  deleteRepo(name: string): Promise<RepoRecord>;
  /** The newest state of a repository by id; NotFoundError('REPO_NOT_FOUND') if it has none. */
  readState(repoId: string): Promise<RepoState>;
  /** Applies a transaction if every expectation holds, atomically. */
  transact(repoId: string, txn: Transaction): Promise<TransactResult>;
  close(): Promise<void>;
}
