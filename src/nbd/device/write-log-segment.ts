/**
 * One segment of a write log being written (write-log.ts): records are encoded into its buffer
 * and streamed to the store while the segment fills, so each record is written out while it is
 * still in the CPU's caches (measured: writing a whole 32 MiB buffer at the end cost the
 * kernel twice the copy time of writing 1 MiB bodies just encoded, and more system time than
 * the per-object work it saved). The body ends with the trailer, after a last fence check: the
 * put only becomes visible once its body ends, so the check sits right before the commit.
 */
import { trailerLength, writeTrailer, type LogRecord } from './write-log-codec.js';

/** Room kept for the trailer past the data (about 43k records; then the segment is put). */
export const TRAILER_ROOM = 1024 * 1024;

/** A segment being filled and streamed. */
export class SegmentWriter {
  readonly records: LogRecord[] = [];
  /** Bytes of records appended. */
  used = 0;
  /** Bytes handed to the store so far. */
  private sent = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private readonly waiters: { readonly resolve: () => void; readonly reject: (err: unknown) => void }[] = [];

  constructor(
    /** Key tail, `<epoch>-<seq>`. */
    readonly name: string,
    readonly key: string,
    /** Where records are encoded; the store reads views of it until the put resolves. */
    readonly buf: Buffer,
    private readonly fence: () => Promise<void>,
  ) {}

  /** Whether a record of `len` bytes still fits (data and trailer). */
  fits(len: number): boolean {
    return !this.ended && this.failure === undefined && this.used + len + trailerLength(this.records.length + 1) <= this.buf.byteLength;
  }

  /** Space for the next record of `len` bytes (check `fits` first). */
  reserve(len: number): Buffer {
    return this.buf.subarray(this.used, this.used + len);
  }

  /**
   * Appends a record (copied unless it is the reserved space), a tombstone (no body), or with
   * `newer` a marker (no body; the block object is newer); resolves when put.
   */
  append(index: number, body: Buffer | undefined, newer = false): Promise<void> {
    const len = body?.byteLength ?? 0;
    if (body !== undefined && !(body.buffer === this.buf.buffer && body.byteOffset === this.buf.byteOffset + this.used)) body.copy(this.buf, this.used);
    if (newer) this.records.push({ index, offset: 0, length: 0, tomb: false, newer: true });
    else this.records.push({ index, offset: body === undefined ? 0 : this.used, length: len, tomb: body === undefined });
    this.used += len;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.failure !== undefined) this.settle(this.failure);
    this.poke();
    return done;
  }

  /** No more records: the body ends with the trailer. */
  end(): void {
    this.ended = true;
    this.poke();
  }

  /** Stops the put (its body throws `err`, so nothing is published) and fails every record. */
  abort(err: unknown): void {
    this.failure ??= err;
    this.ended = true;
    this.poke();
    this.settle(err);
  }

  /** Resolves (no error) or rejects the records appended so far. */
  settle(err?: unknown): void {
    if (err !== undefined) this.failure ??= err;
    for (const w of this.waiters.splice(0)) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  /** The put's body: records as they are appended (contiguous runs at once), then the trailer. */
  async *body(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.used > this.sent) {
        const from = this.sent;
        this.sent = this.used;
        yield this.buf.subarray(from, this.sent);
        continue;
      }
      if (this.ended) break;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    await this.fence();
    if (this.failure !== undefined) throw this.failure;
    const trailer = this.buf.subarray(this.used, this.used + trailerLength(this.records.length));
    writeTrailer(this.records, trailer, 0);
    yield trailer;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
