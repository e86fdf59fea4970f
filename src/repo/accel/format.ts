/**
 * The reachability accelerator of one pack (`pack-<sha>.rax`, next to its .pack and .idx;
 * DESIGN.md section 6): what walks need of every object, so counting and negotiation never
 * inflate commits or trees. Immutable, written once per pack (ingest, later compaction).
 *
 * Format, version 1. All integers little-endian; sections start on 4-byte boundaries.
 *
 *   header, 48 bytes
 *     0  magic "SRAX"
 *     4  u32 version (1)
 *     8  u32 object count (must equal the idx's)
 *    12  u32 flags: bit 0 = self-contained (every delta base of the pack is in the pack)
 *    16  20-byte checksum of the pack (its trailer; binds the file to pack and idx)
 *    36  u32 section count
 *    40  8 reserved bytes (zero)
 *   section table: per section 16 bytes: u32 id, u32 reserved, u32 offset, u32 length
 *   sections (ids unique; readers skip ids they do not know):
 *     1 TYPES   count x u8: object type code (1 commit, 2 tree, 3 blob, 4 tag), by idx position
 *     2 SIZES   count x u32: inflated size; 0xffffffff = in BIG
 *     3 BIG     k x (u32 position, u32 size low, u32 size high)
 *     4 RECORD  count x u32: word offset of the object's record in DATA; 0xffffffff = none
 *     5 DATA    u32 words, one record per commit and tree (a missing record means "read it"):
 *        commit: time low, time high (two's complement), tree ref, parent count, parent refs...
 *        tree:   base (idx position of a tree, or 0xffffffff), removed count, added count,
 *                per removed entry (index in the base's entries, tree order), ref, meta,
 *                then per added entry (index in this tree's entries, tree order; only when
 *                there is a base), ref, meta
 *     6 EXT     m x 20 bytes: ids of objects outside this pack
 *     7 CHAINS  u32: the longest delta chain in the pack (deltas between an object and the
 *               whole object at the bottom of its chain; 0 without deltas). Optional: files
 *               without it say nothing about chains (pack-out then checks them entry by entry)
 *   trailer: SHA-1 of everything before it
 *
 * A ref is an idx position of this pack (bit 31 clear) or, with bit 31 set, an index into EXT.
 * A tree entry's meta is its name's hash (git's pack_name_hash of the name alone) with the low
 * two bits replaced by its kind: 0 tree, 1 blob (any file mode), 2 gitlink (submodule commit).
 * A tree with a base lists only its difference from the base (like the pack's delta: bases are
 * the pack's delta bases), so the file stays small where trees are large and change little;
 * its whole entry list is the base's, minus the removed, with the added put at their indexes.
 * The difference is symmetric (removed entries are listed whole), so a walk that has seen
 * either side of a tree/base pair reads only the difference to visit the other.
 * A file whose checksum, bounds or counts do not hold is corrupt; readers then inflate.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { ValidationError } from '../../core/errors.js';
import { OID_RAW_LENGTH, objectIdFromBytes, type ObjectId } from '../../git/hash/object-id.js';

/** File name extension (store key kind) of the accelerator. */
export const ACCEL_KIND = 'rax';
export const ACCEL_VERSION = 1;
export const MAGIC = 0x58415253; // "SRAX" read as a little-endian u32
export const HEADER_BYTES = 48;
export const SECTION_ENTRY_BYTES = 16;
export const TRAILER_BYTES = 20;
/** "No value" in u32 fields (sizes, record offsets, tree bases). */
export const NONE = 0xffffffff;
/** Bit of a ref that marks an EXT index. */
export const EXT_BIT = 0x80000000;
/** Largest object count and section size the format holds (refs keep bit 31 for EXT). */
export const ACCEL_COUNT_MAX = 0x7fffffff;

export const SECTION_TYPES = 1;
export const SECTION_SIZES = 2;
export const SECTION_BIG = 3;
export const SECTION_RECORD = 4;
export const SECTION_DATA = 5;
export const SECTION_EXT = 6;
export const SECTION_CHAINS = 7;

export const FLAG_SELF_CONTAINED = 1;

/** Kinds of tree entries in meta's low bits. */
export const KIND_TREE = 0;
export const KIND_BLOB = 1;
export const KIND_GITLINK = 2;

/** A commit as its record says. */
export interface AccelCommit {
  readonly time: number;
  readonly tree: number;
  readonly parents: readonly number[];
}

/** A tree record: views into DATA (do not modify). */
export interface AccelTree {
  /** Idx position of the base tree, or undefined for a tree listed whole. */
  readonly base: number | undefined;
  /** Per base entry not in this tree: [index in the base, ref, meta]. */
  readonly removed: Uint32Array;
  /** Per added entry: [index, ref, meta] with a base, [ref, meta] without. */
  readonly added: Uint32Array;
  /** Words per added entry: 3 with a base, 2 without. */
  readonly stride: 2 | 3;
}

function corrupt(what: string): ValidationError {
  return new ValidationError('REPO_CORRUPT', `reachability accelerator is corrupt: ${what}`);
}

/** True if this machine reads the format's little-endian words natively. */
export const NATIVE_LE = endianness() === 'LE';

/** A decoded accelerator: typed views over the file's bytes. */
export class AccelFile {
  readonly count: number;
  readonly selfContained: boolean;
  readonly byteLength: number;
  /** The CHAINS section's longest delta chain; undefined when the file has none. */
  readonly longestChain: number | undefined;
  readonly #types: Uint8Array;
  readonly #sizes: Uint32Array;
  readonly #big: Uint32Array;
  readonly #record: Uint32Array;
  readonly #data: Uint32Array;
  readonly #ext: Uint8Array;
  #bigMap: Map<number, number> | undefined;
  #childStart: Int32Array | undefined;
  #childList: Int32Array | undefined;
  #checked: Uint8Array | undefined;
  /** Per pack index (see memoFor). */
  readonly #positionsIn = new WeakMap<object, Int32Array>();

  private constructor(count: number, flags: number, byteLength: number, s: Map<number, Uint8Array>) {
    this.count = count;
    this.selfContained = (flags & FLAG_SELF_CONTAINED) !== 0;
    this.byteLength = byteLength;
    this.#types = s.get(SECTION_TYPES)!;
    this.#sizes = words(s.get(SECTION_SIZES)!);
    this.#big = words(s.get(SECTION_BIG)!);
    this.#record = words(s.get(SECTION_RECORD)!);
    this.#data = words(s.get(SECTION_DATA)!);
    this.#ext = s.get(SECTION_EXT)!;
    const chains = s.get(SECTION_CHAINS);
    this.longestChain = chains === undefined ? undefined : words(chains)[0];
  }

  /**
   * Checks and decodes a file for the pack with this checksum and object count. Throws
   * ValidationError('REPO_CORRUPT') when anything does not hold (callers then inflate).
   */
  static decode(input: Uint8Array, expect: { readonly count: number; readonly packChecksum: ObjectId }): AccelFile {
    if (!NATIVE_LE) throw corrupt('this machine is big-endian; accelerators are read natively only on little-endian machines');
    // Views need 4-byte alignment: copy the rare unaligned input.
    const bytes = input.byteOffset % 4 === 0 ? Buffer.from(input.buffer, input.byteOffset, input.byteLength) : Buffer.from(input);
    if (bytes.length < HEADER_BYTES + TRAILER_BYTES) throw corrupt(`${bytes.length} bytes is too short`);
    const end = bytes.length - TRAILER_BYTES;
    const digest = createHash('sha1').update(bytes.subarray(0, end)).digest();
    if (!digest.equals(bytes.subarray(end))) throw corrupt('checksum mismatch');
    if (bytes.readUInt32LE(0) !== MAGIC) throw corrupt('bad magic');
    const version = bytes.readUInt32LE(4);
    if (version !== ACCEL_VERSION) throw corrupt(`unsupported version ${version}`);
    const count = bytes.readUInt32LE(8);
    if (count !== expect.count) throw corrupt(`it describes ${count} objects, the pack has ${expect.count}`);
    if (objectIdFromBytes(bytes, 16) !== expect.packChecksum) throw corrupt('it belongs to another pack');
    const n = bytes.readUInt32LE(36);
    if (HEADER_BYTES + n * SECTION_ENTRY_BYTES > end) throw corrupt(`section table of ${n} entries does not fit`);
    const sections = new Map<number, Uint8Array>();
    for (let k = 0; k < n; k++) {
      const e = HEADER_BYTES + k * SECTION_ENTRY_BYTES;
      const id = bytes.readUInt32LE(e);
      const off = bytes.readUInt32LE(e + 8);
      const len = bytes.readUInt32LE(e + 12);
      if (off % 4 !== 0 || off < HEADER_BYTES + n * SECTION_ENTRY_BYTES || off + len > end) throw corrupt(`section ${id} is out of bounds`);
      if (sections.has(id)) throw corrupt(`section ${id} appears twice`);
      sections.set(id, bytes.subarray(off, off + len));
    }
    const need: [number, number | undefined][] = [
      [SECTION_TYPES, count],
      [SECTION_SIZES, count * 4],
      [SECTION_BIG, undefined],
      [SECTION_RECORD, count * 4],
      [SECTION_DATA, undefined],
      [SECTION_EXT, undefined],
    ];
    for (const [id, len] of need) {
      const s = sections.get(id);
      if (s === undefined) throw corrupt(`section ${id} is missing`);
      if (len !== undefined && s.length !== len) throw corrupt(`section ${id} has ${s.length} bytes, expected ${len}`);
    }
    if (sections.get(SECTION_BIG)!.length % 12 !== 0 || sections.get(SECTION_DATA)!.length % 4 !== 0 || sections.get(SECTION_EXT)!.length % OID_RAW_LENGTH !== 0) {
      throw corrupt('a section has a partial element');
    }
    const chains = sections.get(SECTION_CHAINS);
    if (chains !== undefined && chains.length !== 4) throw corrupt(`section ${SECTION_CHAINS} has ${chains.length} bytes, expected 4`);
    return new AccelFile(count, bytes.readUInt32LE(12), bytes.length, sections);
  }

  /** Type code (1..4) at `pos`, 0 if unknown. */
  typeAt(pos: number): number {
    return this.#types[pos] ?? 0;
  }

  /** Inflated size of the object at `pos`. */
  sizeAt(pos: number): number {
    const s = this.#sizes[pos]!;
    if (s !== NONE) return s;
    if (this.#bigMap === undefined) {
      const m = new Map<number, number>();
      const b = this.#big;
      for (let k = 0; k + 2 < b.length; k += 3) m.set(b[k]!, b[k + 1]! + b[k + 2]! * 2 ** 32);
      this.#bigMap = m;
    }
    const v = this.#bigMap.get(pos);
    if (v === undefined) throw corrupt(`size of position ${pos} is missing`);
    return v;
  }

  /**
   * A memo of where this file's refs are in another pack's index, kept as long as both live:
   * slot `ref` for a position of this pack, `count + i` for EXT id i; -2 until looked up, then
   * the position or -1. Walks that meet the same trees on every fetch look each id up once.
   */
  memoFor(index: object): Int32Array {
    let memo = this.#positionsIn.get(index);
    if (memo === undefined) {
      memo = new Int32Array(this.count + this.extCount).fill(-2);
      this.#positionsIn.set(index, memo);
    }
    return memo;
  }

  /** The number of ids in EXT. */
  get extCount(): number {
    return this.#ext.length / OID_RAW_LENGTH;
  }

  /** Raw bytes holding EXT id `i` at extOffset(i). */
  get extBytes(): Uint8Array {
    return this.#ext;
  }

  extOffset(i: number): number {
    if (!(i >= 0 && i < this.extCount)) throw corrupt(`external ref ${i} out of range`);
    return i * OID_RAW_LENGTH;
  }

  extOid(i: number): ObjectId {
    return objectIdFromBytes(this.#ext, this.extOffset(i));
  }

  /** Checks a ref's range (a position of this pack or an EXT index). */
  checkRef(ref: number): number {
    if (ref & EXT_BIT ? (ref & ~EXT_BIT) >= this.extCount : ref >= this.count) throw corrupt(`ref ${ref} out of range`);
    return ref;
  }

  /** The record of the commit at `pos`, or undefined (not recorded: read the commit). */
  commitAt(pos: number): AccelCommit | undefined {
    if (this.#types[pos] !== 1) return undefined;
    const w = this.#record[pos]!;
    if (w === NONE) return undefined;
    const d = this.#data;
    if (w + 4 > d.length) throw corrupt(`record of ${pos} is out of bounds`);
    const n = d[w + 3]!;
    if (w + 4 + n > d.length) throw corrupt(`record of ${pos} is out of bounds`);
    const parents: number[] = [];
    for (let k = 0; k < n; k++) parents.push(this.checkRef(d[w + 4 + k]!));
    const hi = d[w + 1]! | 0;
    return { time: hi * 2 ** 32 + d[w]!, tree: this.checkRef(d[w + 2]!), parents };
  }

  /** The DATA words (for walks that read tree records in place; see treeWord). */
  get words(): Uint32Array {
    return this.#data;
  }

  /**
   * Word offset in `words` of the tree record at `pos`, or -1 when `pos` is not a recorded
   * tree. Bounds are checked when the file is decoded lazily per record by treeAt; callers
   * of this fast path must have called treeAt(pos) once for the record (walks do, via
   * checkTree).
   */
  treeWord(pos: number): number {
    if (this.#types[pos] !== 2) return -1;
    const w = this.#record[pos]!;
    return w === NONE ? -1 : w;
  }

  /** Validates the tree record at `pos` once (bounds, base); false when there is none. */
  checkTree(pos: number): boolean {
    if (this.#checked === undefined) this.#checked = new Uint8Array(this.count);
    const c = this.#checked[pos]!;
    if (c !== 0) return c === 1;
    const ok = this.treeAt(pos) !== undefined;
    this.#checked[pos] = ok ? 1 : 2;
    return ok;
  }

  /** The record of the tree at `pos`, or undefined (not recorded: read the tree). */
  treeAt(pos: number): AccelTree | undefined {
    if (this.#types[pos] !== 2) return undefined;
    const w = this.#record[pos]!;
    if (w === NONE) return undefined;
    const d = this.#data;
    if (w + 3 > d.length) throw corrupt(`record of ${pos} is out of bounds`);
    const baseWord = d[w]!;
    const base = baseWord === NONE ? undefined : baseWord;
    if (base !== undefined && (base >= this.count || this.#types[base] !== 2)) throw corrupt(`base of tree ${pos} is not a tree`);
    const stride = base === undefined ? 2 : 3;
    const nr = d[w + 1]! * 3;
    const na = d[w + 2]!;
    const end = w + 3 + nr + na * stride;
    if (end > d.length) throw corrupt(`record of ${pos} is out of bounds`);
    if (base === undefined && nr !== 0) throw corrupt(`tree ${pos} without a base removes entries`);
    return {
      base,
      removed: d.subarray(w + 3, w + 3 + nr),
      added: d.subarray(w + 3 + nr, end),
      stride,
    };
  }

  /**
   * Positions of the recorded trees whose base is `pos` (computed once per file): a walk that
   * has seen one of them visits `pos` through that tree's removed entries.
   */
  treeChildren(pos: number): Int32Array {
    if (this.#childStart === undefined) this.#buildChildren();
    return this.#childList!.subarray(this.#childStart![pos]!, this.#childStart![pos + 1]!);
  }

  #buildChildren(): void {
    const n = this.count;
    const start = new Int32Array(n + 1);
    const baseOf = new Int32Array(n).fill(-1);
    const d = this.#data;
    for (let pos = 0; pos < n; pos++) {
      if (this.#types[pos] !== 2) continue;
      const w = this.#record[pos]!;
      if (w === NONE || w >= d.length) continue;
      const b = d[w]!;
      if (b === NONE || b >= n) continue;
      baseOf[pos] = b;
      start[b + 1]!++;
    }
    for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
    const list = new Int32Array(start[n]!);
    const fill = start.slice(0, n);
    for (let pos = 0; pos < n; pos++) {
      const b = baseOf[pos]!;
      if (b >= 0) list[fill[b]!++] = pos;
    }
    this.#childStart = start;
    this.#childList = list;
  }
}

function words(b: Uint8Array): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}
