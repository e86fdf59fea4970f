/**
 * Request bodies as byte streams: `Content-Encoding: gzip` (git sends it for large
 * negotiation requests; git-http-backend inflates it) and `deflate` are inflated as a stream,
 * and the inflated size is bounded, so neither a huge body nor a small gzip bomb can make the
 * server hold more than the limit.
 */
import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import { LimitError, ProtocolError, StowageError } from '../../core/errors.js';

/** The inflater for a Content-Encoding, undefined for identity; 415 for anything else. */
function inflaterFor(encoding: string | undefined): Transform | undefined {
  const e = (encoding ?? '').trim().toLowerCase();
  if (e === '' || e === 'identity') return undefined;
  if (e === 'gzip' || e === 'x-gzip') return createGunzip();
  if (e === 'deflate') return createInflate();
  throw new StowageError('HTTP_UNSUPPORTED_MEDIA_TYPE', `unsupported Content-Encoding ${JSON.stringify(e.slice(0, 40))}; use gzip or none`);
}

/**
 * Checks the declared size and encoding up front (so a refusal comes before any output) and
 * returns the body, inflated, as an async iterable that throws LimitError('LIMIT_EXCEEDED')
 * past `maxBytes` and ProtocolError('HTTP_BAD_REQUEST') for a corrupt compressed body.
 */
export function requestBody(req: IncomingMessage, maxBytes: number): AsyncIterable<Uint8Array> {
  const inflater = inflaterFor(req.headers['content-encoding']);
  const declared = req.headers['content-length'];
  if (inflater === undefined && declared !== undefined && Number(declared) > maxBytes) {
    throw new LimitError('LIMIT_EXCEEDED', `request body of ${declared} bytes exceeds the limit of ${maxBytes}`);
  }
  // destroyOnReturn false: a consumer that stops early must not destroy the request, which
  // would take the socket (and the response on it) down too.
  const raw: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }) };
  return limited(inflater === undefined ? raw : inflate(req, inflater), maxBytes);
}

async function* inflate(req: IncomingMessage, inflater: Transform): AsyncGenerator<Uint8Array> {
  req.on('error', (err) => inflater.destroy(err));
  req.pipe(inflater);
  try {
    for await (const chunk of inflater as AsyncIterable<Uint8Array>) yield chunk;
  } catch (err) {
    if (err instanceof StowageError) throw err;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new ProtocolError('HTTP_BAD_REQUEST', `the request body is not valid compressed data (${(err as Error).message})`, { cause: err });
    }
    throw new StowageError('ABORTED', 'the request body ended early', { cause: err });
  } finally {
    req.unpipe(inflater);
    inflater.destroy();
  }
}

async function* limited(source: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let total = 0;
  try {
    for await (const chunk of source) {
      total += chunk.length;
      if (total > maxBytes) throw new LimitError('LIMIT_EXCEEDED', `request body exceeds the limit of ${maxBytes} bytes`);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof StowageError) throw err;
    // The client went away mid-body (ECONNRESET, "aborted").
    throw new StowageError('ABORTED', 'the request body ended early', { cause: err });
  }
}
