/**
 * Protocol v2 framing (gitprotocol-v2): the capability advertisement (`version 2`, one
 * `key[=value]` per line, flush) and a command request (`command=<key>`, capability lines,
 * delim, command arguments, flush).
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { decodePktLines } from '../pktline/decode.js';
import { pktLineText } from '../pktline/encode.js';
import type { Capability } from './capabilities.js';
import { DELIM, FLUSH, frameLines, quoteLine, type OutLine } from './lines.js';

/** Most capability lines in one request; git clients send a handful. */
export const V2_CAPABILITY_LINES_MAX = 256;

const KEY_RE = /^[A-Za-z0-9_-]+$/;
/** gitprotocol-v2 allows letters, digits, space and most punctuation in values: printable ASCII. */
const VALUE_RE = /^[\x20-\x7e]+$/;

/** Parses one `key[=value]` line of the v2 grammar; throws ProtocolError('PROTO_BAD_REQUEST'). */
export function parseV2Capability(line: string): Capability {
  const eq = line.indexOf('=');
  const key = eq < 0 ? line : line.slice(0, eq);
  if (!KEY_RE.test(key)) throw new ProtocolError('PROTO_BAD_REQUEST', `malformed capability ${quoteLine(line)}`);
  if (eq < 0) return { name: key };
  const value = line.slice(eq + 1);
  if (!VALUE_RE.test(value)) throw new ProtocolError('PROTO_BAD_REQUEST', `malformed value in capability ${quoteLine(line)}`);
  return { name: key, value };
}

/** Formats one v2 capability line; throws ProtocolError('PROTO_BAD_REQUEST') if it would not parse back. */
export function formatV2Capability(cap: Capability): string {
  const text = cap.value === undefined ? cap.name : `${cap.name}=${cap.value}`;
  const back = parseV2Capability(text);
  if (back.name !== cap.name) throw new ProtocolError('PROTO_BAD_REQUEST', `malformed capability ${quoteLine(text)}`);
  return text;
}

/** Encodes `version 2`, the capabilities and a flush. */
export function encodeV2Advertisement(caps: readonly Capability[]): Uint8Array {
  return frameLines(['version 2', ...caps.map(formatV2Capability), FLUSH]);
}

/** Decodes a complete v2 capability advertisement; throws ProtocolError('PROTO_BAD_REQUEST'). */
export function decodeV2Advertisement(input: Uint8Array): Capability[] {
  const pkts = decodePktLines(input);
  const first = pkts[0];
  if (first === undefined || first.kind !== 'data' || pktLineText(first) !== 'version 2') {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'a v2 advertisement starts with "version 2"');
  }
  const caps: Capability[] = [];
  for (let i = 1; i < pkts.length; i++) {
    const p = pkts[i] as (typeof pkts)[number];
    if (p.kind === 'flush') {
      if (i !== pkts.length - 1) throw new ProtocolError('PROTO_BAD_REQUEST', 'data after the v2 advertisement');
      return caps;
    }
    if (p.kind !== 'data') throw new ProtocolError('PROTO_BAD_REQUEST', `unexpected ${p.kind} packet in a v2 advertisement`);
    caps.push(parseV2Capability(pktLineText(p)));
  }
  throw new ProtocolError('PROTO_BAD_REQUEST', 'v2 advertisement does not end with a flush packet');
}

/** A v2 command request. */
export interface V2Request {
  readonly command: string;
  /** Capability lines of the request (agent=, object-format=, server-option=, …). */
  readonly capabilities: readonly Capability[];
  /** Command arguments, raw (each command parses its own). */
  readonly args: readonly Uint8Array[];
}

/**
 * Parses a request from its capability section and, when a delim followed it, its argument
 * section. Throws ProtocolError('PROTO_BAD_REQUEST') for a missing or repeated command and
 * LimitError past V2_CAPABILITY_LINES_MAX capability lines.
 */
export function parseV2Request(preamble: readonly Uint8Array[], args: readonly Uint8Array[]): V2Request {
  if (preamble.length > V2_CAPABILITY_LINES_MAX) {
    throw new LimitError('LIMIT_EXCEEDED', `more than ${V2_CAPABILITY_LINES_MAX} capability lines in a request`);
  }
  let command: string | undefined;
  const capabilities: Capability[] = [];
  for (const payload of preamble) {
    const line = pktLineText(payload);
    if (line.startsWith('command=')) {
      const name = line.slice(8);
      if (command !== undefined) {
        throw new ProtocolError('PROTO_BAD_REQUEST', `command ${quoteLine(name)} requested after already requesting command ${quoteLine(command)}`);
      }
      if (!KEY_RE.test(name)) throw new ProtocolError('PROTO_UNKNOWN_COMMAND', `invalid command ${quoteLine(name)}`);
      command = name;
      continue;
    }
    capabilities.push(parseV2Capability(line));
  }
  if (command === undefined) throw new ProtocolError('PROTO_BAD_REQUEST', 'no command requested');
  return { command, capabilities, args };
}

/** Encodes a request as git's client sends it: always a delim, even with no arguments. */
export function encodeV2Request(req: V2Request): Uint8Array {
  const lines: OutLine[] = [`command=${req.command}`, ...req.capabilities.map(formatV2Capability), DELIM, ...req.args, FLUSH];
  return frameLines(lines);
}
