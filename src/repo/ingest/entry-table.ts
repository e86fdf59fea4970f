/**
 * Per-entry facts of a pack being indexed, in growable typed arrays (a few dozen bytes per
 * entry, whatever the object sizes): where each entry is, what it is, its CRC32 and, once
 * resolved, its object id and type.
 */
import { createHash, hash } from 'node:crypto';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { ObjectType } from '../../git/object/object-type.js';

/** Pack type codes (gitformat-pack): 1..4 objects, 6 ofs-delta, 7 ref-delta. */
export const CODE_OFS_DELTA = 6;
export const CODE_REF_DELTA = 7;

const TYPE_NAMES: readonly (ObjectType | undefined)[] = [undefined, 'commit', 'tree', 'blob', 'tag'];

/** Object type name of a code 1..4. */
export function typeName(code: number): ObjectType {
  const t = TYPE_NAMES[code];
  if (t === undefined) throw new RangeError(`not an object type code: ${code}`);
  return t;
}

/** Type code 1..4 of an object type. */
export function typeCode(type: ObjectType): number {
  return type === 'commit' ? 1 : type === 'tree' ? 2 : type === 'blob' ? 3 : 4;
}

/** The columns of a table as worker threads see them (typed arrays over shared memory). */
export interface SharedColumns {
  readonly count: number;
  readonly offset: Float64Array;
  readonly headerLength: Uint8Array;
  readonly packedLength: Float64Array;
  readonly crc32: Uint32Array;
  readonly kind: Uint8Array;
  readonly type: Uint8Array;
  readonly size: Float64Array;
  readonly objectSize: Float64Array;
  readonly baseIndex: Int32Array;
  readonly duplicate: Uint8Array;
  /** Raw ids (20 bytes per entry), written by whoever resolves the entry. */
  readonly oidBytes: Uint8Array;
}

/**
 * Growable columns; index = entry number in pack order (thin bases appended last). The
 * arrays live in SharedArrayBuffers so resolver threads can read them and write results.
 */
export class EntryTable {
  count = 0;
  offset: Float64Array;
  /** Bytes of the entry header (type/size varint plus ofs distance or ref id). */
  headerLength: Uint8Array;
  /** Header plus compressed data. */
  packedLength: Float64Array;
  crc32: Uint32Array;
  /** The entry's own code: 1..4, 6 or 7. */
  kind: Uint8Array;
  /** Resolved object type code 1..4; 0 while a delta is unresolved. */
  type: Uint8Array;
  /** Inflated size of the entry's data (object or delta). */
  size: Float64Array;
  /** Inflated size of the object (resolved deltas included), filled by whoever resolves it. */
  objectSize: Float64Array;
  /** ofs-delta: entry number of the base; -1 otherwise. */
  baseIndex: Int32Array;
  /** 1 if this entry's id duplicates an earlier entry's. */
  duplicate: Uint8Array;
  /** Raw ids, 20 bytes per entry, written by whichever thread hashes the object. */
  oidBytes: Uint8Array;

  constructor(capacity: number) {
    const n = Math.max(16, capacity);
    this.offset = new Float64Array(shared(n * 8));
    this.headerLength = new Uint8Array(shared(n));
    this.packedLength = new Float64Array(shared(n * 8));
    this.crc32 = new Uint32Array(shared(n * 4));
    this.kind = new Uint8Array(shared(n));
    this.type = new Uint8Array(shared(n));
    this.size = new Float64Array(shared(n * 8));
    this.objectSize = new Float64Array(shared(n * 8));
    this.baseIndex = new Int32Array(shared(n * 4)).fill(-1);
    this.duplicate = new Uint8Array(shared(n));
    this.oidBytes = new Uint8Array(shared(n * 20));
  }

  /** A table over columns shared by another thread (ids start unknown in `oids`). */
  static fromShared(c: SharedColumns): EntryTable {
    const t = new EntryTable(0);
    t.count = c.count;
    t.offset = c.offset;
    t.headerLength = c.headerLength;
    t.packedLength = c.packedLength;
    t.crc32 = c.crc32;
    t.kind = c.kind;
    t.type = c.type;
    t.size = c.size;
    t.objectSize = c.objectSize;
    t.baseIndex = c.baseIndex;
    t.duplicate = c.duplicate;
    t.oidBytes = c.oidBytes;
    return t;
  }

  /** The columns, to post to a worker thread (the memory is shared, not copied). */
  shared(): SharedColumns {
    return {
      count: this.count,
      offset: this.offset,
      headerLength: this.headerLength,
      packedLength: this.packedLength,
      crc32: this.crc32,
      kind: this.kind,
      type: this.type,
      size: this.size,
      objectSize: this.objectSize,
      baseIndex: this.baseIndex,
      duplicate: this.duplicate,
      oidBytes: this.oidBytes,
    };
  }

  /**
   * Appends an entry; returns its number. `expected` is the count the pack header announced:
   * growth stops there (not at the next power of two) while the header holds.
   */
  add(offset: number, headerLength: number, packedLength: number, crc32: number, kind: number, size: number, expected = 0): number {
    if (this.count === this.offset.length) this.#grow(expected);
    const i = this.count++;
    this.offset[i] = offset;
    this.headerLength[i] = headerLength;
    this.packedLength[i] = packedLength;
    this.crc32[i] = crc32;
    this.kind[i] = kind;
    this.size[i] = size;
    this.objectSize[i] = kind < CODE_OFS_DELTA ? size : 0;
    return i;
  }

  /** The id of resolved entry i, as hex. */
  oidHex(i: number): ObjectId {
    return Buffer.from(this.oidBytes.buffer, this.oidBytes.byteOffset + i * 20, 20).toString('hex') as ObjectId;
  }

  /** Sets the id of entry i from hex. */
  setOidHex(i: number, oid: ObjectId): void {
    Buffer.from(this.oidBytes.buffer, this.oidBytes.byteOffset + i * 20, 20).write(oid, 'hex');
  }

  /** True if entry i is a delta (resolved or not). */
  isDelta(i: number): boolean {
    return this.kind[i]! >= CODE_OFS_DELTA;
  }

  /** Entry number of the entry starting exactly at `offset`, or -1 (binary search: offsets ascend). */
  findByOffset(offset: number): number {
    let lo = 0;
    let hi = this.count;
    const offs = this.offset;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = offs[mid]!;
      if (v === offset) return mid;
      if (v < offset) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  #grow(expected: number): void {
    const double = this.offset.length * 2;
    const n = expected > this.offset.length && expected < double ? expected : double;
    this.offset = grow(this.offset, new Float64Array(shared(n * 8)));
    this.headerLength = grow(this.headerLength, new Uint8Array(shared(n)));
    this.packedLength = grow(this.packedLength, new Float64Array(shared(n * 8)));
    this.crc32 = grow(this.crc32, new Uint32Array(shared(n * 4)));
    this.kind = grow(this.kind, new Uint8Array(shared(n)));
    this.type = grow(this.type, new Uint8Array(shared(n)));
    this.size = grow(this.size, new Float64Array(shared(n * 8)));
    this.objectSize = grow(this.objectSize, new Float64Array(shared(n * 8)));
    this.baseIndex = grow(this.baseIndex, new Int32Array(shared(n * 4)).fill(-1));
    this.duplicate = grow(this.duplicate, new Uint8Array(shared(n)));
    this.oidBytes = grow(this.oidBytes, new Uint8Array(shared(n * 20)));
  }
}

function shared(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes);
}

function grow<T extends Float64Array | Uint32Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}

/** Objects up to this size are hashed in one call from a copy next to their header. */
const ONE_SHOT_MAX = 256 * 1024;
let hashScratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * Hashes an object (git's "<type> <size>\0" header, then the data) into entry i's raw id.
 * Small objects (nearly all) go through one-shot hashing of header and data copied together:
 * no Hash object per object, which costs more than the copy.
 */
export function writeObjectId(t: EntryTable, i: number, type: ObjectType, data: Uint8Array): void {
  const head = `${type} ${data.length}\0`;
  if (data.length > ONE_SHOT_MAX) {
    const h = createHash('sha1');
    h.update(head);
    h.update(data);
    t.oidBytes.set(h.digest(), i * 20);
    return;
  }
  const total = head.length + data.length;
  if (hashScratch.length < total) hashScratch = Buffer.allocUnsafeSlow(Math.max(total, hashScratch.length * 2));
  const n = hashScratch.write(head, 0, 'latin1');
  hashScratch.set(data, n);
  t.oidBytes.set(hash('sha1', hashScratch.subarray(0, total), 'buffer'), i * 20);
}

/**
 * The longest delta chain of a resolved table: for each delta, the number of deltas between it
 * and the whole object its chain ends in (git verify-pack's "chain length"). `refBaseOf(i)` is
 * the entry number of a ref-delta's base (or undefined); ofs bases come from the table.
 */
export function longestDeltaChain(t: EntryTable, refBaseOf: (i: number) => number | undefined): number {
  const n = t.count;
  const depth = new Int32Array(n).fill(-1);
  const chain: number[] = [];
  let longest = 0;
  for (let i = 0; i < n; i++) {
    if (depth[i] !== -1) continue;
    let k = i;
    let below = 0;
    while (depth[k] === -1) {
      if (!t.isDelta(k)) {
        depth[k] = 0;
        break;
      }
      chain.push(k);
      const b = t.kind[k] === CODE_OFS_DELTA ? t.baseIndex[k]! : (refBaseOf(k) ?? -1);
      // An unresolved base or a cycle (neither survives ingest) ends the chain.
      if (b < 0 || chain.length > n) break;
      k = b;
    }
    below = depth[k]! < 0 ? 0 : depth[k]!;
    for (let c = chain.length - 1; c >= 0; c--) depth[chain[c]!] = ++below;
    chain.length = 0;
    if (below > longest) longest = below;
  }
  return longest;
}
