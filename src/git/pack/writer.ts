/**
 * Sans-I/O pack writer: the caller emits the returned bytes in order; the writer
 * tracks offsets, CRC32s and the running SHA-1 for the trailer.
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

/** Writes one pack of a known object count. */
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
    const head = encodeEntryHeader(type, data.length);
    const body = deflate(data, level);
    return this.#entry(head, body, oid);
  }

  /**
   * A stored entry's compressed bytes reused verbatim with a new header. For ofs-delta the
   * base must already be written to this output at `baseOutputOffset`.
   */
  addRaw(header: RawEntryHeader, compressed: Uint8Array, oid?: ObjectId): Uint8Array {
    let head: Uint8Array;
    if (header.type === 'ofs-delta') {
      const base = header.baseOutputOffset;
      if (base === undefined || base < PACK_HEADER_LENGTH || base >= this.#offset) {
        throw new RangeError(`ofs-delta base offset ${String(base)} is not an earlier entry of this pack`);
      }
      head = encodeEntryHeader('ofs-delta', header.size, { distance: this.#offset - base });
    } else if (header.type === 'ref-delta') {
      if (header.baseId === undefined) throw new RangeError('ref-delta entry needs baseId');
      head = encodeEntryHeader('ref-delta', header.size, { id: header.baseId });
    } else {
      head = encodeEntryHeader(header.type, header.size);
    }
    return this.#entry(head, compressed, oid);
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

  #entry(head: Uint8Array, body: Uint8Array, oid: ObjectId | undefined): Uint8Array {
    if (this.#offset === 0) throw new Error('PackWriter: call header() before adding entries');
    if (this.#checksum !== undefined) throw new Error('PackWriter: entry added after finish()');
    if (this.#written >= this.#count) throw new Error(`pack header says ${this.#count} objects; no room for more`);
    const bytes = Buffer.allocUnsafe(head.length + body.length);
    bytes.set(head, 0);
    bytes.set(body, head.length);
    const offset = this.#offset;
    if (oid !== undefined) this.#entries.push({ oid, offset, crc32: crc32(bytes) });
    this.#written++;
    return this.#emit(bytes);
  }

  #emit(bytes: Uint8Array): Uint8Array {
    this.#hash.update(bytes);
    this.#offset += bytes.length;
    return bytes;
  }
}
