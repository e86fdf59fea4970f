/**
 * The caches the repository layer shares across requests and repositories. cli/ builds one
 * set per process (sizes in MB from the config) and passes it down; nothing here is global.
 * Keys always include the store's tag and the repository's id or the pack's key, so no
 * repository can see another's entries.
 */
import type { GitObject } from '../../git/object/object-type.js';
import type { PackIndex } from '../../git/pack/idx.js';
import type { AccelFile } from '../accel/format.js';
import type { LoadedBitmaps } from '../object-db/bitmap-load.js';
import { enumerationBytes, reachMasksBytes, type ReachMasks } from '../walk/enum-cache.js';
import type { Enumeration } from '../walk/enumerate.js';
import type { CommitLinks } from '../repository.js';
import { BlockCache } from './block-cache.js';
import { ByteLru, type CacheStats } from './byte-lru.js';

/** Sizes of the repository caches, in MiB. */
export interface RepoCacheSizes {
  /** Ranged pack blocks. */
  readonly blockCacheMb: number;
  /** Parsed pack indexes. */
  readonly indexCacheMb: number;
  /** Inflated objects (small ones) and delta bases. */
  readonly objectCacheMb: number;
  /** Commit links for walks; defaults to a quarter of objectCacheMb (at least 8). */
  readonly commitCacheMb?: number;
  /** Decoded reachability accelerators (whole files); default 128. */
  readonly accelCacheMb?: number;
  /** Answers of clone-like enumerations, a bit per object (walk/enum-cache.ts); default 16. */
  readonly cloneCacheMb?: number;
  /** Decoded reachability bitmaps (accel/bitmap-format.ts); default 64. */
  readonly bitmapCacheMb?: number;
  /** Block size of the block cache in bytes; defaults to each store's hint. */
  readonly blockSize?: number;
}

/** Key of an inflated object: (pack id, offset) packed in a number, or a string when too large. */
export type ObjectCacheKey = number | string;

/** One set of shared caches. */
export interface RepoCaches {
  readonly blocks: BlockCache;
  readonly indexes: ByteLru<string, PackIndex>;
  readonly objects: ByteLru<ObjectCacheKey, GitObject>;
  readonly commits: ByteLru<string, CommitLinks>;
  /** Accelerator per pack key; `file` undefined when the pack has none (or an unusable one). */
  readonly accels: ByteLru<string, { readonly file: AccelFile | undefined }>;
  /** Reachability bitmaps per pack key; `bitmaps` undefined when the pack has none (or an unusable one). */
  readonly bitmaps: ByteLru<string, { readonly bitmaps: LoadedBitmaps | undefined }>;
  /** Clone answers by repository state and request (walk/enum-cache.ts). */
  readonly clones: ByteLru<string, ReachMasks>;
  /** Small fetch answers by repository state and request, shared by identical fetches (walk/enum-cache.ts). */
  readonly fetches: ByteLru<string, Enumeration>;
  /** Object type codes by index position, learnt from delta chains (1 byte per object, lives with the index). */
  readonly packTypes: WeakMap<PackIndex, Uint8Array>;
  /** A small number for a pack's cache key (store tag + pack key), stable for the process. */
  packId(cacheKey: string): number;
}

const MB = 1024 * 1024;
/** Default size of the accelerator cache, MiB (git.git's whole accelerator is well under it). */
export const DEFAULT_ACCEL_CACHE_MB = 128;
/** Default size of the clone answer cache, MiB (git.git's answer is about 100 KiB). */
export const DEFAULT_CLONE_CACHE_MB = 16;
/** Size of the fetch answer cache, MiB, and the largest answer it keeps (about 8,000 objects). */
export const FETCH_CACHE_MB = 16;
const FETCH_ANSWER_MAX_BYTES = 1024 * 1024;
/** Default size of the bitmap cache, MiB (a 352k-object repository's entry is about 17 MiB with its hex ids). */
export const DEFAULT_BITMAP_CACHE_MB = 64;
/** Objects larger than this are never cached whole (they would evict many small trees). */
const OBJECT_CACHE_ENTRY_MAX = 4 * MB;

/** Approximate memory of a parsed idx: its bytes plus the offset tables built on demand. */
export function packIndexBytes(idx: PackIndex): number {
  return 2048 + idx.count * (20 + 4 + 4 + 8 + 4);
}

/** Approximate memory of commit links (two-byte strings of 40 chars and an array). */
function commitLinksBytes(l: CommitLinks): number {
  return 200 + l.parents.length * 100;
}

function mb(n: number, what: string): number {
  if (!(Number.isFinite(n) && n >= 0)) throw new RangeError(`invalid ${what} size ${n} MB`);
  return Math.floor(n * MB);
}

/** Builds the shared caches with the given sizes (0 disables a cache). */
export function createRepoCaches(sizes: RepoCacheSizes): RepoCaches {
  const objectBytes = mb(sizes.objectCacheMb, 'object cache');
  const blockOpts = { maxBytes: mb(sizes.blockCacheMb, 'block cache') };
  // One number per pack ever opened: a few bytes each, bounded by the packs a process sees.
  const packIds = new Map<string, number>();
  return {
    blocks: new BlockCache(sizes.blockSize === undefined ? blockOpts : { ...blockOpts, blockSize: sizes.blockSize }),
    indexes: new ByteLru<string, PackIndex>({
      maxBytes: mb(sizes.indexCacheMb, 'index cache'),
      sizeOf: packIndexBytes,
      // An index must fit even if it is most of the cache: without it nothing can be read.
      maxEntryBytes: mb(sizes.indexCacheMb, 'index cache'),
    }),
    objects: new ByteLru<ObjectCacheKey, GitObject>({
      maxBytes: objectBytes,
      sizeOf: (o) => o.data.byteLength + 80,
      maxEntryBytes: Math.min(OBJECT_CACHE_ENTRY_MAX, Math.floor(objectBytes / 8)),
    }),
    commits: new ByteLru<string, CommitLinks>({
      maxBytes: mb(sizes.commitCacheMb ?? Math.max(8, sizes.objectCacheMb / 4), 'commit cache'),
      sizeOf: commitLinksBytes,
    }),
    accels: new ByteLru<string, { readonly file: AccelFile | undefined }>({
      maxBytes: mb(sizes.accelCacheMb ?? DEFAULT_ACCEL_CACHE_MB, 'accelerator cache'),
      sizeOf: (v) => 200 + (v.file?.byteLength ?? 0),
      maxEntryBytes: mb(sizes.accelCacheMb ?? DEFAULT_ACCEL_CACHE_MB, 'accelerator cache'),
    }),
    bitmaps: new ByteLru<string, { readonly bitmaps: LoadedBitmaps | undefined }>({
      maxBytes: mb(sizes.bitmapCacheMb ?? DEFAULT_BITMAP_CACHE_MB, 'bitmap cache'),
      sizeOf: (v) => 200 + (v.bitmaps?.memoryBytes ?? 0),
      maxEntryBytes: mb(sizes.bitmapCacheMb ?? DEFAULT_BITMAP_CACHE_MB, 'bitmap cache'),
    }),
    clones: new ByteLru<string, ReachMasks>({
      maxBytes: mb(sizes.cloneCacheMb ?? DEFAULT_CLONE_CACHE_MB, 'clone cache'),
      sizeOf: reachMasksBytes,
    }),
    fetches: new ByteLru<string, Enumeration>({
      maxBytes: FETCH_CACHE_MB * MB,
      sizeOf: enumerationBytes,
      maxEntryBytes: FETCH_ANSWER_MAX_BYTES,
    }),
    packTypes: new WeakMap(),
    packId: (cacheKey) => {
      let id = packIds.get(cacheKey);
      if (id === undefined) {
        id = packIds.size + 1;
        packIds.set(cacheKey, id);
      }
      return id;
    },
  };
}

/** Counters of every cache, for /metrics. */
export function repoCacheStats(caches: RepoCaches): Record<'blocks' | 'indexes' | 'objects' | 'commits' | 'accels', CacheStats> {
  return {
    accels: caches.accels.stats(),
    blocks: caches.blocks.stats(),
    indexes: caches.indexes.stats(),
    objects: caches.objects.stats(),
    commits: caches.commits.stats(),
  };
}
