/**
 * Reachability bitmaps of one closed pack (`pack-<sha>.rbm`, next to its .pack, .idx and .rax;
 * the idea of git's pack bitmaps, in a format of our own): for selected commits, the set of
 * objects reachable from the commit, as one bit per object of the pack. Only a pack holding
 * every object reachable from those commits gets one (import, full compaction), so a set is a
 * fact about the pack's content that no later push or ref move can make wrong; readers check
 * the file against the pack and otherwise walk as if it were absent.
 *
 * Bits are in pack order (entry offset order), not idx order: pack writers put objects of the
 * same era next to each other (git writes commits newest first, then trees and blobs as a walk
 * from the tips meets them), so a commit's set is made of long runs and compresses to little,
 * where idx (hash) order would scatter it; pack-out also reads a pack in that order.
 *
 * Format, version 1. All integers little-endian.
 *
 *   header, 48 bytes
 *     0  magic "SRBM"
 *     4  u32 version (1)
 *     8  u32 object count (must equal the idx's)
 *    12  u32 flags (0; readers refuse bits they do not know)
 *    16  20-byte checksum of the pack (its trailer; binds the file to pack and idx)
 *    36  u32 entry count
 *    40  u32 DATA length in u32 words
 *    44  u32 reserved (0)
 *   entries, 16 bytes each, in the order they were computed:
 *     u32 idx position of the commit (unique), u32 XOR base (index of an EARLIER entry, or
 *     0xffffffff), u32 word offset of the bitmap's stream in DATA, u32 its length in words
 *   ORDER: count x u32, the idx position of each object in pack order (git's reverse index;
 *     readers check it against the idx's offsets, and need no sort of their own)
 *   DATA: the streams, u32 words
 *   trailer: SHA-1 of everything before it
 *
 * A stream is run-length coded over the bitmap's 32-bit words (bit i of the set is bit i%32 of
 * word i/32, ceil(count/32) words, bits past `count` clear): groups of one marker word
 * (bit 31: fill value, bits 16-30: words of that fill, bits 0-15: literal words that follow)
 * and then the literal words. An entry with an XOR base stores its set XOR the base's set
 * (neighbouring commits differ by few objects, so the difference is mostly zero runs).
 * A file whose checksum, bounds, lengths or XOR chains do not hold is corrupt.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../../core/errors.js';
import { objectIdFromBytes, type ObjectId } from '../../git/hash/object-id.js';
import { NATIVE_LE } from './format.js';

/** File name extension (store key kind) of reachability bitmaps. */
export const BITMAP_KIND = 'rbm';
export const BITMAP_VERSION = 1;
export const BITMAP_MAGIC = 0x4d425253; // "SRBM" read as a little-endian u32
export const BITMAP_HEADER_BYTES = 48;
export const BITMAP_ENTRY_BYTES = 16;
export const BITMAP_TRAILER_BYTES = 20;
export const BITMAP_NONE = 0xffffffff;
export const BITMAP_RUN_MAX = 0x7fff;
export const BITMAP_LITERAL_MAX = 0xffff;
/** Longest XOR chain a reader follows (bitmap-builder.ts keeps them much shorter). */
export const XOR_DEPTH_MAX = 64;
/** Materialised sets kept per file (a fetch's haves and a clone's wants share XOR bases). */
export const MEMO_ENTRIES = 64;

function corrupt(what: string): ValidationError {
  return new ValidationError('REPO_CORRUPT', `reachability bitmap is corrupt: ${what}`);
}

/** Words of a set over `count` objects. */
export function bitmapWords(count: number): number {
  return Math.ceil(count / 32);
}

/** A decoded file: the entry table and the streams, checked. */
export class BitmapFile {
  readonly count: number;
  /** Words of one set. */
  readonly words: number;
  readonly entryCount: number;
  readonly byteLength: number;
  /** Idx position of each object in pack order (bit k of a set is the object at order[k]). */
  readonly order: Uint32Array;
  /** Bit of each idx position (the inverse of `order`). */
  readonly rank: Uint32Array;
  readonly #table: Uint32Array;
  readonly #data: Uint32Array;
  readonly #byCommit: Map<number, number>;
  readonly #memo = new Map<number, Uint32Array>();

  private constructor(count: number, table: Uint32Array, order: Uint32Array, rank: Uint32Array, data: Uint32Array, byteLength: number) {
    this.count = count;
    this.order = order;
    this.rank = rank;
    this.words = bitmapWords(count);
    this.entryCount = table.length / 4;
    this.byteLength = byteLength;
    this.#table = table;
    this.#data = data;
    this.#byCommit = new Map();
    for (let i = 0; i < this.entryCount; i++) this.#byCommit.set(table[i * 4]!, i);
  }

  /** Bytes this file may hold in memory (the file, its lookup map, its memo of sets). */
  get memoryBytes(): number {
    return this.byteLength + this.count * 4 + this.entryCount * 64 + MEMO_ENTRIES * this.words * 4;
  }

  /**
   * Checks and decodes a file for the pack with this checksum and object count; with
   * `offsetAt` (the idx's), the pack order is checked against the offsets too. Throws
   * ValidationError('REPO_CORRUPT') when anything does not hold (callers then walk).
   */
  static decode(
    input: Uint8Array,
    expect: { readonly count: number; readonly packChecksum: ObjectId; readonly offsetAt?: (pos: number) => number },
  ): BitmapFile {
    const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (bytes.length < BITMAP_HEADER_BYTES + BITMAP_TRAILER_BYTES) throw corrupt(`${bytes.length} bytes is too short`);
    const end = bytes.length - BITMAP_TRAILER_BYTES;
    const digest = createHash('sha1').update(bytes.subarray(0, end)).digest();
    if (!digest.equals(bytes.subarray(end))) throw corrupt('checksum mismatch');
    if (bytes.readUInt32LE(0) !== BITMAP_MAGIC) throw corrupt('bad magic');
    const version = bytes.readUInt32LE(4);
    if (version !== BITMAP_VERSION) throw corrupt(`unsupported version ${version}`);
    const count = bytes.readUInt32LE(8);
    if (count !== expect.count) throw corrupt(`it describes ${count} objects, the pack has ${expect.count}`);
    if (bytes.readUInt32LE(12) !== 0) throw corrupt('unknown flags');
    if (objectIdFromBytes(bytes, 16) !== expect.packChecksum) throw corrupt('it belongs to another pack');
    const n = bytes.readUInt32LE(36);
    const dataWords = bytes.readUInt32LE(40);
    if (BITMAP_HEADER_BYTES + n * BITMAP_ENTRY_BYTES + count * 4 + dataWords * 4 !== end) throw corrupt('section lengths do not add up to the file');
    const table = u32s(bytes, BITMAP_HEADER_BYTES, n * 4);
    const orderAt = BITMAP_HEADER_BYTES + n * BITMAP_ENTRY_BYTES;
    const order = u32s(bytes, orderAt, count);
    const data = u32s(bytes, orderAt + count * 4, dataWords);
    const rank = new Uint32Array(count).fill(BITMAP_NONE);
    for (let k = 0; k < count; k++) {
      const pos = order[k]!;
      if (pos >= count || rank[pos] !== BITMAP_NONE) throw corrupt('the pack order is not a permutation of the objects');
      rank[pos] = k;
    }
    const offsetAt = expect.offsetAt;
    if (offsetAt !== undefined) {
      let prev = -1;
      for (let k = 0; k < count; k++) {
        const o = offsetAt(order[k]!);
        if (!(o > prev)) throw corrupt('the pack order does not follow the pack offsets');
        prev = o;
      }
    }
    const nw = bitmapWords(count);
    const positions = new Set<number>();
    const depth = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const pos = table[i * 4]!;
      const base = table[i * 4 + 1]!;
      const off = table[i * 4 + 2]!;
      const len = table[i * 4 + 3]!;
      if (pos >= count) throw corrupt(`entry ${i} names position ${pos} of ${count}`);
      if (positions.has(pos)) throw corrupt(`position ${pos} has two entries`);
      positions.add(pos);
      if (base !== BITMAP_NONE) {
        if (base >= i) throw corrupt(`entry ${i} is based on entry ${base}, which is not earlier`);
        if (depth[base]! + 1 > XOR_DEPTH_MAX) throw corrupt(`entry ${i} has an XOR chain longer than ${XOR_DEPTH_MAX}`);
        depth[i] = depth[base]! + 1;
      }
      if (off > dataWords || len > dataWords - off) throw corrupt(`stream of entry ${i} is out of bounds`);
      checkStream(data, off, len, nw, count, i);
    }
    return new BitmapFile(count, table, order, rank, data, bytes.length);
  }

  /** The entry of the commit at idx position `pos`, or -1. */
  entryOf(pos: number): number {
    return this.#byCommit.get(pos) ?? -1;
  }

  /** The commit (idx position) of entry `i`. */
  commitAt(i: number): number {
    return this.#table[i * 4]!;
  }

  /** ORs the set of entry `i` into `target` (`words` words). */
  orInto(i: number, target: Uint32Array): void {
    const base = this.#table[i * 4 + 1]!;
    const hit = this.#memo.get(i);
    if (hit === undefined && base === BITMAP_NONE) {
      // A plain set: OR its code in directly, nothing to materialise.
      applyStream(this.#data, this.#table[i * 4 + 2]!, this.#table[i * 4 + 3]!, target, 'or');
      return;
    }
    const set = hit ?? this.read(i);
    for (let k = 0; k < set.length; k++) target[k] = (target[k]! | set[k]!) >>> 0;
  }

  /** The set of entry `i` (shared: do not modify). */
  read(i: number): Uint32Array {
    const hit = this.#memo.get(i);
    if (hit !== undefined) {
      this.#memo.delete(i);
      this.#memo.set(i, hit);
      return hit;
    }
    const base = this.#table[i * 4 + 1]!;
    const out = base === BITMAP_NONE ? new Uint32Array(this.words) : this.read(base).slice();
    applyStream(this.#data, this.#table[i * 4 + 2]!, this.#table[i * 4 + 3]!, out, base !== BITMAP_NONE ? 'xor' : 'set');
    this.#memo.set(i, out);
    if (this.#memo.size > MEMO_ENTRIES) this.#memo.delete(this.#memo.keys().next().value!);
    return out;
  }
}

/** `n` little-endian u32s at `off`, copied into their own (aligned) array. */
function u32s(bytes: Buffer, off: number, n: number): Uint32Array {
  if (NATIVE_LE) return new Uint32Array(bytes.buffer.slice(bytes.byteOffset + off, bytes.byteOffset + off + n * 4));
  const out = new Uint32Array(n);
  for (let k = 0; k < n; k++) out[k] = bytes.readUInt32LE(off + k * 4);
  return out;
}

/** Checks that a stream decodes to exactly `nw` words with no bit set past `count`. */
function checkStream(data: Uint32Array, off: number, len: number, nw: number, count: number, entry: number): void {
  let k = off;
  const end = off + len;
  let words = 0;
  let last = 0;
  while (k < end) {
    const m = data[k++]!;
    const run = (m >>> 16) & BITMAP_RUN_MAX;
    const lit = m & BITMAP_LITERAL_MAX;
    if (lit > end - k) throw corrupt(`stream of entry ${entry} is truncated`);
    words += run + lit;
    if (words > nw) throw corrupt(`stream of entry ${entry} is longer than ${nw} words`);
    if (lit > 0) last = data[k + lit - 1]!;
    else if (run > 0) last = m >>> 31 === 1 ? 0xffffffff : 0;
    k += lit;
  }
  if (words !== nw) throw corrupt(`stream of entry ${entry} has ${words} words, expected ${nw}`);
  // Bits past the object count: none in a set, so none in a difference of two sets either.
  const tail = count % 32;
  if (nw > 0 && tail !== 0 && last >>> tail !== 0) throw corrupt(`entry ${entry} sets bits past the last object`);
}

/** How a decoded stream combines with the words already in `out`. */
export type StreamOp = 'set' | 'xor' | 'or';

/**
 * Decodes a checked stream into `out` (which has the set's words): `set` writes it (runs of
 * zeros leave `out` as it is: callers start from zeros), `xor` XORs it in, `or` ORs it in.
 */
export function applyStream(data: Uint32Array, off: number, len: number, out: Uint32Array, op: StreamOp): void {
  let k = off;
  const end = off + len;
  let o = 0;
  while (k < end) {
    const m = data[k++]!;
    const run = (m >>> 16) & BITMAP_RUN_MAX;
    const lit = m & BITMAP_LITERAL_MAX;
    if (m >>> 31 === 1) {
      if (op === 'xor') for (let j = o; j < o + run; j++) out[j] = ~out[j]! >>> 0;
      else out.fill(0xffffffff, o, o + run);
    }
    o += run;
    if (op === 'set') out.set(data.subarray(k, k + lit), o);
    else if (op === 'xor') for (let j = 0; j < lit; j++) out[o + j] = (out[o + j]! ^ data[k + j]!) >>> 0;
    else for (let j = 0; j < lit; j++) out[o + j] = (out[o + j]! | data[k + j]!) >>> 0;
    o += lit;
    k += lit;
  }
}
