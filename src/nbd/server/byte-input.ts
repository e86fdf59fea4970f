/**
 * Pull-style reads over a socket's 'data' events for the handshake (read exactly n bytes, skip
 * n bytes), which can be moved to another stream (the TLS socket after STARTTLS) and handed
 * over to the transmission phase with whatever was already received. Reading pauses the
 * socket while more than a small window is buffered, so a client flooding bytes during the
 * handshake costs no memory.
 */
import type { Duplex } from 'node:stream';

/** Buffered bytes above which the source is paused until a read consumes them. */
const HIGH_WATER = 256 * 1024;

/** A resumable byte source. */
export class ByteInput {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  private stream: Duplex | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
    if (this.size > HIGH_WATER) this.stream?.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  constructor(stream: Duplex) {
    this.attach(stream);
  }

  /** Starts reading from `stream`. */
  attach(stream: Duplex): void {
    this.stream = stream;
    this.ended = false;
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.resume();
  }

  /** Stops reading (pauses the stream and drops our listeners); buffered bytes stay. */
  detach(): void {
    const s = this.stream;
    if (s === undefined) return;
    s.pause();
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onEnd);
    this.stream = undefined;
  }

  /** Everything buffered, removed from this input. */
  drainBuffered(): Buffer[] {
    const out = this.chunks;
    this.chunks = [];
    this.size = 0;
    return out;
  }

  /** Bytes buffered now. */
  get buffered(): number {
    return this.size;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.size < n) {
      if (this.ended) return false;
      this.stream?.resume();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    return true;
  }

  /** Exactly n bytes, or undefined if the peer went away first. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = this.take(n);
    if (this.size <= HIGH_WATER) this.stream?.resume();
    return out;
  }

  /** Discards n bytes without buffering them; false if the peer went away first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.size === 0 && !(await this.fill(1))) return false;
      left -= this.take(Math.min(left, (this.chunks[0] as Buffer).byteLength)).byteLength;
      this.stream?.resume();
    }
    return true;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first !== undefined && first.byteLength >= n) {
      out = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let p = 0;
      while (p < n) {
        const c = this.chunks[0] as Buffer;
        const k = Math.min(c.byteLength, n - p);
        c.copy(out, p, 0, k);
        p += k;
        if (k === c.byteLength) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.size -= n;
    return out;
  }
}
