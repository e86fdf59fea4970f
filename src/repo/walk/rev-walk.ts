/**
 * The commit part of `git rev-list <interesting> --not <uninteresting>` (revision.c): a walk
 * newest-first by committer time. With uninteresting commits (or none but a date cut in
 * limited mode) it is git's limit_list: uninteresting marks spread to ancestors, and the walk
 * stops once only uninteresting commits remain queued (plus SLOP more, for clock skew).
 * Without them it is git's streaming walk. Commits in `boundary` (shallow) have no parents.
 */
import { NotFoundError, hasCode } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { AccelGraph } from '../accel/graph.js';
import type { CommitLinks } from '../repository.js';
import { DateQueue } from './date-queue.js';
import type { WalkSource } from './source.js';

/** Extra commits git processes after the walk looks finished (revision.c SLOP). */
const SLOP = 5;
/** Yield to the event loop and check the signal every this many commits. */
const CHECK_EVERY = 1024;

const SEEN = 1;
const UNINTERESTING = 2;

interface Node {
  links: CommitLinks | undefined;
  flags: number;
}

/** What a walk starts from and how it is cut. */
export interface RevWalkInput {
  readonly interesting: readonly ObjectId[];
  readonly uninteresting?: readonly ObjectId[];
  /** Shallow commits: treated as having no parents (git's registered shallow grafts). */
  readonly boundary?: ReadonlySet<ObjectId>;
  /** --max-age: commits older than this (seconds) are cut. */
  readonly maxAge?: number;
  readonly signal?: AbortSignal | undefined;
  /** Called with the number of commits processed so far (every CHECK_EVERY and at the end). */
  readonly onProgress?: ((processed: number) => void) | undefined;
  /** Commit links from accelerators first (no inflating); the source for the rest. */
  readonly graph?: AccelGraph | undefined;
}

/** The outcome of a walk; flags are final (read them after the walk). */
export class RevWalkResult {
  /** Commits in output order, before filtering (git's revs->commits after limit_list). */
  readonly listed: readonly ObjectId[];
  readonly #nodes: Map<ObjectId, Node>;

  constructor(listed: readonly ObjectId[], nodes: Map<ObjectId, Node>) {
    this.listed = listed;
    this.#nodes = nodes;
  }

  /** Interesting commits in output order (recency). */
  commits(): ObjectId[] {
    return this.listed.filter((c) => !this.isUninteresting(c));
  }

  isUninteresting(oid: ObjectId): boolean {
    return ((this.#nodes.get(oid)?.flags ?? 0) & UNINTERESTING) !== 0;
  }

  /** Links of a commit the walk parsed, or undefined. */
  links(oid: ObjectId): CommitLinks | undefined {
    return this.#nodes.get(oid)?.links;
  }
}

/** Runs the walk; NotFoundError('OBJ_MISSING') if an interesting commit's parent is missing. */
export async function revWalk(src: WalkSource, input: RevWalkInput): Promise<RevWalkResult> {
  const nodes = new Map<ObjectId, Node>();
  const boundary = input.boundary;
  const maxAge = input.maxAge;
  const graph = input.graph?.any === true ? input.graph : undefined;
  const parentsOf = (oid: ObjectId, links: CommitLinks): readonly ObjectId[] =>
    boundary !== undefined && boundary.has(oid) ? [] : links.parents;

  const node = (oid: ObjectId): Node => {
    let n = nodes.get(oid);
    if (n === undefined) {
      n = { links: undefined, flags: 0 };
      nodes.set(oid, n);
    }
    return n;
  };
  /** Links already parsed or in an accelerator (no await on the hot path); undefined otherwise. */
  const known = (oid: ObjectId, n: Node): CommitLinks | undefined => {
    if (n.links === undefined && graph !== undefined) n.links = graph.commitLinks(oid);
    return n.links;
  };
  /** Parses a commit; undefined if absent and `gently`. */
  const parse = async (oid: ObjectId, n: Node, gently: boolean): Promise<CommitLinks | undefined> => {
    if (known(oid, n) !== undefined) return n.links;
    try {
      n.links = await src.commitLinks(oid);
    } catch (err) {
      if (gently && (hasCode(err, 'OBJ_MISSING') || hasCode(err, 'OBJ_BAD_TYPE'))) return undefined;
      throw err;
    }
    return n.links;
  };
  /** git's mark_parents_uninteresting: flag ancestors, recursing through parsed commits only. */
  const markParentsUninteresting = (oid: ObjectId, links: CommitLinks): void => {
    const stack = [...parentsOf(oid, links)];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const n = node(p);
      if (n.flags & UNINTERESTING) continue;
      n.flags |= UNINTERESTING;
      if (n.links !== undefined) for (const pp of parentsOf(p, n.links)) stack.push(pp);
    }
  };

  const queue = new DateQueue();
  const starts: { oid: ObjectId; time: number }[] = [];
  const unint = input.uninteresting ?? [];
  for (const oid of unint) {
    const n = node(oid);
    const links = await parse(oid, n, true);
    if (links === undefined) continue;
    n.flags |= UNINTERESTING;
    markParentsUninteresting(oid, links);
  }
  for (const oid of input.interesting) {
    const n = node(oid);
    const links = await parse(oid, n, false);
    if (links === undefined) throw new NotFoundError('OBJ_MISSING', `commit ${oid} is missing`);
  }
  for (const oid of [...input.interesting, ...unint]) {
    const n = nodes.get(oid)!;
    if (n.links === undefined || n.flags & SEEN) continue;
    n.flags |= SEEN;
    starts.push({ oid, time: n.links.committerTime });
  }
  // prepare_revision_walk sorts the start list by date (stable) before queueing it.
  starts.sort((a, b) => b.time - a.time);
  for (const s of starts) queue.push(s.oid, s.time);

  const limited = unint.length > 0;
  const listed: ObjectId[] = [];
  let processed = 0;
  let slop = SLOP;
  let lastDate = Number.POSITIVE_INFINITY;
  let interestingCache: ObjectId | undefined;

  const everybodyUninteresting = (): boolean => {
    if (interestingCache !== undefined && !(nodes.get(interestingCache)!.flags & UNINTERESTING)) return false;
    for (const q of queue.oids()) {
      if (nodes.get(q)!.flags & UNINTERESTING) continue;
      interestingCache = q;
      return false;
    }
    return true;
  };

  for (;;) {
    const oid = queue.pop();
    if (oid === undefined) break;
    if (oid === interestingCache) interestingCache = undefined;
    if (++processed % CHECK_EVERY === 0) {
      input.signal?.throwIfAborted();
      input.onProgress?.(processed);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const n = nodes.get(oid)!;
    const links = n.links!;
    const tooOld = maxAge !== undefined && links.committerTime < maxAge;
    if (!limited && tooOld) continue;
    if (limited && tooOld) n.flags |= UNINTERESTING;
    const unintNow = (n.flags & UNINTERESTING) !== 0;
    // process_parents: parse each parent and queue the unseen ones.
    for (const p of parentsOf(oid, links)) {
      const pn = node(p);
      if (unintNow) {
        pn.flags |= UNINTERESTING;
        const pl = known(p, pn) ?? (await parse(p, pn, true));
        if (pl === undefined) continue;
        markParentsUninteresting(p, pl);
      } else {
        const pl = known(p, pn) ?? (await parse(p, pn, false));
        if (pl === undefined) throw new NotFoundError('OBJ_MISSING', `commit ${p} (a parent of ${oid}) is missing`);
      }
      if (pn.flags & SEEN) continue;
      pn.flags |= SEEN;
      queue.push(p, pn.links!.committerTime);
    }
    if (limited) {
      if (n.flags & UNINTERESTING) {
        // still_interesting: keep going while an interesting commit may still be reached.
        const top = queue.peekTime();
        if (top === undefined) break;
        if (lastDate <= top || !everybodyUninteresting()) slop = SLOP;
        else slop--;
        if (slop > 0) continue;
        break;
      }
      lastDate = links.committerTime;
    }
    listed.push(oid);
  }
  input.onProgress?.(processed);
  return new RevWalkResult(listed, nodes);
}
