/**
 * Shared helpers for the `key value\n` header block of commits and tags (continuation lines
 * start with one space) and for hex object ids inside object bytes.
 */
import type { ObjectId } from '../hash/object-id.js';

/** One header of a commit or tag; multi-line values are joined with '\n' (leading space removed). */
export interface RawHeader {
  readonly key: string;
  readonly value: string;
}

const LF = 0x0a;
const SP = 0x20;

/** Value of each ASCII byte as a hex digit, or -1. */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[0x61 + i] = 10 + i;
  HEX_VALUE[0x41 + i] = 10 + i;
}

/** A Buffer view of `data` without copying (returns `data` itself when it is a Buffer). */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Reads 40 hex digits at `off` (either case, as git's get_oid_hex accepts) and returns the
 * lowercase id, or undefined when they are not all hex or run past the end.
 */
export function readHexOid(buf: Buffer, off: number): ObjectId | undefined {
  if (off + 40 > buf.length) return undefined;
  let upper = false;
  for (let i = off; i < off + 40; i++) {
    const c = buf[i] as number;
    if ((HEX_VALUE[c] as number) < 0) return undefined;
    if (c <= 0x46 && c >= 0x41) upper = true;
  }
  const s = buf.toString('latin1', off, off + 40);
  return (upper ? s.toLowerCase() : s) as ObjectId;
}

const HEX_OID_RE = /^[0-9a-fA-F]{40}$/;

/** The lowercase id if `s` is exactly 40 hex digits (either case), else undefined. */
export function hexOidFromString(s: string): ObjectId | undefined {
  if (!HEX_OID_RE.test(s)) return undefined;
  return s.toLowerCase() as ObjectId;
}

/** True if `buf` at `off` starts with the ASCII bytes of `prefix`. */
export function startsWithAscii(buf: Uint8Array, off: number, prefix: string): boolean {
  if (off + prefix.length > buf.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (buf[off + i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** Result of splitting an object into headers and message. */
export interface HeaderBlock {
  readonly headers: RawHeader[];
  /** Offset of the message (after the blank line), or data.length when there is none. */
  readonly messageStart: number;
}

/**
 * Splits the header block of a commit or tag. Lenient: a header line without a space has an
 * empty value; a continuation line before any header is kept as a header with an empty key;
 * a missing final LF ends the headers at the end of the data.
 */
export function splitHeaders(data: Uint8Array): HeaderBlock {
  const buf = asBuffer(data);
  const headers: { key: string; value: string }[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === LF) return { headers, messageStart: off + 1 };
    let eol = buf.indexOf(LF, off);
    if (eol < 0) eol = buf.length;
    if (buf[off] === SP) {
      const cont = buf.toString('utf8', off + 1, eol);
      const last = headers[headers.length - 1];
      if (last === undefined) headers.push({ key: '', value: cont });
      else last.value += '\n' + cont;
    } else {
      const sp = buf.indexOf(SP, off);
      if (sp < 0 || sp > eol) headers.push({ key: buf.toString('utf8', off, eol), value: '' });
      else headers.push({ key: buf.toString('utf8', off, sp), value: buf.toString('utf8', sp + 1, eol) });
    }
    off = eol + 1;
  }
  return { headers, messageStart: buf.length };
}

/** Writes one header as git does: continuation lines of a multi-line value start with a space. */
export function formatHeader(key: string, value: string): string {
  return `${key} ${value.replaceAll('\n', '\n ')}\n`;
}
