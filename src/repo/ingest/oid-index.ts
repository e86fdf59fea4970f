/**
 * Object id -> first pack entry holding it, for a pack being indexed: open addressing over a
 * typed array of entry numbers whose keys are the raw ids already in the entry table
 * (EntryTable.oidBytes), so the index costs 4 bytes a slot and no string or Map entry per
 * object. Also sorts the ids into idx order without strings.
 */
import { randomBytes } from 'node:crypto';
import { OID_RAW_LENGTH, type ObjectId } from '../../git/hash/object-id.js';
import { encodeIdxSorted } from '../../git/pack/idx.js';
import type { EntryTable } from './entry-table.js';

const ID = OID_RAW_LENGTH;
const INITIAL_SLOTS = 1024;
const EMPTY = -1;
/** Buckets larger than this (ids crafted to share a prefix) are sorted by comparison, not insertion. */
const INSERTION_MAX = 32;
/**
 * Slots come from a keyed mix of the first 8 bytes: ids crafted to share the bits of a plain
 * prefix hash (cheap to find for a 20-bit table) would otherwise pile into one probe run.
 */
const SEED = randomBytes(8);
const K0 = SEED.readUInt32LE(0) | 1;
const K1 = SEED.readUInt32LE(4) | 1;

/** Raw id -> entry number of the pack's first entry with that id. */
export class OidIndex {
  #slots: Int32Array;
  #mask: number;
  #shift: number;
  #size = 0;
  readonly #scratch = Buffer.alloc(ID);

  constructor(private readonly table: EntryTable, capacity = 0) {
    let n = INITIAL_SLOTS;
    while (n < capacity * 2) n *= 2;
    this.#slots = new Int32Array(n).fill(EMPTY);
    this.#mask = n - 1;
    this.#shift = 32 - Math.log2(n);
  }

  /** Ids held. */
  get size(): number {
    return this.#size;
  }

  /** Makes room for `n` ids in all, so adding them never rehashes. */
  reserve(n: number): void {
    while (n * 2 > this.#slots.length) this.#grow();
  }

  /**
   * Adds entry i (its raw id written in the table): returns -1 if the id is new (or entry i
   * itself already holds it), else the entry that holds it (i is then a duplicate, not added).
   */
  add(i: number): number {
    if ((this.#size + 1) * 2 > this.#slots.length) this.#grow();
    const ids = this.table.oidBytes;
    const slots = this.#slots;
    const mask = this.#mask;
    const off = i * ID;
    let s = slotOf(ids, off, this.#shift);
    for (;;) {
      const e = slots[s]!;
      if (e === EMPTY) {
        slots[s] = i;
        this.#size++;
        return -1;
      }
      if (e === i) return -1;
      if (sameId(ids, e * ID, ids, off)) return e;
      s = (s + 1) & mask;
    }
  }

  /** The entry holding the raw id at buf[off..off+20), or -1. */
  findRaw(buf: Uint8Array, off: number): number {
    const ids = this.table.oidBytes;
    const slots = this.#slots;
    const mask = this.#mask;
    let s = slotOf(buf, off, this.#shift);
    for (;;) {
      const e = slots[s]!;
      if (e === EMPTY) return -1;
      if (sameId(ids, e * ID, buf, off)) return e;
      s = (s + 1) & mask;
    }
  }

  /** The entry holding `oid`, or undefined. */
  get(oid: ObjectId): number | undefined {
    if (this.#scratch.write(oid, 0, ID, 'hex') !== ID) return undefined;
    const e = this.findRaw(this.#scratch, 0);
    return e < 0 ? undefined : e;
  }

  has(oid: ObjectId): boolean {
    return this.get(oid) !== undefined;
  }

  #grow(): void {
    const old = this.#slots;
    const n = old.length * 2;
    const slots = new Int32Array(n).fill(EMPTY);
    const mask = n - 1;
    const shift = 32 - Math.log2(n);
    const ids = this.table.oidBytes;
    for (let k = 0; k < old.length; k++) {
      const e = old[k]!;
      if (e === EMPTY) continue;
      let s = slotOf(ids, e * ID, shift);
      while (slots[s] !== EMPTY) s = (s + 1) & mask;
      slots[s] = e;
    }
    this.#slots = slots;
    this.#mask = mask;
    this.#shift = shift;
  }
}

/** Slot of the id at b[off] in a table of 2^(32-shift) slots (top bits of a keyed multiply). */
function slotOf(b: Uint8Array, off: number, shift: number): number {
  const w0 = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
  const w1 = (b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!;
  return (Math.imul(w0, K0) ^ Math.imul(w1 ^ (w0 >>> 15), K1)) >>> shift;
}

function sameId(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let k = 0; k < ID; k++) if (a[ao + k] !== b[bo + k]) return false;
  return true;
}

/**
 * Entry numbers 0..n-1 of the table in idx order: by raw id, equal ids by pack offset (entry
 * number, as offsets ascend with it). A counting sort on the first two bytes, then insertion
 * sort inside each bucket (a handful of entries each for uniform ids).
 */
export function sortByOid(t: EntryTable): Uint32Array {
  const n = t.count;
  const ids = t.oidBytes;
  const start = new Uint32Array(65537);
  for (let i = 0; i < n; i++) start[((ids[i * ID]! << 8) | ids[i * ID + 1]!) + 1]!++;
  for (let b = 0; b < 65536; b++) start[b + 1]! += start[b]!;
  const order = new Uint32Array(n);
  const fill = start.slice(0, 65536);
  for (let i = 0; i < n; i++) order[fill[(ids[i * ID]! << 8) | ids[i * ID + 1]!]!++] = i;
  for (let b = 0; b < 65536; b++) {
    const lo = start[b]!;
    const hi = start[b + 1]!;
    if (hi - lo > INSERTION_MAX) {
      order.subarray(lo, hi).sort((x, y) => compareEntries(ids, x, y));
      continue;
    }
    for (let k = lo + 1; k < hi; k++) {
      const x = order[k]!;
      let j = k - 1;
      while (j >= lo && compareEntries(ids, order[j]!, x) > 0) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = x;
    }
  }
  return order;
}

function compareEntries(ids: Uint8Array, a: number, b: number): number {
  const ao = a * ID;
  const bo = b * ID;
  for (let k = 2; k < ID; k++) {
    const d = ids[ao + k]! - ids[bo + k]!;
    if (d !== 0) return d;
  }
  return a - b;
}

/** The idx of the completed pack (ids sorted raw, no strings) and each entry's idx position. */
export function buildIdx(t: EntryTable, checksum: ObjectId): { idx: Uint8Array; positionOf: Int32Array } {
  const n = t.count;
  const order = sortByOid(t);
  const names = Buffer.allocUnsafe(n * 20);
  const offsets = new Float64Array(n);
  const crcs = new Uint32Array(n);
  const positionOf = new Int32Array(n);
  const ids = t.oidBytes;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    for (let b = 0; b < 20; b++) names[k * 20 + b] = ids[i * 20 + b]!;
    offsets[k] = t.offset[i]!;
    crcs[k] = t.crc32[i]!;
    positionOf[i] = k;
  }
  return { idx: encodeIdxSorted(names, offsets, crcs, checksum), positionOf };
}
