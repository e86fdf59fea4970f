/**
 * `stowage repo import`: one pack stream built from a bare repository's packs and loose
 * objects goes through the same ingest as a push (index, fsck, connectivity), then one
 * transaction creates every ref, points HEAD and publishes the pack.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ConflictError } from '../../core/errors.js';
import { DEFAULT_LIMITS, OBJECT_SIZE_MAX, type Limits } from '../../core/limits.js';
import type { FsckConfig } from '../../git/fsck/config.js';
import type { FsckMessage } from '../../git/fsck/fsck.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { encodeEntryHeader } from '../../git/pack/entry.js';
import { deflate } from '../../git/pack/inflate.js';
import { encodePackHeader, PACK_HEADER_LENGTH } from '../../git/pack/scanner.js';
import { refNameProblem } from '../../git/refname/check.js';
import type { RefChange } from '../../meta/meta-store.js';
import type { ProgressFn, Repository } from '../repository.js';
import { readLooseObject } from './loose.js';
import type { BareRepository } from './read-bare.js';

/** Length of a pack trailer. */
const TRAILER_LENGTH = 20;
/** Most objects a pack header can count. */
const PACK_COUNT_MAX = 0xffffffff;

/** An import reads a repository the operator chose: size limits are those of the format. */
const IMPORT_LIMITS: Limits = {
  ...DEFAULT_LIMITS,
  packSizeMax: Number.MAX_SAFE_INTEGER,
  packObjectsMax: PACK_COUNT_MAX,
  objectSizeMax: OBJECT_SIZE_MAX,
};

/** Options of importBareRepository. */
export interface ImportOptions {
  readonly onProgress?: ProgressFn;
  readonly signal?: AbortSignal;
  /** fsck severities; git's defaults when absent. */
  readonly fsck?: FsckConfig;
}

/** What an import did. */
export interface ImportResult {
  readonly refs: number;
  readonly objects: number;
  /** fsck warnings (errors would have failed the import), for the operator to see. */
  readonly warnings: readonly FsckMessage[];
}

/**
 * Imports every object and ref of `bare` into `repo` (which must not have any of its refs).
 * Throws ConflictError('REF_CAS_LOST') if a ref already exists; nothing is published then.
 */
export async function importBareRepository(repo: Repository, bare: BareRepository, opts: ImportOptions = {}): Promise<ImportResult> {
  const total = bare.packs.reduce((n, p) => n + p.objectCount, 0) + bare.looseObjects.length;
  if (total > PACK_COUNT_MAX) throw new RangeError(`${total} objects do not fit one pack`);
  const input = total === 0 ? emptyStream() : importPackStream(bare, total, opts.signal);
  const received = await repo.receivePack(input, {
    fsck: opts.fsck ?? {},
    limits: IMPORT_LIMITS,
    newTips: bare.refs.map((r) => r.oid),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
  });
  try {
    const record = await received.store(opts.signal === undefined ? {} : { signal: opts.signal });
    // The pack holds everything the refs reach: its bitmaps go in before it is published.
    if (record !== undefined && repo.writeReachBitmaps !== undefined) {
      await repo.writeReachBitmaps(record, bare.refs.map((r) => r.oid as ObjectId), opts.signal === undefined ? {} : { signal: opts.signal });
    }
    const changes: RefChange[] = [];
    for (const ref of bare.refs) {
      const type = await received.objectType(ref.oid);
      const peeled = type === 'tag' ? await received.peel(ref.oid) : undefined;
      changes.push({
        name: ref.name,
        expected: { kind: 'must-not-exist' },
        value: peeled === undefined ? { oid: ref.oid } : { oid: ref.oid, peeled },
      });
    }
    const head = bare.head !== undefined && bare.head.startsWith('refs/heads/') && refNameProblem(bare.head) === undefined ? bare.head : undefined;
    const res = await repo.updateRefs({
      refs: changes,
      ...(head === undefined ? {} : { setHead: head }),
      addPacks: record === undefined ? [] : [{ ...record, source: 'import' }],
    });
    if (!res.ok) {
      const names = res.conflicts.slice(0, 5).map((c) => c.name).join(', ');
      throw new ConflictError('REF_CAS_LOST', `the repository already has refs the import would create: ${names}${res.conflicts.length > 5 ? ', …' : ''}`);
    }
    return { refs: changes.length, objects: received.objectCount, warnings: received.warnings };
  } finally {
    await received.discard();
  }
}

/**
 * One pack of everything: a new header, each pack's entries copied verbatim (bytes 12 to
 * size-20: ofs-delta distances stay valid because each pack's entries stay contiguous),
 * each loose object as a whole deflated entry, and a new trailer.
 */
async function* importPackStream(bare: BareRepository, total: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha1');
  const header = encodePackHeader(total);
  hash.update(header);
  yield header;
  for (const pack of bare.packs) {
    const end = pack.size - TRAILER_LENGTH - 1;
    if (end < PACK_HEADER_LENGTH) continue;
    const stream = createReadStream(pack.packPath, { start: PACK_HEADER_LENGTH, end, highWaterMark: 1024 * 1024, ...(signal === undefined ? {} : { signal }) });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      yield chunk;
    }
  }
  for (const loose of bare.looseObjects) {
    signal?.throwIfAborted();
    const obj = await readLooseObject(loose.path, loose.oid as ObjectId);
    const entry = Buffer.concat([encodeEntryHeader(obj.type, obj.data.length), deflate(obj.data)]);
    hash.update(entry);
    yield entry;
  }
  yield hash.digest();
}

async function* emptyStream(): AsyncGenerator<Uint8Array> {}
