/**
 * The outgoing pack's writer: git/pack's PackWriter (offsets, entry count, running SHA-1 of
 * the trailer) whose pieces go into a Chunker as they are. An entry's header and body stay
 * separate pieces and stored bodies are views of what was read, so the only copy of an
 * entry on its way out is the join of one output chunk.
 */
import type { ObjectType } from '../../git/object/object-type.js';
import { PackWriter, type EntryParts, type RawEntryHeader } from '../../git/pack/writer.js';
import { Chunker, DEFAULT_CHUNK_SIZE } from './chunker.js';

/** Writes one pack of a known object count into output chunks; take() them when ready. */
export class OutWriter {
  readonly #pack: PackWriter;
  readonly #out: Chunker;

  constructor(objectCount: number, chunkSize: number = DEFAULT_CHUNK_SIZE) {
    this.#pack = new PackWriter(objectCount);
    this.#out = new Chunker(chunkSize);
  }

  /** Bytes written so far: the offset of the next entry. */
  get offset(): number {
    return this.#pack.offset;
  }

  /** True when a full chunk is buffered. */
  get ready(): boolean {
    return this.#out.ready;
  }

  /** Everything buffered as one chunk (undefined when empty). */
  take(): Uint8Array | undefined {
    return this.#out.take();
  }

  /** The pack header; call first, once. */
  header(): void {
    this.#out.push(this.#pack.header());
  }

  /** A whole object, deflated. */
  addObject(type: ObjectType, data: Uint8Array, level?: number): void {
    this.#push(this.#pack.addObjectParts(type, data, level));
  }

  /** A stored entry's compressed bytes (not copied) with a new header (ofs-delta bases must be written already). */
  addRaw(header: RawEntryHeader, compressed: Uint8Array): void {
    this.#push(this.#pack.addRawParts(header, compressed));
  }

  /** Bytes of `entries` whole stored entries copied as they are (not copied here). */
  addVerbatim(bytes: Uint8Array, entries: number): void {
    this.#out.push(this.#pack.addVerbatim(bytes, entries));
  }

  /** The trailer; throws unless exactly the announced number of entries was written. */
  finish(): void {
    this.#out.push(this.#pack.finish());
  }

  #push([head, body]: EntryParts): void {
    this.#out.push(head);
    this.#out.push(body);
  }
}
