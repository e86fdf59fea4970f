/**
 * Pieces of the volume cache (block-cache.ts) that need none of its state: the per-block lock,
 * the choice of blocks to upload, and sector helpers.
 */
import { SECTOR_SIZE } from './block-codec.js';
import type { Entry, Sector } from './block-io.js';

/** Serializes async work per key. */
export class KeyedLock {
  private readonly tails = new Map<number, Promise<void>>();
  async run<T>(key: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev === undefined ? mine : prev.then(() => mine);
    this.tails.set(key, tail);
    if (prev !== undefined) await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
  held(key: number): boolean {
    return this.tails.has(key);
  }
}

/**
 * Bytes charged per entry besides its sector buffers: the object, and per sector a slot in
 * `sectors` (8), a check (16), `checked` (1), `changedAt` (8) and a view object (~40 when held).
 */
export function entryOverhead(sectors: number): number {
  return 128 + 73 * sectors;
}

/** What pickUploads needs besides the dirty blocks. */
export interface PickOptions {
  readonly now: number;
  /** Closing: everything dirty is due. */
  readonly closing: boolean;
  /** Past the pressure mark: blocks not yet due go too, most dirty bytes first. */
  readonly pressure: boolean;
  /** Blocks per batch. */
  readonly max: number;
  readonly writeBackDelayMs: number;
  /**
   * When set, a block whose dirty bytes reach this length (every sector rewritten with data:
   * later writes cannot coalesce into this version) is due at once. The write log sets it:
   * its uploads cost no object each, so a streaming copy keeps them flowing instead of
   * filling the dirty bound first.
   */
  readonly fullBytes?: (index: number) => number;
}

/**
 * The next blocks to upload: those waited for and those idle for the write-back delay, in
 * the order they became dirty; under pressure also the rest, most dirty bytes first.
 * Measured (fio 4 KiB randwrite, iodepth 16, over 256 MiB of a volume just copied in, 256
 * MiB cache, 2-core machine at load 8-10): oldest first, from half the bound, with all the
 * cached bytes of a dirty block counted dirty, coalesced about 11 writes per upload and 93-97%
 * of uploads were forced; this policy coalesces about 40 (188k writes, 4.8k uploads), and
 * with the other changes of that round the IOPS went from 0.07-0.14x of nbdkit-file to
 * 0.54-0.64x.
 */
export function pickUploads(
  dirty: Iterable<number>,
  entries: ReadonlyMap<number, Entry>,
  urgent: ReadonlySet<number>,
  opts: PickOptions,
): { batch: number[]; waitMs: number | undefined } {
  const { now, closing, pressure, max, writeBackDelayMs, fullBytes } = opts;
  const batch: number[] = [];
  /** Under pressure: not yet due, sorted by dirty bytes, most first (at most `max`). */
  const heavy: Entry[] = [];
  const heavyIndex: number[] = [];
  let waitMs: number | undefined;
  for (const i of dirty) {
    const e = entries.get(i) as Entry;
    if (e.uploading) continue;
    if (e.retryAtMs > now) {
      waitMs = Math.min(waitMs ?? Infinity, e.retryAtMs - now);
      continue;
    }
    const due = closing || urgent.has(i) || (fullBytes !== undefined && e.dirtyBytes >= fullBytes(i)) ? 0 : e.lastWriteMs + writeBackDelayMs;
    if (due <= now) {
      batch.push(i);
      if (batch.length >= max) return { batch, waitMs };
      continue;
    }
    waitMs = Math.min(waitMs ?? Infinity, due - now);
    if (!pressure) continue;
    if (heavy.length === max && (heavy[max - 1] as Entry).dirtyBytes >= e.dirtyBytes) continue;
    let at = heavy.length;
    while (at > 0 && (heavy[at - 1] as Entry).dirtyBytes < e.dirtyBytes) at--;
    heavy.splice(at, 0, e);
    heavyIndex.splice(at, 0, i);
    if (heavy.length > max) {
      heavy.pop();
      heavyIndex.pop();
    }
  }
  for (const i of heavyIndex) {
    if (batch.length >= max) break;
    batch.push(i);
  }
  return { batch, waitMs };
}

/** The sectors as one view when they lie in order in one buffer, else undefined. */
export function contiguous(sectors: readonly Sector[], len: number): Buffer | undefined {
  const first = sectors[0];
  if (first === undefined || first === null) return undefined;
  const base = first.byteOffset;
  for (let s = 1; s < sectors.length; s++) {
    const sec = sectors[s];
    if (sec === undefined || sec === null || sec.buffer !== first.buffer || sec.byteOffset !== base + s * SECTOR_SIZE) return undefined;
  }
  if (base + len > first.buffer.byteLength) return undefined;
  return Buffer.from(first.buffer, base, len);
}

/** Whether any of sectors s0..s1 is not in memory. */
export function missing(e: Entry, s0: number, s1: number): boolean {
  for (let s = s0; s <= s1; s++) if (e.sectors[s] === undefined) return true;
  return false;
}
