/**
 * A set of object ids kept as raw 20-byte keys in an open-addressing table. Walks test every
 * entry of every tree they read against their seen set (tens of millions of lookups for a
 * large clone), so lookups must not build a hex string per entry as a Set<string> would.
 * An all-zero slot is empty; the all-zero id itself is kept in a flag.
 */
import type { ObjectId } from '../../git/hash/object-id.js';

const WORDS = 5;
/** Grow when more than this fraction of slots is used. */
const LOAD_MAX = 0.5;

/** Set of SHA-1 object ids; raw-byte and hex interfaces. */
export class OidSet {
  #keys: Uint32Array;
  #mask: number;
  #size = 0;
  #hasZero = false;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap * LOAD_MAX < capacity) cap *= 2;
    this.#keys = new Uint32Array(cap * WORDS);
    this.#mask = cap - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** True if the 20 bytes at `bytes[off]` are in the set. */
  hasRaw(bytes: Uint8Array, off: number): boolean {
    return this.#find(word(bytes, off), word(bytes, off + 4), word(bytes, off + 8), word(bytes, off + 12), word(bytes, off + 16), false);
  }

  /** Adds the 20 bytes at `bytes[off]`; true if they were not in the set yet. */
  addRaw(bytes: Uint8Array, off: number): boolean {
    return !this.#find(word(bytes, off), word(bytes, off + 4), word(bytes, off + 8), word(bytes, off + 12), word(bytes, off + 16), true);
  }

  has(oid: ObjectId): boolean {
    return this.#find(hexWord(oid, 0), hexWord(oid, 1), hexWord(oid, 2), hexWord(oid, 3), hexWord(oid, 4), false);
  }

  /** Adds a hex id; true if it was not in the set yet. */
  add(oid: ObjectId): boolean {
    return !this.#find(hexWord(oid, 0), hexWord(oid, 1), hexWord(oid, 2), hexWord(oid, 3), hexWord(oid, 4), true);
  }

  /** Makes room for `n` ids in one step (instead of doubling repeatedly while they arrive). */
  reserve(n: number): void {
    let cap = this.#mask + 1;
    while (cap * LOAD_MAX < n) cap *= 2;
    if (cap > this.#mask + 1) this.#grow(cap);
  }

  /** A copy of this set. */
  clone(): OidSet {
    const c = new OidSet(0);
    c.#keys = this.#keys.slice();
    c.#mask = this.#mask;
    c.#size = this.#size;
    c.#hasZero = this.#hasZero;
    return c;
  }

  /** The ids as hex strings (in table order). */
  toArray(): ObjectId[] {
    const out: ObjectId[] = [];
    if (this.#hasZero) out.push('0'.repeat(40) as ObjectId);
    const keys = this.#keys;
    const tmp = Buffer.allocUnsafe(20);
    for (let k = 0; k < keys.length; k += WORDS) {
      if ((keys[k]! | keys[k + 1]! | keys[k + 2]! | keys[k + 3]! | keys[k + 4]!) === 0) continue;
      for (let i = 0; i < WORDS; i++) tmp.writeUInt32BE(keys[k + i]!, i * 4);
      out.push(tmp.toString('hex') as ObjectId);
    }
    return out;
  }

  /** Looks a key up; with `insert`, adds it when absent. Returns whether it was present. */
  #find(w0: number, w1: number, w2: number, w3: number, w4: number, insert: boolean): boolean {
    if ((w0 | w1 | w2 | w3 | w4) === 0) {
      const had = this.#hasZero;
      if (insert && !had) {
        this.#hasZero = true;
        this.#size++;
      }
      return had;
    }
    const keys = this.#keys;
    const mask = this.#mask;
    let slot = w0 & mask;
    for (;;) {
      const k = slot * WORDS;
      const k0 = keys[k]!;
      if (k0 === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3 && keys[k + 4] === w4) return true;
      if (k0 === 0 && (keys[k + 1]! | keys[k + 2]! | keys[k + 3]! | keys[k + 4]!) === 0) break;
      slot = (slot + 1) & mask;
    }
    if (!insert) return false;
    const k = slot * WORDS;
    keys[k] = w0;
    keys[k + 1] = w1;
    keys[k + 2] = w2;
    keys[k + 3] = w3;
    keys[k + 4] = w4;
    if (++this.#size > (mask + 1) * LOAD_MAX) this.#grow();
    return false;
  }

  #grow(to?: number): void {
    const old = this.#keys;
    const cap = to ?? (this.#mask + 1) * 2;
    const keys = new Uint32Array(cap * WORDS);
    const mask = cap - 1;
    for (let k = 0; k < old.length; k += WORDS) {
      const w0 = old[k]!;
      if ((w0 | old[k + 1]! | old[k + 2]! | old[k + 3]! | old[k + 4]!) === 0) continue;
      let slot = w0 & mask;
      while ((keys[slot * WORDS]! | keys[slot * WORDS + 1]! | keys[slot * WORDS + 2]! | keys[slot * WORDS + 3]! | keys[slot * WORDS + 4]!) !== 0) {
        slot = (slot + 1) & mask;
      }
      keys.set(old.subarray(k, k + WORDS), slot * WORDS);
    }
    this.#keys = keys;
    this.#mask = mask;
  }
}

/** Big-endian 32-bit word at `off` (ids are uniformly random, so word 0 is a good hash). */
function word(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Word i (0..4) of a hex id (valid ObjectIds only). */
function hexWord(oid: ObjectId, i: number): number {
  return parseInt(oid.slice(i * 8, i * 8 + 8), 16) >>> 0;
}
