/**
 * Where a volume lives in the object store (DESIGN.md section 9):
 *   nbd/<name>/meta                      JSON: format, size, blockSize, created, description
 *   nbd/<name>/blocks/<16 hex digits>    one object per stored block (absent block = zeros)
 *   nbd/<name>/lease/<12 digits>         one writer lease record per epoch (see lease.ts)
 *   nbd/<name>/log/<epoch>-<seq|seal>    write log segments and seals (write-log-codec.ts)
 * Block indexes are fixed-width lower-case hex so that listing order is block order.
 */
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { recordsOf, type VolumeRecords } from './lease-records.js';
import { loadLog } from './write-log-index.js';

/**
 * The meta format new volumes get; it is also their block format (block-codec.ts): 3 = a CRC
 * and the position per 4 KiB sector. Format 2 volumes (sha256-based checks per sector) and
 * format 1 volumes (one check per block, whole blocks at a time) keep reading and writing
 * their own format; there is no in-place migration (download and upload the volume into a
 * new one to convert it).
 */
export const VOLUME_FORMAT = 3;
/** Every meta (and block) format this code reads. */
export type VolumeFormat = 1 | 2 | 3;
/** Longest volume name. */
export const VOLUME_NAME_MAX = 64;
/** Smallest and largest block (object) size a volume may use. */
export const BLOCK_SIZE_MIN = 4096;
export const BLOCK_SIZE_MAX = 32 * 1024 * 1024;
/**
 * Default block size: 1 MiB. Copies are bound by per-object costs (a file, a rename and later an
 * fsync per block on fs: the kernel's inode work, plus 0.1-0.2 ms of the server's main thread
 * per put), so fewer, larger objects cost less per byte.
 *
 * Session 4 (format 3, dirty-sector upload policy, later misses read an aligned 256 KiB window
 * at any block size; `bench:nbd -- --image-mb 512 --runtime 10 --block-size SIZE`, fs store,
 * 256 MiB cache, sizes interleaved, 2-core machine shared with other work at load 2-6).
 * Stowage / nbdkit-file per run, then Stowage's absolute figures:
 *   block    copy in     copy out    4K randread  4K randwrite   (MiB/s in, out; IOPS read, write)
 *   256 KiB  .36 .27     .44 .35     1.02 .55     .36 .52        196/129, 484/273, 37k/22k, 19k/16k
 *   1 MiB    .33 .33     .59 .55     .50 .61      .60 .87        155/155, 341/393, 24k/38k, 35k/39k
 * Server CPU per 512 MiB (user + system, all threads; 3 runs each): copy in 1.4-1.9 s at 1 MiB
 * against 2.0-3.2 s at 256 KiB, copy out 0.8 s against 1.0-1.2 s. Random reads cost the same
 * (one ranged read of one slot, then the window); random writes coalesce about four times as
 * many writes per upload, which pays for the bigger object.
 *
 * Session 3 measured 256 KiB best (1 MiB: copy in .25, out .34, randread .71, randwrite .07),
 * before dirty bytes counted only changed sectors and before the read window; 64 KiB
 * (swiftnbd's layout) and 256 KiB stay selectable at creation.
 */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
/** The largest volume: block indexes must stay exact doubles, and 2^53 bytes is plenty. */
export const VOLUME_SIZE_MAX = Number.MAX_SAFE_INTEGER - (Number.MAX_SAFE_INTEGER % 512);

/** What `nbd/<name>/meta` holds. */
export interface VolumeMeta {
  readonly format: VolumeFormat;
  readonly size: number;
  readonly blockSize: number;
  /** ISO 8601 creation time. */
  readonly created: string;
  readonly description: string;
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;

/** Checks a volume name (letters, digits, '.', '_', '-'; no leading '.' or '-'; ≤ 64). */
export function checkVolumeName(name: string): string {
  const shown = JSON.stringify(name.slice(0, 64)).replace(/[^\x20-\x7e]/g, '?');
  let why: string | undefined;
  if (name.length === 0) why = 'it is empty';
  else if (name.length > VOLUME_NAME_MAX) why = `it is longer than ${VOLUME_NAME_MAX} characters`;
  else if (!NAME_RE.test(name)) why = 'it may only contain letters, digits, ".", "_" and "-"';
  else if (name.startsWith('.') || name.startsWith('-')) why = 'it starts with "." or "-"';
  if (why !== undefined) throw new ValidationError('VOLUME_BAD_NAME', `invalid volume name ${shown}: ${why}`);
  return name;
}

/** `nbd/<name>/`. */
export function volumePrefix(name: string): string {
  return `nbd/${checkVolumeName(name)}/`;
}
/** `nbd/<name>/meta`. */
export function metaKey(name: string): string {
  return `${volumePrefix(name)}meta`;
}
/** `nbd/<name>/blocks/`. */
export function blocksPrefix(name: string): string {
  return `${volumePrefix(name)}blocks/`;
}
/** `nbd/<name>/blocks/<index as 16 hex digits>`. */
export function blockKey(name: string, index: number): string {
  return `${blocksPrefix(name)}${index.toString(16).padStart(16, '0')}`;
}
/** The block index of a key under blocksPrefix, or undefined if it is not a block key. */
export function blockIndexOf(prefix: string, key: string): number | undefined {
  const tail = key.slice(prefix.length);
  return key.startsWith(prefix) && /^[0-9a-f]{16}$/.test(tail) ? parseInt(tail, 16) : undefined;
}
/** `nbd/<name>/lease/`. */
export function leasePrefix(name: string): string {
  return `${volumePrefix(name)}lease/`;
}
/** `nbd/<name>/lease/<epoch as 12 decimal digits>`. */
export function leaseKey(name: string, epoch: number): string {
  return `${leasePrefix(name)}${String(epoch).padStart(12, '0')}`;
}

/** Checks a block size: a power of two from 4 KiB to 32 MiB. */
export function checkBlockSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < BLOCK_SIZE_MIN || n > BLOCK_SIZE_MAX || (n & (n - 1)) !== 0) {
    throw new ValidationError('ARG_INVALID', `block size ${n} must be a power of two from 4 KiB to 32 MiB`);
  }
  return n;
}

/** Checks a volume size: a positive multiple of 512 bytes (the sector size every client assumes). */
export function checkVolumeSize(n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0 || n % 512 !== 0 || n > VOLUME_SIZE_MAX) {
    throw new ValidationError('ARG_INVALID', `volume size ${n} must be a positive multiple of 512 bytes`);
  }
  return n;
}

/** Parses meta JSON; ValidationError('ARG_INVALID')-free: a bad meta object is META_CORRUPT. */
export function parseVolumeMeta(name: string, bytes: Uint8Array): VolumeMeta {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new ValidationError('META_CORRUPT', `volume ${name}: meta is not JSON`, { cause: err });
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const ok =
    (o['format'] === 1 || o['format'] === 2 || o['format'] === 3) &&
    typeof o['size'] === 'number' &&
    typeof o['blockSize'] === 'number' &&
    typeof o['created'] === 'string' &&
    typeof o['description'] === 'string';
  if (!ok) throw new ValidationError('META_CORRUPT', `volume ${name}: meta has an unknown format or missing fields`);
  try {
    checkVolumeSize(o['size'] as number);
    checkBlockSize(o['blockSize'] as number);
  } catch (err) {
    throw new ValidationError('META_CORRUPT', `volume ${name}: ${(err as Error).message}`, { cause: err });
  }
  return { format: o['format'] as VolumeFormat, size: o['size'] as number, blockSize: o['blockSize'] as number, created: o['created'] as string, description: o['description'] as string };
}

function encodeMeta(meta: VolumeMeta): Uint8Array {
  return Buffer.from(`${JSON.stringify(meta)}\n`, 'utf8');
}

/** Reads a volume's meta; undefined if there is no such volume. */
export async function readVolumeMeta(store: ObjectStore, name: string): Promise<VolumeMeta | undefined> {
  const bytes = await store.tryGet(metaKey(name));
  return bytes === undefined ? undefined : parseVolumeMeta(name, bytes);
}

/** Reads a volume's meta; NotFoundError when absent. */
export async function requireVolumeMeta(store: ObjectStore, name: string): Promise<VolumeMeta> {
  const meta = await readVolumeMeta(store, name);
  if (meta === undefined) throw new NotFoundError('VOLUME_NOT_FOUND', `no volume named ${name}; create it with stowage nbd create`);
  return meta;
}

/** Options of createVolume. */
export interface CreateVolumeOptions {
  readonly size: number;
  readonly blockSize?: number;
  readonly description?: string;
  /** Meta and block format (default VOLUME_FORMAT; 1 only for tests of old volumes). */
  readonly format?: VolumeFormat;
  /** ms since the epoch (default Date.now()). */
  readonly nowMs?: number;
  /** Where the name is claimed create-once (default: the meta object itself, create-only). */
  readonly records?: VolumeRecords;
}

/**
 * Creates a volume; ConflictError if it exists. The name is claimed by a create-once record
 * at the meta key: in the store that record is the meta object; in other records (etcd) the
 * claim holds the meta bytes and the winner then writes them to the store. A claim whose
 * store write never happened (a crash in between) is completed by the next creator, who finds
 * the name taken: writing the claimed bytes is idempotent, so it can race the winner harmlessly.
 */
export async function createVolume(store: ObjectStore, name: string, opts: CreateVolumeOptions): Promise<VolumeMeta> {
  const meta: VolumeMeta = {
    format: opts.format ?? VOLUME_FORMAT,
    size: checkVolumeSize(opts.size),
    blockSize: checkBlockSize(opts.blockSize ?? DEFAULT_BLOCK_SIZE),
    created: new Date(opts.nowMs ?? Date.now()).toISOString(),
    description: opts.description ?? '',
  };
  const records = recordsOf(store, opts.records);
  const bytes = encodeMeta(meta);
  // A volume made before its records moved out of the store has a meta object but no claim.
  const exists = !records.inObjectStore && (await store.head(metaKey(name))) !== undefined;
  if (exists || !(await records.create(metaKey(name), bytes))) {
    if (!records.inObjectStore && !exists && (await store.head(metaKey(name))) === undefined) {
      const claimed = await records.get(metaKey(name));
      if (claimed !== undefined) await store.put(metaKey(name), claimed);
    }
    throw new ConflictError('VOLUME_EXISTS', `volume ${name} already exists`);
  }
  if (!records.inObjectStore) await store.put(metaKey(name), bytes);
  return meta;
}

/**
 * Deletes a volume's lease records and, when they live outside the store, its name claim; for
 * `nbd delete`, after the blocks and the meta object (so an interrupted delete still lists).
 */
export async function deleteVolumeRecords(store: ObjectStore, name: string, records?: VolumeRecords): Promise<void> {
  const source = recordsOf(store, records);
  for (const key of await source.list(leasePrefix(name))) await source.delete(key);
  if (!source.inObjectStore) await source.delete(metaKey(name));
}

/** Rewrites a volume's meta (the caller holds the volume's lease). */
export async function writeVolumeMeta(store: ObjectStore, name: string, meta: VolumeMeta): Promise<void> {
  await store.put(metaKey(name), encodeMeta(meta));
}

/**
 * Lists volume names in key order. One short listing per volume: after the first key of a
 * volume the listing restarts past all of its keys ('~' sorts after every key character),
 * so millions of block keys are never walked. A name without meta is not a volume.
 */
export async function listVolumeNames(store: ObjectStore): Promise<string[]> {
  const names: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    let next: string | undefined;
    for await (const info of store.list('nbd/', startAfter === undefined ? {} : { startAfter })) {
      next = /^nbd\/([^/]+)\//.exec(info.key)?.[1];
      if (next !== undefined) break;
    }
    if (next === undefined) return names;
    if ((await store.head(`nbd/${next}/meta`)) !== undefined) names.push(next);
    startAfter = `nbd/${next}/~`;
  }
}

/**
 * Counts a volume's stored blocks and their bytes: the block objects as the write log's
 * newest records (write-log.ts) leave them, i.e. what the volume holds once merged.
 */
export async function countBlocks(store: ObjectStore, name: string): Promise<{ blocks: number; bytes: number }> {
  const log = await loadLog(store, checkVolumeName(name));
  let blocks = 0;
  let bytes = 0;
  const prefix = blocksPrefix(name);
  for await (const info of store.list(prefix)) {
    const index = blockIndexOf(prefix, info.key);
    if (index !== undefined && log.index.blocks.has(index)) continue;
    blocks++;
    bytes += info.size;
  }
  for (const { rec } of log.index.blocks.values()) {
    if (rec.tomb) continue;
    blocks++;
    bytes += rec.length;
  }
  return { blocks, bytes };
}
