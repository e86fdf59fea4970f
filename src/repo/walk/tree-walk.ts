/**
 * Tree traversals of `rev-list --objects` (list-objects.c): pre-order, entries in tree order,
 * gitlinks (mode 160000) never followed. This is the hot loop of counting (a clone of a
 * large repository scans tens of millions of entries), so entries are parsed in place and
 * tested against raw-id sets: an entry already seen costs a parse and a hash probe, no
 * allocation. Entry validation is git's decode_tree_entry (as forEachTreeEntry).
 */
import { NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { OidSet } from './oid-set.js';
import type { WalkSource } from './source.js';

/** Check the signal and yield to the event loop every this many trees. */
const CHECK_EVERY = 512;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFGITLINK = 0o160000;

/** Reads trees for a walk. One instance per walk. */
export class TreeReader {
  readonly #src: WalkSource;
  readonly #signal: AbortSignal | undefined;
  #reads = 0;

  constructor(src: WalkSource, signal?: AbortSignal) {
    this.#src = src;
    this.#signal = signal;
  }

  /** The bytes of a tree; undefined if absent; ValidationError('OBJ_BAD_TYPE') if not a tree. */
  async read(oid: ObjectId): Promise<Buffer | undefined> {
    if (++this.#reads % CHECK_EVERY === 0) {
      this.#signal?.throwIfAborted();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const obj = await this.#src.tryReadObject(oid);
    if (obj === undefined) return undefined;
    if (obj.type !== 'tree') throw new ValidationError('OBJ_BAD_TYPE', `object ${oid} is a ${obj.type}, expected a tree`);
    const d = obj.data;
    return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  }
}

/** A tree being scanned: its bytes, the position of the next entry and its path's name hash. */
interface Frame {
  readonly data: Buffer;
  pos: number;
  /** pathHash of the tree's path; undefined for a root (entries' paths are their names). */
  readonly hash: number | undefined;
}

/** Result slots of parseEntry (reused; the walk is sequential within one call). */
interface Cursor {
  /** Offset of the entry's raw id. */
  oid: number;
  /** 0 tree, 1 blob, 2 gitlink. */
  kind: number;
  /** The entry's name is data[nameStart, nameEnd). */
  nameStart: number;
  nameEnd: number;
}

/** Where a walk records the path of each object it lists (for delta search in pack-out). */
export interface PathHashes {
  /** Name hash of each object appended to `out`, in the same order. */
  readonly listed: number[];
}

/**
 * git's pack_name_hash folded over "parent/name" (whitespace skipped): its last 16 characters
 * weigh most, so versions of one path, and files of one extension, get close values.
 */
function pathHash(parent: number | undefined, data: Uint8Array, start: number, end: number): number {
  let h = parent === undefined ? 0 : ((parent >>> 2) + (0x2f << 24)) >>> 0;
  for (let i = start; i < end; i++) {
    const ch = data[i]!;
    if (ch === 0x20 || (ch >= 0x09 && ch <= 0x0d)) continue;
    h = ((h >>> 2) + (ch << 24)) >>> 0;
  }
  return h;
}

function corrupt(what: string, off: number): ValidationError {
  return new ValidationError('OBJ_CORRUPT', `corrupt tree object: ${what} at offset ${off}`);
}

/** Parses the entry at f.pos into `c` and advances f.pos. */
function parseEntry(f: Frame, c: Cursor): void {
  const buf = f.data;
  const len = buf.length;
  const off = f.pos;
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
  c.kind = fmt === S_IFDIR ? 0 : fmt === S_IFGITLINK ? 2 : 1;
  c.oid = nul + 1;
  c.nameStart = nameStart;
  c.nameEnd = nul;
  f.pos = nul + 21;
}

function hexAt(data: Buffer, off: number): ObjectId {
  return data.toString('hex', off, off + 20) as ObjectId;
}

/**
 * git's mark_tree_uninteresting: adds `tree` and everything under it to `marks`, not
 * descending into trees already marked. Absent trees are skipped (parse_tree_gently).
 * With `edge`, each newly marked tree and blob is also recorded by its path's name hash
 * and kind (0 tree, 1 blob) as `hash * 2 + kind` (the first one seen per key wins).
 */
export async function markTreeUninteresting(
  reader: TreeReader,
  tree: ObjectId,
  marks: OidSet,
  edge?: Map<number, ObjectId>,
): Promise<void> {
  if (!marks.add(tree)) return;
  const stack: { oid: ObjectId; hash: number | undefined }[] = [{ oid: tree, hash: undefined }];
  const c: Cursor = { oid: 0, kind: 0, nameStart: 0, nameEnd: 0 };
  while (stack.length > 0) {
    const top = stack.pop()!;
    const data = await reader.read(top.oid);
    if (data === undefined) continue;
    const f: Frame = { data, pos: 0, hash: top.hash };
    while (f.pos < data.length) {
      parseEntry(f, c);
      if (c.kind === 2 || !marks.addRaw(data, c.oid)) continue;
      if (edge === undefined && c.kind !== 0) continue;
      const oid = hexAt(data, c.oid);
      const hash = pathHash(top.hash, data, c.nameStart, c.nameEnd);
      if (edge !== undefined) {
        const key = hash * 2 + c.kind;
        if (!edge.has(key)) edge.set(key, oid);
      }
      if (c.kind === 0) stack.push({ oid, hash });
    }
  }
}

/**
 * git's process_tree: appends `tree` and, in pre-order, every tree and blob under it not yet
 * in `seen` (which holds the uninteresting objects too), adding them to `seen`. With
 * `paths`, the name hash of each appended object's path is recorded alongside.
 * NotFoundError('OBJ_MISSING') when a tree to send is missing.
 */
export async function collectTree(
  reader: TreeReader,
  tree: ObjectId,
  seen: OidSet,
  out: ObjectId[],
  paths?: PathHashes,
): Promise<void> {
  if (!seen.add(tree)) return;
  out.push(tree);
  paths?.listed.push(0);
  const stack: Frame[] = [{ data: await mustRead(reader, tree), pos: 0, hash: undefined }];
  const c: Cursor = { oid: 0, kind: 0, nameStart: 0, nameEnd: 0 };
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const data = f.data;
    let descend: { oid: ObjectId; hash: number } | undefined;
    while (f.pos < data.length) {
      parseEntry(f, c);
      if (c.kind === 2 || !seen.addRaw(data, c.oid)) continue;
      const oid = hexAt(data, c.oid);
      out.push(oid);
      const hash = pathHash(f.hash, data, c.nameStart, c.nameEnd);
      paths?.listed.push(hash);
      if (c.kind === 0) {
        descend = { oid, hash };
        break;
      }
    }
    if (descend === undefined) stack.pop();
    else stack.push({ data: await mustRead(reader, descend.oid), pos: 0, hash: descend.hash });
  }
}

async function mustRead(reader: TreeReader, oid: ObjectId): Promise<Buffer> {
  const t = await reader.read(oid);
  if (t === undefined) throw new NotFoundError('OBJ_MISSING', `tree ${oid} is missing`);
  return t;
}
