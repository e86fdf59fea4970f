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
const BLOCKS_CACHED = 128;

/** Random-access bytes of the pack (a SpoolFile, or a file descriptor in a worker). */
export interface PackBytes {
  /** Exactly `length` bytes at `position`. */
  readSync(position: number, length: number): Uint8Array;
  /** Current length of the pack bytes. */
  readonly size: number;
}

/** Random access to a spooled pack through its entry table. */
export class SpoolPackReader {
  readonly #blocks = new Map<number, Uint8Array>();
  /** Block reads and cache hits, for tests and tuning. */
  readonly stats = { blockReads: 0, hits: 0 };

  constructor(
    private readonly bytes: PackBytes,
    private readonly table: EntryTable,
    /** ref-delta entry number -> base id. */
    private readonly refBase: ReadonlyMap<number, ObjectId> = new Map(),
    /** object id -> first entry number holding it. */
    private readonly byOid: ReadonlyMap<ObjectId, number> = new Map(),
  ) {}

  /** The inflated data of entry i (the object, or its delta instructions). */
  entryData(i: number): Uint8Array {
    const t = this.table;
    const offset = t.offset[i]!;
    const start = offset + t.headerLength[i]!;
    const length = t.packedLength[i]! - t.headerLength[i]!;
    // Whole objects (roots) are read in ascending offset order: through blocks. Deltas are
    // read in tree order, scattered over a big pack: exactly, unless their block is cached.
    const small = this.bytes.size <= BLOCK_SIZE * BLOCKS_CACHED;
    const buf = this.#read(start, length, small || !t.isDelta(i));
    const r = inflateAt(buf, 0, t.size[i]!);
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
    for (let c = chain.length - 1; c >= 0; c--) data = applyDelta(data, this.entryData(chain[c]!));
    return { type: typeName(this.table.kind[k]!), data };
  }

  #read(start: number, length: number, loadBlocks: boolean): Uint8Array {
    const first = Math.floor(start / BLOCK_SIZE);
    const last = Math.floor((start + length - 1) / BLOCK_SIZE);
    if (first === last && (loadBlocks || this.#blocks.has(first))) {
      const from = start - first * BLOCK_SIZE;
      return this.#block(first).subarray(from, from + length);
    }
    return this.bytes.readSync(start, length);
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
    if (this.#blocks.size > BLOCKS_CACHED) this.#blocks.delete(this.#blocks.keys().next().value!);
    return buf;
  }
}
