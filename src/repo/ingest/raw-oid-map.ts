/**
 * A hash map from raw 20-byte object ids to a small non-zero number, with open addressing
 * over typed arrays: looking up the id inside a tree entry needs no string or allocation.
 * Link checks visit every entry of every pushed tree (tens of millions for a big import),
 * so this is where a Map of hex strings spent most of its time.
 */
import type { ObjectId } from '../../git/hash/object-id.js';

const ID = 20;
const INITIAL_CAPACITY = 1024;

/** Raw id -> value in 1..255. */
export class RawOidMap {
  #mask: number;
  #keys: Buffer;
  #vals: Uint8Array;
  #size = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    let cap = INITIAL_CAPACITY;
    while (cap * 3 < capacity * 4) cap *= 2;
    this.#mask = cap - 1;
    this.#keys = Buffer.alloc(cap * ID);
    this.#vals = new Uint8Array(cap);
  }

  /** Number of ids held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Inserts the id at buf[off..off+20) with `value` unless present; returns the value that was
   * there before (0 if the id is new).
   */
  setIfAbsent(buf: Uint8Array, off: number, value: number): number {
    if ((this.#size + 1) * 4 > this.#vals.length * 3) this.#grow();
    const keys = this.#keys;
    const vals = this.#vals;
    const mask = this.#mask;
    let slot = hashAt(buf, off) & mask;
    for (;;) {
      const v = vals[slot]!;
      if (v === 0) {
        keys.set(buf.subarray(off, off + ID), slot * ID);
        vals[slot] = value;
        this.#size++;
        return 0;
      }
      if (sameId(keys, slot * ID, buf, off)) return v;
      slot = (slot + 1) & mask;
    }
  }

  /** Makes room for `n` ids in all, so adding them never rehashes. */
  reserve(n: number): void {
    while ((n + 1) * 4 > this.#vals.length * 3) this.#grow();
  }

  /** Inserts a hex id (see setIfAbsent). */
  setIfAbsentHex(oid: ObjectId, value: number): number {
    return this.setIfAbsent(Buffer.from(oid, 'hex'), 0, value);
  }

  /** The table's raw slots (ids and values; value 0 = empty slot), e.g. to post to another thread. */
  raw(): { readonly keys: Uint8Array; readonly vals: Uint8Array } {
    return { keys: this.#keys, vals: this.#vals };
  }

  /** Every (hex id, value) pair, in no particular order. */
  *entries(): Generator<[ObjectId, number]> {
    const vals = this.#vals;
    for (let slot = 0; slot < vals.length; slot++) {
      const v = vals[slot]!;
      if (v !== 0) yield [this.#keys.toString('hex', slot * ID, slot * ID + ID) as ObjectId, v];
    }
  }

  #grow(): void {
    const oldKeys = this.#keys;
    const oldVals = this.#vals;
    const cap = oldVals.length * 2;
    this.#mask = cap - 1;
    this.#keys = Buffer.alloc(cap * ID);
    this.#vals = new Uint8Array(cap);
    this.#size = 0;
    for (let slot = 0; slot < oldVals.length; slot++) {
      const v = oldVals[slot]!;
      if (v !== 0) this.setIfAbsent(oldKeys, slot * ID, v);
    }
  }
}

/** Ids are uniform: their first four bytes are a good hash. */
function hashAt(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

function sameId(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let k = 0; k < ID; k++) if (a[ao + k] !== b[bo + k]) return false;
  return true;
}
