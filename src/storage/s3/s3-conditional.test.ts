/**
 * Create-only puts on an endpoint that honours If-None-Match, in the corners a real service
 * will not show on demand: 409 ConditionalRequestConflict (retried), a 412 answering the
 * SDK's retry of a PUT whose first answer was lost (the stored bytes decide), and 501. The
 * endpoint is a scripted node:http server answering from a queue of canned responses.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { StoreError } from '../../core/errors.js';
import { S3Store } from './s3-store.js';

const enc = new TextEncoder();

/** One canned answer; `store` puts the request body in place first (the write happened). */
interface Answer {
  readonly status: number;
  readonly code?: string;
  readonly store?: boolean;
}

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly ifNoneMatch: string | undefined;
}

function errorXml(code: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>scripted</Message></Error>`;
}

describe('S3 store create-only corners (scripted endpoint)', () => {
  let server: http.Server;
  let endpoint = '';
  let script: Answer[] = [];
  let seen: Seen[] = [];
  let stored: Buffer | undefined;

  before(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const inm = req.headers['if-none-match'];
        seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0] ?? '', ifNoneMatch: typeof inm === 'string' ? inm : undefined });
        if (req.method === 'GET') {
          if (stored === undefined) {
            res.writeHead(404, { 'content-type': 'application/xml' }).end(errorXml('NoSuchKey'));
          } else {
            res.writeHead(200, { 'content-length': stored.byteLength, 'last-modified': new Date().toUTCString() }).end(stored);
          }
          return;
        }
        const answer = script.shift() ?? { status: 200 };
        if (answer.store === true || answer.status === 200) stored = Buffer.concat(parts);
        if (answer.status === 200) res.writeHead(200, { etag: '"0123"' }).end();
        else res.writeHead(answer.status, { 'content-type': 'application/xml' }).end(errorXml(answer.code ?? 'Scripted'));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const run = async (answers: Answer[], preStored: string | undefined, fn: (store: S3Store) => Promise<void>): Promise<Seen[]> => {
    script = [...answers];
    seen = [];
    stored = preStored === undefined ? undefined : Buffer.from(preStored);
    const store = new S3Store({
      endpoint,
      bucket: 'b',
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
      createOnly: 'honoured',
      maxAttempts: 3,
    });
    try {
      await fn(store);
    } finally {
      await store.close();
    }
    return seen;
  };

  test('409 ConditionalRequestConflict is retried; every try carries If-None-Match: *', async () => {
    const reqs = await run([{ status: 409, code: 'ConditionalRequestConflict' }, { status: 200 }], undefined, async (store) => {
      const res = await store.put('k', enc.encode('mine'), { ifAbsent: true });
      assert.ok(res.created);
    });
    assert.deepEqual(
      reqs.map((r) => [r.method, r.path, r.ifNoneMatch]),
      [
        ['PUT', '/b/k', '*'],
        ['PUT', '/b/k', '*'],
      ],
    );
  });

  test('a 412 on the SDK retry of a PUT that did land: the stored bytes are ours, so created', async () => {
    const reqs = await run([{ status: 500, code: 'InternalError', store: true }, { status: 412, code: 'PreconditionFailed' }], undefined, async (store) => {
      const res = await store.put('k', enc.encode('mine'), { ifAbsent: true });
      assert.ok(res.created, 'the first attempt wrote the object');
    });
    assert.deepEqual(
      reqs.map((r) => r.method),
      ['PUT', 'PUT', 'GET'],
    );
  });

  test('a 412 on a retry when someone else wrote the key: not created', async () => {
    await run([{ status: 500, code: 'InternalError' }, { status: 412, code: 'PreconditionFailed' }], 'theirs', async (store) => {
      assert.deepEqual(await store.put('k', enc.encode('mine'), { ifAbsent: true }), { created: false });
    });
  });

  test('a 412 on the first attempt is a lost race without a read', async () => {
    const reqs = await run([{ status: 412, code: 'PreconditionFailed' }], 'theirs', async (store) => {
      assert.deepEqual(await store.put('k', enc.encode('mine'), { ifAbsent: true }), { created: false });
    });
    assert.deepEqual(
      reqs.map((r) => r.method),
      ['PUT'],
    );
  });

  test('501 to a conditional PUT: STORE_CONDITION_UNSUPPORTED, and the store stops asking', async () => {
    const reqs = await run([{ status: 501, code: 'NotImplemented' }], undefined, async (store) => {
      const unsupported = (err: unknown): boolean => err instanceof StoreError && err.code === 'STORE_CONDITION_UNSUPPORTED';
      await assert.rejects(() => store.put('k', enc.encode('mine'), { ifAbsent: true }), unsupported);
      assert.equal(store.createOnly, false);
      await assert.rejects(() => store.put('k2', enc.encode('mine'), { ifAbsent: true }), unsupported);
    });
    assert.equal(reqs.length, 1);
  });

  test('plain puts never send If-None-Match', async () => {
    const reqs = await run([], undefined, async (store) => {
      await store.put('k', enc.encode('plain'));
    });
    assert.deepEqual(
      reqs.map((r) => [r.method, r.ifNoneMatch]),
      [['PUT', undefined]],
    );
  });
});
