/**
 * Swift settings: the `[swift]` file of Dulwich's Swift backend (seed 000) loads unchanged,
 * the `swift://` URL form, defaults, and typed errors for unknown, missing and bad keys.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import {
  parseSwiftConfigIni,
  parseSwiftUrl,
  readSwiftConfigIni,
  readSwiftUrl,
  resolveSwiftOptions,
  swiftKeyName,
  type SwiftStoreOptions,
} from './swift-options.js';

/** The configuration template of seed 000, as it stands there (indented as a literal block). */
const SEED_CONFIG = [
  '    [swift]',
  '    # Authentication URL (Keystone or Swift)',
  '    auth_url = http://127.0.0.1:5000/v2.0',
  '    # Authentication version to use',
  '    auth_ver = 2',
  '    # The tenant and username separated by a semicolon',
  '    username = admin;admin',
  '    # The user password',
  '    password = pass',
  '    # The Object storage region to use (auth v2) (Default RegionOne)',
  '    region_name = RegionOne',
  '    # The Object storage endpoint URL to use (auth v2) (Default internalURL)',
  '    endpoint_type = internalURL',
  '    # Concurrency to use for parallel tasks (Default 10)',
  '    concurrency = 10',
  '    # Size of the HTTP pool (Default 10)',
  '    http_pool_length = 10',
  '    # Timeout delay for HTTP connections (Default 20)',
  '    http_timeout = 20',
  '    # Chunk size to read from pack (Bytes) (Default 12228)',
  '    chunk_length = 12228',
  '    # Cache size (MBytes) (Default 20)',
  '    cache_length = 20',
].join('\n');

function rejectsKey(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

const MINIMAL = 'auth_url = http://127.0.0.1:8080/auth/v1.0\nauth_ver = 1\nusername = test:tester\npassword = testing\n';

describe('swift settings: the [swift] file', () => {
  test("the seed's config file loads unchanged", () => {
    const expected: SwiftStoreOptions = {
      authUrl: 'http://127.0.0.1:5000/v2.0',
      authVer: 2,
      username: 'admin;admin',
      password: 'pass',
      regionName: 'RegionOne',
      endpointType: 'internalURL',
      concurrency: 10,
      httpPoolLength: 10,
      httpTimeout: 20,
      chunkLength: 12228,
      cacheLength: 20,
      container: 'stowage',
      prefix: '',
      storageUrl: undefined,
      userDomainName: 'Default',
      projectDomainName: 'Default',
      maxFileSize: undefined,
      segmentSize: undefined,
      pageSize: 10_000,
      retryAttempts: 5,
      retryBaseMs: 100,
      retryCapMs: 5000,
      putBufferSize: 8 * 1024 * 1024,
      blockSize: 1024 * 1024,
    };
    assert.deepEqual(parseSwiftConfigIni(SEED_CONFIG), expected);
    // The same file dedented, with CRLF line ends, or with a trailing newline.
    const dedented = SEED_CONFIG.split('\n').map((l) => l.trimStart()).join('\n');
    assert.deepEqual(parseSwiftConfigIni(dedented), expected);
    assert.deepEqual(parseSwiftConfigIni(SEED_CONFIG.replace(/\n/g, '\r\n')), expected);
    assert.deepEqual(parseSwiftConfigIni(`${dedented}\n`), expected);
  });

  test('defaults, our own keys, [DEFAULT] inheritance and other sections', () => {
    const o = parseSwiftConfigIni(`[DEFAULT]\nconcurrency = 3\n[other]\nanything = goes\n[swift]\n${MINIMAL}container = repos\nprefix = git/prod\nsegment_size = 64m\nput-buffer-size = 1m\nhttpTimeout: 2.5\n`);
    assert.equal(o.concurrency, 3);
    assert.equal(o.container, 'repos');
    assert.equal(o.prefix, 'git/prod/');
    assert.equal(o.segmentSize, 64 * 1024 * 1024);
    assert.equal(o.putBufferSize, 1024 * 1024);
    assert.equal(o.httpTimeout, 2.5);
    assert.equal(o.regionName, 'RegionOne');
    assert.equal(o.endpointType, 'internalURL');
    // A ; inside a value is data, a ; at the start of a line a comment.
    const v2 = parseSwiftConfigIni(`[swift]\n; a comment\n${MINIMAL.replace('auth_ver = 1', 'auth_ver = 2').replace('test:tester', 'tenant;user')}`);
    assert.equal(v2.username, 'tenant;user');
  });

  test('unknown keys are rejected by name', () => {
    rejectsKey(() => parseSwiftConfigIni(`[swift]\n${MINIMAL}auth_verr = 2\n`), /unknown key "auth_verr"/);
    rejectsKey(() => parseSwiftConfigIni(`[DEFAULT]\nbogus = 1\n[swift]\n${MINIMAL}`), /unknown key "bogus"/);
  });

  test('missing keys, sections and bad lines are clear errors', () => {
    for (const key of ['auth_url', 'auth_ver', 'username', 'password']) {
      const text = `[swift]\n${MINIMAL.split('\n').filter((l) => !l.startsWith(`${key} `)).join('\n')}`;
      rejectsKey(() => parseSwiftConfigIni(text), new RegExp(`missing required key ${key}`));
    }
    rejectsKey(() => parseSwiftConfigIni(`[dulwich]\n${MINIMAL}`), /no \[swift\] section/);
    rejectsKey(() => parseSwiftConfigIni(MINIMAL), /line 1: a key before any \[section\]/);
    rejectsKey(() => parseSwiftConfigIni(`[swift]\n${MINIMAL}just words\n`), /line 6: expected "key = value"/);
  });

  test('bad values name the key', () => {
    const cases: Array<[string, RegExp]> = [
      ['auth_ver = 4', /key auth_ver: expected 1, 2 or 3/],
      ['concurrency = 0', /key concurrency: must be at least 1/],
      ['http_pool_length = many', /key http_pool_length: expected a whole number/],
      ['http_timeout = soon', /key http_timeout: expected a number of seconds/],
      ['endpoint_type = sideways', /key endpoint_type: expected internalURL, publicURL or adminURL/],
      ['auth_url = ftp://host/auth', /key auth_url: expected an http:\/\/ or https:\/\/ URL/],
      ['container = a/b', /key container: expected 1 to 247/],
      ['prefix = ../up', /key prefix: .* is not a key prefix/],
      ['page_size = 20000', /key page_size: must be at most 10000/],
      ['chunk_length = 1x', /key chunk_length: expected a size in bytes/],
    ];
    for (const [line, pattern] of cases) {
      const key = line.split(' ')[0] as string;
      const text = `[swift]\n${MINIMAL.split('\n').filter((l) => !l.startsWith(`${key} `)).join('\n')}\n${line}\n`;
      rejectsKey(() => parseSwiftConfigIni(text), pattern);
    }
    const v3 = `[swift]\n${MINIMAL.replace('auth_ver = 1', 'auth_ver = 3')}`;
    rejectsKey(() => parseSwiftConfigIni(v3), /auth v3 needs "tenant;user"/);
  });
});

describe('swift settings: swift:// URLs and typed objects', () => {
  test('container, prefix and query keys, percent-decoded, + kept', () => {
    const o = parseSwiftUrl(
      'swift://repos/git/prod?auth_url=http%3A%2F%2F127.0.0.1%3A8080%2Fauth%2Fv1.0&auth_ver=1&username=test:tester&password=p%26ss+w%3Drd&pageSize=500',
    );
    assert.equal(o.container, 'repos');
    assert.equal(o.prefix, 'git/prod/');
    assert.equal(o.authUrl, 'http://127.0.0.1:8080/auth/v1.0');
    assert.equal(o.username, 'test:tester');
    assert.equal(o.password, 'p&ss+w=rd');
    assert.equal(o.pageSize, 500);
    const d = parseSwiftUrl('swift://?auth_url=http://h/auth/v1.0&auth_ver=1&username=u&password=');
    assert.equal(d.container, 'stowage');
    assert.equal(d.prefix, '');
    assert.equal(d.password, '');
  });

  test('bad URLs are clear errors', () => {
    rejectsKey(() => parseSwiftUrl('s3://bucket/x'), /expected swift:\/\/CONTAINER/);
    rejectsKey(() => parseSwiftUrl('swift://c?auth_url=http://h&auth_ver=1&username=u&password=p&colour=blue'), /unknown key "colour"/);
    rejectsKey(() => parseSwiftUrl('swift://c?auth_url=http://h&auth_ver=1&auth_ver=2&username=u&password=p'), /"auth_ver" given twice/);
    rejectsKey(() => parseSwiftUrl('swift://c?container=d&auth_url=http://h&auth_ver=1&username=u&password=p'), /"container" given twice/);
    rejectsKey(() => parseSwiftUrl('swift://c?auth_url=http://h&auth_ver=1&username=u'), /missing required key password/);
    rejectsKey(() => parseSwiftUrl('swift://c?password=%zz'), /bad percent-encoding/);
  });

  test('typed objects: layers merge (later wins), unknown properties are rejected', () => {
    const o = resolveSwiftOptions([readSwiftConfigIni(`[swift]\n${MINIMAL}container = a\n`), readSwiftUrl('swift://b/p?concurrency=4'), { httpTimeout: 3 }]);
    assert.equal(o.container, 'b');
    assert.equal(o.prefix, 'p/');
    assert.equal(o.concurrency, 4);
    assert.equal(o.httpTimeout, 3);
    const typo = { authUrl: 'http://h/auth/v1.0', authVer: 1, username: 'u', password: 'p', concurency: 3 } as Record<string, unknown>;
    rejectsKey(() => resolveSwiftOptions([typo]), /unknown key "concurency"/);
  });
});

describe('swift settings: properties', () => {
  const word = fc.stringMatching(/^[A-Za-z0-9_.@-]{1,12}$/);
  const settings = fc.record({
    authUrl: fc.tuple(fc.constantFrom('http', 'https'), word, fc.integer({ min: 1, max: 65535 }), fc.constantFrom('/auth/v1.0', '/v2.0', '/v3', '')).map(
      ([scheme, host, port, path]) => `${scheme}://${host.replace(/[^A-Za-z0-9-]/g, 'h')}:${port}${path}`,
    ),
    authVer: fc.constantFrom(1 as const, 2 as const, 3 as const),
    username: fc.tuple(word, word).map(([t, u]) => `${t};${u}`),
    password: fc.string({ maxLength: 24 }).filter((s) => s.trim() === s && !/[\r\n]/.test(s)),
    regionName: word,
    endpointType: fc.constantFrom('internalURL', 'publicURL', 'adminURL', 'internal'),
    concurrency: fc.integer({ min: 1, max: 1024 }),
    httpPoolLength: fc.integer({ min: 1, max: 1024 }),
    httpTimeout: fc.integer({ min: 1, max: 600 }),
    chunkLength: fc.integer({ min: 1, max: 1 << 20 }),
    cacheLength: fc.integer({ min: 0, max: 4096 }),
    container: fc.stringMatching(/^[A-Za-z0-9_+-]{1,20}$/),
    prefix: fc.array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { maxLength: 3 }).map((parts) => (parts.length === 0 ? '' : `${parts.join('/')}/`)),
    pageSize: fc.integer({ min: 1, max: 10_000 }),
  });

  test('settings -> INI text -> settings, and -> swift:// URL -> settings', () => {
    fc.assert(
      fc.property(settings, (s) => {
        const expected = resolveSwiftOptions([s]);
        const entries = Object.entries(s) as Array<[keyof SwiftStoreOptions, string | number]>;
        const ini = `[swift]\n${entries.map(([k, v]) => `${swiftKeyName(k)} = ${String(v)}`).join('\n')}\n`;
        assert.deepEqual(parseSwiftConfigIni(ini), expected);
        const query = entries
          .filter(([k]) => k !== 'container' && k !== 'prefix')
          .map(([k, v]) => `${swiftKeyName(k)}=${encodeURIComponent(String(v))}`)
          .join('&');
        assert.deepEqual(parseSwiftUrl(`swift://${encodeURIComponent(s.container)}/${s.prefix}?${query}`), expected);
      }),
      { numRuns: 300 },
    );
  });

  test('any text throws only ValidationError', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(fc.constantFrom('[swift]', '[DEFAULT]', 'auth_url = http://h/a', 'auth_ver = 2', 'username = a;b', 'password = p', '  x', '# c', '= v', 'k:', ''), { maxLength: 12 }).map((l) => l.join('\n')),
    );
    fc.assert(
      fc.property(text, (t) => {
        for (const fn of [() => parseSwiftConfigIni(t), () => parseSwiftUrl(t), () => parseSwiftUrl(`swift://${t}`)]) {
          try {
            fn();
          } catch (err) {
            assert.ok(err instanceof ValidationError, `not a ValidationError: ${String(err)}`);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
