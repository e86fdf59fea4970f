/**
 * A visible pack as the object database reads it: its record, store keys and parsed index
 * (through the shared index cache, so every request and every state version share one).
 */
import { StowageError, ValidationError } from '../../core/errors.js';
import { PackIndex } from '../../git/pack/idx.js';
import type { PackRecord } from '../../meta/meta-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { RepoCaches } from '../cache/repo-caches.js';
import { idxKey, packKey } from '../keys.js';

/** A pack with its parsed index. */
export interface PackHandle {
  readonly record: PackRecord;
  /** Store key of the .pack file. */
  readonly key: string;
  /** Cache-key prefix unique to this pack in this process (store tag + key). */
  readonly cacheKey: string;
  /** A small number unique to this pack in this process, for numeric cache keys. */
  readonly cacheId: number;
  readonly index: PackIndex;
}

/** Where the pack's packed data lives, for the block cache. */
export interface PackLocation {
  readonly store: ObjectStore;
  readonly repoId: string;
  readonly caches: RepoCaches;
}

/**
 * Loads (or takes from the cache) the index of one pack. Throws NotFoundError('STORE_NOT_FOUND')
 * if the idx is missing and ValidationError('REPO_CORRUPT') if it does not decode.
 */
export async function openPack(loc: PackLocation, record: PackRecord, signal?: AbortSignal): Promise<PackHandle> {
  const key = packKey(loc.repoId, record.name);
  const ikey = idxKey(loc.repoId, record.name);
  const tag = loc.caches.blocks.storeTag(loc.store);
  const index = await loc.caches.indexes.getOrLoad(`${tag}:${ikey}`, async () => {
    const bytes = await loc.store.get(ikey, signal === undefined ? {} : { signal });
    try {
      return PackIndex.decode(bytes, record.size);
    } catch (err) {
      if (err instanceof StowageError) {
        throw new ValidationError('REPO_CORRUPT', `index ${ikey} is unusable: ${err.message}`, { cause: err });
      }
      throw err;
    }
  });
  if (index.count !== record.objects && record.objects !== 0) {
    throw new ValidationError(
      'REPO_CORRUPT',
      `index ${ikey} lists ${index.count} objects but the pack record says ${record.objects}`,
    );
  }
  const cacheKey = `${tag}:${key}`;
  return { record, key, cacheKey, cacheId: loc.caches.packId(cacheKey), index };
}

/** Opens every pack of a state (in parallel), keeping their order (newest first). */
export async function openPacks(
  loc: PackLocation,
  records: readonly PackRecord[],
  signal?: AbortSignal,
): Promise<PackHandle[]> {
  return Promise.all(records.map((r) => openPack(loc, r, signal)));
}
