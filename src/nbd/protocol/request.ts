/**
 * Transmission requests: the 28-byte header (magic, command flags, type, cookie, offset,
 * length) and, for NBD_CMD_WRITE, `length` bytes of payload. `RequestDecoder` is incremental:
 * push whatever the socket delivered and take the complete requests. A WRITE longer than the
 * maximum payload is drained without buffering and reported as `write-too-big`, so the server
 * can answer EINVAL and stay in step with the stream (the spec requires the payload to be
 * consumed before an error reply).
 */
import { ProtocolError } from '../../core/errors.js';
import { NBD_CMD_WRITE, NBD_MAX_PAYLOAD, NBD_REQUEST_MAGIC, REQUEST_HEADER_LENGTH } from './constants.js';
import { asBuffer } from './cursor.js';
import type { NeedMore } from './handshake.js';
import { ByteQueue } from './byte-queue.js';

/** One request header. `offset` and `cookie` are u64 (bigint: a hostile offset is exact). */
export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  readonly cookie: bigint;
  readonly offset: bigint;
  readonly length: number;
}

/** What the decoder hands over. */
export type DecodedRequest =
  | { readonly kind: 'request'; readonly request: NbdRequest }
  /**
   * `payload`: the WRITE's bytes in order, one piece or several (views of received chunks).
   * `owned`: the receiver may keep the pieces (or views of them): a buffer of its own, or views
   * of received chunks long enough that pinning those chunks costs little; otherwise a view of
   * a chunk mostly holding other requests: copy to keep.
   */
  | { readonly kind: 'write'; readonly request: NbdRequest; readonly payload: readonly Uint8Array[]; readonly owned: boolean }
  | { readonly kind: 'write-too-big'; readonly request: NbdRequest };

/**
 * Payloads at least this long are handed over as views of the chunks they arrived in, never
 * copied (at most one partly used chunk at each end is pinned beside them); shorter ones
 * spread over several chunks are copied into one buffer. Joining nbdcopy's 256 KiB payloads
 * copied every byte written and allocated as many bytes again; V8 paces its full collections
 * by such allocations (measured, 512 MiB copy-in: 15-26 mark-compacts before, 10-12 after,
 * together with the pooled upload bodies of block-io.ts).
 */
export const GATHER_MIN = 128 * 1024;

/** Encodes a request header, followed by `payload` for a WRITE (client side). */
export function encodeRequest(req: NbdRequest, payload?: Uint8Array): Uint8Array {
  const b = Buffer.alloc(REQUEST_HEADER_LENGTH + (payload?.byteLength ?? 0));
  b.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  b.writeUInt16BE(req.flags, 4);
  b.writeUInt16BE(req.type, 6);
  b.writeBigUInt64BE(req.cookie, 8);
  b.writeBigUInt64BE(req.offset, 16);
  b.writeUInt32BE(req.length >>> 0, 24);
  if (payload !== undefined) b.set(payload, REQUEST_HEADER_LENGTH);
  return b;
}

/** Decodes one request header; ProtocolError on a bad magic (the stream is then unusable). */
export function decodeRequestHeader(input: Uint8Array): NeedMore | { readonly kind: 'header'; readonly request: NbdRequest; readonly consumed: number } {
  if (input.byteLength < REQUEST_HEADER_LENGTH) return { kind: 'need-more', bytesNeeded: REQUEST_HEADER_LENGTH - input.byteLength };
  const b = asBuffer(input);
  const magic = b.readUInt32BE(0);
  if (magic !== NBD_REQUEST_MAGIC) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `bad request magic 0x${magic.toString(16)}: expected 0x${NBD_REQUEST_MAGIC.toString(16)}`);
  }
  return {
    kind: 'header',
    request: {
      flags: b.readUInt16BE(4),
      type: b.readUInt16BE(6),
      cookie: b.readBigUInt64BE(8),
      offset: b.readBigUInt64BE(16),
      length: b.readUInt32BE(24),
    },
    consumed: REQUEST_HEADER_LENGTH,
  };
}

type State =
  | { readonly kind: 'header' }
  | { readonly kind: 'payload'; readonly request: NbdRequest; readonly buf: Buffer; filled: number }
  | { readonly kind: 'gather'; readonly request: NbdRequest; readonly parts: Buffer[]; remaining: number }
  | { readonly kind: 'skip'; readonly request: NbdRequest; remaining: number };

/** Incremental request decoder for one connection. */
export class RequestDecoder {
  private readonly queue = new ByteQueue();
  private state: State = { kind: 'header' };
  private readonly maxPayload: number;

  constructor(opts: { readonly maxPayload?: number } = {}) {
    this.maxPayload = opts.maxPayload ?? NBD_MAX_PAYLOAD;
  }

  /** Bytes received but not yet part of a handed-over request (payload being filled included). */
  get buffered(): number {
    const s = this.state;
    return this.queue.size + (s.kind === 'payload' ? s.filled : s.kind === 'gather' ? s.request.length - s.remaining : 0);
  }

  /** Adds received bytes; returns every request completed by them. Throws ProtocolError on a bad magic. */
  push(chunk: Uint8Array): DecodedRequest[] {
    this.queue.push(asBuffer(chunk));
    const out: DecodedRequest[] = [];
    for (;;) {
      const s = this.state;
      if (s.kind === 'header') {
        if (this.queue.size < REQUEST_HEADER_LENGTH) return out;
        const step = decodeRequestHeader(this.queue.take(REQUEST_HEADER_LENGTH));
        if (step.kind !== 'header') return out; // unreachable: 28 bytes were taken
        const req = step.request;
        if (req.type !== NBD_CMD_WRITE) out.push({ kind: 'request', request: req });
        else if (req.length > this.maxPayload) this.state = { kind: 'skip', request: req, remaining: req.length };
        else if (req.length === 0) out.push({ kind: 'write', request: req, payload: [], owned: true });
        else if (this.queue.frontLength >= req.length) out.push({ kind: 'write', request: req, payload: [this.queue.take(req.length)], owned: req.length >= GATHER_MIN });
        else if (req.length >= GATHER_MIN) this.state = { kind: 'gather', request: req, parts: [], remaining: req.length };
        else this.state = { kind: 'payload', request: req, buf: Buffer.allocUnsafe(req.length), filled: 0 };
      } else if (s.kind === 'gather') {
        while (s.remaining > 0 && this.queue.size > 0) {
          const part = this.queue.take(Math.min(s.remaining, this.queue.frontLength));
          s.parts.push(part);
          s.remaining -= part.byteLength;
        }
        if (s.remaining > 0) return out;
        out.push({ kind: 'write', request: s.request, payload: s.parts, owned: true });
        this.state = { kind: 'header' };
      } else if (s.kind === 'payload') {
        while (s.filled < s.buf.byteLength && this.queue.size > 0) {
          const part = this.queue.take(Math.min(s.buf.byteLength - s.filled, this.queue.frontLength));
          s.buf.set(part, s.filled);
          s.filled += part.byteLength;
        }
        if (s.filled < s.buf.byteLength) return out;
        out.push({ kind: 'write', request: s.request, payload: [s.buf], owned: true });
        this.state = { kind: 'header' };
      } else {
        while (s.remaining > 0 && this.queue.size > 0) {
          s.remaining -= this.queue.take(Math.min(s.remaining, this.queue.frontLength)).byteLength;
        }
        if (s.remaining > 0) return out;
        out.push({ kind: 'write-too-big', request: s.request });
        this.state = { kind: 'header' };
      }
    }
  }
}
