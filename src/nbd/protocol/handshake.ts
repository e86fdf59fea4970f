/**
 * Sans-I/O codecs of the fixed-newstyle handshake: the server greeting, the client flags, option
 * requests, option replies, and the reply that ends NBD_OPT_EXPORT_NAME. Decoders take the bytes
 * received so far and answer `need-more` or one message with the bytes it consumed, so any
 * chunking of the input gives the same messages.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INIT_PASSWD,
  NBD_MAX_OPTION_LENGTH,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  OPTION_HEADER_LENGTH,
  OPTION_REPLY_HEADER_LENGTH,
} from './constants.js';
import { asBuffer } from './cursor.js';

/** "Not enough bytes yet": read at least `bytesNeeded` more and call again with everything. */
export interface NeedMore {
  readonly kind: 'need-more';
  readonly bytesNeeded: number;
}

function needMore(have: number, want: number): NeedMore {
  return { kind: 'need-more', bytesNeeded: want - have };
}

/** The handshake flags this server sends: fixed newstyle and no zeroes. */
export const SERVER_HANDSHAKE_FLAGS = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;

/** The 18-byte newstyle greeting: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
export function encodeGreeting(handshakeFlags: number = SERVER_HANDSHAKE_FLAGS): Uint8Array {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBD_INIT_PASSWD, 0);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

/** Decodes the greeting (client side); ProtocolError unless it is a newstyle greeting. */
export function decodeGreeting(input: Uint8Array): NeedMore | { readonly kind: 'greeting'; readonly flags: number; readonly consumed: number } {
  if (input.byteLength < 18) return needMore(input.byteLength, 18);
  const b = asBuffer(input);
  if (b.readBigUInt64BE(0) !== NBD_INIT_PASSWD || b.readBigUInt64BE(8) !== NBD_OPTS_MAGIC) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'not an NBD newstyle greeting (bad magic)');
  }
  return { kind: 'greeting', flags: b.readUInt16BE(16), consumed: 18 };
}

/** The client's 32-bit flags. */
export function encodeClientFlags(flags: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}

/**
 * Decodes the client flags and checks them against what the server offered: the spec makes the
 * server drop the connection on an unknown flag or one it did not advertise (ProtocolError).
 */
export function decodeClientFlags(
  input: Uint8Array,
  serverFlags: number = SERVER_HANDSHAKE_FLAGS,
): NeedMore | { readonly kind: 'client-flags'; readonly fixedNewstyle: boolean; readonly noZeroes: boolean; readonly consumed: number } {
  if (input.byteLength < 4) return needMore(input.byteLength, 4);
  const flags = asBuffer(input).readUInt32BE(0);
  let allowed = 0;
  if (serverFlags & NBD_FLAG_FIXED_NEWSTYLE) allowed |= NBD_FLAG_C_FIXED_NEWSTYLE;
  if (serverFlags & NBD_FLAG_NO_ZEROES) allowed |= NBD_FLAG_C_NO_ZEROES;
  if ((flags & ~allowed) !== 0) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `client flags 0x${flags.toString(16)} include bits the server did not offer`);
  }
  return {
    kind: 'client-flags',
    fixedNewstyle: (flags & NBD_FLAG_C_FIXED_NEWSTYLE) !== 0,
    noZeroes: (flags & NBD_FLAG_C_NO_ZEROES) !== 0,
    consumed: 4,
  };
}

/** The fixed part of an option request. */
export interface OptionHeader {
  readonly option: number;
  readonly length: number;
}

/** One option request with its data. */
export interface OptionRequest {
  readonly option: number;
  readonly data: Uint8Array;
}

/** Encodes an option request (client side). */
export function encodeOption(option: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = Buffer.alloc(OPTION_HEADER_LENGTH + data.byteLength);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(data.byteLength, 12);
  b.set(data, OPTION_HEADER_LENGTH);
  return b;
}

/** Decodes the 16-byte option header; ProtocolError on a bad magic. No length check. */
export function decodeOptionHeader(input: Uint8Array): NeedMore | ({ readonly kind: 'header' } & OptionHeader) {
  if (input.byteLength < OPTION_HEADER_LENGTH) return needMore(input.byteLength, OPTION_HEADER_LENGTH);
  const b = asBuffer(input);
  if (b.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'bad option magic: expected IHAVEOPT');
  }
  return { kind: 'header', option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

/**
 * Decodes one option request. LimitError when its declared data length exceeds `maxLength`
 * (default 64 KiB): a server must not buffer what a client merely announces.
 */
export function decodeOption(
  input: Uint8Array,
  maxLength: number = NBD_MAX_OPTION_LENGTH,
): NeedMore | ({ readonly kind: 'option'; readonly consumed: number } & OptionRequest) {
  const h = decodeOptionHeader(input);
  if (h.kind === 'need-more') return h;
  if (h.length > maxLength) {
    throw new LimitError('LIMIT_EXCEEDED', `option ${h.option} carries ${h.length} bytes of data; the limit is ${maxLength}`);
  }
  const total = OPTION_HEADER_LENGTH + h.length;
  if (input.byteLength < total) return needMore(input.byteLength, total);
  return { kind: 'option', option: h.option, data: input.subarray(OPTION_HEADER_LENGTH, total), consumed: total };
}

/** One option reply. */
export interface OptionReply {
  readonly option: number;
  readonly type: number;
  readonly data: Uint8Array;
}

/** Encodes an option reply (magic, option, reply type, length, data). */
export function encodeOptionReply(option: number, type: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = Buffer.alloc(OPTION_REPLY_HEADER_LENGTH + data.byteLength);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.byteLength, 16);
  b.set(data, OPTION_REPLY_HEADER_LENGTH);
  return b;
}

/** Decodes one option reply (client side); LimitError past `maxLength` bytes of data. */
export function decodeOptionReply(
  input: Uint8Array,
  maxLength: number = NBD_MAX_OPTION_LENGTH,
): NeedMore | ({ readonly kind: 'reply'; readonly consumed: number } & OptionReply) {
  if (input.byteLength < OPTION_REPLY_HEADER_LENGTH) return needMore(input.byteLength, OPTION_REPLY_HEADER_LENGTH);
  const b = asBuffer(input);
  if (b.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw new ProtocolError('PROTO_BAD_REQUEST', 'bad option reply magic');
  const length = b.readUInt32BE(16);
  if (length > maxLength) throw new LimitError('LIMIT_EXCEEDED', `option reply of ${length} bytes exceeds the limit of ${maxLength}`);
  const total = OPTION_REPLY_HEADER_LENGTH + length;
  if (input.byteLength < total) return needMore(input.byteLength, total);
  return {
    kind: 'reply',
    option: b.readUInt32BE(8),
    type: b.readUInt32BE(12),
    data: input.subarray(OPTION_REPLY_HEADER_LENGTH, total),
    consumed: total,
  };
}

/**
 * The reply to NBD_OPT_EXPORT_NAME: size, transmission flags, then 124 zero bytes unless the
 * client set NBD_FLAG_C_NO_ZEROES.
 */
export function encodeExportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Uint8Array {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

/** Decodes the EXPORT_NAME reply (client side). */
export function decodeExportNameReply(
  input: Uint8Array,
  noZeroes: boolean,
): NeedMore | { readonly kind: 'export'; readonly size: number; readonly flags: number; readonly consumed: number } {
  const total = noZeroes ? 10 : 134;
  if (input.byteLength < total) return needMore(input.byteLength, total);
  const b = asBuffer(input);
  return { kind: 'export', size: safeNumber(b.readBigUInt64BE(0), 'export size'), flags: b.readUInt16BE(8), consumed: total };
}

/** A u64 as a number; ProtocolError past 2^53 (no export is that large). */
export function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('PROTO_BAD_REQUEST', `${what} ${v} is too large`);
  return Number(v);
}
