/**
 * Deferred deletion of packs that left a repository's visible list (DESIGN.md section 7:
 * readers never see a pack vanish under them). A removal is recorded durably as a marker
 * object `repos/<id>/pack/removed/<pack-name>` holding the removal time, written before the
 * meta transaction that drops the pack; any later run on any node deletes the pack's files
 * (`<name>.idx`, accelerators, `<name>.pack`), then the marker, once the grace period has
 * passed since the removal and since the files were last written, and only if the pack is
 * not in the visible list read just before deleting. A marker whose pack is visible again
 * (a failed transaction, or the same content-named pack published anew) is dropped once it
 * is older than the grace period.
 *
 * Orphans: a push whose ref update lost a race, or a node that died between putting a pack and
 * its meta transaction, leaves pack files that no state lists and no marker covers. Each
 * collection first gives such a pack a marker ('orphaned') once all its files are older than
 * the orphan age (24 hours by default: far longer than any push spends between putting its
 * pack, the last thing ingest writes, and its transaction); the pack is then deleted after the
 * grace period like any removed pack, re-checked against the visible list.
 */
import type { MetaStore } from '../../meta/meta-store.js';
import type { ObjectStore } from '../../storage/object-store.js';

/** Default time a removed pack's files stay readable: readers holding an older state keep using them. */
export const DEFAULT_REMOVAL_GRACE_MS = 10 * 60_000;

/** Pack names as the meta store lists them: `pack-<hex>` (what a marker key may end with). */
const PACK_NAME_RE = /^pack-[0-9a-f]{40,64}$/;

/** Default age past which pack files that no state lists get a marker (see the module doc). */
export const DEFAULT_ORPHAN_AGE_MS = 24 * 3_600_000;

/** Why a marker was written. */
export type RemovalReason = 'compacted' | 'unpublished' | 'orphaned';

/** Key prefix of a repository's removal markers. */
export function removedPrefix(repoId: string): string {
  return `repos/${repoId}/pack/removed/`;
}

/** Key of the removal marker of one pack. */
export function removedMarkerKey(repoId: string, packName: string): string {
  return `${removedPrefix(repoId)}${packName}`;
}

/** Prefix of every file of a pack (`.pack`, `.idx`, accelerators). */
function packFilesPrefix(repoId: string, packName: string): string {
  return `repos/${repoId}/pack/${packName}.`;
}

/** What deferred deletion needs. */
export interface RemovalDeps {
  readonly store: ObjectStore;
  readonly meta: MetaStore;
  readonly repoId: string;
  /** Wall clock, ms since the epoch (injectable for tests). */
  readonly clock: () => number;
}

/** Options of a collection run. */
export interface CollectOptions {
  /** How long removed files stay (default 10 minutes). */
  readonly graceMs?: number;
  /** Age past which unlisted, unmarked pack files are marked (default 24 hours). */
  readonly orphanAgeMs?: number;
  readonly signal?: AbortSignal;
}

/** What a collection run did. */
export interface CollectResult {
  /** Packs whose files were deleted. */
  readonly deleted: string[];
  /** Packs still within their grace period (or whose files were written recently). */
  readonly waiting: string[];
  /** Markers dropped because their pack is visible. */
  readonly dropped: string[];
}

/**
 * Records that packs leave (or never entered) the visible list at the current time. Plain
 * puts: a later write only moves the time forward, which only delays deletion.
 */
export async function markRemoved(
  deps: Pick<RemovalDeps, 'store' | 'repoId' | 'clock'>,
  packNames: readonly string[],
  reason: RemovalReason,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  const body = new TextEncoder().encode(`${JSON.stringify({ removedMs: deps.clock(), reason })}\n`);
  const putOpts = opts.signal === undefined ? {} : { signal: opts.signal };
  await Promise.all(packNames.map((name) => deps.store.put(removedMarkerKey(deps.repoId, name), body, putOpts)));
}

/** The removal time a marker holds, or its store time when the body is unreadable. */
async function markerTime(store: ObjectStore, key: string, fallbackMs: number, signal: AbortSignal | undefined): Promise<number | undefined> {
  const bytes = await store.tryGet(key, signal === undefined ? {} : { signal });
  if (bytes === undefined) return undefined; // another run deleted it meanwhile
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof parsed === 'object' && parsed !== null) {
      const t = (parsed as { removedMs?: unknown }).removedMs;
      if (typeof t === 'number' && Number.isFinite(t)) return t;
    }
  } catch {
    // An unreadable marker still says the pack was removed; its store time stands in.
  }
  return fallbackMs;
}

/**
 * Deletes the files of removed packs whose grace has passed (see the module doc). Safe to run
 * concurrently on several nodes: deletes of absent keys are no-ops, and every pack is checked
 * against the newest visible list right before its files go.
 */
export async function collectRemovedPacks(deps: RemovalDeps, opts: CollectOptions = {}): Promise<CollectResult> {
  const { store, meta, repoId, clock } = deps;
  const graceMs = opts.graceMs ?? DEFAULT_REMOVAL_GRACE_MS;
  const signal = opts.signal;
  const sig = signal === undefined ? {} : { signal };
  const result: CollectResult = { deleted: [], waiting: [], dropped: [] };
  await markOrphanedPacks(deps, opts.orphanAgeMs ?? DEFAULT_ORPHAN_AGE_MS, signal);
  const markers: { key: string; name: string; mtimeMs: number }[] = [];
  for await (const info of store.list(removedPrefix(repoId), sig)) {
    const name = info.key.slice(removedPrefix(repoId).length);
    if (PACK_NAME_RE.test(name)) markers.push({ key: info.key, name, mtimeMs: info.mtimeMs });
  }
  for (const m of markers) {
    signal?.throwIfAborted();
    const removedMs = await markerTime(store, m.key, m.mtimeMs, signal);
    if (removedMs === undefined) continue;
    const now = clock();
    const old = now - removedMs >= graceMs;
    // Re-read the visible list right before acting on this pack.
    const visible = (await meta.readState(repoId)).packs.some((p) => p.name === m.name);
    if (visible) {
      if (old) {
        await store.delete(m.key, sig);
        result.dropped.push(m.name);
      } else result.waiting.push(m.name);
      continue;
    }
    if (!old) {
      result.waiting.push(m.name);
      continue;
    }
    const files: { key: string; mtimeMs: number }[] = [];
    for await (const info of store.list(packFilesPrefix(repoId, m.name), sig)) files.push(info);
    // Files written within the grace period belong to a writer that may be about to publish
    // this content-named pack again: leave them.
    if (files.some((f) => now - f.mtimeMs < graceMs)) {
      result.waiting.push(m.name);
      continue;
    }
    // Index first (a reader then sees absence rather than an index without its pack), the
    // pack last, then the marker: a crash in between leaves a marker to finish the job.
    const rank = (key: string): number => (key.endsWith('.idx') ? 0 : key.endsWith('.pack') ? 2 : 1);
    files.sort((a, b) => rank(a.key) - rank(b.key));
    for (const f of files) await store.delete(f.key, sig);
    await store.delete(m.key, sig);
    result.deleted.push(m.name);
  }
  return result;
}

/**
 * Marks the packs whose files no state lists and no marker covers, once all their files are
 * older than `ageMs`; returns their names. The visible list is read after the listing, so a
 * pack published meanwhile is seen as visible.
 */
export async function markOrphanedPacks(deps: RemovalDeps, ageMs: number, signal?: AbortSignal): Promise<string[]> {
  const { store, meta, repoId, clock } = deps;
  const sig = signal === undefined ? {} : { signal };
  const prefix = `repos/${repoId}/pack/`;
  const marked = new Set<string>();
  const newest = new Map<string, number>();
  for await (const info of store.list(prefix, sig)) {
    const rest = info.key.slice(prefix.length);
    if (rest.startsWith('removed/')) {
      marked.add(rest.slice('removed/'.length));
      continue;
    }
    const dot = rest.indexOf('.');
    const name = dot < 0 ? rest : rest.slice(0, dot);
    if (!PACK_NAME_RE.test(name)) continue;
    newest.set(name, Math.max(newest.get(name) ?? 0, info.mtimeMs));
  }
  if (newest.size === 0) return [];
  const visible = new Set((await meta.readState(repoId)).packs.map((p) => p.name));
  const now = clock();
  const orphans = [...newest].filter(([name, mtimeMs]) => !visible.has(name) && !marked.has(name) && now - mtimeMs >= ageMs).map(([name]) => name);
  if (orphans.length > 0) await markRemoved(deps, orphans, 'orphaned', sig);
  return orphans;
}
