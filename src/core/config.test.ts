import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  assignmentsFromEnv,
  buildConfig,
  formatHostPort,
  loadConfig,
  parseByteSize,
  parseListen,
  readConfigFile,
} from './config.js';
import { StowageError, ValidationError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import { parseFsckConfig } from '../git/fsck/config.js';

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-config-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function expectInvalid(fn: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    assert.equal(err.code, code);
    for (const f of fragments) assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} should mention ${f}`);
    return true;
  });
}

describe('parseListen', () => {
  test('host:port and bracketed IPv6', () => {
    assert.deepEqual(parseListen('127.0.0.1:9418'), { host: '127.0.0.1', port: 9418 });
    assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseListen('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseListen('[::]:65535'), { host: '::', port: 65535 });
  });

  test('refuses malformed addresses', () => {
    for (const bad of ['', '9418', ':9418', '127.0.0.1', '::1:80', '[::1]', 'host:65536', 'host:-1', 'host:port', 'a b:1', '[zz]:1']) {
      expectInvalid(() => parseListen(bad), 'CONFIG_INVALID', 'HOST:PORT');
    }
  });

  test('formatHostPort round-trips through parseListen', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()), fc.integer({ min: 0, max: 65535 }), (host, port) => {
        assert.deepEqual(parseListen(formatHostPort(host, port)), { host, port });
      }),
      { seed: 4711 },
    );
  });

  test('random text throws only ValidationError', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseListen(s);
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'CONFIG_INVALID');
        }
      }),
      { seed: 99 },
    );
  });
});

test('parseByteSize understands k/m/g/t suffixes', () => {
  assert.equal(parseByteSize('4096'), 4096);
  assert.equal(parseByteSize('512k'), 512 * 1024);
  assert.equal(parseByteSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseByteSize('4g'), 4 * 1024 ** 3);
  assert.equal(parseByteSize('4 GB'), 4 * 1024 ** 3);
  assert.equal(parseByteSize('4q'), undefined);
  assert.equal(parseByteSize('-1'), undefined);
});

describe('buildConfig', () => {
  test('defaults', () => {
    const c = buildConfig([]);
    assert.equal(c.data, './stowage-data');
    assert.deepEqual(c.git.listen, { host: '127.0.0.1', port: 9418 });
    assert.deepEqual(c.http.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(c.git.allowPush, false, 'push over git:// is off by default');
    assert.equal(c.git.enabled, true);
    assert.equal(c.receive.denyNonFastForwards, false);
    assert.deepEqual(c.limits, DEFAULT_LIMITS);
    assert.deepEqual(c.fsck, {});
    assert.equal(c.log.level, 'info');
    assert.ok(c.cache.blockMb > 0 && c.cache.indexMb > 0 && c.cache.objectMb > 0);
  });

  test('later assignments win', () => {
    const c = buildConfig([
      { path: 'git.listen', value: '0.0.0.0:1', source: 'a' },
      { path: 'git.listen', value: '0.0.0.0:2', source: 'b' },
    ]);
    assert.equal(c.git.listen.port, 2);
  });

  test('bad values name the key and the source', () => {
    expectInvalid(() => buildConfig([{ path: 'git.allowPush', value: 'maybe', source: 'STOWAGE_GIT_ALLOW_PUSH' }]), 'CONFIG_INVALID', 'git.allowPush', 'STOWAGE_GIT_ALLOW_PUSH');
    expectInvalid(() => buildConfig([{ path: 'cache.blockMb', value: -1, source: 'x.toml' }]), 'CONFIG_INVALID', 'cache.blockMb', 'x.toml');
    expectInvalid(() => buildConfig([{ path: 'limits.packSizeMax', value: '12 apples', source: 'x.toml' }]), 'CONFIG_INVALID', 'limits.packSizeMax');
    expectInvalid(() => buildConfig([{ path: 'http.listen', value: 'nope', source: '--http-listen' }]), 'ARG_INVALID', 'http.listen', '--http-listen');
    expectInvalid(() => buildConfig([{ path: 'fsck.noSuchCheck', value: 'warn', source: 'f.yaml' }], parseFsckConfig), 'CONFIG_INVALID', 'noSuchCheck', 'f.yaml');
    expectInvalid(() => buildConfig([{ path: 'fsck.badTimezone', value: 'loud', source: 'f.yaml' }], parseFsckConfig), 'CONFIG_INVALID', 'badTimezone');
    expectInvalid(() => buildConfig([{ path: 'fsck.badTimezone', value: 'loud', source: 'f.yaml' }]), 'CONFIG_INVALID', 'badTimezone');
  });

  test('fsck overrides are validated and canonicalised by the given validator', () => {
    const assignments = [
      { path: 'fsck.BADTIMEZONE', value: 'warn', source: 'f' },
      { path: 'fsck.missing_email', value: 'ignore', source: 'f' },
    ];
    assert.deepEqual({ ...buildConfig(assignments, parseFsckConfig).fsck }, { badTimezone: 'warn', missingEmail: 'ignore' });
    // Without one (core/ cannot import git/), ids are only normalised.
    assert.deepEqual({ ...buildConfig(assignments).fsck }, { badtimezone: 'warn', missingemail: 'ignore' });
  });

  test('byte sizes accept suffixes', () => {
    const c = buildConfig([{ path: 'limits.packSizeMax', value: '1g', source: 'f' }]);
    assert.equal(c.limits.packSizeMax, 1024 ** 3);
  });
});

describe('environment', () => {
  test('STOWAGE_<SECTION>_<KEY> maps to keys, with types', () => {
    const c = buildConfig(
      assignmentsFromEnv({
        STOWAGE_DATA: '/srv/x',
        STOWAGE_GIT_ALLOW_PUSH: 'yes',
        STOWAGE_HTTP_LISTEN: '[::1]:0',
        STOWAGE_LIMITS_IDLE_TIMEOUT_MS: '5000',
        STOWAGE_RECEIVE_DENY_NON_FAST_FORWARDS: 'true',
        STOWAGE_FSCK_BAD_TIMEZONE: 'warn',
        STOWAGE_LOG_LEVEL: 'debug',
        STOWAGE_DEBUG: '1',
        STOWAGE_SOMETHING_ELSE: 'ignored',
        HOME: '/home/x',
      }),
      parseFsckConfig,
    );
    assert.equal(c.data, '/srv/x');
    assert.equal(c.git.allowPush, true);
    assert.deepEqual(c.http.listen, { host: '::1', port: 0 });
    assert.equal(c.limits.idleTimeoutMs, 5000);
    assert.equal(c.receive.denyNonFastForwards, true);
    assert.equal(c.fsck['badTimezone'], 'warn');
    assert.equal(c.log.level, 'debug');
  });

  test('a typo in a known section is an error naming the variable', () => {
    expectInvalid(() => assignmentsFromEnv({ STOWAGE_GIT_LISTN: '1.2.3.4:5' }), 'CONFIG_INVALID', 'STOWAGE_GIT_LISTN', 'git.listn');
    expectInvalid(() => assignmentsFromEnv({ STOWAGE_GIT_MAX_CONNECTIONS: 'many' }), 'CONFIG_INVALID', 'STOWAGE_GIT_MAX_CONNECTIONS');
  });
});

describe('config files', () => {
  test('TOML with snake_case or camelCase keys', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'stowage.toml');
      await writeFile(file, 'data = "/var/lib/stowage"\n[git]\nallow_push = true\nlisten = "0.0.0.0:9419"\n[limits]\npackSizeMax = "2g"\n[fsck]\nbadTimezone = "warn"\n');
      const c = buildConfig(await readConfigFile(file), parseFsckConfig);
      assert.equal(c.data, '/var/lib/stowage');
      assert.equal(c.git.allowPush, true);
      assert.deepEqual(c.git.listen, { host: '0.0.0.0', port: 9419 });
      assert.equal(c.limits.packSizeMax, 2 * 1024 ** 3);
      assert.equal(c.fsck['badTimezone'], 'warn');
    });
  });

  test('YAML, and an empty YAML file', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'stowage.yaml');
      await writeFile(file, 'http:\n  listen: "127.0.0.1:0"\nreceive:\n  denyNonFastForwards: true\n');
      const c = buildConfig(await readConfigFile(file));
      assert.equal(c.http.listen.port, 0);
      assert.equal(c.receive.denyNonFastForwards, true);
      const empty = join(dir, 'empty.yml');
      await writeFile(empty, '');
      assert.deepEqual(await readConfigFile(empty), []);
    });
  });

  test('unknown keys, bad syntax, unknown extensions and missing files are CONFIG_INVALID', async () => {
    await withTempDir(async (dir) => {
      const cases: Array<[string, string, string]> = [
        ['a.toml', '[git]\nlisten_on = "x"\n', 'git.listen_on'],
        ['b.toml', '[gti]\nlisten = "x"\n', 'gti'],
        ['c.toml', 'data = \n', 'cannot parse'],
        ['d.yaml', 'git: 3\n', 'section'],
        ['e.ini', 'x=1', '.toml'],
        ['f.toml', '[git]\nallowPush = "perhaps"\n', 'git.allowPush'],
      ];
      for (const [name, text, fragment] of cases) {
        const file = join(dir, name);
        await writeFile(file, text);
        await assert.rejects(loadConfig({ file }), (err: unknown) => {
          assert.ok(err instanceof ValidationError && err.code === 'CONFIG_INVALID', String(err));
          assert.ok(err.message.includes(fragment), `${err.message} should mention ${fragment}`);
          return true;
        });
      }
      await assert.rejects(loadConfig({ file: join(dir, 'missing.toml') }), /cannot read config file/);
    });
  });
});

test('precedence: file < environment < flags', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'stowage.toml');
    await writeFile(file, '[git]\nlisten = "127.0.0.1:1001"\n[http]\nlisten = "127.0.0.1:2001"\n[log]\nlevel = "warn"\n');
    const env = { STOWAGE_HTTP_LISTEN: '127.0.0.1:2002', STOWAGE_LOG_LEVEL: 'error' };
    const c = await loadConfig({ file, env, flags: [{ path: 'log.level', value: 'debug', source: '--log-level' }] });
    assert.equal(c.git.listen.port, 1001, 'file only');
    assert.equal(c.http.listen.port, 2002, 'env beats file');
    assert.equal(c.log.level, 'debug', 'flag beats env and file');
  });
});
