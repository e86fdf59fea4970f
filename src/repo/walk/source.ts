/** What walks read from a repository: commit links (cached) and whole objects. */
import type { ObjectId } from '../../git/hash/object-id.js';
import type { GitObject } from '../../git/object/object-type.js';
import type { AccelGraph } from '../accel/graph.js';
import type { BitmapView } from '../object-db/bitmap-load.js';
import type { CommitLinks, ObjectHeader } from '../repository.js';

/** The reads walks need; StoredRepository implements it over the object db and caches. */
export interface WalkSource {
  /** Links of a commit; NotFoundError('OBJ_MISSING') / ValidationError('OBJ_BAD_TYPE'). */
  commitLinks(oid: ObjectId): Promise<CommitLinks>;
  /** undefined if absent. The data may be shared with a cache: do not modify it. */
  tryReadObject(oid: ObjectId): Promise<GitObject | undefined>;
  tryReadHeader(oid: ObjectId): Promise<ObjectHeader | undefined>;
  /** The packs' reachability accelerators, when the source has packs (walks then inflate less). */
  accelGraph?(): Promise<AccelGraph | undefined>;
  /** The reachability bitmaps of a closed pack, when the source has one (walks then stop early). */
  reachBitmaps?(): Promise<BitmapView | undefined>;
}

/** A commit links lookup that answers undefined for absent objects (git's parse_commit_gently). */
export async function tryCommitLinks(src: WalkSource, oid: ObjectId): Promise<CommitLinks | undefined> {
  const h = await src.tryReadHeader(oid);
  if (h === undefined || h.type !== 'commit') return undefined;
  return src.commitLinks(oid);
}
