/** Shared pieces of git's fsck_commit and fsck_tag: header termination, ids, idents. */
import type { FsckReporter } from './report.js';

const LF = 0x0a;

/**
 * git's verify_headers: no NUL before the blank line that ends the headers, and either such a
 * line or a final LF. Returns true when the object must not be looked at further (both
 * failures are fatal ids).
 */
export function verifyHeaders(buf: Buffer, r: FsckReporter): boolean {
  const blank = buf.indexOf('\n\n', 0, 'latin1');
  const headerEnd = blank < 0 ? buf.length : blank;
  const nul = buf.indexOf(0, 0);
  if (nul >= 0 && nul < headerEnd) {
    r.report('nulInHeader', `unterminated header: NUL at offset ${nul}`);
    return true;
  }
  if (blank >= 0) return false;
  if (buf.length > 0 && buf[buf.length - 1] === LF) return false;
  r.report('unterminatedHeader', 'unterminated header');
  return true;
}

/** True if `buf` at `off` starts with the ASCII `prefix`. */
export function hasPrefix(buf: Buffer, off: number, prefix: string): boolean {
  if (off + prefix.length > buf.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[off + i] !== prefix.charCodeAt(i)) return false;
  return true;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** True if 40 hex digits (either case, as git's get_oid_hex) and then LF start at `off`. */
export function isHexOidLine(buf: Buffer, off: number): boolean {
  if (off + 41 > buf.length) return false;
  for (let i = off; i < off + 40; i++) if (!isHex(buf[i] as number)) return false;
  return buf[off + 40] === LF;
}

/** Offset just past the LF ending the line that contains `off` (or the end of the buffer). */
export function nextLine(buf: Buffer, off: number): number {
  const nl = buf.indexOf(LF, off);
  return nl < 0 ? buf.length : nl + 1;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/** 2^63: time_t is signed 64-bit, so git's date_overflows rejects this and above. */
const TIME_T_LIMIT = 1n << 63n;

/**
 * git's fsck_ident on the ident starting at `start` (after "author " etc.). Returns
 * [offset of the next line, whether an error was reported].
 */
export function fsckIdent(buf: Buffer, start: number, r: FsckReporter): [number, boolean] {
  const nlAt = buf.indexOf(LF, start);
  const end = nlAt < 0 ? buf.length : nlAt;
  const next = nlAt < 0 ? buf.length : nlAt + 1;
  const ch = (i: number): number => (i < end ? (buf[i] as number) : LF);
  let p = start;
  if (ch(p) === 0x3c) return [next, r.report('missingNameBeforeEmail', 'invalid author/committer line - missing space before email')];
  for (;;) {
    const c = ch(p);
    if (c === LF) return [next, r.report('missingEmail', 'invalid author/committer line - missing email')];
    if (c === 0x3e) return [next, r.report('badName', 'invalid author/committer line - bad name')];
    if (c === 0x3c) break;
    p++;
  }
  if (buf[p - 1] !== 0x20) return [next, r.report('missingSpaceBeforeEmail', 'invalid author/committer line - missing space before email')];
  p++;
  for (;;) {
    const c = ch(p);
    if (c === LF || c === 0x3c) return [next, r.report('badEmail', 'invalid author/committer line - bad email')];
    if (c === 0x3e) break;
    p++;
  }
  p++;
  if (ch(p) !== 0x20) return [next, r.report('missingSpaceBeforeDate', 'invalid author/committer line - missing space before date')];
  p++;
  while (ch(p) === 0x20 || ch(p) === 0x09) p++;
  if (!isDigit(ch(p))) return [next, r.report('badDate', 'invalid author/committer line - bad date')];
  if (ch(p) === 0x30 && ch(p + 1) !== 0x20) return [next, r.report('zeroPaddedDate', 'invalid author/committer line - zero-padded date')];
  const digitsStart = p;
  while (isDigit(ch(p))) p++;
  // git reads at most 23 digits (more means TIME_MAX), and time_t must hold the value.
  // Up to 18 digits always fit; only longer numbers need the exact comparison.
  const digits = p - digitsStart;
  if (digits > 23 || (digits > 18 && BigInt(buf.toString('latin1', digitsStart, p)) >= TIME_T_LIMIT)) {
    return [next, r.report('badDateOverflow', 'invalid author/committer line - date causes integer overflow')];
  }
  if (ch(p) !== 0x20) return [next, r.report('badDate', 'invalid author/committer line - bad date')];
  p++;
  const s = ch(p);
  if ((s !== 0x2b && s !== 0x2d) || !isDigit(ch(p + 1)) || !isDigit(ch(p + 2)) || !isDigit(ch(p + 3)) || !isDigit(ch(p + 4)) || p + 5 !== end || nlAt < 0) {
    return [next, r.report('badTimezone', 'invalid author/committer line - bad time zone')];
  }
  return [next, false];
}
