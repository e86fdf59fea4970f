/**
 * One entry of an inflated tree, `<octal mode> <name>\0<20-byte id>`, read with the checks of
 * git's decode_tree_entry (a mode of octal digits, a non-empty name, a whole id). Shared by the
 * walks that read trees without accelerators.
 */
import { ValidationError } from '../../core/errors.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFGITLINK = 0o160000;

/** Where an entry's parts are (filled in by readTreeEntry; reused across entries). */
export interface TreeEntrySlots {
  /** 0 tree, 1 blob (any file mode), 2 gitlink. */
  kind: number;
  /** The name is bytes [nameStart, nameEnd); the raw id follows at nameEnd + 1. */
  nameStart: number;
  nameEnd: number;
}

/** Reads the entry at `off` of tree bytes `buf` into `out`; returns the offset of the next entry. */
export function readTreeEntry(buf: Uint8Array, off: number, out: TreeEntrySlots): number {
  const len = buf.length;
  let mode = 0;
  let i = off;
  let ch = buf[i]!;
  if (ch === 0x20) throw corrupt('empty mode', off);
  while (ch !== 0x20) {
    if (ch < 0x30 || ch > 0x37 || i >= len) throw corrupt('malformed mode', off);
    mode = ((mode << 3) + (ch - 0x30)) >>> 0;
    ch = buf[++i]!;
  }
  const nameStart = i + 1;
  let nul = nameStart;
  while (nul < len && buf[nul] !== 0) nul++;
  if (nul >= len) throw corrupt('unterminated entry name', off);
  if (nul === nameStart) throw corrupt('empty entry name', off);
  if (nul + 21 > len) throw corrupt('truncated object id', off);
  const fmt = mode & S_IFMT;
  out.kind = fmt === S_IFDIR ? 0 : fmt === S_IFGITLINK ? 2 : 1;
  out.nameStart = nameStart;
  out.nameEnd = nul;
  return nul + 21;
}

function corrupt(what: string, off: number): ValidationError {
  return new ValidationError('OBJ_CORRUPT', `corrupt tree object: ${what} at offset ${off}`);
}
