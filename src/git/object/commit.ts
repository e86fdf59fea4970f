/**
 * Commit objects (gitformat: `tree`, `parent`*, `author`, `committer`, other headers, blank
 * line, message). Decoding is as lenient as git's parse_commit_buffer; fsck/ is the strict check.
 */
import { ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { asBuffer, formatHeader, hexOidFromString, readHexOid, splitHeaders, startsWithAscii, type RawHeader } from './headers.js';
import { formatIdent, parseIdent, type Ident } from './ident.js';

/** A decoded commit. `message` is a view into the decoded bytes, not a copy. */
export interface Commit {
  readonly tree: ObjectId;
  readonly parents: ObjectId[];
  readonly author: Ident | undefined;
  readonly committer: Ident | undefined;
  /** Committer time in seconds, 0 if unparsable. */
  readonly committerTime: number;
  /** Value of the `encoding` header, if any (it is also in extraHeaders). */
  readonly encoding?: string;
  readonly message: Uint8Array;
  /** Header lines other than tree/parent/author/committer, raw (multi-line values joined by '\n'). */
  readonly extraHeaders: RawHeader[];
}

/** What encodeCommit needs. */
export interface CommitFields {
  readonly tree: ObjectId;
  readonly parents: readonly ObjectId[];
  readonly author: Ident;
  readonly committer: Ident;
  readonly message: string | Uint8Array;
  /** Written after `committer`, in order (e.g. encoding, gpgsig, mergetag). */
  readonly extraHeaders?: readonly RawHeader[];
}

/** Just the links of a commit, for walks. */
export interface CommitLinks {
  readonly tree: ObjectId;
  readonly parents: ObjectId[];
  readonly committerTime: number;
}

function corrupt(what: string): ValidationError {
  return new ValidationError('OBJ_CORRUPT', `corrupt commit object: ${what}`);
}

/**
 * Reads the seconds after the last '>' of the line [start, end): git's parse_commit_date.
 * Returns 0 when there are no digits or the number is not a safe integer.
 */
export function parseIdentTime(data: Uint8Array, start: number, end: number): number {
  let i = end - 1;
  while (i >= start && data[i] !== 0x3e) i--;
  if (i < start) return 0;
  i++;
  while (i < end && data[i] === 0x20) i++;
  let t = 0;
  let digits = 0;
  while (i < end) {
    const c = data[i] as number;
    if (c < 0x30 || c > 0x39) break;
    t = t * 10 + (c - 0x30);
    digits++;
    i++;
  }
  return digits > 0 && Number.isSafeInteger(t) ? t : 0;
}

/**
 * Fast path for hot walks: tree, parents and committer time without decoding the message or
 * the idents. Throws ValidationError('OBJ_CORRUPT') when the tree or parent lines are bad.
 */
export function decodeCommitLinks(data: Uint8Array): CommitLinks {
  const buf = asBuffer(data);
  // "tree " + 40 hex + LF
  if (!startsWithAscii(buf, 0, 'tree ') || buf[45] !== 0x0a) throw corrupt('missing or malformed tree line');
  const tree = readHexOid(buf, 5);
  if (tree === undefined) throw corrupt('malformed tree id');
  const parents: ObjectId[] = [];
  let off = 46;
  // "parent " + 40 hex + LF, checked by its first two bytes before the full compare.
  while (buf[off] === 0x70 && buf[off + 1] === 0x61 && startsWithAscii(buf, off, 'parent ')) {
    const p = readHexOid(buf, off + 7);
    if (p === undefined || buf[off + 47] !== 0x0a) throw corrupt('malformed parent line');
    parents.push(p);
    off += 48;
  }
  let committerTime = 0;
  if (startsWithAscii(buf, off, 'author ')) {
    const eol = buf.indexOf(0x0a, off);
    if (eol >= 0) off = eol + 1;
  }
  if (startsWithAscii(buf, off, 'committer ')) {
    let eol = buf.indexOf(0x0a, off);
    if (eol < 0) eol = buf.length;
    committerTime = parseIdentTime(buf, off, eol);
  } else {
    const committer = splitHeaders(buf).headers.find((h) => h.key === 'committer');
    if (committer !== undefined) committerTime = parseIdent(committer.value)?.timestamp ?? 0;
  }
  return { tree, parents, committerTime };
}

/** Decodes a commit; throws ValidationError('OBJ_CORRUPT') when tree/parent lines are missing or bad. */
export function decodeCommit(data: Uint8Array): Commit {
  const { headers, messageStart } = splitHeaders(data);
  const first = headers[0];
  if (first === undefined || first.key !== 'tree') throw corrupt('missing tree line');
  const tree = readOidValue(first.value, 'tree');
  const parents: ObjectId[] = [];
  let i = 1;
  for (; i < headers.length && (headers[i] as RawHeader).key === 'parent'; i++) {
    parents.push(readOidValue((headers[i] as RawHeader).value, 'parent'));
  }
  let author: Ident | undefined;
  let committer: Ident | undefined;
  let seenAuthor = false;
  let seenCommitter = false;
  let encoding: string | undefined;
  const extraHeaders: RawHeader[] = [];
  for (; i < headers.length; i++) {
    const h = headers[i] as RawHeader;
    if (h.key === 'author' && !seenAuthor) {
      seenAuthor = true;
      author = parseIdent(h.value);
    } else if (h.key === 'committer' && !seenCommitter) {
      seenCommitter = true;
      committer = parseIdent(h.value);
    } else {
      if (h.key === 'encoding' && encoding === undefined) encoding = h.value;
      extraHeaders.push(h);
    }
  }
  const message = data.subarray(messageStart);
  const base = { tree, parents, author, committer, committerTime: committer?.timestamp ?? 0, message, extraHeaders };
  return encoding === undefined ? base : { ...base, encoding };
}

function readOidValue(value: string, what: string): ObjectId {
  const oid = hexOidFromString(value);
  if (oid === undefined) throw corrupt(`malformed ${what} line`);
  return oid;
}

/** Encodes a commit exactly as git writes one (headers, blank line, message as given). */
export function encodeCommit(c: CommitFields): Uint8Array {
  let head = `tree ${c.tree}\n`;
  for (const p of c.parents) head += `parent ${p}\n`;
  head += `author ${formatIdent(c.author)}\ncommitter ${formatIdent(c.committer)}\n`;
  for (const h of c.extraHeaders ?? []) head += formatHeader(h.key, h.value);
  head += '\n';
  const msg = typeof c.message === 'string' ? Buffer.from(c.message, 'utf8') : c.message;
  const headBytes = Buffer.from(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes.length + msg.length);
  headBytes.copy(out, 0);
  out.set(msg, headBytes.length);
  return out;
}
