/**
 * Reading single pack entries through the block cache: an entry's exact byte range is
 * [offset, next entry's offset) by the index's reverse table, so one ranged read fetches
 * the header and the whole compressed body and nothing else.
 */
import { inflateSync, constants as zlibConstants } from 'node:zlib';
import { StowageError, ValidationError } from '../../core/errors.js';
import { deltaSizes } from '../../git/pack/delta.js';
import { decodeEntryHeader, type EntryHeader } from '../../git/pack/entry.js';
import { inflateAt } from '../../git/pack/inflate.js';
import type { PackHandle, PackLocation } from './pack-handle.js';

/** One stored entry: its decoded header and the compressed bytes after it (a view; do not modify). */
export interface StoredEntry {
  readonly header: EntryHeader;
  /** The whole entry (header + compressed body) as stored. */
  readonly bytes: Uint8Array;
  /** The zlib stream of the entry (bytes after the header). */
  readonly compressed: Uint8Array;
}

/** Bytes of a header we read when only the header is wanted: size varint + ofs or ref base. */
const HEADER_PEEK = 32;
/** Compressed bytes tried first when only a delta's size header is wanted. */
const DELTA_PEEK = 96;

/** Wraps a decoding failure of stored data: our own packs are corrupt, not the client's input. */
export function corruptEntry(pack: PackHandle, offset: number, what: string, cause?: unknown): ValidationError {
  const detail = cause instanceof StowageError ? `: ${cause.message}` : '';
  return new ValidationError('REPO_CORRUPT', `${pack.key} entry at ${offset}: ${what}${detail}`, cause === undefined ? {} : { cause });
}

/** Reads and decodes the whole entry at `offset` of `pack`. */
export async function readStoredEntry(
  loc: PackLocation,
  pack: PackHandle,
  offset: number,
  signal?: AbortSignal,
): Promise<StoredEntry> {
  const end = pack.index.nextOffset(offset, pack.record.size);
  const bytes = await loc.caches.blocks.read(loc.store, pack.key, offset, end, signal);
  const header = decodeHeader(pack, offset, bytes);
  return { header, bytes, compressed: bytes.subarray(header.headerLength) };
}

/** Reads only the header of the entry at `offset` (a few bytes). */
export async function readStoredHeader(
  loc: PackLocation,
  pack: PackHandle,
  offset: number,
  signal?: AbortSignal,
): Promise<{ header: EntryHeader; end: number }> {
  const end = pack.index.nextOffset(offset, pack.record.size);
  const bytes = await loc.caches.blocks.read(loc.store, pack.key, offset, Math.min(end, offset + HEADER_PEEK), signal);
  return { header: decodeHeader(pack, offset, bytes), end };
}

function decodeHeader(pack: PackHandle, offset: number, bytes: Uint8Array): EntryHeader {
  let header: EntryHeader | undefined;
  try {
    header = decodeEntryHeader(bytes, 0, offset);
  } catch (err) {
    throw corruptEntry(pack, offset, 'bad entry header', err);
  }
  if (header === undefined) throw corruptEntry(pack, offset, 'entry header is truncated');
  return header;
}

/** Inflates an entry's body to exactly its declared size. */
export function inflateEntry(pack: PackHandle, offset: number, entry: StoredEntry): Uint8Array {
  let res: { data: Uint8Array; consumed: number } | undefined;
  try {
    res = inflateAt(entry.compressed, 0, entry.header.size);
  } catch (err) {
    throw corruptEntry(pack, offset, 'cannot inflate', err);
  }
  if (res === undefined) throw corruptEntry(pack, offset, 'compressed data is truncated');
  return res.data;
}

/**
 * The result size a delta entry declares, inflating only a prefix of its body when possible
 * (zlib with a sync flush accepts a truncated stream and returns what it decoded).
 */
export async function readDeltaResultSize(
  loc: PackLocation,
  pack: PackHandle,
  offset: number,
  header: EntryHeader,
  end: number,
  signal?: AbortSignal,
): Promise<number> {
  const bodyStart = offset + header.headerLength;
  for (let peek = DELTA_PEEK; ; peek *= 8) {
    const stop = Math.min(end, bodyStart + peek);
    const complete = stop === end;
    const body = await loc.caches.blocks.read(loc.store, pack.key, bodyStart, stop, signal);
    let out: Uint8Array;
    try {
      out = complete
        ? inflateEntry(pack, offset, { header, bytes: body, compressed: body })
        : inflateSync(body, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      if (err instanceof StowageError) throw err;
      throw corruptEntry(pack, offset, 'cannot inflate delta', err);
    }
    // Two size varints are at most 20 bytes; with fewer, the prefix may be cut inside them.
    if (complete || out.byteLength >= 20) {
      try {
        return deltaSizes(out).resultSize;
      } catch (err) {
        throw corruptEntry(pack, offset, 'bad delta header', err);
      }
    }
  }
}
