/**
 * report-status and report-status-v2 (gitprotocol-pack "Report Status"): `unpack ok` or
 * `unpack <error>`, then `ok <ref>` or `ng <ref> <reason>` per command (v2 may add `option`
 * lines after an ok), then a flush.
 */
import { ProtocolError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { decodePktLines } from '../pktline/decode.js';
import { pktLineText } from '../pktline/encode.js';
import { FLUSH, expectOid, frameLines, quoteLine, type OutLine } from './lines.js';

/** The v2 options that may follow an `ok` (a ref rewritten by the server). */
export interface RefStatusOptions {
  readonly refname?: string;
  readonly oldOid?: ObjectId;
  readonly newOid?: ObjectId;
  readonly forcedUpdate?: boolean;
}

/** The outcome of one command. */
export type RefStatus =
  | { readonly kind: 'ok'; readonly name: string; readonly options?: readonly RefStatusOptions[] }
  | { readonly kind: 'ng'; readonly name: string; readonly reason: string };

/** A whole report. `unpack` is 'ok' or the error text. */
export interface StatusReport {
  readonly unpack: string;
  readonly refs: readonly RefStatus[];
}

/** Makes free text safe for one line (no LF or NUL), never empty. */
function oneLine(text: string): string {
  const s = text.replace(/[\0\r\n]+/g, ' ').trim();
  return s.length === 0 ? 'error' : s;
}

/** Encodes a report, flush included. Options are sent only with `v2`. */
export function encodeReportStatus(report: StatusReport, v2: boolean): Uint8Array {
  const lines: OutLine[] = [`unpack ${report.unpack === 'ok' ? 'ok' : oneLine(report.unpack)}`];
  for (const r of report.refs) {
    if (r.kind === 'ng') {
      lines.push(`ng ${r.name} ${oneLine(r.reason)}`);
      continue;
    }
    lines.push(`ok ${r.name}`);
    if (!v2 || r.options === undefined) continue;
    r.options.forEach((o, i) => {
      if (i > 0) lines.push(`ok ${r.name}`);
      if (o.refname !== undefined) lines.push(`option refname ${o.refname}`);
      if (o.oldOid !== undefined) lines.push(`option old-oid ${o.oldOid}`);
      if (o.newOid !== undefined) lines.push(`option new-oid ${o.newOid}`);
      if (o.forcedUpdate === true) lines.push('option forced-update');
    });
  }
  lines.push(FLUSH);
  return frameLines(lines);
}

/** Decodes a complete report (v1 or v2); throws ProtocolError('PROTO_BAD_REQUEST'). */
export function decodeReportStatus(input: Uint8Array): StatusReport {
  const pkts = decodePktLines(input);
  const last = pkts[pkts.length - 1];
  if (last === undefined || last.kind !== 'flush') throw new ProtocolError('PROTO_BAD_REQUEST', 'report does not end with a flush packet');
  const texts = pkts.slice(0, -1).map((p) => {
    if (p.kind !== 'data') throw new ProtocolError('PROTO_BAD_REQUEST', `unexpected ${p.kind} packet in a report`);
    return pktLineText(p);
  });
  const first = texts[0];
  if (first === undefined || !first.startsWith('unpack ')) throw new ProtocolError('PROTO_BAD_REQUEST', 'report does not start with an unpack status');
  const unpack = first.slice(7);
  const refs: RefStatus[] = [];
  let current: { name: string; options: RefStatusOptions[] } | undefined;
  let option: { refname?: string; oldOid?: ObjectId; newOid?: ObjectId; forcedUpdate?: boolean } | undefined;
  const finish = (): void => {
    if (current === undefined) return;
    if (option !== undefined) current.options.push(option);
    refs.push(current.options.length > 0 ? { kind: 'ok', name: current.name, options: current.options } : { kind: 'ok', name: current.name });
    current = undefined;
    option = undefined;
  };
  for (const t of texts.slice(1)) {
    if (t.startsWith('ok ')) {
      const name = t.slice(3);
      if (current !== undefined && current.name === name && option !== undefined) {
        current.options.push(option);
        option = undefined;
        continue;
      }
      finish();
      current = { name, options: [] };
    } else if (t.startsWith('ng ')) {
      finish();
      const rest = t.slice(3);
      const sp = rest.indexOf(' ');
      if (sp <= 0) throw new ProtocolError('PROTO_BAD_REQUEST', `malformed ng line ${quoteLine(t)}`);
      refs.push({ kind: 'ng', name: rest.slice(0, sp), reason: rest.slice(sp + 1) });
    } else if (t.startsWith('option ') && current !== undefined) {
      option ??= {};
      const o = t.slice(7);
      if (o.startsWith('refname ')) option.refname = o.slice(8);
      else if (o.startsWith('old-oid ')) option.oldOid = expectOid(o.slice(8), 'option old-oid');
      else if (o.startsWith('new-oid ')) option.newOid = expectOid(o.slice(8), 'option new-oid');
      else if (o === 'forced-update') option.forcedUpdate = true;
      else throw new ProtocolError('PROTO_BAD_REQUEST', `unknown report option ${quoteLine(t)}`);
    } else throw new ProtocolError('PROTO_BAD_REQUEST', `unexpected report line ${quoteLine(t)}`);
  }
  finish();
  return { unpack, refs };
}
