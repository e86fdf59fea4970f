/**
 * Bounds-checked big-endian reads over one option's data, and the string rule every NBD
 * string follows (UTF-8, no NUL, at most 4096 bytes). Running past the end or a bad string is
 * a ProtocolError, which a server answers with NBD_REP_ERR_INVALID.
 */
import { ProtocolError } from '../../core/errors.js';
import { NBD_MAX_STRING_LENGTH } from './constants.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Views `bytes` as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes a string as UTF-8 bytes. */
export function encodeString(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Decodes an NBD string: strict UTF-8, no NUL, at most 4096 bytes. */
export function decodeString(bytes: Uint8Array, what: string): string {
  if (bytes.byteLength > NBD_MAX_STRING_LENGTH) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `${what} is ${bytes.byteLength} bytes; NBD strings are at most ${NBD_MAX_STRING_LENGTH}`);
  }
  if (bytes.includes(0)) throw new ProtocolError('PROTO_BAD_REQUEST', `${what} contains a NUL byte`);
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `${what} is not valid UTF-8`, { cause: err });
  }
}

/** Sequential reader over one message. */
export class Cursor {
  private pos = 0;
  private readonly buf: Buffer;

  constructor(bytes: Uint8Array, private readonly what: string) {
    this.buf = asBuffer(bytes);
  }

  get remaining(): number {
    return this.buf.byteLength - this.pos;
  }

  private need(n: number): void {
    if (this.remaining < n) {
      throw new ProtocolError('PROTO_BAD_REQUEST', `${this.what} is truncated: needs ${n} more bytes, has ${this.remaining}`);
    }
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A u32 length then that many bytes of string. */
  string32(what: string): string {
    const n = this.u32();
    return decodeString(this.bytes(n), what);
  }

  /** The rest of the message. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  /** Throws unless every byte was consumed (trailing garbage is a malformed option). */
  end(): void {
    if (this.remaining !== 0) throw new ProtocolError('PROTO_BAD_REQUEST', `${this.what} has ${this.remaining} unexpected trailing bytes`);
  }
}
