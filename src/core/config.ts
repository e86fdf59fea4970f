/**
 * Server configuration: one zod schema holding every default, filled from (lowest first) a
 * config file (TOML, YAML or JSON), `STOWAGE_<SECTION>_<KEY>` environment variables, and
 * command-line flags. Keys match case-insensitively with `_`/`-` ignored (`allow_push`,
 * `allowPush` and `ALLOW_PUSH` are one key), as git config keys do. Unknown keys and bad
 * values are ValidationError('CONFIG_INVALID') naming the key and where it came from.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError } from './errors.js';
import { LOG_LEVELS } from './log.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';

/** A host and TCP port to listen on (port 0: any free port). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `HOST:PORT`, with IPv6 hosts in brackets (`[::1]:9418`). Throws
 * ValidationError('CONFIG_INVALID') for anything else.
 */
export function parseListen(text: string): ListenAddress {
  const m = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new ValidationError(
      'CONFIG_INVALID',
      `bad listen address ${JSON.stringify(text)}: expected HOST:PORT such as 127.0.0.1:9418 or [::1]:9418`,
    );
  }
  return { host: m[1] as string, port };
}

/** `host:port` with IPv6 hosts bracketed, for URLs and logs. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses `4096`, `512k`, `64m`, `4g`, `1t` (binary multiples, as git's config sizes). */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (m === null) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] as string).toLowerCase()] ?? 1;
  const n = Number(m[1]) * mult;
  return Number.isSafeInteger(n) ? n : undefined;
}

const listen = z.string().transform((s, ctx) => {
  try {
    return parseListen(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
const bool = z.boolean({ error: 'expected true or false' });
const count = (min: number) =>
  z
    .number({ error: 'expected a whole number' })
    .int({ error: 'expected a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(Number.MAX_SAFE_INTEGER, { error: 'is too large' });
const bytes = z.preprocess(
  (v) => (typeof v === 'string' ? (parseByteSize(v) ?? v) : v),
  z
    .number({ error: 'expected a size in bytes such as 1048576, 512m or 4g' })
    .int({ error: 'expected a whole number of bytes' })
    .min(1, { error: 'must be at least 1' })
    .max(Number.MAX_SAFE_INTEGER, { error: 'is too large' }),
);

/** The schema of the whole configuration, with every default. */
export const CONFIG_SCHEMA = z.strictObject({
  /** Directory of the embedded filesystem store (relative paths: to the working directory). */
  data: z.string().min(1).default('./stowage-data'),
  /**
   * Where repositories and volumes live, by URL: `fs:///DIR`, `s3://BUCKET/PREFIX?…`,
   * `swift://CONTAINER/PREFIX?…`. Unset: the fs store at `data`. Wins over `data` when both are set.
   */
  store: z.string().min(1).optional(),
  /** Where refs and the catalog live: `store` (in the object store) or `etcd://H:P,H:P/PREFIX`. */
  meta: z.string().min(1).default('store'),
  /** A Swift config file in the `[swift]` INI format of Dulwich's Swift backend. */
  swiftConfig: z.string().min(1).optional(),
  /** Swift settings (the `[swift]` keys); a `swift://` store URL's query overrides them. */
  swift: z.strictObject({
    authUrl: z.string().min(1).optional(),
    authVer: z.union([z.literal(1), z.literal(2), z.literal(3)], { error: 'expected 1, 2 or 3' }).optional(),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    regionName: z.string().min(1).optional(),
    endpointType: z.string().min(1).optional(),
    concurrency: count(1).optional(),
    httpPoolLength: count(1).optional(),
    httpTimeout: count(1).optional(),
    chunkLength: count(1).optional(),
    cacheLength: count(0).optional(),
    container: z.string().min(1).optional(),
    prefix: z.string().optional(),
  }).prefault({}),
  /** S3 settings; an `s3://` store URL's query overrides them. */
  s3: z.strictObject({
    endpoint: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    prefix: z.string().optional(),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    sessionToken: z.string().min(1).optional(),
    pathStyle: bool.optional(),
  }).prefault({}),
  cluster: z.strictObject({
    /** This node's name in `stowage cluster status` (default: host name and process id). */
    nodeId: z.string().min(1).max(128).optional(),
  }).prefault({}),
  git: z.strictObject({
    enabled: bool.default(true),
    listen: listen.prefault('127.0.0.1:9418'),
    /** git:// has no authentication: push over it is off unless the operator opts in. */
    allowPush: bool.default(false),
    maxConnections: count(1).default(512),
  }).prefault({}),
  http: z.strictObject({
    enabled: bool.default(true),
    listen: listen.prefault('127.0.0.1:8080'),
    maxConnections: count(1).default(1024),
  }).prefault({}),
  /** NBD block devices: off unless enabled (serve starts git and HTTP by default). */
  nbd: z.strictObject({
    enabled: bool.default(false),
    listen: listen.prefault('127.0.0.1:10809'),
    maxConnections: count(1).default(64),
    /**
     * Write-back cache per open volume, MiB (half may be dirty). 256: fio 4 KiB random I/O over
     * 256 MiB measured 0.61x/0.20x of nbdkit-file (read/write) with it, 0.24x/0.10x with 64.
     */
    cacheMb: count(1).default(256),
    /** STARTTLS: off, on (offered), require (every option but STARTTLS refused with TLS_REQD). */
    tls: z.enum(['off', 'on', 'require'], { error: 'expected off, on or require' }).default('off'),
    /** PEM files: server certificate (chain) and key; with tlsCa, client certificates must chain to it. */
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    tlsCa: z.string().min(1).optional(),
  }).prefault({}),
  cache: z.strictObject({
    blockMb: count(0).default(256),
    indexMb: count(0).default(64),
    objectMb: count(0).default(64),
    /** Decoded reachability accelerators (per-pack commit graph and tree children). */
    accelMb: count(0).default(128),
    /** Answers of full clones per repository state (one bit per object), for repeated clones. */
    cloneMb: count(0).default(16),
    /** Decoded reachability bitmaps (per closed pack: reachable objects of selected commits). */
    bitmapMb: count(0).default(64),
  }).prefault({}),
  limits: z.strictObject({
    packSizeMax: bytes.default(DEFAULT_LIMITS.packSizeMax),
    packObjectsMax: count(1).default(DEFAULT_LIMITS.packObjectsMax),
    objectSizeMax: bytes.default(DEFAULT_LIMITS.objectSizeMax),
    idleTimeoutMs: count(1000).default(DEFAULT_LIMITS.idleTimeoutMs),
  }).prefault({}),
  /** Server-wide fsck severities (`fsck.<msgId> = error|warn|ignore`), as git's receive.fsck.*. */
  fsck: z.record(z.string(), z.string()).default({}),
  receive: z.strictObject({
    denyNonFastForwards: bool.default(false),
  }).prefault({}),
  /** Pack compaction: geometric merges of small packs after pushes (serve only). */
  compact: z.strictObject({
    auto: bool.default(true),
    /** Packs below this count are left alone after a push. */
    minPacks: count(2).default(4),
    /** How long a pack removed from the list stays readable before its files are deleted. */
    graceMinutes: count(0).default(10),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
    pretty: bool.default(false),
  }).prefault({}),
});

type ParsedConfig = z.output<typeof CONFIG_SCHEMA>;

/** fsck severity overrides by message id (the shape of git/fsck's FsckConfig). */
export type FsckSeverities = Readonly<Record<string, 'error' | 'warn' | 'ignore'>>;

/**
 * Checks and canonicalises fsck overrides (ids, fatal ids); cli/ passes git/fsck's
 * parseFsckConfig, since core/ may not import git/. Throws on the first bad entry.
 */
export type FsckValidator = (entries: Record<string, string>) => FsckSeverities;

/** The validated configuration. */
export interface StowageConfig extends Omit<ParsedConfig, 'limits' | 'fsck'> {
  readonly limits: Limits;
  readonly fsck: FsckSeverities;
}

type LeafKind = 'string' | 'boolean' | 'integer' | 'bytes';
type SectionName = 'git' | 'http' | 'nbd' | 'cache' | 'limits' | 'receive' | 'compact' | 'log' | 'swift' | 's3' | 'cluster';

/** Keys outside any section, by normalised name. */
const TOP_LEVEL: Readonly<Record<string, string>> = { data: 'data', store: 'store', meta: 'meta', swiftconfig: 'swiftConfig' };

/** Every settable key and how text (env, flags) converts to its type. */
const LEAVES: Readonly<Record<SectionName, Readonly<Record<string, LeafKind>>>> = {
  git: { enabled: 'boolean', listen: 'string', allowPush: 'boolean', maxConnections: 'integer' },
  http: { enabled: 'boolean', listen: 'string', maxConnections: 'integer' },
  nbd: { enabled: 'boolean', listen: 'string', maxConnections: 'integer', cacheMb: 'integer', tls: 'string', tlsCert: 'string', tlsKey: 'string', tlsCa: 'string' },
  cache: { blockMb: 'integer', indexMb: 'integer', objectMb: 'integer', accelMb: 'integer', cloneMb: 'integer', bitmapMb: 'integer' },
  limits: { packSizeMax: 'bytes', packObjectsMax: 'integer', objectSizeMax: 'bytes', idleTimeoutMs: 'integer' },
  receive: { denyNonFastForwards: 'boolean' },
  compact: { auto: 'boolean', minPacks: 'integer', graceMinutes: 'integer' },
  log: { level: 'string', pretty: 'boolean' },
  swift: {
    authUrl: 'string',
    authVer: 'integer',
    username: 'string',
    password: 'string',
    regionName: 'string',
    endpointType: 'string',
    concurrency: 'integer',
    httpPoolLength: 'integer',
    httpTimeout: 'integer',
    chunkLength: 'integer',
    cacheLength: 'integer',
    container: 'string',
    prefix: 'string',
  },
  s3: {
    endpoint: 'string',
    region: 'string',
    bucket: 'string',
    prefix: 'string',
    accessKeyId: 'string',
    secretAccessKey: 'string',
    sessionToken: 'string',
    pathStyle: 'boolean',
  },
  cluster: { nodeId: 'string' },
};

/** One value for one key (`git.allowPush`, `fsck.badTimezone`, `data`), with where it came from. */
export interface ConfigAssignment {
  readonly path: string;
  readonly value: unknown;
  /** Shown in errors: a file name, an environment variable, a flag. */
  readonly source: string;
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

function findSection(key: string): SectionName | 'fsck' | undefined {
  const n = normalizeKey(key);
  if (n === 'fsck') return 'fsck';
  return (Object.keys(LEAVES) as SectionName[]).find((s) => s === n);
}

function findLeaf(sectionName: SectionName, key: string): string | undefined {
  const n = normalizeKey(key);
  return Object.keys(LEAVES[sectionName]).find((k) => k.toLowerCase() === n);
}

function invalid(source: string, message: string): ValidationError {
  const code = source.startsWith('--') ? 'ARG_INVALID' : 'CONFIG_INVALID';
  return new ValidationError(code, `${message} (from ${source})`);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Flattens a parsed config document into assignments; unknown keys are errors. */
export function assignmentsFromDocument(doc: unknown, source: string): ConfigAssignment[] {
  if (!isTable(doc)) throw invalid(source, 'a config file must be a table of sections');
  const out: ConfigAssignment[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const top = TOP_LEVEL[normalizeKey(key)];
    if (top !== undefined) {
      out.push({ path: top, value, source });
      continue;
    }
    const sec = findSection(key);
    if (sec === undefined) throw invalid(source, `unknown config key ${JSON.stringify(key)}`);
    if (!isTable(value)) throw invalid(source, `config key ${sec} must be a section of keys`);
    for (const [sub, v] of Object.entries(value)) {
      if (sec === 'fsck') {
        out.push({ path: `fsck.${sub}`, value: v, source });
        continue;
      }
      const leaf = findLeaf(sec, sub);
      if (leaf === undefined) throw invalid(source, `unknown config key ${sec}.${sub}`);
      out.push({ path: `${sec}.${leaf}`, value: v, source });
    }
  }
  return out;
}

/** Converts text from the environment or a flag to the key's type. */
function coerce(path: string, raw: unknown, source: string): unknown {
  if (typeof raw !== 'string') return raw;
  const [sec, leaf] = path.split('.') as [string, string | undefined];
  const kind: LeafKind = leaf === undefined || sec === 'fsck' ? 'string' : (LEAVES[sec as SectionName]?.[leaf] ?? 'string');
  const text = raw.trim();
  switch (kind) {
    case 'string':
    case 'bytes':
      return raw;
    case 'boolean': {
      const l = text.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(l)) return true;
      if (['0', 'false', 'no', 'off'].includes(l)) return false;
      throw invalid(source, `config key ${path}: expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'integer':
      if (/^-?\d+$/.test(text)) return Number(text);
      throw invalid(source, `config key ${path}: expected a whole number, got ${JSON.stringify(raw)}`);
  }
}

/**
 * Assignments from `STOWAGE_<SECTION>_<KEY>` variables (and STOWAGE_DATA, STOWAGE_STORE,
 * STOWAGE_META, STOWAGE_SWIFT_CONFIG). A variable naming a
 * known section but an unknown key is an error (a typo would otherwise be silently ignored);
 * other STOWAGE_* variables (STOWAGE_DEBUG, …) are not configuration and are left alone.
 */
export function assignmentsFromEnv(env: Readonly<Record<string, string | undefined>>): ConfigAssignment[] {
  const out: ConfigAssignment[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('STOWAGE_')) continue;
    const rest = name.slice('STOWAGE_'.length);
    const top = TOP_LEVEL[normalizeKey(rest)];
    if (top !== undefined) {
      out.push({ path: top, value, source: name });
      continue;
    }
    const cut = rest.indexOf('_');
    if (cut <= 0) continue;
    const sec = findSection(rest.slice(0, cut));
    if (sec === undefined) continue;
    const key = rest.slice(cut + 1);
    if (sec === 'fsck') {
      out.push({ path: `fsck.${key}`, value, source: name });
      continue;
    }
    const leaf = findLeaf(sec, key);
    if (leaf === undefined) throw invalid(name, `unknown config key ${sec}.${key.toLowerCase()}`);
    out.push({ path: `${sec}.${leaf}`, value: coerce(`${sec}.${leaf}`, value, name), source: name });
  }
  return out;
}

/** Reads and parses a config file by its extension (.toml, .yaml/.yml, .json). */
export async function readConfigFile(file: string): Promise<ConfigAssignment[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ValidationError('CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const lower = file.toLowerCase();
  let doc: unknown;
  try {
    if (lower.endsWith('.toml')) doc = parseToml(text);
    else if (lower.endsWith('.yaml') || lower.endsWith('.yml')) doc = parseYaml(text);
    else if (lower.endsWith('.json')) doc = JSON.parse(text);
    else throw new ValidationError('CONFIG_INVALID', `config file ${file} must end in .toml, .yaml, .yml or .json`);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    const first = String((err as Error).message).split('\n')[0];
    throw new ValidationError('CONFIG_INVALID', `cannot parse config file ${file}: ${first}`, { cause: err });
  }
  // An empty YAML document is null: no settings.
  return assignmentsFromDocument(doc ?? {}, file);
}

/** Without a validator: values must be error, warn or ignore; ids are taken as given. */
function basicFsckValidator(entries: Record<string, string>): FsckSeverities {
  const out: Record<string, 'error' | 'warn' | 'ignore'> = {};
  for (const [id, raw] of Object.entries(entries)) {
    const v = raw.trim().toLowerCase();
    if (v !== 'error' && v !== 'warn' && v !== 'ignore') throw new Error(`fsck setting ${id} must be error, warn or ignore, got ${JSON.stringify(raw)}`);
    out[id] = v;
  }
  return out;
}

/** Applies assignments in order (later wins) and validates the result against the schema. */
export function buildConfig(assignments: readonly ConfigAssignment[], checkFsck: FsckValidator = basicFsckValidator): StowageConfig {
  const raw: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const fsckRaw: Record<string, string> = {};
  const fsckSources = new Map<string, string>();
  for (const a of assignments) {
    const value = coerce(a.path, a.value, a.source);
    const dot = a.path.indexOf('.');
    if (dot < 0) {
      raw[a.path] = value;
    } else {
      const sec = a.path.slice(0, dot);
      const key = a.path.slice(dot + 1);
      if (sec === 'fsck') {
        if (typeof value !== 'string') throw invalid(a.source, `config key ${a.path}: expected error, warn or ignore`);
        const norm = normalizeKey(key);
        fsckRaw[norm] = value;
        fsckSources.set(norm, `${a.source}, key fsck.${key}`);
        continue;
      }
      const table = (raw[sec] ?? {}) as Record<string, unknown>;
      table[key] = value;
      raw[sec] = table;
    }
    sources.set(a.path, a.source);
  }
  const parsed = CONFIG_SCHEMA.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined ? '' : issue.path.map(String).join('.');
    const source = sources.get(path) ?? 'configuration';
    throw invalid(source, `config key ${path || '(root)'}: ${issue?.message ?? 'invalid value'}`);
  }
  const fsck: Record<string, 'error' | 'warn' | 'ignore'> = {};
  for (const [key, value] of Object.entries(fsckRaw)) {
    try {
      Object.assign(fsck, checkFsck({ [key]: value }));
    } catch (err) {
      throw invalid(fsckSources.get(key) ?? 'configuration', (err as Error).message);
    }
  }
  return { ...parsed.data, fsck: Object.freeze(fsck) };
}

export interface LoadConfigOptions {
  /** `--config FILE`. */
  readonly file?: string | undefined;
  /** Usually process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Command-line flags, already mapped to keys (source: the flag, e.g. `--git-listen`). */
  readonly flags?: readonly ConfigAssignment[];
  /** Validates fsck overrides (cli/ passes git/fsck's parseFsckConfig). */
  readonly checkFsck?: FsckValidator;
}

/** Loads the configuration: file, then environment, then flags (each overriding the last). */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<StowageConfig> {
  const fromFile = opts.file === undefined ? [] : await readConfigFile(opts.file);
  const fromEnv = opts.env === undefined ? [] : assignmentsFromEnv(opts.env);
  return buildConfig([...fromFile, ...fromEnv, ...(opts.flags ?? [])], opts.checkFsck);
}
