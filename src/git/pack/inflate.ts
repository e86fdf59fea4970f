/**
 * zlib for pack entries. Each entry's data is one zlib stream followed directly by the
 * next entry, so inflation must say how many compressed bytes it consumed, and an
 * incoming pack arrives in chunks, so the stream state must survive between chunks.
 *
 * Node's public zlib API offers neither cheaply: `inflateSync` builds a whole stream
 * object per call (about 5 us, 6x the work of inflating a small object) and closes it.
 * So `Inflater` (and `deflate`) drive the native handle behind a `zlib.Inflate`
 * (`zlib.Deflate`) synchronously and reuse it with `reset()`, the technique npm's
 * minizlib uses; measured 3-7x less CPU than inflateSync/deflateSync for objects under
 * 1 KB. The internals needed (`_handle.writeSync`, `_writeState`, `onerror`) are
 * checked when a handle is opened.
 */
import { Deflate, Inflate, constants, deflateSync } from 'node:zlib';
import { ProtocolError } from '../../core/errors.js';
import { OBJECT_SIZE_MAX } from '../../core/limits.js';

/** The native zlib handle as Node 12-22 expose it. */
interface NativeZlib {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    output: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
  close(): void;
  onerror: (message: string, errno: number, code?: string) => void;
}

function openNative(stream: Inflate | Deflate): { handle: NativeZlib; state: Uint32Array } {
  const engine = stream as unknown as { _handle?: unknown; _writeState?: unknown };
  const handle = engine._handle as Partial<NativeZlib> | undefined;
  const state = engine._writeState;
  if (
    handle === undefined ||
    typeof handle.writeSync !== 'function' ||
    typeof handle.reset !== 'function' ||
    !(state instanceof Uint32Array)
  ) {
    throw new Error(`node:zlib internals changed in Node ${process.version}: pack inflation needs an update`);
  }
  return { handle: handle as NativeZlib, state };
}

/** Upper bound on deflate's expansion: zlib's maximum ratio is about 1032:1. */
const INFLATE_RATIO_MAX = 1040;
const EMPTY = Buffer.alloc(0);

/**
 * A reusable inflater for one zlib stream at a time, producing exactly the size the pack
 * entry declares: more output or an early end is a corrupt entry.
 */
export class Inflater {
  #handle!: NativeZlib;
  #state!: Uint32Array;
  #error: string | undefined;
  #out: Buffer = EMPTY;
  #expected = 0;
  #produced = 0;
  #done = true;
  #at = 0;

  constructor() {
    this.#open();
  }

  /** True once the current stream has ended. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Starts a stream that must inflate to `expectedSize` bytes; `at` is a pack offset for
   * messages. With `out` (at least expectedSize + 1 bytes) the result is written there and
   * result() is a view of it: for callers that consume it before the next stream.
   */
  begin(expectedSize: number, at = 0, out?: Buffer): void {
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0 || expectedSize > OBJECT_SIZE_MAX) {
      throw new RangeError(`invalid expected inflated size ${expectedSize}`);
    }
    if (this.#error !== undefined) this.#open();
    else this.#handle.reset();
    // Output space is reserved as input arrives (see #reserve), never from the declared size
    // alone: a 20-byte entry claiming 512 MiB must not allocate 512 MiB.
    // result() hands out a view of the buffer, so every stream starts a fresh one.
    this.#out = out !== undefined && out.length > expectedSize ? out : EMPTY;
    this.#expected = expectedSize;
    this.#produced = 0;
    this.#done = false;
    this.#at = at;
  }

  /**
   * Feeds input[start, end) to the current stream; returns how many bytes it consumed
   * (all of them unless the stream ended inside). Throws ProtocolError('PACK_BAD_ENTRY').
   */
  write(input: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (this.#done || len <= 0) return 0;
    if (start < 0 || end > input.length) throw new RangeError('Inflater.write range outside input');
    const out = this.#reserve(len);
    this.#handle.writeSync(constants.Z_NO_FLUSH, input, start, len, out, this.#produced, out.length - this.#produced);
    const error = this.#lastError();
    if (error !== undefined) throw this.#corrupt(error);
    const availOut = this.#state[0]!;
    const availIn = this.#state[1]!;
    this.#produced = out.length - availOut;
    if (this.#produced > this.#expected) throw this.#sizeMismatch('more');
    if (availIn > 0) {
      // Output room was left, so zlib only stops short of the input at the stream's end.
      this.#finish();
      return len - availIn;
    }
    if (this.#produced === this.#expected) {
      // All output is there; ask zlib (Z_FINISH on no input) whether the checksum was too.
      this.#reserve(0);
      this.#handle.writeSync(constants.Z_FINISH, input, end, 0, this.#out, this.#produced, this.#out.length - this.#produced);
      const probe = this.#lastError();
      if (probe === undefined) this.#finish();
      else if (probe.startsWith('Z_BUF_ERROR')) this.#error = undefined;
      else throw this.#corrupt(probe);
    }
    return len;
  }

  /** The inflated bytes of the ended stream (exactly the expected size). */
  result(): Uint8Array {
    if (!this.#done) throw new Error('Inflater.result() before the stream ended');
    return this.#out.subarray(0, this.#expected);
  }

  /**
   * Inflates a stream that is wholly inside input[start, end) in one call (zlib then needs
   * no window); returns the bytes consumed, or undefined if input ends first.
   */
  inflateWhole(input: Uint8Array, start: number, end: number): number | undefined {
    const len = end - start;
    if (len <= 0) return undefined;
    if (start < 0 || end > input.length) throw new RangeError('Inflater.inflateWhole range outside input');
    const out = this.#reserve(len);
    this.#handle.writeSync(constants.Z_FINISH, input, start, len, out, 0, out.length);
    const error = this.#lastError();
    if (error !== undefined) {
      // Z_BUF_ERROR with output room left is zlib saying the input ended early.
      if (!error.startsWith('Z_BUF_ERROR')) throw this.#corrupt(error);
      this.#error = undefined;
      return undefined;
    }
    const availOut = this.#state[0]!;
    this.#produced = out.length - availOut;
    if (availOut === 0) throw this.#sizeMismatch('more');
    this.#finish();
    return len - this.#state[1]!;
  }

  /**
   * Makes room for what `inputBytes` more compressed bytes can inflate to (deflate expands at
   * most about 1032:1), capped at the declared size plus the one spare byte whose filling
   * proves a stream longer than declared. Below the cap, zlib can never run out of output room,
   * so "output full" keeps meaning "more than declared". Keeps the bytes produced so far.
   */
  #reserve(inputBytes: number): Buffer {
    const cap = this.#expected + 1;
    const want = Math.min(cap, this.#produced + inputBytes * INFLATE_RATIO_MAX + 64);
    if (this.#out.length >= want) return this.#out;
    const grown = Buffer.allocUnsafe(Math.min(cap, Math.max(want, this.#out.length * 2)));
    this.#out.copy(grown, 0, 0, this.#produced);
    this.#out = grown;
    return grown;
  }

  /** The error the native handle reported during the last call (set by its onerror callback). */
  #lastError(): string | undefined {
    return this.#error;
  }

  #finish(): void {
    if (this.#produced !== this.#expected) throw this.#sizeMismatch('fewer');
    this.#done = true;
  }

  #open(): void {
    // A handle that reported an error is replaced rather than trusted again.
    if (this.#error !== undefined) this.#handle.close();
    const { handle, state } = openNative(new Inflate());
    handle.onerror = (message, _errno, code) => {
      this.#error = `${code ?? 'Z_ERROR'}: ${message}`;
    };
    this.#handle = handle;
    this.#state = state;
    this.#error = undefined;
  }

  #corrupt(detail: string): ProtocolError {
    this.#done = true;
    return new ProtocolError('PACK_BAD_ENTRY', `pack entry at offset ${this.#at}: corrupt zlib data (${detail})`);
  }

  #sizeMismatch(what: 'more' | 'fewer'): ProtocolError {
    this.#done = true;
    return new ProtocolError(
      'PACK_BAD_ENTRY',
      `pack entry at offset ${this.#at}: inflates to ${what} than the declared ${this.#expected} bytes`,
    );
  }
}

let shared: Inflater | undefined;

/**
 * Inflates the one zlib stream starting at buf[pos] (more data may follow) to exactly
 * `expectedSize` bytes. Returns the bytes and how many compressed bytes the stream took,
 * or undefined if buf ends before the stream does. Throws ProtocolError('PACK_BAD_ENTRY').
 * `out`, if big enough, receives the bytes (see Inflater.begin).
 */
export function inflateAt(
  buf: Uint8Array,
  pos: number,
  expectedSize: number,
  out?: Buffer,
): { data: Uint8Array; consumed: number } | undefined {
  // A private scratch handle: every call runs to completion synchronously, so sharing is safe.
  shared ??= new Inflater();
  shared.begin(expectedSize, pos, out);
  const consumed = shared.inflateWhole(buf, pos, buf.length);
  return consumed === undefined ? undefined : { data: shared.result(), consumed };
}

/** Inputs up to this size are deflated on a reused handle; above it, per-call setup is noise. */
const REUSED_DEFLATE_MAX = 1 << 20;
const deflaters = new Map<number, { handle: NativeZlib; state: Uint32Array; failed: boolean }>();

/**
 * Deflates `data` as one zlib stream; level defaults to zlib's default (git's
 * core.compression -1). Output is byte-identical to `zlib.deflateSync` at that level.
 */
export function deflate(data: Uint8Array, level: number = constants.Z_DEFAULT_COMPRESSION): Uint8Array {
  if (!Number.isInteger(level) || level < -1 || level > 9) throw new RangeError(`invalid zlib level ${level}`);
  if (data.length > REUSED_DEFLATE_MAX) return deflateSync(data, { level });
  let d = deflaters.get(level);
  if (d === undefined || d.failed) {
    // Same reuse technique as Inflater: a private handle per level, reset before each use.
    const { handle, state } = openNative(new Deflate({ level }));
    const entry = { handle, state, failed: false };
    handle.onerror = () => {
      entry.failed = true;
    };
    deflaters.set(level, entry);
    d = entry;
  }
  d.handle.reset();
  // Room for zlib's deflateBound (stored blocks plus header and trailer) in one Z_FINISH call.
  const out = Buffer.allocUnsafe(data.length + (data.length >>> 10) + 64);
  d.handle.writeSync(constants.Z_FINISH, data, 0, data.length, out, 0, out.length);
  const availOut = d.state[0]!;
  if (d.failed || availOut === 0 || d.state[1] !== 0) {
    d.failed = true;
    return deflateSync(data, { level });
  }
  const len = out.length - availOut;
  // Do not pin a mostly empty buffer on the caller.
  return len * 2 < out.length && out.length > 4096 ? Uint8Array.prototype.slice.call(out, 0, len) : out.subarray(0, len);
}
