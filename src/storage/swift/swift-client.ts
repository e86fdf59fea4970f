/**
 * The Swift HTTP client under SwiftStore: one undici Agent (a connection pool of
 * `http_pool_length` per Swift host, timeouts from `http_timeout`), a semaphore bounding the
 * requests in flight to `concurrency`, the auth token (fetched once, shared by concurrent
 * callers, refreshed shortly before it expires and once on a 401), and retries with
 * exponential back-off and full jitter for replayable requests.
 *
 * Errors name the operation, the object and the HTTP status, never the token.
 */
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { StoreError } from '../../core/errors.js';
import { authenticate, safeUrl, type AuthExchange, type AuthReply, type SwiftAuthResult } from './swift-auth.js';
import type { SwiftStoreOptions } from './swift-options.js';
import {
  backoffMs,
  isRetriableNetworkError,
  isRetriableStatus,
  isTimeoutError,
  retryAfterMs,
  Semaphore,
  sleep,
  type RetryPolicy,
} from './swift-retry.js';

/** A request body that is produced on demand; `replayable()` says whether `open()` may be called again. */
export interface StreamBody {
  open(): AsyncIterable<Uint8Array>;
  replayable(): boolean;
}

/** One logical request below the storage URL. */
export interface SwiftCall {
  /** For messages: what we were doing (`get`, `put`, `list`, …). */
  readonly op: string;
  /** For messages: what it was about (`key a/b`, `container c`). */
  readonly what: string;
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST';
  /** Encoded path below the storage URL: `/container` or `/container/object`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | StreamBody;
  /** Statuses handed back to the caller; any other is retried or thrown. */
  readonly ok: readonly number[];
  /** Hand the body back as a stream instead of reading it. */
  readonly stream?: boolean;
  readonly signal?: AbortSignal | undefined;
}

/** The answer to a SwiftCall. */
export interface SwiftReply {
  readonly status: number;
  header(name: string): string | undefined;
  /** The body (empty when streamed). */
  readonly body: Buffer;
  /** The body as a stream (when asked for); read it to the end or `discard` it. */
  readonly stream: AsyncIterable<Buffer>;
  /** Drops what is left of a streamed body (closing the connection if much is left). */
  discard(): void;
  /** An earlier attempt may have reached the server (its outcome is unknown). */
  readonly ambiguous: boolean;
}

/** Test seams. */
export interface SwiftClientDeps {
  readonly random?: () => number;
  readonly now?: () => number;
}

/** Refresh tokens this long before the service says they expire. */
const EXPIRY_MARGIN_MS = 60_000;
/** Bytes of an error body quoted in messages. */
const ERROR_BODY_QUOTE = 200;

const EMPTY = Buffer.alloc(0);

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Headers = Record<string, string | string[] | undefined>;

function headerOf(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Encodes a container and an object name into a path (`/` in object names kept). */
export function objectPath(container: string, name?: string): string {
  const c = `/${encodeURIComponent(container)}`;
  return name === undefined ? c : `${c}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

/** The cluster's `/info` URL for a storage URL (`http://h/v1/AUTH_x` -> `http://h/info`). */
export function infoUrl(storageUrl: string): string {
  const u = new URL(storageUrl);
  const at = u.pathname.search(/\/v1(\/|$)/);
  const root = at >= 0 ? u.pathname.slice(0, at) : '';
  return `${u.protocol}//${u.host}${root}/info`;
}

/** Drops a response body: a destroyed undici body emits an abort error, which is expected here. */
function discardBody(body: Dispatcher.ResponseData['body']): void {
  if (body.destroyed) return;
  body.on('error', () => undefined);
  body.destroy();
}

async function quoteBody(body: Dispatcher.ResponseData['body']): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += Buffer.from(chunk as Uint8Array).toString('utf8');
      if (text.length >= ERROR_BODY_QUOTE) break;
    }
  } catch {
    // the quote is best effort
  } finally {
    discardBody(body);
  }
  const plain = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, ERROR_BODY_QUOTE);
  return plain === '' ? '' : `: ${plain}`;
}

/** The HTTP side of a SwiftStore. */
export class SwiftClient {
  readonly #opts: SwiftStoreOptions;
  readonly #agent: Agent;
  readonly #sem: Semaphore;
  readonly #retry: RetryPolicy;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #highWaterMark: number;
  #auth: Promise<SwiftAuthResult> | undefined;
  #current: SwiftAuthResult | undefined;
  #closed = false;

  constructor(opts: SwiftStoreOptions, deps: SwiftClientDeps = {}) {
    this.#opts = opts;
    const timeout = Math.round(opts.httpTimeout * 1000);
    this.#agent = new Agent({
      connections: opts.httpPoolLength,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connect: { timeout },
    });
    this.#sem = new Semaphore(opts.concurrency);
    this.#retry = { attempts: opts.retryAttempts, baseMs: opts.retryBaseMs, capMs: opts.retryCapMs };
    this.#random = deps.random ?? Math.random;
    this.#now = deps.now ?? Date.now;
    this.#highWaterMark = Math.max(64 * 1024, opts.chunkLength);
  }

  /** Requests holding a slot right now. */
  get inFlight(): number {
    return this.#sem.held;
  }

  /** The current session (authenticating first if needed, or when the token nears expiry). */
  async session(): Promise<SwiftAuthResult> {
    this.#checkOpen();
    const cur = this.#current;
    if (cur !== undefined && (cur.expiresAtMs === undefined || this.#now() < cur.expiresAtMs - EXPIRY_MARGIN_MS)) return cur;
    if (cur !== undefined) {
      this.#current = undefined;
      this.#auth = undefined;
    }
    let pending = this.#auth;
    if (pending === undefined) {
      const p = authenticate(this.#opts, (ex) => this.#sendRetrying(ex));
      this.#auth = p;
      // Registered before any caller awaits p, so #current is set by the time they resume.
      p.then(
        (r) => {
          if (this.#auth === p) this.#current = r;
        },
        () => {
          if (this.#auth === p) this.#auth = undefined; // the next call tries again
        },
      );
      pending = p;
    }
    return pending;
  }

  /** Replaces the cached token (tests of the 401 refresh). */
  async replaceTokenForTest(token: string): Promise<void> {
    const current = { ...(await this.session()), token };
    this.#current = current;
    this.#auth = Promise.resolve(current);
  }

  /** Forgets the session if it still holds `token` (after a 401). */
  #invalidate(token: string): void {
    if (this.#current?.token !== token) return; // already refreshed (or refreshing)
    this.#current = undefined;
    this.#auth = undefined;
  }

  /**
   * Sends a call: retried on network errors, timeouts, 408, 429 and 5xx while its body can be
   * replayed; re-authenticated once on a 401. Statuses outside `call.ok` end in StoreError.
   * A streamed reply gives its slot back once the headers are in: the body then holds only a
   * pool connection, so a caller may read it while making other calls (a copy never deadlocks).
   */
  async call(call: SwiftCall): Promise<SwiftReply> {
    const body = call.body;
    const canReplay = (): boolean => body === undefined || body instanceof Uint8Array || body.replayable();
    let ambiguous = false;
    let refreshed = false;
    for (let attempt = 1; ; attempt += 1) {
      call.signal?.throwIfAborted();
      // The token first, then a slot: auth takes no slot, so waiting for it never deadlocks.
      const session = await this.session();
      let wait: number | undefined;
      let reason: string;
      const release = await this.#sem.acquire(call.signal);
      try {
        const res = await this.#dispatch(session, call);
        if (res.statusCode === 401) this.#invalidate(session.token); // the next call authenticates afresh
        if (res.statusCode === 401 && !refreshed && canReplay()) {
          await quoteBody(res.body);
          refreshed = true;
          attempt -= 1; // a refresh is not a failed attempt
          continue;
        }
        if (call.ok.includes(res.statusCode)) {
          const header = (name: string): string | undefined => headerOf(res.headers, name);
          const discard = (): void => discardBody(res.body);
          if (call.stream === true) return { status: res.statusCode, header, body: EMPTY, stream: res.body, discard, ambiguous };
          const data = call.method === 'HEAD' ? await res.body.dump().then(() => EMPTY) : Buffer.from(await res.body.arrayBuffer());
          return { status: res.statusCode, header, body: data, stream: res.body, discard, ambiguous };
        }
        const quote = await quoteBody(res.body);
        const after = res.statusCode === 401 && refreshed ? ' after re-authenticating' : '';
        reason = `HTTP ${res.statusCode}${after}${quote}`;
        if (!isRetriableStatus(res.statusCode)) throw this.#error(call, reason);
        ambiguous = true;
        wait = retryAfterMs(headerOf(res.headers, 'retry-after'));
      } catch (err) {
        if (err instanceof StoreError) throw err;
        if (call.signal?.aborted === true) throw call.signal.reason;
        if (!isRetriableNetworkError(err)) throw this.#error(call, errText(err), err);
        ambiguous = true;
        reason = isTimeoutError(err) ? `timed out after ${this.#opts.httpTimeout} s` : `network error (${errText(err)})`;
      } finally {
        release();
      }
      if (attempt >= this.#retry.attempts || !canReplay()) {
        const why = canReplay() ? `after ${attempt} attempts` : 'and the streamed body cannot be sent again';
        throw this.#error(call, `${reason} (${why})`);
      }
      const delay = backoffMs(this.#retry, attempt, this.#random);
      await sleep(Math.min(this.#retry.capMs, Math.max(delay, wait ?? 0)), call.signal);
    }
  }

  /** GET /info (no token needed); undefined when the cluster does not publish it. */
  async info(signal?: AbortSignal): Promise<Record<string, unknown> | undefined> {
    const session = await this.session();
    const reply = await this.#sendRetrying({ method: 'GET', url: infoUrl(session.storageUrl), headers: { accept: 'application/json' } }, signal);
    if (reply.status !== 200) return undefined;
    try {
      const json = JSON.parse(reply.text) as unknown;
      return typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Closes the connection pools; later calls throw. Requests still running get `http_timeout`
   * to finish (a stream nobody reads would hold a graceful close forever), then are cut off.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), Math.round(this.#opts.httpTimeout * 1000));
    });
    try {
      if ((await Promise.race([this.#agent.close(), late])) === 'late') await this.#agent.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('STORE_IO', 'swift store is closed');
  }

  #error(call: SwiftCall, reason: string, cause?: unknown): StoreError {
    const where = `swift:${this.#opts.container}`;
    return new StoreError('STORE_IO', `${where}: ${call.op} ${call.what} failed: ${reason}`, cause === undefined ? {} : { cause });
  }

  async #dispatch(session: SwiftAuthResult, call: SwiftCall): Promise<Dispatcher.ResponseData> {
    this.#checkOpen();
    const qs = call.query === undefined ? '' : `?${new URLSearchParams(call.query as Record<string, string>).toString()}`;
    const headers: Record<string, string> = { ...call.headers, 'x-auth-token': session.token };
    let body: Uint8Array | Readable | undefined;
    if (call.body instanceof Uint8Array) {
      body = call.body;
      headers['content-length'] = String(call.body.byteLength);
    } else if (call.body !== undefined) {
      body = Readable.from(call.body.open(), { objectMode: false });
    } else if (call.method === 'PUT' || call.method === 'POST') {
      headers['content-length'] = '0';
    }
    return request(`${session.storageUrl}${call.path}${qs}`, {
      dispatcher: this.#agent,
      method: call.method,
      headers,
      body: body ?? null,
      signal: call.signal ?? null,
      highWaterMark: this.#highWaterMark,
    });
  }

  /** An unauthenticated exchange with retries (auth and /info); takes no slot. */
  async #sendRetrying(ex: AuthExchange, signal?: AbortSignal): Promise<AuthReply> {
    for (let attempt = 1; ; attempt += 1) {
      this.#checkOpen();
      try {
        const res = await request(ex.url, {
          dispatcher: this.#agent,
          method: ex.method,
          headers: ex.body === undefined ? ex.headers : { ...ex.headers, 'content-length': String(ex.body.byteLength) },
          body: ex.body ?? null,
          signal: signal ?? null,
        });
        if (!isRetriableStatus(res.statusCode) || attempt >= this.#retry.attempts) {
          const text = await res.body.text();
          return { status: res.statusCode, header: (name) => headerOf(res.headers, name), text };
        }
        await res.body.dump().catch(() => undefined);
      } catch (err) {
        if (signal?.aborted === true) throw signal.reason;
        if (!isRetriableNetworkError(err) || attempt >= this.#retry.attempts) {
          const why = isTimeoutError(err) ? `timed out after ${this.#opts.httpTimeout} s` : errText(err);
          throw new StoreError('STORE_IO', `swift: ${ex.method} ${safeUrl(ex.url)} failed after ${attempt} attempts: ${why}`, { cause: err });
        }
      }
      await sleep(backoffMs(this.#retry, attempt, this.#random), signal);
    }
  }
}
