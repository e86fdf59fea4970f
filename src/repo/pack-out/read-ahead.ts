/**
 * Stored entries read ahead of the pack writer, so that store latency overlaps with writing.
 * Bounded three ways: a count, the stored bytes of the entries, and the memory they pin. An
 * entry read through the block cache is a view of a whole cached block (1 MiB on fs and S3),
 * which stays in memory while the view lives even once the cache evicted it: entries of a pack
 * read far from its order (a clone's commits first, spread over the whole pack) would each pin
 * their own block. Past PIN_BYTES_MAX of distinct blocks, an entry is copied out of its block.
 */
import { getMaxListeners, setMaxListeners } from 'node:events';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { ObjectDb, RawEntry } from '../object-db/object-db.js';

/** Entries read ahead at most. */
const COUNT_MAX = 64;
/** Stored bytes of the entries read ahead at most (past the first). */
const BYTES_MAX = 4 * 1024 * 1024;
/** Bytes of distinct buffers the entries read ahead may keep alive. */
const PIN_BYTES_MAX = 4 * 1024 * 1024;

interface Ahead {
  readonly entry: Promise<RawEntry | undefined>;
  readonly bytes: number;
  /** The buffer the entry is a view of, once read (counted in pinned bytes). */
  pinned?: ArrayBufferLike;
  taken: boolean;
}

/** Read-ahead over a list of objects; take() hands an entry over, read ahead or not. */
export class ReadAhead {
  readonly #db: ObjectDb;
  readonly #opts: { readonly verifyCrc: true; readonly signal?: AbortSignal };
  readonly #ahead = new Map<ObjectId, Ahead>();
  /** Entries read ahead per buffer they are views of. */
  readonly #pins = new Map<ArrayBufferLike, number>();
  #bytes = 0;
  #pinnedBytes = 0;
  #next = 0;
  /** Entries copied out of their blocks (for tests). */
  copies = 0;

  constructor(db: ObjectDb, signal: AbortSignal | undefined) {
    this.#db = db;
    this.#opts = signal === undefined ? { verifyCrc: true } : { verifyCrc: true, signal };
    // Every read in flight listens to the signal: more than Node's default of 10 is expected.
    if (signal !== undefined && getMaxListeners(signal) < 2 * COUNT_MAX) setMaxListeners(2 * COUNT_MAX, signal);
  }

  /** Starts reads of list[from...] up to the bounds, skipping objects `skip` says are done. */
  fill(list: readonly ObjectId[], from: number, skip: (oid: ObjectId) => boolean): void {
    for (let i = Math.max(this.#next, from); i < list.length && this.#ahead.size < COUNT_MAX; i++) {
      const oid = list[i]!;
      if (skip(oid) || this.#ahead.has(oid)) {
        this.#next = i + 1;
        continue;
      }
      const loc = this.#db.locate(oid);
      const bytes = loc === undefined ? 0 : loc.pack.index.nextOffset(loc.offset, loc.pack.record.size) - loc.offset;
      if (this.#ahead.size > 0 && this.#bytes + bytes > BYTES_MAX) break;
      this.#next = i + 1;
      const a: Ahead = { entry: this.#db.tryReadRawEntry(oid, this.#opts).then((e) => (e === undefined ? e : this.#pin(a, e))), bytes, taken: false };
      a.entry.catch(() => undefined);
      this.#ahead.set(oid, a);
      this.#bytes += bytes;
    }
  }

  /** The entry of `oid`: the one read ahead, else a new read. */
  take(oid: ObjectId): Promise<RawEntry | undefined> {
    return this.drop(oid) ?? this.#db.tryReadRawEntry(oid, this.#opts);
  }

  /** Forgets the read-ahead of `oid` (returning it, if any). */
  drop(oid: ObjectId): Promise<RawEntry | undefined> | undefined {
    const a = this.#ahead.get(oid);
    if (a === undefined) return undefined;
    this.#ahead.delete(oid);
    this.#bytes -= a.bytes;
    a.taken = true;
    if (a.pinned !== undefined) this.#unpin(a.pinned);
    return a.entry;
  }

  #pin(a: Ahead, e: RawEntry): RawEntry {
    if (a.taken) return e;
    const buf = e.compressed.buffer;
    // Mostly its own bytes (a large entry, or one the cache joined from two blocks): no pin.
    if (buf.byteLength <= 2 * e.compressed.byteLength) return e;
    const n = this.#pins.get(buf);
    if (n !== undefined) {
      this.#pins.set(buf, n + 1);
    } else if (this.#pinnedBytes + buf.byteLength <= PIN_BYTES_MAX) {
      this.#pins.set(buf, 1);
      this.#pinnedBytes += buf.byteLength;
    } else {
      this.copies++;
      return { ...e, compressed: Uint8Array.prototype.slice.call(e.compressed) };
    }
    a.pinned = buf;
    return e;
  }

  #unpin(buf: ArrayBufferLike): void {
    const n = this.#pins.get(buf)!;
    if (n > 1) {
      this.#pins.set(buf, n - 1);
      return;
    }
    this.#pins.delete(buf);
    this.#pinnedBytes -= buf.byteLength;
  }
}
