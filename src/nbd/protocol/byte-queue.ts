/**
 * A FIFO of received byte chunks: bytes are taken from the front without concatenating the
 * whole queue (a view when they lie in one chunk, one copy otherwise).
 */
export class ByteQueue {
  #chunks: Buffer[] = [];
  #size = 0;

  /** Bytes queued. */
  get size(): number {
    return this.#size;
  }

  /** Length of the front chunk (0 when empty): how much `take` can return without copying. */
  get frontLength(): number {
    return this.#chunks[0]?.byteLength ?? 0;
  }

  push(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
  }

  /** Removes and returns every queued chunk. */
  drain(): Buffer[] {
    const out = this.#chunks;
    this.#chunks = [];
    this.#size = 0;
    return out;
  }

  /** Removes n bytes from the front (n must be at most `size`). */
  take(n: number): Buffer {
    if (n > this.#size) throw new RangeError(`take(${n}) with ${this.#size} bytes queued`);
    const first = this.#chunks[0];
    let out: Buffer;
    if (first !== undefined && first.byteLength >= n) {
      out = first.subarray(0, n);
      if (first.byteLength === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let p = 0;
      while (p < n) {
        const c = this.#chunks[0]!;
        const k = Math.min(c.byteLength, n - p);
        c.copy(out, p, 0, k);
        p += k;
        if (k === c.byteLength) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#size -= n;
    return out;
  }
}
