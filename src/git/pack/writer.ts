/**
 * Sans-I/O pack writer: the caller emits the returned bytes in order; the writer
 * tracks offsets, CRC32s and the running SHA-1 for the trailer. Also the writer of outgoing
 * packs (repo/pack-out), which adds verbatim runs of stored entries.
 */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ObjectId } from '../hash/object-id.js';
import type { ObjectType } from '../object/object-type.js';
import { encodeEntryHeader, type PackEntryType } from './entry.js';
import type { IdxEntry } from './idx.js';
import { deflate } from './inflate.js';
import { PACK_HEADER_LENGTH, encodePackHeader } from './scanner.js';

/** Header fields of a stored entry copied verbatim by addRaw. */
export interface RawEntryHeader {
  readonly type: PackEntryType;
  /** Inflated size (of the delta for deltas). */
  readonly size: number;
  /** ofs-delta: where the base starts in THIS output; the writer encodes the distance. */
  readonly baseOutputOffset?: number;
  /** ref-delta: the base's id. */
  readonly baseId?: ObjectId;
}

/** One entry as two pieces, emitted in order: its header, then its (compressed) body. */
export type EntryParts = readonly [head: Uint8Array, body: Uint8Array];

/**
 * The header addRaw gives a stored entry written at `entryOffset` of the output: for an
 * ofs-delta the distance back to its base, which must be an earlier entry (gitformat-pack).
 * RangeError if the base is not, or a ref-delta has no base id.
 */
export function encodeRawEntryHeader(header: RawEntryHeader, entryOffset: number): Uint8Array {
  if (header.type === 'ofs-delta') {
    const base = header.baseOutputOffset;
    if (base === undefined || base < PACK_HEADER_LENGTH || base >= entryOffset) {
      throw new RangeError(`ofs-delta base offset ${String(base)} is not an earlier entry of this pack`);
    }
    return encodeEntryHeader('ofs-delta', header.size, { distance: entryOffset - base });
  }
  if (header.type === 'ref-delta') {
    if (header.baseId === undefined) throw new RangeError('ref-delta entry needs baseId');
    return encodeEntryHeader('ref-delta', header.size, { id: header.baseId });
  }
  return encodeEntryHeader(header.type, header.size);
}

function joinEntry([head, body]: EntryParts): Uint8Array {
  const bytes = Buffer.allocUnsafe(head.length + body.length);
  bytes.set(head, 0);
  bytes.set(body, head.length);
  return bytes;
}

/**
 * Writes one pack of a known object count. The add*Parts methods return an entry's header
 * and body separately, so a streaming caller never copies a body to join them.
 */
export class PackWriter {
  readonly #count: number;
  readonly #hash: Hash = createHash('sha1');
  readonly #entries: IdxEntry[] = [];
  #written = 0;
  #offset = 0;
  #checksum: ObjectId | undefined;

  constructor(objectCount: number) {
    if (!Number.isInteger(objectCount) || objectCount < 0 || objectCount > 0xffffffff) {
      throw new RangeError(`invalid pack object count ${objectCount}`);
    }
    this.#count = objectCount;
  }

  /** Bytes emitted so far, which is the offset of the next entry. */
  get offset(): number {
    return this.#offset;
  }

  /** The pack's trailer id; only after finish(). */
  get checksum(): ObjectId {
    if (this.#checksum === undefined) throw new Error('PackWriter.checksum read before finish()');
    return this.#checksum;
  }

  /** The 12-byte pack header; call first, once. */
  header(): Uint8Array {
    if (this.#offset !== 0) throw new Error('PackWriter.header() must be called first, once');
    return this.#emit(encodePackHeader(this.#count));
  }

  /** A whole object, deflated at `level`; returns the entry's bytes. `oid` is recorded for entries(). */
  addObject(type: ObjectType, data: Uint8Array, level?: number, oid?: ObjectId): Uint8Array {
    return joinEntry(this.addObjectParts(type, data, level, oid));
  }

  /** addObject without joining: the entry's header and its deflated body, to emit in order. */
  addObjectParts(type: ObjectType, data: Uint8Array, level?: number, oid?: ObjectId): EntryParts {
    return this.#entry(encodeEntryHeader(type, data.length), deflate(data, level), oid);
  }

  /**
   * A stored entry's compressed bytes reused verbatim with a new header. For ofs-delta the
   * base must already be written to this output at `baseOutputOffset`.
   */
  addRaw(header: RawEntryHeader, compressed: Uint8Array, oid?: ObjectId): Uint8Array {
    return joinEntry(this.addRawParts(header, compressed, oid));
  }

  /** addRaw without joining: the new header and `compressed` itself (not copied), to emit in order. */
  addRawParts(header: RawEntryHeader, compressed: Uint8Array, oid?: ObjectId): EntryParts {
    return this.#entry(encodeRawEntryHeader(header, this.#offset), compressed, oid);
  }

  /**
   * `entries` whole entries copied as they are from another pack, in one piece (a run whose
   * ofs-delta distances stay valid because it stays contiguous). They get no entries() record.
   */
  addVerbatim(bytes: Uint8Array, entries: number): Uint8Array {
    this.#checkRoom(entries);
    this.#written += entries;
    return this.#emit(bytes);
  }

  /** The (oid, offset, crc32) of every entry added with an oid, for encodeIdx. */
  entries(): IdxEntry[] {
    return this.#entries.slice();
  }

  /** The 20-byte trailer; throws if fewer or more entries were added than the header said. */
  finish(): Uint8Array {
    if (this.#offset === 0) throw new Error('PackWriter.finish() before header()');
    if (this.#written !== this.#count) {
      throw new Error(`pack header says ${this.#count} objects but ${this.#written} were written`);
    }
    if (this.#checksum !== undefined) throw new Error('PackWriter.finish() called twice');
    const digest = this.#hash.digest();
    this.#checksum = digest.toString('hex') as ObjectId;
    this.#offset += digest.length;
    return digest;
  }

  #checkRoom(entries: number): void {
    if (this.#offset === 0) throw new Error('PackWriter: call header() before adding entries');
    if (this.#checksum !== undefined) throw new Error('PackWriter: entry added after finish()');
    if (this.#written + entries > this.#count) throw new Error(`pack header says ${this.#count} objects; no room for more`);
  }

  #entry(head: Uint8Array, body: Uint8Array, oid: ObjectId | undefined): EntryParts {
    this.#checkRoom(1);
    if (oid !== undefined) this.#entries.push({ oid, offset: this.#offset, crc32: crc32(body, crc32(head)) });
    this.#written++;
    return [this.#emit(head), this.#emit(body)];
  }

  #emit(bytes: Uint8Array): Uint8Array {
    this.#hash.update(bytes);
    this.#offset += bytes.length;
    return bytes;
  }
}
