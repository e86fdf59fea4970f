/**
 * Sans-I/O incremental parser of an incoming pack (receive-pack, import): bytes go in
 * as they arrive, completed entries come out. It holds at most the unparsed tail of a
 * chunk plus the inflated entry in progress; compressed bytes of a long entry are fed
 * to a streaming inflater chunk by chunk, never concatenated. The pack's SHA-1 and
 * each entry's CRC32 (as idx v2 records it) are computed on the way.
 */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { LimitError, ProtocolError, StowageError } from '../../core/errors.js';
import { OBJECT_SIZE_MAX } from '../../core/limits.js';
import { OID_RAW_LENGTH, type ObjectId } from '../hash/object-id.js';
import { deltaSizes } from './delta.js';
import { decodeEntryHeader, type EntryHeader } from './entry.js';
import { Inflater } from './inflate.js';

function copyOf(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

/** Length of the pack header: 'PACK', version, object count. */
export const PACK_HEADER_LENGTH = 12;
const PACK_SIGNATURE = 0x5041434b; // 'PACK'

/** Decodes the 12-byte pack header; throws ProtocolError('PACK_BAD_HEADER'). Versions 2 and 3 are accepted, as git does. */
export function decodePackHeader(buf: Uint8Array): { version: number; objectCount: number } {
  if (buf.length < PACK_HEADER_LENGTH) throw new ProtocolError('PACK_TRUNCATED', 'pack is shorter than its header');
  const view = new DataView(buf.buffer, buf.byteOffset, PACK_HEADER_LENGTH);
  if (view.getUint32(0) !== PACK_SIGNATURE) throw new ProtocolError('PACK_BAD_HEADER', 'not a pack: bad signature');
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new ProtocolError('PACK_BAD_HEADER', `unsupported pack version ${version}`);
  return { version, objectCount: view.getUint32(8) };
}

/** Encodes a version 2 pack header for `count` objects. */
export function encodePackHeader(count: number): Uint8Array {
  const out = new Uint8Array(PACK_HEADER_LENGTH);
  const view = new DataView(out.buffer);
  view.setUint32(0, PACK_SIGNATURE);
  view.setUint32(4, 2);
  view.setUint32(8, count);
  return out;
}

/** One entry as it was read from the pack. */
export interface ScannedEntry {
  /** Pack offset of the entry's first header byte. */
  readonly offset: number;
  readonly header: EntryHeader;
  /** Inflated content: the object, or the delta instructions for deltas. */
  readonly data: Uint8Array;
  /** Header plus compressed length. */
  readonly packedLength: number;
  /** CRC32 of the entry's packed bytes, as idx v2 stores it. */
  readonly crc32: number;
}

/** Limits of one scan; defaults allow anything a pack can express up to OBJECT_SIZE_MAX. */
export interface PackScannerOptions {
  readonly maxObjects?: number;
  /** Largest inflated object (and delta result) accepted. */
  readonly maxObjectSize?: number;
  readonly maxPackSize?: number;
}

type Phase = 'header' | 'entry-header' | 'entry-data' | 'trailer' | 'complete';

/** Incremental pack parser: push() chunks, then end(). */
export class PackScanner {
  readonly #maxObjects: number;
  readonly #maxObjectSize: number;
  readonly #maxPackSize: number;
  readonly #hash: Hash = createHash('sha1');
  readonly #inflater = new Inflater();
  #phase: Phase = 'header';
  /** Unparsed bytes carried over from the previous chunk (an incomplete header or trailer). */
  #carry: Uint8Array = new Uint8Array(0);
  /** Pack offset of the first byte of the current buffer. */
  #bufOffset = 0;
  #objectCount: number | undefined;
  #seen = 0;
  #received = 0;
  #checksum: ObjectId | undefined;
  #packSize = 0;
  #remainder: Uint8Array[] = [];
  #failed: unknown;
  // The entry being inflated across chunks.
  #entryOffset = 0;
  #entryHeader: EntryHeader | undefined;
  #entryCrc = 0;
  #entryLength = 0;

  constructor(opts: PackScannerOptions = {}) {
    this.#maxObjects = opts.maxObjects ?? 0xffffffff;
    this.#maxObjectSize = opts.maxObjectSize ?? OBJECT_SIZE_MAX;
    this.#maxPackSize = opts.maxPackSize ?? Number.MAX_SAFE_INTEGER;
  }

  /** Object count from the pack header, once it has arrived. */
  get objectCount(): number | undefined {
    return this.#objectCount;
  }

  /** Bytes held between pushes: an unparsed partial header or trailer, never entry data. */
  get bufferedBytes(): number {
    return this.#carry.length;
  }

  /** True once the trailer has arrived and matched. */
  get complete(): boolean {
    return this.#phase === 'complete';
  }

  /** Bytes pushed after the pack's trailer (not part of the pack). */
  remainder(): Uint8Array {
    return this.#remainder.length === 1 ? this.#remainder[0]! : Buffer.concat(this.#remainder);
  }

  /** Feeds the next bytes; returns the entries this chunk completed. After a throw, every call rethrows. */
  push(chunk: Uint8Array): ScannedEntry[] {
    if (this.#failed !== undefined) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#failed = err;
      throw err;
    }
  }

  #push(chunk: Uint8Array): ScannedEntry[] {
    const out: ScannedEntry[] = [];
    if (chunk.length === 0) return out;
    if (this.#phase === 'complete') {
      this.#remainder.push(chunk);
      return out;
    }
    this.#received += chunk.length;
    if (this.#received > this.#maxPackSize) {
      throw new LimitError('LIMIT_EXCEEDED', `pack exceeds the limit of ${this.#maxPackSize} bytes`);
    }
    let buf: Uint8Array = chunk;
    if (this.#carry.length > 0) {
      buf = Buffer.concat([this.#carry, chunk]);
      this.#carry = new Uint8Array(0);
    }
    let pos = 0;
    /** Start of the bytes in buf consumed but not yet hashed. */
    let hashFrom = 0;
    const end = buf.length;
    while (pos < end) {
      if (this.#phase === 'entry-data') {
        const n = this.#inflater.write(buf, pos, end);
        this.#entryCrc = crc32(buf.subarray(pos, pos + n), this.#entryCrc);
        this.#entryLength += n;
        pos += n;
        if (!this.#inflater.done) break;
        out.push(this.#completeEntry(this.#inflater.result()));
      } else if (this.#phase === 'entry-header') {
        const entryOffset = this.#bufOffset + pos;
        const header = decodeEntryHeader(buf, pos, entryOffset);
        if (header === undefined) break;
        this.#checkSize(header.size, entryOffset);
        this.#entryOffset = entryOffset;
        this.#entryHeader = header;
        this.#entryCrc = crc32(buf.subarray(pos, pos + header.headerLength));
        this.#entryLength = header.headerLength;
        this.#inflater.begin(header.size, entryOffset);
        pos += header.headerLength;
        this.#phase = 'entry-data';
      } else if (this.#phase === 'header') {
        if (end - pos < PACK_HEADER_LENGTH) break;
        const { objectCount } = decodePackHeader(buf.subarray(pos, pos + PACK_HEADER_LENGTH));
        if (objectCount > this.#maxObjects) {
          throw new LimitError('LIMIT_EXCEEDED', `pack holds ${objectCount} objects; the limit is ${this.#maxObjects}`);
        }
        this.#objectCount = objectCount;
        pos += PACK_HEADER_LENGTH;
        this.#phase = 'entry-header';
      } else {
        // The trailer is the SHA-1 of all bytes before it: hash up to here, then compare.
        if (hashFrom < pos) this.#hash.update(buf.subarray(hashFrom, pos));
        hashFrom = pos;
        if (end - pos < OID_RAW_LENGTH) break;
        this.#checkTrailer(buf.subarray(pos, pos + OID_RAW_LENGTH));
        this.#packSize = this.#bufOffset + pos + OID_RAW_LENGTH;
        if (pos + OID_RAW_LENGTH < end) this.#remainder.push(copyOf(buf.subarray(pos + OID_RAW_LENGTH)));
        return out;
      }
      if (this.#phase === 'entry-header' && this.#seen === this.#objectCount) this.#phase = 'trailer';
    }
    if (hashFrom < pos) this.#hash.update(buf.subarray(hashFrom, pos));
    // Keep only the unparsed tail: a partial pack header, entry header or trailer (< 64 bytes).
    if (pos < end) this.#carry = copyOf(buf.subarray(pos));
    this.#bufOffset += pos;
    return out;
  }

  /** After the last chunk: the pack's object count, checksum and size; throws ProtocolError('PACK_TRUNCATED'). */
  end(): { objectCount: number; checksum: ObjectId; packSize: number } {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#phase !== 'complete' || this.#checksum === undefined || this.#objectCount === undefined) {
      throw new ProtocolError('PACK_TRUNCATED', `pack ended early after ${this.#received} bytes (${this.#seen} objects read)`);
    }
    return { objectCount: this.#objectCount, checksum: this.#checksum, packSize: this.#packSize };
  }

  #checkSize(size: number, at: number): void {
    if (size > this.#maxObjectSize) {
      throw new LimitError('LIMIT_EXCEEDED', `pack entry at offset ${at} is ${size} bytes; the limit is ${this.#maxObjectSize}`);
    }
  }

  #completeEntry(data: Uint8Array): ScannedEntry {
    const header = this.#entryHeader!;
    if (header.type === 'ofs-delta' || header.type === 'ref-delta') {
      let resultSize: number;
      try {
        resultSize = deltaSizes(data).resultSize;
      } catch (err) {
        if (err instanceof StowageError) {
          throw new ProtocolError('PACK_BAD_DELTA', `pack entry at offset ${this.#entryOffset}: ${err.message}`, { cause: err });
        }
        throw err;
      }
      this.#checkSize(resultSize, this.#entryOffset);
    }
    this.#seen++;
    this.#phase = 'entry-header';
    return {
      offset: this.#entryOffset,
      header,
      data,
      packedLength: this.#entryLength,
      crc32: this.#entryCrc >>> 0,
    };
  }

  #checkTrailer(trailer: Uint8Array): void {
    const digest = this.#hash.digest();
    if (!digest.equals(trailer)) {
      throw new ProtocolError('PACK_BAD_CHECKSUM', `pack checksum mismatch: computed ${digest.toString('hex')}, trailer says ${Buffer.from(trailer).toString('hex')}`);
    }
    this.#checksum = digest.toString('hex') as ObjectId;
    this.#phase = 'complete';
  }
}
