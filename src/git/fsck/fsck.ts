/**
 * git's object checks (fsck.c) as pure functions over object bytes, with git's message ids and
 * default severities (non-strict, like `git fsck`). The caller decides: any error rejects.
 */
import type { ObjectId } from '../hash/object-id.js';
import type { ObjectType } from '../object/object-type.js';
import { fsckCommit, fsckTag } from './commit-check.js';
import type { FsckConfig } from './config.js';
import { fsckGitattributes, fsckGitmodules } from './gitmodules.js';
import { FsckReporter, type FsckMessage } from './report.js';
import { fsckTree, type SpecialBlob } from './tree-check.js';

/** Re-exported so callers of fsckObject need one import (defined in report.ts / tree-check.ts). */
export type { FsckMessage } from './report.js';
export type { SpecialBlob } from './tree-check.js';

/** What fsckObject found. */
export interface FsckResult {
  readonly messages: FsckMessage[];
  /** Blobs named .gitmodules/.gitattributes (incl. HFS/NTFS synonyms) in a tree: check them with fsckSpecialBlob. */
  readonly specialBlobs: SpecialBlob[];
}

/** Checks one object as git's fsck_buffer. Blobs need no check here (see fsckSpecialBlob). */
export function fsckObject(oid: ObjectId, type: ObjectType, data: Uint8Array, config?: FsckConfig): FsckResult {
  const r = new FsckReporter(oid, config);
  let specialBlobs: SpecialBlob[] = [];
  switch (type) {
    case 'tree':
      specialBlobs = fsckTree(data, r);
      break;
    case 'commit':
      fsckCommit(data, r);
      break;
    case 'tag':
      fsckTag(data, r);
      break;
    case 'blob':
      break;
  }
  return { messages: r.messages, specialBlobs };
}

/**
 * The second pass for a blob a tree named .gitmodules or .gitattributes. `data` undefined means
 * the caller would not load it (too large): gitmodulesLarge / gitattributesLarge, as git.
 */
export function fsckSpecialBlob(
  oid: ObjectId,
  kind: SpecialBlob['kind'],
  data: Uint8Array | undefined,
  config?: FsckConfig,
): FsckMessage[] {
  const r = new FsckReporter(oid, config);
  if (kind === 'gitmodules') {
    if (data === undefined) r.report('gitmodulesLarge', '.gitmodules too large to parse');
    else fsckGitmodules(data, r);
  } else if (data === undefined) {
    r.report('gitattributesLarge', '.gitattributes too large to parse');
  } else {
    fsckGitattributes(data, r);
  }
  return r.messages;
}

/**
 * When a special blob cannot be checked: it is not in the pack or repository (`missing`,
 * gitmodulesMissing) or the entry points at a non-blob (`not-blob`, gitmodulesBlob), as git's
 * fsck_finish.
 */
export function fsckSpecialBlobProblem(
  oid: ObjectId,
  kind: SpecialBlob['kind'],
  problem: 'missing' | 'not-blob',
  config?: FsckConfig,
): FsckMessage[] {
  const r = new FsckReporter(oid, config);
  const file = kind === 'gitmodules' ? '.gitmodules' : '.gitattributes';
  if (problem === 'missing') {
    r.report(kind === 'gitmodules' ? 'gitmodulesMissing' : 'gitattributesMissing', `unable to read ${file} blob`);
  } else {
    r.report(kind === 'gitmodules' ? 'gitmodulesBlob' : 'gitattributesBlob', `non-blob found at ${file}`);
  }
  return r.messages;
}

/** True if any message is an error (the object must be rejected). */
export function hasFsckErrors(messages: readonly FsckMessage[]): boolean {
  return messages.some((m) => m.severity === 'error');
}
