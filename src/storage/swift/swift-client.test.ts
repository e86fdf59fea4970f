/**
 * The Swift store against a local fake (fake-swift.test-util.ts), for what a healthy AIO never
 * does: Keystone v2/v3 catalogs, 5xx answers, expired tokens, slow answers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { StoreError, StowageError } from '../../core/errors.js';
import { startFakeSwift, type FakeSwift, type SeenRequest } from './fake-swift.test-util.js';
import type { SwiftSettings } from './swift-options.js';
import { SwiftStore } from './swift-store.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function settings(fake: FakeSwift, extra: SwiftSettings = {}): SwiftSettings {
  return {
    authUrl: fake.authUrl,
    authVer: 1,
    username: 'test:tester',
    password: 'sekrit-password',
    container: 'c',
    retryBaseMs: 1,
    retryCapMs: 5,
    retryAttempts: 3,
    ...extra,
  };
}

const objectRequests = (fake: FakeSwift, method: string, suffix: string): SeenRequest[] =>
  fake.requests.filter((r) => r.method === method && r.path.split('?')[0]?.endsWith(suffix) === true);

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

/** Never answers: waits until the client gives up (or 10 s). */
function hang(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      res.destroy();
      resolve();
    }, 10_000);
    res.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function assertNoSecrets(err: unknown, fake: FakeSwift): void {
  assert.ok(err instanceof StoreError, `expected StoreError, got ${String(err)}`);
  assert.equal(err.code, 'STORE_IO');
  assert.ok(!err.message.includes('sekrit-password'), err.message);
  for (const token of fake.tokens) assert.ok(!err.message.includes(token), err.message);
}

describe('swift store: Keystone catalogs (fake)', () => {
  let fake: FakeSwift;
  const v2Endpoint = (base: string, region: string) => ({
    region,
    publicURL: `${base}/v1/AUTH_${region}_public`,
    internalURL: `${base}/v1/AUTH_${region}_internal`,
    adminURL: `${base}/v1/AUTH_${region}_admin`,
  });
  const v3Endpoints = (base: string, region: string) =>
    ['public', 'internal', 'admin'].map((iface) => ({ interface: iface, region_id: region, region, url: `${base}/v1/AUTH_${region}_${iface}` }));

  before(async () => {
    fake = await startFakeSwift({
      v2Catalog: (base) => [
        { type: 'identity', endpoints: [] },
        { type: 'object-store', endpoints: [v2Endpoint(base, 'RegionOne'), v2Endpoint(base, 'RegionTwo')] },
      ],
      v3Catalog: (base) => [{ type: 'object-store', endpoints: [...v3Endpoints(base, 'RegionOne'), ...v3Endpoints(base, 'RegionTwo')] }],
    });
  });
  after(() => fake.close());

  test('v2: tenant;user and password go in passwordCredentials; the endpoint follows region and type', async () => {
    for (const [region, type, account] of [
      ['RegionOne', undefined, 'AUTH_RegionOne_internal'],
      ['RegionTwo', 'publicURL', 'AUTH_RegionTwo_public'],
      ['RegionTwo', 'adminURL', 'AUTH_RegionTwo_admin'],
    ] as const) {
      const store = new SwiftStore(
        settings(fake, { authUrl: `${fake.url}/v2.0`, authVer: 2, username: 'proj;alice', regionName: region, endpointType: type }),
      );
      try {
        await store.put('k', enc.encode(account));
        const auth = fake.requests.filter((r) => r.path === '/v2.0/tokens').at(-1);
        assert.deepEqual(JSON.parse(auth?.body.toString() ?? '{}'), {
          auth: { passwordCredentials: { username: 'alice', password: 'sekrit-password' }, tenantName: 'proj' },
        });
        assert.equal(dec.decode(fake.objects.get(`/v1/${account}/c/k`)), account);
      } finally {
        await store.close();
      }
    }
  });

  test('v3: password method, project scope, default domains; token from X-Subject-Token', async () => {
    const store = new SwiftStore(
      settings(fake, { authUrl: `${fake.url}/v3`, authVer: 3, username: 'proj;bob', regionName: 'RegionTwo', endpointType: 'internal' }),
    );
    try {
      await store.put('k3', enc.encode('v3'));
      const auth = fake.requests.filter((r) => r.path === '/v3/auth/tokens').at(-1);
      assert.deepEqual(JSON.parse(auth?.body.toString() ?? '{}'), {
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'bob', domain: { name: 'Default' }, password: 'sekrit-password' } } },
          scope: { project: { name: 'proj', domain: { name: 'Default' } } },
        },
      });
      assert.equal(dec.decode(fake.objects.get('/v1/AUTH_RegionTwo_internal/c/k3')), 'v3');
      const put = objectRequests(fake, 'PUT', '/c/k3').at(-1);
      assert.ok(fake.tokens.has(String(put?.headers['x-auth-token'])));
    } finally {
      await store.close();
    }
  });

  test('an unknown region fails with the regions the catalog has, and no secrets', async () => {
    const store = new SwiftStore(settings(fake, { authUrl: `${fake.url}/v3`, authVer: 3, username: 'p;u', regionName: 'Mars' }));
    try {
      await assert.rejects(
        () => store.head('k'),
        (err: unknown) => {
          assertNoSecrets(err, fake);
          assert.match((err as Error).message, /no endpoint in region Mars \(regions: RegionOne, RegionTwo\)/);
          return true;
        },
      );
    } finally {
      await store.close();
    }
  });

  test('storage_url overrides the catalog', async () => {
    const store = new SwiftStore(
      settings(fake, { authUrl: `${fake.url}/v2.0`, authVer: 2, username: 'p;u', storageUrl: `${fake.url}/v1/AUTH_override` }),
    );
    try {
      await store.put('o', enc.encode('x'));
      assert.ok(fake.objects.has('/v1/AUTH_override/c/o'));
    } finally {
      await store.close();
    }
  });
});

describe('swift store: retries, refresh, timeouts (fake)', () => {
  let fake: FakeSwift;
  before(async () => {
    fake = await startFakeSwift();
  });
  after(() => fake.close());

  test('503 then 200: the get is retried and succeeds', async () => {
    const store = new SwiftStore(settings(fake));
    try {
      await store.put('r/k', enc.encode('value'));
      fake.faults.push({ match: (r) => r.method === 'GET' && r.path.endsWith('/r/k'), answer: (_r, res) => void res.writeHead(503).end(), once: true });
      fake.faults.push({ match: (r) => r.method === 'GET' && r.path.endsWith('/r/k'), answer: (_r, res) => void res.writeHead(503).end(), once: true });
      const before = objectRequests(fake, 'GET', '/r/k').length;
      assert.equal(dec.decode(await store.get('r/k')), 'value');
      assert.equal(objectRequests(fake, 'GET', '/r/k').length - before, 3);
    } finally {
      await store.close();
    }
  });

  test('503 every time: STORE_IO naming the operation, key and status, after the configured attempts', async () => {
    const store = new SwiftStore(settings(fake));
    const fault = { match: (r: SeenRequest) => r.path.endsWith('/r/down'), answer: (_r: SeenRequest, res: ServerResponse) => void res.writeHead(503).end('busy') };
    fake.faults.push(fault);
    try {
      const before = fake.requests.length;
      await assert.rejects(
        () => store.put('r/down', enc.encode('x')),
        (err: unknown) => {
          assertNoSecrets(err, fake);
          assert.match((err as Error).message, /put key r\/down failed: HTTP 503: busy \(after 3 attempts\)/);
          return true;
        },
      );
      assert.equal(fake.requests.slice(before).filter((r) => r.path.endsWith('/r/down')).length, 3);
    } finally {
      fake.faults.splice(fake.faults.indexOf(fault), 1);
      await store.close();
    }
  });

  test('a 4xx is not retried', async () => {
    const store = new SwiftStore(settings(fake));
    fake.faults.push({ match: (r) => r.path.endsWith('/r/forbidden'), answer: (_r, res) => void res.writeHead(403).end(), once: true });
    try {
      const before = fake.requests.length;
      await assert.rejects(() => store.head('r/forbidden'), /head key r\/forbidden failed: HTTP 403/);
      assert.equal(fake.requests.slice(before).filter((r) => r.path.endsWith('/r/forbidden')).length, 1);
    } finally {
      await store.close();
    }
  });

  test('an expired token: 401, one re-authentication, the request succeeds', async () => {
    const store = new SwiftStore(settings(fake));
    try {
      await store.put('t/k', enc.encode('before'));
      const auths = fake.authCount();
      fake.tokens.clear(); // every token the fake gave out is now refused
      assert.equal(dec.decode(await store.get('t/k')), 'before');
      await store.put('t/k', enc.encode('after'));
      assert.equal(dec.decode(await store.get('t/k')), 'after');
      assert.equal(fake.authCount(), auths + 1);
      // Concurrent callers meeting the 401 share one re-authentication.
      fake.tokens.clear();
      await Promise.all(Array.from({ length: 8 }, () => store.head('t/k')));
      assert.equal(fake.authCount(), auths + 2);
    } finally {
      await store.close();
    }
  });

  test('a token refused even after re-authenticating ends in STORE_IO without secrets', async () => {
    const store = new SwiftStore(settings(fake));
    const fault = { match: (r: SeenRequest) => r.path.endsWith('/t/never'), answer: (_r: SeenRequest, res: ServerResponse) => void res.writeHead(401).end() };
    fake.faults.push(fault);
    try {
      await assert.rejects(
        () => store.get('t/never'),
        (err: unknown) => {
          assertNoSecrets(err, fake);
          assert.match((err as Error).message, /HTTP 401 after re-authenticating/);
          return true;
        },
      );
    } finally {
      fake.faults.splice(fake.faults.indexOf(fault), 1);
      await store.close();
    }
  });

  test('a slow answer times out after http_timeout and is retried', async () => {
    const store = new SwiftStore(settings(fake, { httpTimeout: 0.2, retryAttempts: 2 }));
    try {
      await store.put('s/k', enc.encode('slow'));
      fake.faults.push({
        match: (r) => r.method === 'GET' && r.path.endsWith('/s/k'),
        answer: (_r, res) => hang(res),
        once: true,
      });
      const t0 = Date.now();
      assert.equal(dec.decode(await store.get('s/k')), 'slow');
      assert.ok(Date.now() - t0 >= 180, 'waited for the timeout');
      // Always slow: a STORE_IO that says it timed out.
      const slow = {
        match: (r: SeenRequest) => r.method === 'GET' && r.path.endsWith('/s/k'),
        answer: (_r: SeenRequest, res: ServerResponse) => hang(res),
      };
      fake.faults.push(slow);
      try {
        await assert.rejects(() => store.get('s/k'), /get key s\/k failed: timed out after 0.2 s \(after 2 attempts\)/);
      } finally {
        fake.faults.splice(fake.faults.indexOf(slow), 1);
      }
    } finally {
      await store.close();
    }
  });

  test('a streamed body already sent is not replayed; its segments are cleaned up', async () => {
    const store = new SwiftStore(settings(fake, { putBufferSize: 0, maxFileSize: 1000, segmentSize: 1000 }));
    try {
      fake.faults.push({
        match: (r) => r.method === 'PUT' && r.path.includes('/c%2Bsegments/big/') && r.path.endsWith('/00000001'),
        answer: (_r, res) => void res.writeHead(503).end(),
        once: true,
      });
      const data = new Uint8Array(3500).fill(7);
      const before = fake.requests.length;
      await assert.rejects(() => store.put('big', pieces(data, 100)), /cannot be sent again/);
      const seen = fake.requests.slice(before);
      const segPuts = seen.filter((r) => r.method === 'PUT' && r.path.includes('/c%2Bsegments/big/'));
      assert.deepEqual(segPuts.map((r) => r.path.slice(-8)), ['00000000', '00000001']);
      const deletes = seen.filter((r) => r.method === 'DELETE').map((r) => r.path.slice(-8));
      assert.deepEqual(deletes.sort(), ['00000000', '00000001']);
      assert.equal([...fake.objects.keys()].filter((k) => k.includes('segments')).length, 0);
      assert.equal(await store.head('big'), undefined);
    } finally {
      await store.close();
    }
  });

  test('a buffered body is replayed after a 503', async () => {
    const store = new SwiftStore(settings(fake));
    try {
      fake.faults.push({ match: (r) => r.method === 'PUT' && r.path.endsWith('/b/k'), answer: (_r, res) => void res.writeHead(503).end(), once: true });
      await store.put('b/k', pieces(enc.encode('streamed but small'), 4));
      assert.equal(dec.decode(fake.objects.get('/v1/AUTH_test/c/b/k')), 'streamed but small');
      const put = objectRequests(fake, 'PUT', '/b/k').at(-1);
      assert.equal(put?.headers['etag'], createHash('md5').update('streamed but small').digest('hex'));
    } finally {
      await store.close();
    }
  });

  test('at most `concurrency` requests in flight', async () => {
    const store = new SwiftStore(settings(fake, { concurrency: 2 }));
    try {
      await store.put('cc/k', enc.encode('x'));
      fake.resetMaxInFlight();
      await Promise.all(Array.from({ length: 12 }, () => store.get('cc/k')));
      assert.equal(fake.maxInFlight(), 2);
    } finally {
      await store.close();
    }
  });

  test('an abort during the back-off rejects at once with the abort reason', async () => {
    const store = new SwiftStore(settings(fake, { retryBaseMs: 10_000, retryCapMs: 10_000 }));
    const fault = { match: (r: SeenRequest) => r.path.endsWith('/ab/k'), answer: (_r: SeenRequest, res: ServerResponse) => void res.writeHead(503).end() };
    fake.faults.push(fault);
    try {
      const ac = new AbortController();
      const t0 = Date.now();
      setTimeout(() => ac.abort(new Error('caller gave up')), 100);
      await assert.rejects(() => store.get('ab/k', { signal: ac.signal }), /caller gave up/);
      assert.ok(Date.now() - t0 < 5000);
    } finally {
      fake.faults.splice(fake.faults.indexOf(fault), 1);
      await store.close();
    }
  });

  test('a closed store refuses work; description holds no secrets', async () => {
    const store = new SwiftStore(settings(fake, { prefix: 'pre/fix' }));
    assert.equal(store.description, 'swift:c/pre/fix/');
    await store.close();
    await assert.rejects(() => store.head('k'), (err: unknown) => err instanceof StowageError && err.code === 'STORE_IO');
  });
});
