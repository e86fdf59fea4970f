/**
 * The NBD server: a TCP listener speaking fixed newstyle (with STARTTLS when TLS is
 * configured, offered or required), many exports and many clients per process. Each
 * connection haggles options, opens one device from the provider, serves pipelined requests,
 * and releases the device (which flushes it) when the client leaves, however it leaves. A
 * failing client never affects another.
 */
import { settlesWithin } from '../../core/settle.js';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { formatHostPort, type ListenAddress } from '../../core/config.js';
import { publicMessage } from '../../core/errors.js';
import { newRequestId, requestLogger, type Logger } from '../../core/log.js';
import type { DeviceHandle, DeviceProvider } from '../device/block-device.js';
import { ByteInput } from './byte-input.js';
import { negotiate, type NbdTlsContext, type NegotiationIo } from './negotiate.js';
import { Transmission } from './transmission.js';

/** X.509 material for STARTTLS (PEM). */
export interface NbdTlsOptions {
  readonly key: string | Uint8Array;
  readonly cert: string | Uint8Array;
  /** CA certificates client certificates must chain to. */
  readonly ca?: string | Uint8Array;
  /** Demand and verify a client certificate. */
  readonly requireClientCert?: boolean;
  /** `require` (default): FORCEDTLS; `on`: STARTTLS offered, plain clients served too. */
  readonly mode?: 'on' | 'require';
}

export interface NbdServerOptions {
  readonly provider: DeviceProvider;
  readonly listen: ListenAddress;
  readonly logger: Logger;
  /** Connections served at once; more are dropped on accept. */
  readonly maxConnections: number;
  /** Transmission-phase idle time (no byte either way) after which a client is dropped; default none. */
  readonly idleTimeoutMs?: number;
  /** Time allowed for the handshake; default 30 s. */
  readonly handshakeTimeoutMs?: number;
  /** How long close() waits for in-flight requests before cutting connections; default 10 s. */
  readonly shutdownGraceMs?: number;
  /** When set, STARTTLS is offered; in mode `require` (FORCEDTLS) every option but STARTTLS and ABORT gets TLS_REQD. */
  readonly tls?: NbdTlsOptions;
}

interface Connection {
  readonly socket: Socket;
  transmission: Transmission | undefined;
  done: Promise<void>;
}

/** The NBD server. */
export class NbdServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly tls: NbdTlsContext | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: NbdServerOptions) {
    this.tls =
      opts.tls === undefined
        ? undefined
        : {
            secureContext: createSecureContext({
              key: toPem(opts.tls.key),
              cert: toPem(opts.tls.cert),
              ...(opts.tls.ca === undefined ? {} : { ca: toPem(opts.tls.ca) }),
              minVersion: 'TLSv1.2',
            }),
            requireClientCert: opts.tls.requireClientCert === true,
            required: opts.tls.mode !== 'on',
          };
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<{ address: string; port: number }> {
    this.server.listen({ host: this.opts.listen.host, port: this.opts.listen.port });
    await once(this.server, 'listening');
    const addr = this.server.address() as AddressInfo;
    return { address: addr.address, port: addr.port };
  }

  /** Connections being served now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, lets in-flight requests finish (new ones get ESHUTDOWN), releases every device, ends connections. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) {
      if (c.transmission === undefined) c.socket.destroy();
      else c.transmission.stop();
    }
    const all = Promise.all([...this.connections].map((c) => c.done));
    if (!(await settlesWithin(all, this.opts.shutdownGraceMs ?? 10_000))) {
      this.opts.logger.warn({ connections: this.connections.size }, 'nbd: cutting connections still busy at shutdown');
      for (const c of this.connections) c.socket.destroy();
      await all;
    }
    await stopped;
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined || this.connections.size >= this.opts.maxConnections) {
      this.opts.logger.warn({ max: this.opts.maxConnections }, 'nbd: too many connections (or shutting down); dropping a new client');
      socket.destroy();
      return;
    }
    const conn: Connection = { socket, transmission: undefined, done: Promise.resolve() };
    this.connections.add(conn);
    conn.done = this.handle(conn)
      .catch((err: unknown) => this.opts.logger.error({ err }, 'nbd: connection handler failed'))
      .finally(() => this.connections.delete(conn));
  }

  private async handle(conn: Connection): Promise<void> {
    const { socket } = conn;
    const log = requestLogger(this.opts.logger, newRequestId(), { remote: formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0) });
    socket.on('error', (err) => log.debug({ err: err.message }, 'nbd socket error'));
    socket.setTimeout(this.opts.handshakeTimeoutMs ?? 30_000);
    socket.on('timeout', () => {
      log.info('nbd: connection idle for too long; closing');
      socket.destroy();
    });
    const input = new ByteInput(socket);
    const io: NegotiationIo = {
      input,
      stream: socket,
      provider: this.opts.provider,
      tls: this.tls,
      log,
      closing: () => this.closing !== undefined,
    };
    let handle: DeviceHandle | undefined;
    try {
      const negotiated = await negotiate(io);
      if (negotiated === undefined) return;
      handle = negotiated.handle;
      input.detach();
      socket.setTimeout(this.opts.idleTimeoutMs ?? 0);
      log.info({ export: negotiated.exportName, structured: negotiated.structured }, 'nbd export opened');
      const t = new Transmission({
        stream: io.stream,
        negotiated,
        leftover: input.drainBuffered(),
        log,
        closing: () => this.closing !== undefined,
      });
      conn.transmission = t;
      if (this.closing !== undefined) t.stop();
      await t.run();
    } catch (err) {
      log.info({ reason: publicMessage(err) }, 'nbd: dropping client');
    } finally {
      if (handle !== undefined) await handle.release();
      await endStream(io.stream);
      if (!socket.destroyed) socket.destroy();
      log.debug('nbd connection closed');
    }
  }
}

/** Ends a stream after its queued output went out (bounded wait), so final replies are not lost. */
async function endStream(stream: NegotiationIo['stream']): Promise<void> {
  if (stream.destroyed) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    stream.end(() => {
      clearTimeout(timer);
      resolve();
    });
    stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function toPem(v: string | Uint8Array): string | Buffer {
  return typeof v === 'string' ? v : Buffer.from(v);
}
