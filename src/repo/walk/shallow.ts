/**
 * The shallow boundary of a fetch, as git's upload-pack computes it (upload-pack.c deepen,
 * deepen_by_rev_list, send_shallow, send_unshallow; shallow.c get_shallow_commits and
 * get_shallow_commits_by_rev_list):
 * - deepen N: commits at distance N from the nearest want (wants at distance 1) become
 *   shallow, even roots; client shallows nearer than N are unshallowed. With deepen-relative
 *   N is added to the distance of the nearest client shallow (no shallow reachable: no change).
 *   N >= 2^31-1 (--unshallow) unshallows every client shallow.
 * - deepen-since / deepen-not: `rev-list --max-age=T wants --not <nots>`; a listed commit with
 *   an unlisted parent becomes shallow; listed client shallows that are not shallow again
 *   are unshallowed.
 * Commits the client already has as shallow are not sent again. Client shallows we do not
 * have are ignored (git's process_shallow skips unknown objects).
 */
import { ProtocolError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { DeepenRequest, ShallowUpdate } from '../repository.js';
import type { AccelGraph } from '../accel/graph.js';
import { revWalk } from './rev-walk.js';
import { tryCommitLinks, type WalkSource } from './source.js';
import { TAG_CHAIN_MAX } from './enumerate.js';
import { decodeTag } from '../../git/object/tag.js';

/** git's INFINITE_DEPTH: `deepen 2147483647` is what `fetch --unshallow` sends. */
export const INFINITE_DEPTH = 0x7fffffff;
/** Check the signal every this many commits of a depth walk. */
const CHECK_EVERY = 1024;

/** Peels a want to a commit (deref_tag); undefined if it is not (eventually) a commit. */
async function wantCommit(src: WalkSource, oid: ObjectId): Promise<ObjectId | undefined> {
  let cur = oid;
  for (let depth = 0; depth < TAG_CHAIN_MAX; depth++) {
    const obj = await src.tryReadObject(cur);
    if (obj === undefined) return undefined;
    if (obj.type === 'commit') return cur;
    if (obj.type !== 'tag') return undefined;
    cur = decodeTag(obj.data).object;
  }
  return undefined;
}

/**
 * Minimum distance (wants = 1) of every commit reachable from `heads` within `limit`
 * (commits at distance `limit` are listed but not expanded). `stopAt` commits are not
 * expanded either. A breadth-first walk gives the same depths as git's depth-slot DFS.
 */
async function depths(
  src: WalkSource,
  graph: AccelGraph | undefined,
  heads: readonly ObjectId[],
  limit: number,
  stopAt: ReadonlySet<ObjectId> | undefined,
  signal: AbortSignal | undefined,
): Promise<Map<ObjectId, number>> {
  const depth = new Map<ObjectId, number>();
  let level: ObjectId[] = [];
  for (const h of heads) {
    if (!depth.has(h)) {
      depth.set(h, 1);
      level.push(h);
    }
  }
  let n = 0;
  for (let d = 1; level.length > 0 && d < limit; d++) {
    const next: ObjectId[] = [];
    for (const c of level) {
      if (++n % CHECK_EVERY === 0) signal?.throwIfAborted();
      if (stopAt?.has(c) === true) continue;
      const links = graph?.commitLinks(c) ?? (await src.commitLinks(c));
      for (const p of links.parents) {
        if (depth.has(p)) continue;
        depth.set(p, d + 1);
        next.push(p);
      }
    }
    level = next;
  }
  return depth;
}

/** Computes the shallow/unshallow lines and the walk boundary for a fetch. */
export async function computeShallow(
  src: WalkSource,
  wants: readonly ObjectId[],
  clientShallows: readonly ObjectId[],
  deepen: DeepenRequest,
  opts: { signal?: AbortSignal } = {},
): Promise<ShallowUpdate> {
  const signal = opts.signal;
  const graph = await src.accelGraph?.();
  // process_shallow: unknown objects are ignored, non-commits are an error.
  const client = new Set<ObjectId>();
  for (const s of clientShallows) {
    const h = await src.tryReadHeader(s);
    if (h === undefined) continue;
    if (h.type !== 'commit') throw new ProtocolError('PROTO_BAD_REQUEST', `invalid shallow object ${s}: it is a ${h.type}`);
    client.add(s);
  }
  const depth = deepen.depth ?? 0;
  const byRevList = deepen.since !== undefined || (deepen.not?.length ?? 0) > 0;
  if (depth > 0 && byRevList) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'deepen and deepen-since (or deepen-not) cannot be used together');
  }
  if (depth < 0 || !Number.isSafeInteger(depth)) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid deepen ${depth}`);

  let shallow: ObjectId[] = [];
  let notShallow: ReadonlySet<ObjectId> = new Set();
  if (depth >= INFINITE_DEPTH) {
    notShallow = client;
  } else if (depth > 0) {
    const heads: ObjectId[] = [];
    for (const w of wants) {
      const c = await wantCommit(src, w);
      if (c !== undefined) heads.push(c);
    }
    let limit = depth;
    let run = true;
    if (deepen.relative === true) {
      // get_shallows_depth: the nearest client shallow; none reachable means nothing to do.
      const near = await depths(src, graph, heads, Number.POSITIVE_INFINITY, client, signal);
      let cur = 0;
      for (const s of client) {
        const d = near.get(s);
        if (d !== undefined && (cur === 0 || d < cur)) cur = d;
      }
      if (cur === 0) run = false;
      else limit += cur;
    }
    if (run) {
      const d = await depths(src, graph, heads, limit, undefined, signal);
      const inner = new Set<ObjectId>();
      for (const [c, k] of d) {
        if (k < limit) inner.add(c);
        else if (!client.has(c)) shallow.push(c);
      }
      notShallow = inner;
    }
  } else if (byRevList) {
    const heads: ObjectId[] = [];
    for (const w of wants) {
      const c = await wantCommit(src, w);
      if (c !== undefined) heads.push(c);
    }
    const nots: ObjectId[] = [];
    for (const n of deepen.not ?? []) {
      const c = await wantCommit(src, n);
      if (c !== undefined) nots.push(c);
    }
    const walk = await revWalk(src, {
      interesting: heads,
      uninteresting: nots,
      ...(deepen.since === undefined ? {} : { maxAge: deepen.since }),
      signal,
      graph,
    });
    const listed = new Set(walk.commits());
    if (listed.size === 0) {
      throw new ProtocolError('PROTO_BAD_REQUEST', 'no commits selected for shallow requests');
    }
    const border = new Set<ObjectId>();
    for (const c of listed) {
      const links = walk.links(c) ?? (await tryCommitLinks(src, c));
      if (links === undefined) continue;
      if (links.parents.some((p) => !listed.has(p))) border.add(c);
    }
    for (const c of border) if (!client.has(c)) shallow.push(c);
    const inner = new Set<ObjectId>();
    for (const c of listed) if (!border.has(c)) inner.add(c);
    notShallow = inner;
  }

  const unshallow: ObjectId[] = [];
  for (const s of client) if (notShallow.has(s)) unshallow.push(s);
  const boundary = new Set<ObjectId>(client);
  for (const s of shallow) boundary.add(s);
  for (const s of unshallow) boundary.delete(s);
  return { shallow, unshallow, boundary };
}
