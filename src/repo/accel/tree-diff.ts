/**
 * Tree entry lists for the accelerator writer: entry boundaries of a tree's bytes, and the
 * difference of a tree from its delta base. Common leading and trailing bytes are skipped with
 * native compares and take their boundaries from the base, so only the changed middle of a
 * large tree is parsed entry by entry. The result is an exact edit script whatever the entry
 * order (even for trees git's fsck would warn about): kept entries are byte-identical.
 */
import { ValidationError } from '../../core/errors.js';
import { KIND_BLOB, KIND_GITLINK, KIND_TREE } from './format.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFGITLINK = 0o160000;
/** Bytes compared per native call when looking for the first difference. */
const CHUNK = 512;

/** A tree's entry boundaries: starts[k] is where entry k begins; starts[n] is the tree's length. */
export type EntryStarts = Int32Array;

/** The difference of a tree from its base. */
export interface TreeDiff {
  /** Indexes of base entries that are not in the tree. */
  readonly removed: number[];
  /** Indexes (in the tree) of entries not in the base. */
  readonly added: number[];
  /** The tree's own entry boundaries. */
  readonly starts: EntryStarts;
}

function bad(what: string, off: number): ValidationError {
  return new ValidationError('OBJ_CORRUPT', `corrupt tree object: ${what} at offset ${off}`);
}

/** Growable list of entry starts (a plain array: most lists are a handful of entries). */
class Starts {
  readonly a: number[] = [];
  get n(): number {
    return this.a.length;
  }
  push(v: number): void {
    this.a.push(v);
  }
}

/** End of the entry starting at `off` (after its 20-byte id); ValidationError('OBJ_CORRUPT') if malformed. */
function entryEnd(buf: Uint8Array, off: number): number {
  const len = buf.length;
  let i = off;
  if (buf[i] === 0x20) throw bad('empty mode', off);
  while (i < len && buf[i] !== 0x20) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x37) throw bad('malformed mode', off);
    i++;
  }
  const nul = (buf as Buffer).indexOf(0, i + 1);
  if (i >= len || nul < 0) throw bad('unterminated entry name', off);
  if (nul === i + 1) throw bad('empty entry name', off);
  if (nul + 21 > len) throw bad('truncated object id', off);
  return nul + 21;
}

/** Boundaries of every entry of a tree. */
export function parseTreeStarts(buf: Uint8Array): EntryStarts {
  const s = new Starts();
  let p = 0;
  while (p < buf.length) {
    s.push(p);
    p = entryEnd(buf, p);
  }
  s.push(p);
  return Int32Array.from(s.a);
}

/** Mode of the entry at `off`. */
export function entryMode(buf: Uint8Array, off: number): number {
  let mode = 0;
  for (let i = off; buf[i] !== 0x20; i++) mode = mode * 8 + (buf[i]! - 0x30);
  return mode;
}

/** Kind (KIND_TREE, KIND_BLOB, KIND_GITLINK) of a mode. */
export function modeKind(mode: number): number {
  const fmt = mode & S_IFMT;
  return fmt === S_IFDIR ? KIND_TREE : fmt === S_IFGITLINK ? KIND_GITLINK : KIND_BLOB;
}

/**
 * git's pack_name_hash of one name (whitespace skipped), low two bits replaced by `kind`:
 * the meta word of a tree entry.
 */
export function nameMeta(buf: Uint8Array, start: number, end: number, kind: number): number {
  let h = 0;
  for (let i = start; i < end; i++) {
    const ch = buf[i]!;
    if (ch === 0x20 || (ch >= 0x09 && ch <= 0x0d)) continue;
    h = ((h >>> 2) + (ch << 24)) >>> 0;
  }
  return ((h & ~3) | kind) >>> 0;
}

/** Meta word of the entry [start, end) of a tree (end is after the id). */
export function entryMeta(buf: Uint8Array, start: number, end: number): number {
  let sp = start;
  while (buf[sp] !== 0x20) sp++;
  return nameMeta(buf, sp + 1, end - 21, modeKind(entryMode(buf, start)));
}

/** Length of the common prefix of a and b. */
function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p + CHUNK <= n && a.compare(b, p, p + CHUNK, p, p + CHUNK) === 0) p += CHUNK;
  while (p < n && a[p] === b[p]) p++;
  return p;
}

/** Length of the common suffix of a and b, at most `max`. */
function commonSuffix(a: Buffer, b: Buffer, max: number): number {
  const al = a.length;
  const bl = b.length;
  let s = 0;
  while (s + CHUNK <= max && a.compare(b, bl - s - CHUNK, bl - s, al - s - CHUNK, al - s) === 0) s += CHUNK;
  while (s < max && a[al - s - 1] === b[bl - s - 1]) s++;
  return s;
}

/** Largest k with starts[k] <= v. */
function floorIndex(starts: EntryStarts, v: number): number {
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** git's base_name_compare of two entries (name bytes, then '/' for trees where one name ends). */
function compareEntries(a: Buffer, as: number, ae: number, b: Buffer, bs: number, be: number): number {
  let an = as;
  while (a[an] !== 0x20) an++;
  let bn = bs;
  while (b[bn] !== 0x20) bn++;
  const aTree = modeKind(entryMode(a, as)) === KIND_TREE;
  const bTree = modeKind(entryMode(b, bs)) === KIND_TREE;
  an++;
  bn++;
  const al = ae - 21 - an;
  const bl = be - 21 - bn;
  const len = al < bl ? al : bl;
  for (let i = 0; i < len; i++) {
    const d = a[an + i]! - b[bn + i]!;
    if (d !== 0) return d;
  }
  const ca = al > len ? a[an + len]! : aTree ? 0x2f : 0;
  const cb = bl > len ? b[bn + len]! : bTree ? 0x2f : 0;
  return ca - cb;
}

/** The difference of `target` from `base` (whose boundaries are `baseStarts`). */
export function diffTrees(base: Buffer, baseStarts: EntryStarts, target: Buffer): TreeDiff {
  const n = baseStarts.length - 1;
  const shift = target.length - base.length;
  const prefix = commonPrefix(base, target);
  const k = Math.min(n, floorIndex(baseStarts, prefix));
  const from = baseStarts[k]!;
  const suffix = commonSuffix(base, target, Math.min(base.length, target.length) - from);
  // Parse the target's middle until it rejoins a base boundary inside the common suffix.
  const mid = new Starts();
  let p = from;
  let j = k;
  for (;;) {
    if (p >= target.length - suffix) {
      const q = p - shift;
      while (j < n && baseStarts[j]! < q) j++;
      if (baseStarts[j] === q) break;
    }
    if (p >= target.length) throw bad('entries run past the end', p);
    mid.push(p);
    p = entryEnd(target, p);
  }
  const m = mid.n;
  const starts = new Int32Array(k + m + (n - j) + 1);
  starts.set(baseStarts.subarray(0, k), 0);
  for (let x = 0; x < m; x++) starts[k + x] = mid.a[x]!;
  for (let x = j; x <= n; x++) starts[k + m + x - j] = baseStarts[x]! + shift;
  // Merge the middles: base entries k..j-1 against target entries k..k+m-1.
  const removed: number[] = [];
  const added: number[] = [];
  let a = k;
  let b = 0;
  while (a < j && b < m) {
    const as = baseStarts[a]!;
    const ae = baseStarts[a + 1]!;
    const bs = mid.a[b]!;
    const be = b + 1 < m ? mid.a[b + 1]! : p;
    if (ae - as === be - bs && base.compare(target, bs, be, as, ae) === 0) {
      a++;
      b++;
      continue;
    }
    const c = compareEntries(base, as, ae, target, bs, be);
    if (c <= 0) removed.push(a++);
    if (c >= 0) added.push(k + b++);
  }
  while (a < j) removed.push(a++);
  while (b < m) added.push(k + b++);
  return { removed, added, starts };
}
