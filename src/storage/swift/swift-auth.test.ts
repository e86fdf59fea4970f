/**
 * Swift auth without a network: request shapes of v1/v2/v3, catalog selection, Keystone URL
 * forms, failures that never show the password; and the retry policy and semaphore.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StoreError } from '../../core/errors.js';
import {
  authenticate,
  catalogFromV2,
  catalogFromV3,
  keystoneTokensUrl,
  selectEndpoint,
  type AuthExchange,
  type AuthReply,
} from './swift-auth.js';
import { resolveSwiftOptions, type SwiftSettings } from './swift-options.js';
import { backoffMs, isRetriableNetworkError, isRetriableStatus, retryAfterMs, Semaphore } from './swift-retry.js';

function reply(status: number, headers: Record<string, string>, body: unknown = ''): AuthReply {
  return {
    status,
    header: (name) => headers[name.toLowerCase()],
    text: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

function opts(extra: SwiftSettings) {
  return resolveSwiftOptions([{ authUrl: 'http://keystone:5000/v2.0', authVer: 2, username: 'proj;alice', password: 'pw-secret', ...extra }]);
}

const V2_CATALOG = {
  access: {
    token: { id: 'tok-v2', expires: '2030-01-01T00:00:00Z' },
    serviceCatalog: [
      { type: 'compute', endpoints: [{ region: 'RegionOne', publicURL: 'http://nova' }] },
      {
        type: 'object-store',
        endpoints: [
          { region: 'RegionOne', publicURL: 'http://pub1/v1/AUTH_p', internalURL: 'http://int1/v1/AUTH_p/' },
          { region: 'RegionTwo', publicURL: 'http://pub2/v1/AUTH_p' },
        ],
      },
    ],
  },
};

describe('swift auth', () => {
  test('v1: tenant;user becomes account:user; token and storage URL from the headers', async () => {
    const seen: AuthExchange[] = [];
    const res = await authenticate(opts({ authUrl: 'http://proxy/auth/v1.0', authVer: 1 }), async (ex) => {
      seen.push(ex);
      return reply(200, { 'x-storage-token': 'tok-v1', 'x-storage-url': 'http://proxy/v1/AUTH_proj/', 'x-auth-token-expires': '60' });
    });
    assert.equal(seen[0]?.method, 'GET');
    assert.equal(seen[0]?.url, 'http://proxy/auth/v1.0');
    assert.deepEqual(seen[0]?.headers, { 'x-auth-user': 'proj:alice', 'x-auth-key': 'pw-secret' });
    assert.equal(res.token, 'tok-v1');
    assert.equal(res.storageUrl, 'http://proxy/v1/AUTH_proj');
    assert.ok(res.expiresAtMs !== undefined && Math.abs(res.expiresAtMs - Date.now() - 60_000) < 5000);
  });

  test('v2: POST …/v2.0/tokens; the catalog picks region and endpoint type', async () => {
    let body: unknown;
    const res = await authenticate(opts({}), async (ex) => {
      assert.equal(ex.url, 'http://keystone:5000/v2.0/tokens');
      body = JSON.parse(Buffer.from(ex.body ?? new Uint8Array()).toString());
      return reply(200, {}, V2_CATALOG);
    });
    assert.deepEqual(body, { auth: { passwordCredentials: { username: 'alice', password: 'pw-secret' }, tenantName: 'proj' } });
    assert.equal(res.token, 'tok-v2');
    assert.equal(res.storageUrl, 'http://int1/v1/AUTH_p');
    assert.equal(res.expiresAtMs, Date.parse('2030-01-01T00:00:00Z'));
    const pub2 = await authenticate(opts({ regionName: 'RegionTwo', endpointType: 'publicURL' }), async () => reply(200, {}, V2_CATALOG));
    assert.equal(pub2.storageUrl, 'http://pub2/v1/AUTH_p');
  });

  test('v3: domains are configurable; the token is X-Subject-Token; region_id stands in for region', async () => {
    let body: unknown;
    const res = await authenticate(
      opts({ authUrl: 'http://keystone:5000/v3/', authVer: 3, userDomainName: 'users', projectDomainName: 'projects', endpointType: 'admin' }),
      async (ex) => {
        assert.equal(ex.url, 'http://keystone:5000/v3/auth/tokens');
        body = JSON.parse(Buffer.from(ex.body ?? new Uint8Array()).toString());
        return reply(
          201,
          { 'x-subject-token': 'tok-v3' },
          { token: { catalog: [{ type: 'object-store', endpoints: [{ interface: 'admin', region_id: 'RegionOne', url: 'http://adm/v1/AUTH_p' }] }] } },
        );
      },
    );
    assert.deepEqual(body, {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'alice', domain: { name: 'users' }, password: 'pw-secret' } } },
        scope: { project: { name: 'proj', domain: { name: 'projects' } } },
      },
    });
    assert.equal(res.token, 'tok-v3');
    assert.equal(res.storageUrl, 'http://adm/v1/AUTH_p');
    assert.equal(res.expiresAtMs, undefined);
  });

  test('failures: refused credentials, replies without a token, non-JSON, no password in any message', async () => {
    const cases: Array<[SwiftSettings, AuthReply, RegExp]> = [
      [{}, reply(401, {}, 'nope'), /HTTP 401: user "alice" was refused; check username and password/],
      [{ authVer: 1, authUrl: 'http://p/auth/v1.0' }, reply(200, { 'x-storage-url': 'http://p/v1/A' }), /lacks X-Auth-Token/],
      [{ authVer: 3 }, reply(201, {}, {}), /lacks X-Subject-Token/],
      [{}, reply(200, {}, '<html>'), /the reply is not JSON/],
      [{}, reply(200, {}, { access: {} }), /not a Keystone v2 token/],
      [{}, reply(500, {}), /HTTP 500 \(expected 200\/201\)/],
      [{ regionName: 'Nowhere' }, reply(200, {}, V2_CATALOG), /no endpoint in region Nowhere \(regions: RegionOne, RegionTwo\)/],
      [{ regionName: 'RegionTwo' }, reply(200, {}, V2_CATALOG), /in region RegionTwo has no internal endpoint \(has: public\)/],
    ];
    for (const [extra, answer, pattern] of cases) {
      await assert.rejects(
        () => authenticate(opts(extra), async () => answer),
        (err: unknown) => {
          assert.ok(err instanceof StoreError && err.code === 'STORE_IO', String(err));
          assert.match(err.message, pattern);
          assert.ok(!err.message.includes('pw-secret'));
          return true;
        },
      );
    }
  });

  test('catalog shapes and selection', () => {
    const v2 = catalogFromV2(V2_CATALOG);
    assert.equal(v2.length, 2);
    assert.deepEqual(v2[1]?.endpoints.map((e) => `${e.region}/${e.interface}`), ['RegionOne/public', 'RegionOne/internal', 'RegionTwo/public']);
    const v3 = catalogFromV3({ token: { catalog: [{ type: 'object-store', endpoints: [{ interface: 'public', region: null, region_id: 'R', url: 'u' }] }] } });
    assert.deepEqual(v3, [{ type: 'object-store', endpoints: [{ region: 'R', interface: 'public', url: 'u' }] }]);
    assert.throws(() => selectEndpoint(catalogFromV2({ access: { token: { id: 't' } } }), 'RegionOne', 'internalURL'), /no object-store service \(services: none\)/);
    assert.equal(selectEndpoint(v2, 'RegionOne', 'PublicURL'), 'http://pub1/v1/AUTH_p');
  });

  test('Keystone token URLs from the forms auth_url takes', () => {
    assert.equal(keystoneTokensUrl('http://k:5000/v2.0', 2), 'http://k:5000/v2.0/tokens');
    assert.equal(keystoneTokensUrl('http://k:5000/v2.0/', 2), 'http://k:5000/v2.0/tokens');
    assert.equal(keystoneTokensUrl('http://k:5000', 2), 'http://k:5000/v2.0/tokens');
    assert.equal(keystoneTokensUrl('http://k:5000/v3', 3), 'http://k:5000/v3/auth/tokens');
    assert.equal(keystoneTokensUrl('http://k:5000/v2.0', 3), 'http://k:5000/v3/auth/tokens');
    assert.equal(keystoneTokensUrl('http://k/identity', 3), 'http://k/identity/v3/auth/tokens');
    assert.equal(keystoneTokensUrl('http://k/v3/auth/tokens', 3), 'http://k/v3/auth/tokens');
  });
});

describe('swift retry policy and semaphore', () => {
  test('which statuses and errors are retried', () => {
    for (const s of [408, 429, 500, 502, 503, 504, 507]) assert.ok(isRetriableStatus(s), String(s));
    for (const s of [200, 400, 401, 403, 404, 409, 412, 416, 422, 501, 505]) assert.ok(!isRetriableStatus(s), String(s));
    assert.ok(isRetriableNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
    assert.ok(isRetriableNetworkError(new Error('wrapped', { cause: Object.assign(new Error('y'), { code: 'UND_ERR_SOCKET' }) })));
    assert.ok(!isRetriableNetworkError(new Error('source broke')));
    assert.ok(!isRetriableNetworkError(Object.assign(new Error('x'), { code: 'UND_ERR_ABORTED' })));
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT'), undefined);
  });

  test('full jitter stays within [0, min(cap, base * 2^(n-1))]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (n, r) => {
        const policy = { attempts: 5, baseMs: 100, capMs: 5000 };
        const ms = backoffMs(policy, n, () => r);
        assert.ok(ms >= 0 && ms <= Math.min(5000, 100 * 2 ** (n - 1)), `${n} ${r} -> ${ms}`);
      }),
    );
    assert.equal(backoffMs({ attempts: 5, baseMs: 100, capMs: 5000 }, 3, () => 0.5), 200);
  });

  test('the semaphore bounds holders, serves waiters in order, and drops aborted waiters', async () => {
    const sem = new Semaphore(2);
    const a = await sem.acquire();
    const b = await sem.acquire();
    assert.equal(sem.held, 2);
    const order: string[] = [];
    const ac = new AbortController();
    const c = sem.acquire().then((r) => (order.push('c'), r));
    const d = sem.acquire(ac.signal).then(
      () => order.push('d'),
      () => order.push('d aborted'),
    );
    const e = sem.acquire().then((r) => (order.push('e'), r));
    ac.abort();
    await d;
    a();
    a(); // twice is harmless
    const rc = await c;
    b();
    const re = await e;
    assert.deepEqual(order, ['d aborted', 'c', 'e']);
    assert.equal(sem.held, 2);
    rc();
    re();
    assert.equal(sem.held, 0);
  });
});
