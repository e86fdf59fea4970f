/** git's fsck_commit and fsck_tag_standalone on raw object bytes. */
import { refNameProblem } from '../refname/check.js';
import { fsckIdent, hasPrefix, isHexOidLine, nextLine, verifyHeaders } from './header-check.js';
import type { FsckReporter } from './report.js';

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Checks a commit's headers exactly in git's order; stops at the first error as git does. */
export function fsckCommit(data: Uint8Array, r: FsckReporter): void {
  const buf = asBuffer(data);
  if (verifyHeaders(buf, r)) return;
  let off = 0;
  if (!hasPrefix(buf, off, 'tree ')) {
    r.report('missingTree', "invalid format - expected 'tree' line");
    return;
  }
  off += 5;
  if (!isHexOidLine(buf, off) && r.report('badTreeSha1', "invalid 'tree' line format - bad sha1")) return;
  off = nextLine(buf, off);
  while (off < buf.length && hasPrefix(buf, off, 'parent ')) {
    off += 7;
    if (!isHexOidLine(buf, off) && r.report('badParentSha1', "invalid 'parent' line format - bad sha1")) return;
    off = nextLine(buf, off);
  }
  let authors = 0;
  while (off < buf.length && hasPrefix(buf, off, 'author ')) {
    authors++;
    const [next, err] = fsckIdent(buf, off + 7, r);
    if (err) return;
    off = next;
  }
  if (authors < 1) {
    if (r.report('missingAuthor', "invalid format - expected 'author' line")) return;
  } else if (authors > 1) {
    if (r.report('multipleAuthors', "invalid format - multiple 'author' lines")) return;
  }
  if (off >= buf.length || !hasPrefix(buf, off, 'committer ')) {
    r.report('missingCommitter', "invalid format - expected 'committer' line");
    return;
  }
  const [, err] = fsckIdent(buf, off + 10, r);
  if (err) return;
  if (buf.indexOf(0) >= 0) r.report('nulInCommit', 'NUL byte in the commit object body');
}

const TAG_TYPES = new Set(['commit', 'tree', 'blob', 'tag']);

/** Checks a tag's headers in git's order (object, type, tag, tagger, gpgsig, no extra headers). */
export function fsckTag(data: Uint8Array, r: FsckReporter): void {
  const buf = asBuffer(data);
  if (verifyHeaders(buf, r)) return;
  let off = 0;
  if (!hasPrefix(buf, off, 'object ')) {
    r.report('missingObject', "invalid format - expected 'object' line");
    return;
  }
  off += 7;
  if (!isHexOidLine(buf, off) && r.report('badObjectSha1', "invalid 'object' line format - bad sha1")) return;
  off = nextLine(buf, off);

  if (off >= buf.length || !hasPrefix(buf, off, 'type ')) {
    r.report('missingTypeEntry', "invalid format - expected 'type' line");
    return;
  }
  off += 5;
  let eol = buf.indexOf(0x0a, off);
  if (eol < 0) {
    r.report('missingType', "invalid format - unexpected end after 'type' line");
    return;
  }
  if (!TAG_TYPES.has(buf.toString('latin1', off, eol)) && r.report('badType', "invalid 'type' value")) return;
  off = eol + 1;

  if (off >= buf.length || !hasPrefix(buf, off, 'tag ')) {
    r.report('missingTagEntry', "invalid format - expected 'tag' line");
    return;
  }
  off += 4;
  eol = buf.indexOf(0x0a, off);
  if (eol < 0) {
    r.report('missingTag', "invalid format - unexpected end after 'type' line");
    return;
  }
  // Bytes as latin1 chars: the ref rules only look at ASCII, and git has no length limit here.
  const tagName = buf.toString('latin1', off, eol);
  if (
    refNameProblem(`refs/tags/${tagName}`, { maxBytes: Number.POSITIVE_INFINITY }) !== undefined &&
    r.report('badTagName', `invalid 'tag' name: ${tagName}`)
  ) {
    return;
  }
  off = eol + 1;

  if (off >= buf.length || !hasPrefix(buf, off, 'tagger ')) {
    // Early tags have no tagger line.
    if (r.report('missingTaggerEntry', "invalid format - expected 'tagger' line")) return;
  } else {
    [off] = fsckIdent(buf, off + 7, r);
  }

  const sigKey = hasPrefix(buf, off, 'gpgsig ') ? 7 : hasPrefix(buf, off, 'gpgsig-sha256 ') ? 14 : 0;
  if (off < buf.length && sigKey > 0) {
    off += sigKey;
    eol = buf.indexOf(0x0a, off);
    if (eol < 0) {
      r.report('badGpgsig', "invalid format - unexpected end after 'gpgsig' or 'gpgsig-sha256' line");
      return;
    }
    off = eol + 1;
    while (off < buf.length && buf[off] === 0x20) {
      eol = buf.indexOf(0x0a, off);
      if (eol < 0) {
        r.report('badHeaderContinuation', "invalid format - unexpected end in 'gpgsig' or 'gpgsig-sha256' continuation line");
        return;
      }
      off = eol + 1;
    }
  }
  if (off < buf.length && buf[off] !== 0x0a) {
    r.report('extraHeaderEntry', "invalid format - extra header(s) after 'tagger'");
  }
}
