/**
 * A pkt-line reader with one line of push-back, over the shared PktLineReader: upload-pack
 * must look at the next packet (is there a have phase at all?) before deciding what to do.
 */
import type { PktLine } from '../git/pktline/decode.js';
import { PktLineReader, type SectionEnd } from '../git/pktline/reader.js';
import { LimitError, ProtocolError } from '../core/errors.js';

/** PktLineReader plus `unread`. */
export class LineReader {
  private readonly inner: PktLineReader;
  private back: PktLine | undefined;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.inner = new PktLineReader(source);
  }

  /** Next line, or undefined at a clean end of input. */
  async read(): Promise<PktLine | undefined> {
    if (this.back !== undefined) {
      const l = this.back;
      this.back = undefined;
      return l;
    }
    return this.inner.read();
  }

  /** Puts one line back; the next read returns it. */
  unread(line: PktLine): void {
    if (this.back !== undefined) throw new ProtocolError('PKT_UNEXPECTED', 'only one line can be pushed back');
    this.back = line;
  }

  /** True if another packet follows (it stays unread). */
  async hasMore(): Promise<boolean> {
    const l = await this.read();
    if (l === undefined) return false;
    this.unread(l);
    return true;
  }

  /** Data lines up to the next special packet, at most `maxLines` (LimitError beyond); PKT_UNEXPECTED at EOF. */
  async readSection(maxLines: number): Promise<{ lines: Uint8Array[]; end: SectionEnd }> {
    const lines: Uint8Array[] = [];
    for (;;) {
      const line = await this.read();
      if (line === undefined) throw new ProtocolError('PKT_UNEXPECTED', 'input ended before a flush packet');
      if (line.kind !== 'data') return { lines, end: line.kind };
      if (lines.length >= maxLines) throw new LimitError('LIMIT_EXCEEDED', `more than ${maxLines} lines before a flush packet`);
      lines.push(line.payload);
    }
  }

  /** The raw bytes after the last line read (see PktLineReader.rest); no line may be pushed back. */
  rest(): AsyncIterable<Uint8Array> {
    if (this.back !== undefined) throw new ProtocolError('PKT_UNEXPECTED', 'a pushed-back line precedes the raw data');
    return this.inner.rest();
  }
}
