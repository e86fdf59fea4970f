/**
 * Test support (not a test): the smallest smart-HTTP frontend (gitprotocol-http) around a
 * GitService, so the stock client drives the stateless-rpc paths: GET info/refs (with the
 * `# service=` preamble except for v2) and POST git-upload-pack / git-receive-pack (gzip
 * bodies accepted). Not the product's frontend: no auth, no limits, errors as plain 500s.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGunzip } from 'node:zlib';
import { publicMessage } from '../../core/errors.js';
import { encodePktLine, FLUSH_PKT } from '../../git/pktline/encode.js';
import type { GitService, GitServiceName, ProtocolVersion } from '../git-service.js';

/** A running server. */
export interface HttpHarness {
  readonly baseUrl: string;
  /** Every request served, as "GET info/refs" or "POST git-upload-pack". */
  readonly log: string[];
  close(): Promise<void>;
}

function versionOf(req: IncomingMessage): ProtocolVersion {
  const h = req.headers['git-protocol'];
  const text = Array.isArray(h) ? h.join(':') : (h ?? '');
  for (const p of text.split(':')) {
    if (p === 'version=2') return 2;
    if (p === 'version=1') return 1;
  }
  return 0;
}

async function handle(service: GitService, req: IncomingMessage, res: ServerResponse, log: string[]): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const m = /^\/(.+)\/(info\/refs|git-upload-pack|git-receive-pack)$/.exec(url.pathname);
  if (m === null) {
    res.writeHead(404).end();
    return;
  }
  log.push(`${req.method ?? ''} ${m[2] as string}`);
  const repoName = (m[1] as string).replace(/\.git$/, '');
  const advertise = m[2] === 'info/refs';
  const name = (advertise ? url.searchParams.get('service') : m[2]) as GitServiceName | null;
  if (name !== 'git-upload-pack' && name !== 'git-receive-pack') {
    res.writeHead(403).end();
    return;
  }
  const version = name === 'git-receive-pack' && versionOf(req) === 2 ? 0 : versionOf(req);
  const body: AsyncIterable<Uint8Array> = req.headers['content-encoding'] === 'gzip' ? req.pipe(createGunzip()) : req;
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    res.writeHead(200, {
      'content-type': `application/x-${name}-${advertise ? 'advertisement' : 'result'}`,
      'cache-control': 'no-cache',
    });
    if (advertise && version !== 2) {
      res.write(encodePktLine(`# service=${name}\n`));
      res.write(FLUSH_PKT);
    }
  };
  const sink = {
    write: (chunk: Uint8Array): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        start();
        res.write(chunk, (err) => (err ? reject(err) : resolve()));
      }),
  };
  try {
    await service.serve(
      { service: name, repoName, protocolVersion: version, statelessRpc: true, advertiseRefs: advertise, requestId: 'http-test' },
      body,
      sink,
    );
    start();
    res.end();
  } catch (err) {
    if (!started) res.writeHead(500, { 'content-type': 'text/plain' }).end(publicMessage(err));
    else res.end();
  }
}

/** Starts the harness on 127.0.0.1 with a random port. */
export async function startHttpHarness(service: GitService): Promise<HttpHarness> {
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    void handle(service, req, res, log);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
