/**
 * git's fsck message ids (fsck.h FOREACH_FSCK_MSG_ID, Documentation/fsck-msgids.adoc) with their
 * default severities. Fatal ids (nulInHeader, unterminatedHeader) are errors that may not be
 * demoted. Info and ignore are not reported unless configured up, as git without --strict.
 */

/** How a finding is treated: error rejects, warn reports, info/ignore drop. */
export type FsckSeverity = 'error' | 'warn' | 'info' | 'ignore';

/** In git's order: fatal, error, warn, info, ignore. */
const DEFAULTS = {
  nulInHeader: 'error',
  unterminatedHeader: 'error',
  badHeaderContinuation: 'error',
  badDate: 'error',
  badDateOverflow: 'error',
  badEmail: 'error',
  badGpgsig: 'error',
  badHeadTarget: 'error',
  badName: 'error',
  badObjectSha1: 'error',
  badPackedRefEntry: 'error',
  badPackedRefHeader: 'error',
  badParentSha1: 'error',
  badReferentName: 'error',
  badRefContent: 'error',
  badRefFiletype: 'error',
  badRefName: 'error',
  badRefOid: 'error',
  badTimezone: 'error',
  badTree: 'error',
  badTreeSha1: 'error',
  badType: 'error',
  duplicateEntries: 'error',
  gitattributesBlob: 'error',
  gitattributesLarge: 'error',
  gitattributesLineLength: 'error',
  gitattributesMissing: 'error',
  gitmodulesBlob: 'error',
  gitmodulesLarge: 'error',
  gitmodulesMissing: 'error',
  gitmodulesName: 'error',
  gitmodulesPath: 'error',
  gitmodulesSymlink: 'error',
  gitmodulesUpdate: 'error',
  gitmodulesUrl: 'error',
  missingAuthor: 'error',
  missingCommitter: 'error',
  missingEmail: 'error',
  missingNameBeforeEmail: 'error',
  missingObject: 'error',
  missingSpaceBeforeDate: 'error',
  missingSpaceBeforeEmail: 'error',
  missingTag: 'error',
  missingTagEntry: 'error',
  missingTree: 'error',
  missingType: 'error',
  missingTypeEntry: 'error',
  multipleAuthors: 'error',
  packedRefEntryNotTerminated: 'error',
  packedRefUnsorted: 'error',
  treeNotSorted: 'error',
  unknownType: 'error',
  zeroPaddedDate: 'error',
  badReftableTableName: 'warn',
  emptyName: 'warn',
  fullPathname: 'warn',
  hasDot: 'warn',
  hasDotdot: 'warn',
  hasDotgit: 'warn',
  largePathname: 'warn',
  nullSha1: 'warn',
  nulInCommit: 'warn',
  zeroPaddedFilemode: 'warn',
  badFilemode: 'info',
  badTagName: 'info',
  emptyPackedRefsFile: 'info',
  gitattributesSymlink: 'info',
  gitignoreSymlink: 'info',
  gitmodulesParse: 'info',
  mailmapSymlink: 'info',
  missingTaggerEntry: 'info',
  refMissingNewline: 'info',
  symlinkRef: 'info',
  symrefTargetIsNotARef: 'info',
  trailingRefContent: 'info',
  extraHeaderEntry: 'ignore',
} as const satisfies Record<string, FsckSeverity>;

/** A git fsck message id, camelCase as git prints it. */
export type FsckMsgId = keyof typeof DEFAULTS;

/** Default severity of every id (fsck.h). */
export const FSCK_DEFAULT_SEVERITY: Readonly<Record<FsckMsgId, FsckSeverity>> = Object.freeze(DEFAULTS);

/** Ids git treats as fatal: never demoted below error. */
export const FSCK_FATAL_IDS: ReadonlySet<FsckMsgId> = new Set<FsckMsgId>(['nulInHeader', 'unterminatedHeader']);

/** All ids, keyed by their lowercase form (git matches config keys case-insensitively). */
const BY_LOWER: ReadonlyMap<string, FsckMsgId> = new Map(
  (Object.keys(FSCK_DEFAULT_SEVERITY) as FsckMsgId[]).map((id) => [id.toLowerCase(), id]),
);

/** The id named by `name` in any letter case, or undefined. */
export function fsckMsgIdFromName(name: string): FsckMsgId | undefined {
  return BY_LOWER.get(name.toLowerCase());
}
