/**
 * The outgoing pack's writer: git/pack's PackWriter plus verbatim runs of stored entries (the
 * body of a whole stored pack, whose ofs-delta distances stay valid because its entries stay
 * contiguous). Tracks the output offset, the entry count and the running SHA-1 of the trailer.
 */
import { createHash, type Hash } from 'node:crypto';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { ObjectType } from '../../git/object/object-type.js';
import { encodeEntryHeader } from '../../git/pack/entry.js';
import { deflate } from '../../git/pack/inflate.js';
import { PACK_HEADER_LENGTH, encodePackHeader } from '../../git/pack/scanner.js';
import type { RawEntryHeader } from '../../git/pack/writer.js';

/** Writes one pack of a known object count; every method returns the bytes to emit, in order. */
export class OutWriter {
  readonly #count: number;
  readonly #hash: Hash = createHash('sha1');
  #written = 0;
  #offset = 0;

  constructor(objectCount: number) {
    if (!Number.isInteger(objectCount) || objectCount < 0 || objectCount > 0xffffffff) {
      throw new RangeError(`invalid pack object count ${objectCount}`);
    }
    this.#count = objectCount;
  }

  /** Bytes emitted so far: the offset of the next entry. */
  get offset(): number {
    return this.#offset;
  }

  header(): Uint8Array {
    if (this.#offset !== 0) throw new Error('OutWriter.header() must be called first, once');
    return this.#emit(encodePackHeader(this.#count));
  }

  /** A whole object, deflated. */
  addObject(type: ObjectType, data: Uint8Array, level?: number, _oid?: ObjectId): Uint8Array {
    return this.#entry(encodeEntryHeader(type, data.length), deflate(data, level));
  }

  /** A stored entry's compressed bytes with a new header (ofs-delta bases must be written already). */
  addRaw(header: RawEntryHeader, compressed: Uint8Array, _oid?: ObjectId): Uint8Array {
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
    return this.#entry(head, compressed);
  }

  /** Bytes of `entries` whole stored entries copied as they are (call per chunk; count once). */
  addVerbatim(bytes: Uint8Array, entries: number): Uint8Array {
    if (this.#offset === 0) throw new Error('OutWriter: call header() before adding entries');
    this.#written += entries;
    if (this.#written > this.#count) throw new Error(`pack header says ${this.#count} objects; no room for more`);
    return this.#emit(bytes);
  }

  /** The trailer; throws unless exactly the announced number of entries was written. */
  finish(): Uint8Array {
    if (this.#written !== this.#count) throw new Error(`pack header says ${this.#count} objects but ${this.#written} were written`);
    const digest = this.#hash.digest();
    this.#offset += digest.length;
    return digest;
  }

  #entry(head: Uint8Array, body: Uint8Array): Uint8Array {
    if (this.#offset === 0) throw new Error('OutWriter: call header() before adding entries');
    if (this.#written >= this.#count) throw new Error(`pack header says ${this.#count} objects; no room for more`);
    this.#written++;
    const bytes = Buffer.allocUnsafe(head.length + body.length);
    bytes.set(head, 0);
    bytes.set(body, head.length);
    return this.#emit(bytes);
  }

  #emit(bytes: Uint8Array): Uint8Array {
    this.#hash.update(bytes);
    this.#offset += bytes.length;
    return bytes;
  }
}
