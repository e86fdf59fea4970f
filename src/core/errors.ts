/**
 * Typed errors with stable codes. The code is API (clients and tests match on it), the
 * message says what to do, `cause` keeps the chain. `expose` says whether the message
 * may be shown to a remote client; unexposed errors reach the wire as a generic text.
 */
import { ERROR_CODES, type ErrorCode } from './error-codes.js';

const kStowageError = Symbol.for('stowage.error');

/** Options shared by every Stowage error. */
export interface StowageErrorOptions {
  readonly cause?: unknown;
  /** Overrides the catalog's default for whether the message is safe to show a client. */
  readonly expose?: boolean;
}

/** The base of every error Stowage throws on purpose. */
export class StowageError extends Error {
  readonly code: ErrorCode;
  readonly expose: boolean;

  constructor(code: ErrorCode, message: string, options: StowageErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.expose = options.expose ?? ERROR_CODES[code].expose;
    this.name = new.target.name;
    Object.defineProperty(this, kStowageError, { value: true });
  }

  /** Survives duplicate module copies (undici's brand trick). */
  static override [Symbol.hasInstance](instance: unknown): boolean {
    if (this !== StowageError) return Function.prototype[Symbol.hasInstance].call(this, instance);
    return typeof instance === 'object' && instance !== null && (instance as Record<symbol, unknown>)[kStowageError] === true;
  }
}

/** A peer broke a wire protocol (pkt-line, pack, NBD, HTTP framing). */
export class ProtocolError extends StowageError {}
/** Something named does not exist (object, key, repository, ref). */
export class NotFoundError extends StowageError {}
/** A condition failed: create-only key exists, name taken, stale expected value. */
export class ConflictError extends StowageError {}
/** An input exceeded a configured or protocol limit. */
export class LimitError extends StowageError {}
/** Authentication or authorisation refused the request. */
export class AuthError extends StowageError {}
/** An object store or meta store failed (I/O, timeout, 5xx). */
export class StoreError extends StowageError {}
/** A value is malformed: a bad name, a corrupt object, a bad config key. */
export class ValidationError extends StowageError {}

/** Narrows `unknown` to a StowageError with the given code. */
export function hasCode(err: unknown, code: ErrorCode): err is StowageError {
  return err instanceof StowageError && err.code === code;
}

/** The text that may go on the wire for any thrown value: never a stack, never an internal message. */
export function publicMessage(err: unknown): string {
  if (err instanceof StowageError && err.expose) return err.message;
  if (err instanceof StowageError) {
    const hint = HIDDEN_ERROR_HINTS[err.code];
    return hint === undefined ? `internal error (${err.code})` : `${hint} (${err.code})`;
  }
  return 'internal error';
}

/** What a remote client is told for codes whose own message stays in the server's log. */
const HIDDEN_ERROR_HINTS: Partial<Record<ErrorCode, string>> = {
  STORE_IO: 'the storage backend failed; try again, and tell the operator if it persists',
  STORE_NOT_FOUND: 'a stored object is missing; tell the operator (the repository needs a fsck)',
  META_CORRUPT: 'repository metadata is damaged; tell the operator',
};

/** The code to report for any thrown value. */
export function errorCode(err: unknown): ErrorCode {
  return err instanceof StowageError ? err.code : 'INTERNAL';
}
