/**
 * A WRITE's bytes as the pieces they arrived in (views of received chunks), read by position
 * without joining them: a sector that lies inside one piece is a view, one that straddles two
 * is copied alone. Joining a 256 KiB payload first cost a copy of every byte written.
 */

/** The data of a write: one buffer, or pieces to be taken in order. */
export type WriteData = Uint8Array | readonly Uint8Array[];

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Pieces of bytes addressed as one range [0, length). */
export class ByteParts {
  /** Start of each piece within the whole; `starts[i + 1]` is the end of piece i. */
  private readonly starts: number[];

  private constructor(private readonly parts: readonly Buffer[]) {
    this.starts = [0];
    let at = 0;
    for (const p of parts) {
      at += p.byteLength;
      this.starts.push(at);
    }
  }

  /** The pieces of `data` (empty pieces dropped). */
  static of(data: WriteData): ByteParts {
    if (data instanceof Uint8Array) return new ByteParts([toBuffer(data)]);
    return new ByteParts(data.filter((p) => p.byteLength > 0).map(toBuffer));
  }

  /** Total bytes. */
  get length(): number {
    return this.starts[this.starts.length - 1] as number;
  }

  /** Bytes [from, to) as views of the same pieces (no copy). */
  sub(from: number, to: number): ByteParts {
    if (from === 0 && to === this.length) return this;
    const out: Buffer[] = [];
    for (let i = this.find(from); i < this.parts.length && (this.starts[i] as number) < to; i++) {
      const s = this.starts[i] as number;
      const p = this.parts[i] as Buffer;
      out.push(p.subarray(Math.max(0, from - s), Math.min(p.byteLength, to - s)));
    }
    return new ByteParts(out);
  }

  /** Bytes [from, to) as a view when they lie in one piece, else undefined. */
  view(from: number, to: number): Buffer | undefined {
    if (this.parts.length === 0) return from === to ? Buffer.alloc(0) : undefined;
    const i = this.find(from);
    const s = this.starts[i] as number;
    if (to > (this.starts[i + 1] as number)) return undefined;
    return (this.parts[i] as Buffer).subarray(from - s, to - s);
  }

  /** Bytes [from, to): a view when they lie in one piece, else a copy of their own. */
  slice(from: number, to: number): Buffer {
    const v = this.view(from, to);
    if (v !== undefined) return v;
    const out = Buffer.allocUnsafe(to - from);
    this.copyTo(out, 0, from, to);
    return out;
  }

  /** Copies bytes [from, to) into `target` at `at`. */
  copyTo(target: Buffer, at: number, from: number, to: number): void {
    for (let i = this.find(from); i < this.parts.length && from < to; i++) {
      const s = this.starts[i] as number;
      const p = this.parts[i] as Buffer;
      const n = p.copy(target, at, from - s, Math.min(p.byteLength, to - s));
      at += n;
      from += n;
    }
  }

  /** A copy of all the bytes in one new buffer. */
  copy(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.copyTo(out, 0, 0, this.length);
    return out;
  }

  /** Whether bytes [from, to) are all zero (`zeros` must be at least as long). */
  isZero(from: number, to: number, zeros: Buffer): boolean {
    for (let i = this.find(from); i < this.parts.length && from < to; i++) {
      const s = this.starts[i] as number;
      const p = this.parts[i] as Buffer;
      const end = Math.min(p.byteLength, to - s);
      if (p.compare(zeros, 0, end - (from - s), from - s, end) !== 0) return false;
      from = s + end;
    }
    return true;
  }

  /** The piece holding byte `at` (binary search; the last piece for `at` = length). */
  private find(at: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as number) <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
