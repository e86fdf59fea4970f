/**
 * A spool file on local disk: a pushed pack is written here as it arrives, read back by
 * offset while deltas are resolved, completed (thin bases appended), then streamed to the
 * object store. The pack is never held in memory as a whole.
 */
import { createReadStream, readSync } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../../core/errors.js';

/** Writes are batched to this size to keep syscalls few for small network chunks. */
const WRITE_BATCH = 1024 * 1024;

/** One temporary file in its own temporary directory (so removal is one `rm -r`). */
export class SpoolFile {
  readonly path: string;
  readonly #dir: string | undefined;
  readonly #fh: FileHandle;
  #size = 0;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #closed = false;

  private constructor(path: string, dir: string | undefined, fh: FileHandle) {
    this.path = path;
    this.#dir = dir;
    this.#fh = fh;
  }

  /** Creates an empty spool file in a fresh directory under `parent`. */
  static async create(parent: string, name = 'incoming.pack'): Promise<SpoolFile> {
    let dir: string;
    try {
      dir = await mkdtemp(join(parent, 'stowage-spool-'));
    } catch (err) {
      throw new StoreError('STORE_IO', `cannot create a spool directory under ${parent}`, { cause: err });
    }
    const path = join(dir, name);
    try {
      return new SpoolFile(path, dir, await open(path, 'w+'));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw new StoreError('STORE_IO', `cannot create spool file ${path}`, { cause: err });
    }
  }

  /** Creates (exclusively) a spool file at an exact path; remove() deletes only that file. */
  static async createAt(path: string): Promise<SpoolFile> {
    try {
      return new SpoolFile(path, undefined, await open(path, 'wx+'));
    } catch (err) {
      throw new StoreError('STORE_IO', `cannot create ${path}`, { cause: err });
    }
  }

  /** Bytes appended so far (including bytes still batched in memory). */
  get size(): number {
    return this.#size;
  }

  /** Appends bytes at the end. The chunk may be reused by the caller once this resolves. */
  async append(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    // Copy: callers (sockets, scanners) may reuse their buffers.
    this.#pending.push(chunk.length < WRITE_BATCH ? Buffer.from(chunk) : chunk);
    this.#pendingBytes += chunk.length;
    this.#size += chunk.length;
    if (this.#pendingBytes >= WRITE_BATCH) await this.flush();
  }

  /** Writes batched bytes to the file. */
  async flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    const at = this.#size - this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#writeAll(data, at);
  }

  /** Overwrites bytes at `position` (which must be flushed already). */
  async writeAt(data: Uint8Array, position: number): Promise<void> {
    await this.flush();
    await this.#writeAll(data, position);
    if (position + data.length > this.#size) this.#size = position + data.length;
  }

  /** Cuts the file to `length` bytes. */
  async truncate(length: number): Promise<void> {
    await this.flush();
    await this.#fh.truncate(length);
    this.#size = length;
  }

  /**
   * Reads exactly `length` bytes at `position`, synchronously: for the many small reads of
   * delta resolution, where an async round trip costs far more than the read (the spool is
   * a local file just written). Bytes batched in memory must be flushed first.
   */
  readSync(position: number, length: number): Buffer {
    if (this.#pendingBytes > 0) throw new Error('SpoolFile.readSync with unflushed bytes; call flush() first');
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fh.fd, buf, done, length - done, position + done);
      if (n === 0) throw new StoreError('STORE_IO', `spool file ${this.path} ended at ${position + done}`);
      done += n;
    }
    return buf;
  }

  /** Reads exactly `length` bytes at `position` into `into` (see readSync). */
  readInto(position: number, length: number, into: Uint8Array): void {
    if (this.#pendingBytes > 0) throw new Error('SpoolFile.readInto with unflushed bytes; call flush() first');
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fh.fd, into, done, length - done, position + done);
      if (n === 0) throw new StoreError('STORE_IO', `spool file ${this.path} ended at ${position + done}`);
      done += n;
    }
  }

  /** Streams bytes [start, end) of the file. */
  stream(start: number, end: number, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    if (end <= start) return emptyStream();
    const opts = { start, end: end - 1, highWaterMark: 1024 * 1024 };
    return createReadStream(this.path, signal === undefined ? opts : { ...opts, signal });
  }

  /** Flushes (and with `sync`, fsyncs) and closes the handle; the file stays. */
  async close(opts: { sync?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    if (opts.sync === true) await this.#fh.datasync();
    this.#closed = true;
    await this.#fh.close();
  }

  /** Closes and deletes the file (and its directory). Never throws. */
  async remove(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#pending = [];
      this.#pendingBytes = 0;
      await this.#fh.close().catch(() => undefined);
    }
    await rm(this.#dir ?? this.path, { recursive: true, force: true }).catch(() => undefined);
  }

  async #writeAll(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }
}

async function* emptyStream(): AsyncGenerator<Uint8Array> {}
