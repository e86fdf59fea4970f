/**
 * Raw git:// and smart-HTTP clients for what stock git never sends: hand-made requests,
 * oversized pkt-lines, broken packs, bad ref names. Framing per gitprotocol-common.adoc and
 * gitprotocol-pack.adoc; written independently of src/git on purpose.
 */
import { request as httpRequestRaw } from 'node:http';
import { connect, type Socket } from 'node:net';

/** A data pkt-line around a payload. */
export function pkt(payload: string | Uint8Array): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}

/** flush-pkt, delim-pkt. */
export const FLUSH = Buffer.from('0000');
export const DELIM = Buffer.from('0001');

/** One parsed pkt-line. */
export type PktLine =
  | { readonly kind: 'data'; readonly payload: Buffer }
  | { readonly kind: 'flush' }
  | { readonly kind: 'delim' }
  | { readonly kind: 'response-end' };

/** Parses as many whole pkt-lines as `buf` holds; stops at the first malformed length. */
export function parsePktLines(buf: Buffer): { lines: PktLine[]; rest: Buffer; malformed: boolean } {
  const lines: PktLine[] = [];
  let at = 0;
  while (buf.length - at >= 4) {
    const hex = buf.toString('latin1', at, at + 4);
    if (!/^[0-9a-f]{4}$/i.test(hex)) return { lines, rest: buf.subarray(at), malformed: true };
    const len = parseInt(hex, 16);
    if (len === 0) lines.push({ kind: 'flush' });
    else if (len === 1) lines.push({ kind: 'delim' });
    else if (len === 2) lines.push({ kind: 'response-end' });
    else if (len < 4) return { lines, rest: buf.subarray(at), malformed: true };
    else {
      if (buf.length - at < len) break;
      lines.push({ kind: 'data', payload: buf.subarray(at + 4, at + len) });
      at += len;
      continue;
    }
    at += 4;
  }
  return { lines, rest: buf.subarray(at), malformed: false };
}

/** Data payloads as text lines (trailing LF dropped), others as `<flush>` etc. */
export function pktTexts(buf: Buffer): string[] {
  return parsePktLines(buf).lines.map((l) => (l.kind === 'data' ? l.payload.toString('utf8').replace(/\n$/, '') : `<${l.kind}>`));
}

/** A TCP connection that buffers what it receives. */
export class RawConnection {
  readonly #socket: Socket;
  #received: Buffer = Buffer.alloc(0);
  #closed = false;
  #error: Error | undefined;
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#received = Buffer.concat([this.#received, d]);
      this.#wake();
    });
    socket.on('error', (err) => {
      this.#error = err;
      this.#closed = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Connects to host:port. */
  static open(host: string, port: number, timeoutMs = 10_000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Everything received so far. */
  get received(): Buffer {
    return this.#received;
  }

  /** Whether the peer closed (or the socket failed). */
  get closed(): boolean {
    return this.#closed;
  }

  /** A socket error (e.g. ECONNRESET), if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Writes bytes; a write after the peer hung up is ignored (the answer is what it sent). */
  write(bytes: Uint8Array): Promise<void> {
    if (this.#closed || this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.write(bytes, () => resolve());
    });
  }

  /** Half-closes our side: the peer sees EOF. */
  end(): void {
    if (!this.#socket.destroyed) this.#socket.end();
  }

  /** Waits until done(received) is true or the peer closes; false on timeout. */
  async waitFor(done: (received: Buffer) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.#received) && !this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Waits for the peer to close; false on timeout. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => false, timeoutMs);
  }

  /** Drops the connection. */
  destroy(): void {
    this.#socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Whether `buf` holds a flush-pkt (or an ERR line) after zero or more whole data lines. */
export function hasFlushOrErr(buf: Buffer): boolean {
  const { lines, malformed } = parsePktLines(buf);
  if (malformed) return true;
  return lines.some((l) => l.kind === 'flush' || (l.kind === 'data' && l.payload.subarray(0, 4).toString('latin1') === 'ERR '));
}

/** Offset just past the first flush-pkt in `buf` (its length if there is none). */
export function afterFirstFlush(buf: Buffer): number {
  let at = 0;
  while (at + 4 <= buf.length) {
    const len = parseInt(buf.toString('latin1', at, at + 4), 16);
    if (Number.isNaN(len) || (len > 0 && len < 4)) return buf.length;
    if (len === 0) return at + 4;
    at += len;
  }
  return buf.length;
}

/** The git:// request line: `<service> <path>\0host=<host>\0[\0<extra>\0...]`. */
export function daemonRequest(service: string, path: string, host: string, extra: readonly string[] = []): Buffer {
  const tail = extra.length > 0 ? `\0${extra.map((e) => `${e}\0`).join('')}` : '';
  return pkt(`${service} ${path}\0host=${host}\0${tail}`);
}

/** A finished HTTP exchange. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** One HTTP/1.1 request with the path sent exactly as given (no URL normalisation). */
export function httpExchange(opts: {
  host: string;
  port: number;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  timeoutMs?: number;
}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw(
      {
        host: opts.host,
        port: opts.port,
        method: opts.method,
        path: opts.path,
        headers: { ...(opts.body === undefined ? {} : { 'content-length': String(opts.body.length) }), ...opts.headers },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTP ${opts.method} ${opts.path} timed out`)));
    req.on('error', reject);
    req.end(opts.body === undefined ? undefined : Buffer.from(opts.body));
  });
}

/** Ref advertisement of receive-pack v0: refs (name -> id) and the first line's capabilities. */
export interface Advertisement {
  readonly refs: ReadonlyMap<string, string>;
  readonly caps: readonly string[];
  /** ERR text if the server refused instead of advertising. */
  readonly err?: string;
  readonly raw: Buffer;
}

/** Parses a v0 advertisement (HTTP's `# service=` preamble skipped). */
export function parseAdvertisement(raw: Buffer): Advertisement {
  const refs = new Map<string, string>();
  let caps: string[] = [];
  let first = true;
  for (const line of parsePktLines(raw).lines) {
    if (line.kind !== 'data') {
      if (!first) break;
      continue;
    }
    const text = line.payload.toString('utf8').replace(/\n$/, '');
    if (text.startsWith('# service=')) continue;
    if (text.startsWith('ERR ')) return { refs, caps, err: text.slice(4), raw };
    let refPart = text;
    if (first) {
      const nul = text.indexOf('\0');
      if (nul >= 0) {
        caps = text.slice(nul + 1).split(' ').filter((c) => c.length > 0);
        refPart = text.slice(0, nul);
      }
      first = false;
    }
    const [id, name] = refPart.split(' ');
    if (id !== undefined && name !== undefined && name !== 'capabilities^{}') refs.set(name, id);
  }
  return { refs, caps, raw };
}
