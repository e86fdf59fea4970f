/**
 * The per-block side of a write log's merges and direct puts (write-log.ts). Both run under
 * one lock per block: a merge copies a record into its block object only while the record is
 * still the newest of the block, checked under the lock, so a direct put of a newer version is
 * never overwritten by an older merged record, and the two puts of one block never race.
 */
import type { ObjectStore } from '../../storage/object-store.js';
import { KeyedLock } from './cache-policy.js';
import { blockKey } from './volume-layout.js';
import { mapLimit, type LogIndex, type Segment } from './write-log-index.js';

/** Test hooks of a merge. */
export interface MergeHooks {
  /** Runs after the block objects are synced, before the index drop and segment delete. */
  readonly beforeDelete?: () => Promise<void>;
  /** Runs for each record to copy, before its block lock is taken. */
  readonly beforeLock?: (index: number) => Promise<void>;
  /** Runs for each record to copy under its block lock, before the liveness check and put. */
  readonly inLock?: (index: number) => Promise<void>;
}

/** Merges and direct puts of one volume's blocks, serialized per block. */
export class BlockMerger {
  private readonly locks = new KeyedLock();

  constructor(
    private readonly store: ObjectStore,
    private readonly name: string,
  ) {}

  /**
   * Copies the records of `seg` still the newest of their block into the block objects
   * (deferred puts; a tombstone deletes), `concurrency` at a time, each under its block's lock.
   */
  async copy(index: LogIndex, seg: Segment, concurrency: number, hooks?: MergeHooks): Promise<void> {
    const live = seg.records.filter((r) => index.blocks.get(r.index)?.rec === r);
    await mapLimit(live, concurrency, async (r) => {
      await hooks?.beforeLock?.(r.index);
      await this.locks.run(r.index, async () => {
        await hooks?.inLock?.(r.index);
        // Checked again under the lock: a direct put may have superseded the record.
        if (index.blocks.get(r.index)?.rec !== r) return;
        const key = blockKey(this.name, r.index);
        if (r.tomb) return this.store.delete(key);
        const bytes = await this.store.get(seg.key, { range: { offset: r.offset, length: r.length } });
        await this.store.put(key, bytes, { deferDurability: true });
      });
    });
  }

  /**
   * Puts block `index`'s object (deferred; `body` undefined deletes it), then under the same
   * lock runs `after` (the record stops counting, the marker is appended); returns its result.
   */
  async put<T>(index: number, body: Uint8Array | undefined, after: () => T): Promise<T> {
    return this.locks.run(index, async () => {
      await this.putObject(index, body);
      return after();
    });
  }

  /** Puts (or deletes) block `index`'s object without the lock: no logged record can shadow it. */
  async putObject(index: number, body: Uint8Array | undefined): Promise<void> {
    const key = blockKey(this.name, index);
    if (body === undefined) await this.store.delete(key);
    else await this.store.put(key, body, { deferDurability: true });
  }
}
