/**
 * Low-level file helpers of the fs ObjectStore: error mapping, directory fsync, streaming a
 * body into a temp file, positional reads.
 */
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
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
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
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
 * Writes a body into an open file and flushes it to disk. Small
 * chunks are staged into a bounded buffer, so memory stays bounded for any body size.
 */
export async function writeBody(
  fh: FileHandle,
  key: string,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
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
  try {
    await fh.datasync();
  } catch (err) {
    throw ioError('fsync', key, err);
  }
}

/** Reads up to `length` bytes at `position`; fewer only at end of file. */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}
