/**
 * Commit links for the fast-forward check of a push: new commits live in the pushed pack,
 * which is not visible through the Repository until its transaction, so they are read from
 * the ReceivedPack.
 */
import { hasCode } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import { decodeCommitLinks } from '../git/object/commit.js';
import type { CommitLinks, ReceivedPack, Repository } from '../repo/repository.js';
import type { LinksOf } from './receive-checks.js';

/** Links from the repository, else from the pushed pack; undefined for a missing or non-commit object. */
export function receivedLinks(repo: Repository, received: ReceivedPack | undefined): LinksOf {
  const pack = received;
  const cache = new Map<ObjectId, CommitLinks | undefined>();
  return async (oid) => {
    if (cache.has(oid)) return cache.get(oid);
    let links: CommitLinks | undefined;
    try {
      links = await repo.commitLinks(oid);
    } catch (err) {
      if (!hasCode(err, 'OBJ_MISSING') && !hasCode(err, 'OBJ_BAD_TYPE')) throw err;
      if (hasCode(err, 'OBJ_MISSING') && pack !== undefined) {
        const obj = await pack.tryReadObject(oid);
        if (obj?.type === 'commit') links = decodeCommitLinks(obj.data);
      }
    }
    cache.set(oid, links);
    return links;
  };
}
