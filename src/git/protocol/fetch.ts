/**
 * The v2 `fetch` command (gitprotocol-v2 "fetch"): its arguments and the sections of its
 * response (acknowledgments, shallow-info, wanted-refs, packfile), separated by delim-pkts.
 */
import { ProtocolError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { pktLineText } from '../pktline/encode.js';
import { decodeSidebandPayload } from '../pktline/sideband.js';
import { expectOid, quoteLine } from './lines.js';
import { parseDeepenNot, parseDeepenSince, parseDepth, parseFilterSpec } from './upload-request.js';
import { parseShallowLines, type ShallowLines } from './upload-response.js';
import { checkRefName } from '../refname/check.js';

/** Optional fetch features the server advertised; arguments of others are refused. */
export interface FetchFeatures {
  readonly shallow: boolean;
  readonly filter: boolean;
  readonly refInWant: boolean;
  readonly waitForDone: boolean;
}

/** Parsed fetch arguments. */
export interface FetchArgs {
  readonly wants: readonly ObjectId[];
  readonly wantRefs: readonly string[];
  readonly haves: readonly ObjectId[];
  readonly done: boolean;
  readonly thinPack: boolean;
  readonly noProgress: boolean;
  readonly includeTag: boolean;
  readonly ofsDelta: boolean;
  readonly shallows: readonly ObjectId[];
  readonly depth?: number;
  readonly deepenRelative: boolean;
  readonly deepenSince?: number;
  readonly deepenNot: readonly string[];
  readonly filter?: string;
  readonly waitForDone: boolean;
}

/**
 * Parses fetch arguments (the caller bounds the line count). Throws
 * ProtocolError('PROTO_UNKNOWN_PARAM') for an unknown or unadvertised argument and
 * ProtocolError('PROTO_BAD_REQUEST' / 'PROTO_BAD_WANT') for malformed ones.
 */
export function parseFetchArgs(lines: readonly Uint8Array[], features: FetchFeatures): FetchArgs {
  const wants: ObjectId[] = [];
  const seenWants = new Set<ObjectId>();
  const wantRefs: string[] = [];
  const haves: ObjectId[] = [];
  const shallows: ObjectId[] = [];
  const seenShallows = new Set<ObjectId>();
  const deepenNot: string[] = [];
  const flags = { done: false, thinPack: false, noProgress: false, includeTag: false, ofsDelta: false, deepenRelative: false, waitForDone: false };
  let depth: number | undefined;
  let deepenSince: number | undefined;
  let filter: string | undefined;
  for (const payload of lines) {
    const line = pktLineText(payload);
    const sp = line.indexOf(' ');
    const key = sp < 0 ? line : line.slice(0, sp);
    const arg = sp < 0 ? undefined : line.slice(sp + 1);
    const shallowArg = features.shallow;
    if (key === 'want' && arg !== undefined) {
      const oid = expectOid(arg, 'want line', 'PROTO_BAD_WANT');
      if (!seenWants.has(oid)) {
        seenWants.add(oid);
        wants.push(oid);
      }
    } else if (key === 'have' && arg !== undefined) {
      haves.push(expectOid(arg, 'have line'));
    } else if (key === 'want-ref' && arg !== undefined && features.refInWant) {
      const name = checkRefName(arg, { allowOneLevel: true }) as string;
      if (wantRefs.includes(name)) throw new ProtocolError('PROTO_BAD_REQUEST', `duplicate want-ref ${name}`);
      wantRefs.push(name);
    } else if (line === 'done') flags.done = true;
    else if (line === 'thin-pack') flags.thinPack = true;
    else if (line === 'no-progress') flags.noProgress = true;
    else if (line === 'include-tag') flags.includeTag = true;
    else if (line === 'ofs-delta') flags.ofsDelta = true;
    else if (line === 'wait-for-done' && features.waitForDone) flags.waitForDone = true;
    else if (line === 'deepen-relative' && shallowArg) flags.deepenRelative = true;
    else if (key === 'shallow' && arg !== undefined && shallowArg) {
      const oid = expectOid(arg, 'shallow line');
      if (!seenShallows.has(oid)) {
        seenShallows.add(oid);
        shallows.push(oid);
      }
    } else if (key === 'deepen' && arg !== undefined && shallowArg) depth = parseDepth(arg, line);
    else if (key === 'deepen-since' && arg !== undefined && shallowArg) deepenSince = parseDeepenSince(arg, line);
    else if (key === 'deepen-not' && arg !== undefined && shallowArg) deepenNot.push(parseDeepenNot(arg, line));
    else if (key === 'filter' && arg !== undefined && features.filter) {
      if (filter !== undefined) throw new ProtocolError('PROTO_BAD_REQUEST', 'more than one filter line');
      filter = parseFilterSpec(arg, line);
    } else throw new ProtocolError('PROTO_UNKNOWN_PARAM', `fetch: unexpected line ${quoteLine(line)}`);
  }
  if (depth !== undefined && (deepenSince !== undefined || deepenNot.length > 0)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'deepen and deepen-since (or deepen-not) cannot be used together');
  }
  return {
    wants,
    wantRefs,
    haves,
    ...flags,
    shallows,
    ...(depth === undefined ? {} : { depth }),
    ...(deepenSince === undefined ? {} : { deepenSince }),
    deepenNot,
    ...(filter === undefined ? {} : { filter }),
  };
}

/** Formats fetch arguments as a client sends them (no delim/flush). */
export function formatFetchArgs(a: FetchArgs): string[] {
  const out: string[] = [];
  if (a.thinPack) out.push('thin-pack');
  if (a.noProgress) out.push('no-progress');
  if (a.includeTag) out.push('include-tag');
  if (a.ofsDelta) out.push('ofs-delta');
  for (const s of a.shallows) out.push(`shallow ${s}`);
  if (a.depth !== undefined) out.push(`deepen ${a.depth}`);
  if (a.deepenRelative) out.push('deepen-relative');
  if (a.deepenSince !== undefined) out.push(`deepen-since ${a.deepenSince}`);
  for (const n of a.deepenNot) out.push(`deepen-not ${n}`);
  if (a.filter !== undefined) out.push(`filter ${a.filter}`);
  for (const w of a.wants) out.push(`want ${w}`);
  for (const r of a.wantRefs) out.push(`want-ref ${r}`);
  for (const h of a.haves) out.push(`have ${h}`);
  if (a.waitForDone) out.push('wait-for-done');
  if (a.done) out.push('done');
  return out;
}

/** Lines of the acknowledgments section: NAK when nothing is common, else one ACK each; then `ready`. */
export function formatAcknowledgments(acks: readonly ObjectId[], ready: boolean): string[] {
  const out = ['acknowledgments'];
  if (acks.length === 0) out.push('NAK');
  for (const a of acks) out.push(`ACK ${a}`);
  if (ready) out.push('ready');
  return out;
}

/** Lines of the shallow-info section. */
export function formatShallowInfo(update: ShallowLines): string[] {
  return ['shallow-info', ...update.shallow.map((o) => `shallow ${o}`), ...update.unshallow.map((o) => `unshallow ${o}`)];
}

/** A decoded fetch response (for clients and tests). */
export interface FetchResponse {
  readonly acknowledgments?: { readonly acks: readonly ObjectId[]; readonly nak: boolean; readonly ready: boolean };
  readonly shallowInfo?: ShallowLines;
  readonly wantedRefs?: readonly { readonly oid: ObjectId; readonly name: string }[];
  /** The demultiplexed packfile section. */
  readonly packfile?: { readonly data: Uint8Array; readonly progress: Uint8Array; readonly error: Uint8Array };
}

/** Decodes a complete fetch response; throws ProtocolError('PROTO_BAD_REQUEST') for a malformed one. */
export function decodeFetchResponse(input: Uint8Array): FetchResponse {
  const pkts = decodePktLines(input);
  const result: {
    acknowledgments?: { acks: ObjectId[]; nak: boolean; ready: boolean };
    shallowInfo?: ShallowLines;
    wantedRefs?: { oid: ObjectId; name: string }[];
    packfile?: { data: Uint8Array; progress: Uint8Array; error: Uint8Array };
  } = {};
  let i = 0;
  const bad = (msg: string): never => {
    throw new ProtocolError('PROTO_BAD_REQUEST', msg);
  };
  while (i < pkts.length) {
    const head = pkts[i++] as (typeof pkts)[number];
    if (head.kind !== 'data') bad(`expected a section header, got a ${head.kind} packet`);
    const name = pktLineText(head as { kind: 'data'; payload: Uint8Array });
    const body: Uint8Array[] = [];
    let end: string | undefined;
    while (i < pkts.length) {
      const p = pkts[i++] as (typeof pkts)[number];
      if (p.kind === 'data') body.push(p.payload);
      else {
        end = p.kind;
        break;
      }
    }
    if (end !== 'flush' && end !== 'delim') bad(`section ${quoteLine(name)} does not end with a flush or delim`);
    if (name === 'acknowledgments' && result.acknowledgments === undefined && result.packfile === undefined) {
      const acks: ObjectId[] = [];
      let nak = false;
      let ready = false;
      for (const b of body) {
        const t = pktLineText(b);
        if (t === 'NAK') nak = true;
        else if (t === 'ready') ready = true;
        else if (t.startsWith('ACK ')) acks.push(expectOid(t.slice(4), 'ACK line'));
        else bad(`unexpected acknowledgment ${quoteLine(t)}`);
      }
      result.acknowledgments = { acks, nak, ready };
    } else if (name === 'shallow-info' && result.shallowInfo === undefined) {
      result.shallowInfo = parseShallowLines(body);
    } else if (name === 'wanted-refs' && result.wantedRefs === undefined) {
      result.wantedRefs = body.map((b) => {
        const t = pktLineText(b);
        const sp = t.indexOf(' ');
        if (sp < 0) bad(`malformed wanted-ref ${quoteLine(t)}`);
        return { oid: expectOid(t.slice(0, sp), 'wanted-ref'), name: t.slice(sp + 1) };
      });
    } else if (name === 'packfile' && result.packfile === undefined) {
      const parts: Uint8Array[][] = [[], [], []];
      for (const b of body) {
        const { band, data } = decodeSidebandPayload(b);
        (parts[band - 1] as Uint8Array[]).push(data);
      }
      const [d, p, e] = parts.map((x) => Buffer.concat(x)) as [Buffer, Buffer, Buffer];
      result.packfile = { data: d, progress: p, error: e };
    } else bad(`unexpected section ${quoteLine(name)}`);
    if (end === 'flush' && i !== pkts.length) bad('data after the end of the fetch response');
    if (end === 'flush') break;
  }
  return result;
}
