/**
 * Options of the etcd meta store and membership: a zod schema with every default, and
 * `parseEtcdUrl` for `etcd://HOST:PORT,HOST:PORT/PREFIX?…` meta URLs. Passwords never come
 * from the URL (it ends up in logs and `ps`): `?user=NAME` plus STOWAGE_ETCD_PASSWORD.
 */
import { z } from 'zod';
import { ValidationError } from '../../core/errors.js';
import { parseBackendUrl } from '../../core/backend-url.js';

/** etcd's own default `--max-txn-ops` (3.4): operations per transaction in each of compare/success/failure. */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;
/** etcd's own default `--max-request-bytes`: 1.5 MiB per request. */
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

const count = (min: number, max: number) =>
  z
    .number({ error: 'expected a whole number' })
    .int({ error: 'expected a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

/** `HOST:PORT`, `[V6]:PORT`, or the same behind `http://` / `https://`. */
const ENDPOINT_RE = /^(?:(https?):\/\/)?((?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5}))\/?$/;

const endpointSchema = z.string().superRefine((text, ctx) => {
  const m = ENDPOINT_RE.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    ctx.addIssue({ code: 'custom', message: 'expected HOST:PORT such as 127.0.0.1:2379 (optionally http:// or https://)' });
  }
});

/** Key prefix: segments of [A-Za-z0-9._-] separated by `/`; normalised to end with `/`, or empty. */
const prefixSchema = z.string().transform((text, ctx) => {
  const trimmed = text.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(trimmed) || trimmed.split('/').some((p) => p === '.' || p === '..')) {
    ctx.addIssue({ code: 'custom', message: 'must be /-separated names of [A-Za-z0-9._-]' });
    return z.NEVER;
  }
  return `${trimmed}/`;
});

/** How reads are served. */
export type EtcdReadMode = 'linearizable' | 'cached';

/** The schema of EtcdOptions, with defaults. */
export const ETCD_OPTIONS_SCHEMA = z.strictObject({
  /** Client URLs of the cluster's members. */
  endpoints: z.array(endpointSchema).min(1, { error: 'name at least one endpoint' }),
  /** Every key lives under this prefix, so clusters can be shared; normalised to end with `/`. */
  prefix: prefixSchema.default('stowage/'),
  /** etcd user and password (etcd's `auth enable`). */
  auth: z.strictObject({ username: z.string().min(1), password: z.string() }).optional(),
  /** TLS: implied by `https://` endpoints or by this object; absent files mean Node's bundled roots / no client cert. */
  tls: z
    .strictObject({
      caFile: z.string().min(1).optional(),
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
    })
    .optional(),
  /** How long `open()` waits to reach a member and start the watch, in ms. */
  dialTimeoutMs: count(1, 600_000).default(5_000),
  /** Deadline of each etcd call, retries on other members included, in ms: a call never hangs. */
  callTimeoutMs: count(1, 600_000).default(5_000),
  /**
   * `linearizable` (default): every read costs one small quorum read (the version key) and is
   * never stale; cached states spare re-reading big repositories. `cached`: while the watch is
   * live, reads are served from memory without asking etcd, stale by at most the watch latency
   * (but never older than this process's own commits). A watch attached to a member cut off
   * from the others goes quiet rather than failing, so such a partition can prolong that.
   */
  reads: z.enum(['linearizable', 'cached']).default('linearizable'),
  /** The cluster's `--max-txn-ops`; bigger changes go through the journal (see etcd-meta.ts). */
  maxTxnOps: count(8, 1_000_000).default(ETCD_DEFAULT_MAX_TXN_OPS),
  /** The cluster's `--max-request-bytes`. */
  maxRequestBytes: count(64 * 1024, 1024 * 1024 * 1024).default(ETCD_DEFAULT_MAX_REQUEST_BYTES),
  /** Repository states kept in memory. */
  cacheRepos: count(1, 1_000_000).default(1024),
});

/** What `EtcdMetaStore.open(…)` and `EtcdConnection.open(…)` take. */
export type EtcdOptions = z.input<typeof ETCD_OPTIONS_SCHEMA>;
/** EtcdOptions with every default filled in. */
export type ResolvedEtcdOptions = z.output<typeof ETCD_OPTIONS_SCHEMA>;

/** Validates options and fills defaults; throws ValidationError('CONFIG_INVALID') naming the key. */
export function resolveEtcdOptions(options: EtcdOptions): ResolvedEtcdOptions {
  const parsed = ETCD_OPTIONS_SCHEMA.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'options' : issue.path.join('.');
    // zod's messages never echo the value, so a password stays out of the error.
    throw new ValidationError('CONFIG_INVALID', `etcd meta store: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const o = parsed.data;
  const secure = o.endpoints.map((e) => e.startsWith('https://'));
  if (secure.some((s) => s) && !secure.every((s) => s)) {
    throw new ValidationError('CONFIG_INVALID', 'etcd meta store: endpoints mix http:// and https://; use one');
  }
  return o;
}

/** An endpoint as `host:port` (scheme dropped). */
export function endpointAddress(endpoint: string): string {
  const m = ENDPOINT_RE.exec(endpoint);
  return m?.[2] ?? endpoint;
}

/** Whether the options ask for TLS (an https:// endpoint or a `tls` object). */
export function wantsTls(options: ResolvedEtcdOptions): boolean {
  return options.tls !== undefined || options.endpoints.some((e) => e.startsWith('https://'));
}

const URL_KEYS = {
  tls: 'tls',
  ca: 'caFile',
  cafile: 'caFile',
  cert: 'certFile',
  certfile: 'certFile',
  key: 'keyFile',
  keyfile: 'keyFile',
  user: 'user',
  dialtimeoutms: 'dialTimeoutMs',
  calltimeoutms: 'callTimeoutMs',
  reads: 'reads',
  maxtxnops: 'maxTxnOps',
  maxrequestbytes: 'maxRequestBytes',
  cacherepos: 'cacheRepos',
} as const;
type UrlOption = (typeof URL_KEYS)[keyof typeof URL_KEYS];

function urlError(message: string): ValidationError {
  return new ValidationError('CONFIG_INVALID', `bad etcd URL: ${message}`);
}

/**
 * Parses `etcd://HOST:PORT[,HOST:PORT…][/PREFIX][?tls=true&ca=PATH&cert=PATH&key=PATH&user=NAME
 * &dial_timeout_ms=N&call_timeout_ms=N&reads=linearizable|cached&max_txn_ops=N
 * &max_request_bytes=N&cache_repos=N]`. No path or `/` keeps the default prefix `stowage/`.
 * With `user`, the password comes from STOWAGE_ETCD_PASSWORD in `env`. Unknown or repeated
 * query keys and bad values are ValidationError('CONFIG_INVALID') naming the key.
 */
export function parseEtcdUrl(url: string, env: NodeJS.ProcessEnv = {}): EtcdOptions {
  const parsed = parseBackendUrl(url, {
    scheme: 'etcd',
    example: 'etcd://HOST:PORT,HOST:PORT/PREFIX?…',
    credentialsHint: 'use ?user= and STOWAGE_ETCD_PASSWORD',
    keys: URL_KEYS as Readonly<Record<string, UrlOption>>,
    fail: urlError,
  });
  const endpoints = parsed.authority.split(',').filter((h) => h !== '');
  if (endpoints.length === 0) throw urlError('name at least one HOST:PORT');
  const out: Record<string, unknown> = { endpoints };
  if (parsed.path.replace(/\//g, '') !== '') out['prefix'] = parsed.path;

  const tls: Record<string, string> = {};
  let useTls = false;
  let user: string | undefined;
  for (const { key: rawKey, option, value: text } of parsed.params) {
    switch (option) {
      case 'tls':
        if (text === 'true' || text === '1') useTls = true;
        else if (text !== 'false' && text !== '0') throw urlError(`${rawKey} must be true or false`);
        break;
      case 'caFile':
      case 'certFile':
      case 'keyFile':
        if (text === '') throw urlError(`${rawKey} must name a file`);
        tls[option] = text;
        useTls = true;
        break;
      case 'user':
        if (text === '') throw urlError(`${rawKey} must not be empty`);
        user = text;
        break;
      case 'reads':
        out[option] = text;
        break;
      case 'dialTimeoutMs':
      case 'callTimeoutMs':
      case 'maxTxnOps':
      case 'maxRequestBytes':
      case 'cacheRepos':
        if (!/^\d{1,15}$/.test(text)) throw urlError(`${rawKey} must be a whole number`);
        out[option] = Number(text);
        break;
    }
  }
  if (useTls) out['tls'] = tls;
  if (user !== undefined) {
    const password = env['STOWAGE_ETCD_PASSWORD'];
    if (password === undefined) throw new ValidationError('CONFIG_INVALID', `etcd URL names user ${user}: set STOWAGE_ETCD_PASSWORD`);
    out['auth'] = { username: user, password };
  }
  const options = out as EtcdOptions;
  resolveEtcdOptions(options); // report bad values now, naming the option
  return options;
}
