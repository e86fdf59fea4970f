/**
 * Reading SDK errors (S3 error code, HTTP status, attempts) and turning them into
 * StoreErrors whose message names the operation, the key and what S3 answered, and never
 * holds a stack, a header or a credential.
 */
import { NotFoundError, StoreError } from '../../core/errors.js';

/** What an SDK (or network) error says, in a form safe to put in a message. */
export interface S3Failure {
  /** S3's error code (`NoSuchKey`, `PreconditionFailed`), a Node code (`ECONNREFUSED`) or a name. */
  readonly code: string;
  /** The HTTP status, when a response came back. */
  readonly status: number | undefined;
  /** How many attempts the SDK made (1 when not retried), when known. */
  readonly attempts: number | undefined;
}

function field(obj: unknown, name: string): unknown {
  return typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[name] : undefined;
}

/** Only short identifiers go in messages: S3 codes and Node codes are `[A-Za-z0-9_.]`. */
function safeCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(value) ? value : undefined;
}

/** Reads the S3 code, HTTP status and attempts of any thrown value. */
export function s3Failure(err: unknown): S3Failure {
  const meta = field(err, '$metadata');
  const status = field(meta, 'httpStatusCode');
  const attempts = field(meta, 'attempts');
  // Service errors carry S3's code as their name; others (sockets) a Node code such as ECONNREFUSED.
  const fromService = typeof status === 'number' || field(err, '$fault') !== undefined;
  const code =
    safeCode(field(err, 'Code')) ??
    (fromService ? safeCode(field(err, 'name')) : undefined) ??
    safeCode(field(err, 'code')) ??
    safeCode(field(err, 'name')) ??
    'unknown';
  return {
    code,
    status: typeof status === 'number' ? status : undefined,
    attempts: typeof attempts === 'number' ? attempts : undefined,
  };
}

/** `NoSuchKey` (GET) or a bare 404 (HEAD has no body), but never a missing bucket or upload. */
export function isS3NotFound(err: unknown): boolean {
  const f = s3Failure(err);
  if (f.code === 'NoSuchBucket' || f.code === 'NoSuchUpload') return false;
  return f.code === 'NoSuchKey' || f.status === 404;
}

/** A human-readable summary: `NoSuchBucket (HTTP 404)`. */
export function formatS3Failure(f: S3Failure): string {
  return f.status === undefined ? f.code : `${f.code} (HTTP ${f.status})`;
}

/**
 * The error to throw for a failed request: the caller's abort reason when its signal fired
 * (as every store does), else StoreError('STORE_IO') naming operation, target and S3's answer.
 */
export function s3Error(op: string, target: string, err: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (err instanceof StoreError) return err;
  return new StoreError('STORE_IO', `s3 ${op} of ${target} failed: ${formatS3Failure(s3Failure(err))}`, { cause: err });
}

/** NotFoundError('STORE_NOT_FOUND') for a key. */
export function s3NotFound(key: string): NotFoundError {
  return new NotFoundError('STORE_NOT_FOUND', `no object at key ${key}`);
}

/** The SDK's per-request options for an optional signal (exactOptionalPropertyTypes-safe). */
export function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}
