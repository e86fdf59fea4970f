/**
 * Pack entry headers (gitformat-pack, "pack-*.pack files"): a 3-bit type and a
 * size varint, then for ofs-delta a negative offset to the base and for ref-delta
 * the base's 20-byte id.
 */
import { ProtocolError } from '../../core/errors.js';
import { OBJECT_SIZE_MAX } from '../../core/limits.js';
import { OID_RAW_LENGTH, objectIdFromBytes, objectIdToBytes, type ObjectId } from '../hash/object-id.js';

/** The six entry types a pack may hold. */
export type PackEntryType = 'commit' | 'tree' | 'blob' | 'tag' | 'ofs-delta' | 'ref-delta';

/** Pack type code of each entry type (type 5 is reserved, 0 invalid). */
export const PACK_ENTRY_CODE: Readonly<Record<PackEntryType, number>> = {
  commit: 1,
  tree: 2,
  blob: 3,
  tag: 4,
  'ofs-delta': 6,
  'ref-delta': 7,
};

const TYPE_OF_CODE: readonly (PackEntryType | undefined)[] = [
  undefined, 'commit', 'tree', 'blob', 'tag', undefined, 'ofs-delta', 'ref-delta',
];

/** Offset of the first entry: entries follow the 12-byte pack header. */
const FIRST_ENTRY_OFFSET = 12;
/** A size varint of 4 + 9*7 = 67 bits is more than any size; git stops there too. */
const SIZE_VARINT_MAX_BYTES = 10;
/** An ofs-delta distance may not exceed 2^53 (JS safe integers); real packs stay far below. */
const OFS_DISTANCE_MAX = Number.MAX_SAFE_INTEGER;

/** A decoded entry header. */
export interface EntryHeader {
  readonly type: PackEntryType;
  /** Inflated size: of the object, or of the delta instructions for deltas. */
  readonly size: number;
  /** Bytes of the header including the ofs/ref base field. */
  readonly headerLength: number;
  /** ofs-delta: absolute pack offset of the base (entry offset minus the encoded distance). */
  readonly baseOffset?: number;
  /** ref-delta: id of the base. */
  readonly baseId?: ObjectId;
}

function badEntry(entryOffset: number, what: string): ProtocolError {
  return new ProtocolError('PACK_BAD_ENTRY', `pack entry at offset ${entryOffset}: ${what}`);
}

/**
 * Decodes the entry header at buf[pos], the entry starting at pack offset `entryOffset`.
 * Returns undefined when buf ends before the header does; throws ProtocolError('PACK_BAD_ENTRY').
 */
export function decodeEntryHeader(buf: Uint8Array, pos: number, entryOffset: number): EntryHeader | undefined {
  const end = buf.length;
  if (pos >= end) return undefined;
  let c = buf[pos]!;
  const code = (c >> 4) & 7;
  const type = TYPE_OF_CODE[code];
  if (type === undefined) throw badEntry(entryOffset, `invalid object type code ${code}`);
  let size = c & 15;
  let scale = 16;
  let p = pos + 1;
  while (c & 0x80) {
    if (p >= end) return undefined;
    if (p - pos >= SIZE_VARINT_MAX_BYTES) throw badEntry(entryOffset, 'size field is too long');
    c = buf[p++]!;
    size += (c & 0x7f) * scale;
    scale *= 128;
    // Checked inside the loop so a hostile varint cannot grow past safe integers.
    if (size > OBJECT_SIZE_MAX) throw badEntry(entryOffset, `declared size exceeds ${OBJECT_SIZE_MAX} bytes`);
  }
  if (type === 'ofs-delta') {
    // Offset encoding: each continuation adds one before shifting, so encodings are unique.
    if (p >= end) return undefined;
    c = buf[p++]!;
    let distance = c & 0x7f;
    while (c & 0x80) {
      if (p >= end) return undefined;
      c = buf[p++]!;
      distance = (distance + 1) * 128 + (c & 0x7f);
      if (distance > OFS_DISTANCE_MAX) throw badEntry(entryOffset, 'delta base offset overflows');
    }
    const baseOffset = entryOffset - distance;
    if (distance === 0 || baseOffset < FIRST_ENTRY_OFFSET) {
      throw badEntry(entryOffset, `delta base offset ${baseOffset} is outside the pack`);
    }
    return { type, size, headerLength: p - pos, baseOffset };
  }
  if (type === 'ref-delta') {
    if (p + OID_RAW_LENGTH > end) return undefined;
    const baseId = objectIdFromBytes(buf, p);
    return { type, size, headerLength: p + OID_RAW_LENGTH - pos, baseId };
  }
  return { type, size, headerLength: p - pos };
}

/** Encodes an entry header; `base` is the ofs-delta distance (> 0) or the ref-delta base id. */
export function encodeEntryHeader(
  type: PackEntryType,
  size: number,
  base?: { readonly distance: number } | { readonly id: ObjectId },
): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid entry size ${size}`);
  const out: number[] = [];
  let c = (PACK_ENTRY_CODE[type] << 4) | (size & 15);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    out.push(c | 0x80);
    c = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  out.push(c);
  if (type === 'ofs-delta') {
    if (base === undefined || !('distance' in base)) throw new RangeError('ofs-delta needs a distance');
    const d = base.distance;
    if (!Number.isSafeInteger(d) || d <= 0) throw new RangeError(`invalid ofs-delta distance ${d}`);
    // Big-endian groups of 7 bits, each but the last minus one (the inverse of the decoder).
    const groups: number[] = [d % 128];
    let v = Math.floor(d / 128);
    while (v > 0) {
      v -= 1;
      groups.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    for (let i = groups.length - 1; i >= 0; i--) out.push(groups[i]!);
    return Uint8Array.from(out);
  }
  if (type === 'ref-delta') {
    if (base === undefined || !('id' in base)) throw new RangeError('ref-delta needs a base id');
    const bytes = new Uint8Array(out.length + OID_RAW_LENGTH);
    bytes.set(out, 0);
    bytes.set(objectIdToBytes(base.id), out.length);
    return bytes;
  }
  return Uint8Array.from(out);
}

/** The entry type of a pack type code, or undefined for 0 and 5. */
export function entryTypeOfCode(code: number): PackEntryType | undefined {
  return TYPE_OF_CODE[code];
}
