/**
 * Pull-style reads over a socket's 'data' events for the handshake (read exactly n bytes, skip
 * n bytes), which can be moved to another stream (the TLS socket after STARTTLS) and handed
 * over to the transmission phase with whatever was already received. Reading pauses the
 * socket while more than a small window is buffered, so a client flooding bytes during the
 * handshake costs no memory.
 */
import type { Duplex } from 'node:stream';
import { ByteQueue } from '../protocol/byte-queue.js';

/** Buffered bytes above which the source is paused until a read consumes them. */
const HIGH_WATER = 256 * 1024;

/** A resumable byte source. */
export class ByteInput {
  private readonly queue = new ByteQueue();
  private ended = false;
  private wake: (() => void) | undefined;
  private stream: Duplex | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    if (this.queue.size > HIGH_WATER) this.stream?.pause();
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
    return this.queue.drain();
  }

  /** Bytes buffered now. */
  get buffered(): number {
    return this.queue.size;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.queue.size < n) {
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
    const out = this.queue.take(n);
    if (this.queue.size <= HIGH_WATER) this.stream?.resume();
    return out;
  }

  /** Discards n bytes without buffering them; false if the peer went away first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.queue.size === 0 && !(await this.fill(1))) return false;
      left -= this.queue.take(Math.min(left, this.queue.frontLength)).byteLength;
      this.stream?.resume();
    }
    return true;
  }
}
