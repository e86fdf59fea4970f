/**
 * Which wants a fetch may ask for (upload-pack.c receive_needs, check_non_tip): every want
 * must exist; a want that is not a ref tip is allowed only when it is reachable from a ref
 * and either the request is stateless (refs may have moved since the advertisement) or
 * allow-reachable-sha1-in-want is on. Anything else is "not our ref".
 */
import { ProtocolError } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import type { RepoState } from '../meta/meta-store.js';
import type { Repository } from '../repo/repository.js';
import type { LinkCache } from './negotiation.js';
import { refTips } from './refs.js';

/** The error git sends for a want it will not serve (as an ERR line: "upload-pack: not our ref <oid>"). */
export function notOurRef(oid: ObjectId): ProtocolError {
  return new ProtocolError('PROTO_NOT_OUR_REF', `upload-pack: not our ref ${oid}`);
}

/** Throws notOurRef for the first want we do not have at all. */
export async function checkWantsExist(repo: Repository, wants: readonly ObjectId[]): Promise<void> {
  for (const w of wants) {
    if (!(await repo.hasObject(w))) throw notOurRef(w);
  }
}

/** Commit dates may run backwards by this much on the path from a ref to a want (clock skew). */
const SKEW_SLOP_SECONDS = 24 * 3600;

/** A max-heap of commits by committer time (newest first), for date-ordered walks. */
class DateHeap {
  private readonly items: { oid: ObjectId; time: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  peekTime(): number {
    return (this.items[0] as { time: number }).time;
  }

  push(oid: ObjectId, time: number): void {
    const a = this.items;
    a.push({ oid, time });
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((a[parent] as { time: number }).time >= time) break;
      [a[parent], a[i]] = [a[i] as { oid: ObjectId; time: number }, a[parent] as { oid: ObjectId; time: number }];
      i = parent;
    }
  }

  pop(): ObjectId {
    const a = this.items;
    const top = a[0] as { oid: ObjectId };
    const last = a.pop() as { oid: ObjectId; time: number };
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && (a[l] as { time: number }).time > (a[m] as { time: number }).time) m = l;
        if (r < a.length && (a[r] as { time: number }).time > (a[m] as { time: number }).time) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i] as { oid: ObjectId; time: number }, a[m] as { oid: ObjectId; time: number }];
        i = m;
      }
    }
    return top.oid;
  }
}

/**
 * True if every commit in `targets` is reachable from a ref. Walks back from the tips newest
 * first and stops once all are found or the walk is well below the oldest target's date.
 */
export async function reachableFromRefs(
  repo: Repository,
  state: RepoState,
  links: LinkCache,
  targets: readonly ObjectId[],
  signal?: AbortSignal,
): Promise<boolean> {
  const pending = new Set(targets);
  let oldest = Number.POSITIVE_INFINITY;
  for (const t of targets) {
    const l = await links.get(t);
    if (l === null) return false;
    oldest = Math.min(oldest, l.committerTime);
  }
  const seen = new Set<ObjectId>();
  const heap = new DateHeap();
  for (const tip of refTips(state)) {
    const c = await repo.peel(tip);
    if (seen.has(c)) continue;
    const l = await links.get(c);
    if (l === null) continue;
    seen.add(c);
    heap.push(c, l.committerTime);
  }
  let steps = 0;
  while (heap.size > 0 && pending.size > 0) {
    if (heap.peekTime() < oldest - SKEW_SLOP_SECONDS) break;
    const c = heap.pop();
    pending.delete(c);
    if ((++steps & 1023) === 0) signal?.throwIfAborted();
    const l = await links.get(c);
    if (l === null) continue;
    for (const p of l.parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      const pl = await links.get(p);
      if (pl !== null) heap.push(p, pl.committerTime);
    }
  }
  return pending.size === 0;
}

/** Options of checkWantsAllowed. */
export interface WantPolicy {
  readonly statelessRpc: boolean;
  readonly allowTipSha1InWant: boolean;
  readonly allowReachableSha1InWant: boolean;
}

/**
 * Throws notOurRef unless every want is a ref tip or (stateless, or with
 * allow-reachable-sha1-in-want) a commit or tag reachable from a ref.
 */
export async function checkWantsAllowed(
  repo: Repository,
  state: RepoState,
  links: LinkCache,
  wants: readonly ObjectId[],
  policy: WantPolicy,
  signal?: AbortSignal,
): Promise<void> {
  const tips = refTips(state);
  const nonTips = wants.filter((w) => !tips.has(w));
  if (nonTips.length === 0) return;
  if (!policy.statelessRpc && !policy.allowReachableSha1InWant) throw notOurRef(nonTips[0] as ObjectId);
  const commits: ObjectId[] = [];
  for (const w of nonTips) {
    const c = await repo.peel(w);
    if ((await links.get(c)) === null) throw notOurRef(w);
    commits.push(c);
  }
  if (!(await reachableFromRefs(repo, state, links, commits, signal))) throw notOurRef(nonTips[0] as ObjectId);
}
