/**
 * Names that HFS+ or NTFS would treat as `.git`, `.gitmodules`, … (git's utf8.c is_hfs_dot*
 * and path.c is_ntfs_dot*). They work on raw name bytes; the end of the name acts as git's NUL.
 */

function at(s: Uint8Array, i: number): number {
  return i < s.length ? (s[i] as number) : 0;
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/** Code points HFS+ ignores when comparing names (utf8.c next_hfs_char). */
function isHfsIgnorable(c: number): boolean {
  return (c >= 0x200c && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x206a && c <= 0x206f) || c === 0xfeff;
}

/**
 * Reads UTF-8 like git's pick_one_utf8_char (rejecting overlongs, surrogates, U+FFFE/F and
 * past U+10FFFF), skipping HFS-ignorable code points. Returns [char, next offset]; an invalid
 * sequence yields char 0, as in git.
 */
function nextHfsChar(s: Uint8Array, pos: number): [number, number] {
  for (;;) {
    const b0 = at(s, pos);
    let ch: number;
    let incr: number;
    if (b0 < 0x80) {
      ch = b0;
      incr = 1;
    } else if ((b0 & 0xe0) === 0xc0) {
      const b1 = at(s, pos + 1);
      if ((b1 & 0xc0) !== 0x80 || (b0 & 0xfe) === 0xc0) return [0, pos];
      ch = ((b0 & 0x1f) << 6) | (b1 & 0x3f);
      incr = 2;
    } else if ((b0 & 0xf0) === 0xe0) {
      const b1 = at(s, pos + 1);
      const b2 = at(s, pos + 2);
      if (
        (b1 & 0xc0) !== 0x80 ||
        (b2 & 0xc0) !== 0x80 ||
        (b0 === 0xe0 && (b1 & 0xe0) === 0x80) ||
        (b0 === 0xed && (b1 & 0xe0) === 0xa0) ||
        (b0 === 0xef && b1 === 0xbf && (b2 & 0xfe) === 0xbe)
      ) {
        return [0, pos];
      }
      ch = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
      incr = 3;
    } else if ((b0 & 0xf8) === 0xf0) {
      const b1 = at(s, pos + 1);
      const b2 = at(s, pos + 2);
      const b3 = at(s, pos + 3);
      if (
        (b1 & 0xc0) !== 0x80 ||
        (b2 & 0xc0) !== 0x80 ||
        (b3 & 0xc0) !== 0x80 ||
        (b0 === 0xf0 && (b1 & 0xf0) === 0x80) ||
        (b0 === 0xf4 && b1 > 0x8f) ||
        b0 > 0xf4
      ) {
        return [0, pos];
      }
      ch = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
      incr = 4;
    } else {
      return [0, pos];
    }
    pos += incr;
    if (!isHfsIgnorable(ch)) return [ch, pos];
  }
}

/** True if HFS+ would see `.<needle>` (needle lowercase ASCII), optionally followed by '/'. */
function isHfsDot(name: Uint8Array, needle: string): boolean {
  // Cheap exit: only '.' or the lead bytes of ignorable code points can start a match.
  const b0 = at(name, 0);
  if (b0 !== 0x2e && b0 !== 0xe2 && b0 !== 0xef) return false;
  let [c, pos] = nextHfsChar(name, 0);
  if (c !== 0x2e) return false;
  for (let k = 0; k < needle.length; k++) {
    [c, pos] = nextHfsChar(name, pos);
    if (c > 127 || lower(c) !== needle.charCodeAt(k)) return false;
  }
  [c] = nextHfsChar(name, pos);
  return c === 0 || c === 0x2f;
}

/** HFS+ synonym of `.git`. */
export function isHfsDotgit(name: Uint8Array): boolean {
  return isHfsDot(name, 'git');
}
/** HFS+ synonym of `.gitmodules`. */
export function isHfsDotgitmodules(name: Uint8Array): boolean {
  return isHfsDot(name, 'gitmodules');
}
/** HFS+ synonym of `.gitignore`. */
export function isHfsDotgitignore(name: Uint8Array): boolean {
  return isHfsDot(name, 'gitignore');
}
/** HFS+ synonym of `.gitattributes`. */
export function isHfsDotgitattributes(name: Uint8Array): boolean {
  return isHfsDot(name, 'gitattributes');
}
/** HFS+ synonym of `.mailmap`. */
export function isHfsDotmailmap(name: Uint8Array): boolean {
  return isHfsDot(name, 'mailmap');
}

/**
 * NTFS synonym of `.git` starting at `start`: `.git` or `git~1` (any case), then only spaces
 * or periods up to the end, a '/', a '\' or a ':' (alternate data streams).
 */
export function isNtfsDotgit(name: Uint8Array, start = 0): boolean {
  let i = start;
  let c = at(name, i++);
  if (c === 0x2e) {
    if (lower(at(name, i++)) !== 0x67 || lower(at(name, i++)) !== 0x69 || lower(at(name, i++)) !== 0x74) return false;
  } else if (c === 0x67 || c === 0x47) {
    if (lower(at(name, i++)) !== 0x69 || lower(at(name, i++)) !== 0x74 || at(name, i++) !== 0x7e || at(name, i++) !== 0x31) {
      return false;
    }
  } else {
    return false;
  }
  for (;;) {
    c = at(name, i++);
    if (c === 0 || c === 0x2f || c === 0x5c || c === 0x3a) return true;
    if (c !== 0x2e && c !== 0x20) return false;
  }
}

function onlySpacesAndPeriods(name: Uint8Array, i: number): boolean {
  for (;;) {
    const c = at(name, i++);
    if (c === 0 || c === 0x3a) return true;
    if (c !== 0x20 && c !== 0x2e) return false;
  }
}

/** git's is_ntfs_dot_generic: `.<name>`, its 6-char `~1`-`~4` short name, or the hashed 8.3 form. */
function isNtfsDot(name: Uint8Array, start: number, dotName: string, shortPrefix: string): boolean {
  const at0 = (i: number): number => at(name, start + i);
  if (at0(0) === 0x2e) {
    let k = 0;
    while (k < dotName.length && lower(at0(1 + k)) === dotName.charCodeAt(k)) k++;
    if (k === dotName.length) return onlySpacesAndPeriods(name, start + dotName.length + 1);
  }
  let k = 0;
  while (k < 6 && lower(at0(k)) === dotName.charCodeAt(k)) k++;
  if (k === 6 && at0(6) === 0x7e && at0(7) >= 0x31 && at0(7) <= 0x34) return onlySpacesAndPeriods(name, start + 8);
  let sawTilde = false;
  for (let i = 0; i < 8; i++) {
    const c = at0(i);
    if (c === 0) return false;
    if (sawTilde) {
      if (c < 0x30 || c > 0x39) return false;
    } else if (c === 0x7e) {
      i++;
      if (at0(i) < 0x31 || at0(i) > 0x39) return false;
      sawTilde = true;
    } else if (i >= 6) {
      return false;
    } else if (c & 0x80) {
      return false;
    } else if (lower(c) !== shortPrefix.charCodeAt(i)) {
      return false;
    }
  }
  return onlySpacesAndPeriods(name, start + 8);
}

/** NTFS synonym of `.gitmodules` (short name prefix gi7eba). */
export function isNtfsDotgitmodules(name: Uint8Array, start = 0): boolean {
  return isNtfsDot(name, start, 'gitmodules', 'gi7eba');
}
/** NTFS synonym of `.gitignore` (short name prefix gi250a). */
export function isNtfsDotgitignore(name: Uint8Array, start = 0): boolean {
  return isNtfsDot(name, start, 'gitignore', 'gi250a');
}
/** NTFS synonym of `.gitattributes` (short name prefix gi7d29). */
export function isNtfsDotgitattributes(name: Uint8Array, start = 0): boolean {
  return isNtfsDot(name, start, 'gitattributes', 'gi7d29');
}
/** NTFS synonym of `.mailmap` (short name prefix maba30). */
export function isNtfsDotmailmap(name: Uint8Array, start = 0): boolean {
  return isNtfsDot(name, start, 'mailmap', 'maba30');
}
