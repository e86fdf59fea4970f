/**
 * The git:// frontend: a TCP server that reads one request pkt-line per connection, maps it to
 * a GitRequest and hands the socket to the GitService. Errors before the first byte of output
 * become one `ERR <message>` pkt-line (never a stack); later ones close the connection, since
 * the service reports protocol failures itself once the conversation has begun.
 */
import { settlesWithin } from '../../core/settle.js';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { formatHostPort, type ListenAddress } from '../../core/config.js';
import { LimitError, ProtocolError, StowageError, errorCode, publicMessage } from '../../core/errors.js';
import { ERROR_CODES } from '../../core/error-codes.js';
import { newRequestId, requestLogger, type Logger } from '../../core/log.js';
import { encodePktLine } from '../../git/pktline/encode.js';
import { PktLineReader } from '../../git/pktline/reader.js';
import type { GitService } from '../../service/git-service.js';
import { parseDaemonRequest } from './request.js';
import { StreamSink } from './stream-sink.js';

export interface GitDaemonOptions {
  readonly service: GitService;
  readonly logger: Logger;
  readonly listen: ListenAddress;
  /** git:// has no authentication: receive-pack is refused unless the operator enables it. */
  readonly allowPush: boolean;
  /** A connection idle (no byte either way) this long is dropped. */
  readonly idleTimeoutMs: number;
  /** Connections served at once; more get `ERR` busy. */
  readonly maxConnections: number;
  /** Time to send the request line (git daemon's --init-timeout); default 30 s. */
  readonly initTimeoutMs?: number;
  /** How long close() waits for running requests before cutting them; default 10 s. */
  readonly shutdownGraceMs?: number;
}

interface Connection {
  readonly socket: Socket;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

const DEFAULT_INIT_TIMEOUT_MS = 30_000;
const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** After the response, how long to wait for the client to hang up before dropping it. */
const LINGER_MS = 10_000;

/** Message for a push over git:// when it is off: say why and how to turn it on. */
export const PUSH_DISABLED_MESSAGE =
  'push over git:// is disabled because git:// has no authentication; push over HTTP, ' +
  'or start the server with --git-allow-push (config git.allowPush = true, env STOWAGE_GIT_ALLOW_PUSH=1)';

/** The git:// server. */
export class GitDaemon {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: GitDaemonOptions) {
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    // A hard ceiling well past the soft limit, so a flood cannot exhaust file descriptors.
    this.server.maxConnections = opts.maxConnections * 2 + 16;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<{ address: string; port: number }> {
    this.server.listen({ host: this.opts.listen.host, port: this.opts.listen.port });
    await once(this.server, 'listening');
    const addr = this.server.address() as AddressInfo;
    this.opts.logger.debug({ address: formatHostPort(addr.address, addr.port) }, 'git daemon bound');
    return { address: addr.address, port: addr.port };
  }

  /** Connections being served now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, waits up to the grace period for running requests, then cuts the rest. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const grace = this.opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    const all = (): Promise<unknown> => Promise.all([...this.connections].map((c) => c.done));
    if (!(await settlesWithin(all(), grace))) {
      this.opts.logger.warn({ connections: this.connections.size }, 'git daemon: cutting connections still running at shutdown');
      for (const c of this.connections) {
        c.abort.abort(new StowageError('ABORTED', 'server shutting down'));
        c.socket.destroy();
      }
      await all();
    }
    await stopped;
  }

  private accept(socket: Socket): void {
    const abort = new AbortController();
    const conn: Connection = { socket, abort, done: Promise.resolve() };
    const done = this.handle(socket, abort)
      .catch((err: unknown) => this.opts.logger.error({ err }, 'git daemon: connection handler failed'))
      .finally(() => this.connections.delete(conn));
    (conn as { done: Promise<void> }).done = done;
    this.connections.add(conn);
  }

  private async handle(socket: Socket, abort: AbortController): Promise<void> {
    const reqId = newRequestId();
    const log = requestLogger(this.opts.logger, reqId, { remote: formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0) });
    const started = Date.now();
    socket.on('error', (err) => log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => abort.abort(new StowageError('ABORTED', 'client disconnected')));
    socket.setTimeout(this.opts.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS);
    socket.on('timeout', () => {
      log.info('idle timeout: closing connection');
      abort.abort(new StowageError('TIMEOUT', 'connection idle for too long'));
      socket.destroy();
    });

    // One iterator over the socket, shared so that the input can be drained after the service.
    // destroyOnReturn false: the default iterator destroys the socket when the client's input
    // ends, but a client that half-closes (EOF after its request) still waits for our answer.
    const it = socket.iterator({ destroyOnReturn: false }) as AsyncIterator<Uint8Array>;
    const input: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => it.next() }) };
    const reader = new PktLineReader(input);
    const sink = new StreamSink(socket);
    try {
      const first = await reader.read();
      if (first === undefined) return; // connected and left (a port probe)
      if (first.kind !== 'data') throw new ProtocolError('PROTO_BAD_REQUEST', 'invalid request: expected a request line');
      const req = parseDaemonRequest(first.payload);
      if (this.connections.size > this.opts.maxConnections) {
        throw new LimitError('LIMIT_EXCEEDED', 'the server is busy (too many connections); try again later');
      }
      if (req.service === 'git-receive-pack' && !this.opts.allowPush) {
        throw new StowageError('PROTO_SERVICE_DISABLED', PUSH_DISABLED_MESSAGE);
      }
      socket.setTimeout(this.opts.idleTimeoutMs);
      log.info({ service: req.service, repo: req.repoName, version: req.protocolVersion, host: req.host }, 'git request');
      await this.opts.service.serve(
        {
          service: req.service,
          repoName: req.repoName,
          protocolVersion: req.protocolVersion,
          statelessRpc: req.statelessRpc,
          advertiseRefs: req.advertiseRefs,
          requestId: reqId,
          signal: abort.signal,
        },
        reader.rest(),
        sink,
      );
      log.info({ ms: Date.now() - started }, 'git request done');
    } catch (err) {
      this.report(err, sink, socket, log);
    } finally {
      await this.hangUp(socket, it);
    }
  }

  /** Sends an ERR line if nothing was written yet; logs by severity. */
  private report(err: unknown, sink: StreamSink, socket: Socket, log: Logger): void {
    const code = errorCode(err);
    const status = ERROR_CODES[code].http;
    const clientFault = status < 500 || code === 'ABORTED' || code === 'TIMEOUT';
    if (clientFault) log.info({ code, reason: publicMessage(err) }, 'git request refused');
    else log.error({ err, code }, 'git request failed');
    if (!sink.started && !socket.destroyed && !socket.writableEnded) {
      // One ERR pkt-line (gitprotocol-pack "error-line"); the client prints it as "remote error".
      const line = encodePktLine(`ERR ${publicMessage(err)}`);
      socket.write(line);
    }
    // After output began the service has already told the client what it could (ERR line,
    // side-band 3, `ng`); hangUp ends the stream cleanly so those bytes are not lost.
  }

  /** Ends our side, then reads and drops input until the client hangs up (or a deadline). */
  private async hangUp(socket: Socket, it: AsyncIterator<Uint8Array>): Promise<void> {
    if (socket.destroyed) return;
    // Resolves once every queued byte went to the kernel (or the socket died): destroying
    // earlier would drop the end of the response, e.g. when the client already half-closed.
    const flushed = new Promise<void>((resolve) => {
      if (socket.writableFinished) resolve();
      socket.once('finish', resolve);
      socket.once('close', resolve);
    });
    socket.end();
    // Closing with unread input makes the kernel send a reset, which can discard response
    // bytes still in flight; so drain until the client closes.
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    try {
      for (;;) {
        const r = await it.next();
        if (r.done === true) break;
      }
    } catch {
      // The socket failed or was destroyed: nothing more to drain.
    }
    try {
      await flushed;
    } finally {
      clearTimeout(timer);
      socket.destroy();
    }
  }
}
