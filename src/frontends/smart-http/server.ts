/**
 * The HTTP frontend: a node:http server dispatching through a routes table (smart HTTP git
 * routes, `/healthz`; the JSON API and LFS add theirs later). Each request gets a `reqId`,
 * an abort signal tied to the client and to shutdown, and errors mapped to a status.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHostPort, type ListenAddress } from '../../core/config.js';
import { ProtocolError, StowageError, errorCode, publicMessage } from '../../core/errors.js';
import { newRequestId, requestLogger, type Logger } from '../../core/log.js';
import type { GitService } from '../../service/git-service.js';
import { gitRoutes, type AuthorizeHook } from './git-routes.js';
import { httpStatusOf, sendError, sendText } from './response.js';
import { exactPath, matchRoute, type HttpContext, type Route } from './router.js';

export interface SmartHttpOptions {
  readonly service: GitService;
  readonly logger: Logger;
  readonly listen: ListenAddress;
  /** Serve pushes (git-receive-pack); default true. */
  readonly receivePack?: boolean;
  /** Largest inflated push body. */
  readonly receiveBodyMax: number;
  /** A connection idle this long is dropped. */
  readonly idleTimeoutMs: number;
  readonly maxConnections?: number;
  /** Authorisation hook for git requests (default: allow all). */
  readonly authorize?: AuthorizeHook;
  /** More routes, tried before the git routes (JSON API, LFS, metrics). */
  readonly extraRoutes?: readonly Route[];
  /** How long close() waits for running requests; default 10 s. */
  readonly shutdownGraceMs?: number;
}

const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** `/healthz`: the process is up and serving. */
const healthRoute: Route = {
  name: 'healthz',
  methods: ['GET', 'HEAD'],
  match: exactPath('/healthz'),
  async handle(ctx) {
    sendText(ctx.res, 200, 'ok');
  },
};

/** Percent-decodes a request path; ProtocolError for malformed escapes and control bytes. */
export function decodeRequestPath(rawUrl: string): { path: string; query: URLSearchParams } {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new ProtocolError('HTTP_BAD_REQUEST', 'malformed percent-escape in the request path');
  }
  // eslint-disable-next-line no-control-regex
  if (!path.startsWith('/') || /[\x00-\x1f\x7f]/.test(path)) {
    throw new ProtocolError('HTTP_BAD_REQUEST', 'invalid request path');
  }
  return { path, query };
}

/** The HTTP server. */
export class SmartHttpServer {
  private readonly server: Server;
  private readonly routes: readonly Route[];
  private readonly inflight = new Map<ServerResponse, AbortController>();
  private readonly shutdown = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: SmartHttpOptions) {
    this.routes = [
      healthRoute,
      ...(opts.extraRoutes ?? []),
      ...gitRoutes({
        service: opts.service,
        receivePack: opts.receivePack ?? true,
        receiveBodyMax: opts.receiveBodyMax,
        ...(opts.authorize === undefined ? {} : { authorize: opts.authorize }),
      }),
    ];
    // requestTimeout 0: a push of gigabytes may take longer than any fixed bound; the idle
    // timeout below drops connections that stop moving instead.
    this.server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, (req, res) => {
      void this.dispatch(req, res);
    });
    this.server.setTimeout(opts.idleTimeoutMs, (socket) => socket.destroy());
    if (opts.maxConnections !== undefined) this.server.maxConnections = opts.maxConnections;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<{ address: string; port: number }> {
    this.server.listen({ host: this.opts.listen.host, port: this.opts.listen.port });
    await once(this.server, 'listening');
    const addr = this.server.address() as AddressInfo;
    return { address: addr.address, port: addr.port };
  }

  /** Stops accepting, waits up to the grace period for running requests, then cuts the rest. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + (this.opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      this.server.closeIdleConnections();
    }
    if (this.inflight.size > 0) {
      this.opts.logger.warn({ requests: this.inflight.size }, 'http: cutting requests still running at shutdown');
      this.shutdown.abort(new StowageError('ABORTED', 'server shutting down'));
    }
    this.server.closeAllConnections();
    await stopped;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reqId = newRequestId();
    const log = requestLogger(this.opts.logger, reqId);
    const started = Date.now();
    const abort = new AbortController();
    this.inflight.set(res, abort);
    const onGone = (): void => {
      if (!res.writableFinished) abort.abort(new StowageError('ABORTED', 'client disconnected'));
    };
    res.on('close', onGone);
    const signal = AbortSignal.any([abort.signal, this.shutdown.signal]);
    const method = req.method ?? 'GET';
    let json = false;
    let route = 'none';
    try {
      const { path, query } = decodeRequestPath(req.url ?? '/');
      json = path === '/api' || path.startsWith('/api/');
      const m = matchRoute(this.routes, method, path);
      if (m.kind === 'none') throw new ProtocolError('HTTP_NOT_FOUND', 'not found');
      if (m.kind === 'method-not-allowed') {
        json = m.json;
        sendError(res, new ProtocolError('HTTP_METHOD_NOT_ALLOWED', `method ${method} not allowed`), {
          json,
          headers: { Allow: m.allow.join(', ') },
        });
        return;
      }
      route = m.route.name;
      json = m.route.json === true;
      const ctx: HttpContext = { req, res, path, query, reqId, log, signal };
      await m.route.handle(ctx, m.params);
    } catch (err) {
      const status = httpStatusOf(err);
      if (status >= 500 && errorCode(err) !== 'TIMEOUT') log.error({ err, code: errorCode(err) }, 'http request failed');
      else log.info({ code: errorCode(err), reason: publicMessage(err) }, 'http request refused');
      // After the first byte the status is gone; the service has already reported the failure
      // inside the protocol where it could, so end the body cleanly to deliver that.
      if (!sendError(res, err, { json }) && !res.writableEnded) res.end();
    } finally {
      res.off('close', onGone);
      this.inflight.delete(res);
      log.info({ method, route, status: res.statusCode, ms: Date.now() - started }, 'http request');
    }
  }
}
