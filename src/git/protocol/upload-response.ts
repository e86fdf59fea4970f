/**
 * Server lines of a v0/v1 fetch before the pack (gitprotocol-pack): the shallow update
 * (`shallow`/`unshallow` lines then a flush) and the acknowledgements (`ACK <oid>`,
 * `ACK <oid> continue|common|ready`, `NAK`).
 */
import { ProtocolError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { pktLineText } from '../pktline/encode.js';
import { expectOid, quoteLine } from './lines.js';

/** One acknowledgement line. `status` is absent for the plain and final `ACK <oid>`. */
export type AckLine =
  | { readonly kind: 'ack'; readonly oid: ObjectId; readonly status?: 'continue' | 'common' | 'ready' }
  | { readonly kind: 'nak' };

/** Text of an acknowledgement line (without LF). */
export function formatAck(ack: AckLine): string {
  if (ack.kind === 'nak') return 'NAK';
  return ack.status === undefined ? `ACK ${ack.oid}` : `ACK ${ack.oid} ${ack.status}`;
}

/** Parses an acknowledgement line; throws ProtocolError('PROTO_BAD_REQUEST'). */
export function parseAck(payload: Uint8Array): AckLine {
  const line = pktLineText(payload);
  if (line === 'NAK') return { kind: 'nak' };
  if (line.startsWith('ACK ')) {
    const parts = line.slice(4).split(' ');
    const oid = expectOid(parts[0] ?? '', 'ACK line');
    if (parts.length === 1) return { kind: 'ack', oid };
    const status = parts[1];
    if (parts.length === 2 && (status === 'continue' || status === 'common' || status === 'ready')) {
      return { kind: 'ack', oid, status };
    }
  }
  throw new ProtocolError('PROTO_BAD_REQUEST', `expected ACK or NAK, got ${quoteLine(line)}`);
}

/** A shallow update: what becomes shallow and what stops being shallow on the client. */
export interface ShallowLines {
  readonly shallow: readonly ObjectId[];
  readonly unshallow: readonly ObjectId[];
}

/** Text lines of a shallow update (shallow lines first, as git sends them), no flush. */
export function formatShallowLines(update: ShallowLines): string[] {
  return [...update.shallow.map((o) => `shallow ${o}`), ...update.unshallow.map((o) => `unshallow ${o}`)];
}

/** Parses `shallow <oid>` / `unshallow <oid>` lines; throws ProtocolError('PROTO_BAD_REQUEST'). */
export function parseShallowLines(lines: readonly Uint8Array[]): ShallowLines {
  const shallow: ObjectId[] = [];
  const unshallow: ObjectId[] = [];
  for (const payload of lines) {
    const line = pktLineText(payload);
    if (line.startsWith('shallow ')) shallow.push(expectOid(line.slice(8), 'shallow line'));
    else if (line.startsWith('unshallow ')) unshallow.push(expectOid(line.slice(10), 'unshallow line'));
    else throw new ProtocolError('PROTO_BAD_REQUEST', `expected shallow or unshallow, got ${quoteLine(line)}`);
  }
  return { shallow, unshallow };
}
