/**
 * Helpers shared by the protocol codecs: framing text lines as pkt-lines into one buffer,
 * and reading object ids out of request lines.
 */
import { ProtocolError } from '../../core/errors.js';
import { isObjectId, type ObjectId } from '../hash/object-id.js';
import { DELIM_PKT, FLUSH_PKT, encodePktLine } from '../pktline/encode.js';

/** A pkt-line to frame: text (UTF-8, sent as is) or a special packet. */
export type OutLine = string | Uint8Array | { readonly special: 'flush' | 'delim' };

/** Marks the end of a message. */
export const FLUSH: OutLine = Object.freeze({ special: 'flush' as const });
/** Separates sections (protocol v2). */
export const DELIM: OutLine = Object.freeze({ special: 'delim' as const });

/** Frames lines as pkt-lines in one buffer (text lines get one trailing LF, as git sends them). */
export function frameLines(lines: readonly OutLine[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const l of lines) {
    if (typeof l === 'string') parts.push(encodePktLine(`${l}\n`));
    else if (l instanceof Uint8Array) parts.push(encodePktLine(l));
    else parts.push(l.special === 'flush' ? FLUSH_PKT : DELIM_PKT);
  }
  return Buffer.concat(parts);
}

/**
 * Reads a hex id that must be the whole of `hex`. Upper case is accepted and lowered
 * (gitprotocol-pack: both sides MUST treat obj-id as case-insensitive). Throws
 * ProtocolError(code) naming `what`.
 */
export function expectOid(hex: string, what: string, code: 'PROTO_BAD_REQUEST' | 'PROTO_BAD_WANT' = 'PROTO_BAD_REQUEST'): ObjectId {
  if (isObjectId(hex)) return hex;
  const lower = hex.toLowerCase();
  if (!isObjectId(lower)) {
    throw new ProtocolError(code, `${what}: expected a 40-digit lowercase hex object id, got ${JSON.stringify(hex.slice(0, 80))}`);
  }
  return lower;
}

/** A line shortened and quoted for an error message. */
export function quoteLine(line: string): string {
  return JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line);
}

/** Characters that may never appear in a ref name on the wire (they would split the line). */
const WIRE_UNSAFE_RE = /[\0\n ]/;

/** Throws ProtocolError('PROTO_BAD_REQUEST') if `name` is empty or would break a line format. */
export function checkWireRefName(name: string): void {
  if (name.length === 0 || WIRE_UNSAFE_RE.test(name)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `ref name ${quoteLine(name)} cannot be sent on the wire`);
  }
}
