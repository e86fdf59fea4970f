/**
 * Gathers small byte pieces into chunks of a target size for streaming output. Pieces are
 * kept as they are until the chunk is joined, but a piece that is a small view of a large
 * buffer (an entry in a 1 MiB cached block) keeps that whole buffer alive: past PIN_BYTES_MAX
 * of such distinct buffers in one chunk, a piece is copied instead, so a chunk of small
 * entries from all over a pack (a clone's commits) never holds the whole pack in memory.
 */

/**
 * Default output chunk: large enough to amortise per-chunk costs, small enough to stream; as
 * large as what service/output.ts gathers before framing, so a chunk is framed as it is
 * instead of being copied once more into a bigger one.
 */
export const DEFAULT_CHUNK_SIZE = 256 * 1024;
/** Bytes of distinct larger buffers the pieces of one chunk may keep alive. */
export const PIN_BYTES_MAX = 4 * 1024 * 1024;

/** Collects pieces; `take()` returns a chunk once at least `size` bytes are buffered. */
export class Chunker {
  readonly #size: number;
  #parts: Uint8Array[] = [];
  #bytes = 0;
  /** Buffers that pieces of this chunk are small views of. */
  #pinned = new Set<ArrayBufferLike>();
  #pinnedBytes = 0;
  /** Pieces copied because their buffers would have pinned too much (for tests). */
  copies = 0;

  constructor(size: number = DEFAULT_CHUNK_SIZE) {
    if (!(size > 0)) throw new RangeError(`invalid chunk size ${size}`);
    this.#size = size;
  }

  /** Adds a piece; the piece must not be modified afterwards (it may not be copied). */
  push(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    const buf = piece.buffer;
    if (buf.byteLength > 2 * piece.byteLength && !this.#pinned.has(buf)) {
      if (this.#pinnedBytes + buf.byteLength > PIN_BYTES_MAX) {
        this.copies++;
        piece = Uint8Array.prototype.slice.call(piece);
      } else {
        this.#pinned.add(buf);
        this.#pinnedBytes += buf.byteLength;
      }
    }
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
    this.#pinned = new Set();
    this.#pinnedBytes = 0;
    return out;
  }
}
