/**
 * Options of the S3 object store: a zod schema with every default, and `parseS3Url` for
 * `s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true` store URLs. Credentials never come
 * from the URL: explicit options, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, else the SDK's default chain (profiles, instance roles).
 */
import { z } from 'zod';
import { parseByteSize } from '../../core/config.js';
import { ValidationError } from '../../core/errors.js';
import { checkKey } from '../key.js';
import { parseBackendUrl } from '../../core/backend-url.js';

/** S3's smallest multipart part (except the last); lib-storage refuses smaller. */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
/** Default multipart part size: bodies up to this go in one PutObject. */
export const S3_DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/**
 * How create-only puts (`ifAbsent`) are done. `honoured`: send `If-None-Match: *` (AWS S3,
 * MinIO, Ceph RGW). `unsupported`: refuse create-only puts. `probe` (default): find out with
 * `probeCreateOnly()` before the first create-only put.
 */
export type CreateOnlyMode = 'honoured' | 'unsupported' | 'probe';

/** Bucket names: S3's rules are stricter (lowercase); S3 faces such as Swift's allow these. */
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

const count = (min: number, max: number) =>
  z
    .number({ error: 'expected a whole number' })
    .int({ error: 'expected a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const endpointSchema = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL' });
  } else if (url.username !== '' || url.password !== '') {
    // Credentials in the endpoint would end up in logs and descriptions.
    ctx.addIssue({ code: 'custom', message: 'must not hold credentials (use credentials or AWS_* variables)' });
  } else if (url.search !== '' || url.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
  }
});

const prefixSchema = z.string().transform((text, ctx) => {
  const trimmed = text.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  try {
    checkKey(trimmed);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be /-separated names of [A-Za-z0-9._-]' });
    return z.NEVER;
  }
  return `${trimmed}/`;
});

/** The schema of S3StoreOptions, with defaults. */
export const S3_STORE_OPTIONS_SCHEMA = z.strictObject({
  /** The bucket holding everything (it must exist). */
  bucket: z.string().regex(BUCKET_RE, { error: 'expected a bucket name of [A-Za-z0-9._-]' }),
  /** Endpoint of an S3-compatible store (`http://127.0.0.1:8080`); absent: AWS S3. */
  endpoint: endpointSchema.optional(),
  region: z.string().min(1).default('us-east-1'),
  /** Keys are stored under this prefix; normalised to end with `/` (or empty). */
  prefix: prefixSchema.default(''),
  /** Path-style URLs (`endpoint/bucket/key`); default: true when an endpoint is set. */
  forcePathStyle: z.boolean({ error: 'expected true or false' }).optional(),
  /** Static credentials; absent: the SDK's default chain (env, profiles, roles). */
  credentials: z
    .strictObject({
      accessKeyId: z.string().min(1),
      secretAccessKey: z.string().min(1),
      sessionToken: z.string().min(1).optional(),
    })
    .optional(),
  /** Most sockets (concurrent requests) to the endpoint, kept alive between requests. */
  concurrency: count(1, 4096).default(64),
  /** Multipart part size in bytes; bodies up to this size go in one PutObject. */
  partSize: count(S3_MIN_PART_SIZE, 5 * 1024 * 1024 * 1024).default(S3_DEFAULT_PART_SIZE),
  /** Parts of one multipart upload in flight at once (memory: partSize times this). */
  partConcurrency: count(1, 64).default(4),
  /** Time to wait for response headers before a request fails (and is retried), in ms. */
  requestTimeoutMs: count(1, 3_600_000).default(120_000),
  /** Time to wait for a TCP (and TLS) connection, in ms. */
  connectTimeoutMs: count(1, 600_000).default(10_000),
  /** Attempts per request including the first, by the SDK's standard retry strategy. */
  maxAttempts: count(1, 20).default(4),
  createOnly: z.enum(['honoured', 'unsupported', 'probe']).default('probe'),
});

/** What `new S3Store(…)` takes. */
export type S3StoreOptions = z.input<typeof S3_STORE_OPTIONS_SCHEMA>;
/** S3StoreOptions with every default filled in. */
export type ResolvedS3Options = z.output<typeof S3_STORE_OPTIONS_SCHEMA> & { readonly forcePathStyle: boolean };

/** Validates options and fills defaults; throws ValidationError('CONFIG_INVALID') naming the key. */
export function resolveS3Options(options: S3StoreOptions): ResolvedS3Options {
  const parsed = S3_STORE_OPTIONS_SCHEMA.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'options' : issue.path.join('.');
    // zod's messages never echo the value, so secrets stay out of the error.
    throw new ValidationError('CONFIG_INVALID', `s3 store: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const o = parsed.data;
  return { ...o, forcePathStyle: o.forcePathStyle ?? o.endpoint !== undefined };
}

/** Query keys of an s3:// URL, by normalised name (lowercase, `_`/`-` ignored), with their option. */
const URL_KEYS = {
  endpoint: 'endpoint',
  region: 'region',
  pathstyle: 'forcePathStyle',
  createonly: 'createOnly',
  partsize: 'partSize',
  concurrency: 'concurrency',
  partconcurrency: 'partConcurrency',
  requesttimeoutms: 'requestTimeoutMs',
  connecttimeoutms: 'connectTimeoutMs',
  maxattempts: 'maxAttempts',
} as const;
type UrlOption = (typeof URL_KEYS)[keyof typeof URL_KEYS];

function urlError(message: string): ValidationError {
  return new ValidationError('CONFIG_INVALID', `bad s3 store URL: ${message}`);
}

function urlValue(option: UrlOption, key: string, text: string): unknown {
  switch (option) {
    case 'forcePathStyle':
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      throw urlError(`${key} must be true or false`);
    case 'partSize': {
      const n = parseByteSize(text);
      if (n === undefined) throw urlError(`${key} must be a size such as 8388608 or 16m`);
      return n;
    }
    case 'concurrency':
    case 'partConcurrency':
    case 'requestTimeoutMs':
    case 'connectTimeoutMs':
    case 'maxAttempts':
      if (!/^\d{1,15}$/.test(text)) throw urlError(`${key} must be a whole number`);
      return Number(text);
    case 'endpoint':
    case 'region':
    case 'createOnly':
      return text;
  }
}

/**
 * Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true&create_only=probe
 * &part_size=8m&concurrency=N&part_concurrency=N&request_timeout_ms=N&connect_timeout_ms=N
 * &max_attempts=N]`. Defaults come from `env`: AWS_REGION or AWS_DEFAULT_REGION,
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, and credentials from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Unknown or repeated query keys and bad values
 * are ValidationError('CONFIG_INVALID') naming the key.
 */
export function parseS3Url(url: string, env: NodeJS.ProcessEnv): S3StoreOptions {
  const parsed = parseBackendUrl(url, {
    scheme: 's3',
    example: 's3://BUCKET/PREFIX?endpoint=…&region=…',
    credentialsHint: 'use AWS_* variables',
    keys: URL_KEYS as Readonly<Record<string, UrlOption>>,
    fail: urlError,
  });
  const bucket = parsed.authority;
  if (!BUCKET_RE.test(bucket)) throw urlError(`bucket name ${JSON.stringify(bucket)} is not valid`);
  const out: Record<string, unknown> = { bucket };
  if (parsed.path.replace(/\//g, '') !== '') out['prefix'] = parsed.path;
  for (const { key, option, value } of parsed.params) out[option] = urlValue(option, key, value);

  const fromEnv = (...names: string[]): string | undefined => {
    for (const name of names) {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
    }
    return undefined;
  };
  if (out['region'] === undefined) {
    const region = fromEnv('AWS_REGION', 'AWS_DEFAULT_REGION');
    if (region !== undefined) out['region'] = region;
  }
  if (out['endpoint'] === undefined) {
    const endpoint = fromEnv('AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL');
    if (endpoint !== undefined) out['endpoint'] = endpoint;
  }
  const accessKeyId = fromEnv('AWS_ACCESS_KEY_ID');
  const secretAccessKey = fromEnv('AWS_SECRET_ACCESS_KEY');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ValidationError(
      'CONFIG_INVALID',
      `s3 store: ${accessKeyId === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY'} is missing (set both or neither)`,
    );
  }
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    const sessionToken = fromEnv('AWS_SESSION_TOKEN');
    out['credentials'] = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
  }
  const options = out as S3StoreOptions;
  resolveS3Options(options); // report bad values now, naming the option
  return options;
}
