/** pkt-line encoding (gitprotocol-common "pkt-line Format"). */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { PKT_PAYLOAD_MAX } from '../../core/limits.js';
import type { PktLine } from './decode.js';

/** "0000": ends a message or section. */
export const FLUSH_PKT: Uint8Array = Buffer.from('0000', 'latin1');
/** "0001": separates sections in protocol v2. */
export const DELIM_PKT: Uint8Array = Buffer.from('0001', 'latin1');
/** "0002": ends a protocol v2 response over stateless transports. */
export const RESPONSE_END_PKT: Uint8Array = Buffer.from('0002', 'latin1');

const HEX = '0123456789abcdef';

/** Writes the 4-hex-digit length `len` at `off` of `out`. */
export function writePktLength(out: Uint8Array, off: number, len: number): void {
  out[off] = HEX.charCodeAt((len >>> 12) & 15);
  out[off + 1] = HEX.charCodeAt((len >>> 8) & 15);
  out[off + 2] = HEX.charCodeAt((len >>> 4) & 15);
  out[off + 3] = HEX.charCodeAt(len & 15);
}

/** Frames one data pkt-line (strings as UTF-8); throws LimitError('PKT_TOO_LONG') past 65516 bytes. */
export function encodePktLine(payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length > PKT_PAYLOAD_MAX) {
    throw new LimitError('PKT_TOO_LONG', `pkt-line payload of ${body.length} bytes exceeds the maximum of ${PKT_PAYLOAD_MAX}`);
  }
  const out = Buffer.allocUnsafe(body.length + 4);
  writePktLength(out, 0, body.length + 4);
  out.set(body, 4);
  return out;
}

/** Encodes a PktLine value (data or special). */
export function encodePkt(line: PktLine): Uint8Array {
  switch (line.kind) {
    case 'data':
      return encodePktLine(line.payload);
    case 'flush':
      return FLUSH_PKT;
    case 'delim':
      return DELIM_PKT;
    case 'response-end':
      return RESPONSE_END_PKT;
  }
}

/**
 * Text of a data line: UTF-8, with ONE trailing LF stripped (receivers must treat lines with
 * and without it alike). Throws ProtocolError('PKT_UNEXPECTED') for a special packet.
 */
export function pktLineText(line: Uint8Array | PktLine): string {
  let payload: Uint8Array;
  if (line instanceof Uint8Array) payload = line;
  else if (line.kind === 'data') payload = line.payload;
  else throw new ProtocolError('PKT_UNEXPECTED', `expected a data line, got a ${line.kind} packet`);
  const end = payload.length > 0 && payload[payload.length - 1] === 0x0a ? payload.length - 1 : payload.length;
  return Buffer.from(payload.buffer, payload.byteOffset, end).toString('utf8');
}
