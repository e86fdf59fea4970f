/**
 * Writes the accelerator file whose format format.ts describes: positions may be filled in any
 * order; external ids are deduplicated; sections are laid out 4-byte aligned with a SHA-1
 * trailer.
 */
import { createHash } from 'node:crypto';
import { OID_RAW_LENGTH, type ObjectId } from '../../git/hash/object-id.js';
import {
  ACCEL_COUNT_MAX,
  ACCEL_VERSION,
  EXT_BIT,
  FLAG_SELF_CONTAINED,
  HEADER_BYTES,
  MAGIC,
  NATIVE_LE,
  NONE,
  SECTION_BIG,
  SECTION_CHAINS,
  SECTION_DATA,
  SECTION_ENTRY_BYTES,
  SECTION_EXT,
  SECTION_RECORD,
  SECTION_SIZES,
  SECTION_TYPES,
  TRAILER_BYTES,
} from './format.js';

/**
 * Builds an accelerator file; positions may be filled in any order. Records are either added
 * (addCommit, addTree: the writer keeps their words) or only reserved (reserve: the caller
 * writes their words straight into the finished file, through finish's `fill`), not both.
 */
export class AccelWriter {
  readonly count: number;
  readonly types: Uint8Array;
  readonly #sizes: Uint32Array;
  readonly #big: number[] = [];
  readonly #record: Uint32Array;
  #data: Uint32Array | undefined;
  #words = 0;
  /** Words of the data section to allocate at the first added record. */
  readonly #dataHint: number;
  #reserved = false;
  readonly #ext = new Map<string, number>();
  readonly #extBytes: Uint8Array[] = [];
  readonly #checksum: ObjectId;
  readonly #flags: number;
  /** The pack's longest delta chain (CHAINS section); not written when undefined. */
  longestChain: number | undefined;

  /** `dataWords`: the data section's size in words, when known, so it is allocated once. */
  constructor(count: number, packChecksum: ObjectId, selfContained: boolean, dataWords?: number) {
    if (!(Number.isInteger(count) && count >= 0 && count <= ACCEL_COUNT_MAX)) throw new RangeError(`invalid object count ${count}`);
    this.count = count;
    this.types = new Uint8Array(count);
    this.#sizes = new Uint32Array(count);
    this.#record = new Uint32Array(count).fill(NONE);
    this.#dataHint = dataWords ?? Math.max(1024, count * 4);
    this.#checksum = packChecksum;
    this.#flags = selfContained ? FLAG_SELF_CONTAINED : 0;
  }

  /** Type code and inflated size of the object at `pos`. */
  setObject(pos: number, type: number, size: number): void {
    this.types[pos] = type;
    if (size >= NONE) {
      this.#sizes[pos] = NONE;
      this.#big.push(pos, size % 2 ** 32, Math.floor(size / 2 ** 32));
    } else {
      this.#sizes[pos] = size;
    }
  }

  /** A ref to an object outside the pack (deduplicated). */
  extRef(raw: Uint8Array, off: number): number {
    const key = Buffer.from(raw.buffer, raw.byteOffset + off, OID_RAW_LENGTH).toString('latin1');
    let i = this.#ext.get(key);
    if (i === undefined) {
      i = this.#extBytes.length;
      if (i >= ACCEL_COUNT_MAX) throw new RangeError('too many external ids');
      this.#ext.set(key, i);
      this.#extBytes.push(Uint8Array.from(raw.subarray(off, off + OID_RAW_LENGTH)));
    }
    return (EXT_BIT | i) >>> 0;
  }

  /** The record of the commit at `pos`. */
  addCommit(pos: number, time: number, tree: number, parents: ArrayLike<number>): void {
    const w = this.#alloc(pos, 4 + parents.length);
    const d = this.#data!;
    const t = Math.trunc(time);
    d[w] = t % 2 ** 32 >>> 0;
    d[w + 1] = Math.floor(t / 2 ** 32) >>> 0;
    d[w + 2] = tree;
    d[w + 3] = parents.length;
    for (let k = 0; k < parents.length; k++) d[w + 4 + k] = parents[k]!;
  }

  /**
   * The record of the tree at `pos`: `added` holds [index, ref, meta] triples with a base,
   * [ref, meta] pairs without (then `removed` must be empty); `removed` holds triples.
   */
  addTree(pos: number, base: number | undefined, removed: ArrayLike<number>, added: ArrayLike<number>): void {
    const stride = base === undefined ? 2 : 3;
    if (added.length % stride !== 0 || removed.length % 3 !== 0) throw new RangeError('entries do not fit the stride');
    if (base === undefined && removed.length > 0) throw new RangeError('a tree without a base removes nothing');
    const w = this.#alloc(pos, 3 + removed.length + added.length);
    const d = this.#data!;
    d[w] = base ?? NONE;
    d[w + 1] = removed.length / 3;
    d[w + 2] = added.length / stride;
    for (let k = 0; k < removed.length; k++) d[w + 3 + k] = removed[k]!;
    const a = w + 3 + removed.length;
    for (let k = 0; k < added.length; k++) d[a + k] = added[k]!;
  }

  /**
   * Places the record of `pos`, `words` words long, after the records placed so far and returns
   * its first word; finish's `fill` writes it.
   */
  reserve(pos: number, words: number): number {
    if (this.#data !== undefined) throw new RangeError('records were added: reserve cannot be mixed with addCommit/addTree');
    this.#reserved = true;
    return this.#place(pos, words);
  }

  #alloc(pos: number, words: number): number {
    if (this.#reserved) throw new RangeError('records were reserved: addCommit/addTree cannot be mixed with reserve');
    let d = this.#data ?? (this.#data = new Uint32Array(Math.max(this.#dataHint, words)));
    if (this.#words + words > d.length) {
      const next = new Uint32Array(Math.max(d.length * 2, this.#words + words));
      next.set(d.subarray(0, this.#words));
      this.#data = d = next;
    }
    return this.#place(pos, words);
  }

  #place(pos: number, words: number): number {
    if (this.#record[pos] !== NONE) throw new RangeError(`position ${pos} already has a record`);
    const w = this.#words;
    this.#record[pos] = w;
    this.#words += words;
    return w;
  }

  /**
   * The finished file. After reserve, `fill` gets the data section (every reserved word, in
   * little-endian order, zeroed) to write before the checksum is taken: the file is the only
   * copy of the data made.
   */
  finish(fill?: (data: Uint8Array) => void): Uint8Array {
    if (this.#reserved && fill === undefined) throw new RangeError('reserved records need a fill function');
    const big = Uint32Array.from(this.#big);
    const dataBytes = this.#words * 4;
    const data = this.#reserved ? undefined : le((this.#data ?? new Uint32Array(0)).subarray(0, this.#words));
    // [section id, bytes (undefined: the data section, filled in place), length]
    const sections: [number, Uint8Array | undefined, number][] = [
      [SECTION_TYPES, this.types, this.types.byteLength],
      [SECTION_SIZES, le(this.#sizes), this.#sizes.byteLength],
      [SECTION_BIG, le(big), big.byteLength],
      [SECTION_RECORD, le(this.#record), this.#record.byteLength],
      [SECTION_DATA, data, dataBytes],
    ];
    const ext = Buffer.concat(this.#extBytes);
    sections.push([SECTION_EXT, ext, ext.byteLength]);
    if (this.longestChain !== undefined) sections.push([SECTION_CHAINS, le(Uint32Array.of(this.longestChain)), 4]);
    let size = HEADER_BYTES + sections.length * SECTION_ENTRY_BYTES;
    const at: number[] = [];
    for (const [, , length] of sections) {
      at.push(size);
      size += align4(length);
    }
    if (size + TRAILER_BYTES > 0xffffffff) throw new RangeError('accelerator larger than 4 GiB');
    const out = Buffer.alloc(size + TRAILER_BYTES);
    out.writeUInt32LE(MAGIC, 0);
    out.writeUInt32LE(ACCEL_VERSION, 4);
    out.writeUInt32LE(this.count, 8);
    out.writeUInt32LE(this.#flags, 12);
    out.write(this.#checksum, 16, OID_RAW_LENGTH, 'hex');
    out.writeUInt32LE(sections.length, 36);
    sections.forEach(([id, bytes, length], k) => {
      const e = HEADER_BYTES + k * SECTION_ENTRY_BYTES;
      out.writeUInt32LE(id, e);
      out.writeUInt32LE(at[k]!, e + 8);
      out.writeUInt32LE(length, e + 12);
      if (bytes !== undefined) out.set(bytes, at[k]!);
      else fill!(out.subarray(at[k]!, at[k]! + length));
    });
    createHash('sha1').update(out.subarray(0, size)).digest().copy(out, size);
    return out;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** The bytes of a word array in little-endian order. */
function le(a: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (NATIVE_LE) return bytes;
  const out = Buffer.from(bytes);
  out.swap32();
  return out;
}
