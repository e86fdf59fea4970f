/**
 * The repository contract that service/, api/ and cli/ see. A Repository reads objects
 * from the packs its meta state lists, and changes only by `receivePack` (spool, index,
 * verify, store: invisible) followed by `updateRefs` (one meta transaction that moves refs
 * and publishes packs). It never exposes the object store or the meta store.
 */
import type { ObjectId } from '../git/hash/object-id.js';
import type { GitObject, ObjectType } from '../git/object/object-type.js';
import type { FsckConfig } from '../git/fsck/config.js';
import type { FsckMessage } from '../git/fsck/report.js';
import type { Limits } from '../core/limits.js';
import type {
  PackRecord,
  RepoRecord,
  RepoSettings,
  RepoState,
  Transaction,
  TransactResult,
} from '../meta/meta-store.js';

/** Size and type of a stored object without inflating it (when the pack says so). */
export interface ObjectHeader {
  readonly type: ObjectType;
  readonly size: number;
}

/** The links of a commit that walks need, cached by the repository. */
export interface CommitLinks {
  readonly tree: ObjectId;
  readonly parents: readonly ObjectId[];
  /** Committer time, seconds since the epoch (0 if unparsable). */
  readonly committerTime: number;
}

/** Progress callback: a phase name ("Counting objects", "Resolving deltas"), done, total. */
export type ProgressFn = (phase: string, done: number, total: number | undefined) => void;

/** How a fetch asks for history to be cut (git's deepen, deepen-since, deepen-not). */
export interface DeepenRequest {
  /** deepen N: keep N commits from each want (or beyond the client's shallows when relative). */
  readonly depth?: number;
  readonly relative?: boolean;
  /** deepen-since: cut commits older than this (seconds since the epoch). */
  readonly since?: number;
  /** deepen-not: cut history reachable from these commits (ids already resolved from ref names). */
  readonly not?: readonly ObjectId[];
}

/** The shallow boundary after a deepen request, and what to tell the client. */
export interface ShallowUpdate {
  /** Commits that become shallow on the client (send `shallow <oid>`). */
  readonly shallow: readonly ObjectId[];
  /** Client shallows that are no longer shallow (send `unshallow <oid>`). */
  readonly unshallow: readonly ObjectId[];
  /** Commits whose parents must not be walked when enumerating (client shallows + new shallows - unshallow). */
  readonly boundary: ReadonlySet<ObjectId>;
}

export interface EnumerateRequest {
  readonly wants: readonly ObjectId[];
  /** Objects the client has (acked commons); their closure is excluded (see `sparse`). */
  readonly haves: readonly ObjectId[];
  /**
   * Exclude the haves' closure as git's pack.useSparse does (the default): only paths that
   * changed are walked, and an object the client has under another path may be sent again.
   * False: exactly `git rev-list --objects wants --not haves`, at the cost of walking whole trees.
   */
  readonly sparse?: boolean;
  /** Commits whose parents are not walked (see ShallowUpdate.boundary). */
  readonly shallowBoundary?: ReadonlySet<ObjectId>;
  /** include-tag: annotated tags whose target chain is sent are sent too. */
  readonly includeTags?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressFn;
}

/**
 * What the walk learnt that helps build the pack (the client's edge objects as thin-pack
 * bases, path names for delta search). Opaque: made by enumerateObjects, read by packObjects.
 */
export interface PackHints {
  readonly __packHints: unique symbol;
}

/** Objects to send, in a good order for a pack (commits by recency, then trees and blobs). */
export interface EnumerateResult {
  readonly objects: readonly ObjectId[];
  /** Pass to packObjects (PackObjectsOptions.hints) for smaller packs; optional. */
  readonly hints?: PackHints;
}

export interface PackObjectsOptions {
  /** Deltas may use bases the client has (in `haves`) without sending them (thin-pack). */
  readonly thin: boolean;
  /** ofs-delta negotiated: stored ofs deltas may be sent as such; else converted to ref-delta. */
  readonly ofsDelta: boolean;
  /** Objects the client is known to have (for thin packs). */
  readonly haves?: readonly ObjectId[];
  /** From the EnumerateResult that listed these objects. */
  readonly hints?: PackHints;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressFn;
  /**
   * Resolves once the caller holds none of the chunks yielded so far. When given, the stream
   * may reuse the memory of yielded chunks after awaiting it (a stored pack sent whole is then
   * read through a few buffers instead of allocating per chunk).
   */
  readonly recycle?: () => Promise<void>;
}

/** A pushed pack, spooled, indexed and verified, but not yet visible. */
export interface ReceivedPack {
  /** Objects in the (completed) pack; 0 for an empty push (deletes only). */
  readonly objectCount: number;
  /** fsck warnings to report on side-band 2 (errors have already rejected the push). */
  readonly warnings: readonly FsckMessage[];
  /** Type of an object in this pack or in the repository; undefined if neither has it. */
  objectType(oid: ObjectId): Promise<ObjectType | undefined>;
  /** What an annotated tag peels to (following tag chains), for RefValue.peeled. */
  peel(oid: ObjectId): Promise<ObjectId | undefined>;
  /** Reads an object from this pack, else from the repository (e.g. new commits for a fast-forward check). */
  tryReadObject(oid: ObjectId): Promise<GitObject | undefined>;
  /** Writes the pack, then its idx, to the object store; returns the record to publish. */
  store(opts?: { signal?: AbortSignal }): Promise<PackRecord | undefined>;
  /** Removes spool files. Never throws (rollback runs while another failure is in flight). */
  discard(): Promise<void>;
}

export interface ReceivePackOptions {
  readonly fsck: FsckConfig;
  readonly limits: Limits;
  /** Tips the push wants to set, checked for connectivity (each must be present with its closure). */
  readonly newTips: readonly ObjectId[];
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressFn;
}

export interface Repository {
  readonly record: RepoRecord;
  /** The newest refs, HEAD and pack list. */
  readState(): Promise<RepoState>;
  hasObject(oid: ObjectId): Promise<boolean>;
  /** Inflates an object (resolving deltas); undefined if absent. */
  tryReadObject(oid: ObjectId): Promise<GitObject | undefined>;
  /** Like tryReadObject but throws NotFoundError('OBJ_MISSING'). */
  readObject(oid: ObjectId): Promise<GitObject>;
  tryReadHeader(oid: ObjectId): Promise<ObjectHeader | undefined>;
  /** Parents, tree and time of a commit (cached); NotFoundError('OBJ_MISSING') / ValidationError('OBJ_BAD_TYPE'). */
  commitLinks(oid: ObjectId): Promise<CommitLinks>;
  /** Peels an object through annotated tags to the first non-tag. */
  peel(oid: ObjectId): Promise<ObjectId>;
  /** The shallow boundary for a fetch with deepen arguments. */
  computeShallow(
    wants: readonly ObjectId[],
    clientShallows: readonly ObjectId[],
    deepen: DeepenRequest,
    opts?: { signal?: AbortSignal },
  ): Promise<ShallowUpdate>;
  /** What to send for a fetch (rev-list --objects wants --not haves, cut at the boundary). */
  enumerateObjects(req: EnumerateRequest): Promise<EnumerateResult>;
  /** Streams a complete pack (header, entries, trailer) of exactly these objects, reusing stored entries. */
  packObjects(objects: readonly ObjectId[], opts: PackObjectsOptions): AsyncIterable<Uint8Array>;
  /** Spools, indexes and verifies a pushed pack stream (see ReceivedPack). */
  receivePack(input: AsyncIterable<Uint8Array>, opts: ReceivePackOptions): Promise<ReceivedPack>;
  /** One meta transaction: compare, move refs, publish packs. */
  updateRefs(txn: Transaction): Promise<TransactResult>;
  /**
   * Optional: writes reachability bitmaps for a stored pack that is not published yet and holds
   * everything reachable from `tips` (import). Never needed for correctness; false when skipped.
   */
  writeReachBitmaps?(pack: PackRecord, tips: readonly ObjectId[], opts?: { signal?: AbortSignal }): Promise<boolean>;
}

/** Opens and manages repositories by name (validated with checkRepoName). */
export interface RepositoryHost {
  /** NotFoundError('REPO_NOT_FOUND') / ValidationError('REPO_BAD_NAME'). */
  open(name: string): Promise<Repository>;
  create(name: string, opts?: { defaultBranch?: string; settings?: RepoSettings }): Promise<Repository>;
  list(): Promise<RepoRecord[]>;
  rename(from: string, to: string): Promise<RepoRecord>;
  /** Removes the name and schedules the data for collection. */
  delete(name: string): Promise<RepoRecord>;
  setHead(name: string, ref: string): Promise<void>;
  updateSettings(name: string, settings: RepoSettings): Promise<RepoRecord>;
}
