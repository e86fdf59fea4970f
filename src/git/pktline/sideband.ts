/**
 * Side-band multiplexing (gitprotocol-capabilities "side-band, side-band-64k"): each packet is
 * a pkt-line whose first payload byte is the band: 1 pack data, 2 progress, 3 fatal error.
 */
import { LimitError, ProtocolError, ValidationError } from '../../core/errors.js';
import { decodePktLine } from './decode.js';
import { writePktLength } from './encode.js';

/** Data bytes per side-band-64k packet: 65520 minus 4 length bytes minus the band byte. */
export const SIDEBAND_64K_MAX = 65515;
/** Data bytes per side-band packet: 1000 minus 4 length bytes minus the band byte. */
export const SIDEBAND_MAX = 995;

/** The three bands. */
export type SidebandBand = 1 | 2 | 3;

/**
 * Frames `data` on `band` as pkt-lines of at most `maxPayload` data bytes each (one output
 * buffer, one copy). Empty data yields no packet. Throws LimitError('PKT_TOO_LONG') when
 * maxPayload exceeds SIDEBAND_64K_MAX.
 */
export function encodeSideband(band: SidebandBand, data: Uint8Array, maxPayload: number): Uint8Array {
  checkPayloadSize(maxPayload);
  const packets = Math.ceil(data.length / maxPayload);
  const out = Buffer.allocUnsafe(data.length + packets * 5);
  let src = 0;
  let dst = 0;
  while (src < data.length) {
    const n = Math.min(maxPayload, data.length - src);
    writePktLength(out, dst, n + 5);
    out[dst + 4] = band;
    out.set(data.subarray(src, src + n), dst + 5);
    src += n;
    dst += n + 5;
  }
  return out;
}

/**
 * Frames `parts` (one run of data, in order) on `band` like encodeSideband, without copying
 * the data: the result interleaves each packet's 5-byte header (length and band; all headers
 * share one small buffer) with views of `parts`, to be written in order. The parts must not
 * change until written. Same limits and errors as encodeSideband.
 */
export function frameSideband(band: SidebandBand, parts: readonly Uint8Array[], maxPayload: number): Uint8Array[] {
  checkPayloadSize(maxPayload);
  let total = 0;
  for (const p of parts) total += p.length;
  const packets = Math.ceil(total / maxPayload);
  const heads = Buffer.allocUnsafe(packets * 5);
  const out: Uint8Array[] = [];
  let left = 0;
  let h = 0;
  for (const p of parts) {
    let src = 0;
    while (src < p.length) {
      if (left === 0) {
        left = Math.min(maxPayload, total);
        total -= left;
        writePktLength(heads, h, left + 5);
        heads[h + 4] = band;
        out.push(heads.subarray(h, h + 5));
        h += 5;
      }
      const n = Math.min(left, p.length - src);
      out.push(n === p.length ? p : p.subarray(src, src + n));
      src += n;
      left -= n;
    }
  }
  return out;
}

function checkPayloadSize(maxPayload: number): void {
  if (!Number.isInteger(maxPayload) || maxPayload < 1) {
    throw new ValidationError('ARG_INVALID', `side-band packet size must be a positive integer, got ${maxPayload}`);
  }
  if (maxPayload > SIDEBAND_64K_MAX) {
    throw new LimitError('PKT_TOO_LONG', `side-band packet size ${maxPayload} exceeds ${SIDEBAND_64K_MAX}`);
  }
}

/** One side-band packet split into band and data; throws ProtocolError('PKT_UNEXPECTED') for a bad band. */
export function decodeSidebandPayload(payload: Uint8Array): { band: SidebandBand; data: Uint8Array } {
  const band = payload[0];
  if (band !== 1 && band !== 2 && band !== 3) {
    throw new ProtocolError('PKT_UNEXPECTED', `bad side-band code ${band === undefined ? '(empty packet)' : band}`);
  }
  return { band, data: payload.subarray(1) };
}

/** A whole side-band stream, demultiplexed. */
export interface SidebandStream {
  readonly data: Uint8Array;
  readonly progress: Uint8Array;
  readonly error: Uint8Array;
  /** True if the stream ended with a flush-pkt (bytes after it are ignored). */
  readonly flushed: boolean;
}

/** Demultiplexes a complete buffer of side-band packets (for tests and simple clients). */
export function decodeSidebandStream(input: Uint8Array): SidebandStream {
  const parts: Uint8Array[][] = [[], [], []];
  let off = 0;
  let flushed = false;
  while (off < input.length) {
    const step = decodePktLine(input.subarray(off));
    if (step.kind === 'need-more') {
      throw new ProtocolError('PKT_TRUNCATED', `side-band stream ends inside a pkt-line (${step.bytesNeeded} more bytes expected)`);
    }
    off += step.consumed;
    const line = step.line;
    if (line.kind === 'flush') {
      flushed = true;
      break;
    }
    if (line.kind !== 'data') throw new ProtocolError('PKT_UNEXPECTED', `unexpected ${line.kind} packet in a side-band stream`);
    const { band, data } = decodeSidebandPayload(line.payload);
    (parts[band - 1] as Uint8Array[]).push(data);
  }
  const [d, p, e] = parts.map((x) => Buffer.concat(x)) as [Buffer, Buffer, Buffer];
  return { data: d, progress: p, error: e, flushed };
}
