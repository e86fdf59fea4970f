/**
 * Reads pkt-lines from an async byte source without quadratic copying: chunks are kept in a
 * list with an offset, and a line is copied only when it spans chunks.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { DELIM_LINE, FLUSH_LINE, RESPONSE_END_LINE, decodePktLength, type PktLine } from './decode.js';
import { pktLineText } from './encode.js';

/** How a run of data lines ended. */
export type SectionEnd = 'flush' | 'delim' | 'response-end';

/**
 * Pull-based pkt-line reader over an AsyncIterable of byte chunks. Payloads are views into the
 * source's chunks where a line fits in one chunk, so the source must not reuse its buffers.
 */
export class PktLineReader {
  private readonly iter: AsyncIterator<Uint8Array>;
  private chunks: Uint8Array[] = [];
  /** Index of the first unread chunk in `chunks`. */
  private first = 0;
  /** Offset of the first unread byte in chunks[first]. */
  private head = 0;
  private buffered = 0;
  private eof = false;
  private detached = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iter = source[Symbol.asyncIterator]();
  }

  /** Next line, or undefined on a clean EOF before a line starts; throws PKT_TRUNCATED on EOF mid-line. */
  async read(): Promise<PktLine | undefined> {
    if (this.detached) throw new ProtocolError('PKT_UNEXPECTED', 'pkt-line reader used after rest()');
    if (!(await this.fill(4))) {
      if (this.buffered === 0) return undefined;
      throw this.truncated(4);
    }
    const len = decodePktLength(this.peek(4), 0);
    if (len < 4) {
      this.skip(4);
      return len === 0 ? FLUSH_LINE : len === 1 ? DELIM_LINE : RESPONSE_END_LINE;
    }
    if (!(await this.fill(len))) throw this.truncated(len);
    const line = this.take(len);
    return { kind: 'data', payload: line.subarray(4) };
  }

  /** Next line, which must be a data line; throws PKT_UNEXPECTED otherwise (or at EOF). */
  async expectData(): Promise<Uint8Array> {
    const line = await this.read();
    if (line === undefined) throw new ProtocolError('PKT_UNEXPECTED', 'expected a data line, got end of input');
    if (line.kind !== 'data') throw new ProtocolError('PKT_UNEXPECTED', `expected a data line, got a ${line.kind} packet`);
    return line.payload;
  }

  /** Next line as text (one trailing LF stripped), which must be a data line. */
  async expectText(): Promise<string> {
    return pktLineText(await this.expectData());
  }

  /** Next line must be a flush-pkt; throws PKT_UNEXPECTED otherwise. */
  async expectFlush(): Promise<void> {
    const line = await this.read();
    if (line?.kind !== 'flush') {
      throw new ProtocolError('PKT_UNEXPECTED', `expected a flush packet, got ${line === undefined ? 'end of input' : `a ${line.kind} packet`}`);
    }
  }

  /**
   * Data lines up to the next special packet. `maxLines` bounds memory against a peer that
   * never sends a flush (past it: LimitError('LIMIT_EXCEEDED')). Throws PKT_UNEXPECTED at EOF.
   */
  async readSection(maxLines = Number.POSITIVE_INFINITY): Promise<{ lines: Uint8Array[]; end: SectionEnd }> {
    const lines: Uint8Array[] = [];
    for (;;) {
      const line = await this.read();
      if (line === undefined) throw new ProtocolError('PKT_UNEXPECTED', 'input ended before a flush packet');
      if (line.kind !== 'data') return { lines, end: line.kind };
      if (lines.length >= maxLines) throw new LimitError('LIMIT_EXCEEDED', `more than ${maxLines} lines before a flush packet`);
      lines.push(line.payload);
    }
  }

  /**
   * The raw bytes after the last line read (buffered ones first), e.g. a pack that follows the
   * commands of a push. The reader must not be used for lines afterwards.
   */
  async *rest(): AsyncIterable<Uint8Array> {
    this.detached = true;
    for (let i = this.first; i < this.chunks.length; i++) {
      const c = this.chunks[i] as Uint8Array;
      const piece = i === this.first ? c.subarray(this.head) : c;
      if (piece.length > 0) yield piece;
    }
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.buffered = 0;
    if (this.eof) return;
    for (;;) {
      const r = await this.iter.next();
      if (r.done === true) {
        this.eof = true;
        return;
      }
      if (r.value.length > 0) yield r.value;
    }
  }

  /** Reads from the source until `n` bytes are buffered; false if EOF comes first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.eof) return false;
      const r = await this.iter.next();
      if (r.done === true) {
        this.eof = true;
        return false;
      }
      if (r.value.length === 0) continue;
      if (this.first > 0 && this.first === this.chunks.length) {
        this.chunks = [];
        this.first = 0;
      }
      this.chunks.push(r.value);
      this.buffered += r.value.length;
    }
    return true;
  }

  /** The next `n` buffered bytes without consuming them (copied only if they span chunks). */
  private peek(n: number): Uint8Array {
    const c = this.chunks[this.first] as Uint8Array;
    if (c.length - this.head >= n) return c.subarray(this.head, this.head + n);
    return this.gather(n, false);
  }

  /** Consumes the next `n` buffered bytes and returns them. */
  private take(n: number): Uint8Array {
    const c = this.chunks[this.first] as Uint8Array;
    if (c.length - this.head >= n) {
      const out = c.subarray(this.head, this.head + n);
      this.skip(n);
      return out;
    }
    return this.gather(n, true);
  }

  private gather(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let got = 0;
    let i = this.first;
    let off = this.head;
    while (got < n) {
      const c = this.chunks[i] as Uint8Array;
      const k = Math.min(c.length - off, n - got);
      out.set(c.subarray(off, off + k), got);
      got += k;
      off += k;
      if (off === c.length) {
        i++;
        off = 0;
      }
    }
    if (consume) this.skip(n);
    return out;
  }

  private skip(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[this.first] as Uint8Array;
      const avail = c.length - this.head;
      if (avail > n) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks[this.first] = EMPTY;
      this.first++;
      this.head = 0;
    }
    // Drop consumed chunk slots now and then so the list does not grow without bound.
    if (this.first > 64 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }

  private truncated(needed: number): ProtocolError {
    return new ProtocolError(
      'PKT_TRUNCATED',
      `input ended inside a pkt-line (${this.buffered} of ${needed} bytes received)`,
    );
  }
}

const EMPTY = new Uint8Array(0);
