/**
 * Retry policy and a small semaphore for the Swift client: which failures are worth another
 * attempt, how long to wait (exponential back-off with full jitter, as in the AWS architecture
 * note "Exponential Backoff And Jitter"), and a bound on requests in flight.
 */

/** How often and how patiently to retry. */
export interface RetryPolicy {
  /** Attempts in all, including the first (at least 1). */
  readonly attempts: number;
  /** Ceiling of the first back-off, ms; doubles per attempt. */
  readonly baseMs: number;
  /** Ceiling of any back-off, ms. */
  readonly capMs: number;
}

/**
 * Statuses worth another attempt: request timeout, too many requests, and server errors
 * (a proxy without a quorum answers 503; an overloaded object server 507 or 500). 501 (not
 * implemented) and 505 will not change on a retry.
 */
export function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Network failures that a fresh attempt may not meet (undici and Node system error codes). */
const RETRIABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether an error thrown by undici (or a cause inside it) is a transient network failure. */
export function isRetriableNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; depth += 1) {
    const code = codeOf(e);
    if (code !== undefined && RETRIABLE_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether a network error is a timeout (for messages). */
export function isTimeoutError(err: unknown): boolean {
  const code = codeOf(err) ?? codeOf((err as { cause?: unknown } | null)?.cause);
  return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT';
}

/**
 * The wait before retry number `retry` (1 for the first retry): uniform in
 * [0, min(cap, base * 2^(retry-1))] ("full jitter"), so many clients hitting one overloaded
 * proxy spread out instead of retrying in lock step.
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(30, Math.max(0, retry - 1)));
  return Math.floor(random() * ceiling);
}

/** A server's Retry-After in ms (delta seconds only), or undefined. */
export function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(header)) return undefined;
  return Math.round(Number(header) * 1000);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A counting semaphore: at most `limit` holders; waiters are served first come, first served. */
export class Semaphore {
  readonly #limit: number;
  #held = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  /** Holders right now (for tests and metrics). */
  get held(): number {
    return this.#held;
  }

  /** Waits for a slot; the returned function gives it back (calling it twice is harmless). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#held < this.#limit && this.#waiters.length === 0) {
      this.#held += 1;
      return this.#releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason);
      };
      this.#waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.#releaser();
  }

  #releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#waiters.shift();
      if (next !== undefined) next(); // the slot passes straight to the next waiter
      else this.#held -= 1;
    };
  }
}
