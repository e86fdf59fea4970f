/**
 * Annotated tag objects: `object`, `type`, `tag`, optional `tagger`, other headers, blank
 * line, message (git's parse_tag_buffer requires the first three in that order).
 */
import { ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { formatHeader, hexOidFromString, splitHeaders, type RawHeader } from './headers.js';
import { formatIdent, parseIdent, type Ident } from './ident.js';
import { isObjectType, type ObjectType } from './object-type.js';

/** A decoded tag. `message` is a view into the decoded bytes (it includes any signature). */
export interface Tag {
  readonly object: ObjectId;
  readonly type: ObjectType;
  readonly tag: string;
  readonly tagger: Ident | undefined;
  readonly message: Uint8Array;
  /** Headers other than object/type/tag/tagger, raw (multi-line values joined by '\n'). */
  readonly extraHeaders: RawHeader[];
}

/** What encodeTag needs. */
export interface TagFields {
  readonly object: ObjectId;
  readonly type: ObjectType;
  readonly tag: string;
  /** Very old tags have none. */
  readonly tagger?: Ident | undefined;
  readonly message: string | Uint8Array;
  readonly extraHeaders?: readonly RawHeader[];
}

function corrupt(what: string): ValidationError {
  return new ValidationError('OBJ_CORRUPT', `corrupt tag object: ${what}`);
}

/** Decodes a tag; throws ValidationError('OBJ_CORRUPT') when object/type/tag lines are missing or bad. */
export function decodeTag(data: Uint8Array): Tag {
  const { headers, messageStart } = splitHeaders(data);
  const [h0, h1, h2] = headers;
  if (h0 === undefined || h0.key !== 'object') throw corrupt('missing object line');
  const object = hexOidFromString(h0.value);
  if (object === undefined) throw corrupt('malformed object id');
  if (h1 === undefined || h1.key !== 'type') throw corrupt('missing type line');
  if (!isObjectType(h1.value)) throw corrupt(`unknown type ${JSON.stringify(h1.value.slice(0, 32))}`);
  if (h2 === undefined || h2.key !== 'tag') throw corrupt('missing tag line');
  let tagger: Ident | undefined;
  let seenTagger = false;
  const extraHeaders: RawHeader[] = [];
  for (let i = 3; i < headers.length; i++) {
    const h = headers[i] as RawHeader;
    if (h.key === 'tagger' && !seenTagger) {
      seenTagger = true;
      tagger = parseIdent(h.value);
    } else {
      extraHeaders.push(h);
    }
  }
  return { object, type: h1.value, tag: h2.value, tagger, message: data.subarray(messageStart), extraHeaders };
}

/** Encodes a tag exactly as git writes one. */
export function encodeTag(t: TagFields): Uint8Array {
  let head = `object ${t.object}\ntype ${t.type}\ntag ${t.tag}\n`;
  if (t.tagger !== undefined) head += `tagger ${formatIdent(t.tagger)}\n`;
  for (const h of t.extraHeaders ?? []) head += formatHeader(h.key, h.value);
  head += '\n';
  const msg = typeof t.message === 'string' ? Buffer.from(t.message, 'utf8') : t.message;
  const headBytes = Buffer.from(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes.length + msg.length);
  headBytes.copy(out, 0);
  out.set(msg, headBytes.length);
  return out;
}
