/**
 * Loads a pack's reachability bitmaps (accel/bitmap-format.ts) through the shared cache. A
 * missing file (every pushed pack, packs stored before bitmaps) or an unusable one (bad
 * checksum, another pack's) is remembered as absent: walks then run without it, so an answer
 * never depends on a damaged file. Bitmaps are written before the pack they describe becomes
 * visible, so remembering absence never hides a file that a reader could have used.
 */
import { StowageError } from '../../core/errors.js';
import type { AccelGraph } from '../accel/graph.js';
import { BITMAP_KIND, BitmapFile } from '../accel/bitmap-format.js';
import type { PackIndex } from '../../git/pack/idx.js';
import { acceleratorKey } from '../keys.js';
import type { PackHandle, PackLocation } from './pack-handle.js';

/** A pack's decoded bitmaps as cached: the file and, made on first use, its ids as one hex string. */
export class LoadedBitmaps {
  readonly file: BitmapFile;
  readonly #index: PackIndex;
  #hex: string | undefined;

  constructor(file: BitmapFile, index: PackIndex) {
    this.file = file;
    this.#index = index;
  }

  /** Memory this entry may hold (the file, and 40 one-byte characters per id once hexNames ran). */
  get memoryBytes(): number {
    return this.file.memoryBytes + this.file.count * 40;
  }

  /**
   * The idx's name table as one hex string: the id at idx position p is hexNames().slice(40p,
   * 40p + 40). A clone lists every object; slicing one string (V8 shares its characters) is
   * several times cheaper than converting 20 bytes per id.
   */
  hexNames(): string {
    if (this.#hex === undefined) {
      const n = this.#index.count;
      if (n === 0) this.#hex = '';
      else {
        const first = this.#index.oidBytesAt(0);
        this.#hex = Buffer.from(first.buffer, first.byteOffset, n * 20).toString('hex');
      }
    }
    return this.#hex;
  }
}

/** The bitmaps of one pack of an object db. */
export interface BitmapView {
  /** The db's accelerator graph (all its packs). */
  readonly graph: AccelGraph;
  /** Number of the bitmapped pack in the db (and graph). */
  readonly pack: number;
  readonly file: BitmapFile;
  /** Bit of each idx position (pack order rank). */
  readonly rank: Uint32Array;
  /** Idx position of each bit (the pack's entries by offset). */
  readonly order: Uint32Array;
  /** The pack's ids as one hex string (see LoadedBitmaps.hexNames). */
  hexNames(): string;
}

/** Packs whose writers may have written bitmaps (pushes never do). */
export function mayHaveBitmaps(pack: PackHandle): boolean {
  const s = pack.record.source;
  return s === 'import' || s === 'compact' || s === 'gc';
}

/** The bitmaps of `pack`, or undefined when it has no usable file. Store outages throw. */
export async function loadBitmaps(loc: PackLocation, pack: PackHandle, signal?: AbortSignal): Promise<LoadedBitmaps | undefined> {
  const key = acceleratorKey(loc.repoId, pack.record.name, BITMAP_KIND);
  const entry = await loc.caches.bitmaps.getOrLoad(`${pack.cacheKey}:${BITMAP_KIND}`, async () => {
    const bytes = await loc.store.tryGet(key, signal === undefined ? {} : { signal });
    if (bytes === undefined) return { bitmaps: undefined };
    const index = pack.index;
    try {
      const file = BitmapFile.decode(bytes, { count: index.count, packChecksum: index.packChecksum, offsetAt: (pos) => index.offsetAt(pos) });
      return { bitmaps: new LoadedBitmaps(file, index) };
    } catch (err) {
      if (err instanceof StowageError) return { bitmaps: undefined };
      throw err;
    }
  });
  return entry.bitmaps;
}
