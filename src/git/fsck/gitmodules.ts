/**
 * The second-pass blob checks of git's fsck_blob: .gitmodules parsed as git config (names,
 * urls, paths, update commands) and .gitattributes line lengths.
 */
import { isValidSubmoduleName, isValidSubmoduleUrl } from './submodule-url.js';
import type { FsckReporter } from './report.js';

/** git's ATTR_MAX_LINE_LENGTH: longer .gitattributes lines are ignored by git, so fsck flags them. */
export const ATTR_MAX_LINE_LENGTH = 2048;
/** git's ATTR_MAX_FILE_SIZE. */
export const ATTR_MAX_FILE_SIZE = 100 * 1024 * 1024;

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}
function isAlpha(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
function isKeyChar(c: string): boolean {
  return isAlpha(c) || (c >= '0' && c <= '9') || c === '-';
}

/**
 * A port of git's config parser (config.c git_parse_source) over a byte string (one char per
 * byte). Calls `fn(name, value)` for each entry, value undefined for a bare key; returns false
 * on a syntax error (entries before it were already reported, as in git).
 */
export function parseGitConfig(text: string, fn: (name: string, value: string | undefined) => void): boolean {
  let pos = 0;
  let eof = false;
  const getc = (): string => {
    if (pos >= text.length) {
      eof = true;
      return '\n';
    }
    const c = text[pos++] as string;
    if (c === '\r' && text[pos] === '\n') {
      pos++;
      return '\n';
    }
    return c;
  };
  const parseValue = (): string | undefined => {
    let quote = false;
    let comment = false;
    let value = '';
    let trimLen = 0;
    for (;;) {
      let c = getc();
      if (c === '\n') {
        if (quote) return undefined;
        return trimLen > 0 ? value.slice(0, trimLen) : value;
      }
      if (comment) continue;
      if (isSpace(c) && !quote) {
        if (trimLen === 0) trimLen = value.length;
        if (value.length > 0) value += c;
        continue;
      }
      if (!quote && (c === ';' || c === '#')) {
        comment = true;
        continue;
      }
      trimLen = 0;
      if (c === '\\') {
        c = getc();
        if (c === '\n') continue;
        if (c === 't') c = '\t';
        else if (c === 'b') c = '\b';
        else if (c === 'n') c = '\n';
        else if (c !== '\\' && c !== '"') return undefined;
        value += c;
        continue;
      }
      if (c === '"') {
        quote = !quote;
        continue;
      }
      value += c;
    }
  };
  const baseVar = (): string | undefined => {
    let name = '';
    for (;;) {
      let c = getc();
      if (eof) return undefined;
      if (c === ']') return name;
      if (isSpace(c)) {
        do {
          if (c === '\n') return undefined;
          c = getc();
        } while (isSpace(c));
        if (c !== '"') return undefined;
        name += '.';
        for (;;) {
          c = getc();
          if (c === '\n') return undefined;
          if (c === '"') break;
          if (c === '\\') {
            c = getc();
            if (c === '\n') return undefined;
          }
          name += c;
        }
        return getc() === ']' ? name : undefined;
      }
      if (!isKeyChar(c) && c !== '.') return undefined;
      name += c.toLowerCase();
    }
  };

  let comment = false;
  let section = '';
  // A UTF-8 byte order mark at the start is skipped; a partial one is an error.
  if (text.startsWith('\xef\xbb\xbf')) pos = 3;
  else if (text.startsWith('\xef')) return false;
  for (;;) {
    const c = getc();
    if (c === '\n') {
      if (eof) return true;
      comment = false;
      continue;
    }
    if (comment || isSpace(c)) continue;
    if (c === '#' || c === ';') {
      comment = true;
      continue;
    }
    if (c === '[') {
      const base = baseVar();
      if (base === undefined || base.length === 0) return false;
      section = base + '.';
      continue;
    }
    if (!isAlpha(c)) return false;
    let name = section + c.toLowerCase();
    let k: string;
    for (;;) {
      k = getc();
      if (eof || !isKeyChar(k)) break;
      name += k.toLowerCase();
    }
    while (k === ' ' || k === '\t') k = getc();
    let value: string | undefined;
    if (k !== '\n') {
      if (k !== '=') return false;
      value = parseValue();
      if (value === undefined) return false;
    }
    fn(name, value);
  }
}

/** A C string view: git's checks stop at the first NUL. */
function cstr(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

function shown(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}

/** git's fsck_gitmodules_fn over a whole .gitmodules blob. */
export function fsckGitmodules(data: Uint8Array, r: FsckReporter): void {
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const ok = parseGitConfig(text, (varName, value) => {
    if (!varName.startsWith('submodule.')) return;
    const dot = varName.lastIndexOf('.');
    if (dot === 9) return;
    const name = cstr(varName.slice(10, dot));
    const key = varName.slice(dot + 1);
    if (!isValidSubmoduleName(name)) r.report('gitmodulesName', `disallowed submodule name: ${shown(name)}`);
    if (value === undefined) return;
    const v = cstr(value);
    if (key === 'url' && !isValidSubmoduleUrl(v)) r.report('gitmodulesUrl', `disallowed submodule url: ${shown(v)}`);
    if (key === 'path' && v.startsWith('-')) r.report('gitmodulesPath', `disallowed submodule path: ${shown(v)}`);
    if (key === 'update' && v.startsWith('!')) r.report('gitmodulesUpdate', `disallowed submodule update setting: ${shown(v)}`);
  });
  if (!ok) r.report('gitmodulesParse', 'could not parse gitmodules blob');
}

/** git's .gitattributes blob check: not too large, no line of ATTR_MAX_LINE_LENGTH or more bytes. */
export function fsckGitattributes(data: Uint8Array, r: FsckReporter): void {
  if (data.length > ATTR_MAX_FILE_SIZE) {
    r.report('gitattributesLarge', '.gitattributes too large to parse');
    return;
  }
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const nul = buf.indexOf(0);
  const end = nul < 0 ? buf.length : nul;
  let off = 0;
  while (off < end) {
    let eol = buf.indexOf(0x0a, off);
    if (eol < 0 || eol > end) eol = end;
    if (eol - off >= ATTR_MAX_LINE_LENGTH) {
      r.report('gitattributesLineLength', '.gitattributes has too long lines to parse');
      return;
    }
    off = eol + 1;
  }
}
