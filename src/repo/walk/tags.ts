/** Tag helpers shared by the enumerations (with and without bitmaps). */
import { NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { decodeTag } from '../../git/object/tag.js';
import type { WalkSource } from './source.js';

/** A tag ref for include-tag: the tag object and, if known, what it peels to. */
export interface TagRef {
  readonly oid: ObjectId;
  readonly peeled?: ObjectId | undefined;
}

/** Tags pointing at tags deeper than this are refused (a cycle cannot exist, but a chain can be long). */
export const TAG_CHAIN_MAX = 1000;

/** Reads a tag and returns what it points at. */
export async function tagTarget(src: WalkSource, oid: ObjectId): Promise<ObjectId> {
  const obj = await src.tryReadObject(oid);
  if (obj === undefined) throw new NotFoundError('OBJ_MISSING', `tag ${oid} is missing`);
  if (obj.type !== 'tag') throw new ValidationError('OBJ_BAD_TYPE', `object ${oid} is a ${obj.type}, expected a tag`);
  return decodeTag(obj.data).object;
}

/** What a tag ref's object peels to; undefined when it is not a tag (a lightweight tag). */
export async function peelTag(src: WalkSource, oid: ObjectId): Promise<ObjectId | undefined> {
  let cur = oid;
  for (let depth = 0; depth < TAG_CHAIN_MAX; depth++) {
    const h = await src.tryReadHeader(cur);
    if (h === undefined) return undefined;
    if (h.type !== 'tag') return depth === 0 ? undefined : cur;
    cur = await tagTarget(src, cur);
  }
  return undefined;
}
