/**
 * The accelerator of a finished pack, for writers other than push ingest (compaction, or
 * building one lazily for a pack stored before accelerators existed): the pack is indexed
 * once more (spooled to a temp file, deltas resolved, nothing checked beyond the format) and
 * the records collected on the way become the file. Every delta base must be in the pack.
 */
import { tmpdir } from 'node:os';
import { ValidationError } from '../../core/errors.js';
import { indexPack } from '../ingest/index-pack.js';
import { SpoolFile } from '../ingest/spool.js';

/** What buildAccelerator produced: the pack's idx (as ingest would write it) and accelerator. */
export interface BuiltAccelerator {
  readonly idx: Uint8Array;
  readonly accel: Uint8Array;
  readonly objectCount: number;
}

/**
 * Indexes `pack` (a whole, self-contained pack stream) and returns its idx and accelerator.
 * Throws ProtocolError for a malformed pack, ValidationError('REPO_CORRUPT') for an empty one.
 */
export async function buildAccelerator(
  pack: AsyncIterable<Uint8Array>,
  opts: { readonly spoolDir?: string; readonly signal?: AbortSignal; readonly threads?: number } = {},
): Promise<BuiltAccelerator> {
  const spool = await SpoolFile.create(opts.spoolDir ?? tmpdir());
  try {
    const indexed = await indexPack(pack, spool, {
      signal: opts.signal,
      ...(opts.threads === undefined ? {} : { threads: opts.threads }),
    });
    const accel = indexed.accelerator();
    if (indexed.idx === undefined || accel === undefined) throw new ValidationError('REPO_CORRUPT', 'the pack holds no objects');
    return { idx: indexed.idx, accel, objectCount: indexed.objectCount };
  } finally {
    await spool.remove();
  }
}
