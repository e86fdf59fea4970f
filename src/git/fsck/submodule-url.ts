/**
 * git's submodule name and URL rules used by fsck on .gitmodules (submodule-config.c
 * check_submodule_name / check_submodule_url, urlmatch.c url_normalize, url.c url_decode).
 * They block CVE-2018-11235 (names escaping .git/modules) and CVE-2020-11008 (URLs whose
 * decoded form carries a newline into credential helpers).
 */

function isSep(c: string | undefined): boolean {
  return c === '/' || c === '\\';
}

/** False for an empty name or one with a ".." path component ('/' or '\' separated). */
export function isValidSubmoduleName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i <= name.length; i++) {
    if (i === 0 || isSep(name[i - 1])) {
      if (name[i] === '.' && name[i + 1] === '.' && (i + 2 >= name.length || isSep(name[i + 2]))) return false;
    }
  }
  return true;
}

function hex2chr(s: string, i: number): number {
  const h = /^[0-9a-fA-F]{2}$/.test(s.slice(i, i + 2)) ? parseInt(s.slice(i, i + 2), 16) : -1;
  return h;
}

/** url.c url_decode: keeps the scheme up to the first ':' verbatim, decodes %XX (not %00) after it. */
export function urlDecode(url: string): string {
  const colon = url.indexOf(':');
  let out = colon > 0 ? url.slice(0, colon) : '';
  let i = colon > 0 ? colon : 0;
  while (i < url.length) {
    const c = url[i] as string;
    if (c === '\0') break;
    if (c === '%' && url.length - i >= 3) {
      const v = hex2chr(url, i + 1);
      if (v > 0) {
        out += String.fromCharCode(v);
        i += 3;
        continue;
      }
    }
    out += c;
    i++;
  }
  return out;
}

const SCHEME_CHARS = /^[A-Za-z0-9+.-]*/;
const HOST_CHARS = /^[A-Za-z0-9.\-_[:\]]*/;
const UNSAFE = ' <>"%{}|\\^`';
const RESERVED = ":/?#[]@!$&'()*+,;=";

/** urlmatch.c append_normalized_escapes; undefined on a bad %XX escape. */
function normalizeEscapes(from: string, escOk: string): string | undefined {
  let out = '';
  for (let i = 0; i < from.length; i++) {
    let code = from.charCodeAt(i);
    let wasEsc = false;
    if (code === 0x25) {
      if (from.length - i - 1 < 2) return undefined;
      code = hex2chr(from, i + 1);
      if (code < 0) return undefined;
      i += 2;
      wasEsc = true;
    }
    const ch = String.fromCharCode(code);
    if (code <= 0x1f || code >= 0x7f || UNSAFE.includes(ch) || (wasEsc && escOk.includes(ch))) {
      out += '%' + code.toString(16).toUpperCase().padStart(2, '0');
    } else {
      out += ch;
    }
  }
  return out;
}

/** A port of urlmatch.c url_normalize: the normalized URL, or undefined where git fails. */
export function urlNormalize(url: string): string | undefined {
  const schemeLen = (SCHEME_CHARS.exec(url) as RegExpExecArray)[0].length;
  if (schemeLen === 0 || !/^[A-Za-z]/.test(url) || schemeLen + 3 > url.length || url.slice(schemeLen, schemeLen + 3) !== '://') {
    return undefined;
  }
  let norm = url.slice(0, schemeLen + 3).toLowerCase();
  let rest = url.slice(schemeLen + 3);
  const cut = rest.search(/[/?#]/);
  const slashAt = cut < 0 ? rest.length : cut;
  const at = rest.indexOf('@');
  if (at >= 0 && at < slashAt) {
    if (at > 0) {
      const user = normalizeEscapes(rest.slice(0, at), RESERVED);
      if (user === undefined) return undefined;
      norm += user;
    }
    norm += '@';
    rest = rest.slice(at + 1);
  }
  const slash2 = rest.search(/[/?#]/);
  const slashPos = slash2 < 0 ? rest.length : slash2;
  let hasHost = true;
  if (rest.length === 0 || ':/?#'.includes(rest[0] as string)) {
    if (!norm.startsWith('file:')) return undefined;
    hasHost = false;
  }
  let colon = slashPos - 1;
  while (colon > 0 && rest[colon] !== ':' && rest[colon] !== ']') colon--;
  if (rest[colon] !== ':') colon = slashPos;
  else if (!hasHost && colon < slashPos && colon + 1 !== slashPos) return undefined;
  const hostSpan = (HOST_CHARS.exec(rest) as RegExpExecArray)[0].length;
  if (hostSpan < colon) return undefined;
  norm += rest.slice(0, colon).toLowerCase();
  if (colon < slashPos) {
    let port = rest.slice(colon + 1, slashPos).replace(/^0+/, '');
    if (port === '' && colon + 1 < slashPos) port = '0';
    const http80 = port === '80' && norm.startsWith('http:');
    const https443 = port === '443' && norm.startsWith('https:');
    if (port !== '' && !http80 && !https443) {
      if (!/^[0-9]+$/.test(port)) return undefined;
      const pnum = port.length <= 5 ? Number(port) : 0;
      if (pnum === 0 || pnum > 65535) return undefined;
      norm += ':' + port;
    }
  }
  rest = rest.slice(slashPos);
  // Path: normalise escapes per segment and resolve "." and ".." as git does.
  const pathStart = norm.length;
  norm += '/';
  if (rest.startsWith('/')) rest = rest.slice(1);
  for (;;) {
    const m = rest.search(/[/?#]/);
    const segEnd = m < 0 ? rest.length : m;
    const seg = normalizeEscapes(rest.slice(0, segEnd), RESERVED);
    if (seg === undefined) return undefined;
    let skipSlash = false;
    if (seg === '.') {
      if (norm.length === pathStart + 1) skipSlash = true;
      else norm = norm.slice(0, -1);
    } else if (seg === '..') {
      if (norm.length - 1 === pathStart) return undefined;
      const prev = norm.lastIndexOf('/', norm.length - 2);
      if (prev === pathStart) {
        norm = norm.slice(0, prev + 1);
        skipSlash = true;
      } else {
        norm = norm.slice(0, prev);
      }
    } else {
      norm += seg;
    }
    rest = rest.slice(segEnd);
    if (!rest.startsWith('/')) break;
    rest = rest.slice(1);
    if (!skipSlash) norm += '/';
  }
  if (rest.length > 0) {
    const tail = normalizeEscapes(rest, RESERVED);
    if (tail === undefined) return undefined;
    norm += tail;
  }
  return norm;
}

function countLeadingDotdots(url: string): [number, string] {
  let n = 0;
  for (;;) {
    if (/^\.\.[/\\]/.test(url)) {
      n++;
      url = url.slice(3);
    } else if (/^\.[/\\]/.test(url)) {
      url = url.slice(2);
    } else {
      return [n, url];
    }
  }
}

/** git's check_submodule_url: false for URLs git refuses to clone a submodule from. */
export function isValidSubmoduleUrl(url: string): boolean {
  if (url.startsWith('-')) return false;
  const relative = /^\.\.?[/\\]/.test(url);
  if (relative || url.startsWith('git://')) {
    if (urlDecode(url).includes('\n')) return false;
    const [dotdots, next] = countLeadingDotdots(url);
    return !(dotdots > 0 && (next[0] === ':' || next[0] === '/'));
  }
  let curl: string | undefined;
  const m = /^(?:http|https|ftp|ftps)::/.exec(url);
  if (m !== null) curl = url.slice(m[0].length);
  else if (/^(?:http|https|ftp|ftps):\/\//.test(url)) curl = url;
  if (curl === undefined) return true;
  const normalized = urlNormalize(curl);
  return normalized !== undefined && !urlDecode(normalized).includes('\n');
}
