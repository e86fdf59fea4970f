/**
 * The transmission phase of one connection: requests are decoded as bytes arrive, checked
 * (command, flags, read-only, range, alignment, length) and run concurrently on the device;
 * each reply goes out as soon as its request completes, so replies are out of order. Reading
 * the socket pauses while too many bytes or requests are in flight, or while the socket's
 * write buffer is full (back-pressure both ways).
 */
import type { Duplex } from 'node:stream';
import { AuthError, ConflictError, LimitError, StowageError, ValidationError, publicMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { BlockDevice, Extent } from '../device/block-device.js';
import * as K from '../protocol/constants.js';
import { RequestDecoder, type DecodedRequest, type NbdRequest } from '../protocol/request.js';
import {
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeNoneChunk,
  encodeOffsetDataHeader,
  encodeOffsetHoleChunk,
  encodeSimpleReply,
  type StatusDescriptor,
} from '../protocol/reply.js';
import { BASE_ALLOCATION_ID, advertisedBlockSizes, type Negotiated } from './negotiate.js';

/** Bytes of READ/WRITE data in flight on one connection before reading pauses. */
const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** Requests in flight on one connection before reading pauses. */
const MAX_IN_FLIGHT_REQUESTS = 512;
/** Extents in one BLOCK_STATUS chunk (the spec's SHOULD-not-exceed). */
const MAX_EXTENTS = 1 << 20;
/** Reads at least this long that are all zero go out as one OFFSET_HOLE chunk. */
const HOLE_MIN = 4096;
const ZEROES = Buffer.alloc(1024 * 1024);

/** An error answered with a specific NBD errno and a message for the human. */
class NbdRequestError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

/** The NBD errno for an error thrown by a device. */
export function errnoFor(err: unknown): number {
  if (err instanceof NbdRequestError) return err.errno;
  if (err instanceof ValidationError) return K.NBD_EINVAL;
  if (err instanceof ConflictError || err instanceof AuthError) return K.NBD_EPERM;
  if (err instanceof LimitError) return K.NBD_ENOSPC;
  if (err instanceof StowageError && err.code === 'ABORTED') return K.NBD_ESHUTDOWN;
  const errno = (err as { nbdErrno?: unknown } | null)?.nbdErrno;
  if (typeof errno === 'number' && errno > 0) return errno;
  return K.NBD_EIO;
}

function isAllZero(b: Uint8Array): boolean {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 0; p < buf.byteLength; p += ZEROES.byteLength) {
    const end = Math.min(buf.byteLength, p + ZEROES.byteLength);
    if (buf.compare(ZEROES, 0, end - p, p, end) !== 0) return false;
  }
  return true;
}

/** Options of one transmission phase. */
export interface TransmissionOptions {
  readonly stream: Duplex;
  readonly negotiated: Negotiated;
  /** Bytes already received after the handshake. */
  readonly leftover: readonly Buffer[];
  readonly log: Logger;
  /** Replaced by the server's shutdown: new requests then get ESHUTDOWN. */
  readonly closing: () => boolean;
}

/** Serves requests until DISC, EOF, a protocol violation or shutdown; releases nothing itself. */
export class Transmission {
  private readonly decoder: RequestDecoder;
  private readonly device: BlockDevice;
  private readonly maxPayload: number;
  private readonly minBlock: number;
  private inFlightBytes = 0;
  private inFlight = 0;
  private stopped = false;
  private idle: (() => void) | undefined;
  private finished: (() => void) | undefined;
  private paused = false;
  private corked = false;

  constructor(private readonly opts: TransmissionOptions) {
    this.device = opts.negotiated.handle.device;
    const sizes = advertisedBlockSizes(this.device);
    this.maxPayload = sizes.maximum;
    this.minBlock = Math.max(1, sizes.minimum);
    this.decoder = new RequestDecoder({ maxPayload: this.maxPayload });
  }

  /** Runs until the connection ends; resolves after every started request has replied. */
  async run(): Promise<void> {
    const s = this.opts.stream;
    const done = new Promise<void>((resolve) => {
      this.finished = resolve;
    });
    const onData = (chunk: Buffer): void => this.onBytes(chunk);
    const onEnd = (): void => this.stop();
    const onDrain = (): void => this.updatePause();
    s.on('data', onData);
    s.on('end', onEnd);
    s.on('close', onEnd);
    s.on('drain', onDrain);
    try {
      for (const c of this.opts.leftover) this.onBytes(c);
      if (!this.stopped) s.resume();
      await done;
      await this.whenIdle();
    } finally {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
      s.off('drain', onDrain);
    }
  }

  /** Ends reading; `run` resolves once in-flight requests have replied. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.opts.stream.pause();
    this.finished?.();
  }

  private whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle = resolve;
    });
  }

  private onBytes(chunk: Buffer): void {
    if (this.stopped) return;
    let items: DecodedRequest[];
    try {
      items = this.decoder.push(chunk);
    } catch (err) {
      // A bad magic: the stream cannot be resynchronised; hard disconnect.
      this.opts.log.info({ reason: publicMessage(err) }, 'nbd protocol violation: disconnecting');
      this.stop();
      this.opts.stream.destroy();
      return;
    }
    for (const item of items) {
      if (this.stopped) return;
      if (item.kind === 'request' && item.request.type === K.NBD_CMD_DISC) {
        this.opts.log.debug('nbd DISC');
        this.stop();
        return;
      }
      this.start(item);
    }
  }

  private start(item: DecodedRequest): void {
    const r = item.request;
    const cost = r.type === K.NBD_CMD_READ || item.kind === 'write' ? r.length : 0;
    this.inFlight++;
    this.inFlightBytes += cost;
    this.updatePause();
    this.serve(item)
      .catch((err: unknown) => this.opts.log.error({ err }, 'nbd reply failed'))
      .finally(() => {
        this.inFlight--;
        this.inFlightBytes -= cost;
        this.updatePause();
        if (this.inFlight === 0) {
          const w = this.idle;
          this.idle = undefined;
          w?.();
        }
      });
  }

  private updatePause(): void {
    const s = this.opts.stream;
    const over = this.inFlightBytes > MAX_IN_FLIGHT_BYTES || this.inFlight > MAX_IN_FLIGHT_REQUESTS || s.writableNeedDrain;
    if (over && !this.paused) {
      this.paused = true;
      s.pause();
    } else if (!over && this.paused) {
      this.paused = false;
      if (!this.stopped) s.resume();
    }
  }

  /**
   * Queues a reply. Replies sent in one turn of the event loop go out in one write when the
   * turn's callbacks are done (cork until the next tick): a write to a loopback socket costs
   * the sender the receiver's network work too, so one per reply dominated small requests
   * (fio 4 KiB randwrite, iodepth 16: 3.3 s of 16 s server CPU in socket writes).
   */
  private send(parts: readonly Uint8Array[]): void {
    const s = this.opts.stream;
    if (s.destroyed || s.writableEnded) return;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      setImmediate(this.uncork);
    }
    for (const p of parts) s.write(p);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.opts.stream.uncork();
    this.updatePause();
  };

  private async serve(item: DecodedRequest): Promise<void> {
    const r = item.request;
    const structured = this.opts.negotiated.structured;
    try {
      if (this.opts.closing()) throw new NbdRequestError(K.NBD_ESHUTDOWN, 'the server is shutting down');
      const { offset, length } = this.check(item);
      switch (r.type) {
        case K.NBD_CMD_READ:
          return await this.read(r, offset, length);
        case K.NBD_CMD_WRITE:
          // A payload the decoder allocated for this request alone is the device's to keep.
          if (item.kind === 'write') await this.device.write(offset, item.payload.length === 1 ? (item.payload[0] as Uint8Array) : item.payload, { fua: (r.flags & K.NBD_CMD_FLAG_FUA) !== 0, donated: item.owned });
          break;
        case K.NBD_CMD_FLUSH:
          await this.device.flush();
          break;
        case K.NBD_CMD_TRIM:
          if (length > 0) await this.device.trim(offset, length, { fua: (r.flags & K.NBD_CMD_FLAG_FUA) !== 0 });
          break;
        case K.NBD_CMD_WRITE_ZEROES:
          if (length > 0) {
            await this.device.writeZeroes(offset, length, {
              fua: (r.flags & K.NBD_CMD_FLAG_FUA) !== 0,
              noHole: (r.flags & K.NBD_CMD_FLAG_NO_HOLE) !== 0,
              fastZero: (r.flags & K.NBD_CMD_FLAG_FAST_ZERO) !== 0,
            });
          }
          break;
        case K.NBD_CMD_CACHE:
          if (length > 0) await this.device.cache(offset, length);
          break;
        case K.NBD_CMD_BLOCK_STATUS:
          return await this.blockStatus(r, offset, length);
      }
      this.send([encodeSimpleReply(0, r.cookie)]);
    } catch (err) {
      const errno = errnoFor(err);
      const message = err instanceof NbdRequestError ? err.message : publicMessage(err);
      if (!(err instanceof NbdRequestError)) this.opts.log.warn({ err, cmd: r.type, errno }, 'nbd request failed');
      else this.opts.log.debug({ cmd: r.type, errno, reason: message }, 'nbd request refused');
      this.send([structured ? encodeErrorChunk(K.NBD_REPLY_FLAG_DONE, r.cookie, errno, message) : encodeSimpleReply(errno, r.cookie)]);
    }
  }

  /** Checks a request against the spec and the device; throws NbdRequestError with the errno. */
  private check(item: DecodedRequest): { offset: number; length: number } {
    const r = item.request;
    const n = this.opts.negotiated;
    const tf = n.transmissionFlags;
    const fua = tf & K.NBD_FLAG_SEND_FUA ? K.NBD_CMD_FLAG_FUA : 0;
    let allowed: number;
    switch (r.type) {
      case K.NBD_CMD_READ:
        allowed = fua | (n.structured ? K.NBD_CMD_FLAG_DF : 0);
        break;
      case K.NBD_CMD_WRITE:
      case K.NBD_CMD_FLUSH:
      case K.NBD_CMD_TRIM:
      case K.NBD_CMD_CACHE:
        allowed = fua;
        break;
      case K.NBD_CMD_WRITE_ZEROES:
        allowed = fua | K.NBD_CMD_FLAG_NO_HOLE | (tf & K.NBD_FLAG_SEND_FAST_ZERO ? K.NBD_CMD_FLAG_FAST_ZERO : 0);
        break;
      case K.NBD_CMD_BLOCK_STATUS:
        allowed = fua | K.NBD_CMD_FLAG_REQ_ONE;
        break;
      default:
        throw new NbdRequestError(K.NBD_EINVAL, `unknown command ${r.type}`);
    }
    if ((r.flags & ~allowed) !== 0) {
      throw new NbdRequestError(K.NBD_EINVAL, `command flags 0x${r.flags.toString(16)} are not valid for command ${r.type}`);
    }
    if (item.kind === 'write-too-big') {
      throw new NbdRequestError(K.NBD_EINVAL, `write of ${r.length} bytes exceeds the maximum payload of ${this.maxPayload}`);
    }
    const writes = r.type === K.NBD_CMD_WRITE || r.type === K.NBD_CMD_TRIM || r.type === K.NBD_CMD_WRITE_ZEROES;
    if (writes && this.device.readOnly) throw new NbdRequestError(K.NBD_EPERM, 'the export is read-only');
    if (r.type === K.NBD_CMD_FLUSH) {
      if (r.offset !== 0n || r.length !== 0) throw new NbdRequestError(K.NBD_EINVAL, 'FLUSH must have offset and length 0');
      return { offset: 0, length: 0 };
    }
    if (r.type === K.NBD_CMD_READ && r.length > this.maxPayload) {
      // Client MUST NOT exceed the maximum with simple replies (EINVAL); with structured
      // replies the server may refuse large reads up front with EOVERFLOW.
      throw new NbdRequestError(n.structured ? K.NBD_EOVERFLOW : K.NBD_EINVAL, `read of ${r.length} bytes exceeds the maximum payload of ${this.maxPayload}`);
    }
    const size = BigInt(this.device.size);
    if (r.offset + BigInt(r.length) > size) {
      const errno = r.type === K.NBD_CMD_WRITE || r.type === K.NBD_CMD_WRITE_ZEROES ? K.NBD_ENOSPC : K.NBD_EINVAL;
      throw new NbdRequestError(errno, `range ${r.offset}+${r.length} lies beyond the end of the export (${size} bytes)`);
    }
    const offset = Number(r.offset);
    if (offset % this.minBlock !== 0 || r.length % this.minBlock !== 0) {
      throw new NbdRequestError(K.NBD_EINVAL, `offset and length must be multiples of the minimum block size ${this.minBlock}`);
    }
    if (r.type === K.NBD_CMD_BLOCK_STATUS) {
      if (!n.baseAllocation) throw new NbdRequestError(K.NBD_EINVAL, 'BLOCK_STATUS needs base:allocation selected with SET_META_CONTEXT');
      if (r.length === 0) throw new NbdRequestError(K.NBD_EINVAL, 'BLOCK_STATUS of length 0');
    }
    return { offset, length: r.length };
  }

  private async read(r: NbdRequest, offset: number, length: number): Promise<void> {
    const data = length === 0 ? new Uint8Array(0) : await this.device.read(offset, length);
    if (data.byteLength !== length) {
      // Never a short READ: the whole reply is an error instead.
      throw new NbdRequestError(K.NBD_EIO, `device returned ${data.byteLength} of ${length} bytes`);
    }
    if (!this.opts.negotiated.structured) {
      this.send([encodeSimpleReply(0, r.cookie), data]);
    } else if (length === 0) {
      this.send([encodeNoneChunk(r.cookie)]);
    } else if ((r.flags & K.NBD_CMD_FLAG_DF) === 0 && length >= HOLE_MIN && isAllZero(data)) {
      this.send([encodeOffsetHoleChunk(K.NBD_REPLY_FLAG_DONE, r.cookie, offset, length)]);
    } else {
      // One content chunk, final: every byte is in hand, so no error can follow (DF holds too).
      this.send([encodeOffsetDataHeader(K.NBD_REPLY_FLAG_DONE, r.cookie, offset, length), data]);
    }
  }

  private async blockStatus(r: NbdRequest, offset: number, length: number): Promise<void> {
    const extents = await this.device.blockStatus(offset, length);
    const reqOne = (r.flags & K.NBD_CMD_FLAG_REQ_ONE) !== 0;
    const out = clampExtents(extents, length, this.device.size - offset, reqOne);
    this.send([encodeBlockStatusChunk(K.NBD_REPLY_FLAG_DONE, r.cookie, BASE_ALLOCATION_ID, out)]);
  }
}

/**
 * Shapes a device's extents into a valid BLOCK_STATUS chunk: nonzero lengths, none past the end
 * of the export, all but the last summing below the requested length, exactly one (no longer
 * than the request) with REQ_ONE, never more than 2^20, and at least one.
 */
export function clampExtents(extents: readonly Extent[], length: number, untilEnd: number, reqOne: boolean): StatusDescriptor[] {
  const out: StatusDescriptor[] = [];
  let sum = 0;
  for (const e of extents) {
    if (sum >= length || out.length >= MAX_EXTENTS) break;
    let len = Math.min(e.length, untilEnd - sum, 0xffffffff);
    if (reqOne) len = Math.min(len, length);
    if (len <= 0) continue;
    out.push({ length: len, flags: e.flags & (K.NBD_STATE_HOLE | K.NBD_STATE_ZERO) });
    sum += len;
    if (reqOne) break;
  }
  if (out.length === 0) out.push({ length: Math.min(length, untilEnd), flags: 0 });
  return out;
}
