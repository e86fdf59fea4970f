/**
 * Tree objects: a sequence of `<octal mode> <name>\0<20-byte id>` entries, sorted in git's
 * tree order (names compare as if directories had a trailing '/').
 */
import { ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import type { ObjectType } from './object-type.js';

/** One entry of a tree. `name` is a view into the decoded bytes. */
export interface TreeEntry {
  /** Mode as parsed from octal, e.g. 0o100644, 0o40000, 0o160000; kept to 16 bits like git's uint16_t. */
  readonly mode: number;
  readonly name: Uint8Array;
  readonly oid: ObjectId;
}

/** Mode bits of a directory (S_IFDIR). */
export const MODE_TREE = 0o040000;
/** Mode of a regular file. */
export const MODE_BLOB = 0o100644;
/** Mode of an executable file. */
export const MODE_BLOB_EXEC = 0o100755;
/** Mode of a symbolic link. */
export const MODE_SYMLINK = 0o120000;
/** Mode of a submodule commit (S_IFGITLINK). */
export const MODE_GITLINK = 0o160000;
const S_IFMT = 0o170000;

function corrupt(what: string): ValidationError {
  return new ValidationError('OBJ_CORRUPT', `corrupt tree object: ${what}`);
}

/** True if the mode is a directory (git's S_ISDIR). */
export function isTreeMode(mode: number): boolean {
  return (mode & S_IFMT) === MODE_TREE;
}

/** The kind of object an entry with this mode points at: 040000 tree, 160000 gitlink, else blob. */
export function treeEntryType(mode: number): ObjectType | 'gitlink' {
  const fmt = mode & S_IFMT;
  if (fmt === MODE_TREE) return 'tree';
  if (fmt === MODE_GITLINK) return 'gitlink';
  return 'blob';
}

/**
 * Calls `fn` for each entry in order, without building an array. Validation follows git's
 * decode_tree_entry: a non-empty octal mode, a space, a non-empty name, NUL, 20 id bytes.
 * Throws ValidationError('OBJ_CORRUPT') on malformed bytes.
 */
export function forEachTreeEntry(data: Uint8Array, fn: (mode: number, name: Uint8Array, oid: ObjectId) => void): void {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const ab = buf.buffer;
  const base = buf.byteOffset;
  const len = buf.length;
  let off = 0;
  while (off < len) {
    let i = off;
    let c = buf[i] as number;
    if (c === 0x20) throw corrupt(`empty mode at offset ${off}`);
    let mode = 0;
    while (c !== 0x20) {
      if (i >= len || c < 0x30 || c > 0x37) throw corrupt(`malformed mode at offset ${off}`);
      // git keeps modes in a uint16_t.
      mode = ((mode << 3) + (c - 0x30)) & 0xffff;
      c = buf[++i] as number;
    }
    const nameStart = i + 1;
    let nul = nameStart;
    while (nul < len && buf[nul] !== 0) nul++;
    if (nul >= len) throw corrupt(`unterminated entry name at offset ${off}`);
    if (nul === nameStart) throw corrupt(`empty entry name at offset ${off}`);
    const end = nul + 21;
    if (end > len) throw corrupt(`truncated object id at offset ${off}`);
    // A plain view is cheaper to create than Buffer#subarray.
    fn(mode, new Uint8Array(ab, base + nameStart, nul - nameStart), buf.toString('hex', nul + 1, end) as ObjectId);
    off = end;
  }
}

/** Decodes all entries of a tree; throws ValidationError('OBJ_CORRUPT') on malformed bytes. */
export function decodeTree(data: Uint8Array): TreeEntry[] {
  const out: TreeEntry[] = [];
  forEachTreeEntry(data, (mode, name, oid) => {
    out.push({ mode, name, oid });
  });
  return out;
}

/**
 * Orders two entry names as git's base_name_compare: bytewise, and where one name is a prefix
 * of the other the next byte is taken as '/' for a directory and NUL otherwise.
 */
export function compareTreeEntryNames(aName: Uint8Array, aMode: number, bName: Uint8Array, bMode: number): number {
  const al = aName.length;
  const bl = bName.length;
  const n = al < bl ? al : bl;
  for (let i = 0; i < n; i++) {
    const d = (aName[i] as number) - (bName[i] as number);
    if (d !== 0) return d;
  }
  const ac = al > n ? (aName[n] as number) : isTreeMode(aMode) ? 0x2f : 0;
  const bc = bl > n ? (bName[n] as number) : isTreeMode(bMode) ? 0x2f : 0;
  return ac - bc;
}

/** Encodes entries (sorted here into git's tree order) as tree object bytes. */
export function encodeTree(entries: readonly TreeEntry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => compareTreeEntryNames(a.name, a.mode, b.name, b.mode));
  let size = 0;
  const modes: string[] = [];
  for (const e of sorted) {
    const m = e.mode.toString(8);
    modes.push(m);
    size += m.length + 1 + e.name.length + 1 + 20;
  }
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (let k = 0; k < sorted.length; k++) {
    const e = sorted[k] as TreeEntry;
    off += out.write(modes[k] as string, off, 'latin1');
    out[off++] = 0x20;
    out.set(e.name, off);
    off += e.name.length;
    out[off++] = 0;
    off += out.write(e.oid, off, 'hex');
  }
  return out;
}
