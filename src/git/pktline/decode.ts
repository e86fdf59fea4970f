/**
 * Sans-I/O pkt-line decoding (gitprotocol-common "pkt-line Format", gitprotocol-v2 for the
 * delim-pkt 0001 and response-end-pkt 0002): four hex digits of total length, then payload.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { PKT_LINE_MAX } from '../../core/limits.js';

/** One pkt-line. `payload` is a view into the decoded bytes. */
export type PktLine =
  | { readonly kind: 'data'; readonly payload: Uint8Array }
  | { readonly kind: 'flush' }
  | { readonly kind: 'delim' }
  | { readonly kind: 'response-end' };

/** Result of one decode step: a whole line, or how many more bytes are needed at least. */
export type DecodeStep =
  | { readonly kind: 'line'; readonly line: PktLine; readonly consumed: number }
  | { readonly kind: 'need-more'; readonly bytesNeeded: number };

/** The flush-pkt value, shared so decoding special packets allocates nothing. */
export const FLUSH_LINE: PktLine = Object.freeze({ kind: 'flush' });
/** The delim-pkt value. */
export const DELIM_LINE: PktLine = Object.freeze({ kind: 'delim' });
/** The response-end-pkt value. */
export const RESPONSE_END_LINE: PktLine = Object.freeze({ kind: 'response-end' });

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Parses the 4-byte length header at `off` (the caller guarantees 4 bytes). Both hex cases are
 * accepted, as git's packet_length does. Throws ProtocolError('PKT_BAD_LENGTH') for non-hex
 * digits and for the reserved lengths 3, LimitError('PKT_TOO_LONG') above PKT_LINE_MAX.
 */
export function decodePktLength(input: Uint8Array, off = 0): number {
  const a = hexDigit(input[off] as number);
  const b = hexDigit(input[off + 1] as number);
  const c = hexDigit(input[off + 2] as number);
  const d = hexDigit(input[off + 3] as number);
  if ((a | b | c | d) < 0) {
    const shown = Buffer.from(input.subarray(off, off + 4)).toString('latin1');
    throw new ProtocolError('PKT_BAD_LENGTH', `bad pkt-line length header ${JSON.stringify(shown)}: expected 4 hex digits`);
  }
  const len = (a << 12) | (b << 8) | (c << 4) | d;
  if (len === 3) throw new ProtocolError('PKT_BAD_LENGTH', 'bad pkt-line length 0003: lengths 1-3 are reserved');
  // Blocks a peer from making us buffer arbitrary amounts for one line.
  if (len > PKT_LINE_MAX) {
    throw new LimitError('PKT_TOO_LONG', `pkt-line of ${len} bytes exceeds the maximum of ${PKT_LINE_MAX}`);
  }
  return len;
}

/** Decodes the pkt-line at the start of `input`, or says how many more bytes it needs. */
export function decodePktLine(input: Uint8Array): DecodeStep {
  if (input.length < 4) return { kind: 'need-more', bytesNeeded: 4 - input.length };
  const len = decodePktLength(input, 0);
  switch (len) {
    case 0:
      return { kind: 'line', line: FLUSH_LINE, consumed: 4 };
    case 1:
      return { kind: 'line', line: DELIM_LINE, consumed: 4 };
    case 2:
      return { kind: 'line', line: RESPONSE_END_LINE, consumed: 4 };
    default:
      if (input.length < len) return { kind: 'need-more', bytesNeeded: len - input.length };
      return { kind: 'line', line: { kind: 'data', payload: input.subarray(4, len) }, consumed: len };
  }
}

/** Decodes a whole buffer of pkt-lines; throws ProtocolError('PKT_TRUNCATED') if it ends mid-line. */
export function decodePktLines(input: Uint8Array): PktLine[] {
  const out: PktLine[] = [];
  let off = 0;
  while (off < input.length) {
    const step = decodePktLine(input.subarray(off));
    if (step.kind === 'need-more') {
      throw new ProtocolError('PKT_TRUNCATED', `input ends inside a pkt-line (${step.bytesNeeded} more bytes expected)`);
    }
    out.push(step.line);
    off += step.consumed;
  }
  return out;
}
