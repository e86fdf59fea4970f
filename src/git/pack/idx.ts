/**
 * Pack index version 2 (gitformat-pack, "Version 2 pack-*.idx files"): magic
 * '\377tOc', version 2, a 256-entry fanout, sorted names, CRC32s, 31-bit offsets
 * (MSB set = index into a table of 64-bit offsets), the pack checksum and a SHA-1
 * of everything before it.
 */
import { createHash } from 'node:crypto';
import { ProtocolError } from '../../core/errors.js';
import { OID_RAW_LENGTH, objectIdFromBytes, type ObjectId } from '../hash/object-id.js';

/** One object of a pack as its index records it. */
export interface IdxEntry {
  readonly oid: ObjectId;
  readonly offset: number;
  readonly crc32: number;
}

const IDX_MAGIC = 0xff744f63;
const IDX_VERSION = 2;
const FANOUT_BYTES = 256 * 4;
const HEADER_BYTES = 8 + FANOUT_BYTES;
const TRAILER_BYTES = 2 * OID_RAW_LENGTH;
/** Offsets from 2^31 on go to the 64-bit table (pack-write.c need_large_offset); MSB marks them. */
const LARGE_OFFSET = 0x80000000;
/** Length of a pack's trailer: the SHA-1 of everything before it. */
const PACK_TRAILER_BYTES = OID_RAW_LENGTH;

function corrupt(what: string): ProtocolError {
  return new ProtocolError('IDX_CORRUPT', `pack index is corrupt: ${what}`);
}

/** Options of encodeIdx. */
export interface EncodeIdxOptions {
  /**
   * Offsets above this go to the 64-bit table (default 2^31-1, the format's limit); lower
   * values exist to test readers, as `git index-pack --index-version=2,<limit>` does.
   */
  readonly off32Limit?: number;
}

/** Whether entries are already in idx order: callers that index a pack usually sort once themselves. */
function isSortedByOid(entries: readonly IdxEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1]!;
    const b = entries[i]!;
    if (a.oid > b.oid || (a.oid === b.oid && a.offset > b.offset)) return false;
  }
  return true;
}

/** Encodes an idx v2 for `entries` (any order) of the pack whose trailer is `packChecksum`. */
export function encodeIdx(entries: readonly IdxEntry[], packChecksum: ObjectId, opts: EncodeIdxOptions = {}): Uint8Array {
  const sorted = isSortedByOid(entries)
    ? entries
    : entries.slice().sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : a.offset - b.offset));
  const n = sorted.length;
  const names = Buffer.alloc(n * OID_RAW_LENGTH);
  const offsets = new Array<number>(n);
  const crc32s = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const e = sorted[i]!;
    if (names.write(e.oid, i * OID_RAW_LENGTH, OID_RAW_LENGTH, 'hex') !== OID_RAW_LENGTH || e.oid.length !== OID_RAW_LENGTH * 2) {
      throw new RangeError(`invalid object id ${e.oid}`);
    }
    offsets[i] = e.offset;
    crc32s[i] = e.crc32 >>> 0;
  }
  return encodeIdxSorted(names, offsets, crc32s, packChecksum, opts);
}

/**
 * Encodes an idx v2 from raw columns already in idx order: `names` holds n sorted 20-byte ids,
 * `offsets[k]` and `crc32s[k]` belong to names[k]. For indexers that sort raw ids themselves
 * (no id strings); same bytes as encodeIdx.
 */
export function encodeIdxSorted(
  names: Uint8Array,
  offsets: ArrayLike<number>,
  crc32s: ArrayLike<number>,
  packChecksum: ObjectId,
  opts: EncodeIdxOptions = {},
): Uint8Array {
  const limit = Math.min(opts.off32Limit ?? LARGE_OFFSET - 1, LARGE_OFFSET - 1);
  const n = offsets.length;
  if (names.length !== n * OID_RAW_LENGTH || crc32s.length !== n) throw new RangeError('idx columns differ in length');
  let large = 0;
  for (let i = 0; i < n; i++) if (offsets[i]! > limit) large++;
  const size = HEADER_BYTES + n * (OID_RAW_LENGTH + 8) + large * 8 + TRAILER_BYTES;
  const out = Buffer.alloc(size);
  out.writeUInt32BE(IDX_MAGIC, 0);
  out.writeUInt32BE(IDX_VERSION, 4);
  const namesAt = HEADER_BYTES;
  const crcAt = namesAt + n * OID_RAW_LENGTH;
  const offAt = crcAt + n * 4;
  const largeAt = offAt + n * 4;
  out.set(names, namesAt);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const fanout = new Uint32Array(256);
  let li = 0;
  for (let i = 0; i < n; i++) {
    const at = i * OID_RAW_LENGTH;
    if (i > 0 && compareRaw(names, at - OID_RAW_LENGTH, at) > 0) throw new RangeError('idx names are not sorted');
    fanout[names[at]!]!++;
    view.setUint32(crcAt + i * 4, crc32s[i]! >>> 0);
    const o = offsets[i]!;
    if (o > limit) {
      view.setUint32(offAt + i * 4, (LARGE_OFFSET | li) >>> 0);
      out.writeBigUInt64BE(BigInt(o), largeAt + li * 8);
      li++;
    } else {
      view.setUint32(offAt + i * 4, o);
    }
  }
  let total = 0;
  for (let b = 0; b < 256; b++) {
    total += fanout[b]!;
    view.setUint32(8 + b * 4, total);
  }
  const trailerAt = size - TRAILER_BYTES;
  if (out.write(packChecksum, trailerAt, OID_RAW_LENGTH, 'hex') !== OID_RAW_LENGTH) {
    throw new RangeError(`invalid pack checksum ${packChecksum}`);
  }
  createHash('sha1').update(out.subarray(0, trailerAt + OID_RAW_LENGTH)).digest().copy(out, trailerAt + OID_RAW_LENGTH);
  return out;
}

function compareRaw(b: Uint8Array, x: number, y: number): number {
  for (let k = 0; k < OID_RAW_LENGTH; k++) {
    const d = b[x + k]! - b[y + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** A decoded idx v2: lookups by id, by position and by pack offset without copying the tables. */
export class PackIndex {
  /** Number of objects in the pack. */
  readonly count: number;
  /** The trailer of the pack this index describes. */
  readonly packChecksum: ObjectId;
  readonly #bytes: Buffer;
  readonly #view: DataView;
  readonly #namesAt: number;
  readonly #crcAt: number;
  readonly #offAt: number;
  readonly #largeAt: number;
  readonly #packSize: number | undefined;
  #byOffset: Float64Array | undefined;
  #positionsByOffset: Uint32Array | undefined;

  private constructor(bytes: Buffer, count: number, largeCount: number, packSize: number | undefined) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.count = count;
    this.#namesAt = HEADER_BYTES;
    this.#crcAt = HEADER_BYTES + count * OID_RAW_LENGTH;
    this.#offAt = this.#crcAt + count * 4;
    this.#largeAt = this.#offAt + count * 4;
    this.#packSize = packSize;
    this.packChecksum = objectIdFromBytes(bytes, this.#largeAt + largeCount * 8);
  }

  /**
   * Decodes and validates an idx v2 (magic, version, fanout, sizes, offsets, trailer checksum).
   * `packSize`, if known, lets nextOffset() answer for the last entry. Throws ProtocolError('IDX_CORRUPT').
   */
  static decode(bytes: Uint8Array, packSize?: number): PackIndex {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < HEADER_BYTES + TRAILER_BYTES) throw corrupt(`${buf.length} bytes is too short`);
    if (buf.readUInt32BE(0) !== IDX_MAGIC) throw corrupt('bad signature (only idx version 2 is supported)');
    const version = buf.readUInt32BE(4);
    if (version !== IDX_VERSION) throw corrupt(`unsupported version ${version}`);
    let prev = 0;
    for (let b = 0; b < 256; b++) {
      const v = buf.readUInt32BE(8 + b * 4);
      if (v < prev) throw corrupt(`fanout decreases at ${b}`);
      prev = v;
    }
    const count = prev;
    const minSize = HEADER_BYTES + count * (OID_RAW_LENGTH + 8) + TRAILER_BYTES;
    const extra = buf.length - minSize;
    // The first entry (offset 12) never needs 64 bits, so at most count-1 do (packfile.c load_idx).
    if (extra < 0 || extra % 8 !== 0 || extra / 8 > Math.max(0, count - 1)) {
      throw corrupt(`${buf.length} bytes does not fit ${count} objects`);
    }
    const largeCount = extra / 8;
    const digest = createHash('sha1').update(buf.subarray(0, buf.length - OID_RAW_LENGTH)).digest();
    if (!digest.equals(buf.subarray(buf.length - OID_RAW_LENGTH))) throw corrupt('checksum mismatch');
    const offAt = HEADER_BYTES + count * (OID_RAW_LENGTH + 4);
    for (let i = 0; i < count; i++) {
      const v = buf.readUInt32BE(offAt + i * 4);
      if (v >= LARGE_OFFSET && v - LARGE_OFFSET >= largeCount) throw corrupt(`offset ${i} points past the 64-bit table`);
    }
    if (packSize !== undefined && count > 0) {
      // Entries are at least 2 bytes and must end before the pack's trailer.
      const idx = new PackIndex(buf, count, largeCount, packSize);
      const sorted = idx.offsetsSorted();
      if (sorted[0]! < 12 || sorted[count - 1]! > packSize - PACK_TRAILER_BYTES - 2) {
        throw corrupt(`offsets do not fit a pack of ${packSize} bytes`);
      }
      return idx;
    }
    return new PackIndex(buf, count, largeCount, packSize);
  }

  /** Position of `oid` in the sorted name table, or -1. Compares raw bytes, no allocation per step. */
  findIndex(oid: ObjectId): number {
    return this.#find(hexWord(oid, 0), hexWord(oid, 8), hexWord(oid, 16), hexWord(oid, 24), hexWord(oid, 32));
  }

  /** Position of the raw 20-byte id at `off` in `bytes`, or -1 (findIndex without a hex string). */
  findIndexRaw(bytes: Uint8Array, off: number): number {
    return this.#find(rawWord(bytes, off), rawWord(bytes, off + 4), rawWord(bytes, off + 8), rawWord(bytes, off + 12), rawWord(bytes, off + 16));
  }

  /** Binary search of the name table for the id made of five big-endian words. */
  #find(w0: number, w1: number, w2: number, w3: number, w4: number): number {
    const view = this.#view;
    const first = w0 >>> 24;
    let lo = first === 0 ? 0 : view.getUint32(8 + (first - 1) * 4);
    let hi = view.getUint32(8 + first * 4);
    if (lo >= hi) return -1;
    const names = this.#namesAt;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = names + mid * OID_RAW_LENGTH;
      let d = view.getUint32(at) - w0;
      if (d === 0) d = view.getUint32(at + 4) - w1;
      if (d === 0) d = view.getUint32(at + 8) - w2;
      if (d === 0) d = view.getUint32(at + 12) - w3;
      if (d === 0) d = view.getUint32(at + 16) - w4;
      if (d === 0) return mid;
      if (d < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  /** Pack offset of `oid`, or undefined if the pack does not hold it. */
  lookup(oid: ObjectId): number | undefined {
    const i = this.findIndex(oid);
    return i < 0 ? undefined : this.offsetAt(i);
  }

  /** True if the pack holds `oid`. */
  has(oid: ObjectId): boolean {
    return this.findIndex(oid) >= 0;
  }

  /** Id at sorted position i. */
  oidAt(i: number): ObjectId {
    this.#check(i);
    return objectIdFromBytes(this.#bytes, this.#namesAt + i * OID_RAW_LENGTH);
  }

  /** The 20 raw bytes of the id at position i (a view, not a copy). */
  oidBytesAt(i: number): Uint8Array {
    this.#check(i);
    const at = this.#namesAt + i * OID_RAW_LENGTH;
    return this.#bytes.subarray(at, at + OID_RAW_LENGTH);
  }

  /** Pack offset of the entry at position i. */
  offsetAt(i: number): number {
    this.#check(i);
    const v = this.#view.getUint32(this.#offAt + i * 4);
    if (v < LARGE_OFFSET) return v;
    const big = this.#view.getBigUint64(this.#largeAt + (v - LARGE_OFFSET) * 8);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`offset of entry ${i} is too large`);
    return Number(big);
  }

  /** CRC32 of the packed bytes of the entry at position i. */
  crc32At(i: number): number {
    this.#check(i);
    return this.#view.getUint32(this.#crcAt + i * 4);
  }

  /** All entry offsets in ascending order (computed once, then shared: do not modify); IDX_CORRUPT if two are equal. */
  offsetsSorted(): Float64Array {
    if (this.#byOffset === undefined) this.#sortByOffset();
    return this.#byOffset!;
  }

  /** Name-table positions ordered by pack offset (a reverse index; shared: do not modify). */
  positionsByOffset(): Uint32Array {
    if (this.#positionsByOffset === undefined) this.#sortByOffset();
    return this.#positionsByOffset!;
  }

  /** Name-table position of the entry starting at `offset`, or -1 (resolves ofs-delta bases). */
  findIndexByOffset(offset: number): number {
    const sorted = this.offsetsSorted();
    const k = upperBound(sorted, offset) - 1;
    return k >= 0 && sorted[k] === offset ? this.positionsByOffset()[k]! : -1;
  }

  /**
   * Offset where the entry at `offset` ends: the next entry's offset, or the start of the
   * pack trailer (packSize - 20) for the last entry. `packSize` defaults to the one given
   * to decode(); a RangeError if neither is known and the entry is the last.
   */
  nextOffset(offset: number, packSize: number | undefined = this.#packSize): number {
    const sorted = this.offsetsSorted();
    const k = upperBound(sorted, offset);
    if (k < sorted.length) return sorted[k]!;
    if (packSize === undefined) throw new RangeError('nextOffset of the last entry needs the pack size');
    return packSize - PACK_TRAILER_BYTES;
  }

  #check(i: number): void {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`index position ${i} out of range 0..${this.count - 1}`);
  }

  #sortByOffset(): void {
    const n = this.count;
    const offsets = new Float64Array(n);
    let max = 0;
    for (let i = 0; i < n; i++) {
      const o = this.offsetAt(i);
      offsets[i] = o;
      if (o > max) max = o;
    }
    // Typed-array sort without a comparator is native: sort keys offset*n+i when they stay
    // exact doubles (4x faster than a comparator), else sort offsets and rank each one.
    const sorted = new Float64Array(n);
    const order = new Uint32Array(n);
    if (max * n + n < Number.MAX_SAFE_INTEGER) {
      const keys = new Float64Array(n);
      for (let i = 0; i < n; i++) keys[i] = offsets[i]! * n + i;
      keys.sort();
      for (let k = 0; k < n; k++) {
        const key = keys[k]!;
        let o = Math.floor(key / n);
        if (o * n > key) o--;
        sorted[k] = o;
        order[k] = key - o * n;
      }
    } else {
      sorted.set(offsets);
      sorted.sort();
      for (let i = 0; i < n; i++) order[upperBound(sorted, offsets[i]!) - 1] = i;
    }
    for (let k = 1; k < n; k++) {
      if (sorted[k] === sorted[k - 1]) throw corrupt(`two objects at offset ${sorted[k]}`);
    }
    this.#byOffset = sorted;
    this.#positionsByOffset = order;
  }
}

/** The 32-bit big-endian word of 8 lowercase hex digits of `hex` at `at` (no allocation). */
/** The big-endian u32 at `at` of `bytes`. */
function rawWord(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function hexWord(hex: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = hex.charCodeAt(i);
    v = (v << 4) | (c <= 57 ? c - 48 : c - 87);
  }
  return v >>> 0;
}

/** First k with sorted[k] > value. */
function upperBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
