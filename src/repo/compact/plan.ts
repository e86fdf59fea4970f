/**
 * Which packs to merge: git's geometric repack rule (git-repack --geometric, repack-geometry.c).
 * Sorted by object count, every pack must hold at least `factor` times the objects of the next
 * smaller one; the smallest packs that break the progression are rolled up into one, together
 * with any bigger pack the roll-up would then break it against. Pure and deterministic (ties
 * are broken by name), so two nodes looking at the same pack list plan the same merge.
 */
import { ValidationError } from '../../core/errors.js';
import type { PackRecord } from '../../meta/meta-store.js';

/** git's default split factor for --geometric. */
export const DEFAULT_GEOMETRIC_FACTOR = 2;
/** Packs a repository may have before an automatic compaction is worth it (see shouldCompact). */
export const DEFAULT_AUTO_MIN_PACKS = 4;

/** What planCompaction is asked for. */
export interface PlanOptions {
  /** Each pack must hold at least this many times the objects of the next smaller (default 2). */
  readonly factor?: number;
  /** Merge everything into one pack. */
  readonly full?: boolean;
  /** After the geometric roll-up, also merge the smallest packs until at most this many remain. */
  readonly maxPacks?: number;
}

/** Options of shouldCompact: a plan's options plus the pack count below which it waits. */
export interface AutoCompactPolicy extends PlanOptions {
  /** Fewer packs than this are never compacted automatically (default 4), unless maxPacks is passed. */
  readonly minPacks?: number;
}

function checkOptions(opts: PlanOptions): number {
  const factor = opts.factor ?? DEFAULT_GEOMETRIC_FACTOR;
  if (!Number.isFinite(factor) || factor < 1) {
    throw new ValidationError('ARG_INVALID', `the compaction factor must be a number of at least 1, got ${String(factor)}`);
  }
  if (opts.maxPacks !== undefined && !(Number.isSafeInteger(opts.maxPacks) && opts.maxPacks >= 1)) {
    throw new ValidationError('ARG_INVALID', `maxPacks must be a whole number of at least 1, got ${String(opts.maxPacks)}`);
  }
  return factor;
}

/** Packs sorted smallest first (ties by name, so the order is the same on every node). */
function bySize(packs: readonly PackRecord[]): PackRecord[] {
  return [...packs].sort((a, b) => a.objects - b.objects || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * How many of the smallest packs (sorted as bySize) to roll up: 0 or at least 2. First the
 * packs that already form a progression are counted from the biggest down; below the first
 * break everything is merged; then bigger packs join while the merged pack would hold more
 * than 1/factor of their objects (git's compute_pack_geometry_split).
 */
function geometricSplit(sorted: readonly PackRecord[], factor: number, maxPacks: number | undefined): number {
  const n = sorted.length;
  if (n < 2) return 0;
  let i = n - 1;
  for (; i > 0; i--) {
    if (sorted[i]!.objects < factor * sorted[i - 1]!.objects) break;
  }
  let split = i === 0 ? 0 : i + 1;
  // Bound the count: merge the smallest until at most maxPacks remain.
  if (maxPacks !== undefined && n - split + (split > 0 ? 1 : 0) > maxPacks) split = Math.max(split, n - maxPacks + 1);
  let total = 0;
  for (let k = 0; k < split; k++) total += sorted[k]!.objects;
  while (split > 0 && split < n && sorted[split]!.objects < factor * total) {
    total += sorted[split]!.objects;
    split++;
  }
  return split < 2 ? 0 : split;
}

/**
 * Names of the packs to merge into one, or an empty list when the packs already form a
 * geometric progression (and number at most maxPacks). Never plans a single pack. With
 * `full`, every pack (when there are at least two). Throws ValidationError('ARG_INVALID') for
 * a factor below 1 or a bad maxPacks.
 */
export function planCompaction(packs: readonly PackRecord[], opts: PlanOptions = {}): string[] {
  const factor = checkOptions(opts);
  if (packs.length < 2) return [];
  const sorted = bySize(packs);
  const split = opts.full === true ? sorted.length : geometricSplit(sorted, factor, opts.maxPacks);
  return sorted.slice(0, split).map((p) => p.name);
}

/**
 * Whether an automatic compaction (after a push) is worth running: the plan is not empty and
 * the repository has at least minPacks packs (or more than maxPacks, when that is set).
 */
export function shouldCompact(packs: readonly PackRecord[], policy: AutoCompactPolicy = {}): boolean {
  const minPacks = policy.minPacks ?? DEFAULT_AUTO_MIN_PACKS;
  const overCap = policy.maxPacks !== undefined && packs.length > policy.maxPacks;
  if (packs.length < minPacks && !overCap) return false;
  return planCompaction(packs, { ...policy, full: false }).length > 0;
}

/** Whether object counts, taken smallest first, grow by at least `factor` at every step. */
export function isGeometric(counts: readonly number[], factor = DEFAULT_GEOMETRIC_FACTOR): boolean {
  const sorted = [...counts].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i]! < factor * sorted[i - 1]!) return false;
  return true;
}
