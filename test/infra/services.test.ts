/** Reading the shared services' env vars, CI versus laptop behaviour, unique names. */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ETCD_ENV_VAR, SWIFT_ENV_VAR, etcdTestEnv, requireEtcd, requireSwift, swiftTestEnv, uniqueName,
  type SwiftTestEnv,
} from './services.js';

const SWIFT: SwiftTestEnv = {
  authUrl: 'http://127.0.0.1:1234/auth/v1.0', authVersion: 1, user: 'test:tester', key: 'testing',
  storageUrlHint: 'http://127.0.0.1:1234/v1/AUTH_test', s3Endpoint: 'http://127.0.0.1:1234', s3Region: 'us-east-1',
  s3AccessKey: 'test:tester', s3SecretKey: 'testing', maxFileSize: 8388608,
};

describe('services env', () => {
  const saved: Record<string, string | undefined> = {};
  const names = [SWIFT_ENV_VAR, ETCD_ENV_VAR, 'CI'];
  let stderr: string[];
  let realWrite: typeof process.stderr.write;

  beforeEach(() => {
    for (const n of names) saved[n] = process.env[n];
    for (const n of names) delete process.env[n];
    stderr = [];
    realWrite = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
  });
  afterEach(() => {
    process.stderr.write = realWrite;
    for (const n of names) {
      const v = saved[n];
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
    }
  });

  test('the env JSON round-trips into typed values', () => {
    process.env[SWIFT_ENV_VAR] = JSON.stringify(SWIFT);
    process.env[ETCD_ENV_VAR] = JSON.stringify({ endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] });
    assert.deepEqual(swiftTestEnv(), SWIFT);
    assert.deepEqual(etcdTestEnv(), { endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] });
    assert.deepEqual(requireSwift('x'), SWIFT);
    assert.deepEqual(requireEtcd('x')?.endpoints.length, 2);
    assert.deepEqual(stderr, []);
  });

  test('malformed env values are errors that quote the variable', () => {
    process.env[SWIFT_ENV_VAR] = '{not json';
    assert.throws(() => swiftTestEnv(), new RegExp(`${SWIFT_ENV_VAR} is not valid JSON`));
    process.env[SWIFT_ENV_VAR] = JSON.stringify({ ...SWIFT, maxFileSize: '8' });
    assert.throws(() => swiftTestEnv(), new RegExp(`${SWIFT_ENV_VAR}\\.maxFileSize must be a number`));
    process.env[ETCD_ENV_VAR] = JSON.stringify({ endpoints: [] });
    assert.throws(() => etcdTestEnv(), new RegExp(`${ETCD_ENV_VAR}\\.endpoints must be a non-empty array`));
  });

  test('outside CI a missing service skips with one line on stderr', () => {
    assert.equal(swiftTestEnv(), undefined);
    assert.equal(requireSwift('swift store conformance'), undefined);
    assert.equal(requireEtcd('etcd meta store'), undefined);
    assert.equal(stderr.length, 2);
    assert.match(stderr[0] ?? '', /^skipping swift store conformance: no Swift AIO \(STOWAGE_TEST_SWIFT is not set; run the suite with `npm test`.*\.ci\/run.*\)\n$/);
    assert.match(stderr[1] ?? '', /^skipping etcd meta store: no etcd cluster \(STOWAGE_TEST_ETCD is not set/);
  });

  test('in CI a missing service is an error naming it and how to get it', () => {
    process.env['CI'] = 'true';
    assert.throws(() => requireSwift('swift store conformance'), /swift store conformance needs the shared Swift AIO, but STOWAGE_TEST_SWIFT is not set; run the suite with `npm test`/);
    assert.throws(() => requireEtcd('etcd meta store'), /etcd meta store needs the shared etcd cluster, but STOWAGE_TEST_ETCD is not set.*etcd-server/);
    assert.deepEqual(stderr, []);
  });
});

describe('uniqueName', () => {
  const bucketName = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

  test('is a valid bucket and container name for any prefix', () => {
    fc.assert(fc.property(fc.string({ maxLength: 100 }), (prefix) => {
      const name = uniqueName(prefix);
      assert.match(name, bucketName);
      assert.ok(!name.includes('--'));
    }));
  });

  test('keeps a readable prefix and never repeats', () => {
    assert.match(uniqueName('My Store_Test'), /^my-store-test-[a-z0-9]+-[a-z0-9]+$/);
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(uniqueName('same'));
    assert.equal(seen.size, 5000);
  });
});
