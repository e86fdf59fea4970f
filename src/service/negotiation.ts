/**
 * The have side of fetch negotiation, shared by v0/v1 and v2, ported from git's upload-pack.c:
 * got_oid (an object the client has that we have too is "common"; a common commit's parents
 * count as known) and ok_to_give_up (every want reaches a known commit, not walking below
 * the oldest common commit's date: commit-reach.c can_all_from_reach_with_flag).
 */
import { hasCode } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import type { CommitLinks, Repository } from '../repo/repository.js';

/** What got_oid found: we lack the object, it was known already, or it is newly common. */
export type GotOid = 'absent' | 'known' | 'new';

/** Commit links with a per-request cache (the repository caches too; this saves the awaits). */
export class LinkCache {
  private readonly links = new Map<ObjectId, CommitLinks | null>();

  constructor(private readonly repo: Repository) {}

  /** Links of a commit, or null if it is missing or not a commit. */
  async get(oid: ObjectId): Promise<CommitLinks | null> {
    const hit = this.links.get(oid);
    if (hit !== undefined) return hit;
    let v: CommitLinks | null;
    try {
      v = await this.repo.commitLinks(oid);
    } catch (err) {
      if (!hasCode(err, 'OBJ_MISSING') && !hasCode(err, 'OBJ_BAD_TYPE')) throw err;
      v = null;
    }
    this.links.set(oid, v);
    return v;
  }
}

/** The common objects found so far and the give-up test. */
export class HaveSet {
  /** Objects the client said it has that we have (git's have_obj), in the order seen. */
  readonly common: ObjectId[] = [];
  /** have_obj plus the parents of common commits (git's THEY_HAVE flag). */
  private readonly theyHave = new Set<ObjectId>();
  /** Committer time of the oldest common commit (0 when none yet). */
  private oldestHave = 0;
  private wantCommits: ObjectId[] | undefined;
  /** Bumped whenever theyHave or oldestHave change: the give-up answer can only change then. */
  private generation = 0;
  private answered: { generation: number; result: boolean } | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly links: LinkCache,
    private readonly wants: readonly ObjectId[],
  ) {}

  /** git's got_oid for one have line. */
  async got(oid: ObjectId): Promise<GotOid> {
    const header = await this.repo.tryReadHeader(oid);
    if (header === undefined) return 'absent';
    if (header.type === 'commit') {
      const l = await this.links.get(oid);
      if (l !== null) {
        if (this.oldestHave === 0 || l.committerTime < this.oldestHave) {
          this.oldestHave = l.committerTime;
          this.generation++;
        }
        for (const p of l.parents) {
          if (!this.theyHave.has(p)) {
            this.theyHave.add(p);
            this.generation++;
          }
        }
      }
    }
    if (this.theyHave.has(oid)) return 'known';
    this.theyHave.add(oid);
    this.common.push(oid);
    this.generation++;
    return 'new';
  }

  /** git's ok_to_give_up: false with no common object, else whether every want reaches a known commit. */
  async okToGiveUp(signal?: AbortSignal): Promise<boolean> {
    if (this.common.length === 0) return false;
    // More known commits and an older cut-off only make wants easier to reach: a yes stays a yes,
    // and nothing changes between two calls with no new have in between.
    const last = this.answered;
    if (last !== undefined && (last.result || last.generation === this.generation)) return last.result;
    const result = await this.walkAll(signal);
    this.answered = { generation: this.generation, result };
    return result;
  }

  /** The reachability walk of can_all_from_reach_with_flag. */
  private async walkAll(signal: AbortSignal | undefined): Promise<boolean> {
    const starts = await this.commitWants();
    const assigned = new Set<ObjectId>();
    const result = new Set<ObjectId>();
    const flagged = (c: ObjectId): boolean => this.theyHave.has(c) || result.has(c);
    for (const start of starts) {
      signal?.throwIfAborted();
      assigned.add(start);
      const startLinks = await this.links.get(start);
      if (startLinks === null) return false;
      const stack: { oid: ObjectId; parents: readonly ObjectId[] }[] = [{ oid: start, parents: startLinks.parents }];
      while (stack.length > 0) {
        const top = stack[stack.length - 1] as { oid: ObjectId; parents: readonly ObjectId[] };
        if (flagged(top.oid)) {
          stack.pop();
          const below = stack[stack.length - 1];
          if (below !== undefined) result.add(below.oid);
          continue;
        }
        // Like git, rescan the parents on every visit: a finished child may have been flagged.
        let pushed = false;
        for (const p of top.parents) {
          if (flagged(p)) result.add(top.oid);
          if (assigned.has(p)) continue;
          assigned.add(p);
          const pl = await this.links.get(p);
          if (pl === null || pl.committerTime < this.oldestHave) continue;
          stack.push({ oid: p, parents: pl.parents });
          pushed = true;
          break;
        }
        if (!pushed) stack.pop();
      }
      if (!flagged(start)) return false;
    }
    return true;
  }

  /** The wants peeled to commits, oldest first; non-commit wants need no common base. */
  private async commitWants(): Promise<ObjectId[]> {
    if (this.wantCommits !== undefined) return this.wantCommits;
    const out: { oid: ObjectId; time: number }[] = [];
    for (const w of this.wants) {
      const peeled = await this.repo.peel(w);
      const l = await this.links.get(peeled);
      if (l !== null) out.push({ oid: peeled, time: l.committerTime });
    }
    out.sort((a, b) => a.time - b.time);
    this.wantCommits = out.map((x) => x.oid);
    return this.wantCommits;
  }
}
