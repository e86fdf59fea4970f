/**
 * The v0/v1 fetch request (gitprotocol-pack "Packfile Negotiation"): want lines (capabilities
 * after the first id), shallow lines, one depth request (deepen, deepen-since, deepen-not),
 * an optional filter, then a flush; afterwards have lines ending in a flush or `done`.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { FETCH_LINES_MAX, REF_NAME_MAX } from '../../core/limits.js';
import type { ObjectId } from '../hash/object-id.js';
import { pktLineText } from '../pktline/encode.js';
import { formatCapabilityList, parseCapabilityList, type Capability } from './capabilities.js';
import { FLUSH, expectOid, frameLines, quoteLine, type OutLine } from './lines.js';

/** The want section of a v0/v1 fetch. */
export interface UploadRequest {
  /** In the order sent, duplicates removed. */
  readonly wants: readonly ObjectId[];
  /** Capabilities the client asked for (from the want lines). */
  readonly capabilities: readonly Capability[];
  /** Commits the client has without their parents. */
  readonly shallows: readonly ObjectId[];
  /** `deepen N` (N > 0). */
  readonly depth?: number;
  /** `deepen-since T`, seconds since the epoch. */
  readonly deepenSince?: number;
  /** `deepen-not <ref>` names, unresolved. */
  readonly deepenNot: readonly string[];
  /** `filter <spec>`, unparsed. */
  readonly filter?: string;
}

/** Largest depth accepted: git parses it into an int (INFINITE_DEPTH is 0x7fffffff). */
export const DEPTH_MAX = 0x7fffffff;
/** Largest deepen-since accepted: 2^53-1 keeps the value exact in a JS number. */
const SINCE_MAX = Number.MAX_SAFE_INTEGER;
/** Longest filter spec accepted. */
export const FILTER_SPEC_MAX = 4096;

/** Parses `deepen <n>` arguments as git's process_deepen: a positive decimal integer. */
export function parseDepth(arg: string, line: string): number {
  if (!/^[0-9]{1,10}$/.test(arg)) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid deepen: ${quoteLine(line)}`);
  const n = Number(arg);
  if (n <= 0 || n > DEPTH_MAX) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid deepen: ${quoteLine(line)}`);
  return n;
}

/** Parses `deepen-since <t>` arguments: a positive decimal timestamp. */
export function parseDeepenSince(arg: string, line: string): number {
  if (!/^[0-9]{1,16}$/.test(arg)) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid deepen-since: ${quoteLine(line)}`);
  const n = Number(arg);
  if (n <= 0 || n > SINCE_MAX) throw new ProtocolError('PROTO_BAD_REQUEST', `invalid deepen-since: ${quoteLine(line)}`);
  return n;
}

/** Checks a `deepen-not` argument (a ref name or abbreviation, resolved by the server). */
export function parseDeepenNot(arg: string, line: string): string {
  if (arg.length === 0 || arg.length > REF_NAME_MAX || /[\0\n ]/.test(arg)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `invalid deepen-not: ${quoteLine(line)}`);
  }
  return arg;
}

/** Checks a `filter` argument. */
export function parseFilterSpec(arg: string, line: string): string {
  if (arg.length === 0 || arg.length > FILTER_SPEC_MAX || /[\0\n]/.test(arg)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `invalid filter: ${quoteLine(line)}`);
  }
  return arg;
}

/**
 * Parses the data lines of the want section (the caller reads them up to the flush, bounded by
 * FETCH_LINES_MAX). Lines may come in any order, as git's receive_needs accepts them. Throws
 * ProtocolError('PROTO_BAD_REQUEST' / 'PROTO_BAD_WANT') for malformed lines, duplicate filters,
 * or deepen combined with deepen-since/deepen-not; LimitError past FETCH_LINES_MAX.
 */
export function parseUploadRequest(lines: readonly Uint8Array[]): UploadRequest {
  if (lines.length > FETCH_LINES_MAX) {
    throw new LimitError('LIMIT_EXCEEDED', `fetch request has ${lines.length} lines; at most ${FETCH_LINES_MAX} are accepted`);
  }
  const wants: ObjectId[] = [];
  const seenWants = new Set<ObjectId>();
  const capabilities: Capability[] = [];
  const shallows: ObjectId[] = [];
  const seenShallows = new Set<ObjectId>();
  const deepenNot: string[] = [];
  let depth: number | undefined;
  let deepenSince: number | undefined;
  let filter: string | undefined;
  for (const payload of lines) {
    const line = pktLineText(payload);
    if (line.startsWith('want ')) {
      const rest = line.slice(5);
      const sp = rest.indexOf(' ');
      const oid = expectOid(sp < 0 ? rest : rest.slice(0, sp), 'want line', 'PROTO_BAD_WANT');
      if (sp >= 0) capabilities.push(...parseCapabilityList(rest.slice(sp + 1)));
      if (!seenWants.has(oid)) {
        seenWants.add(oid);
        wants.push(oid);
      }
    } else if (line.startsWith('shallow ')) {
      const oid = expectOid(line.slice(8), 'shallow line');
      if (!seenShallows.has(oid)) {
        seenShallows.add(oid);
        shallows.push(oid);
      }
    } else if (line.startsWith('deepen ')) {
      depth = parseDepth(line.slice(7), line);
    } else if (line.startsWith('deepen-since ')) {
      deepenSince = parseDeepenSince(line.slice(13), line);
    } else if (line.startsWith('deepen-not ')) {
      deepenNot.push(parseDeepenNot(line.slice(11), line));
    } else if (line.startsWith('filter ')) {
      if (filter !== undefined) throw new ProtocolError('PROTO_BAD_REQUEST', 'more than one filter line');
      filter = parseFilterSpec(line.slice(7), line);
    } else {
      throw new ProtocolError('PROTO_BAD_WANT', `protocol error: expected a want line, got ${quoteLine(line)}`);
    }
  }
  if (depth !== undefined && (deepenSince !== undefined || deepenNot.length > 0)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'deepen and deepen-since (or deepen-not) cannot be used together');
  }
  return {
    wants,
    capabilities,
    shallows,
    ...(depth === undefined ? {} : { depth }),
    ...(deepenSince === undefined ? {} : { deepenSince }),
    deepenNot,
    ...(filter === undefined ? {} : { filter }),
  };
}

/** Encodes a want section as a client sends it (capabilities on the first want), flush included. */
export function encodeUploadRequest(req: UploadRequest): Uint8Array {
  const lines: OutLine[] = [];
  const caps = formatCapabilityList(req.capabilities);
  req.wants.forEach((w, i) => lines.push(i === 0 && caps.length > 0 ? `want ${w} ${caps}` : `want ${w}`));
  for (const s of req.shallows) lines.push(`shallow ${s}`);
  if (req.depth !== undefined) lines.push(`deepen ${req.depth}`);
  if (req.deepenSince !== undefined) lines.push(`deepen-since ${req.deepenSince}`);
  for (const n of req.deepenNot) lines.push(`deepen-not ${n}`);
  if (req.filter !== undefined) lines.push(`filter ${req.filter}`);
  lines.push(FLUSH);
  return frameLines(lines);
}

/** One line of the have phase. A flush is handled by the caller. */
export type NegotiationLine = { readonly kind: 'have'; readonly oid: ObjectId } | { readonly kind: 'done' };

/** Parses a have-phase line; throws ProtocolError('PROTO_BAD_REQUEST') for anything else (git: "expected SHA1 list"). */
export function parseNegotiationLine(payload: Uint8Array): NegotiationLine {
  const line = pktLineText(payload);
  if (line.startsWith('have ')) return { kind: 'have', oid: expectOid(line.slice(5), 'have line') };
  if (line === 'done') return { kind: 'done' };
  throw new ProtocolError('PROTO_BAD_REQUEST', `expected have lines or done, got ${quoteLine(line)}`);
}

/** Encodes have lines followed by `done` or a flush (as a client sends a round). */
export function encodeHaves(haves: readonly ObjectId[], end: 'flush' | 'done'): Uint8Array {
  const lines: OutLine[] = haves.map((h) => `have ${h}`);
  lines.push(end === 'done' ? 'done' : FLUSH);
  return frameLines(lines);
}
