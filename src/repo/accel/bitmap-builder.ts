/**
 * Builds a reachability bitmap file (bitmap-format.ts) one set at a time. Each set is encoded
 * when it is added, as it is or XORed with one of the last few sets (whichever codes
 * smallest), and only those few stay whole in memory: a writer that must OR earlier sets into
 * later ones (every commit's set holds its ancestors') reads them back from their code, so a
 * large history costs its compressed size, not a raw set per commit.
 */
import { createHash } from 'node:crypto';
import type { ObjectId } from '../../git/hash/object-id.js';
import {
  applyStream,
  bitmapWords,
  BITMAP_ENTRY_BYTES,
  BITMAP_HEADER_BYTES,
  BITMAP_LITERAL_MAX,
  BITMAP_MAGIC,
  BITMAP_NONE,
  BITMAP_RUN_MAX,
  BITMAP_TRAILER_BYTES,
  BITMAP_VERSION,
  MEMO_ENTRIES,
} from './bitmap-format.js';

/** Longest XOR chain the builder makes: reading one set then costs a few passes at most. */
const XOR_DEPTH_WRITE = 6;
/** Earlier sets tried as XOR bases (the most recent ones, kept whole). */
const XOR_CANDIDATES = 8;

/** A growable array of u32 words. */
class Words {
  arr = new Uint32Array(1024);
  length = 0;

  push(v: number): void {
    if (this.length === this.arr.length) {
      const next = new Uint32Array(this.arr.length * 2);
      next.set(this.arr);
      this.arr = next;
    }
    this.arr[this.length++] = v;
  }
}

/** Appends the run-length code of `w` (or of `w ^ base`) to `out`; returns its length in words. */
function encodeStream(w: Uint32Array, base: Uint32Array | undefined, out: Words | undefined): number {
  const n = w.length;
  const at = (i: number): number => (base === undefined ? w[i]! : (w[i]! ^ base[i]!) >>> 0);
  let size = 0;
  let i = 0;
  while (i < n) {
    const first = at(i);
    let fill = 0;
    let run = 0;
    if (first === 0 || first === 0xffffffff) {
      fill = first === 0 ? 0 : 1;
      while (i < n && run < BITMAP_RUN_MAX && at(i) === first) {
        run++;
        i++;
      }
    }
    const litFrom = i;
    let lit = 0;
    while (i < n && lit < BITMAP_LITERAL_MAX) {
      const v = at(i);
      // A literal run ends where a fill of at least two words starts.
      if ((v === 0 || v === 0xffffffff) && i + 1 < n && at(i + 1) === v) break;
      lit++;
      i++;
    }
    size += 1 + lit;
    if (out !== undefined) {
      out.push(((fill << 31) | (run << 16) | lit) >>> 0);
      for (let k = litFrom; k < litFrom + lit; k++) out.push(at(k));
    }
  }
  return size;
}

/** Collects sets for a pack of `count` objects, then writes the file. */
export class BitmapFileBuilder {
  readonly count: number;
  readonly words: number;
  readonly #data = new Words();
  /** Per entry: commit position, XOR base (or BITMAP_NONE), stream offset, stream length. */
  readonly #table: number[] = [];
  readonly #depth: number[] = [];
  readonly #byCommit = new Map<number, number>();
  /** The most recent sets, whole (XOR candidates). */
  readonly #recent: { readonly entry: number; readonly bits: Uint32Array }[] = [];
  readonly #memo = new Map<number, Uint32Array>();

  constructor(count: number) {
    this.count = count;
    this.words = bitmapWords(count);
  }

  get entryCount(): number {
    return this.#depth.length;
  }

  /** Adds the set of the commit at idx position `commitPos` (bits in pack order; kept by reference). */
  add(commitPos: number, bits: Uint32Array): void {
    if (bits.length !== this.words) throw new RangeError(`a set has ${bits.length} words, expected ${this.words}`);
    if (!(Number.isInteger(commitPos) && commitPos >= 0 && commitPos < this.count) || this.#byCommit.has(commitPos)) {
      throw new RangeError(`bad or repeated commit position ${commitPos}`);
    }
    const i = this.entryCount;
    let best = encodeStream(bits, undefined, undefined);
    let base: { readonly entry: number; readonly bits: Uint32Array } | undefined;
    for (const r of this.#recent) {
      if (this.#depth[r.entry]! >= XOR_DEPTH_WRITE) continue;
      const size = encodeStream(bits, r.bits, undefined);
      if (size < best) {
        best = size;
        base = r;
      }
    }
    this.#depth.push(base === undefined ? 0 : this.#depth[base.entry]! + 1);
    const from = this.#data.length;
    encodeStream(bits, base?.bits, this.#data);
    this.#table.push(commitPos, base === undefined ? BITMAP_NONE : base.entry, from, this.#data.length - from);
    this.#byCommit.set(commitPos, i);
    this.#recent.push({ entry: i, bits });
    if (this.#recent.length > XOR_CANDIDATES) this.#recent.shift();
  }

  /** ORs the set added for `commitPos` into `target`; false when there is none. */
  orInto(commitPos: number, target: Uint32Array): boolean {
    const i = this.#byCommit.get(commitPos);
    if (i === undefined) return false;
    const set = this.#read(i);
    for (let k = 0; k < set.length; k++) target[k] = (target[k]! | set[k]!) >>> 0;
    return true;
  }

  #read(i: number): Uint32Array {
    const recent = this.#recent.find((r) => r.entry === i);
    if (recent !== undefined) return recent.bits;
    const hit = this.#memo.get(i);
    if (hit !== undefined) return hit;
    const t = this.#table;
    const base = t[i * 4 + 1]!;
    const out = base === BITMAP_NONE ? new Uint32Array(this.words) : this.#read(base).slice();
    applyStream(this.#data.arr, t[i * 4 + 2]!, t[i * 4 + 3]!, out, base !== BITMAP_NONE ? 'xor' : 'set');
    this.#memo.set(i, out);
    if (this.#memo.size > MEMO_ENTRIES) this.#memo.delete(this.#memo.keys().next().value!);
    return out;
  }

  /** The file, for the pack with this checksum whose idx positions in pack order are `order`. */
  finish(packChecksum: ObjectId, order: Uint32Array): Uint8Array {
    const count = this.count;
    if (order.length !== count) throw new RangeError(`pack order has ${order.length} positions, expected ${count}`);
    const n = this.entryCount;
    const dataWords = this.#data.length;
    const out = Buffer.alloc(BITMAP_HEADER_BYTES + n * BITMAP_ENTRY_BYTES + count * 4 + dataWords * 4 + BITMAP_TRAILER_BYTES);
    out.writeUInt32LE(BITMAP_MAGIC, 0);
    out.writeUInt32LE(BITMAP_VERSION, 4);
    out.writeUInt32LE(count, 8);
    out.writeUInt32LE(0, 12);
    if (out.write(packChecksum, 16, 20, 'hex') !== 20) throw new RangeError('bad pack checksum');
    out.writeUInt32LE(n, 36);
    out.writeUInt32LE(dataWords, 40);
    let o = BITMAP_HEADER_BYTES;
    for (const v of this.#table) o = out.writeUInt32LE(v, o);
    for (const v of order) o = out.writeUInt32LE(v, o);
    for (let k = 0; k < dataWords; k++) o = out.writeUInt32LE(this.#data.arr[k]!, o);
    createHash('sha1').update(out.subarray(0, o)).digest().copy(out, o);
    return out;
  }
}

/** One set to write: the commit's idx position and its bits in pack order. */
export interface BitmapEntryInput {
  readonly commitPos: number;
  readonly bits: Uint32Array;
}

/**
 * Encodes a whole file at once for a pack of `count` objects whose idx positions in pack order
 * are `order`; entries in computation order (commit positions unique).
 */
export function encodeBitmapFile(input: {
  readonly count: number;
  readonly packChecksum: ObjectId;
  readonly order: Uint32Array;
  readonly entries: readonly BitmapEntryInput[];
}): Uint8Array {
  const b = new BitmapFileBuilder(input.count);
  for (const e of input.entries) b.add(e.commitPos, e.bits);
  return b.finish(input.packChecksum, input.order);
}
