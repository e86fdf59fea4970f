/**
 * The object store contract: immutable-or-conditional blobs by key. Backends know nothing
 * of Git. Keys are `/`-separated, made of [A-Za-z0-9._/-] only, never starting with `/`,
 * never containing `..` or empty components (checked by `checkKey`).
 *
 * Durability: when `put` resolves, the object is durable and visible to every process
 * (read-after-write). A failed or aborted `put` leaves no object at the key.
 * Expected outcomes are values (absent key: `undefined`; lost create-only race:
 * `{ created: false }`); broken stores throw `StoreError`.
 */

/** A byte range: `length` bytes from `offset`. Reads past the end are cut short. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** What `head` and `list` tell of an object. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Last modified, ms since the epoch. */
  readonly mtimeMs: number;
}

export interface SignalOptions {
  readonly signal?: AbortSignal;
}

export interface GetOptions extends SignalOptions {
  readonly range?: ByteRange;
  /**
   * getStream only: resolves once the consumer holds none of the chunks yielded so far. When
   * given, a store that reads into its own memory (fs) may read later chunks into the memory
   * of earlier ones after awaiting it, instead of allocating per chunk (a long stream then
   * makes no garbage). Other stores ignore it.
   */
  readonly recycle?: () => Promise<void>;
}

export interface PutOptions extends SignalOptions {
  /** Create-only: write only if no object exists at the key; linearizable across processes. */
  readonly ifAbsent?: boolean;
  /**
   * Visible at once, durable only once a later `sync()` resolves (the fs store skips its
   * per-object fsync). For block devices, whose FLUSH is the durability point. Stores whose
   * every put is durable ignore it. Never combined with `ifAbsent` by callers.
   */
  readonly deferDurability?: boolean;
}

/** The outcome of a put: `created: false` only when `ifAbsent` was set and the key existed. */
export type PutResult =
  | { readonly created: true; readonly info: ObjectInfo }
  | { readonly created: false };

export interface ListOptions extends SignalOptions {
  /** Only keys strictly after this one (for resuming a listing). */
  readonly startAfter?: string;
}

export interface ObjectStore {
  /** A short description for logs, e.g. `fs:/var/lib/stowage`. Never holds secrets. */
  readonly description: string;
  /** Preferred read alignment in bytes (the block cache aligns to it). */
  readonly blockSize: number;
  /** Reads an object or a range of it; `undefined` if the key does not exist. */
  tryGet(key: string, opts?: GetOptions): Promise<Uint8Array | undefined>;
  /** Like `tryGet` but throws NotFoundError('STORE_NOT_FOUND') when absent. */
  get(key: string, opts?: GetOptions): Promise<Uint8Array>;
  /** Streams an object (or a range); throws NotFoundError('STORE_NOT_FOUND') when absent. */
  getStream(key: string, opts?: GetOptions): AsyncIterable<Uint8Array>;
  /** Size and time of an object, `undefined` if absent. */
  head(key: string, opts?: SignalOptions): Promise<ObjectInfo | undefined>;
  /** Writes a whole object atomically (all or nothing); see PutOptions.ifAbsent. */
  put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<PutResult>;
  /** Deletes an object; deleting an absent key is not an error. */
  delete(key: string, opts?: SignalOptions): Promise<void>;
  /** Lists objects whose key starts with `prefix`, in ascending key order, paging internally. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo>;
  /** Makes durable every put made with `deferDurability` that resolved before this call. */
  sync(opts?: SignalOptions): Promise<void>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}
