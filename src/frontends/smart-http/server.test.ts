import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { deflateSync, gzipSync } from 'node:zlib';
import { AuthError, NotFoundError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { FLUSH_PKT, encodePktLine } from '../../git/pktline/encode.js';
import type { ByteSink, GitRequest, GitService } from '../../service/git-service.js';
import { SmartHttpServer, type SmartHttpOptions } from './server.js';

type Behaviour = (req: GitRequest, input: AsyncIterable<Uint8Array>, out: ByteSink) => Promise<void>;

class FakeService implements GitService {
  readonly requests: GitRequest[] = [];
  constructor(public behaviour: Behaviour) {}
  async serve(req: GitRequest, input: AsyncIterable<Uint8Array>, out: ByteSink): Promise<void> {
    this.requests.push(req);
    await this.behaviour(req, input, out);
  }
}

/** Advertises one line; for POSTs, answers with the size and first bytes of the body. */
const basic: Behaviour = async (req, input, out) => {
  if (req.repoName.startsWith('missing')) throw new NotFoundError('REPO_NOT_FOUND', `repository ${req.repoName} not found`);
  if (req.repoName === 'boom') throw new Error('secret internal detail');
  if (req.advertiseRefs) {
    await out.write(encodePktLine(`adv ${req.service} v${req.protocolVersion}\n`));
    await out.write(FLUSH_PKT);
    return;
  }
  const chunks: Uint8Array[] = [];
  for await (const c of input) chunks.push(c);
  const body = Buffer.concat(chunks);
  await out.write(encodePktLine(`got ${body.length} ${body.subarray(0, 8).toString('latin1')}\n`));
};

const logger = createLogger({ level: 'silent' });

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

async function withServer(service: GitService, opts: Partial<SmartHttpOptions>, fn: (port: number) => Promise<void>): Promise<void> {
  const s = new SmartHttpServer({ service, logger, listen: { host: '127.0.0.1', port: 0 }, receiveBodyMax: 1 << 20, idleTimeoutMs: 5000, ...opts });
  const { port } = await s.start();
  try {
    await fn(port);
  } finally {
    await s.close();
  }
}

const UPLOAD_REQ = { 'Content-Type': 'application/x-git-upload-pack-request' };
const RECEIVE_REQ = { 'Content-Type': 'application/x-git-receive-pack-request' };

function assertNoCache(h: IncomingHttpHeaders): void {
  assert.equal(h['cache-control'], 'no-cache, max-age=0, must-revalidate');
  assert.equal(h['pragma'], 'no-cache');
  assert.equal(h['expires'], 'Fri, 01 Jan 1980 00:00:00 GMT');
}

describe('smart HTTP', () => {
  test('GET /healthz', async () => {
    await withServer(new FakeService(basic), {}, async (port) => {
      const r = await call(port, 'GET', '/healthz');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'ok');
    });
  });

  test('info/refs for v0: "# service" line and flush, then the advertisement', async () => {
    const svc = new FakeService(basic);
    await withServer(svc, {}, async (port) => {
      const r = await call(port, 'GET', '/team/app.git/info/refs?service=git-upload-pack');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/x-git-upload-pack-advertisement');
      assertNoCache(r.headers);
      assert.equal(r.body.toString('latin1'), '001e# service=git-upload-pack\n0000001badv git-upload-pack v0\n0000');
    });
    const req = svc.requests[0] as GitRequest;
    assert.equal(req.repoName, 'team/app.git');
    assert.equal(req.advertiseRefs, true);
    assert.equal(req.statelessRpc, true);
    assert.equal(req.protocolVersion, 0);
  });

  test('info/refs for v2 has no "# service" line; receive-pack stays at v0', async () => {
    await withServer(new FakeService(basic), {}, async (port) => {
      const v2 = await call(port, 'GET', '/x/info/refs?service=git-upload-pack', { 'Git-Protocol': 'version=2' });
      assert.equal(v2.body.toString('latin1'), '001badv git-upload-pack v2\n0000');
      const push = await call(port, 'GET', '/x/info/refs?service=git-receive-pack', { 'Git-Protocol': 'version=2' });
      assert.equal(push.headers['content-type'], 'application/x-git-receive-pack-advertisement');
      assert.ok(push.body.toString('latin1').startsWith('001f# service=git-receive-pack\n0000'));
      assert.ok(push.body.toString('latin1').includes('adv git-receive-pack v0'));
    });
  });

  test('dumb clients and unknown services get 403 with a message', async () => {
    await withServer(new FakeService(basic), {}, async (port) => {
      const dumb = await call(port, 'GET', '/x/info/refs');
      assert.equal(dumb.status, 403);
      assert.match(dumb.body.toString(), /dumb HTTP is not supported/);
      assert.match(String(dumb.headers['content-type']), /^text\/plain/);
      assert.equal((await call(port, 'GET', '/x/info/refs?service=git-frob')).status, 403);
    });
  });

  test('POST with the wrong content type is 415 and never reaches the service', async () => {
    const svc = new FakeService(basic);
    await withServer(svc, {}, async (port) => {
      const r = await call(port, 'POST', '/x/git-upload-pack', { 'Content-Type': 'text/plain' }, Buffer.from('0000'));
      assert.equal(r.status, 415);
      assert.match(r.body.toString(), /application\/x-git-upload-pack-request/);
    });
    assert.equal(svc.requests.length, 0);
  });

  test('POST upload-pack: stateless rpc, Git-Protocol v2, result content type', async () => {
    const svc = new FakeService(basic);
    await withServer(svc, {}, async (port) => {
      const r = await call(port, 'POST', '/a/b/c.git/git-upload-pack', { ...UPLOAD_REQ, 'Git-Protocol': 'version=2' }, Buffer.from('0014command=ls-refs\n0000'));
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/x-git-upload-pack-result');
      assertNoCache(r.headers);
      assert.equal(r.body.subarray(4).toString('latin1'), 'got 24 0014comm\n');
    });
    const req = svc.requests[0] as GitRequest;
    assert.deepEqual([req.repoName, req.service, req.protocolVersion, req.statelessRpc, req.advertiseRefs], ['a/b/c.git', 'git-upload-pack', 2, true, false]);
  });

  test('gzip and deflate request bodies are inflated', async () => {
    const payload = Buffer.concat([Buffer.from('0032want '), Buffer.alloc(100_000, 0x61)]);
    await withServer(new FakeService(basic), {}, async (port) => {
      for (const [encoding, body] of [['gzip', gzipSync(payload)], ['x-gzip', gzipSync(payload)], ['deflate', deflateSync(payload)]] as const) {
        const r = await call(port, 'POST', '/x/git-upload-pack', { ...UPLOAD_REQ, 'Content-Encoding': encoding }, body);
        assert.equal(r.status, 200, encoding);
        assert.equal(r.body.subarray(4).toString('latin1'), `got ${payload.length} 0032want\n`, encoding);
      }
    });
  });

  test('corrupt or unknown body encodings are refused', async () => {
    await withServer(new FakeService(basic), {}, async (port) => {
      const bad = await call(port, 'POST', '/x/git-upload-pack', { ...UPLOAD_REQ, 'Content-Encoding': 'gzip' }, Buffer.from('definitely not gzip'));
      assert.equal(bad.status, 400);
      assert.match(bad.body.toString(), /not valid compressed data/);
      const truncated = gzipSync(Buffer.alloc(10_000, 1)).subarray(0, 30);
      assert.equal((await call(port, 'POST', '/x/git-upload-pack', { ...UPLOAD_REQ, 'Content-Encoding': 'gzip' }, truncated)).status, 400);
      assert.equal((await call(port, 'POST', '/x/git-upload-pack', { ...UPLOAD_REQ, 'Content-Encoding': 'br' }, Buffer.from('x'))).status, 415);
    });
  });

  test('body size limits hold for plain and compressed bodies', async () => {
    await withServer(new FakeService(basic), { receiveBodyMax: 5000 }, async (port) => {
      const plain = await call(port, 'POST', '/x/git-receive-pack', RECEIVE_REQ, Buffer.alloc(6000));
      assert.equal(plain.status, 413);
      const bomb = gzipSync(Buffer.alloc(1_000_000));
      assert.ok(bomb.length < 5000);
      const inflated = await call(port, 'POST', '/x/git-receive-pack', { ...RECEIVE_REQ, 'Content-Encoding': 'gzip' }, bomb);
      assert.equal(inflated.status, 413);
      assert.match(inflated.body.toString(), /exceeds the limit of 5000 bytes/);
      assert.equal((await call(port, 'POST', '/x/git-receive-pack', RECEIVE_REQ, Buffer.alloc(4000))).status, 200);
    });
  });

  test('service errors map to the catalog status with a text body and no internals', async () => {
    await withServer(new FakeService(basic), {}, async (port) => {
      const missing = await call(port, 'GET', '/missing.git/info/refs?service=git-upload-pack');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), 'repository missing.git not found\n');
      assertNoCache(missing.headers);
      const boom = await call(port, 'POST', '/boom/git-upload-pack', UPLOAD_REQ, Buffer.from('0000'));
      assert.equal(boom.status, 500);
      assert.equal(boom.body.toString(), 'internal error\n');
    });
  });

  test('routing: 404, 405 with Allow, JSON errors under /api, path decoding', async () => {
    const svc = new FakeService(basic);
    await withServer(svc, {}, async (port) => {
      assert.equal((await call(port, 'GET', '/x/HEAD')).status, 404);
      assert.equal((await call(port, 'GET', '/info/refs?service=git-upload-pack')).status, 404);
      const wrong = await call(port, 'GET', '/x/git-upload-pack');
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers['allow'], 'POST');
      const api = await call(port, 'GET', '/api/v1/nothing');
      assert.equal(api.status, 404);
      assert.equal(api.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(api.body.toString()), { code: 'HTTP_NOT_FOUND', message: 'not found' });
      assert.equal((await call(port, 'GET', '/team%2Fapp/info/refs?service=git-upload-pack')).status, 200);
      assert.equal((await call(port, 'GET', '/bad%zz/info/refs?service=git-upload-pack')).status, 400);
      assert.equal((await call(port, 'GET', '/bad%0Aname/info/refs?service=git-upload-pack')).status, 400);
    });
    assert.equal(svc.requests[0]?.repoName, 'team/app');
  });

  test('the authorisation hook can demand credentials or refuse', async () => {
    const svc = new FakeService(basic);
    const authorize = async (a: { write: boolean; repoName: string }): Promise<void> => {
      if (a.write) throw new AuthError('AUTH_REQUIRED', 'authentication required to push');
      if (a.repoName === 'secret') throw new AuthError('AUTH_DENIED', 'no access');
    };
    await withServer(svc, { authorize }, async (port) => {
      const push = await call(port, 'GET', '/x/info/refs?service=git-receive-pack');
      assert.equal(push.status, 401);
      assert.equal(push.headers['www-authenticate'], 'Basic realm="stowage"');
      assert.equal((await call(port, 'GET', '/secret/info/refs?service=git-upload-pack')).status, 403);
      assert.equal((await call(port, 'GET', '/open/info/refs?service=git-upload-pack')).status, 200);
    });
    assert.deepEqual(svc.requests.map((r) => r.repoName), ['open']);
  });

  test('push can be switched off', async () => {
    await withServer(new FakeService(basic), { receivePack: false }, async (port) => {
      assert.equal((await call(port, 'GET', '/x/info/refs?service=git-receive-pack')).status, 403);
      assert.equal((await call(port, 'POST', '/x/git-receive-pack', RECEIVE_REQ, Buffer.from('0000'))).status, 403);
    });
  });

  test('responses stream (chunked) as the service writes', async () => {
    const svc = new FakeService(async (_req, _input, out) => {
      for (let i = 0; i < 3; i++) {
        await out.write(Buffer.alloc(200_000, 0x30 + i));
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    await withServer(svc, {}, async (port) => {
      const r = await call(port, 'POST', '/x/git-upload-pack', UPLOAD_REQ, Buffer.from('0000'));
      assert.equal(r.headers['transfer-encoding'], 'chunked');
      assert.equal(r.body.length, 600_000);
      assert.equal(r.body[599_999], 0x32);
    });
  });
});
