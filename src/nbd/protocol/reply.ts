/**
 * Transmission replies: simple replies (16-byte header, then READ data when the error is zero)
 * and structured reply chunks (20-byte header, then a typed payload). Encoders that carry bulk
 * data return only the header so the caller can send the data without copying it.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import {
  NBD_MAX_PAYLOAD,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  SIMPLE_REPLY_HEADER_LENGTH,
  STRUCTURED_HEADER_LENGTH,
} from './constants.js';
import { Cursor, asBuffer, decodeString } from './cursor.js';
import type { NeedMore } from './handshake.js';
import { encodeErrorMessage } from './option-data.js';

/** One base:allocation descriptor on the wire. */
export interface StatusDescriptor {
  readonly length: number;
  readonly flags: number;
}

/** The header of a simple reply (READ data, if any, follows it). */
export function encodeSimpleReply(error: number, cookie: bigint): Uint8Array {
  const b = Buffer.alloc(SIMPLE_REPLY_HEADER_LENGTH);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error >>> 0, 4);
  b.writeBigUInt64BE(cookie, 8);
  return b;
}

function chunkHeader(b: Buffer, flags: number, type: number, cookie: bigint, length: number): void {
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeUInt32BE(length >>> 0, 16);
}

/** NBD_REPLY_TYPE_NONE with DONE: the end of a successful structured reply. */
export function encodeNoneChunk(cookie: bigint): Uint8Array {
  const b = Buffer.alloc(STRUCTURED_HEADER_LENGTH);
  chunkHeader(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookie, 0);
  return b;
}

/** Header and offset of an OFFSET_DATA chunk; `dataLength` bytes of data must follow. */
export function encodeOffsetDataHeader(flags: number, cookie: bigint, offset: number, dataLength: number): Uint8Array {
  const b = Buffer.alloc(STRUCTURED_HEADER_LENGTH + 8);
  chunkHeader(b, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataLength);
  b.writeBigUInt64BE(BigInt(offset), STRUCTURED_HEADER_LENGTH);
  return b;
}

/** An OFFSET_HOLE chunk: `size` (nonzero) bytes of zeroes at `offset`. */
export function encodeOffsetHoleChunk(flags: number, cookie: bigint, offset: number, size: number): Uint8Array {
  const b = Buffer.alloc(STRUCTURED_HEADER_LENGTH + 12);
  chunkHeader(b, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12);
  b.writeBigUInt64BE(BigInt(offset), STRUCTURED_HEADER_LENGTH);
  b.writeUInt32BE(size, STRUCTURED_HEADER_LENGTH + 8);
  return b;
}

/** A BLOCK_STATUS chunk for one metadata context. */
export function encodeBlockStatusChunk(flags: number, cookie: bigint, contextId: number, extents: readonly StatusDescriptor[]): Uint8Array {
  const len = 4 + 8 * extents.length;
  const b = Buffer.alloc(STRUCTURED_HEADER_LENGTH + len);
  chunkHeader(b, flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, len);
  b.writeUInt32BE(contextId >>> 0, STRUCTURED_HEADER_LENGTH);
  let p = STRUCTURED_HEADER_LENGTH + 4;
  for (const e of extents) {
    b.writeUInt32BE(e.length >>> 0, p);
    b.writeUInt32BE(e.flags >>> 0, p + 4);
    p += 8;
  }
  return b;
}

/** An ERROR chunk (error nonzero) with a message for a human. */
export function encodeErrorChunk(flags: number, cookie: bigint, error: number, message: string): Uint8Array {
  const m = encodeErrorMessage(message);
  const b = Buffer.alloc(STRUCTURED_HEADER_LENGTH + 6 + m.byteLength);
  chunkHeader(b, flags, NBD_REPLY_TYPE_ERROR, cookie, 6 + m.byteLength);
  b.writeUInt32BE(error >>> 0, STRUCTURED_HEADER_LENGTH);
  b.writeUInt16BE(m.byteLength, STRUCTURED_HEADER_LENGTH + 4);
  b.set(m, STRUCTURED_HEADER_LENGTH + 6);
  return b;
}

/** An ERROR_OFFSET chunk: an error at `offset` within the request. */
export function encodeErrorOffsetChunk(flags: number, cookie: bigint, error: number, message: string, offset: number): Uint8Array {
  const m = encodeErrorMessage(message);
  const b = Buffer.alloc(STRUCTURED_HEADER_LENGTH + 14 + m.byteLength);
  chunkHeader(b, flags, NBD_REPLY_TYPE_ERROR_OFFSET, cookie, 14 + m.byteLength);
  b.writeUInt32BE(error >>> 0, STRUCTURED_HEADER_LENGTH);
  b.writeUInt16BE(m.byteLength, STRUCTURED_HEADER_LENGTH + 4);
  b.set(m, STRUCTURED_HEADER_LENGTH + 6);
  b.writeBigUInt64BE(BigInt(offset), STRUCTURED_HEADER_LENGTH + 6 + m.byteLength);
  return b;
}

/** A decoded structured chunk payload. */
export type ChunkPayload =
  | { readonly kind: 'none' }
  | { readonly kind: 'offset-data'; readonly offset: bigint; readonly data: Uint8Array }
  | { readonly kind: 'offset-hole'; readonly offset: bigint; readonly size: number }
  | { readonly kind: 'block-status'; readonly contextId: number; readonly extents: StatusDescriptor[] }
  | { readonly kind: 'error'; readonly error: number; readonly message: string }
  | { readonly kind: 'error-offset'; readonly error: number; readonly message: string; readonly offset: bigint }
  | { readonly kind: 'unknown'; readonly data: Uint8Array };

/** A decoded reply (client side). */
export type Reply =
  | { readonly kind: 'simple'; readonly error: number; readonly cookie: bigint; readonly data: Uint8Array }
  | { readonly kind: 'chunk'; readonly flags: number; readonly type: number; readonly cookie: bigint; readonly payload: ChunkPayload };

function errorFields(c: Cursor): { error: number; message: string } {
  const error = c.u32();
  if (error === 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'error chunk with error 0');
  const n = c.u16();
  return { error, message: decodeString(c.bytes(n), 'error message') };
}

/** Decodes a chunk payload by type; ProtocolError when its length breaks the type's rules. */
export function decodeChunkPayload(type: number, data: Uint8Array): ChunkPayload {
  const c = new Cursor(data, `structured reply chunk type ${type}`);
  switch (type) {
    case NBD_REPLY_TYPE_NONE:
      c.end();
      return { kind: 'none' };
    case NBD_REPLY_TYPE_OFFSET_DATA: {
      const offset = c.u64();
      if (c.remaining === 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'OFFSET_DATA chunk without data');
      return { kind: 'offset-data', offset, data: c.rest() };
    }
    case NBD_REPLY_TYPE_OFFSET_HOLE: {
      const offset = c.u64();
      const size = c.u32();
      c.end();
      if (size === 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'OFFSET_HOLE chunk of size 0');
      return { kind: 'offset-hole', offset, size };
    }
    case NBD_REPLY_TYPE_BLOCK_STATUS: {
      const contextId = c.u32();
      if (c.remaining === 0 || c.remaining % 8 !== 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'BLOCK_STATUS chunk length is not 4 + 8n (n > 0)');
      const extents: StatusDescriptor[] = [];
      while (c.remaining > 0) extents.push({ length: c.u32(), flags: c.u32() });
      return { kind: 'block-status', contextId, extents };
    }
    case NBD_REPLY_TYPE_ERROR: {
      const e = errorFields(c);
      c.end();
      return { kind: 'error', ...e };
    }
    case NBD_REPLY_TYPE_ERROR_OFFSET: {
      const e = errorFields(c);
      const offset = c.u64();
      c.end();
      return { kind: 'error-offset', ...e, offset };
    }
    default:
      return { kind: 'unknown', data: c.rest() };
  }
}

/**
 * Decodes one reply. A simple reply's data length is not on the wire: `readLength(cookie)` says
 * how many data bytes follow a successful simple reply (the READ's length, else 0).
 */
export function decodeReply(
  input: Uint8Array,
  readLength: (cookie: bigint) => number = () => 0,
  maxLength: number = NBD_MAX_PAYLOAD + 64,
): NeedMore | { readonly kind: 'reply'; readonly reply: Reply; readonly consumed: number } {
  if (input.byteLength < 4) return { kind: 'need-more', bytesNeeded: 4 - input.byteLength };
  const b = asBuffer(input);
  const magic = b.readUInt32BE(0);
  if (magic === NBD_SIMPLE_REPLY_MAGIC) {
    if (b.byteLength < SIMPLE_REPLY_HEADER_LENGTH) return { kind: 'need-more', bytesNeeded: SIMPLE_REPLY_HEADER_LENGTH - b.byteLength };
    const error = b.readUInt32BE(4);
    const cookie = b.readBigUInt64BE(8);
    const n = error === 0 ? readLength(cookie) : 0;
    if (n > maxLength) throw new LimitError('LIMIT_EXCEEDED', `simple reply data of ${n} bytes exceeds ${maxLength}`);
    const total = SIMPLE_REPLY_HEADER_LENGTH + n;
    if (b.byteLength < total) return { kind: 'need-more', bytesNeeded: total - b.byteLength };
    return { kind: 'reply', reply: { kind: 'simple', error, cookie, data: b.subarray(SIMPLE_REPLY_HEADER_LENGTH, total) }, consumed: total };
  }
  if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
    if (b.byteLength < STRUCTURED_HEADER_LENGTH) return { kind: 'need-more', bytesNeeded: STRUCTURED_HEADER_LENGTH - b.byteLength };
    const length = b.readUInt32BE(16);
    if (length > maxLength) throw new LimitError('LIMIT_EXCEEDED', `structured chunk of ${length} bytes exceeds ${maxLength}`);
    const total = STRUCTURED_HEADER_LENGTH + length;
    if (b.byteLength < total) return { kind: 'need-more', bytesNeeded: total - b.byteLength };
    const type = b.readUInt16BE(6);
    return {
      kind: 'reply',
      reply: {
        kind: 'chunk',
        flags: b.readUInt16BE(4),
        type,
        cookie: b.readBigUInt64BE(8),
        payload: decodeChunkPayload(type, b.subarray(STRUCTURED_HEADER_LENGTH, total)),
      },
      consumed: total,
    };
  }
  throw new ProtocolError('PROTO_BAD_REQUEST', `bad reply magic 0x${magic.toString(16)}`);
}
