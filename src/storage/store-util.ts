/**
 * Small helpers shared by ObjectStore backends: range checks and body collection.
 */
import { ValidationError } from '../core/errors.js';
import type { ByteRange } from './object-store.js';

/** Throws ValidationError('ARG_INVALID') unless offset and length are non-negative safe integers. */
export function checkRange(range: ByteRange): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ValidationError(
      'ARG_INVALID',
      `invalid byte range offset=${String(offset)} length=${String(length)}: both must be non-negative integers`,
    );
  }
}

/** Reads a whole put body into one fresh buffer (never aliasing the caller's chunks). */
export async function collectBody(
  body: Uint8Array | AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return new Uint8Array(body);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    signal?.throwIfAborted();
    if (chunk.byteLength === 0) continue;
    chunks.push(new Uint8Array(chunk));
    total += chunk.byteLength;
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const out = new Uint8Array(total);
  let pos = 0;
  for (const chunk of chunks) {
    out.set(chunk, pos);
    pos += chunk.byteLength;
  }
  return out;
}
