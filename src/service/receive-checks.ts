/**
 * The per-command checks of git's receive-pack update() before refs move: ref name format,
 * the new object's presence and type, deletes of HEAD's branch, receive.denyDeletes,
 * receive.denyNonFastForwards, and directory/file conflicts between ref names. Each failure
 * becomes the command's `ng` reason, with git's wording, and a message for band 2.
 */
import type { ObjectId } from '../git/hash/object-id.js';
import { ZERO_OID } from '../git/hash/object-id.js';
import { isValidRefName } from '../git/refname/check.js';
import { isDelete, type RefCommand } from '../git/protocol/receive-commands.js';
import type { RepoState } from '../meta/meta-store.js';
import type { CommitLinks, ReceivedPack } from '../repo/repository.js';
import type { ReceivePackConfig } from './options.js';

/** A command and what became of it. */
export interface CommandState {
  readonly cmd: RefCommand;
  /** The `ng` reason once refused. */
  error?: string;
  /** Set when the new value is an annotated tag: what it peels to. */
  peeled?: ObjectId;
}

/** Where the checks report their messages (band 2 with side-band). */
export type Say = (text: string) => void;

/** refs.c: a name that must go under refs/ and pass check-ref-format (one level allowed for deletes). */
export function checkRefNameForPush(c: CommandState, say: Say): boolean {
  const name = c.cmd.name;
  const ok = name.startsWith('refs/') && isValidRefName(name.slice(5), { allowOneLevel: isDelete(c.cmd) });
  if (!ok) {
    say(`error: refusing to update funny ref '${name}' remotely\n`);
    c.error = 'funny refname';
  }
  return ok;
}

/** Marks every command whose ref appears more than once (one transaction cannot move a ref twice). */
export function checkDuplicates(cmds: readonly CommandState[], say: Say): void {
  const count = new Map<string, number>();
  for (const c of cmds) count.set(c.cmd.name, (count.get(c.cmd.name) ?? 0) + 1);
  for (const c of cmds) {
    if (c.error !== undefined || (count.get(c.cmd.name) ?? 0) < 2) continue;
    say(`error: multiple updates for ref '${c.cmd.name}' not allowed\n`);
    c.error = 'failed to update ref';
  }
}

/** The new object must exist (in the pack or the repository); branches take commits only. */
export async function checkNewObject(c: CommandState, pack: ReceivedPack, say: Say): Promise<void> {
  const { newOid, name } = c.cmd;
  const type = await pack.objectType(newOid);
  if (type === undefined) {
    say(`error: unpack should have generated ${newOid}, but I can't find it!\n`);
    c.error = 'bad pack';
    return;
  }
  if (type !== 'commit' && name.startsWith('refs/heads/')) {
    say(`error: trying to write non-commit object ${newOid} to branch '${name}'\n`);
    c.error = 'invalid new value provided';
    return;
  }
  if (type === 'tag') {
    const peeled = await pack.peel(newOid);
    if (peeled !== undefined && peeled !== newOid) c.peeled = peeled;
  }
}

/** git's denyDeletes and denyDeleteCurrent rules for a delete. */
export function checkDelete(c: CommandState, state: RepoState, cfg: ReceivePackConfig, say: Say): void {
  const name = c.cmd.name;
  if (cfg.denyDeletes && name.startsWith('refs/heads/')) {
    say(`error: denying ref deletion for ${name}\n`);
    c.error = 'deletion prohibited';
    return;
  }
  if (name !== state.head) return;
  if (cfg.denyDeleteCurrent === 'ignore') return;
  if (cfg.denyDeleteCurrent === 'warn') {
    say('warning: deleting the current branch\n');
    return;
  }
  say(`error: refusing to delete the current branch: ${name}\n`);
  c.error = 'deletion of the current branch prohibited';
}

/** Reads commit links for the fast-forward walk (objects in the pushed pack or the repository). */
export type LinksOf = (oid: ObjectId) => Promise<CommitLinks | undefined>;

/** Most commits the fast-forward walk visits before giving up (and refusing). */
const FF_WALK_MAX = 1_000_000;

/**
 * receive.denyNonFastForwards for an update of refs/heads/*: the old commit must be an
 * ancestor of the new one (repo_in_merge_bases). Walks back from new by date; old is found
 * unless it is older than everything left to visit.
 */
export async function checkFastForward(c: CommandState, linksOf: LinksOf, say: Say, signal?: AbortSignal): Promise<void> {
  const { oldOid, newOid, name } = c.cmd;
  if (oldOid === ZERO_OID || isDelete(c.cmd) || !name.startsWith('refs/heads/')) return;
  const oldLinks = await linksOf(oldOid);
  const newLinks = await linksOf(newOid);
  if (oldLinks === undefined || newLinks === undefined) {
    say(`error: bad sha1 objects for ${name}\n`);
    c.error = 'bad ref';
    return;
  }
  if (!(await isAncestor(oldOid, oldLinks.committerTime, newOid, newLinks, linksOf, signal))) {
    say(`error: denying non-fast-forward ${name} (you should pull first)\n`);
    c.error = 'non-fast-forward';
  }
}

async function isAncestor(
  target: ObjectId,
  targetTime: number,
  from: ObjectId,
  fromLinks: CommitLinks,
  linksOf: LinksOf,
  signal?: AbortSignal,
): Promise<boolean> {
  if (target === from) return true;
  // Commits older than the target by more than a day of clock skew cannot lead to it.
  const floor = targetTime - 24 * 3600;
  const seen = new Set<ObjectId>([from]);
  let frontier: { oid: ObjectId; links: CommitLinks }[] = [{ oid: from, links: fromLinks }];
  let visited = 0;
  while (frontier.length > 0) {
    signal?.throwIfAborted();
    const next: { oid: ObjectId; links: CommitLinks }[] = [];
    for (const { links } of frontier) {
      for (const p of links.parents) {
        if (p === target) return true;
        if (seen.has(p)) continue;
        seen.add(p);
        if (++visited > FF_WALK_MAX) return false;
        const pl = await linksOf(p);
        if (pl === undefined || pl.committerTime < floor) continue;
        next.push({ oid: p, links: pl });
      }
    }
    frontier = next;
  }
  return false;
}

/**
 * Directory/file conflicts (refs.c "'a' exists; cannot create 'a/b'"): a new ref may not be a
 * directory of an existing ref or live under one, counting this push's deletes and creates.
 */
export function checkNameConflicts(cmds: readonly CommandState[], state: RepoState, say: Say): void {
  const names = new Set(state.refs.keys());
  for (const c of cmds) if (c.error === undefined && isDelete(c.cmd)) names.delete(c.cmd.name);
  const creates = cmds.filter((c) => c.error === undefined && !isDelete(c.cmd) && !state.refs.has(c.cmd.name));
  for (const c of creates) names.add(c.cmd.name);
  const sorted = [...names].sort();
  for (const c of creates) {
    const name = c.cmd.name;
    const conflict = dirAbove(name, names) ?? fileBelow(name, sorted);
    if (conflict === undefined) continue;
    say(`error: cannot lock ref '${name}': '${conflict}' exists; cannot create '${name}'\n`);
    c.error = 'refname conflict';
  }
}

/** An existing name that is a leading directory of `name` ("refs/heads/a" for "refs/heads/a/b"). */
function dirAbove(name: string, names: ReadonlySet<string>): string | undefined {
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const dir = name.slice(0, i);
    if (names.has(dir)) return dir;
  }
  return undefined;
}

/** An existing name under `name` as a directory ("refs/heads/a/b" for "refs/heads/a"). */
function fileBelow(name: string, sorted: readonly string[]): string | undefined {
  const prefix = `${name}/`;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as string) < prefix) lo = mid + 1;
    else hi = mid;
  }
  const hit = sorted[lo];
  return hit !== undefined && hit.startsWith(prefix) ? hit : undefined;
}
