/**
 * The v2 `ls-refs` command (gitprotocol-v2 "ls-refs"): arguments symrefs, peel, ref-prefix,
 * unborn; output lines `<oid>|unborn <ref>[ symref-target:<t>][ peeled:<oid>]` and a flush.
 */
import { ProtocolError } from '../../core/errors.js';
import { REF_NAME_MAX } from '../../core/limits.js';
import type { ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { pktLineText } from '../pktline/encode.js';
import { FLUSH, checkWireRefName, expectOid, frameLines, quoteLine, type OutLine } from './lines.js';

/** ls-refs arguments. An empty `refPrefixes` means every ref. */
export interface LsRefsArgs {
  readonly symrefs: boolean;
  readonly peel: boolean;
  readonly unborn: boolean;
  readonly refPrefixes: readonly string[];
}

/**
 * At this many ref-prefix lines the prefixes are dropped and every ref is listed, as git's
 * ls-refs does (TOO_MANY_PREFIXES): the list is an optimisation, and a bound keeps memory small.
 */
export const LS_REFS_PREFIXES_MAX = 65536;

/** Parses ls-refs arguments; throws ProtocolError('PROTO_UNKNOWN_PARAM') for an unknown line. */
export function parseLsRefsArgs(lines: readonly Uint8Array[]): LsRefsArgs {
  let symrefs = false;
  let peel = false;
  let unborn = false;
  let prefixes: string[] = [];
  let prefixCount = 0;
  for (const payload of lines) {
    const line = pktLineText(payload);
    if (line === 'symrefs') symrefs = true;
    else if (line === 'peel') peel = true;
    else if (line === 'unborn') unborn = true;
    else if (line.startsWith('ref-prefix ')) {
      const prefix = line.slice(11);
      if (prefix.length > REF_NAME_MAX) throw new ProtocolError('PROTO_BAD_REQUEST', `ref-prefix longer than ${REF_NAME_MAX} bytes`);
      prefixCount++;
      if (prefixCount < LS_REFS_PREFIXES_MAX) prefixes.push(prefix);
      else prefixes = [];
    } else throw new ProtocolError('PROTO_UNKNOWN_PARAM', `ls-refs: unexpected line ${quoteLine(line)}`);
  }
  return { symrefs, peel, unborn, refPrefixes: prefixes };
}

/** True if `name` starts with one of `prefixes` (or there are none). */
export function matchesRefPrefix(name: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return true;
  for (const p of prefixes) if (name.startsWith(p)) return true;
  return false;
}

/** Encodes ls-refs arguments as a client sends them (no flush). */
export function formatLsRefsArgs(args: LsRefsArgs): string[] {
  const out: string[] = [];
  if (args.symrefs) out.push('symrefs');
  if (args.peel) out.push('peel');
  if (args.unborn) out.push('unborn');
  for (const p of args.refPrefixes) out.push(`ref-prefix ${p}`);
  return out;
}

/** One ls-refs output line. `oid` undefined means unborn (only HEAD is ever unborn). */
export interface LsRef {
  readonly name: string;
  readonly oid: ObjectId | undefined;
  readonly symrefTarget?: string;
  readonly peeled?: ObjectId;
}

/** Text of one output line (without LF). */
export function formatLsRef(ref: LsRef): string {
  checkWireRefName(ref.name);
  let s = `${ref.oid ?? 'unborn'} ${ref.name}`;
  if (ref.symrefTarget !== undefined) {
    checkWireRefName(ref.symrefTarget);
    s += ` symref-target:${ref.symrefTarget}`;
  }
  if (ref.peeled !== undefined) s += ` peeled:${ref.peeled}`;
  return s;
}

/** Encodes the whole ls-refs output, flush included. */
export function encodeLsRefsOutput(refs: readonly LsRef[]): Uint8Array {
  const lines: OutLine[] = refs.map(formatLsRef);
  lines.push(FLUSH);
  return frameLines(lines);
}

/** Parses one output line; throws ProtocolError('PROTO_BAD_REQUEST'). */
export function parseLsRef(payload: Uint8Array): LsRef {
  const line = pktLineText(payload);
  const parts = line.split(' ');
  if (parts.length < 2) throw new ProtocolError('PROTO_BAD_REQUEST', `malformed ls-refs line ${quoteLine(line)}`);
  const [first, name] = parts as [string, string];
  const oid = first === 'unborn' ? undefined : expectOid(first, 'ls-refs line');
  checkWireRefName(name);
  let symrefTarget: string | undefined;
  let peeled: ObjectId | undefined;
  for (const attr of parts.slice(2)) {
    if (attr.startsWith('symref-target:') && symrefTarget === undefined) {
      symrefTarget = attr.slice(14);
      checkWireRefName(symrefTarget);
    } else if (attr.startsWith('peeled:') && peeled === undefined) {
      peeled = expectOid(attr.slice(7), 'peeled attribute');
    } else throw new ProtocolError('PROTO_BAD_REQUEST', `unknown ls-refs attribute ${quoteLine(attr)}`);
  }
  return {
    name,
    oid,
    ...(symrefTarget === undefined ? {} : { symrefTarget }),
    ...(peeled === undefined ? {} : { peeled }),
  };
}

/** Decodes a complete ls-refs output (lines then a flush). */
export function decodeLsRefsOutput(input: Uint8Array): LsRef[] {
  const pkts = decodePktLines(input);
  const out: LsRef[] = [];
  for (let i = 0; i < pkts.length; i++) {
    const p = pkts[i] as (typeof pkts)[number];
    if (p.kind === 'flush') {
      if (i !== pkts.length - 1) throw new ProtocolError('PROTO_BAD_REQUEST', 'data after the ls-refs output');
      return out;
    }
    if (p.kind !== 'data') throw new ProtocolError('PROTO_BAD_REQUEST', `unexpected ${p.kind} packet in ls-refs output`);
    out.push(parseLsRef(p.payload));
  }
  throw new ProtocolError('PROTO_BAD_REQUEST', 'ls-refs output does not end with a flush packet');
}
