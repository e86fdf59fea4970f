/**
 * Low-level file helpers of the fs ObjectStore: error mapping, directory fsync, streaming a
 * body into a temp file, positional reads.
 */
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { StoreError, StowageError } from '../../core/errors.js';

/** The errno code of a Node system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Wraps an fs failure as StoreError('STORE_IO'); typed errors and aborts pass through. */
export function ioError(op: string, key: string, err: unknown): Error {
  if (err instanceof StowageError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  const code = errnoCode(err) ?? 'unknown error';
  return new StoreError('STORE_IO', `fs store: ${op} ${key} failed (${code}); check the data directory`, {
    cause: err,
  });
}

/** A StoreError for a key whose path collides with an object or folder of another key. */
export function pathConflict(key: string, err: unknown): StoreError {
  return new StoreError(
    'STORE_BAD_KEY',
    `fs store: key ${key} collides with an existing object or prefix (the fs store cannot hold both "a" and "a/b")`,
    { cause: err },
  );
}

/** fsyncs a directory so a rename or link in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  await syncPath(dir);
}

/** fsyncs a file or directory by path (opened read-only, which fsync accepts on Linux). */
export async function syncPath(file: string): Promise<void> {
  const d = await fd.open(file, 'r');
  try {
    await fd.fsync(d, false);
  } finally {
    await fd.close(d);
  }
}

/** Bytes coalesced before a write when the body arrives in small chunks. */
const STAGE_BYTES = 1024 * 1024;
/** Chunks at least this big are written directly, without a copy into the stage. */
const DIRECT_BYTES = 256 * 1024;

async function writeFully(fh: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await fh.write(data, done, data.byteLength - done);
    done += bytesWritten;
  }
}

/**
 * Writes a body into an open file and, unless `durable` is false (a deferred put, synced
 * later by path), flushes it to disk. Small chunks are staged into a bounded buffer, so memory
 * stays bounded for any body size.
 */
export async function writeBody(
  fh: FileHandle,
  key: string,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  durable = true,
): Promise<void> {
  // Errors of the body's own iterator pass through untouched; fs errors become STORE_IO.
  const writeAll = async (data: Uint8Array): Promise<void> => {
    try {
      await writeFully(fh, data);
    } catch (err) {
      throw ioError('write', key, err);
    }
  };
  if (body instanceof Uint8Array) {
    await writeAll(body);
  } else {
    let stage: Buffer | undefined;
    let staged = 0;
    for await (const chunk of body) {
      signal?.throwIfAborted();
      if (chunk.byteLength >= DIRECT_BYTES) {
        if (stage !== undefined && staged > 0) await writeAll(stage.subarray(0, staged));
        staged = 0;
        await writeAll(chunk);
        continue;
      }
      if (stage === undefined) stage = Buffer.allocUnsafe(STAGE_BYTES);
      if (staged + chunk.byteLength > STAGE_BYTES) {
        await writeAll(stage.subarray(0, staged));
        staged = 0;
      }
      stage.set(chunk, staged);
      staged += chunk.byteLength;
    }
    if (stage !== undefined && staged > 0) await writeAll(stage.subarray(0, staged));
  }
  signal?.throwIfAborted();
  if (!durable) return;
  try {
    await fh.datasync();
  } catch (err) {
    throw ioError('fsync', key, err);
  }
}

/** Reads up to `length` bytes at `position`; fewer only at end of file. */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  return readInto(fh, position, Buffer.allocUnsafe(length));
}

/** Reads into `buf` from `position` until it is full or the file ends; the part filled. */
export async function readInto(fh: FileHandle, position: number, buf: Buffer): Promise<Buffer> {
  const length = buf.length;
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/**
 * Thin promise wrappers over the callback fs API on raw descriptors. On a busy machine a
 * FileHandle open+close costs about twice the CPU of these (handle objects, close tracking),
 * which dominates stores of many small objects (block devices).
 */
export const fd = {
  open(file: string, flags: string): Promise<number> {
    return new Promise((resolve, reject) => fs.open(file, flags, 0o666, (err, d) => (err === null ? resolve(d) : reject(err))));
  },
  close(d: number): Promise<void> {
    return new Promise((resolve) => fs.close(d, () => resolve()));
  },
  /** Reads up to `length` bytes at `position`; fewer only at end of file. */
  async readAt(d: number, position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(d, buf, done, length - done, position + done, (err, bytesRead) => (err === null ? resolve(bytesRead) : reject(err))),
      );
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  },
  async writeAll(d: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.byteLength) {
      done += await new Promise<number>((resolve, reject) =>
        fs.write(d, data, done, data.byteLength - done, null, (err, written) => (err === null ? resolve(written) : reject(err))),
      );
    }
  },
  fstat(d: number): Promise<fs.Stats> {
    return new Promise((resolve, reject) => fs.fstat(d, (err, st) => (err === null ? resolve(st) : reject(err))));
  },
  fsync(d: number, dataOnly: boolean): Promise<void> {
    const cb = (resolve: () => void, reject: (e: unknown) => void) => (err: NodeJS.ErrnoException | null) => (err === null ? resolve() : reject(err));
    return new Promise((resolve, reject) => (dataOnly ? fs.fdatasync(d, cb(resolve, reject)) : fs.fsync(d, cb(resolve, reject))));
  },
};
