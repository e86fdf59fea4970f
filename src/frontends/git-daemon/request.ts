/**
 * The git:// request line (gitprotocol-pack "Git Transport", git's daemon.c), extended with
 * turnip's named parameters (seed 001):
 *
 *   request = service SP path NUL *( named-param NUL ) [ NUL *( extra-param NUL ) ]
 *
 * Named parameters (git sends only `host=`) are known ones only: git's daemon dies with
 * "Invalid request" on anything else there, and so do we, with an ERR line. Extra parameters
 * (after the empty field) are git's `key[=value]` list: `version=N` picks the protocol and,
 * as gitprotocol-pack requires, other keys are ignored. Every field is checked for control
 * bytes (a NUL or LF smuggled into a field could splice in more fields: CVE-2021-40330) and
 * the number of fields is bounded by DAEMON_PARAMS_MAX.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { DAEMON_PARAMS_MAX } from '../../core/limits.js';
import type { GitServiceName, ProtocolVersion } from '../../service/git-service.js';

/** A parsed git:// request. */
export interface DaemonRequest {
  readonly service: GitServiceName;
  /** Repository path without the leading `/`, as the client named it (`team/app.git`). */
  readonly repoName: string;
  /** The `host=` parameter (virtual hosting), if sent. */
  readonly host?: string;
  readonly protocolVersion: ProtocolVersion;
  /** turnip-stateless-rpc=yes: one request/response round, as smart HTTP does. */
  readonly statelessRpc: boolean;
  /** turnip-advertise-refs=yes: advertise and stop, as smart HTTP's info/refs does. */
  readonly advertiseRefs: boolean;
  /** Extra parameters as sent (`version=2`, …), for logs. */
  readonly extraParams: readonly string[];
}

const SERVICES: ReadonlySet<string> = new Set<GitServiceName>(['git-upload-pack', 'git-receive-pack', 'git-upload-archive']);

/** Named parameters we understand; turnip's flags take `yes` (also `1`/`true`). */
const NAMED_PARAMS: ReadonlySet<string> = new Set(['host', 'turnip-stateless-rpc', 'turnip-advertise-refs']);

/** Longest host parameter: a DNS name (253) plus `:port` and brackets, with slack. */
const HOST_PARAM_MAX = 300;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Index of the first byte in 0x01-0x1f or 0x7f, or -1 (NUL is the field separator, handled by the caller). */
function controlByteAt(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if ((b < 0x20 && b !== 0) || b === 0x7f) return i;
  }
  return -1;
}

function decodeField(bytes: Uint8Array, what: string): string {
  if (controlByteAt(bytes) >= 0) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `invalid request: control character in the ${what}`);
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtocolError('PROTO_BAD_REQUEST', `invalid request: the ${what} is not valid UTF-8`);
  }
}

/** Splits on NUL; a final NUL terminator does not make an extra empty field. */
function splitNul(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (;;) {
    const nul = bytes.indexOf(0, start);
    if (nul < 0) {
      if (start < bytes.length) out.push(bytes.subarray(start));
      return out;
    }
    out.push(bytes.subarray(start, nul));
    start = nul + 1;
  }
}

function flagValue(name: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === 'yes' || v === '1' || v === 'true') return true;
  if (v === 'no' || v === '0' || v === 'false') return false;
  throw new ProtocolError('PROTO_BAD_REQUEST', `invalid request: parameter ${name} must be yes or no`);
}

/**
 * The protocol version from extra parameters (`version=N`): as git's
 * determine_protocol_version_server, the greatest recognised value wins and unknown values
 * are ignored; none means version 0.
 */
export function protocolVersionFromParams(params: Iterable<string>): ProtocolVersion {
  let version: ProtocolVersion = 0;
  for (const p of params) {
    if (!p.startsWith('version=')) continue;
    const v = p.slice('version='.length);
    if ((v === '1' || v === '2') && Number(v) > version) version = Number(v) as ProtocolVersion;
  }
  return version;
}

/**
 * Splits a `Git-Protocol` header (extra parameters joined by `:`, gitprotocol-http), bounded in
 * count and refusing control bytes.
 */
export function parseGitProtocolHeader(value: string): string[] {
  if (value === '') return [];
  const params = value.split(':').filter((p) => p !== '');
  if (params.length > DAEMON_PARAMS_MAX) {
    throw new LimitError('LIMIT_EXCEEDED', `too many Git-Protocol parameters (${params.length}; at most ${DAEMON_PARAMS_MAX})`);
  }
  if (controlByteAt(Buffer.from(value, 'utf8')) >= 0) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'invalid Git-Protocol header: control character');
  }
  return params;
}

/**
 * Parses the payload of the first pkt-line of a git:// connection. Throws
 * ProtocolError('PROTO_BAD_REQUEST' | 'PROTO_UNKNOWN_PARAM') or LimitError('LIMIT_EXCEEDED').
 */
export function parseDaemonRequest(payload: Uint8Array): DaemonRequest {
  const nul = payload.indexOf(0);
  let head = nul < 0 ? payload : payload.subarray(0, nul);
  // daemon.c strips one trailing LF from the command part.
  if (head.length > 0 && head[head.length - 1] === 0x0a) head = head.subarray(0, head.length - 1);
  const command = decodeField(head, 'command');
  const sp = command.indexOf(' ');
  const service = sp < 0 ? command : command.slice(0, sp);
  if (!SERVICES.has(service)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `invalid request: unknown service ${JSON.stringify(service.slice(0, 40))}`);
  }
  const path = sp < 0 ? '' : command.slice(sp + 1);
  if (!path.startsWith('/') || path.length < 2) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'invalid request: expected an absolute repository path such as /project.git');
  }

  const fields = nul < 0 ? [] : splitNul(payload.subarray(nul + 1));
  // Bounds work and memory for a peer that packs thousands of tiny fields into one line.
  if (fields.length > DAEMON_PARAMS_MAX) {
    throw new LimitError('LIMIT_EXCEEDED', `invalid request: too many parameters (${fields.length}; at most ${DAEMON_PARAMS_MAX})`);
  }
  const named = new Map<string, string>();
  const extra: string[] = [];
  let inExtra = false;
  for (const field of fields) {
    if (field.length === 0) {
      inExtra = true;
      continue;
    }
    if (inExtra) {
      extra.push(decodeField(field, 'extra parameter'));
      continue;
    }
    const text = decodeField(field, 'parameter');
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    if (eq <= 0 || !NAMED_PARAMS.has(name)) {
      throw new ProtocolError('PROTO_UNKNOWN_PARAM', `invalid request: unknown parameter ${JSON.stringify(name.slice(0, 64))}`);
    }
    if (named.has(name)) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid request: parameter ${name} given twice`);
    named.set(name, text.slice(eq + 1));
  }

  const host = named.get('host');
  if (host !== undefined && host.length > HOST_PARAM_MAX) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'invalid request: host parameter too long');
  }
  const stateless = named.get('turnip-stateless-rpc');
  const advertise = named.get('turnip-advertise-refs');
  return {
    service: service as GitServiceName,
    repoName: path.slice(1),
    ...(host === undefined || host === '' ? {} : { host }),
    protocolVersion: protocolVersionFromParams(extra),
    statelessRpc: stateless === undefined ? false : flagValue('turnip-stateless-rpc', stateless),
    advertiseRefs: advertise === undefined ? false : flagValue('turnip-advertise-refs', advertise),
    extraParams: extra,
  };
}
