/**
 * The first, straightforward fsckTree (an object and a name view per entry), kept as the
 * reference the allocation-free one in tree-check.ts is tested against.
 */
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
import type { SpecialBlob } from './tree-check.js';

/** Longest entry name before largePathname (git's default max_tree_entry_len). */
const FSCK_MAX_TREE_ENTRY_LEN = 4096;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

interface RawEntry {
  /** Mode truncated to 16 bits, as git's uint16_t. */
  mode: number;
  modeStart: number;
  nameStart: number;
  nameEnd: number;
  end: number;
}

/**
 * Decodes the entry at `off` like git's decode_tree_entry: at least 23 bytes left, the byte 21
 * before the end of the tree is NUL, a non-empty octal mode, a space, a non-empty name.
 */
function decodeEntry(buf: Uint8Array, off: number): RawEntry | undefined {
  const len = buf.length;
  if (len - off < 23 || buf[len - 21] !== 0) return undefined;
  let i = off;
  if (buf[i] === 0x20) return undefined;
  let mode = 0;
  for (;;) {
    const c = buf[i++] as number;
    if (c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    mode = ((mode << 3) + (c - 0x30)) & 0xffff;
  }
  const nameStart = i;
  while (buf[i] !== 0) i++;
  if (i === nameStart) return undefined;
  return { mode, modeStart: off, nameStart, nameEnd: i, end: i + 21 };
}

function isLessThanSlash(c: number): boolean {
  return c > 0 && c < 0x2f;
}

function startsWithBytes(a: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

const ORDERED = 0;
const UNORDERED = -1;
const HAS_DUPS = -2;

/** git's verify_ordered, including the stack that finds non-adjacent file/directory duplicates. */
function verifyOrdered(mode1: number, name1: Uint8Array, mode2: number, name2: Uint8Array, candidates: Uint8Array[]): number {
  const n = Math.min(name1.length, name2.length);
  for (let i = 0; i < n; i++) {
    const d = (name1[i] as number) - (name2[i] as number);
    if (d < 0) return ORDERED;
    if (d > 0) return UNORDERED;
  }
  let c1 = n < name1.length ? (name1[n] as number) : 0;
  let c2 = n < name2.length ? (name2[n] as number) : 0;
  if (c1 === 0 && c2 === 0) return HAS_DUPS;
  if (c1 === 0 && isTreeMode(mode1)) c1 = 0x2f;
  if (c2 === 0 && isTreeMode(mode2)) c2 = 0x2f;
  if (c1 === 0 && isLessThanSlash(c2)) {
    candidates.push(name1);
  } else if (c2 === 0x2f && isLessThanSlash(c1)) {
    for (;;) {
      const f = candidates.pop();
      if (f === undefined) break;
      if (!startsWithBytes(name2, f)) continue;
      if (name2.length === f.length) return HAS_DUPS;
      if (isLessThanSlash(name2[f.length] as number)) {
        candidates.push(f);
        break;
      }
    }
  }
  return c1 < c2 ? ORDERED : UNORDERED;
}

function oidAt(buf: Buffer, off: number): ObjectId {
  return buf.toString('hex', off, off + 20) as ObjectId;
}

function isNullOid(buf: Uint8Array, off: number): boolean {
  for (let i = off; i < off + 20; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Checks a tree as git's fsck_tree (non-strict) and returns the special blobs it names. */
export function fsckTreeReference(data: Uint8Array, r: FsckReporter): SpecialBlob[] {
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
  const candidates: Uint8Array[] = [];

  let entry = buf.length === 0 ? undefined : decodeEntry(buf, 0);
  if (buf.length > 0 && entry === undefined) {
    r.report('badTree', 'cannot be parsed as a tree');
    return [];
  }
  let prevMode = 0;
  let prevName: Uint8Array | undefined;
  const ab = buf.buffer;
  while (entry !== undefined) {
    const { mode, nameStart, nameEnd } = entry;
    const name = new Uint8Array(ab, buf.byteOffset + nameStart, nameEnd - nameStart);
    const oidOff = nameEnd + 1;
    const isLink = (mode & S_IFMT) === S_IFLNK;

    // One pass over the name for '/', '\' and a '~' early enough to form an NTFS short name.
    let slash = false;
    let backslash = false;
    let tilde = false;
    for (let i = 0; i < name.length; i++) {
      const ch = name[i] as number;
      if (ch === 0x2f) slash = true;
      else if (ch === 0x5c) backslash = true;
      else if (ch === 0x7e && i < 8) tilde = true;
    }
    hasNullSha1 ||= isNullOid(buf, oidOff);
    hasFullPath ||= slash;
    hasEmptyName ||= name.length === 0;
    hasZeroPad ||= buf[entry.modeStart] === 0x30;
    hasLargeName ||= name.length > FSCK_MAX_TREE_ENTRY_LEN;

    // Every special name starts with '.', an HFS-ignorable code point (lead byte E2 or EF) or
    // is an NTFS short name with '~' in its first 8 bytes; other names skip the checks.
    const b0 = name[0];
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

    const next = entry.end < buf.length ? decodeEntry(buf, entry.end) : undefined;
    if (entry.end < buf.length && next === undefined) {
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

    if (prevName !== undefined) {
      const v = verifyOrdered(prevMode, prevName, mode, name, candidates);
      if (v === UNORDERED) notProperlySorted = true;
      else if (v === HAS_DUPS) hasDupEntries = true;
    }
    prevMode = mode;
    prevName = name;
    entry = next;
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
