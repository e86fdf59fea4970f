/**
 * Typed access to the shared test services of a run. scripts/run-tests.js starts one Swift AIO
 * and one etcd cluster and passes their connection details as JSON in STOWAGE_TEST_SWIFT and
 * STOWAGE_TEST_ETCD; a test file reads them here. Without them, CI fails the file and a laptop
 * skips the tests that need them (with one line on stderr saying why).
 */
import { randomBytes } from 'node:crypto';

/** How to reach a Swift cluster (tempauth v1) and its s3api face. */
export interface SwiftTestEnv {
  /** tempauth's v1 auth URL, e.g. http://127.0.0.1:PORT/auth/v1.0. */
  readonly authUrl: string;
  readonly authVersion: 1;
  /** `account:user` as tempauth spells it. */
  readonly user: string;
  readonly key: string;
  /** The storage URL auth is expected to hand out (clients must still use the one auth returns). */
  readonly storageUrlHint?: string;
  /** The proxy's base URL; s3api answers there (path-style requests). */
  readonly s3Endpoint: string;
  readonly s3Region: string;
  readonly s3AccessKey: string;
  readonly s3SecretKey: string;
  /** The cluster's max_file_size: bigger objects must be segmented (SLO / multipart). */
  readonly maxFileSize: number;
}

/** How to reach an etcd cluster. */
export interface EtcdTestEnv {
  /** Client URLs, http://127.0.0.1:PORT, one per member. */
  readonly endpoints: readonly string[];
}

/** The env var holding the shared Swift AIO's SwiftTestEnv as JSON. */
export const SWIFT_ENV_VAR = 'STOWAGE_TEST_SWIFT';
/** The env var holding the shared etcd cluster's EtcdTestEnv as JSON. */
export const ETCD_ENV_VAR = 'STOWAGE_TEST_ETCD';

function readJson(name: string): Record<string, unknown> | undefined {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} is not valid JSON (${err instanceof Error ? err.message : String(err)}): ${text.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${name} must hold a JSON object, got: ${text.slice(0, 200)}`);
  return value as Record<string, unknown>;
}

function field<T extends 'string' | 'number'>(env: string, obj: Record<string, unknown>, key: string, type: T): T extends 'string' ? string : number {
  const value = obj[key];
  if (typeof value !== type) throw new Error(`${env}.${key} must be a ${type}, got ${JSON.stringify(value)}`);
  return value as T extends 'string' ? string : number;
}

/** The shared Swift AIO of this test run, or undefined when none was started. */
export function swiftTestEnv(): SwiftTestEnv | undefined {
  const obj = readJson(SWIFT_ENV_VAR);
  if (obj === undefined) return undefined;
  const authVersion = field(SWIFT_ENV_VAR, obj, 'authVersion', 'number');
  if (authVersion !== 1) throw new Error(`${SWIFT_ENV_VAR}.authVersion must be 1, got ${authVersion}`);
  const hint = obj['storageUrlHint'];
  return {
    authUrl: field(SWIFT_ENV_VAR, obj, 'authUrl', 'string'),
    authVersion: 1,
    user: field(SWIFT_ENV_VAR, obj, 'user', 'string'),
    key: field(SWIFT_ENV_VAR, obj, 'key', 'string'),
    ...(typeof hint === 'string' ? { storageUrlHint: hint } : {}),
    s3Endpoint: field(SWIFT_ENV_VAR, obj, 's3Endpoint', 'string'),
    s3Region: field(SWIFT_ENV_VAR, obj, 's3Region', 'string'),
    s3AccessKey: field(SWIFT_ENV_VAR, obj, 's3AccessKey', 'string'),
    s3SecretKey: field(SWIFT_ENV_VAR, obj, 's3SecretKey', 'string'),
    maxFileSize: field(SWIFT_ENV_VAR, obj, 'maxFileSize', 'number'),
  };
}

/** The shared etcd cluster of this test run, or undefined when none was started. */
export function etcdTestEnv(): EtcdTestEnv | undefined {
  const obj = readJson(ETCD_ENV_VAR);
  if (obj === undefined) return undefined;
  const endpoints = obj['endpoints'];
  if (!Array.isArray(endpoints) || endpoints.length === 0 || !endpoints.every((e) => typeof e === 'string')) {
    throw new Error(`${ETCD_ENV_VAR}.endpoints must be a non-empty array of URLs, got ${JSON.stringify(endpoints)}`);
  }
  return { endpoints: endpoints as string[] };
}

/** Whether this is a CI run (env CI set and non-empty): missing services fail instead of skipping. */
export function inCi(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '';
}

function missing(service: string, envVar: string, packages: string, what: string): undefined {
  const reason = `${envVar} is not set; run the suite with \`npm test\`, which starts one (\`.ci/run\` installs ${packages})`;
  if (inCi()) throw new Error(`${what} needs the shared ${service}, but ${reason}`);
  process.stderr.write(`skipping ${what}: no ${service} (${reason})\n`);
  return undefined;
}

/**
 * The shared Swift AIO for the tests named by `what`. Without one: in CI throws; elsewhere
 * prints "skipping <what>: <reason>" to stderr and returns undefined, so the caller registers
 * its tests with `{ skip: ... }`.
 */
export function requireSwift(what: string): SwiftTestEnv | undefined {
  return swiftTestEnv() ?? missing('Swift AIO', SWIFT_ENV_VAR, 'the Debian swift packages and memcached', what);
}

/** The shared etcd cluster for the tests named by `what`; like requireSwift. */
export function requireEtcd(what: string): EtcdTestEnv | undefined {
  return etcdTestEnv() ?? missing('etcd cluster', ETCD_ENV_VAR, 'etcd-server and etcd-client', what);
}

let counter = 0;
const processTag = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;

/**
 * A fresh name for a bucket, container or key prefix: lowercase letters, digits and '-', at
 * most 63 characters, starting with a letter or digit (S3's DNS-compatible bucket rules), and
 * unique per process and call (and, with the random part, across runs on a long-lived service).
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 30);
  const name = `${clean === '' ? 't' : clean}-${processTag}-${counter.toString(36)}`;
  return name.replace(/-+/g, '-');
}
