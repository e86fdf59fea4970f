/**
 * Smart HTTP (gitprotocol-http, git's http-backend.c): `GET <repo>/info/refs?service=…` for
 * the advertisement and `POST <repo>/git-upload-pack|git-receive-pack` for one stateless-rpc
 * round each. Dumb HTTP is not served. Headers go out with the first byte of the response, so
 * a failure before it (unknown repository, refused service) still gets a proper status.
 */
import type { IncomingMessage } from 'node:http';
import { StowageError } from '../../core/errors.js';
import { HTTP_NEGOTIATION_BODY_MAX } from '../../core/limits.js';
import { FLUSH_PKT, encodePktLine } from '../../git/pktline/encode.js';
import type { GitRequest, GitService, GitServiceName, ProtocolVersion } from '../../service/git-service.js';
import { parseGitProtocolHeader, protocolVersionFromParams } from '../git-daemon/request.js';
import { StreamSink } from '../git-daemon/stream-sink.js';
import { requestBody } from './body.js';
import { NO_CACHE_HEADERS } from './response.js';
import { repoSuffix, type HttpContext, type Route } from './router.js';

/** What an authorisation hook is told about a request. */
export interface GitAccess {
  readonly service: GitServiceName;
  readonly repoName: string;
  /** True for a push (receive-pack), whose rights differ from a fetch's. */
  readonly write: boolean;
  readonly req: IncomingMessage;
  readonly reqId: string;
}

/**
 * Decides whether a request may proceed: resolves to allow, throws AuthError('AUTH_REQUIRED')
 * (401, asks for credentials) or AuthError('AUTH_DENIED') (403). The hook for auth/.
 */
export type AuthorizeHook = (access: GitAccess) => Promise<void>;

export interface GitRoutesOptions {
  readonly service: GitService;
  /** Serve git-receive-pack (push); when false it answers 403. */
  readonly receivePack: boolean;
  /** Largest inflated push body (pack plus commands). */
  readonly receiveBodyMax: number;
  /** Largest inflated fetch negotiation body; default HTTP_NEGOTIATION_BODY_MAX. */
  readonly uploadBodyMax?: number;
  /** Default: everyone may fetch and push (no auth configured yet). */
  readonly authorize?: AuthorizeHook;
}

const RPC_SERVICES: readonly GitServiceName[] = ['git-upload-pack', 'git-receive-pack'];

function isRpcService(name: string | null): name is GitServiceName {
  return name !== null && (RPC_SERVICES as readonly string[]).includes(name);
}

/** Protocol version from the Git-Protocol header; receive-pack has no v2, so git serves v0 there. */
function versionFor(ctx: HttpContext, service: GitServiceName): ProtocolVersion {
  const header = ctx.req.headers['git-protocol'];
  const value = Array.isArray(header) ? header.join(':') : (header ?? '');
  const v = protocolVersionFromParams(parseGitProtocolHeader(value));
  return service === 'git-receive-pack' && v === 2 ? 0 : v;
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Builds the smart HTTP routes. */
export function gitRoutes(opts: GitRoutesOptions): Route[] {
  const authorize: AuthorizeHook = opts.authorize ?? (async () => {});

  async function gate(ctx: HttpContext, service: GitServiceName, repoName: string): Promise<void> {
    if (service === 'git-receive-pack' && !opts.receivePack) {
      throw new StowageError('PROTO_SERVICE_DISABLED', 'push over HTTP is disabled on this server');
    }
    await authorize({ service, repoName, write: service === 'git-receive-pack', req: ctx.req, reqId: ctx.reqId });
  }

  async function run(ctx: HttpContext, req: GitRequest, input: AsyncIterable<Uint8Array>, headers: Record<string, string>, prefix?: Uint8Array): Promise<void> {
    const { res } = ctx;
    const sink = new StreamSink(res, () => {
      res.writeHead(200, { ...NO_CACHE_HEADERS, ...headers });
      if (prefix !== undefined) res.write(prefix);
    });
    ctx.log.info({ service: req.service, repo: req.repoName, version: req.protocolVersion, advertise: req.advertiseRefs }, 'git request');
    await opts.service.serve(req, input, sink);
    if (!sink.started) {
      res.writeHead(200, { ...NO_CACHE_HEADERS, ...headers });
      if (prefix !== undefined) res.write(prefix);
    }
    await new Promise<void>((resolve) => res.end(resolve));
  }

  const infoRefs: Route = {
    name: 'git-info-refs',
    methods: ['GET'],
    match: repoSuffix('/info/refs'),
    async handle(ctx, params) {
      const service = ctx.query.get('service');
      if (service === null) {
        throw new StowageError(
          'PROTO_SERVICE_DISABLED',
          'dumb HTTP is not supported: use a git client that speaks smart HTTP (git 1.6.6 or later)',
        );
      }
      if (!isRpcService(service)) {
        throw new StowageError('PROTO_SERVICE_DISABLED', `unsupported service ${JSON.stringify(service.slice(0, 40))}`);
      }
      const repoName = params['repo'] as string;
      const protocolVersion = versionFor(ctx, service);
      await gate(ctx, service, repoName);
      // v0/v1 start with "# service=…" and a flush; v2 does not (git-http-backend).
      const prefix =
        protocolVersion === 2 ? undefined : Buffer.concat([encodePktLine(`# service=${service}\n`), FLUSH_PKT]);
      await run(
        ctx,
        { service, repoName, protocolVersion, statelessRpc: true, advertiseRefs: true, requestId: ctx.reqId, signal: ctx.signal },
        emptyInput(),
        { 'Content-Type': `application/x-${service}-advertisement` },
        prefix,
      );
    },
  };

  const rpc = (service: GitServiceName): Route => ({
    name: service,
    methods: ['POST'],
    match: repoSuffix(`/${service}`),
    async handle(ctx, params) {
      const repoName = params['repo'] as string;
      const expected = `application/x-${service}-request`;
      const actual = mediaType(ctx.req.headers['content-type']);
      if (actual !== expected) {
        throw new StowageError(
          'HTTP_UNSUPPORTED_MEDIA_TYPE',
          `expected POST with Content-Type '${expected}', but received '${actual.slice(0, 80)}' instead`,
        );
      }
      const protocolVersion = versionFor(ctx, service);
      await gate(ctx, service, repoName);
      const max = service === 'git-receive-pack' ? opts.receiveBodyMax : (opts.uploadBodyMax ?? HTTP_NEGOTIATION_BODY_MAX);
      const input = requestBody(ctx.req, max);
      await run(
        ctx,
        { service, repoName, protocolVersion, statelessRpc: true, advertiseRefs: false, requestId: ctx.reqId, signal: ctx.signal },
        input,
        { 'Content-Type': `application/x-${service}-result` },
      );
    },
  });

  return [infoRefs, rpc('git-upload-pack'), rpc('git-receive-pack')];
}

/** info/refs has no body to read. */
async function* emptyInput(): AsyncGenerator<Uint8Array> {}
