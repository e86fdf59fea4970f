/**
 * A least-recently-used map bounded by the summed size of its values (not their count).
 * Shared by every request of a process, so it also deduplicates concurrent loads of one key.
 */

/** Counters of a cache, for metrics and tests. */
export interface CacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
}

/** Options of a ByteLru. */
export interface ByteLruOptions<K, V> {
  /** Upper bound of the summed sizes; 0 disables caching (every get misses). */
  readonly maxBytes: number;
  /** Size of a value in bytes (an estimate of its memory is fine). */
  readonly sizeOf: (value: V, key: K) => number;
  /** Values larger than this are never stored (they would flush everything else); default maxBytes / 4. */
  readonly maxEntryBytes?: number;
}

interface Slot<V> {
  readonly value: V;
  readonly size: number;
}

/** LRU by bytes. Map iteration order is insertion order, so the first key is the least recent. */
export class ByteLru<K, V> {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  readonly #sizeOf: (value: V, key: K) => number;
  readonly #map = new Map<K, Slot<V>>();
  readonly #loading = new Map<K, Promise<V>>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(opts: ByteLruOptions<K, V>) {
    if (!(opts.maxBytes >= 0)) throw new RangeError(`invalid cache size ${opts.maxBytes}`);
    this.maxBytes = opts.maxBytes;
    this.maxEntryBytes = Math.min(opts.maxEntryBytes ?? Math.floor(opts.maxBytes / 4), opts.maxBytes);
    this.#sizeOf = opts.sizeOf;
  }

  /** The value for `key` (marking it most recent), or undefined; counts a hit or a miss. */
  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#map.delete(key);
    this.#map.set(key, slot);
    return slot.value;
  }

  /** The value for `key` without touching recency or counters. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Stores a value (replacing any), then evicts least recent entries down to maxBytes. */
  set(key: K, value: V): void {
    const size = this.#sizeOf(value, key);
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#map.delete(key);
      this.#bytes -= old.size;
    }
    if (size > this.maxEntryBytes) return;
    this.#map.set(key, { value, size });
    this.#bytes += size;
    if (this.#bytes > this.maxBytes) this.#evict();
  }

  delete(key: K): boolean {
    const old = this.#map.get(key);
    if (old === undefined) return false;
    this.#map.delete(key);
    this.#bytes -= old.size;
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  /**
   * The cached value, or the result of `load()` (then cached). Concurrent callers for one
   * key share a single load; a failed load is not cached and rejects every waiter.
   */
  async getOrLoad(key: K, load: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const pending = this.#loading.get(key);
    if (pending !== undefined) return pending;
    const p = (async () => {
      try {
        const value = await load();
        this.set(key, value);
        return value;
      } finally {
        this.#loading.delete(key);
      }
    })();
    this.#loading.set(key, p);
    return p;
  }

  stats(): CacheStats {
    return {
      entries: this.#map.size,
      bytes: this.#bytes,
      maxBytes: this.maxBytes,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }

  #evict(): void {
    for (const [key, slot] of this.#map) {
      if (this.#bytes <= this.maxBytes) break;
      this.#map.delete(key);
      this.#bytes -= slot.size;
      this.#evictions++;
    }
  }
}
