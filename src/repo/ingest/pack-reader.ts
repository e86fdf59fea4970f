/**
 * Reads entries of the pack being indexed back from its spool file by offset: an entry's
 * inflated data, or a whole object with its delta chain applied. Reads are synchronous: the
 * spool is a local file just written (in the page cache), and resolution makes hundreds of
 * thousands of small reads, where an async round trip costs far more than the read.
 */
import { ProtocolError } from '../../core/errors.js';
import { DELTA_CHAIN_MAX } from '../../core/limits.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { GitObject } from '../../git/object/object-type.js';
import { applyDelta } from '../../git/pack/delta.js';
import { inflateAt } from '../../git/pack/inflate.js';
import { CODE_OFS_DELTA, CODE_REF_DELTA, typeName, type EntryTable } from './entry-table.js';

/** Spool reads go through a small LRU of aligned blocks: resolution reads entries near each other. */
const BLOCK_SIZE = 256 * 1024;
/** Default block budget (32 MiB); resolver threads pass a smaller one (see the constructor). */
const BLOCKS_CACHED = 128;

/** Scratch buffers start at this size and grow in powers of two up to SCRATCH_MAX. */
const SCRATCH_MIN = 64 * 1024;
/** Bigger reads and deltas get buffers of their own (a scratch buffer stays as big as its largest use). */
const SCRATCH_MAX = 4 * 1024 * 1024;

function scratchSize(n: number): number {
  let s = SCRATCH_MIN;
  while (s < n) s *= 2;
  return s;
}

/** Random-access bytes of the pack (a SpoolFile, or a file descriptor in a worker). */
export interface PackBytes {
  /** Exactly `length` bytes at `position`. */
  readSync(position: number, length: number): Uint8Array;
  /** Reads exactly `length` bytes at `position` into `into` (from its start); optional. */
  readInto?(position: number, length: number, into: Uint8Array): void;
  /** Current length of the pack bytes. */
  readonly size: number;
}

/** Random access to a spooled pack through its entry table. */
export class SpoolPackReader {
  readonly #blocks = new Map<number, Uint8Array>();
  /** Compressed bytes of exact reads, and inflated deltas handed out as scratch (see entryData). */
  #readScratch = Buffer.allocUnsafeSlow(SCRATCH_MIN);
  #dataScratch = Buffer.allocUnsafeSlow(SCRATCH_MIN);
  /** Block reads and cache hits, for tests and tuning. */
  readonly stats = { blockReads: 0, hits: 0 };

  constructor(
    private readonly bytes: PackBytes,
    private readonly table: EntryTable,
    /** ref-delta entry number -> base id. */
    private readonly refBase: ReadonlyMap<number, ObjectId> = new Map(),
    /** object id -> first entry number holding it. */
    private readonly byOid: { get(oid: ObjectId): number | undefined } = new Map(),
    /**
     * Blocks kept. A pack that fits is read wholly through blocks; a bigger one reads whole
     * objects (ascending offsets, so a few blocks serve them) through blocks and deltas exactly.
     */
    private readonly blocksCached = BLOCKS_CACHED,
  ) {}

  /**
   * The inflated data of entry i (the object, or its delta instructions). With `scratch` the
   * bytes live in a buffer the next scratch call overwrites: for deltas applied at once.
   */
  entryData(i: number, scratch = false): Uint8Array {
    const t = this.table;
    const offset = t.offset[i]!;
    const start = offset + t.headerLength[i]!;
    const length = t.packedLength[i]! - t.headerLength[i]!;
    // Whole objects (roots) are read in ascending offset order: through blocks. Deltas are
    // read in tree order, scattered over a big pack: exactly, unless their block is cached.
    const small = this.bytes.size <= BLOCK_SIZE * this.blocksCached;
    const buf = this.#read(start, length, small || !t.isDelta(i));
    const size = t.size[i]!;
    let out: Buffer | undefined;
    if (scratch && size < SCRATCH_MAX) {
      if (this.#dataScratch.length <= size) this.#dataScratch = Buffer.allocUnsafeSlow(scratchSize(size + 1));
      out = this.#dataScratch;
    }
    const r = inflateAt(buf, 0, size, out);
    if (r === undefined) throw new ProtocolError('PACK_TRUNCATED', `pack entry at offset ${offset} is cut short`);
    return r.data;
  }

  /** Forgets cached blocks (after the spool file changed). */
  invalidate(): void {
    this.#blocks.clear();
  }

  /** Entry number of the base of delta entry i, or -1 if it is not in the pack. */
  baseOf(i: number): number {
    const kind = this.table.kind[i]!;
    if (kind === CODE_OFS_DELTA) return this.table.baseIndex[i]!;
    if (kind === CODE_REF_DELTA) return this.byOid.get(this.refBase.get(i)!) ?? -1;
    return -1;
  }

  /** The whole object of resolved entry i, applying its delta chain from the base up. */
  readObject(i: number): GitObject {
    const chain: number[] = [];
    let k = i;
    while (this.table.isDelta(k)) {
      chain.push(k);
      if (chain.length > DELTA_CHAIN_MAX) {
        throw new ProtocolError('PACK_DELTA_CYCLE', `delta chain at offset ${this.table.offset[i]} is longer than ${DELTA_CHAIN_MAX}`);
      }
      const b = this.baseOf(k);
      if (b < 0) throw new ProtocolError('PACK_DELTA_BASE_MISSING', `delta at offset ${this.table.offset[k]} has no base in the pack`);
      k = b;
    }
    let data = this.entryData(k);
    for (let c = chain.length - 1; c >= 0; c--) data = applyDelta(data, this.entryData(chain[c]!, true));
    return { type: typeName(this.table.kind[k]!), data };
  }

  #read(start: number, length: number, loadBlocks: boolean): Uint8Array {
    const first = Math.floor(start / BLOCK_SIZE);
    const last = Math.floor((start + length - 1) / BLOCK_SIZE);
    if (first === last && (loadBlocks || this.#blocks.has(first))) {
      const from = start - first * BLOCK_SIZE;
      return this.#block(first).subarray(from, from + length);
    }
    // Exact reads land in a scratch buffer: inflating consumes them at once.
    if (this.bytes.readInto === undefined || length > SCRATCH_MAX) return this.bytes.readSync(start, length);
    if (this.#readScratch.length < length) this.#readScratch = Buffer.allocUnsafeSlow(scratchSize(length));
    this.bytes.readInto(start, length, this.#readScratch);
    return this.#readScratch.subarray(0, length);
  }

  #block(n: number): Uint8Array {
    const cached = this.#blocks.get(n);
    if (cached !== undefined) {
      this.stats.hits++;
      // Re-insert: Map order is the LRU order.
      this.#blocks.delete(n);
      this.#blocks.set(n, cached);
      return cached;
    }
    this.stats.blockReads++;
    const start = n * BLOCK_SIZE;
    const buf = this.bytes.readSync(start, Math.min(BLOCK_SIZE, this.bytes.size - start));
    this.#blocks.set(n, buf);
    if (this.#blocks.size > this.blocksCached) this.#blocks.delete(this.#blocks.keys().next().value!);
    return buf;
  }
}
