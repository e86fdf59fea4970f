/**
 * Delta resolution as git index-pack's second pass: from each whole object (a root), walk
 * depth-first to the deltas based on it (ofs-deltas by base offset, ref-deltas by base id),
 * applying and hashing each. Bases on the walk's stack are kept in memory up to a byte
 * budget; beyond it the oldest are dropped and rebuilt from the spool when needed again
 * (git's delta_base_cache_limit), so memory stays bounded whatever the chain lengths.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ProtocolError, StowageError } from '../../core/errors.js';
import { DELTA_CHAIN_MAX } from '../../core/limits.js';
import { applyDelta, deltaSizes } from '../../git/pack/delta.js';
import { typeName, writeObjectId, type EntryTable } from './entry-table.js';
import type { SpoolPackReader } from './pack-reader.js';

/** What the resolver reads and where it reports. */
export interface ResolveContext {
  readonly table: EntryTable;
  readonly reader: SpoolPackReader;
  /**
   * The deltas based on resolved entry i (whose id is set), each handed out once: later
   * calls for i, or for another entry with the same id, must not return them again.
   */
  takeChildren(i: number): ArrayLike<number> | undefined;
  /** Inflated delta data kept from the scan (the rest is re-read from the spool). */
  readonly deltas?: Map<number, Uint8Array>;
  /**
   * Records a resolved entry, whose type, size and raw id are in the table (duplicates,
   * checks; `base` is the entry it was applied to, `baseData` that entry's content). May
   * throw to reject the pack. `data` and `baseData` are valid during the call only: their
   * buffers are reused afterwards, so nothing may keep them (or views of them).
   */
  onResolved(i: number, data: Uint8Array, base: number, baseData: Uint8Array): void;
  /** Bytes of bases kept on the stack before the oldest are dropped. */
  readonly cacheLimit: number;
  readonly signal?: AbortSignal | undefined;
  onProgress?(resolved: number): void;
}

interface Frame {
  readonly index: number;
  data: Uint8Array | undefined;
  /** The pooled buffer holding `data`, if the resolver made it (returned to the pool when dropped). */
  pooled: Buffer | undefined;
  readonly children: ArrayLike<number>;
  next: number;
}

/** Results up to this size go into recycled buffers; bigger ones are allocated each time. */
const POOLED_MAX = 1024 * 1024;
/** Free buffers kept for reuse, in bytes. */
const POOL_BYTES = 2 * 1024 * 1024;
const POOL_MIN = 1024;

/**
 * Free buffers by power-of-two capacity: applied objects are mostly similar in size (versions
 * of the same trees and files), so recycling them spares the allocator and the collector.
 */
class BufferPool {
  readonly #free = new Map<number, Buffer[]>();
  #bytes = 0;

  /** A buffer of at least `size` bytes (undefined above POOLED_MAX: allocate normally). */
  take(size: number): Buffer | undefined {
    if (size > POOLED_MAX) return undefined;
    let cap = POOL_MIN;
    while (cap < size) cap *= 2;
    const list = this.#free.get(cap);
    const b = list?.pop();
    if (b !== undefined) {
      this.#bytes -= cap;
      return b;
    }
    return Buffer.allocUnsafeSlow(cap);
  }

  give(b: Buffer | undefined): void {
    if (b === undefined || this.#bytes + b.length > POOL_BYTES) return;
    let list = this.#free.get(b.length);
    if (list === undefined) this.#free.set(b.length, (list = []));
    list.push(b);
    this.#bytes += b.length;
  }
}

/** Resolves every delta reachable from the roots it is given. */
export class DeltaResolver {
  /** Deltas resolved so far. */
  resolved = 0;
  #live = 0;
  readonly #pool = new BufferPool();

  constructor(private readonly ctx: ResolveContext) {}

  /**
   * Resolves the deltas based (directly or not) on resolved entry `root` (its id set).
   * `rootData` is its content if already in hand; else it is read when first needed.
   */
  async resolveFrom(root: number, rootData?: Uint8Array): Promise<void> {
    const children = this.ctx.takeChildren(root);
    if (children === undefined) return;
    const { table, reader, deltas, signal } = this.ctx;
    const stack: Frame[] = [{ index: root, data: rootData, pooled: undefined, children, next: 0 }];
    this.#live = rootData?.length ?? 0;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next === top.children.length) {
        stack.pop();
        if (top.data !== undefined) this.#live -= top.data.length;
        this.#pool.give(top.pooled);
        continue;
      }
      const c = top.children[top.next++]!;
      if (stack.length > DELTA_CHAIN_MAX) {
        throw new ProtocolError(
          'PACK_DELTA_CYCLE',
          `delta chain at offset ${table.offset[c]} is deeper than ${DELTA_CHAIN_MAX} (git's limit)`,
        );
      }
      const base = top.data ?? this.#materialize(stack, stack.length - 1);
      let delta = deltas?.get(c);
      if (delta === undefined) delta = reader.entryData(c, true);
      else deltas!.delete(c);
      const pooled = this.#pool.take(resultSizeOf(delta));
      const data = applyAt(base, delta, table.offset[c]!, pooled);
      table.type[c] = table.type[top.index]!;
      table.objectSize[c] = data.length;
      writeObjectId(table, c, typeName(table.type[c]!), data);
      this.ctx.onResolved(c, data, top.index, base);
      this.resolved++;
      const grand = this.ctx.takeChildren(c);
      if (grand !== undefined) {
        stack.push({ index: c, data, pooled, children: grand, next: 0 });
        this.#live += data.length;
        this.#evict(stack);
      } else {
        this.#pool.give(pooled);
      }
      if ((this.resolved & 511) === 0) {
        this.ctx.onProgress?.(this.resolved);
        await yieldToLoop();
        signal?.throwIfAborted();
      }
    }
    this.#live = 0;
  }

  /** Rebuilds the content of stack[k] after eviction, from the nearest kept ancestor. */
  #materialize(stack: Frame[], k: number): Uint8Array {
    let j = k;
    while (j > 0 && stack[j]!.data === undefined) j--;
    // The root may itself be a delta (resolved earlier): readObject applies its chain.
    let data = stack[j]!.data ?? this.ctx.reader.readObject(stack[0]!.index).data;
    for (let m = j + 1; m <= k; m++) {
      const i = stack[m]!.index;
      data = applyAt(data, this.ctx.reader.entryData(i, true), this.ctx.table.offset[i]!);
    }
    stack[k]!.data = data;
    this.#live += data.length;
    this.#evict(stack);
    return data;
  }

  /** Drops the oldest kept bases (never the top) while over the budget. */
  #evict(stack: Frame[]): void {
    for (let j = 0; this.#live > this.ctx.cacheLimit && j < stack.length - 1; j++) {
      const f = stack[j]!;
      if (f.data !== undefined) {
        this.#live -= f.data.length;
        f.data = undefined;
        this.#pool.give(f.pooled);
        f.pooled = undefined;
      }
    }
  }
}

/** The result size a delta declares (0 if its header does not parse: applyAt then reports it). */
function resultSizeOf(delta: Uint8Array): number {
  try {
    return deltaSizes(delta).resultSize;
  } catch {
    return 0;
  }
}

function applyAt(base: Uint8Array, delta: Uint8Array, offset: number, into?: Uint8Array): Uint8Array {
  try {
    return applyDelta(base, delta, into);
  } catch (err) {
    if (err instanceof StowageError) {
      throw new ProtocolError('PACK_BAD_DELTA', `pack entry at offset ${offset}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
