/**
 * Commit links for the fast-forward check of a push: new commits live in the pushed pack,
 * which is not visible through the Repository until its transaction. The ReceivedPack
 * contract has no object reader yet, so one is used when the implementation offers it
 * (`tryReadObject`); without it, commits only in the pack are unknown and the check
 * answers "bad ref". TODO(contract): add `tryReadObject` to ReceivedPack and drop the probe.
 */
import { hasCode } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import { decodeCommitLinks } from '../git/object/commit.js';
import type { GitObject } from '../git/object/object-type.js';
import type { CommitLinks, ReceivedPack, Repository } from '../repo/repository.js';
import type { LinksOf } from './receive-checks.js';

/** The optional reader some ReceivedPack implementations have. */
type ObjectReader = { tryReadObject(oid: ObjectId): Promise<GitObject | undefined> };

function readerOf(received: ReceivedPack | undefined): ObjectReader | undefined {
  const r = received as (ReceivedPack & Partial<ObjectReader>) | undefined;
  return typeof r?.tryReadObject === 'function' ? (r as ObjectReader) : undefined;
}

/** Links from the repository, else from the pushed pack; undefined for a missing or non-commit object. */
export function receivedLinks(repo: Repository, received: ReceivedPack | undefined): LinksOf {
  const pack = readerOf(received);
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
