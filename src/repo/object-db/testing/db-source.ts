/** Test support (not a test): a WalkSource straight over an ObjectDb, without meta or caches of links. */
import type { WalkSource } from '../../walk/source.js';
import { readCommitLinks } from '../commit-links.js';
import type { ObjectDb } from '../object-db.js';

/** Walk reads over `db`. */
export function walkSourceOf(db: ObjectDb): WalkSource {
  return {
    commitLinks: (oid) => readCommitLinks(db, oid),
    tryReadObject: (oid) => db.tryReadObject(oid),
    tryReadHeader: (oid) => db.tryReadHeader(oid),
    accelGraph: () => db.graph(),
    reachBitmaps: () => db.bitmapView(),
  };
}
