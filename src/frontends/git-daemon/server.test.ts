import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { NotFoundError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { decodePktLines } from '../../git/pktline/decode.js';
import { FLUSH_PKT, encodePktLine, pktLineText } from '../../git/pktline/encode.js';
import { PktLineReader } from '../../git/pktline/reader.js';
import type { ByteSink, GitRequest, GitService } from '../../service/git-service.js';
import { GitDaemon, type GitDaemonOptions } from './server.js';

type Behaviour = (req: GitRequest, input: AsyncIterable<Uint8Array>, out: ByteSink) => Promise<void>;

/** A GitService whose behaviour the test chooses; it records what it was asked. */
class FakeService implements GitService {
  readonly requests: GitRequest[] = [];
  constructor(public behaviour: Behaviour) {}
  async serve(req: GitRequest, input: AsyncIterable<Uint8Array>, out: ByteSink): Promise<void> {
    this.requests.push(req);
    await this.behaviour(req, input, out);
  }
}

/** Says hello, then echoes the number of data lines the client sends before a flush. */
const echo: Behaviour = async (req, input, out) => {
  await out.write(encodePktLine(`hello ${req.repoName} v${req.protocolVersion}\n`));
  const { lines } = await new PktLineReader(input).readSection();
  await out.write(encodePktLine(`got ${lines.length}\n`));
  await out.write(FLUSH_PKT);
};

const logLines: string[] = [];
const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void logLines.push(l) } });

async function withDaemon(service: GitService, opts: Partial<GitDaemonOptions>, fn: (port: number, d: GitDaemon) => Promise<void>): Promise<void> {
  const d = new GitDaemon({
    service,
    logger,
    listen: { host: '127.0.0.1', port: 0 },
    allowPush: false,
    idleTimeoutMs: 5000,
    maxConnections: 10,
    shutdownGraceMs: 2000,
    ...opts,
  });
  const { port } = await d.start();
  try {
    await fn(port, d);
  } finally {
    await d.close();
  }
}

/** Connects, sends `data`, and returns everything the server sends until it closes. */
function exchange(port: number, data: Uint8Array | string, opts: { keepOpen?: boolean } = {}): Promise<{ bytes: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.write(data);
      if (opts.keepOpen !== true) s.end();
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (error) => resolve({ bytes: Buffer.concat(chunks), error }));
    s.on('close', () => resolve({ bytes: Buffer.concat(chunks) }));
  });
}

function request(line: string): Uint8Array {
  return encodePktLine(Buffer.from(line, 'latin1'));
}

function texts(bytes: Uint8Array): string[] {
  return decodePktLines(bytes).map((l) => (l.kind === 'data' ? pktLineText(l) : `<${l.kind}>`));
}

describe('git daemon', () => {
  test('serves a request: fields of the GitRequest and input after the request line', async () => {
    const svc = new FakeService(echo);
    await withDaemon(svc, {}, async (port) => {
      const body = Buffer.concat([
        request('git-upload-pack /team/app.git\0host=localhost\0\0version=2\0'),
        encodePktLine('a\n'),
        encodePktLine('b\n'),
        FLUSH_PKT,
      ]);
      const { bytes } = await exchange(port, body);
      assert.deepEqual(texts(bytes), ['hello team/app.git v2', 'got 2', '<flush>']);
    });
    const req = svc.requests[0] as GitRequest;
    assert.equal(req.service, 'git-upload-pack');
    assert.equal(req.repoName, 'team/app.git');
    assert.equal(req.protocolVersion, 2);
    assert.equal(req.statelessRpc, false);
    assert.equal(req.advertiseRefs, false);
    assert.match(req.requestId, /^[0-9a-f]{8}$/);
    assert.ok(logLines.some((l) => l.includes(req.requestId) && l.includes('git request')));
  });

  test('an unknown turnip parameter is refused with one ERR line', async () => {
    const svc = new FakeService(echo);
    await withDaemon(svc, {}, async (port) => {
      const { bytes } = await exchange(port, request('git-upload-pack /x\0host=h\0turnip-authenticated-user=root\0'));
      const lines = texts(bytes);
      assert.equal(lines.length, 1);
      assert.match(lines[0] as string, /^ERR invalid request: unknown parameter "turnip-authenticated-user"$/);
    });
    assert.equal(svc.requests.length, 0);
  });

  test('control bytes and garbage are refused with ERR', async () => {
    await withDaemon(new FakeService(echo), {}, async (port) => {
      assert.match(texts((await exchange(port, request('git-upload-pack /x\nfoo\0host=h\0'))).bytes)[0] as string, /^ERR .*control character/);
      assert.match(texts((await exchange(port, request('git-frob /x\0'))).bytes)[0] as string, /^ERR .*unknown service/);
      assert.match(texts((await exchange(port, FLUSH_PKT)).bytes)[0] as string, /^ERR /);
      assert.match(texts((await exchange(port, 'zzzz')).bytes)[0] as string, /^ERR bad pkt-line length/);
    });
  });

  test('push is refused unless enabled, with how to enable it', async () => {
    const svc = new FakeService(echo);
    await withDaemon(svc, {}, async (port) => {
      const lines = texts((await exchange(port, request('git-receive-pack /x\0host=h\0'))).bytes);
      assert.equal(lines.length, 1);
      assert.match(lines[0] as string, /^ERR push over git:\/\/ is disabled.*--git-allow-push/);
    });
    assert.equal(svc.requests.length, 0);
    await withDaemon(svc, { allowPush: true }, async (port) => {
      const lines = texts((await exchange(port, Buffer.concat([request('git-receive-pack /x\0host=h\0'), FLUSH_PKT]))).bytes);
      assert.deepEqual(lines, ['hello x v0', 'got 0', '<flush>']);
    });
  });

  test('errors before output become ERR lines without internals', async () => {
    const svc = new FakeService(async (req) => {
      if (req.repoName === 'missing') throw new NotFoundError('REPO_NOT_FOUND', 'repository missing not found');
      throw new Error('secret internal detail at /some/path');
    });
    await withDaemon(svc, {}, async (port) => {
      assert.deepEqual(texts((await exchange(port, request('git-upload-pack /missing\0'))).bytes), ['ERR repository missing not found']);
      const internal = (await exchange(port, request('git-upload-pack /boom\0'))).bytes;
      assert.deepEqual(texts(internal), ['ERR internal error']);
      assert.ok(!internal.toString('latin1').includes('secret'));
    });
  });

  test('an error after output cuts the connection without an ERR line', async () => {
    const svc = new FakeService(async (_req, _input, out) => {
      await out.write(encodePktLine('partial\n'));
      throw new Error('later failure');
    });
    await withDaemon(svc, {}, async (port) => {
      const { bytes } = await exchange(port, request('git-upload-pack /x\0'), { keepOpen: true });
      assert.deepEqual(texts(bytes), ['partial']);
    });
  });

  test('the whole response arrives when the client half-closed and reads slowly', async () => {
    const total = 8 * 1024 * 1024;
    const svc = new FakeService(async (_req, input, out) => {
      for await (const _ of input) {
        // read to EOF: the client has half-closed
      }
      for (let sent = 0; sent < total; sent += 65536) await out.write(Buffer.alloc(65536, 7));
    });
    await withDaemon(svc, {}, async (port) => {
      const received = await new Promise<number>((resolve, reject) => {
        let n = 0;
        const s = connect({ host: '127.0.0.1', port }, () => {
          s.end(request('git-upload-pack /x\0'));
          s.pause();
          setTimeout(() => s.resume(), 300);
        });
        s.on('data', (c: Buffer) => (n += c.length));
        s.on('error', reject);
        s.on('close', () => resolve(n));
      });
      assert.equal(received, total);
    });
  });

  test('a port probe (connect, send nothing, leave) is harmless', async () => {
    const svc = new FakeService(echo);
    await withDaemon(svc, {}, async (port) => {
      const { bytes } = await exchange(port, '');
      assert.equal(bytes.length, 0);
    });
    assert.equal(svc.requests.length, 0);
  });

  test('connections over the limit get ERR busy', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const svc = new FakeService(async (_req, _input, out) => {
      await out.write(encodePktLine('working\n'));
      await held;
    });
    await withDaemon(svc, { maxConnections: 1 }, async (port) => {
      const first = exchange(port, request('git-upload-pack /x\0'), { keepOpen: true });
      while (svc.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      const second = await exchange(port, request('git-upload-pack /y\0'));
      assert.match(texts(second.bytes)[0] as string, /^ERR the server is busy/);
      release();
      assert.deepEqual(texts((await first).bytes), ['working']);
    });
  });

  test('a client that never sends its request is dropped after the init timeout', async () => {
    await withDaemon(new FakeService(echo), { initTimeoutMs: 100 }, async (port) => {
      const t0 = Date.now();
      const { bytes } = await exchange(port, '', { keepOpen: true });
      assert.equal(bytes.length, 0);
      assert.ok(Date.now() - t0 < 3000);
    });
  });

  test('an idle connection is dropped and the service sees its signal abort', async () => {
    let aborted = false;
    const svc = new FakeService(async (req, input) => {
      req.signal?.addEventListener('abort', () => (aborted = true));
      await new PktLineReader(input).read();
    });
    await withDaemon(svc, { idleTimeoutMs: 150 }, async (port) => {
      await exchange(port, request('git-upload-pack /x\0'), { keepOpen: true });
    });
    assert.equal(aborted, true);
  });

  test('close() lets running requests finish, then refuses new connections', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const svc = new FakeService(async (_req, _input, out) => {
      await held;
      await out.write(encodePktLine('finished\n'));
    });
    const d = new GitDaemon({ service: svc, logger, listen: { host: '127.0.0.1', port: 0 }, allowPush: false, idleTimeoutMs: 5000, maxConnections: 5, shutdownGraceMs: 5000 });
    const { port } = await d.start();
    const running = exchange(port, request('git-upload-pack /x\0'), { keepOpen: true });
    while (svc.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const closing = d.close();
    setTimeout(release, 100);
    assert.deepEqual(texts((await running).bytes), ['finished']);
    await closing;
    const refused = await exchange(port, request('git-upload-pack /x\0'));
    assert.ok(refused.error !== undefined || refused.bytes.length === 0);
  });

  test('close() cuts requests still running after the grace period', async () => {
    let signal: AbortSignal | undefined;
    const svc = new FakeService(async (req) => {
      signal = req.signal;
      await new Promise<void>((resolve) => req.signal?.addEventListener('abort', () => resolve()));
    });
    const d = new GitDaemon({ service: svc, logger, listen: { host: '127.0.0.1', port: 0 }, allowPush: false, idleTimeoutMs: 60_000, maxConnections: 5, shutdownGraceMs: 100 });
    const { port } = await d.start();
    const running = exchange(port, request('git-upload-pack /x\0'), { keepOpen: true });
    while (svc.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await d.close();
    await running;
    assert.equal(signal?.aborted, true);
  });
});
