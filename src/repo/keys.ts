/** Object store key layout of repositories (DESIGN.md section 3). Ids are store-safe hex. */

/** Prefix of everything a repository owns. */
export function repoPrefix(repoId: string): string {
  return `repos/${repoId}/`;
}

/** Key of a pack file: `repos/<id>/pack/<name>.pack` where name is `pack-<hex>`. */
export function packKey(repoId: string, packName: string): string {
  return `repos/${repoId}/pack/${packName}.pack`;
}

/** Key of a pack's index (git idx v2). */
export function idxKey(repoId: string, packName: string): string {
  return `repos/${repoId}/pack/${packName}.idx`;
}

/** Key of a pack's accelerator file of the given kind (written with the idx, read by walks). */
export function acceleratorKey(repoId: string, packName: string, kind: string): string {
  return `repos/${repoId}/pack/${packName}.${kind}`;
}
