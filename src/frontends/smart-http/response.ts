/**
 * Response helpers: git-http-backend's no-cache headers, and errors mapped to an HTTP status
 * from the error catalog with a short text body (git prints text/plain bodies to the user) or
 * JSON `{code, message}` for API routes. Never a stack trace.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { errorCode, publicMessage } from '../../core/errors.js';
import { ERROR_CODES } from '../../core/error-codes.js';

/** Headers that forbid caching, exactly as git-http-backend's hdr_nocache sends them. */
export const NO_CACHE_HEADERS: Readonly<OutgoingHttpHeaders> = Object.freeze({
  Expires: 'Fri, 01 Jan 1980 00:00:00 GMT',
  Pragma: 'no-cache',
  'Cache-Control': 'no-cache, max-age=0, must-revalidate',
});

/** The HTTP status for any thrown value. */
export function httpStatusOf(err: unknown): number {
  return ERROR_CODES[errorCode(err)].http;
}

/** Sends a complete small response. */
export function sendText(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  const body = Buffer.from(text, 'utf8');
  res.writeHead(status, {
    ...NO_CACHE_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    ...headers,
  });
  res.end(body);
}

/** Answers an error that happened before any output; false if headers were already sent. */
export function sendError(res: ServerResponse, err: unknown, opts: { json?: boolean; headers?: OutgoingHttpHeaders } = {}): boolean {
  if (res.headersSent || res.destroyed) return false;
  // 499 (client gave up) is not a real status; if anyone is still listening, say 400.
  let status = httpStatusOf(err);
  if (status < 400 || status > 599) status = 400;
  const headers: OutgoingHttpHeaders = { ...(opts.headers ?? {}) };
  if (status === 401) headers['WWW-Authenticate'] = 'Basic realm="stowage"';
  if (opts.json === true) {
    const body = Buffer.from(JSON.stringify({ code: errorCode(err), message: publicMessage(err) }), 'utf8');
    res.writeHead(status, { ...NO_CACHE_HEADERS, 'Content-Type': 'application/json', 'Content-Length': body.length, ...headers });
    res.end(body);
  } else {
    sendText(res, status, `${publicMessage(err)}\n`, headers);
  }
  return true;
}
