/**
 * Push ingest (DESIGN.md section 5, steps 2 and 3): spool and index a pushed pack, verify
 * it as `git index-pack --strict --fix-thin` would (links and tips must exist; thin bases
 * are appended), and on `store()` write the completed pack, then its idx, to the object
 * store under content names. Nothing becomes visible here: the caller publishes the
 * returned PackRecord in one meta transaction. fsck severities are git's defaults (as
 * `git fsck`; DESIGN.md: warnings are reported and accepted), not --strict's, which would
 * turn every warning into an error.
 */
import { tmpdir } from 'node:os';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { FsckMessage } from '../../git/fsck/fsck.js';
import type { GitObject, ObjectType } from '../../git/object/object-type.js';
import { decodeTag } from '../../git/object/tag.js';
import type { PackRecord } from '../../meta/meta-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { ACCEL_KIND } from '../accel/format.js';
import { acceleratorKey, idxKey, packKey } from '../keys.js';
import type { ReceivedPack, ReceivePackOptions } from '../repository.js';
import { typeName } from './entry-table.js';
import { indexPack, type IndexedPack } from './index-pack.js';
import { SpoolFile } from './spool.js';
import { PackVerifier, type ObjectSource } from './verify.js';

/** Tag chains longer than this are refused when peeling (git's peel loops have no limit; we do). */
const PEEL_DEPTH_MAX = 1000;
/** Pack type code of a tag. */
const TAG_CODE = 4;

/** What ingest needs from the repository layer. */
export interface IngestDeps {
  readonly store: ObjectStore;
  readonly repoId: string;
  /** The repository's objects: thin-pack bases, link and tip checks, peeling. */
  readonly objects: ObjectSource;
  /** Wall clock for PackRecord.createdMs. */
  readonly clock: () => number;
  /** Where spool files go; defaults to os.tmpdir(). */
  readonly spoolDir?: string;
  /** Delta resolver threads (see IndexPackOptions.threads); default: CPUs available, at most 4. */
  readonly threads?: number;
}

/** Spools, indexes and verifies a pushed pack stream; see ReceivedPack. Nothing is stored until store(). */
export async function ingestPack(
  input: AsyncIterable<Uint8Array>,
  deps: IngestDeps,
  opts: ReceivePackOptions,
): Promise<ReceivedPack> {
  opts.signal?.throwIfAborted();
  const spool = await SpoolFile.create(deps.spoolDir ?? tmpdir());
  try {
    const verifier = new PackVerifier(opts.fsck);
    const indexed = await indexPack(input, spool, {
      maxObjects: opts.limits.packObjectsMax,
      maxObjectSize: opts.limits.objectSizeMax,
      maxPackSize: opts.limits.packSizeMax,
      verifier,
      readBase: (oid) => deps.objects.tryReadObject(oid),
      signal: opts.signal,
      onProgress: opts.onProgress,
      ...(deps.threads === undefined ? {} : { threads: deps.threads }),
    });
    const t = indexed.table;
    await verifier.finish(
      {
        typeOf: (oid) => {
          const i = indexed.byOid.get(oid);
          return i === undefined ? undefined : typeName(t.type[i]!);
        },
        sizeOf: (oid) => {
          const i = indexed.byOid.get(oid)!;
          return t.isDelta(i) ? 0 : t.size[i]!;
        },
        read: async (oid) => indexed.reader.readObject(indexed.byOid.get(oid)!).data,
        typeCodeRaw: (buf, off) => {
          const i = indexed.byOid.findRaw(buf, off);
          return i < 0 ? 0 : t.type[i]!;
        },
      },
      deps.objects,
      opts.newTips,
      opts.signal,
    );
    // Built now, after the checks freed their tables (so a failure still rejects the push here).
    indexed.accelerator();
    await spool.close();
    return new IngestedPack(indexed, spool, verifier, deps);
  } catch (err) {
    await spool.remove();
    throw err;
  }
}

/** A verified pack waiting in its spool file. */
class IngestedPack implements ReceivedPack {
  readonly objectCount: number;
  readonly warnings: readonly FsckMessage[];
  #stored: PackRecord | undefined;

  constructor(
    private readonly indexed: IndexedPack,
    private readonly spool: SpoolFile,
    private readonly verifier: PackVerifier,
    private readonly deps: IngestDeps,
  ) {
    this.objectCount = indexed.objectCount;
    this.warnings = verifier.warnings;
  }

  async objectType(oid: ObjectId): Promise<ObjectType | undefined> {
    const i = this.indexed.byOid.get(oid);
    if (i !== undefined) return typeName(this.indexed.table.type[i]!);
    return (await this.deps.objects.tryReadHeader(oid))?.type;
  }

  async tryReadObject(oid: ObjectId): Promise<GitObject | undefined> {
    const i = this.indexed.byOid.get(oid);
    if (i !== undefined) return this.indexed.reader.readObject(i);
    return this.deps.objects.tryReadObject(oid);
  }

  async peel(oid: ObjectId): Promise<ObjectId | undefined> {
    let cur = oid;
    for (let depth = 0; depth <= PEEL_DEPTH_MAX; depth++) {
      const inPack = this.indexed.byOid.get(cur);
      if (inPack !== undefined) {
        const target = this.verifier.tagTargets.get(cur);
        if (target !== undefined) {
          cur = target;
          continue;
        }
        // A tag in the pack without a recorded target is a thin base: read it from the repository.
        if (this.indexed.table.type[inPack] !== TAG_CODE) return cur;
      }
      const obj = await this.deps.objects.tryReadObject(cur);
      if (obj === undefined) return undefined;
      if (obj.type !== 'tag') return cur;
      cur = decodeTag(obj.data).object;
    }
    return undefined;
  }

  async store(opts: { signal?: AbortSignal } = {}): Promise<PackRecord | undefined> {
    const { checksum, idx, packSize, objectCount } = this.indexed;
    if (objectCount === 0 || checksum === undefined || idx === undefined) return undefined;
    if (this.#stored !== undefined) return this.#stored;
    const name = `pack-${checksum}`;
    const { store, repoId } = this.deps;
    const signalOpt = opts.signal === undefined ? {} : { signal: opts.signal };
    // Pack first, then idx: a reader that finds the idx can trust the pack is there.
    // Plain puts, not create-only: the same name always means the same bytes, so overwriting an
    // existing pack is harmless, and stores without atomic create-only writes (s3api) work too.
    await store.put(packKey(repoId, name), this.spool.stream(0, packSize, opts.signal), signalOpt);
    await store.put(idxKey(repoId, name), idx, signalOpt);
    // Then the accelerator, still before the pack is published: readers of a published pack
    // find it (or, for packs from before accelerators, inflate instead).
    const accel = this.indexed.accelerator();
    if (accel !== undefined) await store.put(acceleratorKey(repoId, name, ACCEL_KIND), accel, signalOpt);
    this.#stored = { name, size: packSize, objects: objectCount, createdMs: this.deps.clock(), source: 'receive' };
    return this.#stored;
  }

  /** Never throws (SpoolFile.remove swallows errors): rollback runs while another failure is in flight. */
  async discard(): Promise<void> {
    await this.spool.remove();
  }
}
