/** Gathers small byte pieces into chunks of a target size for streaming output. */

/** Default output chunk: large enough to amortise per-chunk costs, small enough to stream. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** Collects pieces; `take()` returns a chunk once at least `size` bytes are buffered. */
export class Chunker {
  readonly #size: number;
  #parts: Uint8Array[] = [];
  #bytes = 0;

  constructor(size: number = DEFAULT_CHUNK_SIZE) {
    if (!(size > 0)) throw new RangeError(`invalid chunk size ${size}`);
    this.#size = size;
  }

  /** Adds a piece; the piece must not be modified afterwards (it is not copied). */
  push(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    this.#parts.push(piece);
    this.#bytes += piece.byteLength;
  }

  /** True when a full chunk is buffered. */
  get ready(): boolean {
    return this.#bytes >= this.#size;
  }

  /** Everything buffered as one chunk (undefined when empty). */
  take(): Uint8Array | undefined {
    if (this.#bytes === 0) return undefined;
    const parts = this.#parts;
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#bytes);
    this.#parts = [];
    this.#bytes = 0;
    return out;
  }
}
