/** Commit links (tree, parents, committer time) read from an object database. */
import { NotFoundError, ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { decodeCommitLinks } from '../../git/object/commit.js';
import type { CommitLinks } from '../repository.js';
import type { ObjectDb } from './object-db.js';

/**
 * Reads and decodes the links of a commit: NotFoundError('OBJ_MISSING') if absent,
 * ValidationError('OBJ_BAD_TYPE') if not a commit, ValidationError('OBJ_CORRUPT') if undecodable.
 */
export async function readCommitLinks(db: ObjectDb, oid: ObjectId, signal?: AbortSignal): Promise<CommitLinks> {
  const obj = await db.tryReadObject(oid, signal === undefined ? {} : { signal });
  if (obj === undefined) throw new NotFoundError('OBJ_MISSING', `commit ${oid} is missing`);
  if (obj.type !== 'commit') throw new ValidationError('OBJ_BAD_TYPE', `object ${oid} is a ${obj.type}, expected a commit`);
  return decodeCommitLinks(obj.data);
}
