/**
 * A receive-pack client that sends exactly the bytes a test builds, over git:// or smart HTTP,
 * and reads back what the server answered (report-status, ERR, HTTP status, side-band 3).
 */
import type { Frontend, StowageServer } from './server.js';
import { FLUSH, RawConnection, afterFirstFlush, daemonRequest, hasFlushOrErr, httpExchange, parseAdvertisement, parsePktLines, pkt, type Advertisement } from './wire.js';

/** The all-zero id: "no such ref" in a command. */
export const ZERO_ID = '0'.repeat(40);

/** What a raw push saw. */
export interface RawPushResult {
  readonly advert: Advertisement;
  /** HTTP status of the POST (undefined over git://, or when the advertisement failed). */
  readonly status?: number;
  /** Bytes answered after the advertisement. */
  readonly response: Buffer;
  /** The server did not answer or close within the time limit. */
  readonly timedOut: boolean;
  /** A socket error while talking (e.g. reset by peer). */
  readonly socketError?: string;
}

/** The request body of a push: commands (first with capabilities), flush, then the pack. */
export function pushRequest(commands: readonly string[], caps: readonly string[], pack?: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  commands.forEach((cmd, i) => parts.push(pkt(i === 0 && caps.length > 0 ? `${cmd}\0${caps.join(' ')}` : `${cmd}\n`)));
  parts.push(FLUSH);
  if (pack !== undefined) parts.push(Buffer.from(pack));
  return Buffer.concat(parts);
}

/** Capabilities to ask for: those of `wanted` the server advertised, plus an agent if it sent one. */
export function pickCaps(advert: Advertisement, wanted: readonly string[]): string[] {
  const agent = advert.caps.some((c) => c.startsWith('agent=')) ? ['agent=stowage-e2e/1'] : [];
  return [...wanted.filter((c) => advert.caps.includes(c)), ...agent];
}

/**
 * Opens receive-pack on a repository, lets `body` build the request from the advertisement
 * (return undefined to send nothing), sends it, and collects the answer. Over git:// the
 * request is followed by a half-close unless `halfClose` is false.
 */
export async function rawPush(
  server: StowageServer,
  frontend: Frontend,
  repoPath: string,
  body: (advert: Advertisement) => Uint8Array | undefined,
  timeoutMs = 30_000,
  halfClose = true,
): Promise<RawPushResult> {
  const { host, port } = server.address(frontend);
  if (frontend === 'git') {
    const conn = await RawConnection.open(host, port);
    try {
      await conn.write(daemonRequest('git-receive-pack', repoPath, `${host}:${port}`));
      const gotAdvert = await conn.waitFor(hasFlushOrErr, timeoutMs);
      const end = afterFirstFlush(conn.received);
      const advert = parseAdvertisement(conn.received.subarray(0, end));
      if (!gotAdvert) return { advert, response: Buffer.alloc(0), timedOut: true };
      const request = advert.err === undefined ? body(advert) : undefined;
      if (request !== undefined) await conn.write(request);
      // half-close (EOF) tells the server the request is complete, as a truncated pack needs;
      // without it the server has to answer from what it has already read
      if (halfClose) conn.end();
      const closed = await conn.waitClosed(timeoutMs);
      return {
        advert,
        response: Buffer.from(conn.received.subarray(end)),
        timedOut: !closed,
        ...(conn.error === undefined ? {} : { socketError: conn.error.message }),
      };
    } finally {
      conn.destroy();
    }
  }
  const path = repoPath.startsWith('/') ? repoPath : `/${repoPath}`;
  const info = await httpExchange({ host, port, method: 'GET', path: `${path}/info/refs?service=git-receive-pack`, timeoutMs });
  if (info.status !== 200) {
    return {
      advert: { refs: new Map(), caps: [], err: `HTTP ${info.status}: ${info.body.toString('utf8')}`, raw: info.body },
      status: info.status,
      response: info.body,
      timedOut: false,
    };
  }
  const advert = parseAdvertisement(info.body);
  const request = advert.err === undefined ? body(advert) : undefined;
  if (request === undefined) return { advert, response: Buffer.alloc(0), timedOut: false };
  try {
    const answer = await httpExchange({
      host,
      port,
      method: 'POST',
      path: `${path}/git-receive-pack`,
      headers: { 'content-type': 'application/x-git-receive-pack-request', accept: 'application/x-git-receive-pack-result' },
      body: request,
      timeoutMs,
    });
    return { advert, status: answer.status, response: answer.body, timedOut: false };
  } catch (err) {
    return { advert, response: Buffer.alloc(0), timedOut: /timed out/.test((err as Error).message), socketError: (err as Error).message };
  }
}

/** What a receive-pack answer said, side-band demultiplexed. */
export interface PushReport {
  /** `unpack` status text ('ok' or the error), if reported. */
  readonly unpack?: string;
  /** Per ref: 'ok' or the ng reason. */
  readonly refs: ReadonlyMap<string, string>;
  /** ERR lines, side-band 3 messages, HTTP error bodies. */
  readonly errors: readonly string[];
  /** Side-band 2 progress and other text. */
  readonly other: readonly string[];
}

/** Reads a receive-pack answer (report-status, possibly inside side-band 1). */
export function readReport(result: RawPushResult): PushReport {
  const refs = new Map<string, string>();
  const errors: string[] = [];
  const other: string[] = [];
  let unpack: string | undefined;
  if (result.advert.err !== undefined) errors.push(result.advert.err);
  if (result.status !== undefined && result.status >= 400) errors.push(`HTTP ${result.status}: ${result.response.toString('utf8').trim()}`);
  const visit = (buf: Buffer, depth: number): void => {
    const parsed = parsePktLines(buf);
    for (const line of parsed.lines) {
      if (line.kind !== 'data') continue;
      const band = line.payload[0];
      if (depth === 0 && (band === 1 || band === 2 || band === 3)) {
        const inner = line.payload.subarray(1);
        if (band === 1) visit(inner, 1);
        else if (band === 3) errors.push(inner.toString('utf8').trim());
        else other.push(inner.toString('utf8').trim());
        continue;
      }
      const text = line.payload.toString('utf8').replace(/\n$/, '');
      if (text.startsWith('unpack ')) unpack = text.slice(7);
      else if (text.startsWith('ok ')) refs.set(text.slice(3), 'ok');
      else if (text.startsWith('ng ')) {
        const rest = text.slice(3);
        const sp = rest.indexOf(' ');
        refs.set(sp < 0 ? rest : rest.slice(0, sp), sp < 0 ? '' : rest.slice(sp + 1));
      } else if (text.startsWith('ERR ')) errors.push(text.slice(4));
      else other.push(text);
    }
    if (parsed.malformed && depth === 0 && (result.status === undefined || result.status < 400)) {
      other.push(`unparsed: ${parsed.rest.toString('utf8').slice(0, 200)}`);
    }
  };
  if (result.status === undefined || result.status < 400) visit(result.response, 0);
  return { ...(unpack === undefined ? {} : { unpack }), refs, errors, other };
}

/** The refusal text of a push answer, or undefined if the push was fully accepted. */
export function refusalText(report: PushReport): string | undefined {
  const parts: string[] = [...report.errors];
  if (report.unpack !== undefined && report.unpack !== 'ok') parts.push(`unpack ${report.unpack}`);
  for (const [ref, status] of report.refs) if (status !== 'ok') parts.push(`ng ${ref} ${status}`);
  if (parts.length > 0) return parts.join('; ');
  if (report.unpack === 'ok' && [...report.refs.values()].every((s) => s === 'ok') && report.refs.size > 0) return undefined;
  return '';
}
