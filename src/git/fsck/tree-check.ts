/** git's fsck_tree: entry parsing, names, modes and order of one tree object. */
import type { ObjectId } from '../hash/object-id.js';
import { isTreeMode } from '../object/tree.js';
import {
  isHfsDotgit,
  isHfsDotgitattributes,
  isHfsDotgitignore,
  isHfsDotgitmodules,
  isHfsDotmailmap,
  isNtfsDotgit,
  isNtfsDotgitattributes,
  isNtfsDotgitignore,
  isNtfsDotgitmodules,
  isNtfsDotmailmap,
} from './dotgit.js';
import type { FsckReporter } from './report.js';

/** A blob found under a special name, to be checked once its content is known. */
export interface SpecialBlob {
  readonly oid: ObjectId;
  readonly kind: 'gitmodules' | 'gitattributes';
}

/** Longest entry name before largePathname (git's default max_tree_entry_len). */
export const FSCK_MAX_TREE_ENTRY_LEN = 4096;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** One decoded entry; two are reused while walking a tree, so decoding allocates nothing. */
interface RawEntry {
  /** Mode truncated to 16 bits, as git's uint16_t. */
  mode: number;
  modeStart: number;
  nameStart: number;
  nameEnd: number;
  end: number;
}

function rawEntry(): RawEntry {
  return { mode: 0, modeStart: 0, nameStart: 0, nameEnd: 0, end: 0 };
}

/**
 * Decodes the entry at `off` into `e` like git's decode_tree_entry: at least 23 bytes left,
 * the byte 21 before the end of the tree is NUL, a non-empty octal mode, a space, a non-empty
 * name. Returns false if it does not decode.
 */
function decodeEntry(buf: Uint8Array, off: number, e: RawEntry): boolean {
  const len = buf.length;
  if (len - off < 23 || buf[len - 21] !== 0) return false;
  let i = off;
  if (buf[i] === 0x20) return false;
  let mode = 0;
  for (;;) {
    const c = buf[i++] as number;
    if (c === 0x20) break;
    if (c < 0x30 || c > 0x37) return false;
    mode = ((mode << 3) + (c - 0x30)) & 0xffff;
  }
  const nameStart = i;
  while (buf[i] !== 0) i++;
  if (i === nameStart) return false;
  e.mode = mode;
  e.modeStart = off;
  e.nameStart = nameStart;
  e.nameEnd = i;
  e.end = i + 21;
  return true;
}

function isLessThanSlash(c: number): boolean {
  return c > 0 && c < 0x2f;
}

const ORDERED = 0;
const UNORDERED = -1;
const HAS_DUPS = -2;

/**
 * git's verify_ordered on two names given as ranges of `buf`, including the stack that finds
 * non-adjacent file/directory duplicates (`candidates` holds start, end pairs).
 */
function verifyOrdered(buf: Uint8Array, mode1: number, s1: number, e1: number, mode2: number, s2: number, e2: number, candidates: number[]): number {
  const l1 = e1 - s1;
  const l2 = e2 - s2;
  const n = l1 < l2 ? l1 : l2;
  for (let i = 0; i < n; i++) {
    const d = (buf[s1 + i] as number) - (buf[s2 + i] as number);
    if (d < 0) return ORDERED;
    if (d > 0) return UNORDERED;
  }
  let c1 = n < l1 ? (buf[s1 + n] as number) : 0;
  let c2 = n < l2 ? (buf[s2 + n] as number) : 0;
  if (c1 === 0 && c2 === 0) return HAS_DUPS;
  if (c1 === 0 && isTreeMode(mode1)) c1 = 0x2f;
  if (c2 === 0 && isTreeMode(mode2)) c2 = 0x2f;
  if (c1 === 0 && isLessThanSlash(c2)) {
    candidates.push(s1, e1);
  } else if (c2 === 0x2f && isLessThanSlash(c1)) {
    while (candidates.length > 0) {
      const fe = candidates.pop()!;
      const fs = candidates.pop()!;
      const fl = fe - fs;
      if (!rangeStartsWith(buf, s2, l2, fs, fl)) continue;
      if (l2 === fl) return HAS_DUPS;
      if (isLessThanSlash(buf[s2 + fl] as number)) {
        candidates.push(fs, fe);
        break;
      }
    }
  }
  return c1 < c2 ? ORDERED : UNORDERED;
}

/** Whether buf[s..s+l) starts with buf[ps..ps+pl). */
function rangeStartsWith(buf: Uint8Array, s: number, l: number, ps: number, pl: number): boolean {
  if (pl > l) return false;
  for (let i = 0; i < pl; i++) if (buf[s + i] !== buf[ps + i]) return false;
  return true;
}

function oidAt(buf: Buffer, off: number): ObjectId {
  return buf.toString('hex', off, off + 20) as ObjectId;
}

function isNullOid(buf: Uint8Array, off: number): boolean {
  for (let i = off; i < off + 20; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Checks a tree as git's fsck_tree (non-strict) and returns the special blobs it names. */
export function fsckTree(data: Uint8Array, r: FsckReporter): SpecialBlob[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const special = new Map<string, SpecialBlob>();
  const addSpecial = (oid: ObjectId, kind: SpecialBlob['kind']): void => {
    special.set(`${kind}:${oid}`, { oid, kind });
  };
  let hasNullSha1 = false;
  let hasFullPath = false;
  let hasEmptyName = false;
  let hasDot = false;
  let hasDotdot = false;
  let hasDotgit = false;
  let hasZeroPad = false;
  let hasBadModes = false;
  let hasDupEntries = false;
  let notProperlySorted = false;
  let hasLargeName = false;
  const candidates: number[] = [];

  let entry = rawEntry();
  let next = rawEntry();
  if (buf.length > 0 && !decodeEntry(buf, 0, entry)) {
    r.report('badTree', 'cannot be parsed as a tree');
    return [];
  }
  let more = buf.length > 0;
  let prevMode = 0;
  let prevStart = -1;
  let prevEnd = -1;
  const ab = buf.buffer;
  while (more) {
    const { mode, nameStart, nameEnd } = entry;
    const nameLength = nameEnd - nameStart;
    const oidOff = nameEnd + 1;
    const isLink = (mode & S_IFMT) === S_IFLNK;

    // One pass over the name for '/', '\' and a '~' early enough to form an NTFS short name.
    let slash = false;
    let backslash = false;
    let tilde = false;
    for (let i = nameStart; i < nameEnd; i++) {
      const ch = buf[i] as number;
      if (ch === 0x2f) slash = true;
      else if (ch === 0x5c) backslash = true;
      else if (ch === 0x7e && i - nameStart < 8) tilde = true;
    }
    hasNullSha1 ||= buf[oidOff] === 0 && isNullOid(buf, oidOff);
    hasFullPath ||= slash;
    hasEmptyName ||= nameLength === 0;
    hasZeroPad ||= buf[entry.modeStart] === 0x30;
    hasLargeName ||= nameLength > FSCK_MAX_TREE_ENTRY_LEN;

    // Every special name starts with '.', an HFS-ignorable code point (lead byte E2 or EF) or
    // is an NTFS short name with '~' in its first 8 bytes; other names skip the checks.
    const b0 = buf[nameStart];
    if (b0 === 0x2e || b0 === 0xe2 || b0 === 0xef || tilde || backslash) {
      const name = new Uint8Array(ab, buf.byteOffset + nameStart, nameLength);
      if (b0 === 0x2e || b0 === 0xe2 || b0 === 0xef || tilde) {
        hasDot ||= name.length === 1 && b0 === 0x2e;
        hasDotdot ||= name.length === 2 && b0 === 0x2e && name[1] === 0x2e;
        hasDotgit ||= isHfsDotgit(name) || isNtfsDotgit(name);
        if (isHfsDotgitmodules(name) || isNtfsDotgitmodules(name)) {
          if (!isLink) addSpecial(oidAt(buf, oidOff), 'gitmodules');
          else r.report('gitmodulesSymlink', '.gitmodules is a symbolic link');
        }
        if (isHfsDotgitattributes(name) || isNtfsDotgitattributes(name)) {
          if (!isLink) addSpecial(oidAt(buf, oidOff), 'gitattributes');
          else r.report('gitattributesSymlink', '.gitattributes is a symlink');
        }
        if (isLink) {
          if (isHfsDotgitignore(name) || isNtfsDotgitignore(name)) r.report('gitignoreSymlink', '.gitignore is a symlink');
          if (isHfsDotmailmap(name) || isNtfsDotmailmap(name)) r.report('mailmapSymlink', '.mailmap is a symlink');
        }
      }
      // git fscks on every platform as if '\' separated directories (NTFS).
      if (backslash) {
        let bs = name.indexOf(0x5c);
        while (bs >= 0) {
          hasDotgit ||= isNtfsDotgit(name, bs + 1);
          if (isNtfsDotgitmodules(name, bs + 1)) {
            if (!isLink) addSpecial(oidAt(buf, oidOff), 'gitmodules');
            else r.report('gitmodulesSymlink', '.gitmodules is a symbolic link');
          }
          bs = name.indexOf(0x5c, bs + 1);
        }
      }
    }

    more = entry.end < buf.length;
    if (more && !decodeEntry(buf, entry.end, next)) {
      r.report('badTree', 'cannot be parsed as a tree');
      break;
    }

    switch (mode) {
      case 0o100755:
      case 0o100644:
      case 0o120000:
      case 0o040000:
      case 0o160000:
      // 100664 appears in very early histories; git accepts it unless --strict.
      case 0o100664:
        break;
      default:
        hasBadModes = true;
    }

    if (prevStart >= 0) {
      const v = verifyOrdered(buf, prevMode, prevStart, prevEnd, mode, nameStart, nameEnd, candidates);
      if (v === UNORDERED) notProperlySorted = true;
      else if (v === HAS_DUPS) hasDupEntries = true;
    }
    prevMode = mode;
    prevStart = nameStart;
    prevEnd = nameEnd;
    const done = entry;
    entry = next;
    next = done;
  }

  if (hasNullSha1) r.report('nullSha1', 'contains entries pointing to null sha1');
  if (hasFullPath) r.report('fullPathname', 'contains full pathnames');
  if (hasEmptyName) r.report('emptyName', 'contains empty pathname');
  if (hasDot) r.report('hasDot', "contains '.'");
  if (hasDotdot) r.report('hasDotdot', "contains '..'");
  if (hasDotgit) r.report('hasDotgit', "contains '.git'");
  if (hasZeroPad) r.report('zeroPaddedFilemode', 'contains zero-padded file modes');
  if (hasBadModes) r.report('badFilemode', 'contains bad file modes');
  if (hasDupEntries) r.report('duplicateEntries', 'contains duplicate file entries');
  if (notProperlySorted) r.report('treeNotSorted', 'not properly sorted');
  if (hasLargeName) r.report('largePathname', 'contains excessively large pathname');
  return [...special.values()];
}
