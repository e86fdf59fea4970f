/**
 * The v0/v1 ref advertisement (gitprotocol-pack "Reference Discovery"): an optional
 * `version 1` line, then `<oid> <ref>\0<caps>` for the first ref, `<oid> <ref>` for the
 * others each followed by `<peeled> <ref>^{}` when it is an annotated tag, `shallow <oid>`
 * lines, and a flush. With no refs the first line is `<zero-id> capabilities^{}\0<caps>`.
 */
import { ProtocolError } from '../../core/errors.js';
import { ZERO_OID, type ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { pktLineText } from '../pktline/encode.js';
import { formatCapabilityList, parseCapabilityList, type Capability } from './capabilities.js';
import { FLUSH, checkWireRefName, expectOid, frameLines, quoteLine, type OutLine } from './lines.js';

/** One advertised ref. `peeled` is set for annotated tags (what the tag finally points at). */
export interface AdvertisedRef {
  readonly name: string;
  readonly oid: ObjectId;
  readonly peeled?: ObjectId;
}

/** A whole v0/v1 advertisement. */
export interface RefAdvertisement {
  /** 1 when a `version 1` line leads (the client asked for version=1). */
  readonly version: 0 | 1;
  /** In the order sent: HEAD first when present, then by name in C-locale order. */
  readonly refs: readonly AdvertisedRef[];
  readonly capabilities: readonly Capability[];
  readonly shallows: readonly ObjectId[];
}

/** The ref name that carries the capabilities of an empty repository. */
export const NO_REFS_NAME = 'capabilities^{}';

const PEELED_SUFFIX = '^{}';

/** Encodes the advertisement, flush included; throws ProtocolError for a ref name that cannot go on the wire. */
export function encodeRefAdvertisement(adv: RefAdvertisement): Uint8Array {
  const lines: OutLine[] = [];
  if (adv.version === 1) lines.push('version 1');
  const caps = formatCapabilityList(adv.capabilities);
  if (adv.refs.length === 0) {
    lines.push(`${ZERO_OID} ${NO_REFS_NAME}\0${caps}`);
  }
  let first = true;
  for (const ref of adv.refs) {
    checkWireRefName(ref.name);
    lines.push(first ? `${ref.oid} ${ref.name}\0${caps}` : `${ref.oid} ${ref.name}`);
    first = false;
    if (ref.peeled !== undefined) lines.push(`${ref.peeled} ${ref.name}${PEELED_SUFFIX}`);
  }
  for (const s of adv.shallows) lines.push(`shallow ${s}`);
  lines.push(FLUSH);
  return frameLines(lines);
}

/**
 * Decodes a complete advertisement (as a client would read it). Throws
 * ProtocolError('PROTO_BAD_REQUEST') for any line out of place and PKT_* errors for bad framing.
 */
export function decodeRefAdvertisement(input: Uint8Array): RefAdvertisement {
  const pkts = decodePktLines(input);
  let i = 0;
  let version: 0 | 1 = 0;
  const refs: { name: string; oid: ObjectId; peeled?: ObjectId }[] = [];
  let capabilities: Capability[] | undefined;
  let empty = false;
  const shallows: ObjectId[] = [];
  let flushed = false;
  for (; i < pkts.length; i++) {
    const pkt = pkts[i] as (typeof pkts)[number];
    if (pkt.kind === 'flush') {
      flushed = true;
      i++;
      break;
    }
    if (pkt.kind !== 'data') throw new ProtocolError('PROTO_BAD_REQUEST', `unexpected ${pkt.kind} packet in a ref advertisement`);
    const text = pktLineText(pkt);
    if (i === 0 && text === 'version 1') {
      version = 1;
      continue;
    }
    if (text.startsWith('shallow ')) {
      shallows.push(expectOid(text.slice(8), 'shallow line'));
      continue;
    }
    if (shallows.length > 0) throw new ProtocolError('PROTO_BAD_REQUEST', `ref line ${quoteLine(text)} after shallow lines`);
    let body = text;
    if (capabilities === undefined) {
      const nul = text.indexOf('\0');
      if (nul < 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'the first advertised ref carries no capabilities');
      body = text.slice(0, nul);
      capabilities = parseCapabilityList(text.slice(nul + 1));
    } else if (text.includes('\0')) {
      throw new ProtocolError('PROTO_BAD_REQUEST', 'capabilities after the first advertised ref');
    }
    const sp = body.indexOf(' ');
    if (sp < 0) throw new ProtocolError('PROTO_BAD_REQUEST', `malformed ref line ${quoteLine(body)}`);
    const oid = expectOid(body.slice(0, sp), 'ref line');
    const name = body.slice(sp + 1);
    if (empty) throw new ProtocolError('PROTO_BAD_REQUEST', `ref ${quoteLine(name)} after ${NO_REFS_NAME}`);
    if (name === NO_REFS_NAME && refs.length === 0) {
      if (oid !== ZERO_OID) throw new ProtocolError('PROTO_BAD_REQUEST', `${NO_REFS_NAME} with a non-zero id`);
      empty = true;
      continue;
    }
    if (name.endsWith(PEELED_SUFFIX)) {
      const last = refs[refs.length - 1];
      if (last === undefined || last.name !== name.slice(0, -PEELED_SUFFIX.length) || last.peeled !== undefined) {
        throw new ProtocolError('PROTO_BAD_REQUEST', `peeled line ${quoteLine(name)} does not follow its ref`);
      }
      last.peeled = oid;
      continue;
    }
    checkWireRefName(name);
    refs.push({ name, oid });
  }
  if (!flushed) throw new ProtocolError('PROTO_BAD_REQUEST', 'ref advertisement does not end with a flush packet');
  if (i !== pkts.length) throw new ProtocolError('PROTO_BAD_REQUEST', 'data after the end of the ref advertisement');
  if (capabilities === undefined) throw new ProtocolError('PROTO_BAD_REQUEST', 'ref advertisement without capabilities');
  return { version, refs, capabilities, shallows };
}
