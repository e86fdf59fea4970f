/**
 * A small Swift and Keystone fake on node:http for what the AIO cannot show: Keystone v2/v3
 * catalogs, injected 5xx answers, expired tokens, slow answers. Objects live in a Map
 * (PUT/GET/HEAD/DELETE, container PUT, ranges are not needed here). Each request is recorded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One recorded request. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

/**
 * A fault: looks at a request and may answer it itself (return true). Faults are tried in
 * order before the normal handling; one that answered is removed when `once` is set.
 */
export interface Fault {
  readonly match: (req: SeenRequest) => boolean;
  readonly answer: (req: SeenRequest, res: ServerResponse) => void | Promise<void>;
  readonly once?: boolean;
}

/** A running fake. */
export interface FakeSwift {
  /** Base URL, e.g. http://127.0.0.1:PORT. */
  readonly url: string;
  /** tempauth-style v1 auth URL. */
  readonly authUrl: string;
  readonly requests: SeenRequest[];
  readonly faults: Fault[];
  readonly objects: Map<string, Buffer>;
  /** Tokens the fake accepts; clear it to expire every token. */
  readonly tokens: Set<string>;
  /** How many auth requests were answered. */
  authCount(): number;
  /** The most requests in flight at once (object and container requests). */
  maxInFlight(): number;
  resetMaxInFlight(): void;
  close(): Promise<void>;
}

/** Keystone replies the fake serves (v2 at /v2.0/tokens, v3 at /v3/auth/tokens). */
export interface FakeKeystone {
  /** The v2 serviceCatalog, given the fake's base URL. */
  readonly v2Catalog?: (base: string) => unknown;
  /** The v3 catalog, given the fake's base URL. */
  readonly v3Catalog?: (base: string) => unknown;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Starts a fake on 127.0.0.1; storage paths are `/v1/<account>/<container>/<object>`. */
export async function startFakeSwift(keystone: FakeKeystone = {}): Promise<FakeSwift> {
  const requests: SeenRequest[] = [];
  const faults: Fault[] = [];
  const objects = new Map<string, Buffer>();
  const tokens = new Set<string>();
  let auths = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let base = '';

  const issue = (): string => {
    const token = `AUTH_tk${randomBytes(8).toString('hex')}`;
    tokens.add(token);
    return token;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const path = req.url ?? '/';
    const seen: SeenRequest = { method: req.method ?? 'GET', path, headers: req.headers, body };
    requests.push(seen);
    for (const [i, fault] of faults.entries()) {
      if (!fault.match(seen)) continue;
      if (fault.once === true) faults.splice(i, 1);
      await fault.answer(seen, res);
      return;
    }
    if (path === '/auth/v1.0') {
      auths += 1;
      res.writeHead(200, { 'x-auth-token': issue(), 'x-storage-url': `${base}/v1/AUTH_test`, 'x-auth-token-expires': '86400' }).end();
      return;
    }
    if (path === '/v2.0/tokens' && seen.method === 'POST') {
      auths += 1;
      const reply = { access: { token: { id: issue(), expires: new Date(Date.now() + 3_600_000).toISOString() }, serviceCatalog: keystone.v2Catalog?.(base) ?? [] } };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
      return;
    }
    if (path === '/v3/auth/tokens' && seen.method === 'POST') {
      auths += 1;
      const reply = { token: { expires_at: new Date(Date.now() + 3_600_000).toISOString(), catalog: keystone.v3Catalog?.(base) ?? [] } };
      res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': issue() }).end(JSON.stringify(reply));
      return;
    }
    if (path === '/info') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ swift: { max_file_size: 5 * 1024 * 1024 } }));
      return;
    }
    if (!path.startsWith('/v1/')) {
      res.writeHead(404).end();
      return;
    }
    if (!tokens.has(String(req.headers['x-auth-token'] ?? ''))) {
      res.writeHead(401).end('<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized.</p></html>');
      return;
    }
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
      const name = path.split('?')[0] as string;
      const isContainer = name.split('/').length <= 4;
      if (seen.method === 'PUT') {
        if (!isContainer) objects.set(name, body);
        const etag = createHash('md5').update(body).digest('hex');
        res.writeHead(isContainer ? 202 : 201, { etag, 'last-modified': new Date().toUTCString() }).end();
      } else if (seen.method === 'GET' && isContainer) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
      } else if (seen.method === 'GET' || seen.method === 'HEAD') {
        const data = objects.get(name);
        if (data === undefined) res.writeHead(404).end();
        else res.writeHead(200, { 'content-length': data.byteLength, 'x-timestamp': '1700000000.00000' }).end(seen.method === 'GET' ? data : undefined);
      } else if (seen.method === 'DELETE') {
        res.writeHead(objects.delete(name) ? 204 : 404).end();
      } else {
        res.writeHead(405).end();
      }
    } finally {
      inFlight -= 1;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    authUrl: `${base}/auth/v1.0`,
    requests,
    faults,
    objects,
    tokens,
    authCount: () => auths,
    maxInFlight: () => maxInFlight,
    resetMaxInFlight: () => {
      maxInFlight = inFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
