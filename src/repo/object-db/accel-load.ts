/**
 * Loads a pack's reachability accelerator through the shared cache. A missing file (packs
 * written before accelerators) or an unusable one (bad checksum, wrong pack) is remembered as
 * absent: readers then inflate objects, so answers never depend on a damaged accelerator.
 */
import { StowageError } from '../../core/errors.js';
import { ACCEL_KIND, AccelFile } from '../accel/format.js';
import { acceleratorKey } from '../keys.js';
import type { PackHandle, PackLocation } from './pack-handle.js';

/** The accelerator of `pack`, or undefined when it has no usable one. Store outages throw. */
export async function loadAccelerator(loc: PackLocation, pack: PackHandle, signal?: AbortSignal): Promise<AccelFile | undefined> {
  const key = acceleratorKey(loc.repoId, pack.record.name, ACCEL_KIND);
  const entry = await loc.caches.accels.getOrLoad(`${pack.cacheKey}:${ACCEL_KIND}`, async () => {
    const bytes = await loc.store.tryGet(key, signal === undefined ? {} : { signal });
    if (bytes === undefined) return { file: undefined };
    try {
      return { file: AccelFile.decode(bytes, { count: pack.index.count, packChecksum: pack.index.packChecksum }) };
    } catch (err) {
      if (err instanceof StowageError) return { file: undefined };
      throw err;
    }
  });
  return entry.file;
}
