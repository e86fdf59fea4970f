/**
 * Settings of the Swift store: a typed object, the `[swift]` INI section of Dulwich's Swift
 * backend (seed 000; a file written for Dulwich loads unchanged), and the store URL form
 * `swift://CONTAINER/PREFIX?auth_url=…&auth_ver=1&username=…&password=…`.
 *
 * Keys are matched case-insensitively with `_` and `-` ignored, as the server config does
 * (`http_pool_length`, `httpPoolLength`). Unknown keys, bad values and missing required keys
 * are ValidationError('CONFIG_INVALID') naming the key. Sizes accept `8m`, `1g`.
 */
import { z } from 'zod';
import { parseByteSize } from '../../core/config.js';
import { ValidationError } from '../../core/errors.js';
import { checkKey } from '../key.js';

/** The resolved settings of a SwiftStore, every default filled in. */
export interface SwiftStoreOptions {
  /** Tempauth (`…/auth/v1.0`) or Keystone (`…:5000/v2.0`, `…:5000/v3`) URL. */
  readonly authUrl: string;
  readonly authVer: 1 | 2 | 3;
  /** `tenant;user` (Dulwich); auth v1 also takes tempauth's `account:user`. */
  readonly username: string;
  readonly password: string;
  /** Catalog region of the object-store endpoint (auth v2/v3). */
  readonly regionName: string;
  /** `internalURL`, `publicURL`, `adminURL` (v2 names; v3 `internal`, `public`, `admin` too). */
  readonly endpointType: string;
  /** Requests in flight per store, at most. */
  readonly concurrency: number;
  /** HTTP connections per Swift host. */
  readonly httpPoolLength: number;
  /** Seconds to wait for a connection, response headers, or the next body bytes. */
  readonly httpTimeout: number;
  /** Read size hint of streamed gets, bytes (never below 64 KiB in practice). */
  readonly chunkLength: number;
  /** Dulwich's cache size, MB: kept for the block cache, unused by the store itself. */
  readonly cacheLength: number;
  readonly container: string;
  /** Object name prefix: empty, or ends with `/`. */
  readonly prefix: string;
  /** Use this storage URL instead of the one the auth service names. */
  readonly storageUrl: string | undefined;
  /** Keystone v3 domains of the user and project (default `Default`). */
  readonly userDomainName: string;
  readonly projectDomainName: string;
  /** Largest plain object; default from the cluster's `/info` (`swift.max_file_size`). */
  readonly maxFileSize: number | undefined;
  /** SLO segment size; default min(max file size, 1 GiB). */
  readonly segmentSize: number | undefined;
  /** Names per listing request (Swift serves at most 10,000). */
  readonly pageSize: number;
  readonly retryAttempts: number;
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  /** Streamed put bodies up to this size are buffered (replayable, one plain PUT). */
  readonly putBufferSize: number;
  /** Read alignment the store reports to the block cache. */
  readonly blockSize: number;
}

/** Settings as given: any subset, numbers as numbers or text; `resolveSwiftOptions` checks them. */
export type SwiftSettings = {
  readonly [K in keyof SwiftStoreOptions]?: SwiftStoreOptions[K] | string | undefined;
};

const MIB = 1024 * 1024;

/** Each key's name in files and URLs (the seed's snake_case) by option name. */
const FILE_NAMES: Readonly<Record<keyof SwiftStoreOptions, string>> = {
  authUrl: 'auth_url',
  authVer: 'auth_ver',
  username: 'username',
  password: 'password',
  regionName: 'region_name',
  endpointType: 'endpoint_type',
  concurrency: 'concurrency',
  httpPoolLength: 'http_pool_length',
  httpTimeout: 'http_timeout',
  chunkLength: 'chunk_length',
  cacheLength: 'cache_length',
  container: 'container',
  prefix: 'prefix',
  storageUrl: 'storage_url',
  userDomainName: 'user_domain_name',
  projectDomainName: 'project_domain_name',
  maxFileSize: 'max_file_size',
  segmentSize: 'segment_size',
  pageSize: 'page_size',
  retryAttempts: 'retry_attempts',
  retryBaseMs: 'retry_base_ms',
  retryCapMs: 'retry_cap_ms',
  putBufferSize: 'put_buffer_size',
  blockSize: 'block_size',
};

const OPTION_BY_NORMAL: ReadonlyMap<string, keyof SwiftStoreOptions> = new Map(
  (Object.keys(FILE_NAMES) as Array<keyof SwiftStoreOptions>).map((k) => [normalKey(k), k]),
);

function normalKey(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

function invalid(source: string, message: string): ValidationError {
  return new ValidationError('CONFIG_INVALID', `${source}: ${message}`);
}

/** The option a key of a file or URL names; throws for unknown keys. */
function optionOf(key: string, source: string): keyof SwiftStoreOptions {
  const opt = OPTION_BY_NORMAL.get(normalKey(key));
  if (opt === undefined) {
    const known = Object.values(FILE_NAMES).join(', ');
    throw invalid(source, `unknown key ${JSON.stringify(key)} (known keys: ${known})`);
  }
  return opt;
}

const fromText = (v: unknown): unknown => (typeof v === 'string' ? v.trim() : v);
const int = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : fromText(v)),
    z.number({ error: 'expected a whole number' }).int({ error: 'expected a whole number' }).min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` }),
  );
const bytes = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' ? (parseByteSize(v) ?? v) : v),
    z.number({ error: 'expected a size in bytes such as 1048576, 512m or 1g' }).int({ error: 'expected a whole number of bytes' }).min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` }),
  );
const seconds = z.preprocess(
  (v) => (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : fromText(v)),
  z.number({ error: 'expected a number of seconds' }).positive({ error: 'must be more than 0' }).max(86_400, { error: 'must be at most 86400' }),
);
const httpUrl = z.preprocess(
  fromText,
  z.string({ error: 'expected a URL' }).refine((s) => /^https?:\/\/[^/?#\s]+/.test(s) && URL.canParse(s), { error: 'expected an http:// or https:// URL' }),
);
const name = z.preprocess(fromText, z.string({ error: 'expected text' }).min(1, { error: 'must not be empty' }));
const ENDPOINT_TYPES = ['publicurl', 'internalurl', 'adminurl', 'public', 'internal', 'admin'];

const SCHEMA = z.strictObject({
  authUrl: httpUrl,
  authVer: z.preprocess(
    (v) => (typeof v === 'string' && /^\s*[123](\.0)?\s*$/.test(v) ? Math.floor(Number(v)) : v),
    z.union([z.literal(1), z.literal(2), z.literal(3)], { error: 'expected 1, 2 or 3' }),
  ),
  username: name,
  password: z.string({ error: 'expected text' }),
  regionName: name.default('RegionOne'),
  endpointType: name
    .refine((s) => ENDPOINT_TYPES.includes(s.toLowerCase()), { error: 'expected internalURL, publicURL or adminURL' })
    .default('internalURL'),
  concurrency: int(1, 1024).default(10),
  httpPoolLength: int(1, 1024).default(10),
  httpTimeout: seconds.default(20),
  chunkLength: bytes(1, 64 * MIB).default(12228),
  cacheLength: int(0, 1024 * 1024).default(20),
  container: z
    .preprocess(fromText, z.string({ error: 'expected text' }))
    .refine((s) => /^[A-Za-z0-9._+@=-]{1,247}$/.test(s) && s !== '.' && s !== '..', {
      error: 'expected 1 to 247 of A-Z a-z 0-9 . _ + @ = -',
    })
    .default('stowage'),
  prefix: z.preprocess(fromText, z.string({ error: 'expected text' })).default(''),
  storageUrl: httpUrl.optional(),
  userDomainName: name.default('Default'),
  projectDomainName: name.default('Default'),
  maxFileSize: bytes(1, Number.MAX_SAFE_INTEGER).optional(),
  segmentSize: bytes(1, Number.MAX_SAFE_INTEGER).optional(),
  pageSize: int(1, 10_000).default(10_000),
  retryAttempts: int(1, 100).default(5),
  retryBaseMs: int(0, 60_000).default(100),
  retryCapMs: int(0, 600_000).default(5_000),
  putBufferSize: bytes(0, 1024 * MIB).default(8 * MIB),
  blockSize: bytes(4096, 256 * MIB).default(MIB),
});

/** `a/b` or `a/b/` -> `a/b/`; empty stays empty. Throws for prefixes that are not key-like. */
function normalizePrefix(prefix: string, source: string): string {
  if (prefix === '') return '';
  const bare = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  try {
    checkKey(bare);
  } catch {
    throw invalid(source, `key prefix: ${JSON.stringify(prefix)} is not a key prefix (A-Z a-z 0-9 . _ - separated by /)`);
  }
  if (bare.length > 512) throw invalid(source, 'key prefix: must be at most 512 characters');
  return `${bare}/`;
}

/**
 * Merges settings (later layers win; `undefined` values are skipped), fills defaults and
 * checks everything. `source` names where the settings came from in error messages.
 */
export function resolveSwiftOptions(layers: readonly SwiftSettings[], source = 'swift settings'): SwiftStoreOptions {
  const merged: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) merged[key] = value;
    }
  }
  for (const key of ['authUrl', 'authVer', 'username', 'password'] as const) {
    if (merged[key] === undefined) {
      throw invalid(source, `missing required key ${FILE_NAMES[key]} (needed: auth_url, auth_ver, username, password)`);
    }
  }
  const parsed = SCHEMA.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') throw invalid(source, `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`);
    const field = String(issue?.path[0] ?? '');
    const fileName = FILE_NAMES[field as keyof SwiftStoreOptions] ?? field;
    throw invalid(source, `key ${fileName}: ${issue?.message ?? 'invalid value'}`);
  }
  const o = parsed.data;
  if (o.authVer !== 1) {
    const parts = o.username.split(';');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw invalid(source, `key username: auth v${o.authVer} needs "tenant;user" (a project and a user name), got ${JSON.stringify(o.username)}`);
    }
  }
  return {
    authUrl: o.authUrl,
    authVer: o.authVer,
    username: o.username,
    password: o.password,
    regionName: o.regionName,
    endpointType: o.endpointType,
    concurrency: o.concurrency,
    httpPoolLength: o.httpPoolLength,
    httpTimeout: o.httpTimeout,
    chunkLength: o.chunkLength,
    cacheLength: o.cacheLength,
    container: o.container,
    prefix: normalizePrefix(o.prefix, source),
    storageUrl: o.storageUrl,
    userDomainName: o.userDomainName,
    projectDomainName: o.projectDomainName,
    maxFileSize: o.maxFileSize,
    segmentSize: o.segmentSize,
    pageSize: o.pageSize,
    retryAttempts: o.retryAttempts,
    retryBaseMs: o.retryBaseMs,
    retryCapMs: o.retryCapMs,
    putBufferSize: o.putBufferSize,
    blockSize: o.blockSize,
  };
}

/**
 * Reads the `[swift]` section of an INI file as Python's configparser does: `key = value` or
 * `key: value`, whole-line `#`/`;` comments (a `;` inside a value such as `admin;admin` is
 * data), `[DEFAULT]` keys inherited, other sections ignored, uniform indentation allowed.
 */
export function readSwiftConfigIni(text: string, source = 'swift config'): SwiftSettings {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  let lastKey: string | undefined;
  let lastIndent = 0;
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  for (const [i, raw] of lines.entries()) {
    const trimmed = raw.trim();
    const indent = raw.length - raw.trimStart().length;
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
      if (trimmed === '') lastKey = undefined;
      continue;
    }
    if (current !== undefined && lastKey !== undefined && indent > lastIndent) {
      current.set(lastKey, `${current.get(lastKey) ?? ''}\n${trimmed}`); // continuation line
      continue;
    }
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header !== null) {
      const title = header[1] as string;
      current = sections.get(title) ?? new Map<string, string>();
      sections.set(title, current);
      lastKey = undefined;
      continue;
    }
    const kv = /^(.*?)\s*[=:]\s*(.*)$/.exec(trimmed);
    if (kv === null || (kv[1] as string) === '') throw invalid(source, `line ${i + 1}: expected "key = value" or a [section]`);
    if (current === undefined) throw invalid(source, `line ${i + 1}: a key before any [section]`);
    lastKey = (kv[1] as string).toLowerCase();
    lastIndent = indent;
    current.set(lastKey, kv[2] as string);
  }
  const swift = sections.get('swift');
  if (swift === undefined) throw invalid(source, 'no [swift] section');
  const out: Record<string, string> = {};
  for (const [key, value] of [...(sections.get('DEFAULT') ?? new Map<string, string>()), ...swift]) {
    out[optionOf(key, source)] = value;
  }
  return out;
}

/** Percent-decodes URL text (RFC 3986: `+` is a plus sign, not a space). */
function decodeComponent(text: string, what: string, source: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(source, `bad percent-encoding in ${what}`);
  }
}

/**
 * Reads `swift://CONTAINER/PREFIX?key=value&…` (any key of the INI form; an empty CONTAINER
 * keeps the default). Components are percent-decoded; `+` stays a plus sign.
 */
export function readSwiftUrl(url: string, source = 'swift URL'): SwiftSettings {
  const m = /^swift:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(url.trim());
  if (m === null) throw invalid(source, 'expected swift://CONTAINER/PREFIX?auth_url=…&auth_ver=…&username=…&password=…');
  const out: Record<string, string> = {};
  const container = decodeComponent(m[1] ?? '', 'the container', source);
  if (container !== '') out['container'] = container;
  const prefix = decodeComponent((m[2] ?? '').replace(/^\//, ''), 'the prefix', source);
  if (prefix !== '') out['prefix'] = prefix;
  for (const pair of (m[3] ?? '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decodeComponent(eq < 0 ? pair : pair.slice(0, eq), 'a query key', source);
    const value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1), `the value of ${key}`, source);
    const opt = optionOf(key, source);
    if (opt in out) throw invalid(source, `key ${JSON.stringify(key)} given twice`);
    out[opt] = value;
  }
  return out;
}

/** Parses and checks the `[swift]` section of a Dulwich-style config file. */
export function parseSwiftConfigIni(text: string): SwiftStoreOptions {
  return resolveSwiftOptions([readSwiftConfigIni(text)], 'swift config');
}

/** Parses and checks a `swift://CONTAINER/PREFIX?…` store URL. */
export function parseSwiftUrl(url: string): SwiftStoreOptions {
  return resolveSwiftOptions([readSwiftUrl(url)], 'swift URL');
}

/** The key's name in files and URLs (`httpPoolLength` -> `http_pool_length`). */
export function swiftKeyName(option: keyof SwiftStoreOptions): string {
  return FILE_NAMES[option];
}
