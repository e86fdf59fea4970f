/**
 * The end of a fetch, shared by v0/v1 and v2: the shallow computation (upload-pack.c
 * send_shallow_list, deepen, send_unshallow) and the pack itself (create_pack_file: the
 * objects of `wants --not haves`, cut at the shallow boundary, streamed on band 1 with
 * progress on band 2 and a fatal error on band 3).
 */
import { ProtocolError, publicMessage } from '../core/errors.js';
import type { ObjectId } from '../git/hash/object-id.js';
import type { ShallowLines } from '../git/protocol/upload-response.js';
import type { RepoState } from '../meta/meta-store.js';
import type { DeepenRequest, Repository } from '../repo/repository.js';
import type { LinkCache } from './negotiation.js';
import { SidebandWriter, withKeepalive, type ServiceOutput } from './output.js';
import { ProgressText } from './progress.js';
import { expandRef } from './refs.js';

/** git's name for the walk phase of pack-objects. */
const ENUMERATING = 'Enumerating objects';

/** The shallow-related part of a fetch request. */
export interface ShallowRequest {
  readonly shallows: readonly ObjectId[];
  readonly depth?: number;
  readonly deepenRelative: boolean;
  readonly deepenSince?: number;
  readonly deepenNot: readonly string[];
}

/** What the shallow step decided. */
export interface ShallowPlan {
  /** Lines for the client; undefined when no deepen was requested (nothing to send). */
  readonly lines: ShallowLines | undefined;
  /** Wants to add (parents of unshallowed commits: their history is now sent). */
  readonly extraWants: readonly ObjectId[];
  /** Haves to add (the unshallowed commits themselves: the client has them). */
  readonly extraHaves: readonly ObjectId[];
  /** Commits whose parents are not walked when enumerating. */
  readonly boundary: ReadonlySet<ObjectId> | undefined;
}

/** True if the request asks to deepen or cut history. */
export function wantsDeepen(req: ShallowRequest): boolean {
  return (req.depth ?? 0) > 0 || req.deepenSince !== undefined || req.deepenNot.length > 0;
}

/**
 * The client's shallow commits we know, as git's process_shallow: unknown ids are skipped,
 * non-commits are a protocol error.
 */
async function knownShallows(links: LinkCache, repo: Repository, shallows: readonly ObjectId[]): Promise<ObjectId[]> {
  const out: ObjectId[] = [];
  for (const s of shallows) {
    const h = await repo.tryReadHeader(s);
    if (h === undefined) continue;
    if (h.type !== 'commit' || (await links.get(s)) === null) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid shallow object ${s}`);
    out.push(s);
  }
  return out;
}

/** Resolves deepen-not names to commits as git's process_deepen_not (expand_ref, then peeled). */
async function resolveDeepenNot(repo: Repository, state: RepoState, names: readonly string[]): Promise<ObjectId[]> {
  const out: ObjectId[] = [];
  for (const n of names) {
    const r = expandRef(state, n);
    if (r.kind === 'none') throw new ProtocolError('PROTO_BAD_REQUEST', `git upload-pack: deepen-not is not a ref: ${n}`);
    if (r.kind === 'ambiguous') throw new ProtocolError('PROTO_BAD_REQUEST', `git upload-pack: ambiguous deepen-not: ${n}`);
    out.push(await repo.peel(r.oid));
  }
  return out;
}

/** Computes the shallow update and the enumeration inputs it implies. */
export async function planShallow(
  repo: Repository,
  state: RepoState,
  links: LinkCache,
  wants: readonly ObjectId[],
  req: ShallowRequest,
  signal?: AbortSignal,
): Promise<ShallowPlan> {
  const clientShallows = await knownShallows(links, repo, req.shallows);
  if (!wantsDeepen(req)) {
    return { lines: undefined, extraWants: [], extraHaves: [], boundary: clientShallows.length > 0 ? new Set(clientShallows) : undefined };
  }
  const deepen: { depth?: number; relative?: boolean; since?: number; not?: readonly ObjectId[] } = {};
  if ((req.depth ?? 0) > 0) deepen.depth = req.depth as number;
  if (req.deepenRelative) deepen.relative = true;
  if (req.deepenSince !== undefined) deepen.since = req.deepenSince;
  if (req.deepenNot.length > 0) deepen.not = await resolveDeepenNot(repo, state, req.deepenNot);
  const update = await repo.computeShallow(wants, clientShallows, deepen as DeepenRequest, signal === undefined ? {} : { signal });
  const extraWants: ObjectId[] = [];
  for (const u of update.unshallow) {
    const l = await links.get(u);
    if (l !== null) extraWants.push(...l.parents);
  }
  // As git: unshallowed commits stay shallow for the walk (their parents are wanted instead).
  const boundary = new Set(update.boundary);
  for (const u of update.unshallow) boundary.add(u);
  return { lines: { shallow: update.shallow, unshallow: update.unshallow }, extraWants, extraHaves: update.unshallow, boundary };
}

/** Inputs of sendPack. */
export interface PackRequest {
  readonly wants: readonly ObjectId[];
  readonly haves: readonly ObjectId[];
  readonly boundary: ReadonlySet<ObjectId> | undefined;
  readonly includeTags: boolean;
  readonly thin: boolean;
  readonly ofsDelta: boolean;
}

/**
 * Enumerates and streams the pack through `sb`, then flushes (with side-band) as git does.
 * On a failure after output began, tells the client on band 3 and rethrows.
 */
export async function sendPack(
  repo: Repository,
  out: ServiceOutput,
  sb: SidebandWriter,
  req: PackRequest,
  signal?: AbortSignal,
): Promise<void> {
  out.streaming = true;
  const progress = new ProgressText((t) => sb.progress(t));
  const showProgress = sb.progressEnabled && sb.mode !== 'none';
  try {
    // git's order: "Enumerating objects" while walking, "Counting objects" over the list, then
    // the pack (whose writing git does not show for a pack sent to stdout), then "Total".
    const enumerated = await withKeepalive(out, sb, 1, () =>
      repo.enumerateObjects({
        wants: req.wants,
        haves: req.haves,
        ...(req.boundary === undefined ? {} : { shallowBoundary: req.boundary }),
        includeTags: req.includeTags,
        ...(signal === undefined ? {} : { signal }),
        ...(showProgress ? { onProgress: (_phase: string, done: number) => progress.update(ENUMERATING, done, undefined) } : {}),
      }),
    );
    const n = enumerated.objects.length;
    progress.update(ENUMERATING, n, undefined);
    progress.finish();
    if (n > 0) progress.update('Counting objects', n, n);
    const chunks = repo.packObjects(enumerated.objects, {
      ...(enumerated.hints === undefined ? {} : { hints: enumerated.hints }),
      thin: req.thin,
      ofsDelta: req.ofsDelta,
      haves: req.haves,
      ...(signal === undefined ? {} : { signal }),
      // Chunks may be reused once written: a whole stored pack then streams without garbage.
      ...(out.canSettle ? { recycle: () => sb.settled() } : {}),
      ...(showProgress
        ? {
            onProgress: (phase: string, done: number, total: number | undefined) => {
              if (phase !== 'Writing objects') progress.update(phase, done, total);
            },
          }
        : {}),
    });
    const it = chunks[Symbol.asyncIterator]();
    for (;;) {
      const r = await withKeepalive(out, sb, 1, () => it.next());
      if (r.done === true) break;
      await sb.data(r.value);
    }
    // The Repository contract does not report delta or reuse counts, so only the total is shown.
    progress.line(`Total ${n}`);
    await sb.flushData();
    if (sb.mode !== 'none') await out.lines([{ special: 'flush' }]);
    await out.drain();
  } catch (err) {
    await sb.error(`upload-pack: ${publicMessage(err)}`).catch(() => undefined);
    throw err;
  }
}
