/**
 * Ref name rules of `git check-ref-format` (refs.c check_refname_format): components split by
 * '/', none empty, none starting with '.' or ending with '.lock', no "..", no "@{", no control
 * characters, SP, ':', '?', '[', '\', '^', '~', DEL, no '*' (unless a refspec pattern), not
 * ending with '.', not the single name "@", at least two components unless one-level is allowed.
 */
import { ValidationError } from '../../core/errors.js';
import { REF_NAME_MAX } from '../../core/limits.js';

/** A ref name that passed checkRefName. */
export type RefName = string & { readonly __brand: 'RefName' };

/** Options of checkRefName, as the flags of git's check_refname_format. */
export interface RefNameOptions {
  /** Accept names with a single component, like "HEAD" or "main" (--allow-onelevel). */
  readonly allowOneLevel?: boolean;
  /** Accept a single '*' anywhere, as in one side of a refspec (--refspec-pattern). */
  readonly refspecPattern?: boolean;
  /** Longest name accepted, in UTF-8 bytes; REF_NAME_MAX unless given (git itself has none). */
  readonly maxBytes?: number;
}

/** A UTF-16 surrogate without its pair: such a name has no UTF-8 form to store. */
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a character is special (refs.c refname_disposition), for ASCII only. */
const enum Disp {
  Ok = 0,
  Slash = 1,
  Dot = 2,
  Brace = 3,
  Bad = 4,
  Star = 5,
}

const DISPOSITION = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) DISPOSITION[c] = Disp.Bad;
for (const ch of ' :?[\\^~\x7f') DISPOSITION[ch.charCodeAt(0)] = Disp.Bad;
DISPOSITION[0x2f] = Disp.Slash;
DISPOSITION[0x2e] = Disp.Dot;
DISPOSITION[0x7b] = Disp.Brace;
DISPOSITION[0x2a] = Disp.Star;

/** Returns why `name` is not a valid ref name, or undefined when it is. */
export function refNameProblem(name: string, opts: RefNameOptions = {}): string | undefined {
  if (name.length === 0) return 'it is empty';
  const maxBytes = opts.maxBytes ?? REF_NAME_MAX;
  // A network peer must not make us store or compare megabyte names.
  if (name.length > maxBytes || Buffer.byteLength(name, 'utf8') > maxBytes) return `it is longer than ${maxBytes} bytes`;
  if (LONE_SURROGATE_RE.test(name)) return 'it is not valid Unicode';
  if (name === '@') return 'it is the single character "@"';
  let allowStar = opts.refspecPattern === true;
  let components = 0;
  let start = 0;
  let last = 0;
  for (let i = 0; i <= name.length; i++) {
    const ch = i < name.length ? name.charCodeAt(i) : 0x2f;
    const disp = ch < 128 ? (DISPOSITION[ch] as Disp) : Disp.Ok;
    switch (disp) {
      case Disp.Slash: {
        if (i === start) return i === name.length ? 'it ends with "/"' : 'it has an empty component (leading or double "/")';
        if (name.charCodeAt(start) === 0x2e) return 'a component starts with "."';
        if (name.endsWith('.lock', i) && i - start >= 5) return 'a component ends with ".lock"';
        components++;
        start = i + 1;
        break;
      }
      case Disp.Dot:
        if (last === 0x2e) return 'it contains ".."';
        break;
      case Disp.Brace:
        if (last === 0x40) return 'it contains "@{"';
        break;
      case Disp.Bad:
        return ch < 0x20 || ch === 0x7f
          ? 'it contains a control character'
          : `it contains the character ${JSON.stringify(String.fromCharCode(ch))}`;
      case Disp.Star:
        if (!allowStar) return 'it contains "*"';
        allowStar = false;
        break;
      case Disp.Ok:
        break;
    }
    last = ch;
  }
  if (name.charCodeAt(name.length - 1) === 0x2e) return 'it ends with "."';
  if (opts.allowOneLevel !== true && components < 2) return 'it has only one component (expected e.g. refs/heads/<name>)';
  return undefined;
}

/** Checks a ref name exactly as `git check-ref-format`; throws ValidationError('REF_BAD_NAME'). */
export function checkRefName(name: string, opts: RefNameOptions = {}): RefName {
  const problem = refNameProblem(name, opts);
  if (problem !== undefined) {
    throw new ValidationError('REF_BAD_NAME', `invalid ref name ${JSON.stringify(name.slice(0, 200))}: ${problem}`);
  }
  return name as RefName;
}

/** True if `name` passes checkRefName. */
export function isValidRefName(name: string, opts: RefNameOptions = {}): boolean {
  return refNameProblem(name, opts) === undefined;
}
